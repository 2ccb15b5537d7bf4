//! Customer.io sinks: Track v2 batch operations and v1 manual-segment membership.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use bytes::Bytes;
use customerio_client::TrackClient;
use customerio_client::limits::{
    MAX_BATCH_REQUEST_BYTES, MAX_ID_BYTES, MAX_OPERATION_BYTES, MAX_SEGMENT_IDS_PER_REQUEST,
};
use customerio_client::track::packer::{BATCH_WRAPPER_BYTES, PackedBatch};
use customerio_client::track::v1::SegmentIdType;
use customerio_client::track::v2::{BatchOutcome, Operation, PersonOperation};
use serde::{Deserialize, Serialize};

use crate::dispatch::{
    BatchLimits, BatchResponse, Classification, EncodeError, Encoded, FailureKind, Rejection,
    SendPhase, Sink, SinkError,
};

/// Classified by the engine's one classifier (`From<&customerio_client::Error> for
/// Classification`).
impl SinkError for customerio_client::Error {
    fn classify(&self) -> Classification {
        Classification::from(self)
    }

    fn server_message(&self) -> Option<String> {
        let messages: Vec<String> = self
            .api_errors()
            .iter()
            .filter_map(|e| e.message.clone().or_else(|| e.reason.clone()))
            .collect();
        (!messages.is_empty()).then(|| messages.join("; "))
    }
}

/// Linger used by the Customer.io sinks unless the dispatcher config overrides it.
pub const CUSTOMERIO_LINGER: Duration = Duration::from_millis(200);

/// Operations per v2 batch by default. Customer.io documents no count limit (unconfirmed);
/// Segment's own Customer.io destination sends 50 by default and 100 at most.
pub const DEFAULT_MAX_OPERATIONS: usize = 100;

/// The error of [`CustomerIoBatchSink`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchSinkError {
    /// The request failed (see the client error's kind and phase).
    #[error(transparent)]
    Client(#[from] customerio_client::Error),
    /// Customer.io answered `207` without saying which operations it refused. Classified
    /// [`Rejected`](FailureKind::Rejected) when the sink's operations are de-duplicated by the
    /// server (the batch is then split until each operation's fate is known), and
    /// [`Permanent`](FailureKind::Permanent) otherwise (re-sending accepted operations could
    /// apply them twice: they are dead-lettered for an operator).
    #[error("customer.io answered 207 without naming the refused operations")]
    Ambiguous {
        /// Whether a split is safe.
        deduplicated: bool,
    },
}

impl SinkError for BatchSinkError {
    fn classify(&self) -> Classification {
        match self {
            BatchSinkError::Client(err) => err.classify(),
            BatchSinkError::Ambiguous { deduplicated } => Classification::new(
                if *deduplicated {
                    FailureKind::Rejected
                } else {
                    FailureKind::Permanent
                },
                SendPhase::ResponseReceived,
            ),
        }
    }

    fn server_message(&self) -> Option<String> {
        match self {
            BatchSinkError::Client(err) => err.server_message(),
            BatchSinkError::Ambiguous { .. } => None,
        }
    }
}

/// Sends Track v2 operations through `POST /api/v2/batch`.
///
/// One partition (any operations may share a batch). Limits: 32 000 bytes per operation,
/// 500 000 bytes per request including the `{"batch":[…]}` wrapper, and
/// [`DEFAULT_MAX_OPERATIONS`] per request (configurable; no documented cap).
///
/// **De-duplication.** By default the sink declares its operations de-duplicated by the
/// server, so timeouts are retried: identify is an upsert and events carry a ULID `id` that
/// Customer.io applies once. To keep that promise, [`encode`](Sink::encode) refuses `event`,
/// `page` and `screen` operations without an `id` (give them a deterministic one with
/// `customerio_client::event_id`). [`allow_events_without_id`](Self::allow_events_without_id)
/// lifts the check and turns the declaration off instead, so possibly-sent batches are
/// dead-lettered rather than retried. Other actions (delete, suppress, relationships,
/// devices) set a state and are safe to repeat.
///
/// **Merges** are resent too by default: the first copy deletes the secondary person, and a
/// merge whose secondary (or primary) no longer exists does nothing, so a second copy is
/// harmless (Customer.io's merge reference). [`refuse_merge_resends`](Self::refuse_merge_resends)
/// sends merges in requests of their own that are never resent once they may have reached the
/// server (a possibly-sent merge is handed back as retry-later instead; the source decides).
///
/// A `207` dead-letters only the operations it names (with Customer.io's messages); a `400`
/// splits the batch.
pub struct CustomerIoBatchSink {
    client: TrackClient,
    max_operations: NonZeroUsize,
    require_event_ids: bool,
    merge_resend: MergeResend,
}

/// Whether a merge that may already have reached Customer.io is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeResend {
    /// Resend like any other operation (the default: a repeated merge finds no secondary and
    /// does nothing).
    #[default]
    Allow,
    /// Never resend a merge that may have been received: merges travel in requests of their
    /// own, and a possibly-sent one is handed back to its caller.
    Refuse,
}

/// The requests a [`CustomerIoBatchSink`] keeps apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchPartition {
    /// Every operation (and merges, unless their resends are refused).
    Operations,
    /// Merges, when [`MergeResend::Refuse`] is set: never resent once possibly sent.
    Merges,
}

impl fmt::Debug for CustomerIoBatchSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerIoBatchSink")
            .field("client", &self.client)
            .field("max_operations", &self.max_operations)
            .field("require_event_ids", &self.require_event_ids)
            .field("merge_resend", &self.merge_resend)
            .finish()
    }
}

impl CustomerIoBatchSink {
    /// A sink sending through `client`.
    pub fn new(client: TrackClient) -> Self {
        Self {
            client,
            max_operations: NonZeroUsize::new(DEFAULT_MAX_OPERATIONS).unwrap_or(NonZeroUsize::MIN),
            require_event_ids: true,
            merge_resend: MergeResend::Allow,
        }
    }

    /// Never resend a merge that may have reached the server ([`MergeResend::Refuse`]).
    pub fn refuse_merge_resends(mut self) -> Self {
        self.merge_resend = MergeResend::Refuse;
        self
    }

    /// How merges are resent (default [`MergeResend::Allow`]).
    pub fn with_merge_resend(mut self, resend: MergeResend) -> Self {
        self.merge_resend = resend;
        self
    }

    /// At most `count` operations per request.
    pub fn with_max_operations(mut self, count: NonZeroUsize) -> Self {
        self.max_operations = count;
        self
    }

    /// Accept events without an `id`, and stop declaring the operations de-duplicated by the
    /// server (a timed-out batch is then dead-lettered, not retried).
    pub fn allow_events_without_id(mut self) -> Self {
        self.require_event_ids = false;
        self
    }
}

fn missing_event_id(op: &Operation) -> bool {
    match op {
        Operation::Person(
            PersonOperation::Event(event)
            | PersonOperation::Page(event)
            | PersonOperation::Screen(event),
        ) => event.id().is_none(),
        _ => false,
    }
}

impl Sink for CustomerIoBatchSink {
    type Item = Operation;
    type Partition = BatchPartition;
    type Error = BatchSinkError;

    fn name(&self) -> &'static str {
        "customerio.track.v2.batch"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_items: self.max_operations,
            max_request_bytes: MAX_BATCH_REQUEST_BYTES,
            max_item_bytes: MAX_OPERATION_BYTES,
            wrapper_bytes: BATCH_WRAPPER_BYTES,
            separator_bytes: 1,
            linger: CUSTOMERIO_LINGER,
        }
    }

    fn server_deduplicates(&self) -> bool {
        self.require_event_ids
    }

    fn partition_deduplicates(&self, partition: &BatchPartition) -> bool {
        self.require_event_ids && *partition == BatchPartition::Operations
    }

    fn partition(&self, op: &Operation) -> BatchPartition {
        let merge = matches!(op, Operation::Person(PersonOperation::Merge(_)));
        if merge && self.merge_resend == MergeResend::Refuse {
            BatchPartition::Merges
        } else {
            BatchPartition::Operations
        }
    }

    fn encode(&self, op: &Operation) -> Result<Bytes, EncodeError> {
        if self.require_event_ids && missing_event_id(op) {
            return Err(EncodeError::new(format!(
                "a person {} operation has no id; retries need one to be de-duplicated",
                op.action()
            )));
        }
        serde_json::to_vec(op)
            .map(Bytes::from)
            .map_err(EncodeError::json)
    }

    async fn send(
        &self,
        _: &BatchPartition,
        items: &[Encoded<Operation>],
    ) -> Result<BatchResponse, BatchSinkError> {
        // Encode once: the request is built from the bytes encoded and measured at submit.
        let parts = items.iter().map(|e| ((), e.bytes.clone())).collect();
        let batch = PackedBatch::from_encoded(parts)?;
        let outcome = self.client.send_packed(&batch).await?;
        outcome_to_response(&outcome, self.require_event_ids)
    }
}

fn outcome_to_response(
    outcome: &BatchOutcome,
    deduplicated: bool,
) -> Result<BatchResponse, BatchSinkError> {
    if outcome.is_all_accepted() {
        return Ok(BatchResponse::Accepted);
    }
    if outcome.is_ambiguous() {
        return Err(BatchSinkError::Ambiguous { deduplicated });
    }
    let rejections = outcome
        .rejected_indexes()
        .into_iter()
        .map(|index| {
            let errors: Vec<_> = outcome.errors_for(index).collect();
            let message = errors
                .iter()
                .filter_map(|e| e.message.clone().or_else(|| e.reason.clone()))
                .collect::<Vec<_>>()
                .join("; ");
            let field = errors.iter().find_map(|e| e.field.clone());
            Rejection {
                index,
                message,
                field,
            }
        })
        .collect();
    Ok(BatchResponse::Partial(rejections))
}

/// Whether a manual-segment change adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentDirection {
    /// `add_customers`.
    Add,
    /// `remove_customers`.
    Remove,
}

/// One person entering or leaving a manual segment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMembership {
    /// The manual segment's id.
    pub segment_id: u64,
    /// Add or remove.
    pub direction: SegmentDirection,
    /// What [`person`](Self::person) is: `id`, `email` or `cio_id`.
    #[serde(with = "id_type_serde")]
    pub id_type: SegmentIdType,
    /// The person, as `id_type` says.
    pub person: String,
}

impl fmt::Debug for SegmentMembership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The person is personal data.
        f.debug_struct("SegmentMembership")
            .field("segment_id", &self.segment_id)
            .field("direction", &self.direction)
            .field("id_type", &self.id_type)
            .finish_non_exhaustive()
    }
}

mod id_type_serde {
    use customerio_client::track::v1::SegmentIdType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SegmentIdType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SegmentIdType, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "id" => Ok(SegmentIdType::Id),
            "email" => Ok(SegmentIdType::Email),
            "cio_id" => Ok(SegmentIdType::CioId),
            _ => Err(serde::de::Error::unknown_variant(
                &text,
                &["id", "email", "cio_id"],
            )),
        }
    }
}

/// Bytes of the `{"ids":[` … `]}` wrapper of a manual-segment request.
pub const SEGMENT_IDS_WRAPPER_BYTES: usize = r#"{"ids":[]}"#.len();

/// Default byte cap for a manual-segment request. Customer.io documents only the count limit
/// (1000 ids); this cap (unconfirmed, configurable) keeps requests at the Track API's batch
/// size.
pub const DEFAULT_SEGMENT_REQUEST_BYTES: usize = MAX_BATCH_REQUEST_BYTES;

/// Adds people to and removes them from manual segments (Track v1 `add_customers` /
/// `remove_customers`).
///
/// The partition is (segment id, direction, id type): one request never mixes segments,
/// directions or id kinds. At most 1000 ids per request. The calls are idempotent, so the sink
/// declares itself de-duplicated by the server. Submit each change with the person's
/// [`OrderingKey`](crate::dispatch::OrderingKey) so an add and a later remove are never
/// reordered.
///
/// Customer.io answers `200` for ids that match nobody (they are ignored), so every item of an
/// accepted request resolves delivered.
pub struct ManualSegmentSink {
    client: TrackClient,
    max_ids: NonZeroUsize,
    max_request_bytes: usize,
}

impl fmt::Debug for ManualSegmentSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualSegmentSink")
            .field("client", &self.client)
            .field("max_ids", &self.max_ids)
            .field("max_request_bytes", &self.max_request_bytes)
            .finish()
    }
}

impl ManualSegmentSink {
    /// A sink sending through `client`, 1000 ids per request at most.
    pub fn new(client: TrackClient) -> Self {
        Self {
            client,
            max_ids: NonZeroUsize::new(MAX_SEGMENT_IDS_PER_REQUEST).unwrap_or(NonZeroUsize::MIN),
            max_request_bytes: DEFAULT_SEGMENT_REQUEST_BYTES,
        }
    }

    /// At most `count` ids per request (never more than 1000).
    pub fn with_max_ids(mut self, count: NonZeroUsize) -> Self {
        self.max_ids =
            count.min(NonZeroUsize::new(MAX_SEGMENT_IDS_PER_REQUEST).unwrap_or(NonZeroUsize::MIN));
        self
    }

    /// At most `bytes` per request body.
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }
}

impl Sink for ManualSegmentSink {
    type Item = SegmentMembership;
    type Partition = (u64, SegmentDirection, SegmentIdType);
    type Error = customerio_client::Error;

    fn name(&self) -> &'static str {
        "customerio.track.v1.segment_membership"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_items: self.max_ids,
            max_request_bytes: self.max_request_bytes,
            // The JSON string of the id; person ids are at most 150 bytes, emails and cio ids
            // have no documented cap here.
            max_item_bytes: self.max_request_bytes,
            wrapper_bytes: SEGMENT_IDS_WRAPPER_BYTES,
            separator_bytes: 1,
            linger: CUSTOMERIO_LINGER,
        }
    }

    fn server_deduplicates(&self) -> bool {
        true
    }

    fn partition(&self, item: &SegmentMembership) -> Self::Partition {
        (item.segment_id, item.direction, item.id_type)
    }

    fn encode(&self, item: &SegmentMembership) -> Result<Bytes, EncodeError> {
        if item.person.is_empty() {
            return Err(EncodeError::new("the person identifier is empty"));
        }
        if item.id_type == SegmentIdType::Id && item.person.len() > MAX_ID_BYTES {
            return Err(EncodeError::new(format!(
                "the person id is {} bytes; the limit is {MAX_ID_BYTES}",
                item.person.len()
            )));
        }
        serde_json::to_vec(&item.person)
            .map(Bytes::from)
            .map_err(EncodeError::json)
    }

    async fn send(
        &self,
        partition: &Self::Partition,
        items: &[Encoded<SegmentMembership>],
    ) -> Result<BatchResponse, customerio_client::Error> {
        let (segment_id, direction, id_type) = *partition;
        let ids: Vec<&str> = items.iter().map(|e| e.item.person.as_str()).collect();
        match direction {
            SegmentDirection::Add => {
                self.client
                    .add_to_segment(segment_id, id_type, &ids)
                    .await?
            }
            SegmentDirection::Remove => {
                self.client
                    .remove_from_segment(segment_id, id_type, &ids)
                    .await?
            }
        }
        Ok(BatchResponse::Accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customerio_client::Identifier;
    use customerio_client::track::v2::PersonEvent;
    use reqwest::StatusCode;

    #[test]
    fn customerio_errors_classify_onto_dispatcher_kinds() {
        let invalid = customerio_client::Error::invalid("op", "too long");
        assert_eq!(
            invalid.classify(),
            Classification::new(FailureKind::Rejected, SendPhase::NotSent)
        );
        let config = customerio_client::Error::config("bad url");
        assert_eq!(config.classify().kind, FailureKind::Permanent);
    }

    #[test]
    fn a_207_maps_to_indexed_rejections_and_an_ambiguous_one_to_an_error() {
        let body = br#"{"errors":[{"batch_index":1,"reason":"invalid","field":"id","message":"must be a ULID"}]}"#;
        let outcome = BatchOutcome::from_response(3, StatusCode::MULTI_STATUS, body);
        assert_eq!(
            outcome_to_response(&outcome, true).unwrap(),
            BatchResponse::Partial(vec![Rejection {
                index: 1,
                message: "must be a ULID".into(),
                field: Some("id".into())
            }])
        );
        let silent = BatchOutcome::from_response(3, StatusCode::MULTI_STATUS, b"");
        let err = outcome_to_response(&silent, true).unwrap_err();
        assert_eq!(err.classify().kind, FailureKind::Rejected);
        let err = outcome_to_response(&silent, false).unwrap_err();
        assert_eq!(err.classify().kind, FailureKind::Permanent);
        let ok = BatchOutcome::from_response(3, StatusCode::OK, b"");
        assert_eq!(
            outcome_to_response(&ok, true).unwrap(),
            BatchResponse::Accepted
        );
    }

    #[test]
    fn events_without_ids_are_refused_unless_allowed() {
        let client = TrackClient::new(
            customerio_client::SiteId::new("s"),
            customerio_client::TrackApiKey::new("k"),
            customerio_client::ClientConfig::default(),
        )
        .unwrap();
        let event: Operation = PersonEvent::new(Identifier::id("u1"), "signed_up")
            .unwrap()
            .into();
        let strict = CustomerIoBatchSink::new(client.clone());
        assert!(strict.server_deduplicates());
        let err = strict.encode(&event).unwrap_err();
        assert!(
            err.to_string().contains("event operation has no id"),
            "{err}"
        );
        let lenient = CustomerIoBatchSink::new(client).allow_events_without_id();
        assert!(!lenient.server_deduplicates());
        assert_eq!(
            lenient.encode(&event).unwrap(),
            Bytes::from(serde_json::to_vec(&event).unwrap())
        );
    }

    #[test]
    fn membership_round_trips_and_hides_the_person_in_debug() {
        let m = SegmentMembership {
            segment_id: 7,
            direction: SegmentDirection::Remove,
            id_type: SegmentIdType::CioId,
            person: "a3000001".into(),
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"segment_id": 7, "direction": "remove", "id_type": "cio_id", "person": "a3000001"})
        );
        assert_eq!(
            serde_json::from_value::<SegmentMembership>(json).unwrap(),
            m
        );
        assert!(!format!("{m:?}").contains("a3000001"));
        assert!(
            serde_json::from_value::<SegmentMembership>(serde_json::json!({
                "segment_id": 7, "direction": "add", "id_type": "phone", "person": "x"
            }))
            .is_err()
        );
    }
}
