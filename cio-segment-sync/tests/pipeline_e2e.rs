//! The pipeline end to end: SyncPipeline (with the real mapping) → DispatchDeliver →
//! Dispatcher → CustomerIoBatchSink → a wiremock Customer.io. Exact requests and request counts; real sockets, so short real
//! delays and no assertion on durations.

use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::track::v2::{Operation, PersonEvent, PersonOperation};
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dead_letter::{DeadLetterReason, MemoryDeadLetters};
use cio_segment_sync::dedupe::{Claim, Deduper, MemoryDeduper};
use cio_segment_sync::dispatch::sinks::CustomerIoBatchSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle, RetryPolicy};
use cio_segment_sync::identity::{SkipReason, Target};
use cio_segment_sync::pipeline::{
    DispatchDeliver, MapError, Mapped, Mapper, Outcome, Pipeline, PipelineError, SyncPipeline,
};
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::Message;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `Basic base64("site:key")`.
const AUTH: &str = "Basic c2l0ZTprZXk=";

struct Setup {
    pipeline: SyncPipeline,
    deduper: Arc<MemoryDeduper>,
    dead: Arc<MemoryDeadLetters>,
    handle: DispatcherHandle<CustomerIoBatchSink>,
}

fn setup(server: &MockServer) -> Setup {
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&server.uri())
        .unwrap();
    let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap();
    let dead = Arc::new(MemoryDeadLetters::new(100));
    let dispatcher_config = DispatcherConfig::default()
        .with_linger(Duration::from_millis(10))
        .with_attempt_timeout(Duration::from_secs(5))
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(20))
                .with_jitter_seed(7),
        );
    let (handle, _worker) = Dispatcher::spawn(
        CustomerIoBatchSink::new(client),
        dispatcher_config,
        Arc::new(Unlimited),
        dead.clone(),
    );
    let deduper = Arc::new(MemoryDeduper::default());
    // The default mapper: the crate's mapping rules under the default configuration.
    let pipeline =
        SyncPipeline::builder(Arc::new(DispatchDeliver::new(handle.clone(), dead.clone())))
            .deduper(deduper.clone())
            .build();
    Setup {
        pipeline,
        deduper,
        dead,
        handle,
    }
}

fn batch() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", AUTH))
        .and(header("content-type", "application/json"))
}

fn message(value: Value) -> Message {
    Message::from_value(value).unwrap()
}

/// 2024-05-01T10:15:30.123Z.
const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;

fn event_body(user: &str, name: &str, message_id: &str) -> Value {
    json!({"batch": [{
        "type": "person", "action": "event", "identifiers": {"id": user},
        "name": name, "id": event_id(message_id, AT_MS).to_string(),
        "timestamp": AT_MS / 1000
    }]})
}

fn track(message_id: &str, user: &str, event: &str) -> Message {
    message(json!({
        "type": "track", "messageId": message_id, "userId": user, "event": event,
        "timestamp": AT
    }))
}

#[tokio::test]
async fn identify_then_anonymous_event_reach_customerio_as_exact_batches() {
    let server = MockServer::start().await;
    batch()
        .and(body_json(json!({"batch": [{
            "type": "person", "action": "identify", "identifiers": {"id": "u-1"},
            "timestamp": AT_MS / 1000,
            "attributes": {
                "plan": "pro", "email": "x@example.com", "created_at": 1_698_912_000,
                "anonymous_id": "a-1"
            }
        }]})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    batch()
        .and(body_json(event_body("u-1", "Viewed Pricing", "m-2")))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let s = setup(&server);

    let identify = message(json!({
        "type": "identify", "messageId": "m-1", "userId": "u-1", "anonymousId": "a-1",
        "timestamp": AT,
        "traits": {"email": "x@example.com", "plan": "pro", "createdAt": "2023-11-02T08:00:00.000Z"}
    }));
    let anonymous = message(json!({
        "type": "track", "messageId": "m-2", "anonymousId": "a-1", "event": "Viewed Pricing",
        "timestamp": AT
    }));
    assert_eq!(
        s.pipeline.process(&identify).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(
        s.pipeline.process(&anonymous).await.unwrap(),
        Outcome::Delivered
    );
    // A redelivery of the event is a duplicate: no third request.
    assert_eq!(
        s.pipeline.process(&anonymous).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    assert!(s.dead.entries().is_empty());
}

#[tokio::test]
async fn server_error_is_retried_by_the_dispatcher_with_the_same_body() {
    let server = MockServer::start().await;
    let body = event_body("u-1", "Paid", "m-500");
    batch()
        .and(body_json(body.clone()))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    batch()
        .and(body_json(body))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let s = setup(&server);
    let paid = track("m-500", "u-1", "Paid");
    assert_eq!(s.pipeline.process(&paid).await.unwrap(), Outcome::Delivered);
}

#[tokio::test]
async fn rejected_operation_is_dead_lettered_and_committed() {
    let server = MockServer::start().await;
    batch()
        .and(body_json(event_body("u-1", "Paid", "m-400")))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"errors": [{"reason": "invalid", "field": "name", "message": "bad name"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let s = setup(&server);
    let paid = track("m-400", "u-1", "Paid");
    let outcome = s.pipeline.process(&paid).await.unwrap();
    let dead = s.dead.entries();
    assert_eq!(dead.len(), 1);
    assert_eq!(outcome, Outcome::DeadLettered(dead[0].reason.clone()));
    assert!(matches!(
        dead[0].reason,
        DeadLetterReason::RejectedByServer { .. }
    ));
    // The source's retry would repeat the failure: it is committed, and no second request.
    assert_eq!(
        s.pipeline.process(&paid).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
}

#[tokio::test]
async fn closed_dispatcher_fails_the_message_and_its_retry_is_not_a_duplicate() {
    let server = MockServer::start().await;
    batch()
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let s = setup(&server);
    s.handle.shutdown().await;
    let paid = message(
        json!({"type": "track", "messageId": "m-closed", "userId": "u-1", "event": "Paid"}),
    );
    let err = s.pipeline.process(&paid).await.unwrap_err();
    assert!(matches!(err, PipelineError::Delivery(_)), "{err:?}");
    assert!(err.is_retryable());
    // The claim was released: the source's retry (here, claimed by hand) is first, not done.
    assert!(matches!(
        s.deduper
            .claim("m-closed", Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::First(_)
    ));
}

#[tokio::test]
async fn an_operation_the_sink_refuses_is_recorded_as_a_dead_letter() {
    // An event without an id cannot be retried safely, so the batch sink refuses it at submit.
    #[derive(Debug)]
    struct NoIds;
    impl Mapper for NoIds {
        fn map(&self, message: &Message, target: &Target) -> Result<Mapped, MapError> {
            let (Some(name), Target::Person { identifier, .. }) = (message.event(), target) else {
                return Ok(Mapped::Skip(SkipReason::Filtered));
            };
            let event = PersonEvent::new(identifier.clone(), name).map_err(MapError::new)?;
            Ok(Mapped::Operations(vec![Operation::Person(
                PersonOperation::Event(event),
            )]))
        }
    }

    let server = MockServer::start().await;
    batch()
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let s = setup(&server);
    let pipeline = SyncPipeline::builder(Arc::new(DispatchDeliver::new(
        s.handle.clone(),
        s.dead.clone(),
    )))
    .mapper(Arc::new(NoIds))
    .build();
    let paid = track("m-noid", "u-1", "Paid");
    let outcome = pipeline.process(&paid).await.unwrap();
    let dead = s.dead.entries();
    assert_eq!(dead.len(), 1);
    assert_eq!(outcome, Outcome::DeadLettered(dead[0].reason.clone()));
    assert!(
        matches!(dead[0].reason, DeadLetterReason::Failed { .. }),
        "{:?}",
        dead[0].reason
    );
    assert_eq!(dead[0].sink, "customerio.track.v2.batch");
    assert_eq!(
        dead[0].item,
        json!({"type": "person", "action": "event", "identifiers": {"id": "u-1"}, "name": "Paid"})
    );
}

#[tokio::test]
async fn a_batch_reaches_customerio_with_each_persons_events_in_order() {
    let server = MockServer::start().await;
    // How the dispatcher groups operations into requests depends on timing; what is asserted
    // is that every operation arrives exactly once and each person's arrive in order.
    batch()
        .respond_with(ResponseTemplate::new(200))
        .expect(1..=6)
        .mount(&server)
        .await;
    let s = setup(&server);
    let messages = vec![
        track("o-1", "u-1", "first"),
        track("o-2", "u-2", "first"),
        track("o-3", "u-1", "second"),
        track("o-4", "u-2", "second"),
        track("o-5", "u-1", "third"),
        track("o-6", "u-3", "only"),
    ];
    let results = s.pipeline.process_batch(messages).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(Outcome::Delivered))),
        "{results:?}"
    );

    let mut seen: Vec<(String, String)> = Vec::new();
    for request in server.received_requests().await.unwrap() {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        for op in body["batch"].as_array().unwrap() {
            seen.push((
                op["identifiers"]["id"].as_str().unwrap().to_owned(),
                op["name"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    for (person, expected) in [
        ("u-1", vec!["first", "second", "third"]),
        ("u-2", vec!["first", "second"]),
        ("u-3", vec!["only"]),
    ] {
        let names: Vec<&str> = seen
            .iter()
            .filter(|(who, _)| who == person)
            .map(|(_, name)| name.as_str())
            .collect();
        assert_eq!(names, expected, "{person}");
    }
    assert_eq!(s.pipeline.stats().delivered, 6);
}
