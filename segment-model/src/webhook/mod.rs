//! What a Segment Webhooks destination sends to your endpoint, and how to read it.
//!
//! A request from Segment's Webhooks destinations (classic, or Actions with or without
//! batching) is handled in two steps, both pure functions over the raw body bytes:
//!
//! 1. [`signature`]: check the `X-Signature` header against the body as received, before
//!    anything is parsed;
//! 2. [`body`]: decode the body into messages. It accepts the three shapes a body can have
//!    (one event, a bare array of events, a `{"batch": [...]}` envelope) and decodes item by
//!    item, so one bad event does not cost its neighbours; every failure names an index, a
//!    JSON path or a line and column, never a value.
//!
//! ```
//! use segment_model::webhook::WebhookBody;
//! use segment_model::webhook::signature::{SharedSecret, WebhookVerifier, sign};
//!
//! let secret = SharedSecret::new("s3cr3t");
//! let body = br#"[{"type":"track","userId":"u1","event":"Signed Up"},{"type":"bogus"}]"#;
//! // Webhooks (Actions) signs the first element of a batch.
//! let header = sign(&secret, br#"{"type":"track","userId":"u1","event":"Signed Up"}"#);
//!
//! WebhookVerifier::new(secret).verify(Some(header.as_bytes()), body)?;
//! let decoded = WebhookBody::from_slice(body)?;
//! assert_eq!(decoded.len(), 1);
//! assert_eq!(decoded.errors[0].index, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod body;
pub mod signature;

pub use body::{
    BodyItems, BodyShape, WebhookBody, WebhookBodyError, WebhookItemError, WebhookLimits,
};
pub use signature::{SharedSecret, SignatureError, WebhookVerifier};
