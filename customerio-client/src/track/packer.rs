//! Packs Track v2 operations into `/api/v2/batch` requests that respect the documented size
//! limits.
//!
//! Customer.io limits every operation to [`MAX_OPERATION_BYTES`] (32 000) serialised bytes
//! and every batch request to [`MAX_BATCH_REQUEST_BYTES`] (500 000) bytes. The packer counts
//! the **whole** body it will send, `{"batch":[` + the operations separated by `,` + `]}`:
//!
//! ```text
//! body bytes = 12 + sum(operation bytes) + (operations - 1)
//! ```
//!
//! Each operation is serialised exactly once, when it is pushed; the bytes are kept and the
//! request body is assembled from them, so what was measured is what is sent. There is no
//! documented cap on the number of operations per batch; [`PackerLimits::with_max_operations`]
//! sets one (Segment's destination uses 50 by default, 100 at most).
//!
//! Nothing is dropped: an operation too large to ever fit is handed back inside a
//! [`Rejected`], together with the caller's tag.
//!
//! # Tags
//!
//! Every operation travels with a caller-chosen tag `T` (an index, a completion handle, …).
//! A [`PackedBatch`] keeps the tags in request order, so the `batch_index` of a `207` answer
//! maps straight back to a tag ([`PackedBatch::partition`]).
//!
//! ```
//! use customerio_client::Identifier;
//! use customerio_client::track::packer::{BatchPacker, PackerLimits};
//! use customerio_client::track::v2::{Operation, PersonEvent};
//!
//! let mut packer = BatchPacker::new(PackerLimits::default().with_max_operations(2));
//! let mut batches = Vec::new();
//! for n in 0..5 {
//!     let op = Operation::from(PersonEvent::new(Identifier::id(format!("user-{n}")), "ping")?);
//!     if let Some(full) = packer.push(op, n)? {
//!         batches.push(full);
//!     }
//! }
//! batches.extend(packer.flush());
//! let tags: Vec<Vec<i32>> = batches.into_iter().map(|b| b.into_tags()).collect();
//! assert_eq!(tags, vec![vec![0, 1], vec![2, 3], vec![4]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::num::NonZeroUsize;

use bytes::Bytes;

use crate::error::ApiError;
use crate::limits::{MAX_BATCH_REQUEST_BYTES, MAX_OPERATION_BYTES};
use crate::track::v2::{BatchOutcome, Operation};

const PREFIX: &[u8] = br#"{"batch":["#;
const SUFFIX: &[u8] = b"]}";
/// Bytes of the `{"batch":[` … `]}` wrapper around the operations.
pub const BATCH_WRAPPER_BYTES: usize = PREFIX.len() + SUFFIX.len();

/// The limits a [`BatchPacker`] packs to.
///
/// Defaults to the documented limits and no count cap. Limits can only be lowered: values
/// above the documented ones are clamped down to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackerLimits {
    max_operation_bytes: usize,
    max_request_bytes: usize,
    max_operations: Option<NonZeroUsize>,
}

impl Default for PackerLimits {
    fn default() -> Self {
        Self {
            max_operation_bytes: MAX_OPERATION_BYTES,
            max_request_bytes: MAX_BATCH_REQUEST_BYTES,
            max_operations: None,
        }
    }
}

impl PackerLimits {
    /// At most `count` operations per batch (a `count` of 0 is taken as 1).
    pub fn with_max_operations(mut self, count: usize) -> Self {
        self.max_operations = Some(NonZeroUsize::new(count).unwrap_or(NonZeroUsize::MIN));
        self
    }

    /// At most `bytes` per request body, wrapper included (clamped to
    /// [`MAX_BATCH_REQUEST_BYTES`], and to at least the wrapper plus one byte).
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes.clamp(BATCH_WRAPPER_BYTES + 1, MAX_BATCH_REQUEST_BYTES);
        self
    }

    /// At most `bytes` per serialised operation (clamped to [`MAX_OPERATION_BYTES`], and to at
    /// least 1).
    pub fn with_max_operation_bytes(mut self, bytes: usize) -> Self {
        self.max_operation_bytes = bytes.clamp(1, MAX_OPERATION_BYTES);
        self
    }

    /// The largest operation accepted: the per-operation limit, or less if a lowered request
    /// limit could not hold it alone.
    pub fn max_operation_bytes(&self) -> usize {
        self.max_operation_bytes
            .min(self.max_request_bytes - BATCH_WRAPPER_BYTES)
    }

    /// The largest request body.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// The count cap, if any.
    pub fn max_operations(&self) -> Option<usize> {
        self.max_operations.map(NonZeroUsize::get)
    }
}

/// Why an operation was handed back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The serialised operation is larger than the per-operation limit.
    #[error("operation is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// Its serialised size.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The operation could not be serialised.
    #[error("operation could not be serialised")]
    Unserialisable(#[source] serde_json::Error),
}

/// An operation the packer could not place, handed back with its tag (never dropped).
#[derive(Debug, thiserror::Error)]
#[error("the packer handed the operation back")]
pub struct Rejected<T> {
    /// The operation, as it was pushed.
    pub operation: Operation,
    /// The caller's tag.
    pub tag: T,
    /// Why it was refused.
    #[source]
    pub reason: RejectReason,
}

/// One operation inside a [`PackedBatch`]: the caller's tag and the operation's JSON bytes.
pub struct PackedItem<T> {
    tag: T,
    bytes: Bytes,
}

impl<T> PackedItem<T> {
    /// The caller's tag.
    pub fn tag(&self) -> &T {
        &self.tag
    }

    /// The operation's JSON bytes, exactly as they appear in the request body.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Decodes the operation again (for a dead-letter record or a fix-and-resend).
    pub fn decode(&self) -> Result<Operation, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    /// The tag, dropping the bytes.
    pub fn into_tag(self) -> T {
        self.tag
    }
}

impl<T: fmt::Debug> fmt::Debug for PackedItem<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes carry personal data; show only their size.
        f.debug_struct("PackedItem")
            .field("tag", &self.tag)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// A ready-to-send `/api/v2/batch` request: the assembled body and the tags of its operations
/// in order. Never empty.
pub struct PackedBatch<T> {
    body: Bytes,
    items: Vec<PackedItem<T>>,
}

impl<T> PackedBatch<T> {
    /// Assembles the body from already-serialised operations.
    fn assemble(parts: Vec<(T, Bytes)>, body_len: usize) -> Self {
        let mut body = Vec::with_capacity(body_len);
        body.extend_from_slice(PREFIX);
        let mut ranges = Vec::with_capacity(parts.len());
        let mut tags = Vec::with_capacity(parts.len());
        for (index, (tag, bytes)) in parts.into_iter().enumerate() {
            if index > 0 {
                body.push(b',');
            }
            let start = body.len();
            body.extend_from_slice(&bytes);
            ranges.push(start..body.len());
            tags.push(tag);
        }
        body.extend_from_slice(SUFFIX);
        debug_assert_eq!(body.len(), body_len);
        let body = Bytes::from(body);
        let items = tags
            .into_iter()
            .zip(ranges)
            .map(|(tag, range)| PackedItem {
                tag,
                // Cheap: a view into the shared body, no copy.
                bytes: body.slice(range),
            })
            .collect();
        Self { body, items }
    }

    /// A batch of operations serialised elsewhere (a delivery engine that encoded and measured
    /// each once, and batched them itself), each paired with its `tag`, assembled without
    /// serialising anything again. The bytes must each be one JSON operation.
    ///
    /// # Errors
    ///
    /// [`Error`](crate::Error) of kind [`Invalid`](crate::ErrorKind::Invalid), naming the index, when an
    /// operation is over [`MAX_OPERATION_BYTES`] or the body would be over
    /// [`MAX_BATCH_REQUEST_BYTES`]; nothing is sent for such a set.
    pub fn from_encoded(parts: Vec<(T, Bytes)>) -> Result<Self, crate::Error> {
        const OP: &str = "track.v2.batch";
        let mut body_len = BATCH_WRAPPER_BYTES + parts.len().saturating_sub(1);
        for (index, (_, bytes)) in parts.iter().enumerate() {
            if bytes.len() > MAX_OPERATION_BYTES {
                return Err(crate::Error::invalid(
                    OP,
                    format!(
                        "operation {index} is {} bytes, over the {MAX_OPERATION_BYTES}-byte limit",
                        bytes.len()
                    ),
                ));
            }
            body_len += bytes.len();
        }
        if body_len > MAX_BATCH_REQUEST_BYTES {
            return Err(crate::Error::invalid(
                OP,
                format!(
                    "the batch is {body_len} bytes, over the {MAX_BATCH_REQUEST_BYTES}-byte limit"
                ),
            ));
        }
        Ok(Self::assemble(parts, body_len))
    }

    /// The request body, `{"batch":[…]}`.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Always `false`: the packer never makes an empty batch.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The operations in request order; `items()[i]` is `batch_index` `i`.
    pub fn items(&self) -> &[PackedItem<T>] {
        &self.items
    }

    /// The tags in request order.
    pub fn tags(&self) -> impl Iterator<Item = &T> + '_ {
        self.items.iter().map(PackedItem::tag)
    }

    /// The items, in request order.
    pub fn into_items(self) -> Vec<PackedItem<T>> {
        self.items
    }

    /// The tags, in request order.
    pub fn into_tags(self) -> Vec<T> {
        self.items.into_iter().map(PackedItem::into_tag).collect()
    }

    /// Splits the batch by a response: the tags of accepted operations, and the refused items
    /// with the errors the server gave for each. Every item lands in exactly one of the two.
    ///
    /// When [`BatchOutcome::is_ambiguous`] is true the response did not say which operations
    /// failed; this method then still reports only the ones it named, so check that first.
    pub fn partition(self, outcome: &BatchOutcome) -> Partition<T> {
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        for (index, item) in self.items.into_iter().enumerate() {
            let errors: Vec<ApiError> = outcome.errors_for(index).cloned().collect();
            if errors.is_empty() {
                accepted.push(item.tag);
            } else {
                rejected.push((item, errors));
            }
        }
        Partition { accepted, rejected }
    }
}

impl<T: fmt::Debug> fmt::Debug for PackedBatch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedBatch")
            .field("body_bytes", &self.body.len())
            .field("items", &self.items)
            .finish()
    }
}

/// A batch split by its response ([`PackedBatch::partition`]).
#[derive(Debug)]
pub struct Partition<T> {
    /// Tags of the operations the server accepted, in request order.
    pub accepted: Vec<T>,
    /// Refused operations with their errors, in request order.
    pub rejected: Vec<(PackedItem<T>, Vec<ApiError>)>,
}

/// Packs operations into [`PackedBatch`]es within [`PackerLimits`].
///
/// Push operations one at a time; a push returns a full batch when the new operation does not
/// fit in the open one (which then starts a new batch) or when the open batch reaches the
/// count cap. [`flush`](Self::flush) returns what is left. Order is preserved across batches.
pub struct BatchPacker<T> {
    limits: PackerLimits,
    open: Vec<(T, Bytes)>,
    /// Body size if the open batch were sent now; 0 when it is empty.
    open_bytes: usize,
}

impl<T> BatchPacker<T> {
    /// A packer with these limits.
    pub fn new(limits: PackerLimits) -> Self {
        Self {
            limits,
            open: Vec::new(),
            open_bytes: 0,
        }
    }

    /// The limits in use.
    pub fn limits(&self) -> PackerLimits {
        self.limits
    }

    /// Operations waiting in the open batch.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no operation is waiting.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The body size of the open batch if it were flushed now (0 when empty).
    pub fn pending_bytes(&self) -> usize {
        self.open_bytes
    }

    /// Serialises `operation` once and adds it with its `tag`.
    ///
    /// Returns a finished batch when one is complete: the open batch when `operation` does
    /// not fit in it (the operation then opens the next batch), or the batch `operation`
    /// filled up to the count cap. An operation over the per-operation limit is handed back
    /// in a (boxed: it is rare and large) [`Rejected`], and the open batch is left as it was.
    pub fn push(
        &mut self,
        operation: Operation,
        tag: T,
    ) -> Result<Option<PackedBatch<T>>, Box<Rejected<T>>> {
        let bytes = match serde_json::to_vec(&operation) {
            Ok(bytes) => bytes,
            Err(err) => {
                return Err(Box::new(Rejected {
                    operation,
                    tag,
                    reason: RejectReason::Unserialisable(err),
                }));
            }
        };
        match self.push_bytes(tag, Bytes::from(bytes)) {
            Ok(done) => Ok(done),
            Err((tag, bytes)) => Err(Box::new(Rejected {
                operation,
                tag,
                reason: RejectReason::TooLarge {
                    size: bytes.len(),
                    limit: self.limits.max_operation_bytes(),
                },
            })),
        }
    }

    /// Adds an item taken from an earlier [`PackedBatch`], reusing its bytes (no
    /// serialisation). This is how a caller re-batches after a partial failure: the refused
    /// operations of a `207`, or the halves of a batch refused with `400`.
    ///
    /// Returns a finished batch as [`push`](Self::push) does. An item over this packer's
    /// per-operation limit (possible only when this packer's limits are lower than those of
    /// the packer that made it) is handed back unchanged.
    pub fn push_item(
        &mut self,
        item: PackedItem<T>,
    ) -> Result<Option<PackedBatch<T>>, PackedItem<T>> {
        self.push_bytes(item.tag, item.bytes)
            .map_err(|(tag, bytes)| PackedItem { tag, bytes })
    }

    /// Adds an already-serialised operation. On refusal, gives back the tag and the bytes.
    pub(crate) fn push_bytes(
        &mut self,
        tag: T,
        bytes: Bytes,
    ) -> Result<Option<PackedBatch<T>>, (T, Bytes)> {
        let size = bytes.len();
        if size > self.limits.max_operation_bytes() {
            return Err((tag, bytes));
        }
        // Invariant between calls: the open batch is below the count cap (it is closed as
        // soon as it reaches it), so only the byte limit can push the operation out.
        let mut finished = None;
        if !self.open.is_empty() && self.open_bytes + 1 + size > self.limits.max_request_bytes {
            finished = self.take();
        }
        self.open_bytes = if self.open.is_empty() {
            BATCH_WRAPPER_BYTES + size
        } else {
            self.open_bytes + 1 + size
        };
        self.open.push((tag, bytes));
        if finished.is_none()
            && self
                .limits
                .max_operations()
                .is_some_and(|cap| self.open.len() >= cap)
        {
            // `finished` is `None` here: when the byte limit closed a batch, the open one
            // holds one operation, and a cap of 1 would have closed the previous batch at
            // its first operation already.
            finished = self.take();
        }
        Ok(finished)
    }

    /// Closes and returns the open batch, if it holds anything.
    pub fn flush(&mut self) -> Option<PackedBatch<T>> {
        self.take()
    }

    fn take(&mut self) -> Option<PackedBatch<T>> {
        if self.open.is_empty() {
            return None;
        }
        let parts = std::mem::take(&mut self.open);
        let body_len = std::mem::replace(&mut self.open_bytes, 0);
        Some(PackedBatch::assemble(parts, body_len))
    }

    /// Packs every operation and flushes: the batches in order, and the operations handed
    /// back. Each input ends in exactly one of the two.
    pub fn pack(
        &mut self,
        items: impl IntoIterator<Item = (Operation, T)>,
    ) -> (Vec<PackedBatch<T>>, Vec<Rejected<T>>) {
        let mut batches = Vec::new();
        let mut rejected = Vec::new();
        for (operation, tag) in items {
            match self.push(operation, tag) {
                Ok(Some(batch)) => batches.push(batch),
                Ok(None) => {}
                Err(refused) => rejected.push(*refused),
            }
        }
        batches.extend(self.flush());
        (batches, rejected)
    }
}

impl<T: fmt::Debug> fmt::Debug for BatchPacker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchPacker")
            .field("limits", &self.limits)
            .field("pending", &self.open.len())
            .field("pending_bytes", &self.open_bytes)
            .finish()
    }
}

/// Packs `operations` with the default limits (and an optional count cap), tagging each with
/// its position in the input.
///
/// ```
/// use customerio_client::Identifier;
/// use customerio_client::track::packer::pack;
/// use customerio_client::track::v2::Operation;
///
/// let ops = vec![Operation::delete_person(Identifier::id("u1"))?];
/// let (batches, rejected) = pack(ops, None);
/// assert!(rejected.is_empty());
/// assert_eq!(
///     &batches[0].body()[..],
///     br#"{"batch":[{"type":"person","action":"delete","identifiers":{"id":"u1"}}]}"#
/// );
/// # Ok::<(), customerio_client::Error>(())
/// ```
pub fn pack(
    operations: impl IntoIterator<Item = Operation>,
    max_operations: Option<usize>,
) -> (Vec<PackedBatch<usize>>, Vec<Rejected<usize>>) {
    let mut limits = PackerLimits::default();
    if let Some(count) = max_operations {
        limits = limits.with_max_operations(count);
    }
    BatchPacker::new(limits).pack(operations.into_iter().enumerate().map(|(i, op)| (op, i)))
}
