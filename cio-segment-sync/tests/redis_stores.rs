//! The store conformance suites on a real `redis-server` (features `redis` + `testing`).
//!
//! Each test starts its own throwaway server on a unix socket (or uses
//! `CIO_SYNC_TEST_REDIS_URL`) under a unique key prefix.

use std::time::Duration;

use cio_segment_sync::StoreError;
use cio_segment_sync::dedupe::{Claim, Deduper};
use cio_segment_sync::identity::{IdentityKey, IdentityStore};
use cio_segment_sync::redis::{
    RedisActivityStore, RedisDeduper, RedisIdentityStore, RedisMembershipStore, RedisProgressStore,
};
use cio_segment_sync::testing::Guarded;
use cio_segment_sync::testing::redis_server::TestRedis;

async fn deduper() -> Guarded<RedisDeduper, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisDeduper::new(guard.connect().await),
        guard,
    }
}

async fn identity() -> Guarded<RedisIdentityStore, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisIdentityStore::new(guard.connect().await),
        guard,
    }
}

async fn activity() -> Guarded<RedisActivityStore, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisActivityStore::new(guard.connect().await),
        guard,
    }
}

async fn progress() -> Guarded<RedisProgressStore, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisProgressStore::new(guard.connect().await),
        guard,
    }
}

async fn membership() -> Guarded<RedisMembershipStore, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisMembershipStore::new(guard.connect().await),
        guard,
    }
}

async fn limiter() -> Guarded<cio_segment_sync::redis::RedisRateLimiter, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: cio_segment_sync::redis::RedisRateLimiter::new(
            guard.connect().await,
            "conformance",
            std::num::NonZeroU32::new(cio_segment_sync::testing::rate_limit::RATE).unwrap(),
            Duration::from_secs(1),
        ),
        guard,
    }
}

cio_segment_sync::rate_limiter_conformance!(redis_limiter, limiter());
cio_segment_sync::membership_store_conformance!(redis_membership, membership());
cio_segment_sync::progress_store_conformance!(redis_progress, progress());
cio_segment_sync::activity_store_conformance!(redis_activity, activity());
cio_segment_sync::deduper_conformance!(redis_deduper, deduper());
cio_segment_sync::identity_store_conformance!(redis_identity, identity());

#[tokio::test]
async fn two_connections_share_claims() {
    let server = TestRedis::start().await;
    let a = RedisDeduper::new(server.connect().await);
    let b = RedisDeduper::new(server.connect().await);
    let Claim::First(token) = a.claim("shared", Duration::from_secs(30)).await.unwrap() else {
        panic!("first claim")
    };
    assert_eq!(
        b.claim("shared", Duration::from_secs(30)).await.unwrap(),
        Claim::InFlight
    );
    a.commit("shared", &token).await.unwrap();
    assert_eq!(
        b.claim("shared", Duration::from_secs(30)).await.unwrap(),
        Claim::Done
    );
}

#[tokio::test]
async fn prefixes_isolate_runs() {
    let server = TestRedis::start().await;
    let one = RedisIdentityStore::new(server.config().with_prefix("one:").connect().await.unwrap());
    let two = RedisIdentityStore::new(server.config().with_prefix("two:").connect().await.unwrap());
    one.link("u1", &[IdentityKey::AnonymousId("a1".into())])
        .await
        .unwrap();
    let a1 = IdentityKey::AnonymousId("a1".into());
    assert_eq!(one.resolve(&a1).await.unwrap().as_deref(), Some("u1"));
    assert_eq!(two.resolve(&a1).await.unwrap(), None);
}

#[tokio::test]
async fn unavailable_redis_is_a_typed_error_and_recovers() {
    let mut server = TestRedis::start().await;
    let dedupe = RedisDeduper::new(server.connect().await);
    server.kill();
    match dedupe.claim("k", Duration::from_secs(30)).await {
        Err(StoreError::Unavailable { .. }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    server.restart().await;
    // The connection manager reconnects by itself; the first calls after a restart may still
    // meet the broken connection, so poll until it answers (the outcome is asserted, not time).
    let mut answer = None;
    for _ in 0..300 {
        match dedupe.claim("k", Duration::from_secs(30)).await {
            Ok(claim) => {
                answer = Some(claim);
                break;
            }
            Err(StoreError::Unavailable { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(matches!(answer, Some(Claim::First(_))), "{answer:?}");
}

#[tokio::test]
async fn shared_limiter_admits_the_quota_across_four_workers() {
    use std::num::NonZeroU32;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use cio_segment_sync::rate_limit::{Admission, RateLimiter};
    use cio_segment_sync::redis::{LimiterClock, RedisRateLimiter};

    let server = TestRedis::start().await;
    // A clock the test controls, in unix milliseconds.
    let now_ms = Arc::new(AtomicU64::new(1_700_000_000_000));
    let clock = {
        let now_ms = now_ms.clone();
        LimiterClock::Custom(Arc::new(move || now_ms.load(Ordering::SeqCst) as f64))
    };
    let rate = NonZeroU32::new(10).unwrap();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let limiter = RedisRateLimiter::new(
            server.connect().await,
            "workspace-1",
            rate,
            Duration::from_secs(1),
        )
        .with_clock(clock.clone());
        workers.push(limiter);
    }

    async fn attempts(workers: &[RedisRateLimiter], each: usize) -> usize {
        let runs = workers.iter().map(|limiter| async move {
            let mut granted = 0;
            for _ in 0..each {
                if limiter.try_acquire().await.unwrap() == Admission::Granted {
                    granted += 1;
                }
            }
            granted
        });
        futures::future::join_all(runs).await.into_iter().sum()
    }

    // One window: 4 workers × 25 attempts, exactly the quota gets through.
    assert_eq!(attempts(&workers, 25).await, 10);
    // Half a window later, half the quota is back.
    now_ms.fetch_add(500, Ordering::SeqCst);
    assert_eq!(attempts(&workers, 25).await, 5);
    // A denied attempt says how long to wait.
    match workers[0].try_acquire().await.unwrap() {
        Admission::Wait(wait) => assert_eq!(wait, Duration::from_millis(100)),
        other => panic!("{other:?}"),
    }
    // A full window later the whole burst is back, and no more.
    now_ms.fetch_add(1_000, Ordering::SeqCst);
    assert_eq!(attempts(&workers, 25).await, 10);
}

#[tokio::test]
async fn one_workers_pause_holds_every_worker_and_recovery_comes_at_the_steady_rate() {
    use std::num::NonZeroU32;

    use cio_segment_sync::rate_limit::{Admission, RateLimiter};
    use cio_segment_sync::redis::RedisRateLimiter;

    let server = TestRedis::start().await;
    let rate = NonZeroU32::new(100).unwrap();
    let a = RedisRateLimiter::new(
        server.connect().await,
        "track",
        rate,
        Duration::from_secs(1),
    );
    let b = RedisRateLimiter::new(
        server.connect().await,
        "track",
        rate,
        Duration::from_secs(1),
    );
    // Worker `a` met a 429 asking for 300 ms; worker `b` never saw it and waits all the same.
    a.pause(Duration::from_millis(300)).await.unwrap();
    match b.try_acquire().await.unwrap() {
        Admission::Wait(wait) => assert!(
            wait > Duration::from_millis(100) && wait <= Duration::from_millis(300),
            "{wait:?}"
        ),
        Admission::Granted => panic!("granted during another worker's pause"),
    }
    // Real time (Redis's clock): wait until the pause ends, then count what a burst of attempts
    // from both workers gets: tokens come back one interval (10 ms) at a time, not as the full
    // burst of 100 a fresh limiter would grant.
    loop {
        match b.try_acquire().await.unwrap() {
            Admission::Granted => break,
            Admission::Wait(wait) => tokio::time::sleep(wait).await,
        }
    }
    let mut granted = 0;
    for _ in 0..50 {
        for limiter in [&a, &b] {
            if limiter.try_acquire().await.unwrap() == Admission::Granted {
                granted += 1;
            }
        }
    }
    assert!(
        granted < 50,
        "{granted} of 100 attempts right after the pause were granted"
    );
}

#[tokio::test]
async fn limiter_on_the_server_clock_grants_a_burst() {
    use std::num::NonZeroU32;

    use cio_segment_sync::rate_limit::{Admission, RateLimiter};
    use cio_segment_sync::redis::RedisRateLimiter;

    let server = TestRedis::start().await;
    // A long period, so the server clock cannot refill the bucket during the test.
    let limiter = RedisRateLimiter::new(
        server.connect().await,
        "w",
        NonZeroU32::new(3).unwrap(),
        Duration::from_secs(3600),
    );
    let mut granted = 0;
    for _ in 0..10 {
        if limiter.try_acquire().await.unwrap() == Admission::Granted {
            granted += 1;
        }
    }
    assert_eq!(granted, 3);
}
