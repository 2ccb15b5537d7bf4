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
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};

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
#[async_trait]
pub trait RateLimiter: fmt::Debug + Send + Sync + 'static {
    /// Takes one token if one is available now.
    async fn try_acquire(&self) -> Result<Admission, StoreError>;
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
}

/// No limit at all: every attempt is granted. For hosts that limit elsewhere, and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

#[async_trait]
impl RateLimiter for Unlimited {
    async fn try_acquire(&self) -> Result<Admission, StoreError> {
        Ok(Admission::Granted)
    }
}

type Gcra<C> =
    governor::RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// An in-process limiter (GCRA, from `governor`). One per vendor API per process; for several
/// processes sharing one workspace budget use the Redis limiter (feature `redis`).
pub struct GovernorLimiter<C: Clock = DefaultClock> {
    quota: Quota,
    inner: Gcra<C>,
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
        match self.inner.check() {
            Ok(()) => Ok(Admission::Granted),
            Err(not_until) => Ok(Admission::Wait(
                not_until.wait_time_from(self.inner.clock().now()),
            )),
        }
    }
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

    #[tokio::test]
    async fn unlimited_always_grants_and_dyn_works() {
        let limiter: Arc<dyn RateLimiter> = Arc::new(Unlimited);
        for _ in 0..100 {
            limiter.acquire().await.unwrap();
        }
    }
}
