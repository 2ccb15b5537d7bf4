//! With the `metrics` feature, the pipeline's counters reach the `metrics` facade.
//! (Built only with `--features metrics`: see `required-features` in Cargo.toml.)

mod metrics_support;

use std::sync::Arc;

use async_trait::async_trait;
use cio_segment_sync::customerio_client::track::v2::Operation;
use cio_segment_sync::pipeline::{Deliver, DeliverError, Delivered, Pipeline, SyncPipeline};
use cio_segment_sync::segment_model::Message;
use metrics_support::Capture;
use serde_json::json;

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
