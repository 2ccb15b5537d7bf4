//! With the `metrics` feature, the router reports every answer with its flow label and a
//! duration histogram through the `metrics` facade. The test installs a *local* recorder (no
//! global state): the whole run happens on one thread inside `metrics::with_local_recorder`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::pipeline::Pipeline;
use cio_segment_sync::segment_model::Message;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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

impl HistogramFn for Cell {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counters and histogram observation counts by `name{label=value,…}`.
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<BTreeMap<String, Arc<Cell>>>>);

impl Capture {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        Arc::clone(self.0.lock().unwrap().entry(name).or_default())
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
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

#[test]
fn every_answer_is_counted_with_its_flow_and_timed() {
    let capture = Capture::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&capture, || {
        runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/api/v2/batch"))
                .respond_with(ResponseTemplate::new(200))
                .expect(1)
                .mount(&server)
                .await;
            let client = TrackClient::new(
                SiteId::new("site"),
                TrackApiKey::new("key"),
                ClientConfig::new(Region::Us)
                    .with_track_base_url(&server.uri())
                    .unwrap(),
            )
            .unwrap();
            let config = SyncConfig::from_toml_str(
                "[triggers.dispatcher]\nlinger_ms = 1\n[onboarding]\nmilestones = [{ event = \"Signed Up\", key = \"signed_up\" }]\n",
                "test",
            )
            .unwrap();
            let (engine, workers) = SyncBuilder::new(client, config).build().unwrap();
            for worker in workers {
                tokio::spawn(worker);
            }
            let paid = Message::from_value(json!({
                "type": "track", "userId": "u-1", "messageId": "m-1", "event": "Paid"
            }))
            .unwrap();
            engine.router.process(&paid).await.unwrap();
            engine.router.process(&paid).await.unwrap(); // a duplicate: skipped
            engine.shutdown().await;
            server.verify().await;
        });
    });
    assert_eq!(
        capture.get("cio_segment_sync_messages_total{flow=triggers,outcome=delivered}"),
        1
    );
    assert_eq!(
        capture.get("cio_segment_sync_messages_total{flow=triggers,outcome=skipped}"),
        1
    );
    assert_eq!(
        capture.get("cio_segment_sync_message_duration_seconds{flow=triggers}"),
        2
    );
}
