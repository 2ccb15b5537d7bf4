//! Reporting webhooks: Customer.io telling us what happened to people and messages.
//!
//! Customer.io POSTs one JSON event per request to the endpoint configured under *Reporting
//! Webhooks* (a message was delivered, opened, clicked, a person unsubscribed, …). This module
//! gives the two pieces a receiving handler needs, neither of which does any I/O:
//!
//! - [`signature`]: check `X-CIO-Signature` / `X-CIO-Timestamp` against the workspace's signing
//!   key ([`SignatureVerifier`], [`WebhookSigningKey`]);
//! - [`payload`]: decode the body into a typed, lossless [`ReportingEvent`].
//!
//! [`SignatureVerifier::verify_and_parse`] does both in the right order: the signature is
//! checked over the raw bytes first, and only an authentic body is decoded.
//!
//! # Answering Customer.io
//!
//! Customer.io waits at most 4 seconds for an answer, retries failures for up to 7 days, and
//! **holds back later events for the same webhook while one is failing**. So:
//!
//! - answer 2xx as soon as the event is stored or queued, and do the work afterwards;
//! - retries re-send the same `event_id`: de-duplicate on it;
//! - a body that is authentic but does not decode ([`WebhookError::Payload`]) will not decode on
//!   retry either: store it somewhere for a human and answer 2xx, or every later event waits
//!   behind it;
//! - a request that fails the signature check ([`WebhookError::Signature`]) is answered 401.
//!   A [stale](SignatureError::is_stale) request did carry a valid signature, though: if genuine
//!   Customer.io retries are being refused as too old, widen the window (see [`signature`]).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use customerio_client::webhook::{Metric, SignatureVerifier, WebhookError, WebhookSigningKey};
//! use reqwest::header::HeaderMap;
//!
//! fn handle(verifier: &SignatureVerifier, headers: &HeaderMap, body: &[u8]) -> u16 {
//!     let now = UNIX_EPOCH + Duration::from_secs(1_717_173_005); // SystemTime::now() in real code
//!     match verifier.verify_and_parse(headers, body, now) {
//!         Ok(event) => {
//!             // Queue the event, keyed by `event.event_id`, then acknowledge.
//!             assert_eq!(event.metric, Metric::Opened);
//!             200
//!         }
//!         // Dead-letter the body and acknowledge, so later events are not held back.
//!         Err(WebhookError::Payload(_)) => 200,
//!         // Signature failures, and anything added later: refuse.
//!         Err(_) => 401,
//!     }
//! }
//!
//! let key = WebhookSigningKey::new("my-signing-key")?;
//! let body = br#"{"event_id":"01J0ZQ4N7S8K3M2B9TVW5XY6AB","object_type":"email",
//!     "metric":"opened","timestamp":1717173000,"data":{"delivery_id":"RPIL"}}"#;
//! let mut headers = HeaderMap::new();
//! headers.insert("x-cio-timestamp", "1717173001".parse()?);
//! headers.insert("x-cio-signature", key.sign(1_717_173_001, body).parse()?);
//!
//! assert_eq!(handle(&SignatureVerifier::new(key), &headers, body), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::SystemTime;

use reqwest::header::HeaderMap;

pub mod payload;
pub mod signature;

pub use payload::{
    EventData, Field, IdValue, Identifiers, JsonType, MessageSource, Metric, ObjectType,
    PayloadError, PersonIdentifiers, PushRecipient, ReportingEvent,
};
pub use signature::{
    DEFAULT_TOLERANCE, InvalidSigningKey, SIGNATURE_HEADER, SignatureError, SignatureVerifier,
    TIMESTAMP_HEADER, WebhookSigningKey,
};

/// Why a reporting-webhook request was not accepted by
/// [`SignatureVerifier::verify_and_parse`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The request is not provably from Customer.io, or is outside the timestamp window.
    #[error("webhook signature check failed")]
    Signature(#[from] SignatureError),
    /// The request is authentic but its body could not be decoded.
    #[error("webhook payload could not be decoded")]
    Payload(#[from] PayloadError),
}

impl SignatureVerifier {
    /// Checks the signature headers against the raw `body`, then decodes it.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Signature`] from [`verify_headers`](Self::verify_headers), or, for an
    /// authentic request, [`WebhookError::Payload`] from [`ReportingEvent::from_slice`].
    pub fn verify_and_parse(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<ReportingEvent, WebhookError> {
        self.verify_headers(headers, body, now)?;
        Ok(ReportingEvent::from_slice(body)?)
    }
}
