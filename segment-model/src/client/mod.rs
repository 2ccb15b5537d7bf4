//! Segment HTTP clients (feature `client`): the Tracking API writer and the Profile API reader.
//!
//! - [`tracking::TrackingClient`] packs messages into `POST /v1/batch` requests within Segment's
//!   size and count limits, fills a missing `messageId` once (before any attempt, so retries
//!   carry the same id) and sends one attempt per call.
//! - [`profile::ProfileClient`] reads a profile's traits from the Profile API, following the
//!   `next` cursor.
//!
//! Both clients make **one attempt** per call and report failures as a [`ClientError`] that
//! records how far the request got ([`Phase`]), what kind of failure it was ([`FailureKind`]),
//! whether it is worth retrying ([`ClientError::is_retryable`]) and how long the server asked us
//! to wait ([`ClientError::retry_after`]). Retry loops, rate limits and concurrency belong to the
//! caller (the `cio-segment-sync` dispatcher), which is why the clients hand back everything a
//! retry needs.
//!
//! Both clients hold one [`reqwest::Client`] (connection pool) and reuse it for every request;
//! both accept a [`Region`] or a [`BaseUrl`] override (for tests and proxies).

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use url::Url;

pub mod profile;
pub mod tracking;

/// The `User-Agent` both clients send: this crate's name and version.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Default per-attempt timeout of both clients.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest number of response-body bytes kept in a [`ClientError`].
pub const MAX_ERROR_BODY_BYTES: usize = 8 * 1024;

/// The Segment data region a workspace lives in. Data must go to its own region's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Region {
    /// United States (Oregon), Segment's default.
    #[default]
    Us,
    /// European Union (Dublin).
    Eu,
}

/// US Tracking API host.
pub const TRACKING_US_BASE: &str = "https://api.segment.io/";
/// EU Tracking API host.
pub const TRACKING_EU_BASE: &str = "https://events.eu1.segmentapis.com/";
/// US Profile API host.
pub const PROFILE_US_BASE: &str = "https://profiles.segment.com/";
/// EU Profile API host.
pub const PROFILE_EU_BASE: &str = "https://profiles.euw1.segment.com/";

impl Region {
    /// The Tracking API base URL of this region (the client appends `v1/batch`).
    pub fn tracking_base_url(self) -> BaseUrl {
        BaseUrl::from_constant(match self {
            Self::Us => TRACKING_US_BASE,
            Self::Eu => TRACKING_EU_BASE,
        })
    }

    /// The Profile API base URL of this region.
    pub fn profile_base_url(self) -> BaseUrl {
        BaseUrl::from_constant(match self {
            Self::Us => PROFILE_US_BASE,
            Self::Eu => PROFILE_EU_BASE,
        })
    }
}

/// Where a client sends its requests: scheme, host, optional port and optional path prefix.
///
/// The clients append their own paths (`v1/batch`, `v1/spaces/...`) after the prefix, so
/// `http://127.0.0.1:8080` and `https://proxy.internal/segment` both work.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

/// Why a string is not a usable [`BaseUrl`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BaseUrlError {
    /// The string is not a URL.
    #[error("the base URL is not a valid URL")]
    Parse(#[source] url::ParseError),
    /// The scheme is neither `http` nor `https`.
    #[error("the base URL must use http or https")]
    Scheme,
    /// The URL has no host.
    #[error("the base URL has no host")]
    NoHost,
    /// The URL carries a user name or password (credentials belong in the client's key).
    #[error("the base URL must not contain credentials")]
    Credentials,
    /// The URL has a query string or a fragment.
    #[error("the base URL must not have a query or fragment")]
    QueryOrFragment,
}

impl BaseUrl {
    /// Parses and checks a base URL.
    ///
    /// # Errors
    ///
    /// [`BaseUrlError`] when the string is not an absolute `http`/`https` URL with a host and
    /// without credentials, query or fragment.
    pub fn parse(input: &str) -> Result<Self, BaseUrlError> {
        let mut url = Url::parse(input).map_err(BaseUrlError::Parse)?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(BaseUrlError::Scheme);
        }
        if url.host().is_none() {
            return Err(BaseUrlError::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BaseUrlError::Credentials);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(BaseUrlError::QueryOrFragment);
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self(url))
    }

    fn from_constant(input: &'static str) -> Self {
        // Only called with this module's host constants, which are valid https URLs (a unit test
        // parses each of them), so the error branch is never taken.
        Self::parse(input).unwrap_or_else(|e| unreachable!("built-in base URL is invalid: {e}"))
    }

    /// The base URL as a [`Url`] (always ending in `/`).
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// Appends an already percent-encoded relative path (no leading `/`) to the base.
    pub(crate) fn join_encoded(&self, relative: &str) -> Url {
        let mut url = self.0.clone();
        let path = format!("{}{relative}", self.0.path());
        url.set_path(&path);
        url
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BaseUrl").field(&self.0.as_str()).finish()
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = BaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Which Segment API a [`ClientError`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Api {
    /// The Tracking API (`/v1/batch`).
    Tracking,
    /// The Profile API.
    Profile,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tracking => "Segment Tracking API",
            Self::Profile => "Segment Profile API",
        })
    }
}

/// How far a failed request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Nothing reached the server (the request could not be built or the connection was never
    /// established).
    NotSent,
    /// The request may have reached the server, but no response was read (timeout, connection
    /// reset). A retried write must carry the same `messageId`s.
    MaybeSent,
    /// The server answered.
    ResponseReceived,
}

/// What kind of failure a [`ClientError`] is; drives the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// A network-level failure or a status the API documents as temporary (408, 410, 460).
    Transient,
    /// The server asked us to slow down (429).
    Throttled,
    /// A server-side failure worth retrying (5xx other than 501, 505 and 511).
    Server,
    /// Retrying the same request cannot succeed (400, other 4xx, 501, 505, 511, bad config,
    /// undecodable response, unexpected redirect).
    Permanent,
}

/// Classifies an HTTP status answered by a Segment API.
///
/// Follows the policy of Segment's own SDKs (reference §5.6): 408, 410, 429 and 460 are
/// retried; 400 and every other 4xx are permanent; 5xx is retried except 501, 505 and 511 (the
/// clients in this crate do not use OAuth, the only case where 511 is retried). Any other
/// non-2xx status (1xx, 3xx) is treated as permanent: redirects are not followed (so the key
/// never leaves the configured host), and an unfollowed redirect means nothing was accepted.
/// Success statuses are not failures and classify as `None`.
pub fn classify_status(status: u16) -> Option<FailureKind> {
    Some(match status {
        200..=299 => return None,
        429 => FailureKind::Throttled,
        408 | 410 | 460 => FailureKind::Transient,
        501 | 505 | 511 => FailureKind::Permanent,
        500..=599 => FailureKind::Server,
        _ => FailureKind::Permanent,
    })
}

/// A `Retry-After` header value: either a delay in seconds or an HTTP date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Delay(Duration),
    /// `Retry-After: <HTTP-date>` (e.g. `Sun, 06 Nov 1994 08:49:37 GMT`).
    At(SystemTime),
}

impl RetryAfter {
    /// Parses a header value in either form; `None` when it is neither.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // An absurdly long digit string saturates rather than failing.
            let secs = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(Self::Delay(Duration::from_secs(secs)));
        }
        httpdate::parse_http_date(value).ok().map(Self::At)
    }

    /// How long to wait, counted from `now`. A date in the past means no wait.
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match *self {
            Self::Delay(d) => d,
            Self::At(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// A failed request to a Segment API.
///
/// `Display` names the API, the phase and the HTTP status (plus the vendor's short error code
/// when it sent one); it never shows a key, a token, a URL (profile URLs carry customer ids) or
/// the response body. The body is available from [`ClientError::body`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request failed below HTTP (connect error, timeout, reset) or could not be built.
    #[error("the request to the {api} failed ({what}); {phase}")]
    Transport {
        /// Which API.
        api: Api,
        /// How far the request got.
        phase: Phase,
        /// Short description of the failure (no URL).
        what: TransportFailure,
        /// The underlying error, with its URL removed.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a status that is not a success.
    #[error("the {api} answered HTTP {status}{}", code_suffix(.code.as_deref()))]
    Status {
        /// Which API.
        api: Api,
        /// The HTTP status code.
        status: u16,
        /// The vendor's short error code from the body (e.g. `rate_limit_error`), if any.
        code: Option<String>,
        /// The response body (lossy UTF-8, at most [`MAX_ERROR_BODY_BYTES`]).
        body: String,
        /// The parsed `Retry-After` header, if any.
        retry_after: Option<RetryAfter>,
        /// When the response was received (the base for an HTTP-date `Retry-After`).
        received_at: SystemTime,
        /// The `Request-Id` header (Profile API), for support tickets.
        request_id: Option<String>,
    },
    /// The server answered with success but the body could not be decoded.
    #[error("the {api} answered HTTP {status} with an undecodable body at {path}: {reason}")]
    Decode {
        /// Which API.
        api: Api,
        /// The HTTP status code.
        status: u16,
        /// JSON path of the first problem (e.g. `cursor.has_more`).
        path: String,
        /// What was wrong (a serde message; it never quotes values).
        reason: String,
    },
    /// The server's answers broke the protocol (for example a paging cursor that repeats).
    #[error("the {api} broke the protocol: {reason}")]
    Protocol {
        /// Which API.
        api: Api,
        /// What happened.
        reason: String,
    },
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" ({c})")).unwrap_or_default()
}

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportFailure {
    /// The request could not be built.
    Build,
    /// The connection could not be established.
    Connect,
    /// The per-attempt timeout elapsed.
    Timeout,
    /// Any other I/O or protocol failure while sending or reading.
    Io,
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Build => "could not build the request",
            Self::Connect => "could not connect",
            Self::Timeout => "timed out",
            Self::Io => "connection failed",
        })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotSent => "the request was not sent",
            Self::MaybeSent => "the request may have been sent",
            Self::ResponseReceived => "a response was received",
        })
    }
}

impl ClientError {
    /// Which API failed.
    pub fn api(&self) -> Api {
        match self {
            Self::Transport { api, .. }
            | Self::Status { api, .. }
            | Self::Decode { api, .. }
            | Self::Protocol { api, .. } => *api,
        }
    }

    /// How far the request got.
    pub fn phase(&self) -> Phase {
        match self {
            Self::Transport { phase, .. } => *phase,
            Self::Status { .. } | Self::Decode { .. } | Self::Protocol { .. } => {
                Phase::ResponseReceived
            }
        }
    }

    /// Whether the request may have reached the server (and so may have had an effect).
    pub fn may_have_been_sent(&self) -> bool {
        self.phase() != Phase::NotSent
    }

    /// The kind of failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Transport { what, .. } => match what {
                TransportFailure::Build => FailureKind::Permanent,
                _ => FailureKind::Transient,
            },
            Self::Status { status, .. } => {
                classify_status(*status).unwrap_or(FailureKind::Permanent)
            }
            Self::Decode { .. } | Self::Protocol { .. } => FailureKind::Permanent,
        }
    }

    /// Whether sending the same request again may succeed. Every write this crate sends carries
    /// fixed `messageId`s that Segment de-duplicates on, and profile reads are idempotent, so a
    /// request that may have been sent is still safe to retry.
    pub fn is_retryable(&self) -> bool {
        self.kind() != FailureKind::Permanent
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Transport { .. } | Self::Protocol { .. } => None,
        }
    }

    /// The response body of a [`ClientError::Status`] (possibly truncated).
    pub fn body(&self) -> Option<&str> {
        match self {
            Self::Status { body, .. } => Some(body),
            _ => None,
        }
    }

    /// How long the server asked us to wait before retrying, counted from when its answer was
    /// received. `None` when it sent no (parsable) `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status {
                retry_after: Some(ra),
                received_at,
                ..
            } => Some(ra.delay_from(*received_at)),
            _ => None,
        }
    }

    pub(crate) fn transport(api: Api, err: reqwest::Error) -> Self {
        let (what, phase) = if err.is_builder() {
            (TransportFailure::Build, Phase::NotSent)
        } else if err.is_connect() {
            (TransportFailure::Connect, Phase::NotSent)
        } else if err.is_timeout() {
            (TransportFailure::Timeout, Phase::MaybeSent)
        } else {
            (TransportFailure::Io, Phase::MaybeSent)
        };
        Self::Transport {
            api,
            phase,
            what,
            source: err.without_url(),
        }
    }
}

/// Reads a failed response into a [`ClientError::Status`].
pub(crate) async fn status_error(api: Api, mut response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    let received_at = SystemTime::now();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    // Keep at most MAX_ERROR_BODY_BYTES; a read failure just ends the body early (the status is
    // what matters for the error).
    while body.len() < MAX_ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ERROR_BODY_BYTES - body.len();
                body.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            }
            Ok(None) | Err(_) => break,
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    ClientError::Status {
        api,
        status,
        code: error_code(&body),
        body,
        retry_after: header_str(&headers, reqwest::header::RETRY_AFTER.as_str())
            .and_then(RetryAfter::parse),
        received_at,
        request_id: header_str(&headers, "request-id").map(str::to_owned),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Extracts the vendor's error code from `{"code": ".."}` (Tracking API) or
/// `{"error": {"code": ".."}}` (Profile API). Only short identifier-like codes are kept, so a
/// body can never smuggle data into an error's `Display`.
fn error_code(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let code = value
        .get("code")
        .or_else(|| value.get("error").and_then(|e| e.get("code")))?
        .as_str()?;
    let plausible = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    plausible.then(|| code.to_owned())
}

/// Builds the `reqwest::Client` both clients use: no redirects (the key stays on the configured
/// host), this crate's user agent.
pub(crate) fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_hosts_parse() {
        for base in [
            TRACKING_US_BASE,
            TRACKING_EU_BASE,
            PROFILE_US_BASE,
            PROFILE_EU_BASE,
        ] {
            assert_eq!(
                BaseUrl::parse(base).map(|b| b.to_string()),
                Ok(base.to_owned())
            );
        }
    }

    #[test]
    fn error_code_accepts_both_shapes_and_rejects_free_text() {
        assert_eq!(
            error_code(r#"{"success":false,"message":"malformed JSON","code":"invalid_request"}"#),
            Some("invalid_request".to_owned())
        );
        assert_eq!(
            error_code(r#"{"error":{"code":"not_found","message":"Profile was not found."}}"#),
            Some("not_found".to_owned())
        );
        assert_eq!(error_code(r#"{"code":"user lena@example.org"}"#), None);
        assert_eq!(error_code("<html>"), None);
    }
}
