//! The product layer: `SyncBuilder` wires every Segment → Customer.io flow from a `SyncConfig`
//! and `SegmentRouter` routes each message once, behind the same dedupe and loop guard.

use std::sync::Arc;

use cio_segment_sync::builder::{BuildError, SyncBuilder, SyncEngine};
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dedupe::Claim;
use cio_segment_sync::dispatch::Worker;
use cio_segment_sync::flows::router::Route;
use cio_segment_sync::outcome::{Outcome, SkipReason};
use cio_segment_sync::pipeline::{Pipeline, PipelineError};
use cio_segment_sync::segment_model::Message;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `site:key` in Basic auth.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";

const CONFIG: &str = r#"
[triggers.dispatcher]
linger_ms = 1

[onboarding]
milestones = [{ event = "Signed Up", key = "signed_up" }]
forward_event = false

[audience]
segments = { vip = 7 }
"#;

fn engine(
    server: &MockServer,
    config: &SyncConfig,
) -> Result<(SyncEngine, Vec<Worker>), BuildError> {
    let client = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        ClientConfig::new(Region::Us)
            .with_track_base_url(&server.uri())
            .unwrap(),
    )
    .unwrap();
    SyncBuilder::new(client, config.clone()).build()
}

fn running(server: &MockServer) -> SyncEngine {
    let config = SyncConfig::from_toml_str(CONFIG, "test").unwrap();
    let (engine, workers) = engine(server, &config).unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    engine
}

fn audience_entered(message_id: &str) -> Message {
    Message::from_value(json!({
        "type": "identify", "userId": "u-1", "messageId": message_id,
        "timestamp": "2024-05-01T10:00:00Z", "traits": {"vip": true},
        "context": {"personas": {"computation_class": "audience", "computation_key": "vip"}}
    }))
    .unwrap()
}

fn track(message_id: &str, event: &str) -> Message {
    Message::from_value(json!({
        "type": "track", "userId": "u-1", "messageId": message_id, "event": event,
        "timestamp": "2024-05-01T10:00:00Z"
    }))
    .unwrap()
}

#[tokio::test]
async fn each_message_takes_one_route_to_the_expected_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/7/add_customers"))
        .and(query_param("id_type", "id"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({"ids": ["u-1"]})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .respond_with(ResponseTemplate::new(200))
        .expect(2)
        .mount(&server)
        .await;
    let engine = running(&server);
    let router = &engine.router;
    assert_eq!(
        router.routes(),
        vec![Route::Triggers, Route::Onboarding, Route::Audience]
    );

    let enter = audience_entered("m-aud");
    let milestone = track("m-signup", "Signed Up");
    let paid = track("m-paid", "Paid");
    assert_eq!(router.route(&enter), Route::Audience);
    assert_eq!(router.route(&milestone), Route::Onboarding);
    assert_eq!(router.route(&paid), Route::Triggers);

    for message in [&enter, &milestone, &paid] {
        assert_eq!(router.process(message).await.unwrap(), Outcome::Delivered);
    }
    let stats = router.stats();
    assert_eq!(
        (
            stats.audience.delivered,
            stats.onboarding.delivered,
            stats.triggers.delivered
        ),
        (1, 1, 1)
    );
    engine.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn the_audience_flow_is_deduplicated_and_loop_guarded_like_the_others() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/7/add_customers"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let engine = running(&server);
    let enter = audience_entered("m-aud");
    assert_eq!(
        engine.router.process(&enter).await.unwrap(),
        Outcome::Delivered
    );
    // Segment's retry of the same messageId: claimed once, whatever the flow.
    assert_eq!(
        engine.router.process(&enter).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    // A change this library wrote into Segment itself, coming back.
    let mut echo = audience_entered("m-echo");
    engine.loop_guard.stamp(&mut echo).await.unwrap();
    assert_eq!(
        engine.router.process(&echo).await.unwrap(),
        Outcome::Skipped(SkipReason::OwnEcho)
    );
    assert_eq!(engine.router.stats().audience.skipped, 2);
    engine.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn a_batch_keeps_each_persons_order_across_flows_and_blocks_behind_a_failure() {
    let server = MockServer::start().await;
    // Customer.io refuses the audience call with a retryable status: the audience change must be
    // retried, so the same person's later events are not attempted; another person goes on.
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/7/add_customers"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = SyncConfig::from_toml_str(CONFIG, "test").unwrap();
    config.triggers.dispatcher.max_attempts = std::num::NonZeroU32::new(1);
    let (engine, workers) = engine(&server, &config).unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    let other = Message::from_value(json!({
        "type": "track", "userId": "u-2", "messageId": "m-other", "event": "Paid"
    }))
    .unwrap();
    let results = engine
        .router
        .process_batch_routed(&[audience_entered("m-aud"), track("m-paid", "Paid"), other])
        .await;
    assert_eq!(results[0].0, Route::Audience);
    assert!(
        matches!(&results[0].1, Err(error) if error.is_retryable()),
        "{:?}",
        results[0].1
    );
    assert!(matches!(
        results[1],
        (Route::Triggers, Err(PipelineError::Blocked))
    ));
    assert!(matches!(
        results[2],
        (Route::Triggers, Ok(Outcome::Delivered))
    ));
    // Not dead-lettered: the claim was released, so Segment's retry is delivered.
    let claim = engine
        .stores
        .deduper
        .claim("m-aud", std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert!(matches!(claim, Claim::First(_)), "{claim:?}");
    assert_eq!(engine.segments.as_ref().unwrap().stats().dead_lettered, 0);
    let stats = engine.router.stats();
    assert_eq!(
        (stats.audience.retry_later, stats.triggers.retry_later),
        (1, 1)
    );
    engine.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn creating_missing_segments_needs_an_app_api_client() {
    let server = MockServer::start().await;
    let config = SyncConfig::from_toml_str("[audience]\ncreate_missing = true\n", "test").unwrap();
    assert!(matches!(
        engine(&server, &config),
        Err(BuildError::AudienceNeedsAppApi)
    ));
}

#[test]
fn the_router_is_a_shareable_pipeline() {
    fn pipeline<T: Pipeline>() {}
    fn send_sync<T: Send + Sync>() {}
    pipeline::<cio_segment_sync::flows::router::SegmentRouter>();
    // Shared behind an Arc by the endpoints.
    send_sync::<SyncEngine>();
    let _: Option<Arc<dyn Pipeline>> =
        None::<Arc<cio_segment_sync::flows::router::SegmentRouter>>.map(|r| r as Arc<dyn Pipeline>);
}
