//! Flow 4, audience sync, end to end: Engage audience messages through `AudienceSync`, the
//! real dispatcher and `ManualSegmentSink` (and the App API client for segment creation) to a
//! wiremock Customer.io. Exact requests, exact counts; real sockets, so short real delays and
//! no assertion on durations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dispatch::sinks::{CustomerIoBatchSink, ManualSegmentSink};
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle, RetryPolicy};
use cio_segment_sync::flows::audience::{
    AudienceConfig, AudienceIdType, AudienceSync, MemoryMembershipStore,
};
use cio_segment_sync::outcome::{Outcome, SkipReason};
use cio_segment_sync::rate_limit::Unlimited;
use customerio_client::{
    AppApiKey, AppClient, ClientConfig, Region, SiteId, TrackApiKey, TrackClient,
};
use futures::future::join_all;
use segment_model::Message;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";
const APP_AUTH: &str = "Bearer app-key";

type Flow = AudienceSync<ManualSegmentSink, CustomerIoBatchSink>;

fn client_config(server: &MockServer) -> ClientConfig {
    ClientConfig::new(Region::Us)
        .with_track_base_url(&server.uri())
        .unwrap()
        .with_app_base_url(&server.uri())
        .unwrap()
}

fn dispatcher(server: &MockServer) -> DispatcherHandle<ManualSegmentSink> {
    dispatcher_with_linger(server, Duration::from_millis(50))
}

fn dispatcher_with_linger(
    server: &MockServer,
    linger: Duration,
) -> DispatcherHandle<ManualSegmentSink> {
    let client = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        client_config(server),
    )
    .unwrap();
    let config = DispatcherConfig::default()
        .with_linger(linger)
        .with_attempt_timeout(Duration::from_secs(5))
        .with_retry(
            RetryPolicy::default()
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(20))
                .with_jitter_seed(5),
        );
    let (handle, _worker) = Dispatcher::spawn(
        ManualSegmentSink::new(client),
        config,
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(100)),
    );
    handle
}

fn flow(
    server: &MockServer,
    config: AudienceConfig,
) -> (Flow, DispatcherHandle<ManualSegmentSink>) {
    let handle = dispatcher(server);
    let sync = AudienceSync::new(
        config,
        Arc::new(MemoryMembershipStore::default()),
        handle.clone(),
    );
    (sync, handle)
}

fn config() -> AudienceConfig {
    let mut config = AudienceConfig::default();
    config.segments = BTreeMap::from([("high_intent".to_owned(), 7)]);
    config
}

fn membership_call(segment: u64, action: &str, id_type: &str) -> MockBuilder {
    Mock::given(method("POST"))
        .and(path(format!("/api/v1/segments/{segment}/{action}")))
        .and(query_param("id_type", id_type))
        .and(header("authorization", CIO_AUTH))
        .and(header("content-type", "application/json"))
}

/// Any request no other mock matched: answered 500 and expected never.
async fn nothing_else(server: &MockServer) {
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .with_priority(u8::MAX)
        .expect(0)
        .mount(server)
        .await;
}

/// An identify-form audience change.
fn identify(user: &str, key: &str, entered: bool, timestamp: &str, message_id: &str) -> Message {
    Message::from_value(json!({
        "type": "identify", "userId": user, "messageId": message_id, "timestamp": timestamp,
        "traits": {"email": format!("{user}@example.com"), key: entered},
        "context": {"personas": {"computation_class": "audience", "computation_key": key,
                                 "computation_id": "aud_1", "space_id": "spa_1"}}
    }))
    .unwrap()
}

/// A track-form audience change.
fn track(user: &str, key: &str, entered: bool, timestamp: &str, message_id: &str) -> Message {
    let event = if entered {
        "Audience Entered"
    } else {
        "Audience Exited"
    };
    Message::from_value(json!({
        "type": "track", "userId": user, "messageId": message_id, "timestamp": timestamp,
        "event": event, "properties": {"audience_key": key, key: entered},
        "context": {"traits": {"email": format!("{user}@example.com")},
                    "personas": {"computation_class": "audience", "computation_key": key}}
    }))
    .unwrap()
}

#[tokio::test]
async fn twenty_five_hundred_adds_coalesce_into_three_requests() {
    let server = MockServer::start().await;
    let users: Vec<String> = (0..2500).map(|i| format!("user-{i:04}")).collect();
    for chunk in users.chunks(1000) {
        membership_call(7, "add_customers", "id")
            .and(body_json(json!({ "ids": chunk })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
    }
    nothing_else(&server).await;
    // A linger long enough that only the count closes the first two batches.
    let handle = dispatcher_with_linger(&server, Duration::from_millis(500));
    let sync: Flow = AudienceSync::new(
        config(),
        Arc::new(MemoryMembershipStore::default()),
        handle.clone(),
    );
    let messages: Vec<Message> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let ts = "2024-06-01T10:00:00Z";
            // Both forms, alternating.
            if i % 2 == 0 {
                identify(u, "high_intent", true, ts, &format!("m{i}"))
            } else {
                track(u, "high_intent", true, ts, &format!("m{i}"))
            }
        })
        .collect();
    // Each handle call runs up to its submit on its first poll (the memory store and the
    // queue never make it wait; `unconstrained` keeps tokio's cooperative budget from
    // pausing it), so polling them one by one submits in message order; the assertion proves
    // it did.
    let mut pending = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let mut call = Box::pin(tokio::task::unconstrained(sync.handle(message)));
        assert!(futures::poll!(&mut call).is_pending());
        assert_eq!(handle.stats().submitted, i as u64 + 1);
        pending.push(call);
    }
    let outcomes = join_all(pending).await;
    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), Outcome::Delivered);
    }
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn adds_and_removes_go_to_separate_requests_by_email() {
    let server = MockServer::start().await;
    membership_call(7, "add_customers", "email")
        .and(body_json(
            json!({"ids": ["a@example.com", "c@example.com"]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    membership_call(7, "remove_customers", "email")
        .and(body_json(json!({"ids": ["b@example.com"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    let mut config = config();
    config.id_type = AudienceIdType::Email;
    let (sync, handle) = flow(&server, config);
    let ts = "2024-06-01T10:00:00Z";
    let messages = [
        identify("a", "high_intent", true, ts, "m1"),
        track("b", "high_intent", false, ts, "m2"),
        track("c", "high_intent", true, ts, "m3"),
    ];
    let outcomes: Vec<Outcome> = join_all(messages.iter().map(|m| sync.handle(m)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Delivered, Outcome::Delivered, Outcome::Delivered,]
    );
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn an_older_entry_arriving_after_a_newer_exit_is_dropped() {
    let server = MockServer::start().await;
    membership_call(7, "remove_customers", "id")
        .and(body_json(json!({"ids": ["user-1"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    membership_call(7, "add_customers", "id")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    let (sync, handle) = flow(&server, config());
    // The exit happened at 10:05 but arrives first; the entry of 10:00 arrives late.
    let exit = track(
        "user-1",
        "high_intent",
        false,
        "2024-06-01T10:05:00Z",
        "m-exit",
    );
    let enter = identify(
        "user-1",
        "high_intent",
        true,
        "2024-06-01T10:00:00Z",
        "m-enter",
    );
    assert_eq!(sync.handle(&exit).await.unwrap(), Outcome::Delivered);
    assert_eq!(
        sync.handle(&enter).await.unwrap(),
        Outcome::Skipped(SkipReason::Stale)
    );
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn a_missing_segment_is_created_through_the_app_api_once_then_used() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/segments"))
        .and(header("authorization", APP_AUTH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"segments": [
                {"id": 3, "name": "other_audience", "type": "manual"},
                {"id": 4, "name": "Engage: new_audience", "type": "dynamic"}
            ]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/segments"))
        .and(header("authorization", APP_AUTH))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"segment": {"name": "Engage: new_audience"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"segment": {
            "id": 42, "deduplicate_id": "42:1717236000", "name": "Engage: new_audience",
            "state": "finished", "type": "manual", "tags": []
        }})))
        .expect(1)
        .mount(&server)
        .await;
    membership_call(42, "add_customers", "id")
        .and(body_json(json!({"ids": ["user-1", "user-2"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    let mut config = config();
    config.create_missing = true;
    config.segment_name_prefix = "Engage: ".to_owned();
    let handle = dispatcher(&server);
    let app = AppClient::new(AppApiKey::new("app-key"), client_config(&server)).unwrap();
    let sync: Flow = AudienceSync::new(
        config,
        Arc::new(MemoryMembershipStore::default()),
        handle.clone(),
    )
    // The App API's own limiter, at Customer.io's documented 10 requests per second.
    .with_app_client_default_limit(app);
    let ts = "2024-06-01T10:00:00Z";
    let messages = [
        identify("user-1", "new_audience", true, ts, "m1"),
        track("user-2", "new_audience", true, ts, "m2"),
    ];
    let outcomes = join_all(messages.iter().map(|m| sync.handle(m))).await;
    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), Outcome::Delivered);
    }
    assert_eq!(
        sync.known_segments().await,
        BTreeMap::from([
            ("high_intent".to_owned(), 7),
            ("new_audience".to_owned(), 42)
        ])
    );
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured_and_retried_once() {
    let server = MockServer::start().await;
    membership_call(7, "add_customers", "id")
        .and(body_json(json!({"ids": ["user-1"]})))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    membership_call(7, "add_customers", "id")
        .and(body_json(json!({"ids": ["user-1"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    let (sync, handle) = flow(&server, config());
    let message = identify("user-1", "high_intent", true, "2024-06-01T10:00:00Z", "m1");
    assert_eq!(sync.handle(&message).await.unwrap(), Outcome::Delivered);
    assert_eq!(handle.stats().throttled, 1);
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn the_boolean_attribute_goes_out_as_a_v2_identify_next_to_the_membership() {
    let server = MockServer::start().await;
    membership_call(7, "remove_customers", "id")
        .and(body_json(json!({"ids": ["user-1"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({"batch": [
            {"type": "person", "action": "identify", "identifiers": {"id": "user-1"},
             "timestamp": 1_717_236_000_i64, "attributes": {"high_intent": false}}
        ]})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    let mut config = config();
    config.write_attribute = true;
    let client = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        client_config(&server),
    )
    .unwrap();
    let (attributes, _worker) = Dispatcher::spawn(
        CustomerIoBatchSink::new(client),
        DispatcherConfig::default().with_linger(Duration::from_millis(20)),
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(10)),
    );
    let (sync, handle) = flow(&server, config);
    let sync = sync.with_attribute_dispatcher(attributes.clone());
    let message = track("user-1", "high_intent", false, "2024-06-01T10:00:00Z", "m1");
    assert_eq!(sync.handle(&message).await.unwrap(), Outcome::Delivered);
    handle.shutdown().await;
    attributes.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn an_app_api_429_pauses_the_shared_app_limiter_and_is_retried_later() {
    use cio_segment_sync::outcome::{Ack, AckRule};
    use cio_segment_sync::rate_limit::{Admission, GovernorLimiter, RateLimiter};

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/segments"))
        .and(header("authorization", APP_AUTH))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    let mut config = config();
    config.create_missing = true;
    let handle = dispatcher(&server);
    let app = AppClient::new(AppApiKey::new("app-key"), client_config(&server)).unwrap();
    // The workspace's one App API bucket, shared with every other App caller.
    let limiter: Arc<dyn RateLimiter> = Arc::new(GovernorLimiter::per_second(
        std::num::NonZeroU32::new(10).unwrap(),
    ));
    let sync: Flow = AudienceSync::new(
        config,
        Arc::new(MemoryMembershipStore::default()),
        handle.clone(),
    )
    .with_app_client(app, Arc::clone(&limiter));
    let error = sync
        .handle(&identify(
            "user-1",
            "new_audience",
            true,
            "2024-06-01T10:00:00Z",
            "m1",
        ))
        .await
        .unwrap_err();
    assert_eq!(error.ack(), Ack::RetryLater, "{error}");
    // Every other App API call now waits out the server's two minutes.
    match limiter.try_acquire().await.unwrap() {
        Admission::Wait(wait) => assert!(wait > Duration::from_secs(100), "{wait:?}"),
        Admission::Granted => panic!("the App API limiter was not paused"),
    }
    handle.shutdown().await;
    server.verify().await;
}
