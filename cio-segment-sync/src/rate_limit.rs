//! Rate limiting: one token per request attempt, retries included, so a workspace budget holds.
//!
//! [`RateLimiter`] is the small object-safe trait stores implement (one call:
//! [`try_acquire`](RateLimiter::try_acquire)); [`RateLimiterExt::acquire`] waits for a token on
//! top of it. [`GovernorLimiter`] is the in-process implementation (GCRA from the `governor`
//! crate); the `redis` feature adds one shared by many workers. The documented Customer.io limits
//! are constants in [`customerio_client::limits`].
//!
//! ```
//! use std::num::NonZeroU32;
//! use cio_segment_sync::rate_limit::{Admission, GovernorLimiter, RateLimiter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cio_segment_sync::StoreError> {
//! let limiter = GovernorLimiter::per_second(NonZeroU32::new(2).unwrap());
//! assert_eq!(limiter.try_acquire().await?, Admission::Granted);
//! assert_eq!(limiter.try_acquire().await?, Admission::Granted);
//! assert!(matches!(limiter.try_acquire().await?, Admission::Wait(_)));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use tokio::time::Instant;

use crate::store::StoreError;

/// The answer to [`RateLimiter::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A token was taken: the attempt may start now.
    Granted,
    /// No token now; the earliest one is this far away.
    Wait(Duration),
}

/// A budget of request attempts. Object-safe: hosts hold `Arc<dyn RateLimiter>`.
///
/// Besides tokens, a limiter carries the **pause** of its API: when the server answers `429`
/// (or an outage with a `Retry-After`), the dispatcher calls [`pause`](Self::pause) and every
/// caller of the limiter — every worker, when the limiter is shared through Redis — is told to
/// wait ([`Admission::Wait`]) until the pause ends. After a pause, tokens come back at the
/// steady rate, not as a burst, so the workers do not rush the server together on recovery.
#[async_trait]
pub trait RateLimiter: fmt::Debug + Send + Sync + 'static {
    /// Takes one token if one is available now.
    async fn try_acquire(&self) -> Result<Admission, StoreError>;

    /// Grants no token for `delay` from now (a pause already running longer is kept).
    async fn pause(&self, delay: Duration) -> Result<(), StoreError>;
}

/// Conveniences on top of [`RateLimiter`].
pub trait RateLimiterExt: RateLimiter {
    /// Waits (with `tokio::time::sleep`) until a token is granted.
    fn acquire(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            loop {
                match self.try_acquire().await? {
                    Admission::Granted => return Ok(()),
                    Admission::Wait(delay) => tokio::time::sleep(delay).await,
                }
            }
        }
    }
}

impl<T: RateLimiter + ?Sized> RateLimiterExt for T {}

#[async_trait]
impl<T: RateLimiter + ?Sized> RateLimiter for Arc<T> {
    async fn try_acquire(&self) -> Result<Admission, StoreError> {
        (**self).try_acquire().await
    }

    async fn pause(&self, delay: Duration) -> Result<(), StoreError> {
        (**self).pause(delay).await
    }
}

/// No limit at all: every attempt is granted. For hosts that limit elsewhere, and tests.
///
/// It keeps no state, so it shares no pause either: a dispatcher over it still pauses its own
/// sends after a `429` (in process), but other dispatchers are not told.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

#[async_trait]
impl RateLimiter for Unlimited {
    async fn try_acquire(&self) -> Result<Admission, StoreError> {
        Ok(Admission::Granted)
    }

    /// Unlimited holds no pause (see the type's docs).
    async fn pause(&self, _delay: Duration) -> Result<(), StoreError> {
        Ok(())
    }
}

type Gcra<C> =
    governor::RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// An in-process limiter (GCRA, from `governor`). One per vendor API per process; for several
/// processes sharing one workspace budget use the Redis limiter (feature `redis`).
///
/// A [pause](RateLimiter::pause) holds every caller of this limiter (measured on tokio's clock,
/// so a test's paused clock drives it); when it ends, each caller
/// waits an extra random slice (up to a tenth of the pause, at most 1 s) so the callers of one
/// process do not all retry in the same instant.
pub struct GovernorLimiter<C: Clock = DefaultClock> {
    quota: Quota,
    inner: Gcra<C>,
    paused_until: Mutex<Option<(Instant, Duration)>>,
}

impl GovernorLimiter<DefaultClock> {
    /// `rate` attempts per second, with a burst of `rate`.
    pub fn per_second(rate: NonZeroU32) -> Self {
        Self::with_quota(Quota::per_second(rate))
    }

    /// Any `governor` quota (e.g. one request per 10 s for broadcast triggers).
    pub fn with_quota(quota: Quota) -> Self {
        Self::with_clock(quota, DefaultClock::default())
    }
}

impl<C: Clock> GovernorLimiter<C> {
    /// A limiter reading time from `clock` (tests use `governor::clock::FakeRelativeClock`).
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self {
            quota,
            inner: governor::RateLimiter::direct_with_clock(quota, clock),
            paused_until: Mutex::new(None),
        }
    }
}

impl<C: Clock> fmt::Debug for GovernorLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GovernorLimiter")
            .field("quota", &self.quota)
            .finish()
    }
}

#[async_trait]
impl<C> RateLimiter for GovernorLimiter<C>
where
    C: Clock + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    async fn try_acquire(&self) -> Result<Admission, StoreError> {
        if let Some(wait) = self.pause_left() {
            return Ok(Admission::Wait(wait));
        }
        match self.inner.check() {
            Ok(()) => Ok(Admission::Granted),
            Err(not_until) => Ok(Admission::Wait(
                not_until.wait_time_from(self.inner.clock().now()),
            )),
        }
    }

    async fn pause(&self, delay: Duration) -> Result<(), StoreError> {
        let until = Instant::now() + delay;
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if paused.is_none_or(|(current, _)| current < until) {
            *paused = Some((until, delay));
        }
        Ok(())
    }
}

impl<C: Clock> GovernorLimiter<C> {
    /// How long the running pause still holds callers, with this caller's jitter; `None` when
    /// no pause runs.
    fn pause_left(&self) -> Option<Duration> {
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (until, length) = (*paused)?;
        let now = Instant::now();
        if until <= now {
            *paused = None;
            return None;
        }
        Some(until - now + resume_jitter(length))
    }
}

/// A random extra wait after a pause of `length`: up to a tenth of it, at most 1 s.
pub(crate) fn resume_jitter(length: Duration) -> Duration {
    let spread = (length / 10).min(Duration::from_secs(1));
    if spread.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
    // A fresh `RandomState` is randomly keyed: enough randomness for a jitter, without a
    // random-number dependency.
    let draw = std::collections::hash_map::RandomState::new().hash_one(nanos);
    Duration::from_nanos(draw % nanos.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[tokio::test]
    async fn admits_the_quota_per_window_on_a_controlled_clock() {
        let clock = FakeRelativeClock::default();
        let limiter = GovernorLimiter::with_clock(Quota::per_second(nz(5)), clock.clone());
        let mut granted = 0;
        for _ in 0..20 {
            if limiter.try_acquire().await.unwrap() == Admission::Granted {
                granted += 1;
            }
        }
        assert_eq!(granted, 5);
        match limiter.try_acquire().await.unwrap() {
            Admission::Wait(d) => assert_eq!(d, Duration::from_millis(200)),
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_millis(200));
        assert_eq!(limiter.try_acquire().await.unwrap(), Admission::Granted);
        // A whole second later the full burst is back.
        clock.advance(Duration::from_secs(1));
        let mut granted = 0;
        for _ in 0..20 {
            if limiter.try_acquire().await.unwrap() == Admission::Granted {
                granted += 1;
            }
        }
        assert_eq!(granted, 5);
    }

    crate::rate_limiter_conformance!(gcra, async {
        GovernorLimiter::per_second(nz(crate::testing::rate_limit::RATE))
    });
    crate::rate_limiter_conformance!(gcra_arc_dyn, async {
        Arc::new(GovernorLimiter::per_second(nz(
            crate::testing::rate_limit::RATE,
        ))) as Arc<dyn RateLimiter>
    });

    #[tokio::test]
    async fn a_pause_holds_every_caller_until_it_ends() {
        let limiter = Arc::new(GovernorLimiter::per_second(nz(1_000)));
        let other = Arc::clone(&limiter);
        limiter.pause(Duration::from_secs(60)).await.unwrap();
        // A shorter pause does not shorten the running one.
        limiter.pause(Duration::from_millis(10)).await.unwrap();
        match other.try_acquire().await.unwrap() {
            // At most the pause plus the 1 s cap of the jitter.
            Admission::Wait(wait) => assert!(
                wait > Duration::from_secs(50) && wait <= Duration::from_secs(61),
                "{wait:?}"
            ),
            Admission::Granted => panic!("granted during a pause"),
        }
    }

    #[tokio::test]
    async fn an_ended_pause_grants_again() {
        let limiter = GovernorLimiter::per_second(nz(1_000));
        limiter.pause(Duration::from_millis(20)).await.unwrap();
        assert!(matches!(
            limiter.try_acquire().await.unwrap(),
            Admission::Wait(_)
        ));
        tokio::time::sleep(Duration::from_millis(25)).await;
        assert_eq!(limiter.try_acquire().await.unwrap(), Admission::Granted);
    }

    #[test]
    fn resume_jitter_stays_within_a_tenth_and_a_second() {
        assert_eq!(resume_jitter(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(resume_jitter(Duration::from_secs(5)) <= Duration::from_millis(500));
            assert!(resume_jitter(Duration::from_secs(3_600)) <= Duration::from_secs(1));
        }
    }

    #[tokio::test]
    async fn unlimited_always_grants_and_dyn_works() {
        let limiter: Arc<dyn RateLimiter> = Arc::new(Unlimited);
        for _ in 0..100 {
            limiter.acquire().await.unwrap();
        }
    }
}
