//! Counters of what the pipeline did ([`PipelineStats`]) and, with the `metrics` feature, their
//! export as `cio_segment_sync_pipeline_*_total` counters.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Outcome, PipelineError};
use crate::identity::SkipReason;

/// A snapshot of a [`SyncPipeline`](super::SyncPipeline)'s counters, one per way a message can
/// end. Every processed message is counted exactly once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// Accepted by Customer.io ([`Outcome::Delivered`]).
    pub delivered: u64,
    /// Dead-lettered ([`Outcome::DeadLettered`]).
    pub dead_lettered: u64,
    /// Skipped as a duplicate of a finished message ([`SkipReason::Duplicate`]).
    pub deduplicated: u64,
    /// Dropped by the loop guard ([`SkipReason::OwnEcho`]).
    pub loop_dropped: u64,
    /// Skipped for any other reason (no identity, filtered, …).
    pub skipped: u64,
    /// Held by another worker ([`PipelineError::InFlight`]).
    pub in_flight: u64,
    /// Failed in a way the source's retry may fix (a store or the delivery).
    pub failed: u64,
    /// Failed in a way no retry fixes (mapping, an unkeyable message).
    pub rejected: u64,
    /// Not attempted in a batch behind a failed message of the same person
    /// ([`PipelineError::Blocked`]).
    pub blocked: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    delivered: AtomicU64,
    dead_lettered: AtomicU64,
    deduplicated: AtomicU64,
    loop_dropped: AtomicU64,
    skipped: AtomicU64,
    in_flight: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    blocked: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> PipelineStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PipelineStats {
            delivered: load(&self.delivered),
            dead_lettered: load(&self.dead_lettered),
            deduplicated: load(&self.deduplicated),
            loop_dropped: load(&self.loop_dropped),
            skipped: load(&self.skipped),
            in_flight: load(&self.in_flight),
            failed: load(&self.failed),
            rejected: load(&self.rejected),
            blocked: load(&self.blocked),
        }
    }

    /// Counts one message's result.
    pub(crate) fn record(&self, result: &Result<Outcome, PipelineError>) {
        let (counter, name) = match result {
            Ok(Outcome::Delivered) => {
                (&self.delivered, "cio_segment_sync_pipeline_delivered_total")
            }
            Ok(Outcome::DeadLettered(_)) => (
                &self.dead_lettered,
                "cio_segment_sync_pipeline_dead_lettered_total",
            ),
            Ok(Outcome::Skipped(SkipReason::Duplicate)) => (
                &self.deduplicated,
                "cio_segment_sync_pipeline_deduplicated_total",
            ),
            Ok(Outcome::Skipped(SkipReason::OwnEcho)) => (
                &self.loop_dropped,
                "cio_segment_sync_pipeline_loop_dropped_total",
            ),
            Ok(Outcome::Skipped(_)) => (&self.skipped, "cio_segment_sync_pipeline_skipped_total"),
            Err(PipelineError::InFlight) => {
                (&self.in_flight, "cio_segment_sync_pipeline_in_flight_total")
            }
            Err(PipelineError::Blocked) => {
                (&self.blocked, "cio_segment_sync_pipeline_blocked_total")
            }
            Err(err) if err.is_retryable() => {
                (&self.failed, "cio_segment_sync_pipeline_failed_total")
            }
            Err(_) => (&self.rejected, "cio_segment_sync_pipeline_rejected_total"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        emit(name);
    }
}

#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
fn emit(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name).increment(1);
}
