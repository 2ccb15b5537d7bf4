//! A `metrics` recorder for the `*_metrics` suites: it keeps every counter's total, every
//! gauge's value and every histogram's number of observations, by `name{label=value,…}`.
//!
//! (`metrics-util`'s `DebuggingRecorder` would do, but its `debugging` feature brings a crate
//! the workspace does not otherwise build; this is the one copy the suites share.)

#![allow(dead_code, unreachable_pub)] // Each suite uses a different part.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// One metric: a counter's total, a histogram's count of observations, or a gauge's value (as
/// the bits of an `f64`).
#[derive(Debug, Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

impl Cell {
    fn update_gauge(&self, change: impl Fn(f64) -> f64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |bits| {
                Some(change(f64::from_bits(bits)).to_bits())
            });
    }
}

impl GaugeFn for Cell {
    fn increment(&self, value: f64) {
        self.update_gauge(|now| now + value);
    }
    fn decrement(&self, value: f64) {
        self.update_gauge(|now| now - value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::SeqCst);
    }
}

impl HistogramFn for Cell {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The recorder. Clones share what they record.
#[derive(Debug, Default, Clone)]
pub struct Capture(Arc<Mutex<BTreeMap<String, Arc<Cell>>>>);

/// `name{a=1,b=2}` with the labels sorted, or `name` alone without labels.
fn render(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    if labels.is_empty() {
        return key.name().to_owned();
    }
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Capture {
    fn cells(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Cell>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cell(&self, key: &Key) -> Arc<Cell> {
        Arc::clone(self.cells().entry(render(key)).or_default())
    }

    fn bits(&self, name: &str) -> Option<u64> {
        self.cells()
            .get(name)
            .map(|cell| cell.0.load(Ordering::SeqCst))
    }

    /// A counter's total or a histogram's number of observations; 0 when never registered.
    pub fn get(&self, name: &str) -> u64 {
        self.bits(name).unwrap_or(0)
    }

    /// A gauge's value; `None` when never registered.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        self.bits(name).map(f64::from_bits)
    }

    /// Every metric registered, as `name{labels}`, sorted.
    pub fn names(&self) -> Vec<String> {
        self.cells().keys().cloned().collect()
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
