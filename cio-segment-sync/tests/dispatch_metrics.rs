//! With the `metrics` feature, the dispatcher's counters reach the `metrics` facade.
//! (Built only with `--features metrics`: see `required-features` in Cargo.toml.)

mod dispatch_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, RetryPolicy};
use cio_segment_sync::rate_limit::Unlimited;
use dispatch_support::{Item, Reply, ScriptedSink, limits};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.0.store(value as u64, Ordering::SeqCst);
    }
}

impl HistogramFn for Cell {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Records every metric by name, checking each carries `sink="scripted"`.
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<HashMap<String, Arc<Cell>>>>);

impl Capture {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        assert_eq!(labels, vec![("sink".to_owned(), "scripted".to_owned())]);
        Arc::clone(
            self.0
                .lock()
                .unwrap()
                .entry(key.name().to_owned())
                .or_default(),
        )
    }
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.0.load(Ordering::SeqCst))
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

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
    assert_eq!(capture.get("cio_segment_sync_dispatch_submitted_total"), 2);
    assert_eq!(capture.get("cio_segment_sync_dispatch_attempts_total"), 2);
    assert_eq!(capture.get("cio_segment_sync_dispatch_retries_total"), 1);
    assert_eq!(capture.get("cio_segment_sync_dispatch_delivered_total"), 1);
    assert_eq!(
        capture.get("cio_segment_sync_dispatch_dead_lettered_total"),
        1
    );
    assert_eq!(capture.get("cio_segment_sync_dispatch_latency_seconds"), 2);
    assert_eq!(capture.get("cio_segment_sync_dispatch_queue_depth"), 0);
}
