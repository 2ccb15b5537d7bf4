//! The Segment sink: messages to the Tracking API's `POST /v1/batch` (engagement back-sync).

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use bytes::Bytes;
use segment_model::Message;
use segment_model::client::ClientError;
use segment_model::client::tracking::{
    DEFAULT_MAX_REQUEST_BYTES, MAX_MESSAGES_PER_REQUEST, TrackingClient,
};
use serde_json::{Map, Value};

use crate::dispatch::{
    BatchLimits, BatchResponse, Classification, EncodeError, Encoded, FailureKind, SendPhase, Sink,
    SinkError,
};

/// Linger used by the Segment sink unless the dispatcher config overrides it.
pub const SEGMENT_LINGER: Duration = Duration::from_millis(500);

/// The error of [`SegmentTrackingSink`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentSinkError {
    /// The request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The client packed the batch differently from the sink's limits (the sink's limits are
    /// larger than the client's). Nothing was sent.
    #[error("the tracking client would not send this batch as one request ({reason})")]
    Packing {
        /// What did not fit.
        reason: String,
    },
}

impl SinkError for SegmentSinkError {
    /// The client's failures go through the engine's one classifier (`From<&ClientError> for
    /// Classification`).
    fn classify(&self) -> Classification {
        match self {
            SegmentSinkError::Client(err) => Classification::from(err),
            // A packing mismatch splits: halves fit the client's limits eventually.
            SegmentSinkError::Packing { .. } => {
                Classification::new(FailureKind::Rejected, SendPhase::NotSent)
            }
        }
    }
}

/// Sends Segment messages through the Tracking API's batch endpoint.
///
/// One partition. Every message must carry a `messageId` (the back-sync derives a UUID v5 from
/// the Customer.io event id): Segment de-duplicates on it, which is what makes retrying a
/// possibly-sent batch safe, so the sink declares itself de-duplicated and
/// [`encode`](Sink::encode) refuses messages without one.
///
/// Limits follow the client's defaults: 475 000 bytes per request (Segment's SDK margin below
/// the documented 500 KB), 2 500 messages, and the client's per-message limit. Configure the
/// sink no larger than the client; a batch the client would split is split by the dispatcher.
pub struct SegmentTrackingSink {
    client: TrackingClient,
    max_messages: NonZeroUsize,
    max_request_bytes: usize,
    wrapper_bytes: usize,
}

impl fmt::Debug for SegmentTrackingSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentTrackingSink")
            .field("client", &self.client)
            .field("max_messages", &self.max_messages)
            .field("max_request_bytes", &self.max_request_bytes)
            .finish_non_exhaustive()
    }
}

impl SegmentTrackingSink {
    /// A sink sending through `client`.
    pub fn new(client: TrackingClient) -> Self {
        let wrapper_bytes = envelope_bytes(&client);
        Self {
            client,
            max_messages: NonZeroUsize::new(MAX_MESSAGES_PER_REQUEST).unwrap_or(NonZeroUsize::MIN),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            wrapper_bytes,
        }
    }

    /// At most `count` messages per request.
    pub fn with_max_messages(mut self, count: NonZeroUsize) -> Self {
        self.max_messages = count;
        self
    }

    /// At most `bytes` per request body (keep it at or below the client's).
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }
}

/// Measures the client's request envelope (`{"batch":[`, `],"sentAt":"…"}`) by preparing a
/// minimal message: the body length minus the message's own length.
fn envelope_bytes(client: &TrackingClient) -> usize {
    let mut probe = Map::new();
    probe.insert("type".to_owned(), Value::String("track".to_owned()));
    probe.insert("messageId".to_owned(), Value::String("probe".to_owned()));
    let prepared = client.prepare(vec![probe]);
    prepared
        .batches
        .first()
        .and_then(|batch| {
            let message = batch.messages().first()?;
            batch.body_len().checked_sub(message.json().len())
        })
        // The probe is tiny and always packs; if not, assume the largest envelope a client
        // could write (48 bytes today) with a margin.
        .unwrap_or(64)
}

impl Sink for SegmentTrackingSink {
    type Item = Message;
    type Partition = ();
    type Error = SegmentSinkError;

    fn name(&self) -> &'static str {
        "segment.tracking.batch"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_items: self.max_messages,
            max_request_bytes: self.max_request_bytes,
            max_item_bytes: self.client.message_limit(),
            wrapper_bytes: self.wrapper_bytes,
            separator_bytes: 1,
            linger: SEGMENT_LINGER,
        }
    }

    fn server_deduplicates(&self) -> bool {
        true
    }

    fn partition(&self, _: &Message) {}

    fn encode(&self, message: &Message) -> Result<Bytes, EncodeError> {
        if message.message_id().is_none_or(str::is_empty) {
            return Err(EncodeError::new(
                "the message has no messageId; retries need one to be de-duplicated",
            ));
        }
        serde_json::to_vec(message)
            .map(Bytes::from)
            .map_err(EncodeError::json)
    }

    async fn send(
        &self,
        _: &(),
        items: &[Encoded<Message>],
    ) -> Result<BatchResponse, SegmentSinkError> {
        // Encode once: the request is built from the bytes encoded and measured at submit
        // (`encode` refused every message without a messageId).
        let messages = items.iter().map(|e| {
            let id = e.item.message_id().unwrap_or_default().to_owned();
            (id, &e.bytes)
        });
        let batch =
            self.client
                .prepare_encoded(messages)
                .map_err(|error| SegmentSinkError::Packing {
                    reason: error.to_string(),
                })?;
        self.client.send(&batch).await?;
        Ok(BatchResponse::Accepted)
    }
}
