//! The v2 calls on [`TrackClient`]: [`entity`](TrackClient::entity),
//! [`batch`](TrackClient::batch) and [`send_packed`](TrackClient::send_packed), and the
//! [`BatchOutcome`] of a batch.

use bytes::Bytes;
use reqwest::{Method, StatusCode};

use super::operation::Operation;
use crate::error::{ApiError, Error, parse_api_errors};
use crate::http::Body;
use crate::limits::{self, MAX_OPERATION_BYTES};
use crate::track::TrackClient;
use crate::track::packer::{BatchPacker, PackedBatch, PackerLimits};

/// What a `/api/v2/batch` request achieved.
///
/// A `200` means every operation was accepted. A `207` means the operations listed in
/// [`rejected`](Self::rejected) were refused and **all others were accepted**: do not resend
/// the batch, only (fixed versions of) the refused operations. Errors a `207` lists without a
/// usable `batch_index` are kept in [`unattributed`](Self::unattributed);
/// [`is_ambiguous`](Self::is_ambiguous) says when the response does not tell which
/// operations failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    operations: usize,
    partial: bool,
    rejected: Vec<ApiError>,
    unattributed: Vec<ApiError>,
}

impl BatchOutcome {
    /// Reads a success response (`200` or `207`) to a batch of `operations` operations.
    ///
    /// Public so that code driving batches (and its tests) can build outcomes; the client's
    /// own calls use it on every success response.
    pub fn from_response(operations: usize, status: StatusCode, body: &[u8]) -> Self {
        let partial = status == StatusCode::MULTI_STATUS;
        let mut rejected = Vec::new();
        let mut unattributed = Vec::new();
        if partial {
            for error in parse_api_errors(body) {
                match error.batch_index {
                    Some(index) if index < operations => rejected.push(error),
                    _ => unattributed.push(error),
                }
            }
            // Stable: several errors for one operation keep the server's order.
            rejected.sort_by_key(|e| e.batch_index);
        }
        Self {
            operations,
            partial,
            rejected,
            unattributed,
        }
    }

    /// An outcome where every one of `operations` operations was accepted.
    pub fn all_accepted(operations: usize) -> Self {
        Self {
            operations,
            partial: false,
            rejected: Vec::new(),
            unattributed: Vec::new(),
        }
    }

    /// How many operations the request carried.
    pub fn operations(&self) -> usize {
        self.operations
    }

    /// Whether every operation was accepted (the server answered `200`).
    pub fn is_all_accepted(&self) -> bool {
        !self.partial
    }

    /// Whether the server answered `207` (some operations refused).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// Errors for refused operations, sorted by `batch_index` (every one is `Some` and below
    /// [`operations`](Self::operations)). One operation may have several errors.
    pub fn rejected(&self) -> &[ApiError] {
        &self.rejected
    }

    /// The indexes of refused operations, ascending, without repeats.
    pub fn rejected_indexes(&self) -> Vec<usize> {
        let mut indexes: Vec<usize> = self.rejected.iter().filter_map(|e| e.batch_index).collect();
        indexes.dedup();
        indexes
    }

    /// Whether the operation at `index` was refused.
    pub fn is_rejected(&self, index: usize) -> bool {
        self.rejected
            .iter()
            .any(|error| error.batch_index == Some(index))
    }

    /// The errors reported for the operation at `index`.
    pub fn errors_for(&self, index: usize) -> impl Iterator<Item = &ApiError> + '_ {
        self.rejected
            .iter()
            .filter(move |error| error.batch_index == Some(index))
    }

    /// Errors of a `207` without a `batch_index`, or with one outside the batch.
    pub fn unattributed(&self) -> &[ApiError] {
        &self.unattributed
    }

    /// Whether a `207` did not say which operations failed: no attributable error at all, or
    /// some errors without a usable index. A caller that must account for every operation
    /// should then treat the whole batch as unresolved (for example, resend it one operation
    /// at a time: events carry their de-duplication id, identifies are upserts).
    pub fn is_ambiguous(&self) -> bool {
        self.partial && (self.rejected.is_empty() || !self.unattributed.is_empty())
    }
}

impl TrackClient {
    /// Sends one operation (`POST /api/v2/entity`).
    ///
    /// The operation is serialised once and refused before sending if it is over
    /// [`MAX_OPERATION_BYTES`] (32 000 bytes). A `400` comes back as an [`Error`] whose
    /// [`api_errors`](Error::api_errors) lists the server's reasons.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::TrackClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::Identifier;
    /// use customerio_client::track::v2::{Operation, PersonEvent};
    ///
    /// let event = PersonEvent::new(Identifier::id("user-42"), "order_completed")?
    ///     .with_id(customerio_client::event_id::event_id("msg-1", 1_717_172_000_000))
    ///     .with_timestamp(1_717_172_000)?;
    /// client.entity(&Operation::from(event)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn entity(&self, op: &Operation) -> Result<(), Error> {
        const OP: &str = "track.v2.entity";
        let body = serde_json::to_vec(op).map_err(|err| {
            Error::invalid(OP, "operation could not be serialised").with_source(err)
        })?;
        if body.len() > MAX_OPERATION_BYTES {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} {} operation is {} bytes; the limit is {MAX_OPERATION_BYTES}",
                    op.entity_type(),
                    op.action(),
                    body.len()
                ),
            ));
        }
        self.transport
            .send(OP, Method::POST, "/api/v2/entity", &[], Body::Json(body))
            .await?;
        Ok(())
    }

    /// Sends operations in one request (`POST /api/v2/batch`, body `{"batch": [...]}`).
    ///
    /// Every operation must be at most 32 000 bytes and the whole body at most 500 000 bytes;
    /// otherwise nothing is sent and an [`ErrorKind::Invalid`](crate::ErrorKind) error names
    /// the first operation index or the total. Use a [`BatchPacker`] to split a larger set.
    /// An empty slice sends nothing and returns an outcome of zero operations.
    ///
    /// A `200` gives an outcome where all were accepted; a `207` lists the refused operations
    /// by index ([`BatchOutcome::rejected`]); a `400` (nothing accepted) is an [`Error`] whose
    /// [`api_errors`](Error::api_errors) lists the reasons.
    pub async fn batch(&self, ops: &[Operation]) -> Result<BatchOutcome, Error> {
        const OP: &str = "track.v2.batch";
        if ops.is_empty() {
            return Ok(BatchOutcome::all_accepted(0));
        }
        let mut packer = BatchPacker::new(PackerLimits::default());
        for (index, op) in ops.iter().enumerate() {
            let bytes = serde_json::to_vec(op).map_err(|err| {
                Error::invalid(OP, format!("operation {index} could not be serialised"))
                    .with_source(err)
            })?;
            // With no count cap, the packer hands a batch back only when the next operation
            // does not fit in the open one: then the set needs more than one request.
            match packer.push_bytes(index, Bytes::from(bytes)) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "the operations do not fit in one request of {} bytes (operation {index} overflows); split them with BatchPacker",
                            limits::MAX_BATCH_REQUEST_BYTES
                        ),
                    ));
                }
                Err((_, bytes)) => {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "operation {index} ({} {}) is {} bytes; the limit is {MAX_OPERATION_BYTES}",
                            op.entity_type(),
                            op.action(),
                            bytes.len()
                        ),
                    ));
                }
            }
        }
        match packer.flush() {
            Some(batch) => self.send_packed_as(OP, &batch).await,
            // Unreachable in practice: at least one operation was pushed and none overflowed.
            None => Ok(BatchOutcome::all_accepted(0)),
        }
    }

    /// Sends a batch made by a [`BatchPacker`] as it is, without serialising the operations
    /// again (`POST /api/v2/batch`).
    ///
    /// Indexes in the returned [`BatchOutcome`] are positions in
    /// [`PackedBatch::items`](crate::track::packer::PackedBatch::items), so each maps back to
    /// the caller's tag.
    pub async fn send_packed<T>(&self, batch: &PackedBatch<T>) -> Result<BatchOutcome, Error> {
        self.send_packed_as("track.v2.batch", batch).await
    }

    async fn send_packed_as<T>(
        &self,
        op: &'static str,
        batch: &PackedBatch<T>,
    ) -> Result<BatchOutcome, Error> {
        let response = self
            .transport
            .send(
                op,
                Method::POST,
                "/api/v2/batch",
                &[],
                Body::Json(batch.body().to_vec()),
            )
            .await?;
        let outcome = BatchOutcome::from_response(batch.len(), response.status, &response.body);
        if outcome.is_partial() {
            tracing::debug!(
                operation = op,
                operations = outcome.operations(),
                rejected = outcome.rejected_indexes().len(),
                unattributed = outcome.unattributed().len(),
                "customer.io refused part of a batch"
            );
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_sorts_and_splits_errors() {
        let body = br#"{"errors":[
            {"batch_index":3,"reason":"r","field":"f","message":"m"},
            {"batch_index":1,"message":"a"},
            {"batch_index":9,"message":"out of range"},
            {"message":"no index"},
            {"batch_index":1,"message":"b"}]}"#;
        let outcome = BatchOutcome::from_response(4, StatusCode::MULTI_STATUS, body);
        assert_eq!(outcome.rejected_indexes(), vec![1, 3]);
        assert_eq!(outcome.errors_for(1).count(), 2);
        assert_eq!(outcome.unattributed().len(), 2);
        assert!(outcome.is_partial() && outcome.is_ambiguous());
        assert!(outcome.is_rejected(3) && !outcome.is_rejected(0));

        let ok = BatchOutcome::from_response(4, StatusCode::OK, b"");
        assert!(ok.is_all_accepted() && !ok.is_ambiguous());
        assert!(ok.rejected().is_empty());

        let silent = BatchOutcome::from_response(4, StatusCode::MULTI_STATUS, b"");
        assert!(silent.is_ambiguous());
    }
}
