//! A worker stopped mid-stream, and a new one started on the same input, against a
//! Customer.io that fails at the issue's rates: every event the first worker reported
//! delivered is at Customer.io, and the replay produces the same event ids (Customer.io
//! de-duplicates them), so each event ends up there once.

mod fault_support;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use cio_segment_sync::dead_letter::DeadLetterReason;
use cio_segment_sync::pipeline::{Outcome, Pipeline};
use cio_segment_sync::segment_model::Message;
use fault_support::{FakeCustomerIo, FaultRates, SyncWorker, events, expected_keys, op_key};
use futures::StreamExt;
use tokio::sync::oneshot;

const EVENTS: usize = 10_000;
const IN_FLIGHT: usize = 2_000;

/// Processes `messages` (redelivering after retryable errors) and records each one's outcome
/// by index as soon as it is acked. Sends on `reached` once `threshold` were delivered.
async fn feed(
    worker: &SyncWorker,
    messages: Arc<Vec<Message>>,
    acked: Arc<Mutex<HashMap<usize, Outcome>>>,
    threshold: usize,
    reached: oneshot::Sender<()>,
) {
    let reached = Mutex::new(Some(reached));
    futures::stream::iter(0..messages.len())
        .for_each_concurrent(IN_FLIGHT, |index| {
            let pipeline = worker.pipeline.clone();
            let messages = messages.clone();
            let acked = acked.clone();
            let reached = &reached;
            async move {
                let outcome = loop {
                    match pipeline.process(&messages[index]).await {
                        Ok(outcome) => break outcome,
                        Err(err) if err.is_retryable() => {}
                        Err(err) => panic!("message {index} not finished: {err}"),
                    }
                };
                let mut acked = acked.lock().unwrap();
                acked.insert(index, outcome);
                let delivered = acked.values().filter(|o| **o == Outcome::Delivered).count();
                if delivered >= threshold
                    && let Some(tx) = reached.lock().unwrap().take()
                {
                    let _ = tx.send(());
                }
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_mid_stream_loses_nothing_it_reported_and_the_replay_reuses_its_ids() {
    let fake = FakeCustomerIo::start(FaultRates::ISSUE, 3).await;
    let messages = Arc::new(events(EVENTS, 3));

    // The first worker runs until a third of the events are reported delivered, then stops
    // abruptly: its feeding task and its dispatcher are aborted mid-flight.
    let first = Arc::new(fault_support::sync_worker(&fake.uri(), 3));
    let first_acked = Arc::new(Mutex::new(HashMap::new()));
    let (reached_tx, reached_rx) = oneshot::channel();
    let feeder = tokio::spawn({
        let first = first.clone();
        let messages = messages.clone();
        let acked = first_acked.clone();
        async move { feed(&first, messages, acked, EVENTS / 3, reached_tx).await }
    });
    reached_rx
        .await
        .expect("the first worker delivers a third of the events");
    feeder.abort();
    first.worker.abort();
    let _ = feeder.await;
    let first_acked = first_acked.lock().unwrap().clone();
    let reported: BTreeSet<usize> = first_acked
        .iter()
        .filter(|(_, o)| **o == Outcome::Delivered)
        .map(|(i, _)| *i)
        .collect();
    assert!(reported.len() >= EVENTS / 3);
    assert!(
        first_acked.len() < EVENTS,
        "the first worker was stopped before the end"
    );

    // Everything reported delivered is at Customer.io already, before any replay.
    let accepted = fake.accepted();
    for &index in &reported {
        let key = &expected_keys(&messages[index])[0];
        assert!(
            accepted.contains_key(key),
            "event {index} reported delivered, not at the fake"
        );
    }

    // A new worker (fresh process: empty deduper) replays the whole input.
    let second = fault_support::sync_worker(&fake.uri(), 4);
    let second_acked = Arc::new(Mutex::new(HashMap::new()));
    let (never_tx, _never_rx) = oneshot::channel();
    feed(
        &second,
        messages.clone(),
        second_acked.clone(),
        usize::MAX,
        never_tx,
    )
    .await;
    second.handle.shutdown().await;
    let second_acked = second_acked.lock().unwrap().clone();
    assert_eq!(second_acked.len(), EVENTS);

    let accepted = fake.accepted();
    let arrivals = fake.arrivals();
    let dead: HashMap<String, DeadLetterReason> = first
        .dead
        .entries()
        .into_iter()
        .chain(second.dead.entries())
        .map(|entry| (op_key(&entry.item), entry.reason))
        .collect();
    let mut keys = BTreeSet::new();
    for (index, message) in messages.iter().enumerate() {
        let key = expected_keys(message).remove(0);
        assert!(keys.insert(key.clone()));
        let at_fake = accepted.contains_key(&key);
        match dead.get(&key) {
            None => assert!(at_fake, "event {index} lost"),
            Some(DeadLetterReason::RejectedByServer { .. }) => {
                assert!(!at_fake, "event {index} both accepted and dead-lettered")
            }
            Some(other) => panic!("event {index} dead-lettered: {other:?}"),
        }
        if reported.contains(&index) {
            // The replay sent the same id again, and Customer.io kept one.
            assert_eq!(second_acked[&index], Outcome::Delivered, "event {index}");
            assert!(
                arrivals[&key] >= 2,
                "event {index} was not replayed with its id"
            );
        }
    }
    // No replayed event produced a new id: the fake holds only the input's ids.
    assert!(accepted.keys().all(|k| keys.contains(k)));
    assert_eq!(accepted.len() + dead.len(), EVENTS);
}
