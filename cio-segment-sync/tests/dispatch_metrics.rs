//! With the `metrics` feature, the dispatcher's counters reach the `metrics` facade.
//! (Built only with `--features metrics`: see `required-features` in Cargo.toml.)

mod dispatch_support;
mod metrics_support;

use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, RetryPolicy};
use cio_segment_sync::rate_limit::Unlimited;
use dispatch_support::{Item, Reply, ScriptedSink, limits};
use metrics_support::Capture;

#[tokio::test(start_paused = true)]
async fn counters_reach_the_metrics_facade() {
    let capture = Capture::default();
    metrics::set_global_recorder(capture.clone()).expect("the only recorder in this binary");
    let sink = ScriptedSink::new(
        limits(10, 10_000, Duration::from_millis(10)),
        true,
        vec![Reply::status_500(), Reply::Partial(vec![(0, "bad")])],
    );
    let (handle, worker) = Dispatcher::spawn(
        sink,
        DispatcherConfig::default().with_retry(RetryPolicy::default().with_jitter_seed(2)),
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(10)),
    );
    let a = handle.submit(Item::new(0), None).await.unwrap();
    let b = handle.submit(Item::new(1), None).await.unwrap();
    a.await.unwrap();
    b.await.unwrap();
    handle.shutdown().await;
    worker.await.unwrap();
    // Every metric carries the sink's label, and only that one.
    let names = capture.names();
    assert!(!names.is_empty());
    for name in &names {
        assert!(name.ends_with("{sink=scripted}"), "{name} in {names:?}");
    }
    let get = |name: &str| {
        capture.get(&format!(
            "cio_segment_sync_dispatch_{name}{{sink=scripted}}"
        ))
    };
    assert_eq!(get("submitted_total"), 2);
    assert_eq!(get("attempts_total"), 2);
    assert_eq!(get("retries_total"), 1);
    assert_eq!(get("delivered_total"), 1);
    assert_eq!(get("dead_lettered_total"), 1);
    assert_eq!(get("latency_seconds"), 2);
    assert_eq!(
        capture.gauge("cio_segment_sync_dispatch_queue_depth{sink=scripted}"),
        Some(0.0)
    );
}
