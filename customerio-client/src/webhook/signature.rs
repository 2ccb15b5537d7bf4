//! Checking that a reporting-webhook request really comes from Customer.io.
//!
//! Customer.io signs every reporting-webhook request with the signing key shown on the
//! reporting-webhook page of the workspace. Two headers carry the proof:
//!
//! - `X-CIO-Timestamp`: when the request was sent, in whole Unix seconds;
//! - `X-CIO-Signature`: HMAC-SHA256 over `v0:{X-CIO-Timestamp}:{raw body}`, keyed with the
//!   signing key, written as 64 hexadecimal characters.
//!
//! [`SignatureVerifier::verify`] is a pure function of the two header values, the raw body bytes
//! and a `now` the caller passes in, so it needs no clock and no HTTP stack.
//! [`SignatureVerifier::verify_headers`] reads the headers from a [`HeaderMap`] (the `http`
//! crate's type, re-exported by reqwest and used by axum and hyper), and the `*_now` variants use
//! the system clock.
//!
//! # Choices made here
//!
//! - **Order of checks.** Headers are parsed first, then the signature is checked in constant
//!   time, and only then the timestamp window. A [`SignatureError::TooOld`] or
//!   [`SignatureError::TooNew`] therefore always describes a request Customer.io really signed.
//! - **Hex case.** Customer.io writes lowercase hex. The header is hex-*decoded* and the 32 bytes
//!   are compared, so uppercase or mixed-case hex of the right MAC is accepted too. Anything that
//!   is not exactly 64 hex digits is [`SignatureError::MalformedSignature`].
//! - **No trimming.** Header values are used byte for byte: the timestamp header is signed as it
//!   arrived, so a value with spaces or a sign is rejected rather than silently normalised.
//! - **Timestamp tolerance.** Customer.io documents no replay window. The default here is
//!   [`DEFAULT_TOLERANCE`] (5 minutes) in both directions, configurable with
//!   [`SignatureVerifier::with_tolerance`] or switched off with
//!   [`SignatureVerifier::without_timestamp_check`]. Whether Customer.io re-signs a *retried*
//!   request with a fresh timestamp is not documented; if it does not, a tight window turns every
//!   retry older than the window into a rejection, and Customer.io holds back later events for
//!   that webhook until the failing one succeeds or expires. Widen the window (and keep
//!   de-duplicating on `event_id` for at least as long) if you see that happen.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;

/// Name of the header carrying the signing time (Unix seconds). Header names are
/// case-insensitive; this is the lowercase form [`HeaderMap`] uses.
pub const TIMESTAMP_HEADER: &str = "x-cio-timestamp";

/// Name of the header carrying the hex HMAC-SHA256 signature.
pub const SIGNATURE_HEADER: &str = "x-cio-signature";

/// The version prefix of the signed string; Customer.io only uses `v0`.
pub const SIGNATURE_VERSION: &str = "v0";

/// Default accepted distance between the signing time and `now`, in either direction.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Length in bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The reporting-webhook signing key of a Customer.io workspace.
///
/// `Debug` and `Display` never show the key.
///
/// ```
/// use customerio_client::webhook::WebhookSigningKey;
///
/// let key = WebhookSigningKey::new("my-signing-key")?;
/// assert_eq!(format!("{key:?}"), "WebhookSigningKey(<redacted>)");
/// # Ok::<(), customerio_client::webhook::InvalidSigningKey>(())
/// ```
#[derive(Clone)]
pub struct WebhookSigningKey {
    /// HMAC state already keyed with the secret; the raw key bytes are not kept.
    keyed: HmacSha256,
}

impl WebhookSigningKey {
    /// Wraps the signing key as shown in Customer.io's UI.
    ///
    /// The key's bytes are used as the HMAC key as they are (no trimming, no decoding).
    ///
    /// # Errors
    ///
    /// [`InvalidSigningKey::Empty`] if the key is empty: an empty HMAC key lets anyone forge
    /// signatures, and it is almost always an unset configuration value.
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, InvalidSigningKey> {
        let key = key.into();
        if key.is_empty() {
            return Err(InvalidSigningKey::Empty);
        }
        // HMAC accepts keys of any length (longer keys are hashed, shorter ones padded), so
        // hmac's `new_from_slice` never returns `InvalidLength`; hmac's own `KeyInit::new`
        // relies on the same fact.
        let keyed = HmacSha256::new_from_slice(&key).expect("HMAC accepts keys of any length");
        Ok(Self { keyed })
    }

    /// Computes the lowercase hex signature Customer.io would send for `body` signed at
    /// `timestamp` (Unix seconds).
    ///
    /// Useful for tests and for replaying stored requests through a handler.
    ///
    /// ```
    /// use customerio_client::webhook::WebhookSigningKey;
    ///
    /// let key = WebhookSigningKey::new("key")?;
    /// let signature = key.sign(1_700_000_000, br#"{"event_id":"01"}"#);
    /// assert_eq!(signature.len(), 64);
    /// # Ok::<(), customerio_client::webhook::InvalidSigningKey>(())
    /// ```
    #[must_use]
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let mac = self.mac(timestamp.to_string().as_bytes(), body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// An HMAC over `v0:{timestamp}:{body}`, with `timestamp` taken byte for byte.
    fn mac(&self, timestamp: &[u8], body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(SIGNATURE_VERSION.as_bytes());
        mac.update(b":");
        mac.update(timestamp);
        mac.update(b":");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSigningKey(<redacted>)")
    }
}

impl fmt::Display for WebhookSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a signing key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSigningKey {
    /// The key was empty.
    #[error("the webhook signing key is empty")]
    Empty,
}

/// Why a reporting-webhook request failed the signature check.
///
/// No variant carries the key, the body or the signature itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A required header was absent.
    #[error("the `{header}` header is missing")]
    MissingHeader {
        /// Lowercase name of the missing header.
        header: &'static str,
    },
    /// A header that must appear once appeared several times.
    #[error("the `{header}` header appears more than once")]
    DuplicateHeader {
        /// Lowercase name of the repeated header.
        header: &'static str,
    },
    /// `X-CIO-Timestamp` is not a whole, non-negative number of Unix seconds.
    #[error("the `x-cio-timestamp` header is not a whole number of Unix seconds")]
    InvalidTimestamp,
    /// `X-CIO-Signature` is not 64 hexadecimal characters.
    #[error("the `x-cio-signature` header is not 64 hexadecimal characters")]
    MalformedSignature,
    /// The signature is well-formed but does not match the key, timestamp and body.
    #[error("the signature does not match the request body and timestamp")]
    Mismatch,
    /// The request is authentic but was signed longer ago than the tolerance allows.
    #[error("the request was signed {age_secs} s ago, beyond the {tolerance_secs} s tolerance")]
    TooOld {
        /// Seconds between the signing time and `now`.
        age_secs: u64,
        /// The configured tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The request is authentic but claims to be signed further in the future than the
    /// tolerance allows (a clock far off, or a forged-looking timestamp).
    #[error(
        "the request is signed {ahead_secs} s in the future, beyond the {tolerance_secs} s tolerance"
    )]
    TooNew {
        /// Seconds between `now` and the signing time.
        ahead_secs: u64,
        /// The configured tolerance, in seconds.
        tolerance_secs: u64,
    },
}

impl SignatureError {
    /// `true` for [`TooOld`](Self::TooOld) and [`TooNew`](Self::TooNew): the signature was
    /// valid, only the timestamp fell outside the window.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::TooOld { .. } | Self::TooNew { .. })
    }
}

/// Checks `X-CIO-Signature` and `X-CIO-Timestamp` on reporting-webhook requests.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use customerio_client::webhook::{SignatureVerifier, WebhookSigningKey};
///
/// let key = WebhookSigningKey::new("my-signing-key")?;
/// let body = br#"{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ"}"#;
/// // What Customer.io would send (normally read from the request headers).
/// let signature = key.sign(1_700_000_000, body);
///
/// let verifier = SignatureVerifier::new(key);
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_030);
/// let signed_at = verifier.verify(
///     Some(b"1700000000".as_slice()),
///     Some(signature.as_bytes()),
///     body,
///     now,
/// )?;
/// assert_eq!(signed_at, 1_700_000_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SignatureVerifier {
    key: WebhookSigningKey,
    tolerance: Option<Duration>,
}

impl fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("key", &self.key)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl SignatureVerifier {
    /// A verifier with the default tolerance of [`DEFAULT_TOLERANCE`].
    #[must_use]
    pub fn new(key: WebhookSigningKey) -> Self {
        Self {
            key,
            tolerance: Some(DEFAULT_TOLERANCE),
        }
    }

    /// Accept requests signed at most `tolerance` before or after `now`.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// Check the signature only, whatever the signing time. Replays are then caught only by
    /// de-duplicating on the event id.
    #[must_use]
    pub fn without_timestamp_check(mut self) -> Self {
        self.tolerance = None;
        self
    }

    /// The accepted distance from `now`, or `None` if the timestamp is not checked.
    #[must_use]
    pub fn tolerance(&self) -> Option<Duration> {
        self.tolerance
    }

    /// Verifies one request from its raw header values and body bytes.
    ///
    /// `timestamp` and `signature` are the raw values of `X-CIO-Timestamp` and
    /// `X-CIO-Signature` (`None` when the header was absent); `body` is the request body exactly
    /// as received; `now` is the current time. Returns the signing time in Unix seconds.
    ///
    /// # Errors
    ///
    /// A [`SignatureError`] naming the first problem found, in this order: missing header,
    /// malformed timestamp, malformed signature, signature mismatch, timestamp outside the
    /// tolerance.
    pub fn verify(
        &self,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<u64, SignatureError> {
        let timestamp = timestamp.ok_or(SignatureError::MissingHeader {
            header: TIMESTAMP_HEADER,
        })?;
        let signature = signature.ok_or(SignatureError::MissingHeader {
            header: SIGNATURE_HEADER,
        })?;
        let signed_at = parse_timestamp(timestamp)?;

        let mut tag = [0_u8; TAG_LEN];
        hex::decode_to_slice(signature, &mut tag)
            .map_err(|_| SignatureError::MalformedSignature)?;

        // `verify_slice` compares in constant time.
        self.key
            .mac(timestamp, body)
            .verify_slice(&tag)
            .map_err(|_| SignatureError::Mismatch)?;

        if let Some(tolerance) = self.tolerance {
            check_window(signed_at, now, tolerance)?;
        }
        Ok(signed_at)
    }

    /// [`verify`](Self::verify) with `now` read from the system clock.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub fn verify_now(
        &self,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        body: &[u8],
    ) -> Result<u64, SignatureError> {
        self.verify(timestamp, signature, body, SystemTime::now())
    }

    /// Verifies a request whose headers are in a [`HeaderMap`] (case-insensitive names).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use customerio_client::webhook::{SignatureVerifier, WebhookSigningKey};
    /// use reqwest::header::{HeaderMap, HeaderValue};
    ///
    /// let key = WebhookSigningKey::new("my-signing-key")?;
    /// let body = br#"{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ"}"#;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("X-CIO-Timestamp", HeaderValue::from_static("1700000000"));
    /// headers.insert("X-CIO-Signature", key.sign(1_700_000_000, body).parse()?);
    ///
    /// let verifier = SignatureVerifier::new(key);
    /// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// assert_eq!(verifier.verify_headers(&headers, body, now)?, 1_700_000_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify), plus [`SignatureError::DuplicateHeader`] when either header
    /// appears more than once.
    pub fn verify_headers(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<u64, SignatureError> {
        let timestamp = single_header(headers, TIMESTAMP_HEADER)?;
        let signature = single_header(headers, SIGNATURE_HEADER)?;
        self.verify(timestamp, signature, body, now)
    }

    /// [`verify_headers`](Self::verify_headers) with `now` read from the system clock.
    ///
    /// # Errors
    ///
    /// As [`verify_headers`](Self::verify_headers).
    pub fn verify_headers_now(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<u64, SignatureError> {
        self.verify_headers(headers, body, SystemTime::now())
    }
}

/// The one value of header `name`, `None` if absent, an error if repeated.
fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h [u8]>, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(SignatureError::DuplicateHeader { header: name });
    }
    Ok(first.map(|value| value.as_bytes()))
}

/// Parses ASCII digits into Unix seconds; anything else (sign, spaces, empty, overflow) fails.
fn parse_timestamp(raw: &[u8]) -> Result<u64, SignatureError> {
    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
        return Err(SignatureError::InvalidTimestamp);
    }
    raw.iter().try_fold(0_u64, |acc, digit| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(digit - b'0')))
            .ok_or(SignatureError::InvalidTimestamp)
    })
}

/// Checks that `signed_at` lies within `tolerance` of `now`, in either direction.
fn check_window(
    signed_at: u64,
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    // Whole seconds since the epoch, negative for clocks set before 1970. i128 holds every
    // u64 difference without overflow.
    let now_secs: i128 = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i128::from(since.as_secs()),
        Err(before) => -i128::from(before.duration().as_secs()),
    };
    let tolerance_secs = tolerance.as_secs();
    let age = now_secs - i128::from(signed_at);
    let saturate = |secs: i128| u64::try_from(secs).unwrap_or(u64::MAX);
    if age > i128::from(tolerance_secs) {
        Err(SignatureError::TooOld {
            age_secs: saturate(age),
            tolerance_secs,
        })
    } else if -age > i128::from(tolerance_secs) {
        Err(SignatureError::TooNew {
            ahead_secs: saturate(-age),
            tolerance_secs,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_parser_accepts_digits_only() {
        assert_eq!(parse_timestamp(b"0"), Ok(0));
        assert_eq!(parse_timestamp(b"1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_timestamp(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            b"".as_slice(),
            b"-1",
            b"+1",
            b" 1",
            b"1 ",
            b"1.5",
            b"1e9",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_timestamp(bad), Err(SignatureError::InvalidTimestamp));
        }
    }

    #[test]
    fn window_is_inclusive_and_symmetric() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let tol = Duration::from_secs(10);
        assert_eq!(check_window(990, now, tol), Ok(()));
        assert_eq!(check_window(1_010, now, tol), Ok(()));
        assert_eq!(
            check_window(989, now, tol),
            Err(SignatureError::TooOld {
                age_secs: 11,
                tolerance_secs: 10
            })
        );
        assert_eq!(
            check_window(1_011, now, tol),
            Err(SignatureError::TooNew {
                ahead_secs: 11,
                tolerance_secs: 10
            })
        );
        // Extremes neither overflow nor panic.
        assert!(check_window(u64::MAX, UNIX_EPOCH - Duration::from_secs(5), tol).is_err());
        assert_eq!(check_window(0, UNIX_EPOCH, Duration::MAX), Ok(()));
    }
}
