//! State compatibility across a rolling upgrade: several replicas of different versions share one
//! Redis, so v0.2 reads what v0.1 wrote. The key layout and record formats did not change in
//! v0.2 (`<prefix>dedupe:<id>` holding `lease:<token>` or `done`, `<prefix>progress:<person>`
//! holding the step, …); these tests write v0.1 records with plain Redis commands and read them
//! through the v0.2 stores, and check that a record no version wrote is refused with an error
//! that names the store, not misread. (Features `redis` + `testing`.)

use std::time::Duration;

use cio_segment_sync::StoreError;
use cio_segment_sync::activity::ActivityStore;
use cio_segment_sync::dedupe::{Claim, Deduper};
use cio_segment_sync::flows::onboarding::{Advance, ProgressStore};
use cio_segment_sync::redis::{RedisActivityStore, RedisDeduper, RedisProgressStore};
use cio_segment_sync::testing::redis_server::TestRedis;

async fn raw(redis: &TestRedis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn v0_1_dedupe_records_are_read_by_v0_2() {
    let redis = TestRedis::start().await;
    let prefix = redis.config().prefix().to_owned();
    let mut raw = raw(&redis).await;
    // What v0.1 wrote for a finished message and for one another worker holds.
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}dedupe:m-done"))
        .arg("done")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}dedupe:m-held"))
        .arg("lease:0123456789abcdef0123456789abcdef")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    let deduper = RedisDeduper::new(redis.connect().await);
    let lease = Duration::from_secs(30);
    assert_eq!(deduper.claim("m-done", lease).await.unwrap(), Claim::Done);
    assert_eq!(
        deduper.claim("m-held", lease).await.unwrap(),
        Claim::InFlight
    );
    // And what v0.2 writes is what v0.1 reads: the same key and value.
    let Claim::First(token) = deduper.claim("m-new", lease).await.unwrap() else {
        panic!("a fresh key is first");
    };
    deduper.commit("m-new", &token).await.unwrap();
    let value: String = redis::cmd("GET")
        .arg(format!("{prefix}dedupe:m-new"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(value, "done");
}

#[tokio::test]
async fn v0_1_onboarding_progress_is_read_and_a_foreign_record_is_refused_by_name() {
    let redis = TestRedis::start().await;
    let prefix = redis.config().prefix().to_owned();
    let mut raw = raw(&redis).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}progress:u-1"))
        .arg(2)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}progress:u-2"))
        .arg("not a step")
        .query_async(&mut raw)
        .await
        .unwrap();
    let progress = RedisProgressStore::new(redis.connect().await);
    assert_eq!(progress.get("u-1").await.unwrap(), Some(2));
    let advanced: Advance = progress.advance("u-1", 1).await.unwrap();
    assert_eq!(
        advanced.current, 2,
        "an older step never moves progress back"
    );
    match progress.get("u-2").await {
        Err(error @ StoreError::Corrupt { .. }) => {
            assert!(
                error.to_string().starts_with("redis progress store"),
                "{error}"
            );
        }
        other => panic!("expected a refusal naming the store, got {other:?}"),
    }
}

#[tokio::test]
async fn done_keys_outlive_each_sources_retry_window() {
    use cio_segment_sync::dedupe::{CUSTOMERIO_RETRY_WINDOW, SEGMENT_RETRY_WINDOW};
    use cio_segment_sync::store::Stores;

    let redis = TestRedis::start().await;
    let prefix = redis.config().prefix().to_owned();
    let stores = Stores::redis(&redis.config()).await.unwrap();
    let lease = Duration::from_secs(30);
    for (deduper, key) in [
        (&stores.deduper, "segment-message"),
        (&stores.customerio_deduper, "customerio-event"),
    ] {
        let Claim::First(token) = deduper.claim(key, lease).await.unwrap() else {
            panic!("fresh key");
        };
        deduper.commit(key, &token).await.unwrap();
    }
    let mut raw = raw(&redis).await;
    for (key, window) in [
        ("segment-message", SEGMENT_RETRY_WINDOW),
        ("customerio-event", CUSTOMERIO_RETRY_WINDOW),
    ] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}dedupe:{key}"))
            .query_async(&mut raw)
            .await
            .unwrap();
        let pttl = Duration::from_millis(u64::try_from(pttl).unwrap());
        assert!(
            pttl > window,
            "{key}: done for {pttl:?}, the source retries for {window:?}"
        );
    }
}

#[tokio::test]
async fn v0_1_activity_records_are_read_by_a_store_with_a_ttl_and_kept_until_written() {
    let redis = TestRedis::start().await;
    let prefix = redis.config().prefix().to_owned();
    let mut raw = raw(&redis).await;
    // What v0.1 wrote: a last-activity hash, the candidates and the enrolled set, no TTL.
    for (person, at) in [("u-1", 100), ("u-2", 50)] {
        let _: () = redis::cmd("HSET")
            .arg(format!("{prefix}activity:last"))
            .arg(person)
            .arg(at)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("ZADD")
        .arg(format!("{prefix}activity:candidates"))
        .arg(100)
        .arg("u-1")
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg(format!("{prefix}activity:enrolled"))
        .arg("u-2")
        .query_async(&mut raw)
        .await
        .unwrap();
    // A v0.2 replica with a very short TTL: the v0.1 records have no write time, so they are
    // not expired, only written ones are.
    let store = RedisActivityStore::new(redis.connect().await).with_ttl(Duration::from_millis(1));
    assert_eq!(store.get("u-1").await.unwrap(), Some((100, false)));
    assert_eq!(store.get("u-2").await.unwrap(), Some((50, true)));
    let listed = store.inactive_since(1_000, None, 10).await.unwrap();
    assert_eq!(listed.people.len(), 1);
    assert_eq!(listed.people[0].person, "u-1");
    // Activity after the enrolment is a reactivation, as in v0.1.
    assert!(store.record("u-2", 60).await.unwrap().reactivated);
}
