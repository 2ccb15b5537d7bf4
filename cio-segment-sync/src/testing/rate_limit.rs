//! The [`RateLimiter`] conformance cases. Each takes a fresh limiter admitting
//! [`RATE`] attempts per second with a burst of [`RATE`] (as
//! [`GovernorLimiter::per_second`](crate::rate_limit::GovernorLimiter::per_second) and
//! [`RedisRateLimiter::new`](crate::redis::RedisRateLimiter) with a one-second period build).
//!
//! Pauses are measured in real time (a shared limiter's pause lives in its store); the cases
//! assert what the limiter answers, with bounds generous enough for a busy machine.

use std::time::Duration;

use crate::rate_limit::{Admission, RateLimiter};

/// The quota the suite's constructor must give its limiter: attempts per second, and burst.
pub const RATE: u32 = 5;

async fn grants(limiter: &dyn RateLimiter, tries: usize) -> usize {
    let mut granted = 0;
    for _ in 0..tries {
        if limiter.try_acquire().await.unwrap() == Admission::Granted {
            granted += 1;
        }
    }
    granted
}

async fn wait_of(limiter: &dyn RateLimiter) -> Duration {
    match limiter.try_acquire().await.unwrap() {
        Admission::Wait(wait) => wait,
        Admission::Granted => panic!("a token was granted where none should be"),
    }
}

/// A fresh limiter grants its burst, then asks to wait less than one period.
pub async fn grants_the_burst_then_waits(limiter: &dyn RateLimiter) {
    assert_eq!(grants(limiter, RATE as usize * 4).await, RATE as usize);
    let wait = wait_of(limiter).await;
    assert!(
        !wait.is_zero() && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
}

/// During a pause no token is granted, and the wait covers the pause.
pub async fn a_pause_grants_nothing(limiter: &dyn RateLimiter) {
    limiter.pause(Duration::from_secs(60)).await.unwrap();
    assert_eq!(grants(limiter, 3).await, 0);
    let wait = wait_of(limiter).await;
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(62),
        "{wait:?}"
    );
}

/// A shorter pause never shortens a longer one already running.
pub async fn a_shorter_pause_keeps_the_longer(limiter: &dyn RateLimiter) {
    limiter.pause(Duration::from_secs(60)).await.unwrap();
    limiter.pause(Duration::from_millis(1)).await.unwrap();
    let wait = wait_of(limiter).await;
    assert!(wait > Duration::from_secs(50), "{wait:?}");
}

/// A longer pause extends a shorter one.
pub async fn a_longer_pause_extends_the_shorter(limiter: &dyn RateLimiter) {
    limiter.pause(Duration::from_secs(5)).await.unwrap();
    limiter.pause(Duration::from_secs(120)).await.unwrap();
    let wait = wait_of(limiter).await;
    assert!(wait > Duration::from_secs(100), "{wait:?}");
}

/// Once a pause has run out, tokens are granted again.
pub async fn an_ended_pause_grants_again(limiter: &dyn RateLimiter) {
    limiter.pause(Duration::from_millis(100)).await.unwrap();
    assert_eq!(grants(limiter, 1).await, 0);
    // Poll until granted: the outcome is asserted, the bound only stops a broken limiter from
    // hanging the suite.
    for _ in 0..300 {
        match limiter.try_acquire().await.unwrap() {
            Admission::Granted => return,
            Admission::Wait(wait) => tokio::time::sleep(wait.min(Duration::from_millis(20))).await,
        }
    }
    panic!("the pause never ended");
}
