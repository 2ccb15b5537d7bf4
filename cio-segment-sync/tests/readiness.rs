//! Readiness of a dispatcher (feature `http`): ready while it sends, not ready while a throttled
//! answer pauses it, while its queue is full, and once it is shut down. In-process sink, so
//! the tests run on tokio's paused clock.

mod dispatch_support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle};
use cio_segment_sync::http::{NotReadyReason, Readiness, ReadinessCheck};
use cio_segment_sync::rate_limit::Unlimited;
use dispatch_support::{Item, Reply, ScriptedSink, limits};

const LINGER: Duration = Duration::from_millis(10);

fn spawn(sink: ScriptedSink, queue: usize) -> DispatcherHandle<ScriptedSink> {
    let config = DispatcherConfig::default().with_queue_capacity(NonZeroUsize::new(queue).unwrap());
    let (handle, _task) = Dispatcher::spawn(
        sink,
        config,
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(10)),
    );
    handle
}

#[tokio::test(start_paused = true)]
async fn a_throttled_dispatcher_is_not_ready_until_its_pause_ends() {
    let sink = ScriptedSink::new(
        limits(10, 10_000, LINGER),
        true,
        vec![Reply::status_429(Duration::from_secs(20))],
    );
    let recorder = sink.recorder.clone();
    let handle = spawn(sink, 100);
    assert_eq!(handle.name(), "dispatcher:scripted");
    assert_eq!(handle.check().await, Ok(()));
    assert_eq!(handle.paused_for(), None);

    let completion = handle.submit(Item::new(1), None).await.unwrap();
    recorder.wait_calls(1).await;
    // Let the worker record the 429's pause.
    while handle.paused_for().is_none() {
        tokio::task::yield_now().await;
    }
    let left = handle.paused_for().unwrap();
    assert!(left <= Duration::from_secs(20) && left > Duration::from_secs(19));
    let not_ready = handle.check().await.unwrap_err();
    assert_eq!(not_ready.reason, NotReadyReason::Paused);
    assert!(
        not_ready.message.starts_with("every send is paused for "),
        "{}",
        not_ready.message
    );

    // After the pause the retry is accepted and the dispatcher is ready again.
    assert!(completion.await.unwrap().is_delivered());
    assert_eq!(recorder.calls().len(), 2);
    assert_eq!(handle.paused_for(), None);
    assert_eq!(handle.check().await, Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_is_not_ready_and_a_shut_down_dispatcher_is_closed() {
    // The first request hangs until its attempt timeout, holding both items.
    let sink = ScriptedSink::new(limits(10, 10_000, LINGER), true, vec![Reply::Hang]);
    let recorder = sink.recorder.clone();
    let handle = spawn(sink, 2);
    let first = handle.submit(Item::new(1), None).await.unwrap();
    assert_eq!((handle.queue_len(), handle.queue_capacity()), (1, 2));
    assert_eq!(handle.check().await, Ok(()));
    let second = handle.submit(Item::new(2), None).await.unwrap();
    let not_ready = handle.check().await.unwrap_err();
    assert_eq!(not_ready.reason, NotReadyReason::QueueFull);
    assert_eq!(not_ready.message, "the queue holds 2 of 2 items");

    // In a report, under its name, beside a ready one.
    let report = Readiness::new()
        .with_check(Arc::new(cio_segment_sync::store::Stores::memory()))
        .with_check(Arc::new(handle.clone()))
        .report()
        .await;
    assert!(!report.ready);
    assert_eq!(
        report
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.ready, c.reason))
            .collect::<Vec<_>>(),
        vec![
            ("stores", true, None),
            (
                "dispatcher:scripted",
                false,
                Some(NotReadyReason::QueueFull)
            )
        ]
    );

    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    while !handle.is_closed() {
        tokio::task::yield_now().await;
    }
    let not_ready = handle.check().await.unwrap_err();
    assert_eq!(not_ready.reason, NotReadyReason::Closed);
    // The hung attempt times out and the retry delivers both.
    assert!(first.await.unwrap().is_delivered());
    assert!(second.await.unwrap().is_delivered());
    shutdown.await.unwrap();
    assert_eq!(recorder.calls().len(), 2);
}
