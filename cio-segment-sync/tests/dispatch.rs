//! Dispatcher behaviour against a scripted in-process sink, on tokio's paused clock.

mod dispatch_support;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cio_segment_sync::StoreError;
use cio_segment_sync::dead_letter::{DeadLetterReason, MemoryDeadLetters};
use cio_segment_sync::dispatch::{
    Classification, Completion, Delivery, Dispatcher, DispatcherConfig, DispatcherHandle, Dropped,
    FailureKind, GiveUp, OrderingKey, RetryPolicy, SendPhase, SubmitError,
};
use cio_segment_sync::rate_limit::{Admission, RateLimiter, Unlimited};
use dispatch_support::{CountingLimiter, Item, Reply, ScriptedSink, limits};
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

const LINGER: Duration = Duration::from_millis(100);

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn config() -> DispatcherConfig {
    DispatcherConfig::default().with_retry(
        RetryPolicy::default()
            .with_jitter_seed(1)
            .with_total_deadline(Duration::from_secs(600)),
    )
}

struct Rig {
    handle: DispatcherHandle<ScriptedSink>,
    worker: tokio::task::JoinHandle<()>,
    recorder: Arc<dispatch_support::Recorder>,
    dead: Arc<MemoryDeadLetters>,
}

fn rig(sink: ScriptedSink, config: DispatcherConfig) -> Rig {
    rig_with_limiter(sink, config, Arc::new(Unlimited))
}

fn rig_with_limiter(
    sink: ScriptedSink,
    config: DispatcherConfig,
    limiter: Arc<dyn RateLimiter>,
) -> Rig {
    let recorder = Arc::clone(&sink.recorder);
    let dead = Arc::new(MemoryDeadLetters::new(1_000));
    let (handle, worker) = Dispatcher::spawn(sink, config, limiter, dead.clone());
    Rig {
        handle,
        worker,
        recorder,
        dead,
    }
}

async fn submit_all(handle: &DispatcherHandle<ScriptedSink>, items: Vec<Item>) -> Vec<Completion> {
    let mut out = Vec::new();
    for item in items {
        out.push(handle.submit(item, None).await.unwrap());
    }
    out
}

async fn resolve_all(completions: Vec<Completion>) -> Vec<Delivery> {
    let mut out = Vec::new();
    for c in completions {
        out.push(c.await.expect("resolved, not dropped"));
    }
    out
}

fn delivered(attempts: u32) -> Delivery {
    Delivery::Delivered { attempts }
}

#[tokio::test(start_paused = true)]
async fn batches_close_on_count() {
    let sink = ScriptedSink::new(limits(3, 10_000, LINGER), true, vec![]);
    let rig = rig(sink, config());
    let start = Instant::now();
    let completions = submit_all(&rig.handle, (0..7).map(Item::new).collect()).await;
    let results = resolve_all(completions).await;
    assert!(results.iter().all(|d| *d == delivered(1)));
    assert_eq!(
        rig.recorder.ids(),
        vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
    );
    let calls = rig.recorder.calls();
    assert_eq!(calls[0].at, start, "a full batch goes at once");
    assert_eq!(calls[1].at, start);
    assert_eq!(
        calls[2].at,
        start + LINGER,
        "the partial batch waits for linger"
    );
}

#[tokio::test(start_paused = true)]
async fn batches_close_on_bytes_counting_wrapper_and_separators() {
    // wrapper 2 + 40 + 1 + 40 = 83 fits in 90; a third item (124) does not.
    let sink = ScriptedSink::new(limits(100, 90, LINGER), true, vec![]);
    let rig = rig(sink, config());
    let completions =
        submit_all(&rig.handle, (0..5).map(|i| Item::new(i).size(40)).collect()).await;
    resolve_all(completions).await;
    assert_eq!(rig.recorder.ids(), vec![vec![0, 1], vec![2, 3], vec![4]]);
    assert!(rig.recorder.calls().iter().all(|c| c.bytes <= 90));
    assert_eq!(rig.recorder.calls()[0].bytes, 83);
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_waits_exactly_linger_from_its_first_item() {
    let sink = ScriptedSink::new(limits(100, 10_000, LINGER), true, vec![]);
    let rig = rig(sink, config());
    let start = Instant::now();
    let first = rig.handle.submit(Item::new(1), None).await.unwrap();
    tokio::time::sleep(LINGER / 2).await;
    let second = rig.handle.submit(Item::new(2), None).await.unwrap();
    assert!(
        rig.recorder.calls().is_empty(),
        "nothing sent before linger"
    );
    assert_eq!(first.await, Ok(delivered(1)));
    assert_eq!(second.await, Ok(delivered(1)));
    let calls = rig.recorder.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].ids, vec![1, 2]);
    assert_eq!(calls[0].at, start + LINGER);
}

#[tokio::test(start_paused = true)]
async fn items_of_different_partitions_never_share_a_request() {
    let sink = ScriptedSink::new(limits(100, 10_000, LINGER), true, vec![]);
    let rig = rig(sink, config());
    let items = (0..6)
        .map(|i| Item::new(i).partition((i % 2) as u8))
        .collect();
    resolve_all(submit_all(&rig.handle, items).await).await;
    let mut calls = rig.recorder.calls();
    calls.sort_by_key(|c| c.partition);
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].partition, calls[0].ids.clone()),
        (0, vec![0, 2, 4])
    );
    assert_eq!(
        (calls[1].partition, calls[1].ids.clone()),
        (1, vec![1, 3, 5])
    );
}

#[tokio::test(start_paused = true)]
async fn an_item_too_large_alone_is_refused_at_submit_and_handed_back() {
    let sink = ScriptedSink::new(limits(100, 500, LINGER), true, vec![]);
    let rig = rig(sink, config());
    // Over the per-item limit (1000) and the request room (500 - wrapper 2).
    let big = Item::new(9).size(1_001);
    match rig.handle.submit(big.clone(), None).await {
        Err(SubmitError::TooLarge { item, bytes, limit }) => {
            assert_eq!((item, bytes, limit), (big, 1_001, 498));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Under the per-item limit but over the request room.
    let err = rig
        .handle
        .try_submit(Item::new(10).size(499), None)
        .unwrap_err();
    assert!(matches!(
        err,
        SubmitError::TooLarge {
            bytes: 499,
            limit: 498,
            ..
        }
    ));
    assert_eq!(err.into_item().id, 10);
    assert_eq!(rig.handle.stats().submitted, 0);
    rig.handle.shutdown().await;
    assert!(rig.recorder.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_500_then_success_takes_exactly_two_attempts() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), false, vec![Reply::status_500()]);
    let rig = rig(sink, config());
    let results =
        resolve_all(submit_all(&rig.handle, vec![Item::new(1), Item::new(2)]).await).await;
    assert_eq!(results, vec![delivered(2), delivered(2)]);
    assert_eq!(rig.recorder.ids(), vec![vec![1, 2], vec![1, 2]]);
    let stats = rig.handle.stats();
    assert_eq!(
        (stats.attempts, stats.retried_attempts, stats.delivered),
        (2, 1, 2)
    );
    assert!(rig.dead.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_the_whole_dispatcher_until_retry_after() {
    let retry_after = Duration::from_secs(30);
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![Reply::status_429(retry_after)],
    );
    let rig = rig(sink, config());
    let a = rig
        .handle
        .submit(Item::new(1).partition(0), None)
        .await
        .unwrap();
    rig.recorder.wait_calls(1).await;
    let throttled_at = rig.recorder.calls()[0].at;
    // Another partition, submitted while paused: it must wait too.
    let b = rig
        .handle
        .submit(Item::new(2).partition(1), None)
        .await
        .unwrap();
    assert_eq!(a.await, Ok(delivered(2)));
    assert_eq!(b.await, Ok(delivered(1)));
    let calls = rig.recorder.calls();
    assert_eq!(calls.len(), 3);
    for call in &calls[1..] {
        assert!(
            call.at >= throttled_at + retry_after,
            "item {:?} sent {:?} after the 429",
            call.ids,
            call.at - throttled_at
        );
    }
    assert_eq!(rig.handle.stats().throttled, 1);
}

#[tokio::test(start_paused = true)]
async fn a_207_dead_letters_only_the_refused_items_with_the_servers_reason() {
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![Reply::Partial(vec![(1, "must be a ULID")])],
    );
    let rig = rig(sink, config());
    let results = resolve_all(submit_all(&rig.handle, (0..3).map(Item::new).collect()).await).await;
    let rejected = DeadLetterReason::RejectedByServer {
        message: "must be a ULID".into(),
        field: Some("id".into()),
    };
    assert_eq!(results[0], delivered(1));
    assert_eq!(
        results[1],
        Delivery::DeadLettered {
            reason: rejected.clone(),
            attempts: 1,
            recorded: true
        }
    );
    assert_eq!(results[2], delivered(1));
    assert_eq!(rig.recorder.calls().len(), 1, "a 207 is never re-sent");
    let dead = rig.dead.entries();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, rejected);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].sink, "scripted");
    assert_eq!(dead[0].item, serde_json::to_value(Item::new(1)).unwrap());
    let stats = rig.handle.stats();
    assert_eq!((stats.delivered, stats.dead_lettered), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_400_is_bisected_until_the_bad_items_are_isolated() {
    let sink = ScriptedSink::new(limits(8, 10_000, LINGER), false, vec![]).refusing_bad_items();
    let rig = rig(sink, config());
    let items = (0..8)
        .map(|i| {
            if i == 3 || i == 6 {
                Item::new(i).bad()
            } else {
                Item::new(i)
            }
        })
        .collect();
    let results = resolve_all(submit_all(&rig.handle, items).await).await;
    for (i, result) in results.iter().enumerate() {
        if i == 3 || i == 6 {
            assert_eq!(
                *result,
                Delivery::DeadLettered {
                    reason: DeadLetterReason::RejectedByServer {
                        message: "server says: invalid operation".into(),
                        field: None
                    },
                    attempts: 4,
                    recorded: true
                },
                "item {i}"
            );
        } else {
            assert!(result.is_delivered(), "item {i}: {result:?}");
        }
    }
    assert_eq!(
        rig.recorder.ids(),
        vec![
            vec![0, 1, 2, 3, 4, 5, 6, 7],
            vec![0, 1, 2, 3],
            vec![0, 1],
            vec![2, 3],
            vec![2],
            vec![3],
            vec![4, 5, 6, 7],
            vec![4, 5],
            vec![6, 7],
            vec![6],
            vec![7],
        ]
    );
    assert_eq!(rig.handle.stats().splits, 5);
}

#[tokio::test(start_paused = true)]
async fn a_maybe_sent_failure_is_not_retried_for_a_sink_without_server_dedup() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), false, vec![Reply::maybe_sent()]);
    let rig = rig(sink, config());
    let result = rig.handle.submit(Item::new(1), None).await.unwrap().await;
    // Handed back, not dead-lettered: the source's retry decides, the dead-letter sink is
    // for permanent refusals only.
    assert_eq!(
        result,
        Ok(Delivery::RetryLater {
            stopped: GiveUp::MaybeSent,
            last_kind: FailureKind::Transient,
            last_error: "connection reset after the request was written".into(),
            attempts: 1,
        })
    );
    assert_eq!(rig.recorder.calls().len(), 1);
    assert!(rig.dead.entries().is_empty());
    assert_eq!(rig.handle.stats().retry_later, 1);
}

#[tokio::test(start_paused = true)]
async fn a_maybe_sent_failure_is_retried_for_a_server_deduplicated_sink() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![Reply::maybe_sent()]);
    let rig = rig(sink, config());
    let result = rig.handle.submit(Item::new(1), None).await.unwrap().await;
    assert_eq!(result, Ok(delivered(2)));
    assert_eq!(rig.recorder.ids(), vec![vec![1], vec![1]]);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_counts_as_maybe_sent() {
    let timeout = Duration::from_secs(2);
    for (dedup, expected_calls) in [(true, 2), (false, 1)] {
        let sink = ScriptedSink::new(limits(10, 10_000, LINGER), dedup, vec![Reply::Hang]);
        let rig = rig(sink, config().with_attempt_timeout(timeout));
        let result = rig
            .handle
            .submit(Item::new(1), None)
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(result.is_delivered(), dedup, "dedup {dedup}: {result:?}");
        assert_eq!(rig.recorder.calls().len(), expected_calls, "dedup {dedup}");
        if !dedup {
            assert!(matches!(
                result,
                Delivery::RetryLater {
                    stopped: GiveUp::MaybeSent,
                    ..
                }
            ));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_even_without_server_dedup() {
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        false,
        vec![Reply::connect_refused(), Reply::connect_refused()],
    );
    let rig = rig(sink, config());
    let result = rig.handle.submit(Item::new(1), None).await.unwrap().await;
    assert_eq!(result, Ok(delivered(3)));
    assert_eq!(rig.recorder.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_dead_letters_the_batch_without_retry_or_split() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![Reply::auth()]);
    let rig = rig(sink, config());
    let results = resolve_all(submit_all(&rig.handle, (0..3).map(Item::new).collect()).await).await;
    for result in results {
        assert_eq!(
            result,
            Delivery::DeadLettered {
                reason: DeadLetterReason::Failed {
                    kind: FailureKind::Permanent,
                    error: "credentials refused (HTTP 401)".into()
                },
                attempts: 1,
                recorded: true
            }
        );
    }
    assert_eq!(rig.recorder.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_attempt_cap_and_the_item_goes_back_to_its_caller() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![])
        .with_responder(|_, _| Reply::status_500());
    let policy = RetryPolicy::default()
        .with_max_attempts(3)
        .with_jitter_seed(3)
        .with_total_deadline(Duration::from_secs(600));
    let rig = rig(sink, config().with_retry(policy));
    let result = rig
        .handle
        .submit(Item::new(5), Some(OrderingKey::new("p")))
        .await
        .unwrap()
        .await;
    assert_eq!(
        result,
        Ok(Delivery::RetryLater {
            stopped: GiveUp::AttemptsExhausted,
            last_kind: FailureKind::Server,
            last_error: "server error (HTTP 500)".into(),
            attempts: 3,
        })
    );
    assert!(result.unwrap().must_retry());
    assert_eq!(rig.recorder.calls().len(), 3);
    // A failure that may pass is never a dead letter.
    assert!(rig.dead.entries().is_empty());
    let stats = rig.handle.stats();
    assert_eq!((stats.retry_later, stats.dead_lettered), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_total_deadline() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![])
        .with_responder(|_, _| Reply::status_500());
    let policy = RetryPolicy::default()
        .with_max_attempts(100)
        .with_initial_backoff(Duration::from_secs(1))
        .with_max_backoff(Duration::from_secs(1))
        .with_total_deadline(Duration::from_secs(10))
        .with_jitter_seed(4);
    let rig = rig(sink, config().with_retry(policy));
    let result = rig
        .handle
        .submit(Item::new(5), None)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(
        result,
        Delivery::RetryLater {
            stopped: GiveUp::DeadlineExceeded,
            ..
        }
    ));
    assert!(rig.dead.entries().is_empty());
    let calls = rig.recorder.calls();
    // Backoffs of 1–2 s each: at least 5 and at most 10 retries fit in 10 s.
    assert!((6..=11).contains(&calls.len()), "{} attempts", calls.len());
    let last = calls.last().unwrap().at - calls[0].at;
    assert!(last <= Duration::from_secs(10), "last attempt at {last:?}");
}

#[tokio::test(start_paused = true)]
async fn every_attempt_takes_a_rate_limit_token() {
    let sink = ScriptedSink::new(
        limits(4, 10_000, LINGER),
        true,
        vec![Reply::status_500(), Reply::status_500()],
    )
    .refusing_bad_items();
    let limiter = Arc::new(CountingLimiter::default());
    let rig = rig_with_limiter(sink, config(), limiter.clone());
    let items = vec![Item::new(0), Item::new(1).bad(), Item::new(2), Item::new(3)];
    resolve_all(submit_all(&rig.handle, items).await).await;
    // 500, 500, 400 → split → [0,1] 400 → [0] ok, [1] 400; [2,3] ok.
    assert_eq!(
        rig.recorder.ids(),
        vec![
            vec![0, 1, 2, 3],
            vec![0, 1, 2, 3],
            vec![0, 1, 2, 3],
            vec![0, 1],
            vec![0],
            vec![1],
            vec![2, 3]
        ]
    );
    assert_eq!(limiter.granted.load(Ordering::SeqCst), 7);
    assert_eq!(rig.handle.stats().attempts, 7);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_fails_try_submit_and_makes_submit_wait() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![]);
    let recorder = Arc::clone(&sink.recorder);
    let (handle, worker) = Dispatcher::new(
        sink,
        config().with_queue_capacity(nz(2)),
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(10)),
    );
    let first = handle.try_submit(Item::new(1), None).unwrap();
    let second = handle.try_submit(Item::new(2), None).unwrap();
    match handle.try_submit(Item::new(3), None) {
        Err(SubmitError::QueueFull(item)) => assert_eq!(item.id, 3, "the item is handed back"),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(handle.stats().queue_depth, 2);
    let mut waiting = Box::pin(handle.submit(Item::new(3), None));
    assert!(
        futures::poll!(waiting.as_mut()).is_pending(),
        "submit waits for room"
    );
    let worker = tokio::spawn(worker);
    let third = waiting.await.unwrap();
    assert_eq!(first.await, Ok(delivered(1)));
    assert_eq!(second.await, Ok(delivered(1)));
    assert_eq!(third.await, Ok(delivered(1)));
    assert_eq!(recorder.ids(), vec![vec![1, 2], vec![3]]);
    drop(handle);
    worker.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_partial_batches_at_once_and_resolves_everything() {
    let long_linger = Duration::from_secs(3600);
    let sink = ScriptedSink::new(limits(100, 10_000, long_linger), true, vec![]);
    let rig = rig(sink, config());
    let start = Instant::now();
    let items = (0..5)
        .map(|i| Item::new(i).partition((i % 2) as u8))
        .collect();
    let completions = submit_all(&rig.handle, items).await;
    rig.handle.shutdown().await;
    assert!(
        rig.worker.is_finished()
            || tokio::time::timeout(Duration::ZERO, rig.worker)
                .await
                .is_ok()
    );
    let results = resolve_all(completions).await;
    assert!(results.iter().all(|d| *d == delivered(1)));
    assert!(
        Instant::now() - start < long_linger,
        "linger was not waited for"
    );
    assert_eq!(rig.recorder.calls().len(), 2);
    match rig.handle.submit(Item::new(9), None).await {
        Err(SubmitError::Closed(item)) => assert_eq!(item.id, 9),
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_retries_in_progress() {
    let sink = ScriptedSink::new(
        limits(100, 10_000, LINGER),
        true,
        vec![Reply::status_500(), Reply::status_500()],
    );
    let rig = rig(sink, config());
    let completion = rig.handle.submit(Item::new(1), None).await.unwrap();
    rig.recorder.wait_calls(1).await;
    rig.handle.shutdown().await;
    assert_eq!(completion.await, Ok(delivered(3)));
    assert_eq!(rig.recorder.calls().len(), 3);
    rig.worker.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_drains_like_shutdown() {
    let sink = ScriptedSink::new(limits(100, 10_000, Duration::from_secs(3600)), true, vec![]);
    let rig = rig(sink, config());
    let completions = submit_all(&rig.handle, (0..3).map(Item::new).collect()).await;
    drop(rig.handle);
    rig.worker.await.unwrap();
    assert!(
        resolve_all(completions)
            .await
            .iter()
            .all(Delivery::is_delivered)
    );
    assert_eq!(rig.recorder.ids(), vec![vec![0, 1, 2]]);
}

#[tokio::test(start_paused = true)]
async fn an_item_dropped_unresolved_is_not_delivered() {
    let sink = ScriptedSink::new(limits(100, 10_000, LINGER), true, vec![]);
    let recorder = Arc::clone(&sink.recorder);
    let (handle, worker) = Dispatcher::new(
        sink,
        config(),
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(10)),
    );
    let completion = handle.submit(Item::new(1), None).await.unwrap();
    drop(worker);
    assert_eq!(completion.await, Err(Dropped));
    assert_eq!(handle.stats().delivered, 0);
    assert!(recorder.calls().is_empty());
    // Shutdown with no worker returns at once.
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_sink_that_refuses_is_reported_on_the_completion() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![Reply::auth()]);
    let dead = Arc::new(MemoryDeadLetters::new(0));
    let (handle, _worker) = Dispatcher::spawn(sink, config(), Arc::new(Unlimited), dead.clone());
    let result = handle
        .submit(Item::new(1), None)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(
        result,
        Delivery::DeadLettered {
            recorded: false,
            ..
        }
    ));
    assert_eq!(dead.dropped(), 1);
    assert_eq!(handle.stats().dead_letter_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn same_key_items_wait_for_the_earlier_one_and_keep_their_order() {
    // Person p's first item is retried twice; p's later items must not overtake it or be
    // in flight with it, while other people's items go ahead.
    let failures_left = std::sync::atomic::AtomicU32::new(2);
    let script_first_fails = ScriptedSink::new(limits(1, 10_000, LINGER), true, vec![])
        .with_responder(move |call, _| {
            let first_of_p = call.ids == [0];
            if first_of_p && failures_left.fetch_sub(1, Ordering::SeqCst) > 0 {
                Reply::status_500()
            } else {
                Reply::Accept
            }
        });
    let rig = rig(script_first_fails, config().with_concurrency(nz(4)));
    let key = Some(OrderingKey::new("p"));
    let a = rig
        .handle
        .submit(Item::new(0).person("p", 0), key)
        .await
        .unwrap();
    let b = rig
        .handle
        .submit(Item::new(1).person("p", 1), key)
        .await
        .unwrap();
    let other = rig
        .handle
        .submit(Item::new(2).person("q", 0), Some(OrderingKey::new("q")))
        .await
        .unwrap();
    let c = rig
        .handle
        .submit(Item::new(3).person("p", 2), key)
        .await
        .unwrap();
    assert_eq!(other.await, Ok(delivered(1)));
    assert_eq!(a.await, Ok(delivered(3)));
    assert_eq!(b.await, Ok(delivered(1)));
    assert_eq!(c.await, Ok(delivered(1)));
    let ids = rig.recorder.ids();
    let p_order: Vec<u32> = ids
        .iter()
        .flatten()
        .copied()
        .filter(|id| *id != 2)
        .collect();
    assert_eq!(p_order, vec![0, 0, 0, 1, 3]);
    assert!(rig.recorder.violations.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_dead_lettered_item_does_not_block_its_key() {
    let sink = ScriptedSink::new(limits(1, 10_000, LINGER), true, vec![Reply::auth()]);
    let rig = rig(sink, config());
    let key = Some(OrderingKey::new("p"));
    let a = rig
        .handle
        .submit(Item::new(0).person("p", 0), key)
        .await
        .unwrap();
    let b = rig
        .handle
        .submit(Item::new(1).person("p", 1), key)
        .await
        .unwrap();
    assert!(matches!(a.await, Ok(Delivery::DeadLettered { .. })));
    assert_eq!(b.await, Ok(delivered(1)));
    assert_eq!(rig.recorder.ids(), vec![vec![0], vec![1]]);
}

#[tokio::test(start_paused = true)]
async fn same_key_items_share_a_batch_in_order_when_they_fit() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![]);
    let rig = rig(sink, config());
    let key = Some(OrderingKey::new("p"));
    let mut completions = Vec::new();
    for seq in 0..3 {
        completions.push(
            rig.handle
                .submit(Item::new(seq).person("p", seq), key)
                .await
                .unwrap(),
        );
    }
    resolve_all(completions).await;
    assert_eq!(rig.recorder.ids(), vec![vec![0, 1, 2]]);
}

/// Many people, concurrency 8, random delays, failures and partial refusals (seeded): no
/// person is ever in two requests at once, and each person's items reach the server in
/// submit order.
#[tokio::test(start_paused = true)]
async fn per_key_order_holds_under_concurrency_with_random_faults() {
    for seed in 0..4u64 {
        let rng = std::sync::Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let sink = ScriptedSink::new(limits(5, 10_000, Duration::from_millis(20)), true, vec![])
            .with_responder(move |call, _| {
                let mut rng = rng.lock().unwrap();
                let delay = Duration::from_millis(rng.random_range(1..50));
                let reply = match rng.random_range(0..10) {
                    0 => Reply::status_500(),
                    1 => Reply::Partial(vec![(rng.random_range(0..call.items.len()), "bad")]),
                    _ => Reply::Accept,
                };
                Reply::After(delay, Box::new(reply))
            });
        let rig = rig(sink, config().with_concurrency(nz(8)));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
        let people = 30;
        let mut next_seq = vec![0u32; people];
        let mut completions = Vec::new();
        for id in 0..600u32 {
            let who = rng.random_range(0..people);
            let seq = next_seq[who];
            next_seq[who] += 1;
            let person = format!("p{who}");
            let item = Item::new(id)
                .person(person.clone(), seq)
                .partition(rng.random_range(0..3));
            let key = Some(OrderingKey::new(&person));
            completions.push((item.clone(), rig.handle.submit(item, key).await.unwrap()));
            if rng.random_bool(0.2) {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..10))).await;
            }
        }
        let mut delivered_count = 0;
        let mut dead_count = 0;
        for (_, completion) in completions {
            match completion.await.unwrap() {
                Delivery::Delivered { .. } => delivered_count += 1,
                Delivery::DeadLettered { .. } => dead_count += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delivered_count + dead_count, 600, "seed {seed}");
        assert!(dead_count > 0, "seed {seed}: the faults were exercised");
        let violations = rig.recorder.violations.lock().unwrap().clone();
        assert!(violations.is_empty(), "seed {seed}: {violations:?}");
        // Each person's items reach the server in submit order: inside a request they are
        // ascending, and a request never starts below where the person's previous request
        // started (a retry repeats the same items).
        let mut first_seq: HashMap<String, u32> = HashMap::new();
        for call in rig.recorder.calls() {
            let mut in_call: HashMap<&str, u32> = HashMap::new();
            for item in &call.items {
                match in_call.insert(&item.person, item.seq) {
                    Some(prev) => assert!(prev < item.seq, "seed {seed}: order inside a request"),
                    None => {
                        let first = first_seq.entry(item.person.clone()).or_insert(0);
                        assert!(
                            item.seq >= *first,
                            "seed {seed}: {} went back from {} to {}",
                            item.person,
                            first,
                            item.seq
                        );
                        *first = item.seq;
                    }
                }
            }
        }
        assert!(
            rig.recorder.max_concurrent_sends() > 1,
            "seed {seed}: concurrency was used"
        );
        assert!(rig.recorder.max_concurrent_sends() <= 8, "seed {seed}");
        let stats = rig.handle.stats();
        assert_eq!(stats.delivered + stats.dead_lettered, 600);
        assert_eq!(stats.queue_depth, 0);
        assert_eq!(stats.latency.total(), 600);
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_caps_requests_in_flight() {
    let sink = ScriptedSink::new(limits(1, 10_000, LINGER), true, vec![])
        .with_responder(|_, _| Reply::After(Duration::from_secs(1), Box::new(Reply::Accept)));
    let rig = rig(sink, config().with_concurrency(nz(3)));
    let completions = submit_all(&rig.handle, (0..9).map(Item::new).collect()).await;
    resolve_all(completions).await;
    assert_eq!(rig.recorder.max_concurrent_sends(), 3);
    let calls = rig.recorder.calls();
    let start = calls[0].at;
    let waves: Vec<u64> = calls.iter().map(|c| (c.at - start).as_secs()).collect();
    assert_eq!(waves, vec![0, 0, 0, 1, 1, 1, 2, 2, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_local_refusal_is_dead_lettered_as_failed_not_as_a_server_rejection() {
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![Reply::Fail(
            Classification::new(FailureKind::Rejected, SendPhase::NotSent),
            "refused before sending",
        )],
    );
    let rig = rig(sink, config());
    let result = rig.handle.submit(Item::new(1), None).await.unwrap().await;
    assert_eq!(
        result,
        Ok(Delivery::DeadLettered {
            reason: DeadLetterReason::Failed {
                kind: FailureKind::Rejected,
                error: "refused before sending".into()
            },
            attempts: 1,
            recorded: true
        })
    );
}

/// A limiter whose backend fails the first time.
#[derive(Debug, Default)]
struct FlakyLimiter {
    calls: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl RateLimiter for FlakyLimiter {
    async fn try_acquire(&self) -> Result<Admission, StoreError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(StoreError::Full {
                store: "test limiter",
                capacity: 0,
            });
        }
        Ok(Admission::Granted)
    }

    /// This test limiter keeps no pause.
    async fn pause(&self, _delay: Duration) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_limiter_failure_is_a_not_sent_failure_and_is_retried() {
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), false, vec![]);
    let limiter = Arc::new(FlakyLimiter::default());
    let rig = rig_with_limiter(sink, config(), limiter.clone());
    let result = rig.handle.submit(Item::new(1), None).await.unwrap().await;
    assert_eq!(
        result,
        Ok(delivered(2)),
        "the failed token counts as an attempt"
    );
    assert_eq!(
        rig.recorder.calls().len(),
        1,
        "nothing was sent without a token"
    );
    assert_eq!(limiter.calls.load(Ordering::SeqCst), 2);
}

/// Compile-time: the public types and futures can cross threads.
#[test]
fn handles_completions_and_futures_are_send_and_sync() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn assert_types<T: Send + Sync + Clone>() {}
    assert_types::<DispatcherHandle<ScriptedSink>>();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let sink = ScriptedSink::new(limits(1, 10_000, LINGER), true, vec![]);
    let (handle, worker) = Dispatcher::new(
        sink,
        config(),
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(1)),
    );
    send(&worker);
    send_sync(&handle);
    let submit = handle.submit(Item::new(1), None);
    send(&submit);
    let shutdown = handle.shutdown();
    send(&shutdown);
    let resubmit = handle.resubmit(Vec::new());
    send(&resubmit);
    drop((submit, shutdown, resubmit));
    let completion = handle.try_submit(Item::new(1), None).unwrap();
    send_sync(&completion);
}
