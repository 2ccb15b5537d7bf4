//! The [`Sink`] trait: how a batch of items becomes one request, and how the answer resolves
//! each item.

use std::error::Error as StdError;
use std::fmt::{self, Debug};
use std::future::Future;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use super::classify::{Classification, FailureKind, SendPhase};

/// The error a [`Sink`] returns when a whole request failed. It classifies itself so the
/// dispatcher can decide to retry, split or dead-letter.
///
/// `Display` must not contain customer identifiers or response bodies: it is stored in dead
/// letters and written to logs.
pub trait SinkError: StdError + Send + Sync + 'static {
    /// Kind, phase and server-given delay of this failure.
    fn classify(&self) -> Classification;

    /// The server's own explanation, when it gave one (e.g. the first parsed error message of a
    /// `400`). Kept in dead letters for operators; never logged.
    fn server_message(&self) -> Option<String> {
        None
    }
}

/// One item the server refused, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The item's position in the batch handed to [`Sink::send`] (0-based).
    pub index: usize,
    /// The server's reason, as it gave it (may be empty when it gave none).
    pub message: String,
    /// The field the server complained about, if it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What the server said about a request it answered with success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchResponse {
    /// Every item was accepted.
    Accepted,
    /// Some items were refused, every other one was accepted (Customer.io's `207`). Indexes
    /// outside the batch are ignored (and logged).
    Partial(Vec<Rejection>),
}

/// The size and count limits a sink's requests must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most items in one request.
    pub max_items: NonZeroUsize,
    /// Most bytes in one request body, wrapper and separators included.
    pub max_request_bytes: usize,
    /// Most bytes for one encoded item (e.g. Customer.io's 32 KB per v2 operation).
    pub max_item_bytes: usize,
    /// Bytes the request adds around the items, e.g. `{"batch":[` and `]}`.
    pub wrapper_bytes: usize,
    /// Bytes between two items, e.g. `,` in a JSON array.
    pub separator_bytes: usize,
    /// How long a partial batch may wait for more items, counted from its first item.
    pub linger: Duration,
}

impl BatchLimits {
    /// The size of a request holding `items` items whose encodings add up to `item_bytes`.
    pub fn request_bytes(&self, items: usize, item_bytes: usize) -> usize {
        self.wrapper_bytes
            .saturating_add(item_bytes)
            .saturating_add(self.separator_bytes.saturating_mul(items.saturating_sub(1)))
    }

    /// The largest single item these limits accept.
    pub fn largest_item(&self) -> usize {
        self.max_item_bytes
            .min(self.max_request_bytes.saturating_sub(self.wrapper_bytes))
    }
}

/// An item ready to send: the value and its encoding, computed once when it was submitted.
#[derive(Clone)]
pub struct Encoded<T> {
    /// The item.
    pub item: T,
    /// Its encoding, as the sink produced it in [`Sink::encode`].
    pub bytes: Bytes,
}

impl<T> Debug for Encoded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The item holds customer data; show only its size.
        f.debug_struct("Encoded")
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// An item could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("the item could not be encoded: {message}")]
pub struct EncodeError {
    message: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl EncodeError {
    /// An encoding failure described by `message` (which must not contain customer data).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A JSON serialisation failure.
    pub fn json(source: serde_json::Error) -> Self {
        Self {
            message: "JSON serialisation failed".to_owned(),
            source: Some(Box::new(source)),
        }
    }
}

/// Where a dispatcher sends its batches.
///
/// A sink says four things: how to group items (the [`Partition`](Sink::Partition): items of
/// different partitions never share a request), how big an item is (its
/// [`encode`](Sink::encode)d bytes, computed once at submit), what a request may hold
/// ([`limits`](Sink::limits)), and how to send one request and read the server's answer
/// ([`send`](Sink::send)). Retries, splitting, ordering, rate limiting and dead letters are the
/// dispatcher's job.
pub trait Sink: Send + Sync + 'static {
    /// One unit of delivery (a Customer.io operation, one person's segment membership, a
    /// Segment message). Serialisable so a dead letter can carry it.
    type Item: Serialize + Send + Sync + 'static;
    /// Items with equal partitions may share a request; others never do.
    type Partition: Clone + Eq + Hash + Debug + Send + Sync + 'static;
    /// The classified error of a failed request.
    type Error: SinkError;

    /// A short name for logs, metrics and dead letters, e.g. `customerio.v2.batch`.
    fn name(&self) -> &'static str;

    /// The limits every request must respect.
    fn limits(&self) -> BatchLimits;

    /// Whether the server recognises a replayed item and applies it once (Customer.io v2
    /// events carry ULID ids; identify is an upsert). Only then does the dispatcher retry an
    /// attempt that may already have reached the server.
    fn server_deduplicates(&self) -> bool;

    /// Whether the server de-duplicates the items of `partition` (default: the sink's
    /// [`server_deduplicates`](Sink::server_deduplicates)). A sink whose items differ in this
    /// puts the ones that must never be resent in a partition of their own.
    fn partition_deduplicates(&self, partition: &Self::Partition) -> bool {
        let _ = partition;
        self.server_deduplicates()
    }

    /// The partition this item belongs to.
    fn partition(&self, item: &Self::Item) -> Self::Partition;

    /// Encodes one item, as it will appear inside a request. Called once, at submit.
    fn encode(&self, item: &Self::Item) -> Result<Bytes, EncodeError>;

    /// Sends one request holding `items` (all of `partition`, within [`limits`](Sink::limits)).
    fn send(
        &self,
        partition: &Self::Partition,
        items: &[Encoded<Self::Item>],
    ) -> impl Future<Output = Result<BatchResponse, Self::Error>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> BatchLimits {
        BatchLimits {
            max_items: NonZeroUsize::MIN,
            max_request_bytes: 100,
            max_item_bytes: 40,
            wrapper_bytes: 12,
            separator_bytes: 1,
            linger: Duration::from_millis(10),
        }
    }

    #[test]
    fn request_bytes_counts_wrapper_and_separators() {
        let l = limits();
        assert_eq!(l.request_bytes(0, 0), 12);
        assert_eq!(l.request_bytes(1, 10), 22);
        assert_eq!(l.request_bytes(3, 30), 12 + 30 + 2);
    }

    #[test]
    fn largest_item_is_the_smaller_of_item_and_request_room() {
        let mut l = limits();
        assert_eq!(l.largest_item(), 40);
        l.max_request_bytes = 30;
        assert_eq!(l.largest_item(), 18);
        l.max_request_bytes = 5;
        assert_eq!(l.largest_item(), 0);
    }
}
