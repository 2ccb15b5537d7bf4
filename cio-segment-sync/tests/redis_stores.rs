//! The store conformance suites on a real `redis-server` (features `redis` + `testing`).
//!
//! Each test starts its own throwaway server on a unix socket (or uses
//! `CIO_SYNC_TEST_REDIS_URL`) under a unique key prefix.

use std::time::Duration;

use cio_segment_sync::StoreError;
use cio_segment_sync::activity::ActivityStore;
use cio_segment_sync::dedupe::{Claim, Deduper};
use cio_segment_sync::identity::{IdentityKey, IdentityStore};
use cio_segment_sync::redis::{
    RedisActivityStore, RedisDeduper, RedisIdentityStore, RedisLeaseStore, RedisMembershipStore,
    RedisProgressStore,
};
use cio_segment_sync::store::LeaseStore;
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

/// With a time-to-live far longer than the suite, so nothing expires under it: the suite
/// checks the scripts behave the same with the expiry bookkeeping on.
async fn activity_with_ttl() -> Guarded<RedisActivityStore, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisActivityStore::new(guard.connect().await).with_ttl(Duration::from_secs(3600)),
        guard,
    }
}

async fn leases() -> Guarded<RedisLeaseStore, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisLeaseStore::new(guard.connect().await),
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
cio_segment_sync::activity_store_conformance!(redis_activity_with_ttl, activity_with_ttl());
cio_segment_sync::lease_store_conformance!(redis_lease, leases());
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

async fn raw(server: &TestRedis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn pttl(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(raw).await.unwrap()
}

#[tokio::test]
async fn activity_keys_get_the_configured_ttl_at_every_write() {
    let server = TestRedis::start().await;
    let prefix = server.config().prefix().to_owned();
    let ttl = Duration::from_secs(32 * 86_400);
    let store = RedisActivityStore::new(server.connect().await).with_ttl(ttl);
    assert_eq!(store.ttl(), Some(ttl));
    store.record("u-1", 100).await.unwrap();
    store.record("u-2", 100).await.unwrap();
    assert!(store.enroll("u-2", 100).await.unwrap());
    let mut raw = raw(&server).await;
    let configured = i64::try_from(ttl.as_millis()).unwrap();
    for key in ["last", "candidates", "enrolled", "touched"] {
        let left = pttl(&mut raw, &format!("{prefix}activity:{key}")).await;
        // Set by the last write: positive and within a minute of the configured value.
        assert!(
            left > configured - 60_000 && left <= configured,
            "{key}: PTTL {left} for a TTL of {configured}"
        );
    }
    // Without a TTL the keys persist, and a write under it removes one an earlier setting left.
    let plain = RedisActivityStore::new(server.connect().await);
    assert_eq!(plain.ttl(), None);
    plain.record("u-3", 100).await.unwrap();
    for key in ["last", "candidates", "enrolled"] {
        assert_eq!(
            pttl(&mut raw, &format!("{prefix}activity:{key}")).await,
            -1,
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_person_not_written_for_the_ttl_is_forgotten_and_others_are_kept() {
    let server = TestRedis::start().await;
    let store =
        RedisActivityStore::new(server.connect().await).with_ttl(Duration::from_millis(300));
    store.record("gone", 10).await.unwrap();
    store.record("gone-enrolled", 5).await.unwrap();
    assert!(store.enroll("gone-enrolled", 5).await.unwrap());
    // "kept" is written again and again; the two others never: they expire on Redis' clock.
    // Poll until they are gone (the outcome is asserted, not the time it took).
    let mut gone = false;
    for _ in 0..500 {
        store.record("kept", 20).await.unwrap();
        if store.get("gone").await.unwrap().is_none()
            && store.get("gone-enrolled").await.unwrap().is_none()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the records never expired");
    assert_eq!(store.get("kept").await.unwrap(), Some((20, false)));
    let listed = store.inactive_since(1_000, None, 10).await.unwrap();
    let people: Vec<&str> = listed.people.iter().map(|p| p.person.as_str()).collect();
    assert_eq!(people, ["kept"]);
    // Coming back after expiry is a new person: not a reactivation.
    assert!(!store.record("gone-enrolled", 50).await.unwrap().reactivated);
    assert_eq!(store.get("gone-enrolled").await.unwrap(), Some((50, false)));
    // Nothing of the expired people is left in any key.
    let prefix = server.config().prefix().to_owned();
    let mut raw = raw(&server).await;
    let enrolled: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}activity:enrolled"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(enrolled.is_empty(), "{enrolled:?}");
    let last: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{prefix}activity:last"))
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut last = last;
    last.sort();
    assert_eq!(last, ["gone-enrolled", "kept"]);
}

#[tokio::test]
async fn leases_live_under_the_prefix_and_expire_on_their_own() {
    let server = TestRedis::start().await;
    let prefix = server.config().prefix().to_owned();
    let one = RedisLeaseStore::new(server.connect().await);
    let two = RedisLeaseStore::new(server.connect().await);
    assert!(
        one.try_acquire("churn-scan", "replica-1", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        !two.try_acquire("churn-scan", "replica-2", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let mut raw = raw(&server).await;
    let holder: String = redis::cmd("GET")
        .arg(format!("{prefix}lease:churn-scan"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(holder, "replica-1");
    let left = pttl(&mut raw, &format!("{prefix}lease:churn-scan")).await;
    assert!(left > 0 && left <= 60_000, "PTTL {left}");
    assert!(one.release("churn-scan", "replica-1").await.unwrap());
    assert_eq!(
        pttl(&mut raw, &format!("{prefix}lease:churn-scan")).await,
        -2
    );
}
