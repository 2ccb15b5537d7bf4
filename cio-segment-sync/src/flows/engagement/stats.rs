//! What the engagement back-sync did so far.

use std::sync::atomic::{AtomicU64, Ordering};

use super::EngagementError;
use crate::outcome::{Ack, AckRule, Outcome, SkipReason};

/// What an [`EngagementFlow`](super::EngagementFlow) did so far: one count per way a webhook
/// ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngagementStats {
    /// Events Segment accepted.
    pub delivered: u64,
    /// Events skipped as duplicates of handled webhook events.
    pub duplicates: u64,
    /// Events skipped for another reason (not mapped, no identity).
    pub skipped: u64,
    /// Events given up to the dead-letter sink.
    pub dead_lettered: u64,
    /// Requests refused by the signature check.
    pub refused: u64,
    /// Webhooks answered "retry later" (in flight, store or delivery failure).
    pub retry_later: u64,
    /// Authentic webhooks that cannot be used (undecodable, untranslatable).
    pub unusable: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    delivered: AtomicU64,
    duplicates: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    refused: AtomicU64,
    retry_later: AtomicU64,
    unusable: AtomicU64,
}

impl Counters {
    pub(super) fn record(&self, result: &Result<Outcome, EngagementError>) {
        let counter = match result {
            Ok(Outcome::Delivered) => &self.delivered,
            Ok(Outcome::Skipped(SkipReason::Duplicate)) => &self.duplicates,
            Ok(Outcome::Skipped(_)) => &self.skipped,
            Ok(Outcome::DeadLettered(_)) => &self.dead_lettered,
            Err(EngagementError::Signature(_)) => &self.refused,
            Err(error) => match error.ack() {
                Ack::RetryLater => &self.retry_later,
                Ack::Refuse => &self.unusable,
            },
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> EngagementStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EngagementStats {
            delivered: get(&self.delivered),
            duplicates: get(&self.duplicates),
            skipped: get(&self.skipped),
            dead_lettered: get(&self.dead_lettered),
            refused: get(&self.refused),
            retry_later: get(&self.retry_later),
            unusable: get(&self.unusable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::to_segment::TranslateError;
    use customerio_client::webhook::SignatureError;

    #[test]
    fn each_answer_lands_in_one_count() {
        let counters = Counters::default();
        counters.record(&Ok(Outcome::Delivered));
        counters.record(&Ok(Outcome::Skipped(SkipReason::Duplicate)));
        counters.record(&Ok(Outcome::Skipped(SkipReason::NoIdentity)));
        counters.record(&Ok(Outcome::Skipped(SkipReason::NotMapped(
            "email_sent".into(),
        ))));
        counters.record(&Err(EngagementError::Signature(SignatureError::Mismatch)));
        counters.record(&Err(EngagementError::InFlight));
        counters.record(&Err(EngagementError::Translate(TranslateError::Timestamp)));
        assert_eq!(
            counters.snapshot(),
            EngagementStats {
                delivered: 1,
                duplicates: 1,
                skipped: 2,
                dead_lettered: 0,
                refused: 1,
                retry_later: 1,
                unusable: 1,
            }
        );
    }
}
