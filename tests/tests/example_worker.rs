//! The `embed_in_worker` example's consumer over the engine's `SegmentRouter`, acking by the
//! library's one ack rule (`AckRule`): every outcome is acked (a dead-lettered message is kept
//! in the dead-letter sink), an unreadable body is parked, and one another worker holds is
//! redelivered (then parked after the queue's delivery limit).

use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::builder::{SyncBuilder, SyncEngine};
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dedupe::{Claim, Deduper, MemoryDeduper};
use cio_segment_sync::identity::SkipReason;
use cio_segment_sync::outcome::Outcome;
use cio_segment_sync::pipeline::PipelineError;
use cio_segment_sync::store::Stores;
use examples::worker::{Decision, MemoryQueue, consume, decide};
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;

fn track(message_id: &str, user: &str) -> Vec<u8> {
    json!({"type": "track", "messageId": message_id, "userId": user, "event": "Clicked",
           "timestamp": AT})
    .to_string()
    .into_bytes()
}

fn event(message_id: &str, user: &str) -> serde_json::Value {
    json!({"batch": [{"type": "person", "action": "event", "identifiers": {"id": user},
        "name": "Clicked", "id": event_id(message_id, AT_MS).to_string(),
        "timestamp": AT_MS / 1000}]})
}

fn engine(server: &MockServer, deduper: Arc<dyn Deduper>) -> SyncEngine {
    let client = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        ClientConfig::new(Region::Us)
            .with_track_base_url(&server.uri())
            .unwrap(),
    )
    .unwrap();
    let mut config = SyncConfig::default();
    config.triggers.dispatcher.linger_ms = Some(5);
    config.triggers.dispatcher.max_attempts = std::num::NonZeroU32::new(1);
    let mut stores = Stores::memory();
    stores.deduper = deduper;
    let (engine, workers) = SyncBuilder::new(client, config)
        .stores(stores)
        .build()
        .unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_acked_unreadable_bodies_parked_and_busy_ones_redelivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(body_json(event("m-ok", "u-1")))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(body_json(event("m-refused", "u-2")))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"errors": [{"reason": "bad"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;

    // Another worker holds m-busy: the sync answers "in flight", a retryable error.
    let deduper = Arc::new(MemoryDeduper::default());
    assert!(matches!(
        deduper
            .claim("m-busy", Duration::from_secs(600))
            .await
            .unwrap(),
        Claim::First(_)
    ));
    let engine = engine(&server, deduper);

    let queue = MemoryQueue::new(3);
    queue.publish("q-ok", track("m-ok", "u-1"));
    queue.publish("q-refused", track("m-refused", "u-2"));
    queue.publish("q-dup", track("m-ok", "u-1"));
    queue.publish("q-bad", b"{not json".to_vec());
    queue.publish("q-busy", track("m-busy", "u-3"));
    consume(&queue, engine.router.as_ref()).await;
    engine.shutdown().await;

    // Refused by Customer.io for good: dead-lettered, which is an outcome, so acked.
    assert_eq!(queue.acked(), ["q-ok", "q-refused", "q-dup"]);
    assert_eq!(engine.customerio.stats().dead_lettered, 1);
    let parked: Vec<String> = queue.parked().into_iter().map(|(id, _)| id).collect();
    assert_eq!(parked, ["q-bad", "q-busy"]);
    // q-busy was handed out three times: two redeliveries, then parked.
    assert_eq!(queue.redelivered(), 2);
    assert!(queue.is_empty());
    server.verify().await;
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[test]
fn the_ack_rule() {
    let ok = |outcome: Outcome| -> Result<Outcome, PipelineError> { Ok(outcome) };
    assert_eq!(decide(&ok(Outcome::Delivered)), Decision::Ack);
    assert_eq!(
        decide(&ok(Outcome::Skipped(SkipReason::Duplicate))),
        Decision::Ack
    );
    assert_eq!(
        decide(&ok(Outcome::DeadLettered(
            cio_segment_sync::outcome::DeadLetterReason::TooLarge {
                bytes: 40_000,
                limit: 32_000
            }
        ))),
        Decision::Ack
    );
}

#[test]
fn a_queue_redelivers_until_its_limit_then_parks() {
    let queue = MemoryQueue::new(2);
    queue.publish("q-1", b"{}".to_vec());
    let first = queue.receive().unwrap();
    assert_eq!(first.deliveries, 1);
    queue.redeliver(first, "busy");
    let second = queue.receive().unwrap();
    assert_eq!(second.deliveries, 2);
    queue.redeliver(second, "busy");
    assert!(queue.receive().is_none());
    assert_eq!(queue.parked(), [("q-1".to_owned(), "busy".to_owned())]);
    assert!(queue.acked().is_empty());
    // The body (personal data) is not in the Debug output.
    queue.publish("q-2", b"secret-body".to_vec());
    let message = queue.receive().unwrap();
    assert!(!format!("{message:?}").contains("secret-body"));
}
