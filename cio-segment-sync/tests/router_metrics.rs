//! With the `metrics` feature, the router reports every answer with its flow label and a
//! duration histogram through the `metrics` facade. The test installs a *local* recorder (no
//! global state): the whole run happens on one thread inside `metrics::with_local_recorder`.

mod metrics_support;

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::pipeline::Pipeline;
use cio_segment_sync::segment_model::Message;
use metrics_support::Capture;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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
