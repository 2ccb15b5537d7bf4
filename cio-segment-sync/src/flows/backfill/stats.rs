//! What the new-subscriber backfill did so far.

use std::sync::atomic::{AtomicU64, Ordering};

use super::BackfillError;
use crate::outcome::{Ack, AckRule, Outcome, SkipReason};

/// What a [`BackfillFlow`](super::BackfillFlow) did so far: one count per way a backfill ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillStats {
    /// Backfills Customer.io accepted.
    pub delivered: u64,
    /// Webhook events skipped as duplicates.
    pub duplicates: u64,
    /// Lookups that found no Segment profile.
    pub not_found: u64,
    /// Backfills skipped for another reason.
    pub skipped: u64,
    /// Backfills given up to the dead-letter sink.
    pub dead_lettered: u64,
    /// Backfills to retry later (Profile API, store or delivery failures).
    pub retry_later: u64,
    /// Backfills that can never work (invalid lookup id, unmappable traits).
    pub unusable: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    delivered: AtomicU64,
    duplicates: AtomicU64,
    not_found: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    retry_later: AtomicU64,
    unusable: AtomicU64,
}

impl Counters {
    pub(super) fn record(&self, result: &Result<Outcome, BackfillError>) {
        let counter = match result {
            Ok(Outcome::Delivered) => &self.delivered,
            Ok(Outcome::Skipped(SkipReason::Duplicate)) => &self.duplicates,
            Ok(Outcome::Skipped(SkipReason::NotFound)) => &self.not_found,
            Ok(Outcome::Skipped(_)) => &self.skipped,
            Ok(Outcome::DeadLettered(_)) => &self.dead_lettered,
            Err(error) if error.ack() == Ack::RetryLater => &self.retry_later,
            Err(_) => &self.unusable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> BackfillStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BackfillStats {
            delivered: get(&self.delivered),
            duplicates: get(&self.duplicates),
            not_found: get(&self.not_found),
            skipped: get(&self.skipped),
            dead_lettered: get(&self.dead_lettered),
            retry_later: get(&self.retry_later),
            unusable: get(&self.unusable),
        }
    }
}
