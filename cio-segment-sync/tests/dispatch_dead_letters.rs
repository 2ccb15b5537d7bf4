//! Dead letters written to a JSONL file by a dispatcher (as v1 records), read back and
//! re-submitted.

mod dispatch_support;

use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::dead_letter::{
    DeadLetter, DeadLetterReason, DeadLetterSink, JsonlDeadLetters, MemoryDeadLetters,
    parse_record, read_all,
};
use cio_segment_sync::dispatch::{
    Delivery, Dispatcher, DispatcherConfig, OrderingKey, ResubmitError, RetryPolicy,
};
use cio_segment_sync::rate_limit::Unlimited;
use dispatch_support::{Item, Reply, ScriptedSink, limits};

#[tokio::test(start_paused = true)]
async fn jsonl_dead_letters_round_trip_and_can_be_resubmitted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dead.jsonl");

    // First run: a 207 refuses items 1 and 2.
    let sink = ScriptedSink::new(
        limits(10, 10_000, Duration::from_millis(10)),
        true,
        vec![Reply::Partial(vec![
            (1, "must be a ULID"),
            (2, "unknown person"),
        ])],
    );
    let jsonl = Arc::new(JsonlDeadLetters::open(&file).unwrap());
    let (handle, worker) = Dispatcher::spawn(
        sink,
        DispatcherConfig::default().with_retry(RetryPolicy::default().with_jitter_seed(1)),
        Arc::new(Unlimited),
        jsonl,
    );
    let mut completions = Vec::new();
    for id in 0..3 {
        let item = Item::new(id).person(format!("p{id}"), 0);
        let key = Some(OrderingKey::new(format!("p{id}")));
        completions.push(handle.submit(item, key).await.unwrap());
    }
    for c in completions {
        c.await.unwrap();
    }
    handle.shutdown().await;
    worker.await.unwrap();

    let entries = read_all(&file).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries.iter().map(|e| e.reason.clone()).collect::<Vec<_>>(),
        vec![
            DeadLetterReason::RejectedByServer {
                message: "must be a ULID".into(),
                field: Some("id".into())
            },
            DeadLetterReason::RejectedByServer {
                message: "unknown person".into(),
                field: Some("id".into())
            },
        ]
    );
    assert_eq!(
        entries[0].item,
        serde_json::to_value(Item::new(1).person("p1", 0)).unwrap()
    );
    assert_eq!(entries[0].ordering_key, Some(OrderingKey::new("p1").get()));
    assert!(
        entries
            .iter()
            .all(|e| e.sink == "scripted" && e.attempts == 1)
    );

    // The text is one versioned record per line, and it reads back to what was written.
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 2);
    for (line, entry) in text.lines().zip(&entries) {
        let record = parse_record(line.as_bytes()).unwrap();
        assert_eq!(record.v, 1);
        assert_eq!(record.sink, "scripted");
        assert_eq!(record.to_dead_letter().as_ref(), Some(entry));
    }

    // Second run: the cause is fixed; re-submit, plus one entry of another sink and one that
    // does not decode.
    let sink = ScriptedSink::new(limits(10, 10_000, Duration::from_millis(10)), true, vec![]);
    let recorder = Arc::clone(&sink.recorder);
    let (handle, worker) = Dispatcher::spawn(
        sink,
        DispatcherConfig::default(),
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(10)),
    );
    let mut resubmit = entries.clone();
    let mut foreign = entries[0].clone();
    foreign.sink = "other".into();
    resubmit.push(foreign);
    let mut broken = entries[0].clone();
    broken.item = serde_json::json!({"id": "not a number"});
    resubmit.push(broken);
    let results = handle.resubmit(resubmit).await;
    assert_eq!(results.len(), 4);
    let mut iter = results.into_iter();
    let first = iter.next().unwrap().unwrap();
    let second = iter.next().unwrap().unwrap();
    match iter.next().unwrap() {
        Err(ResubmitError::WrongSink {
            index,
            found,
            expected,
        }) => {
            assert_eq!((index, found.as_str(), expected), (2, "other", "scripted"));
        }
        other => panic!("expected WrongSink, got {other:?}"),
    }
    match iter.next().unwrap() {
        Err(ResubmitError::Decode { index, source }) => {
            assert_eq!(index, 3);
            assert!(source.to_string().contains("invalid type"), "{source}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert_eq!(first.await, Ok(Delivery::Delivered { attempts: 1 }));
    assert_eq!(second.await, Ok(Delivery::Delivered { attempts: 1 }));
    assert_eq!(recorder.ids(), vec![vec![1, 2]]);
    handle.shutdown().await;
    worker.await.unwrap();
}

#[tokio::test]
async fn jsonl_appends_across_reopen_and_syncs_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dead.jsonl");
    let entry = |n: u32| {
        DeadLetter::new(
            "scripted",
            serde_json::json!({"n": n}),
            DeadLetterReason::TooLarge {
                bytes: 40_000,
                limit: 32_000,
            },
            0,
        )
    };
    let (first, second) = (entry(1), entry(2));
    JsonlDeadLetters::open(&file)
        .unwrap()
        .record(first.clone())
        .await
        .unwrap();
    let reopened = JsonlDeadLetters::open(&file).unwrap().with_sync(true);
    assert_eq!(reopened.path(), file.as_path());
    reopened.record(second.clone()).await.unwrap();
    assert_eq!(read_all(&file).unwrap(), vec![first, second]);
}
