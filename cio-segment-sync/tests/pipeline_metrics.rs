//! With the `metrics` feature, the pipeline's counters reach the `metrics` facade.
//! (Built only with `--features metrics`: see `required-features` in Cargo.toml.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cio_segment_sync::customerio_client::track::v2::Operation;
use cio_segment_sync::pipeline::{Deliver, DeliverError, Delivered, Pipeline, SyncPipeline};
use cio_segment_sync::segment_model::Message;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use serde_json::json;

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

/// Records every counter by name; gauges and histograms are not expected.
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<HashMap<String, Arc<Cell>>>>);

impl Capture {
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
        let cell = Arc::clone(
            self.0
                .lock()
                .unwrap()
                .entry(key.name().to_owned())
                .or_default(),
        );
        Counter::from_arc(cell)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[derive(Debug)]
struct AcceptAll;

#[async_trait]
impl Deliver for AcceptAll {
    async fn deliver(&self, _: Vec<Operation>, _: &str) -> Result<Delivered, DeliverError> {
        Ok(Delivered::Accepted)
    }
}

#[tokio::test]
async fn outcomes_reach_the_metrics_facade() {
    let capture = Capture::default();
    metrics::set_global_recorder(capture.clone()).expect("the only recorder in this binary");
    let pipeline = SyncPipeline::builder(Arc::new(AcceptAll)).build();
    let track = Message::from_value(json!({
        "type": "track", "messageId": "m-1", "userId": "u-1", "event": "Paid",
        "timestamp": "2024-05-01T10:15:30.123Z"
    }))
    .unwrap();
    pipeline.process(&track).await.unwrap();
    pipeline.process(&track).await.unwrap();
    pipeline
        .process(
            &Message::from_value(json!({"type": "track", "messageId": "m-2", "event": "E"}))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(capture.get("cio_segment_sync_pipeline_delivered_total"), 1);
    assert_eq!(
        capture.get("cio_segment_sync_pipeline_deduplicated_total"),
        1
    );
    assert_eq!(capture.get("cio_segment_sync_pipeline_skipped_total"), 1);
    assert_eq!(capture.get("cio_segment_sync_pipeline_failed_total"), 0);
}
