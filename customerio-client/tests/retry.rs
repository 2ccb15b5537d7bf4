//! Opt-in retries end to end against a mock server: the exact number of attempts for each
//! kind of failure and idempotency. Delays are a few milliseconds and nothing asserts on
//! elapsed time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use customerio_client::retry::{CallRetry, Idempotency, Jitter, retry};
use customerio_client::track::v1::{Event, IdentifyRequest};
use customerio_client::{
    ClientConfig, ErrorKind, Identifier, Phase, Region, SiteId, TrackApiKey, TrackClient,
};
use serde_json::json;
use ulid::Ulid;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const AUTH: &str = "Basic c2l0ZTprZXk=";

fn client_at(base: &str, timeout: Duration) -> TrackClient {
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(base)
        .unwrap()
        .with_timeout(timeout);
    TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap()
}

fn client(server: &MockServer) -> TrackClient {
    client_at(&server.uri(), Duration::from_secs(5))
}

/// Millisecond delays, seeded jitter, a generous deadline.
fn fast() -> CallRetry {
    CallRetry::default()
        .with_max_attempts(5)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(5))
        .with_retry_after_cap(Duration::from_millis(5))
        .with_deadline(Duration::from_secs(30))
        .with_jitter(Jitter::Seeded(11))
}

fn status(code: u16) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({}))
}

async fn identify(client: &TrackClient, policy: &CallRetry) -> customerio_client::Error {
    let person = Identifier::id("user-42");
    let request = IdentifyRequest::new().attribute("plan", "pro");
    retry(policy, Idempotency::Idempotent, || {
        client.identify_with(&person, &request)
    })
    .await
    .unwrap_err()
}

fn identify_mock() -> wiremock::MockBuilder {
    Mock::given(method("PUT"))
        .and(path("/api/v1/customers/user-42"))
        .and(header("authorization", AUTH))
        .and(body_json(json!({"plan": "pro"})))
}

#[tokio::test]
async fn two_500s_then_200_take_three_attempts() {
    let server = MockServer::start().await;
    identify_mock()
        .respond_with(status(500))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    identify_mock()
        .respond_with(status(200))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let person = Identifier::id("user-42");
    let request = IdentifyRequest::new().attribute("plan", "pro");
    retry(&fast(), Idempotency::Idempotent, || {
        client.identify_with(&person, &request)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_400_takes_one_attempt() {
    let server = MockServer::start().await;
    identify_mock()
        .respond_with(status(400))
        .expect(1)
        .mount(&server)
        .await;
    let err = identify(&client(&server), &fast()).await;
    assert_eq!(err.kind(), ErrorKind::Client);
}

#[tokio::test]
async fn the_attempt_cap_counts_the_first_try() {
    let server = MockServer::start().await;
    identify_mock()
        .respond_with(status(502))
        .expect(3)
        .mount(&server)
        .await;
    let err = identify(&client(&server), &fast().with_max_attempts(3)).await;
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status_code().map(|s| s.as_u16()), Some(502));
}

#[tokio::test]
async fn a_disabled_policy_makes_one_attempt() {
    let server = MockServer::start().await;
    identify_mock()
        .respond_with(status(503))
        .expect(1)
        .mount(&server)
        .await;
    identify(&client(&server), &CallRetry::disabled()).await;
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_capped_delay() {
    let server = MockServer::start().await;
    // An hour is cut to the policy's 5 ms cap, so the retry happens at once.
    identify_mock()
        .respond_with(status(429).insert_header("retry-after", "3600"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    identify_mock()
        .respond_with(status(200))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let person = Identifier::id("user-42");
    let request = IdentifyRequest::new().attribute("plan", "pro");
    retry(&fast(), Idempotency::Idempotent, || {
        client.identify_with(&person, &request)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_stops() {
    let server = MockServer::start().await;
    identify_mock()
        .respond_with(status(429).insert_header("retry-after", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    // Honouring the full hour would start the next attempt after the 30 s deadline. (Had the
    // hint been ignored, the 1 ms backoff would have retried.)
    let policy = fast().with_retry_after_cap(Duration::from_secs(7200));
    let err = identify(&client(&server), &policy).await;
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn a_reached_deadline_stops() {
    let server = MockServer::start().await;
    identify_mock()
        .respond_with(status(500))
        .expect(1)
        .mount(&server)
        .await;
    let err = identify(&client(&server), &fast().with_deadline(Duration::ZERO)).await;
    assert_eq!(err.kind(), ErrorKind::Server);
}

#[tokio::test]
async fn a_merge_is_not_resent_after_a_500() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/merge_customers"))
        .and(header("authorization", AUTH))
        .and(body_json(
            json!({"primary": {"id": "a"}, "secondary": {"id": "b"}}),
        ))
        .respond_with(status(500))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let (primary, secondary) = (Identifier::id("a"), Identifier::id("b"));
    let err = retry(&fast(), Idempotency::NotIdempotent, || {
        client.merge(&primary, &secondary)
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
}

fn event_mock(id: Option<&str>) -> wiremock::MockBuilder {
    let body = match id {
        Some(id) => json!({"name": "order_completed", "id": id}),
        None => json!({"name": "order_completed"}),
    };
    Mock::given(method("POST"))
        .and(path("/api/v1/customers/user-42/events"))
        .and(header("authorization", AUTH))
        .and(body_json(body))
}

#[tokio::test]
async fn an_event_with_an_id_is_resent_with_the_same_id_after_a_timeout() {
    let server = MockServer::start().await;
    let id = Ulid::from_parts(1_717_172_000_000, 42);
    let wire = id.to_string();
    event_mock(Some(&wire))
        .respond_with(status(200).set_delay(Duration::from_millis(1500)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    event_mock(Some(&wire))
        .respond_with(status(200))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_at(&server.uri(), Duration::from_millis(200));
    let person = Identifier::id("user-42");
    let event = Event::new("order_completed").id(id);
    assert_eq!(event.idempotency(), Idempotency::DedupeId);
    retry(&fast(), event.idempotency(), || {
        client.track(&person, &event)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_event_without_an_id_is_not_resent_after_a_timeout() {
    let server = MockServer::start().await;
    event_mock(None)
        .respond_with(status(200).set_delay(Duration::from_millis(1500)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    event_mock(None)
        .respond_with(status(200))
        .expect(0)
        .mount(&server)
        .await;
    let client = client_at(&server.uri(), Duration::from_millis(200));
    let person = Identifier::id("user-42");
    let event = Event::new("order_completed");
    let err = retry(&fast(), event.idempotency(), || {
        client.track(&person, &event)
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.phase(), Phase::MaybeSent);
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_a_merge() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = client_at(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
    let attempts = AtomicU32::new(0);
    let (primary, secondary) = (Identifier::id("a"), Identifier::id("b"));
    let err = retry(
        &fast().with_max_attempts(3),
        Idempotency::NotIdempotent,
        || {
            attempts.fetch_add(1, Ordering::SeqCst);
            client.merge(&primary, &secondary)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.phase(), Phase::NotSent);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn invalid_input_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(status(200))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server);
    let attempts = AtomicU32::new(0);
    let person = Identifier::id("user-42");
    let event = Event::new("n".repeat(101));
    let err = retry(&fast(), Idempotency::DedupeId, || {
        attempts.fetch_add(1, Ordering::SeqCst);
        client.track(&person, &event)
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

/// Hosts run retries inside spawned tasks: the future must stay `Send`. Fails to compile
/// otherwise.
#[test]
fn the_retry_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = client_at("http://127.0.0.1:9", Duration::from_secs(1));
    let person = Identifier::id("user-42");
    let policy = CallRetry::default();
    let future = retry(&policy, Idempotency::Idempotent, || client.delete(&person));
    assert_send(&future);
}
