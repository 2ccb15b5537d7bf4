//! The retry policy and the one pure function that decides what to do after a failed attempt.
//!
//! This is the dispatcher's policy, for batches of any [`Sink`](super::Sink) (Customer.io's
//! Track API and Segment's Tracking API alike). It is deliberately not
//! `customerio_client::retry::CallRetry`, which retries one Customer.io call for a caller
//! that sends it by hand. The two decide different things: a batch can be **split** to isolate
//! a refused item, a possibly-sent batch may be resent only when the sink's server
//! de-duplicates (a per-sink fact, not a per-call idempotency), and a failure that outlasts
//! the policy's total deadline hands the batch's items back to their callers
//! ([`Delivery::RetryLater`](super::Delivery::RetryLater): the claim is released, the source
//! retries) rather than dead-lettering them. Both build their backoff with `backon`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::{Deserialize, Serialize};

use super::sink::{Classification, FailureKind, SendPhase};

/// How failed attempts are retried: jittered exponential backoff with a total deadline,
/// honouring the server's `Retry-After`.
///
/// The defaults outlast an outage rather than a blip: retries go on (200 ms doubling to at most
/// 30 s, plus up to 100 % jitter, no attempt cap) for up to **1 hour** from a batch's first
/// attempt, and a server-requested delay (`Retry-After`) is honoured up to **1 hour** (a longer
/// one is waited for that long). Only then are the items handed back to their callers as
/// [`RetryLater`](super::Delivery::RetryLater): nothing retryable is ever dead-lettered, and a
/// webhook source keeps its own retries (its claims held, so its redeliveries are answered "in
/// flight") while the dispatcher waits. Tests and hosts with short-lived callers shorten these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    total_deadline: Duration,
    max_retry_after: Duration,
    jitter_seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: Self::UNLIMITED_ATTEMPTS,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            total_deadline: Self::DEFAULT_TOTAL_DEADLINE,
            max_retry_after: Self::DEFAULT_MAX_RETRY_AFTER,
            jitter_seed: None,
        }
    }
}

impl RetryPolicy {
    /// The default attempt count: no cap (the total deadline ends the retries).
    pub const UNLIMITED_ATTEMPTS: u32 = u32::MAX;

    /// The default total deadline of a batch's retries: 1 hour.
    pub const DEFAULT_TOTAL_DEADLINE: Duration = Duration::from_secs(3_600);

    /// The default longest `Retry-After` honoured as asked: 1 hour.
    pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

    /// One attempt, never retried.
    pub fn disabled() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Attempts in all, the first included (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay before the first retry; each later one doubles, up to
    /// [`with_max_backoff`](Self::with_max_backoff). Jitter adds up to the same again.
    pub fn with_initial_backoff(mut self, delay: Duration) -> Self {
        self.initial_backoff = delay;
        self
    }

    /// The largest backoff before jitter.
    pub fn with_max_backoff(mut self, delay: Duration) -> Self {
        self.max_backoff = delay;
        self
    }

    /// No retry starts later than this after the batch's first attempt started. Each half of a
    /// split batch counts as a new batch, with its own attempts and deadline.
    pub fn with_total_deadline(mut self, deadline: Duration) -> Self {
        self.total_deadline = deadline;
        self
    }

    /// The longest server-requested delay (`Retry-After`) the dispatcher waits for; a longer
    /// one is waited for this long (and the total deadline still applies).
    pub fn with_max_retry_after(mut self, delay: Duration) -> Self {
        self.max_retry_after = delay;
        self
    }

    /// Seeds the jitter so delays are reproducible (tests, simulations). Each batch derives
    /// its own stream from this seed.
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The total deadline.
    pub fn total_deadline(&self) -> Duration {
        self.total_deadline
    }

    /// The longest `Retry-After` honoured as asked.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// A server-requested delay as the dispatcher honours it: as asked, up to
    /// [`max_retry_after`](Self::max_retry_after).
    pub fn honoured_retry_after(&self, asked: Duration) -> Duration {
        asked.min(self.max_retry_after)
    }

    /// The backoff delays for one batch (backon's jittered exponential backoff), `salt`
    /// distinguishing batches when the jitter is seeded.
    pub(crate) fn backoff(&self, salt: u64) -> impl Iterator<Item = Duration> + Send + use<> {
        let mut builder = ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if let Some(seed) = self.jitter_seed {
            builder = builder.with_jitter_seed(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        builder.build()
    }
}

/// Why the dispatcher stopped retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GiveUp {
    /// The failure is not one a retry can fix.
    NotRetryable,
    /// The attempt may have reached the server and the sink's items are not de-duplicated
    /// by the server: a retry could apply them twice.
    MaybeSent,
    /// The attempt cap was reached.
    AttemptsExhausted,
    /// The next retry would start after the total deadline.
    DeadlineExceeded,
    /// The dispatcher shut down and its grace period ran out before the item was sent.
    ShuttingDown,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the same request again after this delay.
    Retry {
        /// How long to wait first.
        after: Duration,
    },
    /// Split the batch in two and send each half on its own, to isolate refused items.
    Split,
    /// Stop: dead-letter every item of the batch.
    GiveUp(GiveUp),
}

/// The facts about a failed attempt the decision is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptFacts {
    /// The failure's classification.
    pub failure: Classification,
    /// Attempts made so far for this batch, the failed one included.
    pub attempts: u32,
    /// Time since the batch's first attempt started.
    pub elapsed: Duration,
    /// Items in the batch.
    pub batch_len: usize,
    /// Whether the server de-duplicates the sink's items.
    pub server_deduplicates: bool,
    /// The next backoff delay, or `None` when the backoff is used up.
    pub next_backoff: Option<Duration>,
}

/// Decides what follows a failed attempt. A pure function: the dispatcher's only retry logic.
///
/// In order:
/// 1. a refused request (`Rejected`) is split when it holds several items, else given up;
/// 2. any other non-retryable failure is given up;
/// 3. an attempt that may have reached the server is retried only if the server de-duplicates;
/// 4. the attempt cap and the backoff's end stop retries;
/// 5. the delay is the larger of the backoff and the server's `Retry-After` (honoured up to the
///    policy's maximum); a retry that would start after the total deadline stops.
pub fn decide(policy: &RetryPolicy, facts: &AttemptFacts) -> Decision {
    let failure = facts.failure;
    match failure.kind {
        FailureKind::Rejected if facts.batch_len > 1 => return Decision::Split,
        kind if !kind.is_retryable() => return Decision::GiveUp(GiveUp::NotRetryable),
        _ => {}
    }
    if failure.phase == SendPhase::MaybeSent && !facts.server_deduplicates {
        return Decision::GiveUp(GiveUp::MaybeSent);
    }
    if facts.attempts >= policy.max_attempts {
        return Decision::GiveUp(GiveUp::AttemptsExhausted);
    }
    let Some(backoff) = facts.next_backoff else {
        return Decision::GiveUp(GiveUp::AttemptsExhausted);
    };
    let after = match failure.retry_after {
        Some(asked) => policy.honoured_retry_after(asked).max(backoff),
        None => backoff,
    };
    if facts.elapsed.saturating_add(after) > policy.total_deadline {
        return Decision::GiveUp(GiveUp::DeadlineExceeded);
    }
    Decision::Retry { after }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const S: fn(u64) -> Duration = Duration::from_secs;

    fn facts(kind: FailureKind, phase: SendPhase) -> AttemptFacts {
        AttemptFacts {
            failure: Classification::new(kind, phase),
            attempts: 1,
            elapsed: Duration::ZERO,
            batch_len: 1,
            server_deduplicates: false,
            next_backoff: Some(MS(200)),
        }
    }

    #[test]
    fn decision_table() {
        use FailureKind::*;
        use SendPhase::*;
        // The table was written for a short policy; the defaults' own figures are tested below.
        let policy = RetryPolicy::default()
            .with_max_attempts(4)
            .with_total_deadline(S(30))
            .with_max_retry_after(S(300));
        let retry = |ms| Decision::Retry { after: MS(ms) };
        let give_up = Decision::GiveUp;
        let cases: Vec<(&str, AttemptFacts, Decision)> = vec![
            (
                "500 is retried after the backoff",
                facts(Server, ResponseReceived),
                retry(200),
            ),
            (
                "connect refused is retried",
                facts(Transient, NotSent),
                retry(200),
            ),
            (
                "timeout on a non-deduplicated sink is not retried",
                facts(Transient, MaybeSent),
                give_up(GiveUp::MaybeSent),
            ),
            (
                "timeout on a deduplicated sink is retried",
                AttemptFacts {
                    server_deduplicates: true,
                    ..facts(Transient, MaybeSent)
                },
                retry(200),
            ),
            (
                "429 honours a longer Retry-After",
                AttemptFacts {
                    failure: Classification::new(Throttled, ResponseReceived)
                        .with_retry_after(S(7)),
                    ..facts(Throttled, ResponseReceived)
                },
                Decision::Retry { after: S(7) },
            ),
            (
                "a Retry-After shorter than the backoff keeps the backoff",
                AttemptFacts {
                    failure: Classification::new(Server, ResponseReceived).with_retry_after(MS(50)),
                    ..facts(Server, ResponseReceived)
                },
                retry(200),
            ),
            (
                "a Retry-After above the honoured maximum is shortened to it, then the deadline applies",
                AttemptFacts {
                    failure: Classification::new(Throttled, ResponseReceived)
                        .with_retry_after(S(301)),
                    ..facts(Throttled, ResponseReceived)
                },
                give_up(GiveUp::DeadlineExceeded),
            ),
            (
                "a Retry-After past the total deadline stops",
                AttemptFacts {
                    failure: Classification::new(Throttled, ResponseReceived)
                        .with_retry_after(S(20)),
                    elapsed: S(11),
                    ..facts(Throttled, ResponseReceived)
                },
                give_up(GiveUp::DeadlineExceeded),
            ),
            (
                "a retry landing exactly on the deadline is allowed",
                AttemptFacts {
                    elapsed: S(30) - MS(200),
                    ..facts(Server, ResponseReceived)
                },
                retry(200),
            ),
            (
                "the attempt cap stops",
                AttemptFacts {
                    attempts: 4,
                    ..facts(Server, ResponseReceived)
                },
                give_up(GiveUp::AttemptsExhausted),
            ),
            (
                "an exhausted backoff stops",
                AttemptFacts {
                    next_backoff: None,
                    ..facts(Server, ResponseReceived)
                },
                give_up(GiveUp::AttemptsExhausted),
            ),
            (
                "400 on a batch of several items splits",
                AttemptFacts {
                    batch_len: 2,
                    ..facts(Rejected, ResponseReceived)
                },
                Decision::Split,
            ),
            (
                "400 on one item gives up",
                facts(Rejected, ResponseReceived),
                give_up(GiveUp::NotRetryable),
            ),
            (
                "auth failure on a batch gives up without splitting",
                AttemptFacts {
                    batch_len: 5,
                    ..facts(Permanent, ResponseReceived)
                },
                give_up(GiveUp::NotRetryable),
            ),
            (
                "a refusal wins over the attempt cap (split is not a retry)",
                AttemptFacts {
                    batch_len: 3,
                    attempts: 9,
                    ..facts(Rejected, ResponseReceived)
                },
                Decision::Split,
            ),
            (
                "a 5xx answer is retried even for a non-deduplicated sink",
                AttemptFacts {
                    server_deduplicates: false,
                    ..facts(Server, ResponseReceived)
                },
                retry(200),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(decide(&policy, &input), expected, "{name}");
        }
    }

    #[test]
    fn the_defaults_outlast_an_hour_long_outage_and_honour_long_retry_after() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts(), RetryPolicy::UNLIMITED_ATTEMPTS);
        assert_eq!(policy.total_deadline(), S(3_600));
        // Attempt 500 of a 5xx, 59 minutes in, is still retried.
        let late = AttemptFacts {
            attempts: 500,
            elapsed: S(59 * 60),
            next_backoff: Some(S(30)),
            ..facts(FailureKind::Server, SendPhase::ResponseReceived)
        };
        assert_eq!(decide(&policy, &late), Decision::Retry { after: S(30) });
        // A 20-minute Retry-After is waited as asked.
        let asked = AttemptFacts {
            failure: Classification::new(FailureKind::Throttled, SendPhase::ResponseReceived)
                .with_retry_after(S(1_200)),
            ..facts(FailureKind::Throttled, SendPhase::ResponseReceived)
        };
        assert_eq!(decide(&policy, &asked), Decision::Retry { after: S(1_200) });
        // A 2-hour one is shortened to the 1-hour cap, which the deadline still allows at once.
        let longer = AttemptFacts {
            failure: Classification::new(FailureKind::Throttled, SendPhase::ResponseReceived)
                .with_retry_after(S(7_200)),
            ..asked
        };
        assert_eq!(
            decide(&policy, &longer),
            Decision::Retry { after: S(3_600) }
        );
        // The same 2 hours asked 10 minutes in would end past the deadline: back to the caller.
        let past = AttemptFacts {
            elapsed: S(600),
            ..longer
        };
        assert_eq!(
            decide(&policy, &past),
            Decision::GiveUp(GiveUp::DeadlineExceeded)
        );
        // The backoff itself never stops first.
        assert!(policy.backoff(0).take(10_000).count() == 10_000);
    }

    #[test]
    fn disabled_policy_never_retries() {
        let policy = RetryPolicy::disabled();
        let input = facts(FailureKind::Server, SendPhase::ResponseReceived);
        assert_eq!(
            decide(&policy, &input),
            Decision::GiveUp(GiveUp::AttemptsExhausted)
        );
        assert_eq!(policy.backoff(0).count(), 0);
    }

    #[test]
    fn backoff_is_capped_jittered_and_reproducible_with_a_seed() {
        let policy = RetryPolicy::default()
            .with_max_attempts(6)
            .with_initial_backoff(MS(100))
            .with_max_backoff(MS(400))
            .with_jitter_seed(7);
        let a: Vec<_> = policy.backoff(1).collect();
        let b: Vec<_> = policy.backoff(1).collect();
        assert_eq!(a, b, "same seed and salt, same delays");
        assert_eq!(a.len(), 5, "max_attempts 6 allows 5 retries");
        let bases = [100, 200, 400, 400, 400];
        for (delay, base) in a.iter().zip(bases) {
            assert!(
                *delay >= MS(base) && *delay <= MS(2 * base),
                "{delay:?} not in [{base}, {}] ms",
                2 * base
            );
        }
        let c: Vec<_> = policy.backoff(2).collect();
        assert_ne!(a, c, "another batch jitters differently");
    }
}
