//! The dead-letter store conformance cases ([`DeadLetterSink`] + [`DeadLetterStore`]). Each
//! takes a fresh, empty store.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::json;

use crate::dead_letter::{
    DeadLetter, DeadLetterReason, DeadLetterSink, DeadLetterStore, Reason, Record, RecordKey,
    SEGMENT_MESSAGE, Source,
};
use crate::dispatch::FailureKind;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_714_558_530 + seconds).expect("a valid time")
}

/// A Segment-message record `n`, unreadable, from line `n` of an archive.
fn message_record(n: u64) -> Record {
    let mut record = Record::new(
        SEGMENT_MESSAGE,
        json!({"type": "track", "messageId": format!("conf-{n}"), "userId": format!("u-{n}"),
               "event": "Conformance", "properties": {"n": n}}),
        Reason::Unreadable {
            error: "conformance".into(),
        },
    )
    .with_source(Source::Archive {
        file: "conformance.jsonl".into(),
        line: n,
    })
    .with_attempts(2, Some(at(0)));
    record.recorded_at = at(i64::try_from(n).unwrap_or(0));
    record
}

/// A dispatcher's dead letter `n`, refused by the server.
fn dispatcher_entry(n: u32) -> DeadLetter {
    let mut entry = DeadLetter::new(
        "customerio.track.v2.batch",
        json!({"type": "person", "action": "event", "identifiers": {"id": format!("u-{n}")},
               "name": "Conformance", "id": format!("op-{n}")}),
        DeadLetterReason::RejectedByServer {
            message: "conformance refusal".into(),
            field: Some("name".into()),
        },
        n,
    );
    entry.submitted_at = at(10);
    entry.dead_lettered_at = at(11);
    entry.ordering_key = Some(u64::from(n) * 7);
    entry
}

async fn pending_records<S: DeadLetterStore + ?Sized>(store: &S) -> Vec<(RecordKey, Record)> {
    let listing = store.pending().await.expect("pending");
    assert!(listing.errors.is_empty(), "{:?}", listing.errors);
    listing
        .records
        .into_iter()
        .map(|s| (s.key, s.record))
        .collect()
}

/// A new store has nothing pending.
pub async fn empty_store_has_nothing_pending<S>(store: &S)
where
    S: DeadLetterSink + DeadLetterStore + ?Sized,
{
    assert!(pending_records(store).await.is_empty());
    assert_eq!(store.pending_count().await.unwrap(), 0);
    assert!(!store.location().is_empty());
}

/// Records read back equal to what was appended, oldest first, each under its own key.
pub async fn appended_records_read_back_oldest_first<S>(store: &S)
where
    S: DeadLetterSink + DeadLetterStore + ?Sized,
{
    let mut written = vec![message_record(1), message_record(2)];
    let mut too_large = Record::new(
        "customerio.track.v2.batch",
        json!({"type": "person", "action": "identify", "identifiers": {"id": "u-3"}}),
        Reason::Refused(DeadLetterReason::TooLarge {
            bytes: 40_000,
            limit: 32_000,
        }),
    );
    too_large.recorded_at = at(3);
    too_large.ordering_key = Some(u64::MAX);
    written.push(too_large);
    for record in &written {
        store.append(record.clone()).await.unwrap();
    }
    let read = pending_records(store).await;
    let records: Vec<Record> = read.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(records, written);
    let keys: HashSet<&RecordKey> = read.iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 3, "every record has its own key");
    assert_eq!(store.pending_count().await.unwrap(), 3);
}

/// What the dispatcher records is kept as a record and converts back to the same entry.
pub async fn dispatcher_entries_are_kept_as_records<S>(store: &S)
where
    S: DeadLetterSink + DeadLetterStore + ?Sized,
{
    let entry = dispatcher_entry(1);
    store.record(entry.clone()).await.unwrap();
    let read = pending_records(store).await;
    assert_eq!(read.len(), 1);
    let record = &read[0].1;
    assert_eq!(record, &Record::from(entry.clone()));
    assert_eq!(record.id.as_deref(), Some("op-1"));
    assert_eq!(record.to_dead_letter(), Some(entry));
}

/// Marked records are no longer pending; the others keep their order. Marking again, or an
/// unknown key, changes nothing.
pub async fn marked_records_are_no_longer_pending<S>(store: &S)
where
    S: DeadLetterSink + DeadLetterStore + ?Sized,
{
    for n in 1..=4 {
        store.append(message_record(n)).await.unwrap();
    }
    let read = pending_records(store).await;
    store
        .mark_replayed(&[read[0].0.clone(), read[2].0.clone()])
        .await
        .unwrap();
    let left = pending_records(store).await;
    assert_eq!(left, vec![read[1].clone(), read[3].clone()]);
    assert_eq!(store.pending_count().await.unwrap(), 2);

    store
        .mark_replayed(&[read[0].0.clone(), RecordKey::new("no-such-key")])
        .await
        .unwrap();
    store.mark_replayed(&[]).await.unwrap();
    assert_eq!(pending_records(store).await, left);
    assert_eq!(store.pending_count().await.unwrap(), 2);
}

/// A record keeps its key while others are added and marked.
pub async fn keys_stay_the_same_as_records_are_added<S>(store: &S)
where
    S: DeadLetterSink + DeadLetterStore + ?Sized,
{
    store.append(message_record(1)).await.unwrap();
    store.append(message_record(2)).await.unwrap();
    let before = pending_records(store).await;
    for n in 3..=5 {
        store.append(message_record(n)).await.unwrap();
    }
    let after = pending_records(store).await;
    assert_eq!(&after[..2], &before[..]);
    store.mark_replayed(&[before[1].0.clone()]).await.unwrap();
    let ids: Vec<_> = pending_records(store)
        .await
        .into_iter()
        .map(|(_, r)| r.id.unwrap_or_default())
        .collect();
    assert_eq!(ids, ["conf-1", "conf-3", "conf-4", "conf-5"]);
}

/// Records appended concurrently are all kept, each whole.
pub async fn concurrent_appends_are_all_kept<S>(store: &S)
where
    S: DeadLetterSink + DeadLetterStore + ?Sized,
{
    let appends = (1..=40).map(|n| store.append(message_record(n)));
    for result in futures::future::join_all(appends).await {
        result.unwrap();
    }
    let read = pending_records(store).await;
    let ids: HashSet<String> = read.iter().filter_map(|(_, r)| r.id.clone()).collect();
    let expected: HashSet<String> = (1..=40).map(|n| format!("conf-{n}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(store.pending_count().await.unwrap(), 40);
}

/// A large record (a 256 KiB item) reads back whole, and so do the records around it.
pub async fn a_large_record_reads_back_whole<S>(store: &S)
where
    S: DeadLetterSink + DeadLetterStore + ?Sized,
{
    let mut large = message_record(2);
    large.item["properties"]["blob"] = json!("x".repeat(256 * 1024));
    large.reason = Reason::Refused(DeadLetterReason::Failed {
        kind: FailureKind::Permanent,
        error: "too big for anyone".into(),
    });
    let written = vec![message_record(1), large, message_record(3)];
    for record in &written {
        store.append(record.clone()).await.unwrap();
    }
    let records: Vec<Record> = pending_records(store)
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(records, written);
}
