//! Opt-in retries for single calls.
//!
//! No call in this crate retries on its own: each makes exactly one attempt and returns a
//! classified [`Error`]. When you want a call sent again after a failure that is worth it,
//! wrap it in [`retry`] with a [`CallRetry`] and say how safe a resend is with an
//! [`Idempotency`]:
//!
//! ```no_run
//! use customerio_client::retry::{CallRetry, Idempotency, retry};
//! use customerio_client::{ClientConfig, Identifier, Region, SiteId, TrackApiKey, TrackClient};
//!
//! # async fn run() -> Result<(), customerio_client::Error> {
//! let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), ClientConfig::new(Region::Us))?;
//! let person = Identifier::id("user-42");
//! let policy = CallRetry::default();
//! // Deleting a person is idempotent: sending it twice deletes the same person once.
//! retry(&policy, Idempotency::Idempotent, || client.delete(&person)).await?;
//! # Ok(()) }
//! ```
//!
//! # How a failure is judged
//!
//! [`decide`] is a pure function of the policy, the call's idempotency, where the attempt
//! stands (its number, the time since the first attempt, the delay the backoff schedule
//! proposes) and the failure (kind, phase, server delay). In order:
//!
//! 1. a kind that is not retryable ([`ErrorKind::is_retryable`]: only transient failures,
//!    `429` and retryable server statuses are) stops;
//! 2. a call that is [`Idempotency::NotIdempotent`] stops unless the failure happened before
//!    anything was sent ([`Phase::NotSent`], e.g. a refused connection) or the server refused
//!    it with `429` (a throttled request was not processed): once the server may have acted on
//!    it, a second copy could apply it twice;
//! 3. the attempt cap ([`CallRetry::max_attempts`], which counts the first try) stops;
//! 4. the delay is the server's `Retry-After` when it sent one (cut to
//!    [`CallRetry::retry_after_cap`]), otherwise the backoff delay (cut to
//!    [`CallRetry::max_delay`]);
//! 5. if waiting that long would start the next attempt at or after the total deadline
//!    ([`CallRetry::deadline`]), it stops; otherwise it retries after the delay.
//!
//! The deadline bounds when a new attempt may *start*; an attempt already running is bounded
//! by the client's per-attempt timeout, so the worst case is `deadline + timeout`.
//!
//! The backoff schedule comes from [`backon`]'s exponential backoff: `base_delay`, doubled on
//! each retry, optionally with jitter that adds up to 100 % of the delay. Jitter is random by
//! default; [`Jitter::Seeded`] makes the schedule reproducible (tests).
//!
//! # Which Track v1 calls are safe to resend
//!
//! | Call | Idempotency | Why |
//! |---|---|---|
//! | `identify`, `identify_with` | [`Idempotent`](Idempotency::Idempotent) | an upsert: the same attributes land twice on the same person (send `_timestamp` so a late copy cannot win over a newer update) |
//! | `delete`, `suppress`, `unsuppress` | [`Idempotent`](Idempotency::Idempotent) | the second copy finds the state already reached |
//! | `add_device`, `delete_device` | [`Idempotent`](Idempotency::Idempotent) | the device is keyed by its token |
//! | `add_to_segment`, `remove_from_segment` | [`Idempotent`](Idempotency::Idempotent) | set membership |
//! | `track`, `track_anonymous` with an event `id` | [`DedupeId`](Idempotency::DedupeId) | Customer.io ignores a repeat of an event id it has seen; every attempt sends the same id because the request is built once, before the loop |
//! | `track`, `track_anonymous` without an `id` | [`NotIdempotent`](Idempotency::NotIdempotent) | a resend records the event twice and may trigger a campaign twice |
//! | `merge` | [`Idempotency::MERGE`] (= [`Idempotent`](Idempotency::Idempotent)) | the first copy deletes the secondary; a merge whose secondary or primary no longer exists does nothing, so a second copy is harmless. Pass [`NotIdempotent`](Idempotency::NotIdempotent) instead to never resend one (the same choice as the sync crate's `MergeResend::Refuse`) |
//! | `report_metric` | [`NotIdempotent`](Idempotency::NotIdempotent) | de-duplication of metrics is not documented |
//!
//! [`Event::idempotency`](crate::track::v1::Event::idempotency) gives the right value for an
//! event.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

use crate::error::{Error, ErrorKind, Phase};

/// How safe it is to send a call a second time after the server may have received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Idempotency {
    /// Applying the call twice has the same effect as once (upserts, deletes, set membership).
    Idempotent,
    /// The call carries an id the server de-duplicates on (a Track event `id`), and every
    /// attempt sends the same id.
    DedupeId,
    /// A second copy could apply the call twice (an event without an id, a merge). Retried only
    /// when the failure happened before anything was sent.
    NotIdempotent,
}

impl Idempotency {
    /// A merge's idempotency: resending is harmless (Customer.io deletes the secondary on the
    /// first copy, and a merge whose secondary or primary is missing does nothing). The one
    /// merge rule of the workspace; the dispatcher's batch sink follows it by default too.
    pub const MERGE: Idempotency = Idempotency::Idempotent;

    /// Whether the call may be resent after the server may have received it.
    pub fn allows_resend(self) -> bool {
        !matches!(self, Idempotency::NotIdempotent)
    }
}

/// How the backoff delays are randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Jitter {
    /// No jitter: the delays are exactly `base_delay`, `2 × base_delay`, … (cut at `max_delay`).
    Off,
    /// Adds a random share (0–100 %) of each delay, seeded from the system's randomness.
    #[default]
    Random,
    /// Like [`Jitter::Random`] but from a fixed seed, so the schedule is reproducible.
    Seeded(u64),
}

/// When to retry one call, how long to wait, and when to give up.
///
/// This is the policy for a call a caller sends by hand (see [`retry`]); the dispatcher in
/// `cio-segment-sync` has its own (`cio_segment_sync::dispatch::RetryPolicy`), with other
/// defaults, for batches.
///
/// Defaults: 3 attempts (the first included), base delay 500 ms doubling up to 8 s, random
/// jitter, `Retry-After` honoured up to 30 s, and no new attempt later than 60 s after the
/// first one started.
///
/// ```
/// use std::time::Duration;
/// use customerio_client::retry::{CallRetry, Jitter};
///
/// let policy = CallRetry::default()
///     .with_max_attempts(5)
///     .with_base_delay(Duration::from_millis(100))
///     .with_jitter(Jitter::Seeded(7));
/// assert_eq!(policy.max_attempts(), 5);
/// assert_eq!(CallRetry::disabled().max_attempts(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRetry {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    deadline: Duration,
    jitter: Jitter,
    honour_retry_after: bool,
    retry_after_cap: Duration,
}

impl Default for CallRetry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            deadline: Duration::from_secs(60),
            jitter: Jitter::Random,
            honour_retry_after: true,
            retry_after_cap: Duration::from_secs(30),
        }
    }
}

impl CallRetry {
    /// A policy that makes exactly one attempt.
    pub fn disabled() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Sets the most attempts, the first one included. `0` is taken as `1`.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the delay before the first retry; each further retry doubles it.
    pub fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Sets the longest backoff delay (jitter included).
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the total deadline: no attempt starts this long or later after the first one.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets how the backoff delays are randomised.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Waits what the server's `Retry-After` asks, but never longer than `cap`.
    pub fn with_retry_after_cap(mut self, cap: Duration) -> Self {
        self.honour_retry_after = true;
        self.retry_after_cap = cap;
        self
    }

    /// Ignores `Retry-After` and always uses the backoff schedule.
    pub fn ignoring_retry_after(mut self) -> Self {
        self.honour_retry_after = false;
        self
    }

    /// The most attempts, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay before the first retry.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The longest backoff delay.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The total deadline, counted from the start of the first attempt.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// How the backoff delays are randomised.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// Whether `Retry-After` is honoured.
    pub fn honours_retry_after(&self) -> bool {
        self.honour_retry_after
    }

    /// The longest `Retry-After` delay waited for.
    pub fn retry_after_cap(&self) -> Duration {
        self.retry_after_cap
    }

    /// The backoff schedule: one proposed delay per retry, endless (the attempt cap and the
    /// deadline are applied by [`decide`]).
    fn backoff(&self) -> impl backon::Backoff + use<> {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .without_max_times();
        match self.jitter {
            Jitter::Off => builder,
            Jitter::Random => builder.with_jitter(),
            Jitter::Seeded(seed) => builder.with_jitter().with_jitter_seed(seed),
        }
        .build()
    }
}

/// Where a retry loop stands after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Attempts made so far, the failed one included (`1` after the first try).
    pub number: u32,
    /// Time since the first attempt started.
    pub elapsed: Duration,
    /// The delay the backoff schedule proposes before the next attempt (jitter included).
    pub backoff: Duration,
}

/// What [`decide`] needs to know about a failure: its kind, its phase and the server's delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// When in the request it happened.
    pub phase: Phase,
    /// The delay the server asked for (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl From<&Error> for Failure {
    fn from(error: &Error) -> Self {
        Self {
            kind: error.kind(),
            phase: error.phase(),
            retry_after: error.retry_after(),
        }
    }
}

/// The answer of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Send the call again after this delay.
    Retry(Duration),
    /// Give up and return the error.
    Stop(StopReason),
}

/// Why a retry loop gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// Sending the same request again would fail the same way.
    NotRetryable(ErrorKind),
    /// The call is not idempotent and the server may have received it.
    NotIdempotent(Phase),
    /// The attempt cap was reached.
    AttemptsExhausted(u32),
    /// The next attempt would start at or after the total deadline.
    DeadlineReached,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::NotRetryable(kind) => write!(f, "a {kind:?} failure is not retryable"),
            StopReason::NotIdempotent(phase) => write!(
                f,
                "the call is not idempotent and failed in phase {phase:?}"
            ),
            StopReason::AttemptsExhausted(n) => write!(f, "all {n} attempts were used"),
            StopReason::DeadlineReached => f.write_str("the next attempt would miss the deadline"),
        }
    }
}

/// Decides whether to retry after a failed attempt, and after how long. Pure: the same inputs
/// always give the same answer. See the [module docs](self) for the rules.
///
/// ```
/// use std::time::Duration;
/// use customerio_client::retry::{decide, Attempt, CallRetry, Idempotency, RetryDecision, StopReason};
/// use customerio_client::Error;
///
/// let policy = CallRetry::default();
/// let attempt = Attempt { number: 1, elapsed: Duration::ZERO, backoff: Duration::from_millis(500) };
/// let invalid = Error::invalid("track.v1.event", "event name is empty");
/// assert!(matches!(
///     decide(&policy, Idempotency::Idempotent, attempt, &invalid),
///     RetryDecision::Stop(StopReason::NotRetryable(_))
/// ));
/// ```
pub fn decide(
    policy: &CallRetry,
    idempotency: Idempotency,
    attempt: Attempt,
    failure: impl Into<Failure>,
) -> RetryDecision {
    let failure = failure.into();
    if !failure.kind.is_retryable() {
        return RetryDecision::Stop(StopReason::NotRetryable(failure.kind));
    }
    // A 429 is the server saying it did not take the request: resending is safe for any call.
    let refused_unprocessed = failure.kind == ErrorKind::Throttled;
    if !idempotency.allows_resend() && failure.phase != Phase::NotSent && !refused_unprocessed {
        return RetryDecision::Stop(StopReason::NotIdempotent(failure.phase));
    }
    if attempt.number >= policy.max_attempts {
        return RetryDecision::Stop(StopReason::AttemptsExhausted(attempt.number));
    }
    let delay = match failure.retry_after.filter(|_| policy.honour_retry_after) {
        Some(asked) => asked.min(policy.retry_after_cap),
        None => attempt.backoff.min(policy.max_delay),
    };
    if attempt.elapsed.saturating_add(delay) >= policy.deadline {
        return RetryDecision::Stop(StopReason::DeadlineReached);
    }
    RetryDecision::Retry(delay)
}

/// Runs `call` until it succeeds or [`decide`] says stop, sleeping with tokio between
/// attempts; returns the first success or the last error.
///
/// `call` builds a fresh future per attempt. Build the request (and any event `id`) *before*
/// calling `retry`, so every attempt sends the same one. Runs on a tokio runtime with the time
/// driver enabled (it sleeps with `tokio::time`).
///
/// ```no_run
/// use customerio_client::retry::{retry, CallRetry};
/// use customerio_client::track::v1::Event;
/// use customerio_client::{ClientConfig, Identifier, Region, SiteId, TrackApiKey, TrackClient};
///
/// # async fn run(id: ulid::Ulid) -> Result<(), customerio_client::Error> {
/// let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), ClientConfig::new(Region::Us))?;
/// let person = Identifier::id("user-42");
/// let event = Event::new("order_completed").id(id);
/// retry(&CallRetry::default(), event.idempotency(), || client.track(&person, &event)).await?;
/// # Ok(()) }
/// ```
pub async fn retry<T, F, Fut>(
    policy: &CallRetry,
    idempotency: Idempotency,
    call: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let start = tokio::time::Instant::now();
    let mut failed: u32 = 0;
    call.retry(policy.backoff())
        .sleep(backon::TokioSleeper)
        .adjust(|error: &Error, backoff| {
            failed = failed.saturating_add(1);
            // The schedule is endless; an exhausted one would only mean "stop".
            let backoff = backoff?;
            let attempt = Attempt {
                number: failed,
                elapsed: start.elapsed(),
                backoff,
            };
            match decide(policy, idempotency, attempt, error) {
                RetryDecision::Retry(delay) => {
                    tracing::debug!(
                        operation = error.operation(),
                        attempt = failed,
                        kind = ?error.kind(),
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "Retrying the customer.io call."
                    );
                    Some(delay)
                }
                RetryDecision::Stop(reason) => {
                    tracing::debug!(
                        operation = error.operation(),
                        attempt = failed,
                        kind = ?error.kind(),
                        %reason,
                        "Giving up on the customer.io call."
                    );
                    None
                }
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> CallRetry {
        CallRetry::default()
            .with_max_attempts(4)
            .with_base_delay(100 * MS)
            .with_max_delay(1000 * MS)
            .with_deadline(10_000 * MS)
            .with_retry_after_cap(3000 * MS)
            .with_jitter(Jitter::Off)
    }

    fn failure(kind: ErrorKind, phase: Phase, retry_after: Option<Duration>) -> Failure {
        Failure {
            kind,
            phase,
            retry_after,
        }
    }

    fn attempt(number: u32, elapsed_ms: u64, backoff_ms: u64) -> Attempt {
        Attempt {
            number,
            elapsed: Duration::from_millis(elapsed_ms),
            backoff: Duration::from_millis(backoff_ms),
        }
    }

    #[test]
    fn decision_table() {
        use ErrorKind::*;
        use Idempotency::*;
        use Phase::*;
        use RetryDecision::{Retry, Stop};
        let got = ResponseReceived;
        let p = policy();
        #[rustfmt::skip]
        let table: &[(&str, Idempotency, Attempt, Failure, RetryDecision)] = &[
            // Retryable kinds retry after the backoff delay.
            ("500 retries", Idempotent, attempt(1, 0, 100), failure(Server, got, None), Retry(100 * MS)),
            ("429 retries", Idempotent, attempt(1, 0, 100), failure(Throttled, got, None), Retry(100 * MS)),
            ("timeout retries", Idempotent, attempt(2, 50, 200), failure(Transient, MaybeSent, None), Retry(200 * MS)),
            ("refused connect retries", Idempotent, attempt(1, 0, 100), failure(Transient, NotSent, None), Retry(100 * MS)),
            // Kinds that fail the same way again stop at once, whatever the idempotency.
            ("400 stops", Idempotent, attempt(1, 0, 100), failure(Client, got, None), Stop(StopReason::NotRetryable(Client))),
            ("401 stops", Idempotent, attempt(1, 0, 100), failure(Auth, got, None), Stop(StopReason::NotRetryable(Auth))),
            ("invalid stops", DedupeId, attempt(1, 0, 100), failure(Invalid, NotSent, None), Stop(StopReason::NotRetryable(Invalid))),
            ("decode stops", Idempotent, attempt(1, 0, 100), failure(Decode, got, None), Stop(StopReason::NotRetryable(Decode))),
            ("config stops", Idempotent, attempt(1, 0, 100), failure(Config, NotSent, None), Stop(StopReason::NotRetryable(Config))),
            // Retry-After wins over the backoff, and is cut at the cap.
            ("retry-after honoured", Idempotent, attempt(1, 0, 100), failure(Throttled, got, Some(2000 * MS)), Retry(2000 * MS)),
            ("retry-after shorter than backoff", Idempotent, attempt(2, 0, 400), failure(Throttled, got, Some(Duration::ZERO)), Retry(Duration::ZERO)),
            ("retry-after capped", Idempotent, attempt(1, 0, 100), failure(Throttled, got, Some(60_000 * MS)), Retry(3000 * MS)),
            ("retry-after on 503", Idempotent, attempt(1, 0, 100), failure(Server, got, Some(1500 * MS)), Retry(1500 * MS)),
            // The backoff delay is cut at max_delay (jitter can push it over).
            ("backoff capped", Idempotent, attempt(3, 0, 1800), failure(Server, got, None), Retry(1000 * MS)),
            // The attempt cap counts the first try.
            ("last allowed retry", Idempotent, attempt(3, 0, 400), failure(Server, got, None), Retry(400 * MS)),
            ("attempt cap", Idempotent, attempt(4, 0, 800), failure(Server, got, None), Stop(StopReason::AttemptsExhausted(4))),
            // The deadline: no attempt may start at or after it.
            ("deadline not reached", Idempotent, attempt(1, 9_899, 100), failure(Server, got, None), Retry(100 * MS)),
            ("deadline reached exactly", Idempotent, attempt(1, 9_900, 100), failure(Server, got, None), Stop(StopReason::DeadlineReached)),
            ("deadline passed", Idempotent, attempt(1, 12_000, 100), failure(Server, got, None), Stop(StopReason::DeadlineReached)),
            ("retry-after beyond deadline", Idempotent, attempt(1, 8_000, 100), failure(Throttled, got, Some(2500 * MS)), Stop(StopReason::DeadlineReached)),
            // Not idempotent: only a failure before sending may be retried.
            ("merge: a timeout is resent (harmless)", Idempotency::MERGE, attempt(1, 0, 100), failure(Transient, MaybeSent, None), Retry(100 * MS)),
            ("merge refused resends: a timeout stops", NotIdempotent, attempt(1, 0, 100), failure(Transient, MaybeSent, None), Stop(StopReason::NotIdempotent(MaybeSent))),
            ("no id: timeout stops", NotIdempotent, attempt(1, 0, 100), failure(Transient, MaybeSent, None), Stop(StopReason::NotIdempotent(MaybeSent))),
            ("no id: 500 stops", NotIdempotent, attempt(1, 0, 100), failure(Server, got, None), Stop(StopReason::NotIdempotent(got))),
            ("no id: 429 retries (the server did not take it)", NotIdempotent, attempt(1, 0, 100), failure(Throttled, got, Some(MS)), Retry(MS)),
            ("no id: refused connect retries", NotIdempotent, attempt(1, 0, 100), failure(Transient, NotSent, None), Retry(100 * MS)),
            ("no id: 400 is still not retryable", NotIdempotent, attempt(1, 0, 100), failure(Client, got, None), Stop(StopReason::NotRetryable(Client))),
            // A dedupe id makes a maybe-sent write safe to resend.
            ("dedupe id: timeout retries", DedupeId, attempt(1, 0, 100), failure(Transient, MaybeSent, None), Retry(100 * MS)),
            ("dedupe id: 500 retries", DedupeId, attempt(1, 0, 100), failure(Server, got, None), Retry(100 * MS)),
        ];
        for (name, idempotency, at, fail, expected) in table {
            assert_eq!(decide(&p, *idempotency, *at, *fail), *expected, "{name}");
        }
    }

    #[test]
    fn ignoring_retry_after_uses_the_backoff() {
        let p = policy().ignoring_retry_after();
        let decision = decide(
            &p,
            Idempotency::Idempotent,
            attempt(1, 0, 100),
            failure(
                ErrorKind::Throttled,
                Phase::ResponseReceived,
                Some(2000 * MS),
            ),
        );
        assert_eq!(decision, RetryDecision::Retry(100 * MS));
    }

    #[test]
    fn decide_reads_kind_phase_and_retry_after_from_an_error() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("2"),
        );
        let err = Error::status(
            "track.v1.identify",
            reqwest::StatusCode::TOO_MANY_REQUESTS,
            &headers,
            b"",
            std::time::SystemTime::UNIX_EPOCH,
        );
        assert_eq!(
            Failure::from(&err),
            failure(
                ErrorKind::Throttled,
                Phase::ResponseReceived,
                Some(2000 * MS)
            )
        );
        assert_eq!(
            decide(&policy(), Idempotency::DedupeId, attempt(1, 0, 100), &err),
            RetryDecision::Retry(2000 * MS)
        );
    }

    #[test]
    fn zero_attempts_means_one() {
        let p = CallRetry::default().with_max_attempts(0);
        assert_eq!(p.max_attempts(), 1);
        assert_eq!(
            decide(
                &p,
                Idempotency::Idempotent,
                attempt(1, 0, 100),
                failure(ErrorKind::Server, Phase::ResponseReceived, None)
            ),
            RetryDecision::Stop(StopReason::AttemptsExhausted(1))
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_without_jitter() {
        let delays: Vec<Duration> = policy().backoff().take(6).collect();
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn seeded_jitter_is_reproducible_and_bounded() {
        let p = policy().with_jitter(Jitter::Seeded(42));
        let a: Vec<Duration> = p.backoff().take(8).collect();
        let b: Vec<Duration> = p.backoff().take(8).collect();
        assert_eq!(a, b);
        let plain = [100u64, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (delay, base) in a.iter().zip(plain) {
            let base = Duration::from_millis(base);
            assert!(*delay >= base && *delay <= 2 * base, "{delay:?}");
        }
        let other: Vec<Duration> = policy()
            .with_jitter(Jitter::Seeded(43))
            .backoff()
            .take(8)
            .collect();
        assert_ne!(a, other);
    }

    #[test]
    fn stop_reasons_read_as_sentences() {
        assert_eq!(
            StopReason::AttemptsExhausted(3).to_string(),
            "all 3 attempts were used"
        );
        assert_eq!(
            StopReason::NotIdempotent(Phase::MaybeSent).to_string(),
            "the call is not idempotent and failed in phase MaybeSent"
        );
    }
}
