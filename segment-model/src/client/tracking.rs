//! Tracking API writer: `POST /v1/batch`.
//!
//! [`TrackingClient`] turns messages into batch requests in two steps:
//!
//! 1. [`TrackingClient::prepare`] gives every message a `messageId` (a UUID v4 when it has
//!    none), serialises each message **once**, hands back any message that cannot be sent on its
//!    own (too large, bad id) with a typed error, and packs the rest, in order, into
//!    [`PreparedBatch`]es that respect the byte and count limits (the whole request body is
//!    counted, envelope included).
//! 2. [`TrackingClient::send`] makes one attempt to deliver a prepared batch. The batch is not
//!    consumed: on a retryable [`ClientError`] send the **same** `PreparedBatch` again and every
//!    attempt carries the same `messageId`s, which Segment de-duplicates on (about 24 hours).
//!
//! [`TrackingClient::send_batch`] does both and reports one result per request.
//!
//! Requests use HTTP Basic auth with the write key as user name and an empty password, carry
//! `Content-Type: application/json` and this crate's `User-Agent`, and stamp the batch's
//! `sentAt` at the moment of each attempt.
//!
//! ```no_run
//! use segment_model::client::Region;
//! use segment_model::client::tracking::{TrackingClient, WriteKey};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = TrackingClient::builder(WriteKey::new("my-write-key"))
//!     .region(Region::Eu)
//!     .build()?;
//! let message = segment_model::Message::track("Report Exported")
//!     .user_id("usr_1")
//!     .build()?;
//! let report = client.send_batch(vec![message]).await;
//! for request in &report.requests {
//!     if let Err(err) = &request.result {
//!         if err.is_retryable() {
//!             // Later: client.send(&request.batch).await, with the same message ids.
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use url::Url;

use super::{Api, BaseUrl, ClientError, DEFAULT_TIMEOUT, Region, http_client, status_error};
use crate::message::Message;

/// The write key type used by the client (the crate's [`WriteKey`]), re-exported
/// here for convenience.
pub use crate::message::WriteKey;

/// Path of the batch endpoint, relative to the base URL.
pub const BATCH_PATH: &str = "v1/batch";

/// Documented maximum size of a batch request body (500 KB; read as 500,000 bytes, the stricter
/// reading).
pub const MAX_REQUEST_BYTES: usize = 500_000;

/// Documented maximum size of one message inside a batch (32 KB; read as 32,000 bytes, the
/// stricter reading).
pub const MAX_MESSAGE_BYTES: usize = 32_000;

/// Segment's recommended ceiling on Tracking API requests per second for one workspace; beyond
/// it requests may be queued or answered `429`. The client does not enforce it: a host that
/// sends a lot (e.g. the engagement back-sync) puts a rate limiter in front.
pub const REQUESTS_PER_SECOND_RECOMMENDED: u32 = 1_000;

/// Documented maximum number of messages per batch. Beyond it Segment answers `200` but drops
/// the events, so this limit is enforced here.
pub const MAX_MESSAGES_PER_REQUEST: usize = 2_500;

/// Default cap on a request body: a safety margin below [`MAX_REQUEST_BYTES`], the same margin
/// Segment's Python SDK uses.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 475_000;

/// Maximum length of a `messageId`, in characters.
pub const MAX_MESSAGE_ID_CHARS: usize = 100;

const BODY_PREFIX: &str = r#"{"batch":["#;
const SENT_AT_PREFIX: &str = r#"],"sentAt":""#;
const BODY_SUFFIX: &str = r#""}"#;
/// Length of a `sentAt` value as this client writes it: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
const SENT_AT_LEN: usize = 24;
/// Bytes of a request body that are not messages or the commas between them.
const ENVELOPE_BYTES: usize =
    BODY_PREFIX.len() + SENT_AT_PREFIX.len() + SENT_AT_LEN + BODY_SUFFIX.len();

/// The state of a message's `messageId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageIdSlot<'a> {
    /// No `messageId` (or an empty one): the client fills one.
    Absent,
    /// A `messageId` string.
    Present(&'a str),
    /// A `messageId` of the wrong JSON type; the message is handed back.
    Invalid,
}

/// A message the [`TrackingClient`] can send: it serialises to one batch item (with its `type`)
/// and exposes its `messageId`.
pub trait TrackingMessage: Serialize {
    /// The message's current `messageId`.
    fn message_id(&self) -> MessageIdSlot<'_>;
    /// Sets the `messageId`.
    fn set_message_id(&mut self, id: String);
}

/// Typed messages: `messageId` lives in the shared envelope. An empty `messageId` counts as
/// absent.
impl TrackingMessage for Message {
    fn message_id(&self) -> MessageIdSlot<'_> {
        match self.common().message_id.as_deref() {
            None | Some("") => MessageIdSlot::Absent,
            Some(id) => MessageIdSlot::Present(id),
        }
    }

    fn set_message_id(&mut self, id: String) {
        self.common_mut().message_id = Some(id);
    }
}

/// Raw JSON objects, for callers that forward payloads without decoding them. The object must be
/// a complete batch item (including `type`); only `messageId` is looked at.
impl TrackingMessage for Map<String, Value> {
    fn message_id(&self) -> MessageIdSlot<'_> {
        match self.get("messageId") {
            None | Some(Value::Null) => MessageIdSlot::Absent,
            Some(Value::String(id)) if id.is_empty() => MessageIdSlot::Absent,
            Some(Value::String(id)) => MessageIdSlot::Present(id),
            Some(_) => MessageIdSlot::Invalid,
        }
    }

    fn set_message_id(&mut self, id: String) {
        self.insert("messageId".to_owned(), Value::String(id));
    }
}

/// Why one message was handed back instead of being packed into a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The serialised message is larger than a request may carry for one message.
    #[error("the message at index {index} is {size} bytes serialised; the limit is {limit}")]
    TooLarge {
        /// Position in the input.
        index: usize,
        /// Its serialised size in bytes.
        size: usize,
        /// The per-message limit in force.
        limit: usize,
    },
    /// The `messageId` is longer than [`MAX_MESSAGE_ID_CHARS`].
    #[error(
        "the messageId of the message at index {index} is {chars} characters; the limit is {MAX_MESSAGE_ID_CHARS}"
    )]
    MessageIdTooLong {
        /// Position in the input.
        index: usize,
        /// Its length in characters.
        chars: usize,
    },
    /// The `messageId` is not a string.
    #[error("the messageId of the message at index {index} is not a string")]
    MessageIdNotString {
        /// Position in the input.
        index: usize,
    },
    /// The message could not be serialised (or did not serialise to a JSON object).
    #[error("the message at index {index} could not be serialised: {reason}")]
    Serialize {
        /// Position in the input.
        index: usize,
        /// What went wrong.
        reason: String,
    },
    /// Messages serialised elsewhere do not fit one request
    /// ([`TrackingClient::prepare_encoded`]); the index is the first that does not fit.
    #[error("the messages from index {index} on do not fit one request ({limit})")]
    DoesNotFit {
        /// The first message that does not fit.
        index: usize,
        /// Which limit: the message count or the request size.
        limit: &'static str,
    },
}

impl MessageError {
    /// Position of the message in the input.
    pub fn index(&self) -> usize {
        match self {
            Self::TooLarge { index, .. }
            | Self::MessageIdTooLong { index, .. }
            | Self::MessageIdNotString { index }
            | Self::Serialize { index, .. }
            | Self::DoesNotFit { index, .. } => *index,
        }
    }
}

/// A message handed back by [`TrackingClient::prepare`], with the reason.
#[derive(Debug)]
pub struct Rejected<M> {
    /// The message, unchanged except for a `messageId` the client may have filled.
    pub message: M,
    /// Why it was not packed.
    pub error: MessageError,
}

/// One serialised message inside a [`PreparedBatch`].
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    index: usize,
    message_id: String,
    json: Box<RawValue>,
}

impl PreparedMessage {
    /// Position of the message in the input given to [`TrackingClient::prepare`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// The message's `messageId` (the caller's, or the one the client filled).
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The exact JSON text sent for this message.
    pub fn json(&self) -> &str {
        self.json.get()
    }
}

/// A batch ready to send: messages already serialised, ids fixed.
///
/// Send it with [`TrackingClient::send`] as many times as retries need; every attempt sends the
/// same messages with the same ids (only `sentAt` changes).
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    messages: Vec<PreparedMessage>,
    /// Sum of the messages' sizes plus separating commas.
    items_len: usize,
}

impl PreparedBatch {
    /// The messages, in input order.
    pub fn messages(&self) -> &[PreparedMessage] {
        &self.messages
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the batch is empty (never true for batches made by [`TrackingClient::prepare`]).
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Size in bytes of the request body this batch produces (every attempt has this size).
    pub fn body_len(&self) -> usize {
        ENVELOPE_BYTES + self.items_len
    }

    fn body(&self, sent_at: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.body_len());
        body.extend_from_slice(BODY_PREFIX.as_bytes());
        for (i, m) in self.messages.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(m.json.get().as_bytes());
        }
        body.extend_from_slice(SENT_AT_PREFIX.as_bytes());
        body.extend_from_slice(sent_at.as_bytes());
        body.extend_from_slice(BODY_SUFFIX.as_bytes());
        body
    }
}

/// The result of [`TrackingClient::prepare`].
#[derive(Debug)]
pub struct Prepared<M> {
    /// Batches to send, in input order.
    pub batches: Vec<PreparedBatch>,
    /// Messages handed back, in input order.
    pub rejected: Vec<Rejected<M>>,
}

/// The outcome of one request made by [`TrackingClient::send_batch`].
#[derive(Debug)]
pub struct RequestResult {
    /// The batch that was sent; resend it to retry with the same message ids.
    pub batch: PreparedBatch,
    /// The result of the single attempt.
    pub result: Result<(), ClientError>,
}

/// What [`TrackingClient::send_batch`] did.
#[derive(Debug)]
pub struct SendReport<M> {
    /// One entry per request, in order.
    pub requests: Vec<RequestResult>,
    /// Messages that were not sent because they cannot be, with the reason.
    pub rejected: Vec<Rejected<M>>,
}

/// An invalid [`TrackingClientBuilder`] setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackingConfigError {
    /// The request byte cap is too small for one message or above [`MAX_REQUEST_BYTES`].
    #[error("max_request_bytes must be between {min} and {MAX_REQUEST_BYTES}, got {got}")]
    MaxRequestBytes {
        /// The smallest accepted value.
        min: usize,
        /// The value given.
        got: usize,
    },
    /// The message-count cap is zero or above [`MAX_MESSAGES_PER_REQUEST`].
    #[error("max_messages_per_request must be between 1 and {MAX_MESSAGES_PER_REQUEST}, got {0}")]
    MaxMessages(usize),
    /// The per-message byte cap is zero or above [`MAX_MESSAGE_BYTES`].
    #[error("max_message_bytes must be between 1 and {MAX_MESSAGE_BYTES}, got {0}")]
    MaxMessageBytes(usize),
    /// The timeout is zero.
    #[error("the per-attempt timeout must be greater than zero")]
    ZeroTimeout,
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    Http(#[source] reqwest::Error),
}

/// Builds a [`TrackingClient`]. Its `Debug` output redacts the write key.
pub struct TrackingClientBuilder {
    write_key: WriteKey,
    base_url: BaseUrl,
    timeout: Duration,
    max_request_bytes: usize,
    max_messages: usize,
    max_message_bytes: usize,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for TrackingClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackingClientBuilder")
            .field("write_key", &self.write_key)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_messages", &self.max_messages)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("custom_http_client", &self.http.is_some())
            .finish()
    }
}

impl TrackingClientBuilder {
    /// Sends to the Tracking API host of `region` (replaces any base URL set before).
    #[must_use]
    pub fn region(mut self, region: Region) -> Self {
        self.base_url = region.tracking_base_url();
        self
    }

    /// Sends to `base_url` instead of a region's host (tests, proxies). The client appends
    /// [`BATCH_PATH`].
    #[must_use]
    pub fn base_url(mut self, base_url: BaseUrl) -> Self {
        self.base_url = base_url;
        self
    }

    /// Per-attempt timeout (connect to last response byte). Default [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Cap on a request body in bytes, envelope included. Default
    /// [`DEFAULT_MAX_REQUEST_BYTES`], at most [`MAX_REQUEST_BYTES`].
    #[must_use]
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Cap on messages per request. Default and maximum [`MAX_MESSAGES_PER_REQUEST`].
    #[must_use]
    pub fn max_messages_per_request(mut self, count: usize) -> Self {
        self.max_messages = count;
        self
    }

    /// Cap on one serialised message in bytes. Default and maximum [`MAX_MESSAGE_BYTES`].
    #[must_use]
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Uses `client` (for example one shared with other code) instead of building one. The
    /// timeout and `User-Agent` are still set on every request. Note that a client that follows
    /// redirects may carry the request to another host.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    ///
    /// [`TrackingConfigError`] for a limit outside the documented range, a zero timeout, or an
    /// HTTP client that cannot be built.
    pub fn build(self) -> Result<TrackingClient, TrackingConfigError> {
        if self.max_message_bytes == 0 || self.max_message_bytes > MAX_MESSAGE_BYTES {
            return Err(TrackingConfigError::MaxMessageBytes(self.max_message_bytes));
        }
        if self.max_messages == 0 || self.max_messages > MAX_MESSAGES_PER_REQUEST {
            return Err(TrackingConfigError::MaxMessages(self.max_messages));
        }
        // The smallest useful request holds one minimal message (`{}`).
        let min = ENVELOPE_BYTES + 2;
        if self.max_request_bytes < min || self.max_request_bytes > MAX_REQUEST_BYTES {
            return Err(TrackingConfigError::MaxRequestBytes {
                min,
                got: self.max_request_bytes,
            });
        }
        if self.timeout.is_zero() {
            return Err(TrackingConfigError::ZeroTimeout);
        }
        let http = match self.http {
            Some(http) => http,
            None => http_client().map_err(TrackingConfigError::Http)?,
        };
        Ok(TrackingClient {
            batch_url: self.base_url.join_encoded(BATCH_PATH),
            write_key: self.write_key,
            timeout: self.timeout,
            max_request_bytes: self.max_request_bytes,
            max_messages: self.max_messages,
            max_message_bytes: self.max_message_bytes,
            http,
        })
    }
}

/// The Segment Tracking API batch writer. See the [module docs](self).
///
/// Cheap to clone (the HTTP connection pool is shared). Its `Debug` output redacts the write key.
#[derive(Clone)]
pub struct TrackingClient {
    http: reqwest::Client,
    batch_url: Url,
    write_key: WriteKey,
    timeout: Duration,
    max_request_bytes: usize,
    max_messages: usize,
    max_message_bytes: usize,
}

impl fmt::Debug for TrackingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackingClient")
            .field("batch_url", &self.batch_url.as_str())
            .field("write_key", &self.write_key)
            .field("timeout", &self.timeout)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_messages", &self.max_messages)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

impl TrackingClient {
    /// Starts a builder for the US region with the default limits and timeout.
    pub fn builder(write_key: WriteKey) -> TrackingClientBuilder {
        TrackingClientBuilder {
            write_key,
            base_url: Region::Us.tracking_base_url(),
            timeout: DEFAULT_TIMEOUT,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_messages: MAX_MESSAGES_PER_REQUEST,
            max_message_bytes: MAX_MESSAGE_BYTES,
            http: None,
        }
    }

    /// The full URL requests are posted to.
    pub fn batch_url(&self) -> &Url {
        &self.batch_url
    }

    /// The largest serialised message this client packs: the per-message cap, or less when a
    /// small request cap leaves less room.
    pub fn message_limit(&self) -> usize {
        self.max_message_bytes
            .min(self.max_request_bytes.saturating_sub(ENVELOPE_BYTES))
    }

    /// One request's worth of messages that were serialised elsewhere (a delivery engine that
    /// encoded, measured and batched them itself), each with its `messageId`, taken as they
    /// are: nothing is serialised again. Each must be one JSON object.
    ///
    /// # Errors
    ///
    /// The first [`MessageError`]: a messageId over [`MAX_MESSAGE_ID_CHARS`], a message over
    /// [`message_limit`](Self::message_limit) or not a JSON object, or more messages or bytes
    /// than one request of this client carries ([`MessageError::DoesNotFit`]).
    pub fn prepare_encoded<B: AsRef<[u8]>>(
        &self,
        messages: impl IntoIterator<Item = (String, B)>,
    ) -> Result<PreparedBatch, MessageError> {
        let limit = self.message_limit();
        let mut batch = PreparedBatch {
            messages: Vec::new(),
            items_len: 0,
        };
        for (index, (message_id, bytes)) in messages.into_iter().enumerate() {
            let bytes = bytes.as_ref();
            let chars = message_id.chars().count();
            if chars > MAX_MESSAGE_ID_CHARS {
                return Err(MessageError::MessageIdTooLong { index, chars });
            }
            let size = bytes.len();
            if size > limit {
                return Err(MessageError::TooLarge { index, size, limit });
            }
            let separator = usize::from(index > 0);
            if index >= self.max_messages {
                return Err(MessageError::DoesNotFit {
                    index,
                    limit: "message count",
                });
            }
            if ENVELOPE_BYTES + batch.items_len + separator + size > self.max_request_bytes {
                return Err(MessageError::DoesNotFit {
                    index,
                    limit: "request size",
                });
            }
            let json = std::str::from_utf8(bytes)
                .ok()
                .map(str::to_owned)
                .filter(|text| text.trim_start().starts_with('{'))
                .and_then(|text| RawValue::from_string(text).ok())
                .ok_or_else(|| MessageError::Serialize {
                    index,
                    reason: "not one JSON object".to_owned(),
                })?;
            batch.items_len += separator + size;
            batch.messages.push(PreparedMessage {
                index,
                message_id,
                json,
            });
        }
        Ok(batch)
    }

    /// Fixes message ids, serialises each message once and packs the messages, in order, into
    /// batches within the configured limits. Messages that cannot be sent are handed back in
    /// [`Prepared::rejected`]; nothing is dropped.
    pub fn prepare<M: TrackingMessage>(&self, messages: Vec<M>) -> Prepared<M> {
        let limit = self.message_limit();
        let mut batches = Vec::new();
        let mut rejected = Vec::new();
        let mut current = PreparedBatch {
            messages: Vec::new(),
            items_len: 0,
        };
        for (index, mut message) in messages.into_iter().enumerate() {
            let message_id = match message.message_id() {
                MessageIdSlot::Present(id) => id.to_owned(),
                MessageIdSlot::Absent => {
                    let id = uuid::Uuid::new_v4().to_string();
                    message.set_message_id(id.clone());
                    id
                }
                MessageIdSlot::Invalid => {
                    rejected.push(Rejected {
                        message,
                        error: MessageError::MessageIdNotString { index },
                    });
                    continue;
                }
            };
            let chars = message_id.chars().count();
            if chars > MAX_MESSAGE_ID_CHARS {
                rejected.push(Rejected {
                    message,
                    error: MessageError::MessageIdTooLong { index, chars },
                });
                continue;
            }
            let json = match serialize_object(&message) {
                Ok(json) => json,
                Err(reason) => {
                    rejected.push(Rejected {
                        message,
                        error: MessageError::Serialize { index, reason },
                    });
                    continue;
                }
            };
            let size = json.get().len();
            if size > limit {
                rejected.push(Rejected {
                    message,
                    error: MessageError::TooLarge { index, size, limit },
                });
                continue;
            }
            let separator = usize::from(!current.messages.is_empty());
            let fits = current.messages.len() < self.max_messages
                && ENVELOPE_BYTES + current.items_len + separator + size <= self.max_request_bytes;
            if !fits {
                batches.push(std::mem::replace(
                    &mut current,
                    PreparedBatch {
                        messages: Vec::new(),
                        items_len: 0,
                    },
                ));
            }
            let separator = usize::from(!current.messages.is_empty());
            current.items_len += separator + size;
            current.messages.push(PreparedMessage {
                index,
                message_id,
                json,
            });
        }
        if !current.messages.is_empty() {
            batches.push(current);
        }
        Prepared { batches, rejected }
    }

    /// Makes one attempt to deliver `batch`.
    ///
    /// # Errors
    ///
    /// A [`ClientError`]; see [`ClientError::is_retryable`] and [`ClientError::retry_after`].
    /// Retrying means calling `send` again with the same batch.
    pub async fn send(&self, batch: &PreparedBatch) -> Result<(), ClientError> {
        let sent_at = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let body = batch.body(&sent_at);
        tracing::debug!(
            messages = batch.len(),
            bytes = body.len(),
            "Sending a batch to the Segment Tracking API."
        );
        let response = self
            .http
            .post(self.batch_url.clone())
            .basic_auth(self.write_key.expose(), Some(""))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, super::USER_AGENT)
            .timeout(self.timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::transport(Api::Tracking, e))?;
        if response.status().is_success() {
            // Read the (tiny) body so the connection can be reused; its content is not needed.
            let _ = response.bytes().await;
            Ok(())
        } else {
            Err(status_error(Api::Tracking, response).await)
        }
    }

    /// Prepares `messages` and sends every batch once, one request at a time.
    ///
    /// The report lists each request with its batch (resend it to retry) and its result, and
    /// every message that was handed back. Nothing is dropped: a failed request's batch is in the
    /// report.
    pub async fn send_batch<M: TrackingMessage>(&self, messages: Vec<M>) -> SendReport<M> {
        let Prepared { batches, rejected } = self.prepare(messages);
        let mut requests = Vec::with_capacity(batches.len());
        for batch in batches {
            let result = self.send(&batch).await;
            requests.push(RequestResult { batch, result });
        }
        SendReport { requests, rejected }
    }
}

/// Serialises a message once, checking it is a JSON object.
fn serialize_object<M: Serialize>(message: &M) -> Result<Box<RawValue>, String> {
    let json = serde_json::value::to_raw_value(message).map_err(|e| e.to_string())?;
    if json.get().starts_with('{') {
        Ok(json)
    } else {
        Err("a batch item must serialise to a JSON object".to_owned())
    }
}
