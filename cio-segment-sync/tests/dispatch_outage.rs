//! Outages at the dispatcher, on tokio's paused clock with an in-process sink: long
//! `Retry-After`s honoured, a pause shared by every dispatcher on one limiter, hours-long
//! outages outlasted by the default policy, and a shutdown whose grace runs out handing what is
//! not sent back to its callers (never dead-lettered).

mod dispatch_support;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dispatch::{
    Classification, Delivery, Dispatcher, DispatcherConfig, DispatcherHandle, FailureKind, GiveUp,
    RetryPolicy, SendPhase,
};
use cio_segment_sync::rate_limit::{GovernorLimiter, RateLimiter, Unlimited};
use dispatch_support::{CountingLimiter, Item, Recorder, Reply, ScriptedSink, limits};
use tokio::time::Instant;

const LINGER: Duration = Duration::from_millis(10);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);

/// The production retry policy, only seeded.
fn defaults() -> DispatcherConfig {
    DispatcherConfig::default().with_retry(RetryPolicy::default().with_jitter_seed(5))
}

fn spawn(
    sink: ScriptedSink,
    config: DispatcherConfig,
    limiter: Arc<dyn RateLimiter>,
) -> (
    DispatcherHandle<ScriptedSink>,
    tokio::task::JoinHandle<()>,
    Arc<Recorder>,
    Arc<MemoryDeadLetters>,
) {
    let recorder = Arc::clone(&sink.recorder);
    let dead = Arc::new(MemoryDeadLetters::new(100));
    let (handle, worker) = Dispatcher::spawn(sink, config, limiter, dead.clone());
    (handle, worker, recorder, dead)
}

fn unavailable(retry_after: Option<Duration>) -> Reply {
    let class = Classification::new(FailureKind::Server, SendPhase::ResponseReceived);
    Reply::Fail(
        match retry_after {
            Some(delay) => class.with_retry_after(delay),
            None => class,
        },
        "service unavailable (HTTP 503)",
    )
}

/// Answers 503 until `until` (on the tokio clock), then accepts.
fn down_until(start: Instant, outage: Duration, retry_after: Option<Duration>) -> ScriptedSink {
    ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![]).with_responder(move |call, _| {
        if call.at < start + outage {
            unavailable(retry_after)
        } else {
            Reply::Accept
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_twenty_minute_retry_after_is_waited_as_asked() {
    let asked = 20 * MINUTE;
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![Reply::status_429(asked)],
    );
    let (handle, _worker, recorder, dead) = spawn(sink, defaults(), Arc::new(Unlimited));
    let completion = handle.submit(Item::new(1), None).await.unwrap();
    assert_eq!(
        completion.await,
        Ok(Delivery::Delivered { attempts: 2 }),
        "waited, not given up"
    );
    let calls = recorder.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[1].at - calls[0].at >= asked);
    assert!(dead.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_cap_is_waited_for_the_cap() {
    let policy = RetryPolicy::default()
        .with_jitter_seed(5)
        .with_max_retry_after(10 * MINUTE);
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![Reply::status_429(5 * HOUR)],
    );
    let (handle, _worker, recorder, _dead) = spawn(
        sink,
        DispatcherConfig::default().with_retry(policy),
        Arc::new(Unlimited),
    );
    let completion = handle.submit(Item::new(1), None).await.unwrap();
    assert_eq!(completion.await, Ok(Delivery::Delivered { attempts: 2 }));
    let calls = recorder.calls();
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= 10 * MINUTE && waited < 11 * MINUTE,
        "waited {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_budget_hands_the_item_back_at_once() {
    let policy = RetryPolicy::default()
        .with_jitter_seed(5)
        .with_total_deadline(10 * MINUTE);
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![Reply::status_429(HOUR)],
    );
    let (handle, _worker, recorder, dead) = spawn(
        sink,
        DispatcherConfig::default().with_retry(policy),
        Arc::new(Unlimited),
    );
    let started = Instant::now();
    let completion = handle.submit(Item::new(1), None).await.unwrap();
    match completion.await.unwrap() {
        Delivery::RetryLater {
            stopped, attempts, ..
        } => {
            assert_eq!(stopped, GiveUp::DeadlineExceeded);
            assert_eq!(attempts, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(Instant::now() - started < MINUTE, "not held for the hour");
    assert_eq!(recorder.calls().len(), 1);
    assert!(
        dead.entries().is_empty(),
        "a retryable failure is never dead-lettered"
    );
}

#[tokio::test(start_paused = true)]
async fn a_throttled_answer_pauses_every_dispatcher_on_the_same_limiter() {
    let limiter: Arc<dyn RateLimiter> =
        Arc::new(GovernorLimiter::per_second(NonZeroU32::new(1_000).unwrap()));
    let asked = Duration::from_secs(90);
    let throttled = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![Reply::status_429(asked)],
    );
    let healthy = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![]);
    let (a, _wa, a_calls, _) = spawn(throttled, defaults(), Arc::clone(&limiter));
    let (b, _wb, b_calls, _) = spawn(healthy, defaults(), Arc::clone(&limiter));
    let first = a.submit(Item::new(1), None).await.unwrap();
    a_calls.wait_calls(1).await;
    let throttled_at = a_calls.calls()[0].at;
    // `b` never saw the 429, but shares the API's budget: it waits out the pause too.
    let second = b.submit(Item::new(2), None).await.unwrap();
    assert_eq!(second.await, Ok(Delivery::Delivered { attempts: 1 }));
    assert!(b_calls.calls()[0].at >= throttled_at + asked);
    assert_eq!(first.await, Ok(Delivery::Delivered { attempts: 2 }));
}

#[tokio::test(start_paused = true)]
async fn the_pause_is_handed_to_the_limiter_capped_by_the_policy() {
    let limiter = Arc::new(CountingLimiter::default());
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![
            Reply::status_429(Duration::from_secs(30)),
            unavailable(Some(Duration::from_secs(20))),
            // A 503 without a delay pauses nobody: the backoff alone applies.
            unavailable(None),
            Reply::status_429(10 * HOUR),
        ],
    );
    // A budget that still allows the capped hour after the first three pauses.
    let config = DispatcherConfig::default().with_retry(
        RetryPolicy::default()
            .with_jitter_seed(5)
            .with_total_deadline(2 * HOUR),
    );
    let (handle, _worker, _recorder, _dead) =
        spawn(sink, config, Arc::clone(&limiter) as Arc<dyn RateLimiter>);
    let completion = handle.submit(Item::new(1), None).await.unwrap();
    assert_eq!(completion.await, Ok(Delivery::Delivered { attempts: 5 }));
    assert_eq!(
        *limiter.pauses.lock().unwrap(),
        vec![Duration::from_secs(30), Duration::from_secs(20), HOUR]
    );
}

#[tokio::test(start_paused = true)]
async fn a_sixty_second_outage_is_outlasted_with_each_item_delivered_once() {
    let start = Instant::now();
    let sink = down_until(start, MINUTE, Some(Duration::from_secs(25)));
    let (handle, _worker, recorder, dead) = spawn(sink, defaults(), Arc::new(Unlimited));
    let mut completions = Vec::new();
    for id in 0..30 {
        completions.push(handle.submit(Item::new(id), None).await.unwrap());
    }
    for completion in completions {
        assert!(completion.await.unwrap().is_delivered());
    }
    let accepted: Vec<u32> = recorder
        .calls()
        .into_iter()
        .filter(|call| call.at >= start + MINUTE)
        .flat_map(|call| call.ids)
        .collect();
    let mut sorted = accepted.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..30).collect::<Vec<_>>(),
        "each item accepted exactly once"
    );
    assert!(dead.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_three_hour_outage_hands_items_back_after_the_hour_and_a_resubmit_delivers_them() {
    let start = Instant::now();
    let sink = down_until(start, 3 * HOUR, None);
    let (handle, _worker, recorder, dead) = spawn(sink, defaults(), Arc::new(Unlimited));
    let mut rounds = 0;
    let delivered_at = loop {
        rounds += 1;
        let completion = handle.submit(Item::new(7), None).await.unwrap();
        match completion.await.unwrap() {
            Delivery::Delivered { .. } => break Instant::now(),
            Delivery::RetryLater { stopped, .. } => {
                // The caller (a source's redelivery, a replay) submits it again.
                assert_eq!(stopped, GiveUp::DeadlineExceeded);
                // Held close to the whole hour: given up only when the next retry (at most
                // 60 s away: 30 s plus jitter) would pass it.
                let held = Instant::now() - start;
                assert!(
                    held >= (HOUR - 2 * MINUTE) * rounds,
                    "round {rounds}: {held:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    };
    // Each round holds the item just under the hour, so three rounds end before the recovery
    // and the fourth delivers it.
    assert_eq!(
        rounds, 4,
        "held an hour at a time, delivered in the fourth round"
    );
    assert!(delivered_at >= start + 3 * HOUR);
    let accepted = recorder
        .calls()
        .iter()
        .filter(|call| call.at >= start + 3 * HOUR)
        .count();
    assert_eq!(accepted, 1, "sent once after the recovery");
    assert!(dead.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_grace_that_runs_out_hands_unsent_items_back() {
    let start = Instant::now();
    let sink = down_until(start, 10 * HOUR, Some(Duration::from_secs(30)));
    let (handle, worker, recorder, dead) = spawn(sink, defaults(), Arc::new(Unlimited));
    let mut completions = Vec::new();
    for id in 0..5 {
        completions.push(handle.submit(Item::new(id), None).await.unwrap());
    }
    recorder.wait_calls(1).await;
    handle.shutdown_within(Duration::from_secs(25)).await;
    for completion in completions {
        match completion.await.unwrap() {
            Delivery::RetryLater { stopped, .. } => assert_eq!(stopped, GiveUp::ShuttingDown),
            other => panic!("{other:?}"),
        }
    }
    worker.await.unwrap();
    assert!(
        Instant::now() - start < MINUTE,
        "the grace bounds the shutdown"
    );
    assert!(dead.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_within_its_grace_delivers_everything() {
    let start = Instant::now();
    let sink = down_until(start, Duration::from_secs(10), Some(Duration::from_secs(5)));
    let (handle, worker, _recorder, _dead) = spawn(sink, defaults(), Arc::new(Unlimited));
    let completion = handle.submit(Item::new(1), None).await.unwrap();
    handle.shutdown_within(Duration::from_secs(25)).await;
    assert!(completion.await.unwrap().is_delivered());
    worker.await.unwrap();
}
