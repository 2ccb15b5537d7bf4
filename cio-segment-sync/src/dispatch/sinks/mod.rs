//! The sinks the sync flows use. Each one only maps a batch onto a vendor client's call and
//! the client's answer (and errors) onto the dispatcher's terms; the wire details stay in
//! `customerio-client` and `segment-model`.
//!
//! | sink | request | partition | de-duplicated by the server |
//! |---|---|---|---|
//! | [`CustomerIoBatchSink`] | Customer.io Track v2 `batch` | none | yes (event ids are required; identify is an upsert) |
//! | [`ManualSegmentSink`] | Customer.io Track v1 `add_customers` / `remove_customers` | segment, direction, id type | yes (idempotent) |
//! | [`SegmentTrackingSink`] | Segment Tracking API `batch` | none | yes (`messageId` required) |

mod customerio;
mod segment;

pub use customerio::{
    BatchPartition, BatchSinkError, CUSTOMERIO_LINGER, CustomerIoBatchSink, DEFAULT_MAX_OPERATIONS,
    DEFAULT_SEGMENT_REQUEST_BYTES, ManualSegmentSink, MergeResend, SEGMENT_IDS_WRAPPER_BYTES,
    SegmentDirection, SegmentMembership,
};
pub use segment::{SEGMENT_LINGER, SegmentSinkError, SegmentTrackingSink};
