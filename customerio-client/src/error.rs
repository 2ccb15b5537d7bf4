//! One error type for every call, and the pure functions that classify failures.
//!
//! Every [`Error`] records:
//! - the [`Phase`] the failure happened in (not sent, may have been sent, response received),
//!   which decides whether a retry could duplicate a write;
//! - its [`ErrorKind`] (transient, throttled, server, client, auth, invalid input, …);
//! - the HTTP status, the parsed error messages and the raw body when a response arrived;
//! - the delay the server asked for (`Retry-After`, seconds or HTTP-date).
//!
//! `Display` names the operation and the kind, never a customer identifier or a response body
//! (bodies can echo personal data: read them with [`Error::body`]).

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};

/// When in the life of a request the failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Nothing reached the server: local validation, configuration, or a failed connect.
    NotSent,
    /// The request may have reached the server but no response was read (timeout, reset).
    /// Retrying a write is safe only when the server de-duplicates it (event ids, upserts).
    MaybeSent,
    /// The server answered; the status and body are known.
    ResponseReceived,
}

/// What kind of failure it was. Drives the retry decision ([`ErrorKind::is_retryable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Network failure or timeout; worth retrying.
    Transient,
    /// `429 Too Many Requests`; retry after the server's delay.
    Throttled,
    /// A retryable server status (`408`, `5xx` such as 500, 502, 503, 504, 522, 524).
    Server,
    /// The request was refused as it stands (`400`, `404`, `413`, `422`, other 4xx). Do not retry.
    Client,
    /// The credentials were refused (`401`, `403`). Do not retry.
    Auth,
    /// Input refused before sending (a documented limit, a phone in a v1 path, …).
    Invalid,
    /// A response arrived that could not be decoded.
    Decode,
    /// The client is misconfigured (bad base URL, TLS set-up).
    Config,
}

impl ErrorKind {
    /// Whether a failure of this kind may succeed if the same request is sent again.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Transient | ErrorKind::Throttled | ErrorKind::Server
        )
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Transient => "network failure or timeout",
            ErrorKind::Throttled => "rate limited",
            ErrorKind::Server => "server error",
            ErrorKind::Client => "request refused",
            ErrorKind::Auth => "credentials refused",
            ErrorKind::Invalid => "invalid input",
            ErrorKind::Decode => "response could not be decoded",
            ErrorKind::Config => "configuration error",
        }
    }
}

/// Classifies an HTTP status that is not a success. A pure function; see the table in the
/// tests.
///
/// ```
/// use customerio_client::ErrorKind;
/// use customerio_client::error::classify_status;
///
/// assert_eq!(classify_status(429), ErrorKind::Throttled);
/// assert_eq!(classify_status(503), ErrorKind::Server);
/// assert_eq!(classify_status(422), ErrorKind::Client);
/// assert!(!classify_status(401).is_retryable());
/// ```
pub fn classify_status(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::Throttled,
        401 | 403 => ErrorKind::Auth,
        408 | 500 | 502 | 503 | 504 | 522 | 524 => ErrorKind::Server,
        // Other 5xx: the server failed; a retry is reasonable.
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::Client,
    }
}

/// Classifies a transport failure from `reqwest` into a kind and a phase.
///
/// A failed connect never reached the server; a timeout or a broken connection after the
/// request started may have, and so may a body that broke off after the status line.
pub fn classify_transport(err: &reqwest::Error) -> (ErrorKind, Phase) {
    if err.is_builder() {
        return (ErrorKind::Config, Phase::NotSent);
    }
    if err.is_connect() {
        return (ErrorKind::Transient, Phase::NotSent);
    }
    if err.is_decode() {
        // The client parses bodies itself (`Error::decode`), so reqwest reports "decode" only
        // when reading the body failed: a timeout or a reset after the status line arrived.
        // The server may have acted on the request, and a retry may pass.
        return (ErrorKind::Transient, Phase::MaybeSent);
    }
    (ErrorKind::Transient, Phase::MaybeSent)
}

/// Reads `Retry-After` as delay-seconds or an HTTP-date (relative to `now`).
///
/// A date in the past gives a zero delay; an unreadable value gives `None`.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// One error message from a Customer.io error body, whichever of the documented shapes it
/// came in (`meta.error`, `meta.errors[]`, or `errors[]` with `message` / `detail`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApiError {
    /// For Track v2 batches: the 0-based index of the refused operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<usize>,
    /// Machine-readable reason (Track v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The field the error is about (Track v2 `field`, or the App API's `source.pointer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Human-readable message (`message`, `detail`, or a `meta` string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Error code (App API, some errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Parses the error messages out of a response body, trying each documented shape in turn.
/// Returns an empty list when the body is empty or has none of them.
pub fn parse_api_errors(body: &[u8]) -> Vec<ApiError> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    let mut out = Vec::new();
    if let Some(meta) = value.get("meta") {
        if let Some(message) = meta.get("error").and_then(text) {
            out.push(ApiError {
                message: Some(message),
                ..ApiError::default()
            });
        }
        if let Some(list) = meta.get("errors").and_then(|e| e.as_array()) {
            out.extend(list.iter().filter_map(text).map(|message| ApiError {
                message: Some(message),
                ..ApiError::default()
            }));
        }
    }
    if let Some(list) = value.get("errors").and_then(|e| e.as_array()) {
        for item in list {
            let field = |name: &str| item.get(name).and_then(text);
            out.push(ApiError {
                batch_index: item
                    .get("batch_index")
                    .and_then(|i| i.as_u64())
                    .and_then(|i| usize::try_from(i).ok()),
                reason: field("reason"),
                // Track v2 names the field; the App API points at it (`source.pointer`).
                field: field("field").or_else(|| {
                    item.get("source")
                        .and_then(|source| source.get("pointer"))
                        .and_then(text)
                }),
                message: field("message").or_else(|| field("detail")),
                code: field("code"),
            });
        }
    }
    out
}

/// Bodies kept on an error are cut to this many bytes.
pub const MAX_ERROR_BODY_BYTES: usize = 8 * 1024;

/// The error of every call in this crate.
///
/// ```
/// use customerio_client::{Error, ErrorKind, Phase};
///
/// let err = Error::invalid("track.v1.event", "event name is longer than 100 bytes");
/// assert_eq!(err.kind(), ErrorKind::Invalid);
/// assert_eq!(err.phase(), Phase::NotSent);
/// assert!(!err.is_retryable());
/// ```
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    phase: Phase,
    operation: &'static str,
    message: Option<String>,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    api_errors: Vec<ApiError>,
    body: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    fn bare(kind: ErrorKind, phase: Phase, operation: &'static str) -> Self {
        Self(Box::new(Inner {
            kind,
            phase,
            operation,
            message: None,
            status: None,
            retry_after: None,
            api_errors: Vec::new(),
            body: None,
            source: None,
        }))
    }

    /// Input refused before anything was sent. `message` must not contain customer data.
    pub fn invalid(operation: &'static str, message: impl Into<String>) -> Self {
        let mut err = Self::bare(ErrorKind::Invalid, Phase::NotSent, operation);
        err.0.message = Some(message.into());
        err
    }

    /// A configuration problem. `message` must not contain secrets.
    pub fn config(message: impl Into<String>) -> Self {
        let mut err = Self::bare(ErrorKind::Config, Phase::NotSent, "config");
        err.0.message = Some(message.into());
        err
    }

    /// A transport failure from `reqwest`, classified by [`classify_transport`].
    pub fn transport(operation: &'static str, source: reqwest::Error) -> Self {
        let (kind, phase) = classify_transport(&source);
        // reqwest's Display includes the URL, which can carry a customer identifier.
        let mut err = Self::bare(kind, phase, operation);
        err.0.source = Some(Box::new(source.without_url()));
        err
    }

    /// A response whose status is not a success.
    pub fn status(
        operation: &'static str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Self {
        let mut err = Self::bare(
            classify_status(status.as_u16()),
            Phase::ResponseReceived,
            operation,
        );
        err.0.status = Some(status);
        err.0.retry_after = parse_retry_after(headers, now);
        err.0.api_errors = parse_api_errors(body);
        err.0.body = Some(truncate_body(body));
        err
    }

    /// A response that arrived but could not be decoded as expected.
    pub fn decode(
        operation: &'static str,
        status: StatusCode,
        body: &[u8],
        source: serde_json::Error,
    ) -> Self {
        let mut err = Self::bare(ErrorKind::Decode, Phase::ResponseReceived, operation);
        err.0.status = Some(status);
        err.0.body = Some(truncate_body(body));
        err.0.source = Some(Box::new(source));
        err
    }

    /// Attaches an underlying cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// When the failure happened.
    pub fn phase(&self) -> Phase {
        self.0.phase
    }

    /// The operation that failed, e.g. `track.v2.batch`.
    pub fn operation(&self) -> &'static str {
        self.0.operation
    }

    /// The HTTP status, when a response arrived.
    pub fn status_code(&self) -> Option<StatusCode> {
        self.0.status
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// The error messages parsed from the response body.
    pub fn api_errors(&self) -> &[ApiError] {
        &self.0.api_errors
    }

    /// The response body (cut to [`MAX_ERROR_BODY_BYTES`]). May contain personal data: do not
    /// log it at info level or above.
    pub fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }

    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.0.kind.is_retryable()
    }

    /// Whether the server may have acted on the request (so a retry could duplicate it unless
    /// the server de-duplicates).
    pub fn may_have_been_sent(&self) -> bool {
        matches!(self.0.phase, Phase::MaybeSent | Phase::ResponseReceived)
    }
}

fn truncate_body(body: &[u8]) -> String {
    let cut = body.len().min(MAX_ERROR_BODY_BYTES);
    String::from_utf8_lossy(&body[..cut]).into_owned()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "customer.io {}: {}",
            self.0.operation,
            self.0.kind.describe()
        )?;
        if let Some(status) = self.0.status {
            write!(f, " (HTTP {})", status.as_u16())?;
        }
        if let Some(message) = &self.0.message {
            write!(f, ": {message}")?;
        }
        if let Some(delay) = self.0.retry_after {
            write!(f, "; retry after {}s", delay.as_secs())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body is left out on purpose: it may echo personal data.
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("phase", &self.0.phase)
            .field("operation", &self.0.operation)
            .field("message", &self.0.message)
            .field("status", &self.0.status.map(|s| s.as_u16()))
            .field("retry_after", &self.0.retry_after)
            .field("api_errors", &self.0.api_errors.len())
            .field("source", &self.0.source)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn status_classification_table() {
        let table: &[(u16, ErrorKind, bool)] = &[
            (400, ErrorKind::Client, false),
            (401, ErrorKind::Auth, false),
            (403, ErrorKind::Auth, false),
            (404, ErrorKind::Client, false),
            (408, ErrorKind::Server, true),
            (409, ErrorKind::Client, false),
            (413, ErrorKind::Client, false),
            (422, ErrorKind::Client, false),
            (429, ErrorKind::Throttled, true),
            (500, ErrorKind::Server, true),
            (501, ErrorKind::Server, true),
            (502, ErrorKind::Server, true),
            (503, ErrorKind::Server, true),
            (504, ErrorKind::Server, true),
            (522, ErrorKind::Server, true),
            (524, ErrorKind::Server, true),
        ];
        for &(status, kind, retry) in table {
            assert_eq!(classify_status(status), kind, "status {status}");
            assert_eq!(
                classify_status(status).is_retryable(),
                retry,
                "status {status}"
            );
        }
    }

    #[test]
    fn kinds_that_retry() {
        assert!(ErrorKind::Transient.is_retryable());
        for kind in [
            ErrorKind::Client,
            ErrorKind::Auth,
            ErrorKind::Invalid,
            ErrorKind::Decode,
            ErrorKind::Config,
        ] {
            assert!(!kind.is_retryable(), "{kind:?}");
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(&headers("Sun, 06 Nov 1994 08:50:07 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(&headers("Sun, 06 Nov 1994 08:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(&headers("soon"), now), None);
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn every_error_body_shape_is_parsed() {
        let v1 = parse_api_errors(br#"{"meta":{"errors":["bad attr","too long"]}}"#);
        assert_eq!(v1.len(), 2);
        assert_eq!(v1[1].message.as_deref(), Some("too long"));

        let merge = parse_api_errors(br#"{"meta":{"error":"only one identifier"}}"#);
        assert_eq!(merge[0].message.as_deref(), Some("only one identifier"));

        let v2 = parse_api_errors(
            br#"{"errors":[{"batch_index":3,"reason":"invalid","field":"id","message":"must be a ULID"}]}"#,
        );
        assert_eq!(
            v2,
            vec![ApiError {
                batch_index: Some(3),
                reason: Some("invalid".into()),
                field: Some("id".into()),
                message: Some("must be a ULID".into()),
                code: None,
            }]
        );

        let app = parse_api_errors(
            br#"{"errors":[{"detail":"rate limited","status":"429","code":"x"}]}"#,
        );
        assert_eq!(app[0].message.as_deref(), Some("rate limited"));
        assert_eq!(app[0].code.as_deref(), Some("x"));

        assert!(parse_api_errors(b"").is_empty());
        assert!(parse_api_errors(b"<html>").is_empty());
    }

    #[test]
    fn display_leaves_out_body_and_shows_status() {
        let err = Error::status(
            "track.v1.identify",
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"{"meta":{"errors":["ada@example.com is invalid"]}}"#,
            SystemTime::UNIX_EPOCH,
        );
        let shown = err.to_string();
        assert_eq!(
            shown,
            "customer.io track.v1.identify: request refused (HTTP 400)"
        );
        assert!(!format!("{err:?}").contains("ada@example.com"));
        assert_eq!(err.body().map(|b| b.contains("ada@")), Some(true));
        assert_eq!(err.phase(), Phase::ResponseReceived);
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = vec![b'x'; MAX_ERROR_BODY_BYTES * 2];
        let err = Error::status(
            "op",
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            &body,
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(err.body().map(str::len), Some(MAX_ERROR_BODY_BYTES));
        assert!(err.is_retryable());
    }
}
