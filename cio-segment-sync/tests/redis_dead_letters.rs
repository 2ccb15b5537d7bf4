//! The dead-letter store conformance suite on a real `redis-server` (features `redis` +
//! `testing`), and the stream's own rules: trimmed at about its maximum length, records
//! shared by every connection, an entry that is not a record named by its id.

use std::num::NonZeroU64;

use cio_segment_sync::dead_letter::{
    DeadLetterSink, DeadLetterStore, Location, Reason, Record, SEGMENT_MESSAGE,
};
use cio_segment_sync::redis::RedisDeadLetters;
use cio_segment_sync::testing::Guarded;
use cio_segment_sync::testing::redis_server::TestRedis;
use serde_json::json;

async fn stream() -> Guarded<RedisDeadLetters, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisDeadLetters::new(guard.connect().await),
        guard,
    }
}

cio_segment_sync::dead_letter_store_conformance!(redis_stream, stream());

fn record(n: u32) -> Record {
    Record::new(
        SEGMENT_MESSAGE,
        json!({"type": "track", "messageId": format!("m-{n}"), "userId": "u", "event": "E"}),
        Reason::Unreadable {
            error: "test".into(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_trimmed_near_its_maximum_length_oldest_first() {
    let redis = TestRedis::start().await;
    let store =
        RedisDeadLetters::new(redis.connect().await).with_max_len(NonZeroU64::new(10).unwrap());
    for n in 0..500 {
        store.append(record(n)).await.unwrap();
    }
    let count = store.pending_count().await.unwrap();
    // `MAXLEN ~` trims whole macro nodes (100 entries by default): about, never below, 10.
    assert!((10..=110).contains(&count), "{count}");
    let listing = store.pending().await.unwrap();
    assert_eq!(listing.records.len() as u64, count);
    assert_eq!(
        listing.records.last().unwrap().record.id.as_deref(),
        Some("m-499"),
        "the newest are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_one_stream_and_a_foreign_entry_is_named_by_its_id() {
    let redis = TestRedis::start().await;
    let writer = RedisDeadLetters::new(redis.connect().await);
    let reader = RedisDeadLetters::new(redis.connect().await);
    writer.append(record(1)).await.unwrap();
    // Someone else's entry in the stream: not a record, reported, the others still read.
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let foreign: String = redis::cmd("XADD")
        .arg(writer.key())
        .arg("*")
        .arg("r")
        .arg(r#"{"email": "ada@example.com"}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    writer.append(record(2)).await.unwrap();
    let listing = reader.pending().await.unwrap();
    assert_eq!(listing.records.len(), 2);
    assert_eq!(listing.errors.len(), 1);
    assert_eq!(
        listing.errors[0].location,
        Location::Entry {
            stream: writer.key().to_owned(),
            id: foreign.clone()
        }
    );
    let text = listing.errors[0].to_string();
    assert!(text.ends_with(": not a dead-letter record"), "{text}");
    assert!(!text.contains("ada@"), "{text}");
    assert_eq!(reader.pending_count().await.unwrap(), 3);

    // Marked by the reader: deleted for the writer too.
    reader
        .mark_replayed(&[listing.records[0].key.clone()])
        .await
        .unwrap();
    let left = writer.pending().await.unwrap();
    assert_eq!(left.records.len(), 1);
    assert_eq!(left.records[0].record.id.as_deref(), Some("m-2"));
    assert!(
        reader.location().ends_with("dead-letters"),
        "{}",
        reader.location()
    );
}
