//! The `webhook_server` example's router driven over real HTTP (127.0.0.1:0, reqwest), with
//! wiremock standing in for Customer.io's Track API and Segment's tracking API. Exact requests
//! and exact counts are asserted; deadlines are short and never measured.

mod support_server;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::webhook::WebhookSigningKey;
use cio_segment_sync::flows::churn::ChurnConfig;
use cio_segment_sync::flows::engagement::message_id_for;
use cio_segment_sync::flows::triggers::DispatcherSettings;
use cio_segment_sync::loop_guard::{STAMP_KEY, STAMP_VERSION};
use cio_segment_sync::segment_model::integrations::{
    CUSTOMERIO_ACTIONS_NAMES, CUSTOMERIO_CLASSIC_NAME,
};
use cio_segment_sync::segment_model::signature::{SharedSecret, sign};
use examples::server::settings::Settings;
use examples::server::{Deadlines, ServerState, router};
use serde_json::{Map, Value, json};
use support_server::serve;
use wiremock::matchers::{any, body_json, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";
/// `Basic base64("wk:")`.
const SEGMENT_AUTH: &str = "Basic d2s6";
const SEGMENT_SECRET: &str = "segment-shared-secret";
const SIGNING_KEY: &str = "reporting-webhook-signing-key";

/// 2024-05-01T10:15:30.123Z, and in Unix milliseconds / seconds.
const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;
const AT_S: i64 = AT_MS / 1000;

/// The outage tests' backoff: the retry comes long after the test ended.
const RETRY_NOT_BEFORE_MS: u64 = 14_000;

/// How the test server is configured.
struct Options {
    segment_secret: bool,
    deadlines: Deadlines,
    /// Attempts per Customer.io / Segment request, and the backoff between them.
    max_attempts: u32,
    backoff_ms: u64,
    /// More variables.
    env: Vec<(&'static str, String)>,
    /// The churn monitor's settings (off when `None`).
    churn: Option<ChurnConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_secret: false,
            // Long enough for a local mock; the outage tests shorten them.
            deadlines: Deadlines::new(Duration::from_secs(10), Duration::from_millis(3_500))
                .unwrap(),
            max_attempts: 1,
            backoff_ms: 10,
            env: Vec::new(),
            churn: None,
        }
    }
}

struct TestServer {
    base: String,
    http: reqwest::Client,
    state: Arc<ServerState>,
}

fn dispatcher(options: &Options) -> DispatcherSettings {
    let mut settings = DispatcherSettings::default();
    settings.linger_ms = Some(10);
    settings.attempt_timeout_ms = std::num::NonZeroU64::new(5_000).unwrap();
    settings.max_attempts = std::num::NonZeroU32::new(options.max_attempts);
    settings.initial_backoff_ms = Some(options.backoff_ms);
    settings.max_backoff_ms = Some(options.backoff_ms);
    settings
}

/// Builds the state from variables (as the binary does), serves the router on port 0.
async fn start(cio: &MockServer, segment: &MockServer, options: Options) -> TestServer {
    let mut env: HashMap<&str, String> = HashMap::from([
        ("CIO_SITE_ID", "site".to_owned()),
        ("CIO_API_KEY", "key".to_owned()),
        ("CIO_TRACK_URL", cio.uri()),
        ("SEGMENT_WRITE_KEY", "wk".to_owned()),
        ("SEGMENT_API_URL", segment.uri()),
        ("CIO_WEBHOOK_SIGNING_KEY", SIGNING_KEY.to_owned()),
    ]);
    env.extend(options.env.iter().cloned());
    if options.segment_secret {
        env.insert("SEGMENT_WEBHOOK_SECRET", SEGMENT_SECRET.to_owned());
    }
    let mut settings = Settings::from_lookup(|name| env.get(name).cloned()).unwrap();
    settings.deadlines = options.deadlines;
    settings.flows.triggers.dispatcher = dispatcher(&options);
    settings.flows.engagement_dispatcher = dispatcher(&options);
    settings.flows.churn = options.churn.clone();
    settings.body_limit = 64 * 1024;
    let (base, state) = serve(settings).await;
    TestServer {
        base,
        http: reqwest::Client::new(),
        state,
    }
}

impl TestServer {
    async fn post(&self, route: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{route}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, route: &str) -> (u16, String, String) {
        let response = self
            .http
            .get(format!("{}{route}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_type, response.text().await.unwrap())
    }
}

/// `POST /api/v2/batch` with exactly `operations`, answered 200, expected `times` times.
async fn expect_cio_batch(server: &MockServer, operations: Value, times: u64) {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({ "batch": operations })))
        .respond_with(ResponseTemplate::new(200))
        .expect(times)
        .mount(server)
        .await;
}

/// Nothing at all reaches `server`.
async fn expect_nothing(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(server)
        .await;
}

fn track(message_id: &str, user: &str, total: i64) -> Value {
    json!({
        "type": "track", "messageId": message_id, "userId": user, "event": "Order Completed",
        "timestamp": AT, "properties": {"total": total}
    })
}

fn track_op(message_id: &str, user: &str, total: i64) -> Value {
    json!({
        "type": "person", "action": "event", "identifiers": {"id": user},
        "name": "Order Completed", "id": event_id(message_id, AT_MS).to_string(),
        "timestamp": AT_S, "attributes": {"total": total}
    })
}

fn segment_signature(bytes: &[u8]) -> (&'static str, String) {
    (
        "x-signature",
        sign(&SharedSecret::new(SEGMENT_SECRET), bytes),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_single_event_is_delivered_as_the_exact_v2_batch_before_the_200() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_cio_batch(&cio, json!([track_op("m-1", "u-1", 30)]), 1).await;
    expect_nothing(&segment).await;
    let server = start(&cio, &segment, Options::default()).await;

    let body = track("m-1", "u-1", 30).to_string();
    let (status, answer) = server.post("/segment", body.as_bytes(), &[]).await;
    assert_eq!(
        (status, answer),
        (200, json!({"message": "1 event(s) handled"}))
    );
    // The 200 came after delivery: the pipeline counted it delivered already.
    assert_eq!(server.state.triggers().pipeline().stats().delivered, 1);

    // Segment's retry of the same messageId is answered 200 and sends nothing more.
    let (status, _) = server.post("/segment", body.as_bytes(), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(server.state.triggers().pipeline().stats().deduplicated, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_single_and_batched_bodies_are_verified_and_delivered() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_cio_batch(&cio, json!([track_op("m-1", "u-1", 1)]), 1).await;
    expect_cio_batch(&cio, json!([track_op("m-2", "u-2", 2)]), 1).await;
    expect_cio_batch(&cio, json!([track_op("m-3", "u-2", 3)]), 1).await;
    let server = start(
        &cio,
        &segment,
        Options {
            segment_secret: true,
            ..Options::default()
        },
    )
    .await;

    let single = track("m-1", "u-1", 1).to_string();
    let (status, _) = server
        .post(
            "/segment",
            single.as_bytes(),
            &[segment_signature(single.as_bytes())],
        )
        .await;
    assert_eq!(status, 200);

    // Batched (Webhooks Actions): the array as JavaScript writes it, signed over the first
    // element's exact text. One person, so the two events go in order, one request each.
    let first = track("m-2", "u-2", 2).to_string();
    let second = track("m-3", "u-2", 3).to_string();
    let batch = format!("[{first},{second}]");
    let (status, answer) = server
        .post(
            "/segment",
            batch.as_bytes(),
            &[segment_signature(first.as_bytes())],
        )
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"message": "2 event(s) handled"}))
    );
    assert_eq!(server.state.triggers().pipeline().stats().delivered, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_missing_signature_is_401_and_nothing_reaches_customerio() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_nothing(&cio).await;
    let server = start(
        &cio,
        &segment,
        Options {
            segment_secret: true,
            ..Options::default()
        },
    )
    .await;

    let body = track("m-1", "u-1", 1).to_string();
    // Signed over other bytes.
    let (status, answer) = server
        .post("/segment", body.as_bytes(), &[segment_signature(b"{}")])
        .await;
    assert_eq!(
        (status, answer),
        (
            401,
            json!({"message": "the X-Signature header does not match the request body"})
        )
    );
    // No header.
    let (status, _) = server.post("/segment", body.as_bytes(), &[]).await;
    assert_eq!(status, 401);
    // A batch signed over its second element.
    let first = track("m-2", "u-2", 2).to_string();
    let second = track("m-3", "u-2", 3).to_string();
    let batch = format!("[{first},{second}]");
    let (status, _) = server
        .post(
            "/segment",
            batch.as_bytes(),
            &[segment_signature(second.as_bytes())],
        )
        .await;
    assert_eq!(status, 401);

    // The status page lists the refusals, without the person.
    let (_, _, page) = server.get("/").await;
    assert!(page.contains("POST /segment"), "{page}");
    assert!(!page.contains("u-1"), "{page}");
    assert_eq!(server.state.recent_failures().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_body_is_400_naming_the_item_and_nothing_is_sent() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_nothing(&cio).await;
    let server = start(&cio, &segment, Options::default()).await;

    let (status, answer) = server.post("/segment", b"not json", &[]).await;
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("event at index 0 is not a Segment message"),
        "{answer}"
    );

    // A batch whose items are all unreadable: nothing to handle.
    let batch = format!(
        "[{}]",
        json!({"type": "track", "messageId": "m-2", "userId": "person-secret", "event": 5})
    );
    let (status, answer) = server.post("/segment", batch.as_bytes(), &[]).await;
    assert_eq!(status, 400);
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("event at index 0 is not a Segment message"),
        "{message}"
    );
    assert!(!message.contains("person-secret"), "{message}");

    // Over the body limit (set to 64 KiB here).
    let (status, _) = server
        .post("/segment", &vec![b' '; 64 * 1024 + 1], &[])
        .await;
    assert_eq!(status, 413);

    let (status, answer) = server.post("/segment", b"[]", &[]).await;
    assert_eq!(
        (status, answer),
        (400, json!({"message": "the batch array is empty"}))
    );
    assert_eq!(server.state.triggers().pipeline().stats().delivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_item_in_a_batch_is_400_naming_it_and_its_neighbours_are_still_delivered() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_cio_batch(&cio, json!([track_op("m-1", "u-1", 1)]), 1).await;
    let server = start(&cio, &segment, Options::default()).await;

    // The second item's `event` is a number. Segment does not retry a 400, so the good event
    // is delivered first and the answer names the bad one, without the person's id.
    let batch = format!(
        "[{},{}]",
        track("m-1", "u-1", 1),
        json!({"type": "track", "messageId": "m-2", "userId": "person-secret", "event": 5})
    );
    let (status, answer) = server.post("/segment", batch.as_bytes(), &[]).await;
    assert_eq!(status, 400);
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("event at index 1 is not a Segment message: `event`"),
        "{message}"
    );
    assert!(
        message.ends_with("; the other 1 event(s) were handled"),
        "{message}"
    );
    assert!(!message.contains("person-secret"), "{message}");
    assert_eq!(server.state.triggers().pipeline().stats().delivered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customerio_outage_is_503_within_the_deadline_so_segment_retries() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    // The first attempt fails; the retry waits at least 14 s (jitter only adds, and the retry
    // still fits the dispatcher's 30 s total deadline, so nothing is dead-lettered), so exactly
    // one request reaches the mock while the test runs.
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&cio)
        .await;
    let server = start(
        &cio,
        &segment,
        Options {
            deadlines: Deadlines::new(Duration::from_millis(300), Duration::from_millis(300))
                .unwrap(),
            max_attempts: 5,
            backoff_ms: RETRY_NOT_BEFORE_MS,
            ..Options::default()
        },
    )
    .await;

    let body = track("m-1", "u-1", 1).to_string();
    let (status, answer) = server.post("/segment", body.as_bytes(), &[]).await;
    assert_eq!(
        (status, answer),
        (
            503,
            json!({"message": "delivery of 1 event(s) did not finish within 300 ms"})
        )
    );
    // Segment's retry meanwhile finds the message still claimed: 503 again, nothing sent.
    let (status, _) = server.post("/segment", body.as_bytes(), &[]).await;
    assert_eq!(status, 503);
    assert_eq!(server.state.triggers().pipeline().stats().delivered, 0);
}

/// A Customer.io reporting webhook (an email click), signed at `signed_at`.
fn clicked() -> Value {
    json!({
        "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": "email", "metric": "clicked",
        "timestamp": 1_717_173_000,
        "data": {
            "identifiers": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c106000001"},
            "customer_id": "user-42", "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "campaign_id": 5, "campaign_name": "Trial ending", "action_id": 96,
            "journey_id": "01GW20GXAAXBKZD8J96M8FNV3R", "recipient": "ada@example.com",
            "subject": "Your trial ends soon", "href": "https://example.com/upgrade",
            "link_id": 3, "machine": false
        }
    })
}

fn expected_clicked() -> Value {
    let mut integrations = Map::new();
    integrations.insert(CUSTOMERIO_CLASSIC_NAME.to_owned(), Value::Bool(false));
    for name in CUSTOMERIO_ACTIONS_NAMES {
        integrations.insert((*name).to_owned(), Value::Bool(false));
    }
    json!({
        "type": "track", "event": "Email Link Clicked",
        "messageId": message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ"),
        "userId": "user-42", "timestamp": "2024-05-31T16:30:00.000Z",
        "properties": {
            "email_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "email_subject": "Your trial ends soon",
            "campaign_id": "5", "campaign_name": "Trial ending",
            "link_id": "3", "link_url": "https://example.com/upgrade"
        },
        "context": {
            "traits": {"email": "ada@example.com"},
            STAMP_KEY: {"origin": "customerio", "version": STAMP_VERSION}
        },
        "integrations": integrations
    })
}

/// A Segment `/v1/batch` body: a string `sentAt` and exactly `batch`.
struct SegmentBatch(Value);

impl Match for SegmentBatch {
    fn matches(&self, request: &Request) -> bool {
        let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        matches!(body.remove("sentAt"), Some(Value::String(_)))
            && body.remove("batch").as_ref() == Some(&self.0)
            && body.is_empty()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn cio_headers(body: &[u8], signed_at: u64) -> Vec<(&'static str, String)> {
    let key = WebhookSigningKey::new(SIGNING_KEY).unwrap();
    vec![
        ("x-cio-timestamp", signed_at.to_string()),
        ("x-cio-signature", key.sign(signed_at, body)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_reporting_webhook_is_sent_to_segment_as_the_exact_batch_before_the_200() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_nothing(&cio).await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(header("authorization", SEGMENT_AUTH))
        .and(header("content-type", "application/json"))
        .and(SegmentBatch(json!([expected_clicked()])))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&segment)
        .await;
    let server = start(&cio, &segment, Options::default()).await;

    let body = clicked().to_string();
    let headers = cio_headers(body.as_bytes(), unix_now());
    let (status, answer) = server.post("/customerio", body.as_bytes(), &headers).await;
    assert_eq!((status, answer), (200, json!({"message": "event handled"})));
    // Customer.io's retry of the same event_id is acknowledged and not sent again.
    let (status, _) = server.post("/customerio", body.as_bytes(), &headers).await;
    assert_eq!(status, 200);

    let (_, _, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("cio_sync_engagement_events_total{result=\"delivered\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cio_sync_engagement_events_total{result=\"duplicate\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cio_sync_webhook_requests_total{route=\"customerio\",answer=\"ok\"} 2\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_or_forged_reporting_webhook_is_401_and_nothing_is_sent() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_nothing(&cio).await;
    expect_nothing(&segment).await;
    let server = start(&cio, &segment, Options::default()).await;

    let body = clicked().to_string();
    // Correctly signed an hour ago: outside the default five-minute window.
    let stale = cio_headers(body.as_bytes(), unix_now() - 3_600);
    let (status, answer) = server.post("/customerio", body.as_bytes(), &stale).await;
    assert_eq!(status, 401, "{answer}");
    // Signed now, but over other bytes.
    let forged = cio_headers(b"{}", unix_now());
    let (status, _) = server.post("/customerio", body.as_bytes(), &forged).await;
    assert_eq!(status, 401);

    let (_, _, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains(
            "cio_sync_webhook_requests_total{route=\"customerio\",answer=\"refused\"} 2\n"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_outage_is_503_never_429_or_500_for_customerio() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&segment)
        .await;
    let server = start(
        &cio,
        &segment,
        Options {
            deadlines: Deadlines::new(Duration::from_millis(300), Duration::from_millis(300))
                .unwrap(),
            max_attempts: 5,
            backoff_ms: RETRY_NOT_BEFORE_MS,
            ..Options::default()
        },
    )
    .await;

    let body = clicked().to_string();
    let headers = cio_headers(body.as_bytes(), unix_now());
    let (status, answer) = server.post("/customerio", body.as_bytes(), &headers).await;
    assert_eq!(
        (status, answer),
        (
            503,
            json!({"message": "delivery did not finish within 300 ms"})
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authentic_but_undecodable_reporting_webhook_is_acknowledged() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_nothing(&segment).await;
    let server = start(&cio, &segment, Options::default()).await;

    let body = br#"{"event_id": 5}"#;
    let headers = cio_headers(body, unix_now());
    let (status, _) = server.post("/customerio", body, &headers).await;
    // Any other answer would hold back every later event of the webhook.
    assert_eq!(status, 200);
    assert_eq!(server.state.recent_failures().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_metrics_and_the_status_page_answer() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_cio_batch(&cio, json!([track_op("m-1", "u-1", 30)]), 1).await;
    let server = start(&cio, &segment, Options::default()).await;
    let body = track("m-1", "u-1", 30).to_string();
    assert_eq!(server.post("/segment", body.as_bytes(), &[]).await.0, 200);

    assert_eq!(
        server.get("/healthz").await,
        (200, "text/plain; charset=utf-8".to_owned(), "ok".to_owned())
    );

    let (status, content_type, metrics) = server.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for line in [
        "# TYPE cio_sync_segment_messages_total counter\n",
        "cio_sync_segment_messages_total{result=\"delivered\"} 1\n",
        "cio_sync_webhook_requests_total{route=\"segment\",answer=\"ok\"} 1\n",
        "cio_sync_dispatcher_delivered_total{dispatcher=\"customerio\"} 1\n",
        "# TYPE cio_sync_dispatcher_queue_depth gauge\n",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    // One HELP and TYPE per family, its samples together: the two dispatchers' delivered
    // counters sit under one header.
    assert_eq!(
        metrics
            .matches("# TYPE cio_sync_dispatcher_delivered_total counter\n")
            .count(),
        1,
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "cio_sync_dispatcher_delivered_total{dispatcher=\"customerio\"} 1\n\
             cio_sync_dispatcher_delivered_total{dispatcher=\"segment\"} 0\n"
        ),
        "{metrics}"
    );

    let (status, content_type, page) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        page.contains("Segment → Customer.io: 1 delivered, 0 dead-lettered"),
        "{page}"
    );
    assert!(
        page.contains("<h2>Recent failures</h2>\n<p>None.</p>"),
        "{page}"
    );
    assert!(!page.contains("u-1"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signing_key_the_customerio_route_is_not_served() {
    let cio = MockServer::start().await;
    let env = HashMap::from([
        ("CIO_SITE_ID", "site".to_owned()),
        ("CIO_API_KEY", "key".to_owned()),
        ("CIO_TRACK_URL", cio.uri()),
    ]);
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).unwrap();
    let (state, workers) = settings.build().await.unwrap();
    assert_eq!(workers.len(), 1, "only the Customer.io dispatcher");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(Arc::new(state))).await });
    let status = reqwest::Client::new()
        .post(format!("{base}/customerio"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_webhook_backfills_the_profile_into_customerio() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    let profiles = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/v1/spaces/spa_1/collections/users/profiles/user_id:user-42/traits",
        ))
        .and(QueryIs("limit=200"))
        // `Basic base64("tok:")`.
        .and(header("authorization", "Basic dG9rOg=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {"email": "ada@example.com", "plan": "pro"},
            "cursor": {"url": "/v1/...", "has_more": false, "next": ""}
        })))
        .expect(1)
        .mount(&profiles)
        .await;
    expect_cio_batch(
        &cio,
        json!([{
            "type": "person", "action": "identify", "identifiers": {"id": "user-42"},
            "attributes": {"email": "ada@example.com", "plan": "pro"}
        }]),
        1,
    )
    .await;
    // `customer_subscribed` has no Segment event name: the back-sync skips it.
    expect_nothing(&segment).await;
    let server = start(
        &cio,
        &segment,
        Options {
            env: vec![
                ("SEGMENT_PROFILE_TOKEN", "tok".to_owned()),
                ("SEGMENT_SPACE_ID", "spa_1".to_owned()),
                ("SEGMENT_PROFILE_URL", profiles.uri()),
            ],
            ..Options::default()
        },
    )
    .await;

    let body = json!({
        "event_id": "01HSUB0000000000000000001", "object_type": "customer",
        "metric": "subscribed", "timestamp": 1_717_173_000,
        "data": {
            "identifiers": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c106000001"},
            "customer_id": "", "email_address": null
        }
    })
    .to_string();
    let headers = cio_headers(body.as_bytes(), unix_now());
    let (status, answer) = server.post("/customerio", body.as_bytes(), &headers).await;
    assert_eq!((status, answer), (200, json!({"message": "event handled"})));
    let (_, _, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("cio_sync_backfill_events_total{result=\"delivered\"} 1\n"),
        "{metrics}"
    );
}

/// Matches the exact query string.
struct QueryIs(&'static str);

impl Match for QueryIs {
    fn matches(&self, request: &Request) -> bool {
        request.url.query() == Some(self.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_events_are_activity_and_the_churn_scan_enrols_the_inactive() {
    const DAY: i64 = 86_400;
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_cio_batch(&cio, json!([track_op("m-1", "u-1", 30)]), 1).await;
    let now = AT_S + 45 * DAY;
    let enrolment_id = event_id("churn:churn_risk:u-1", AT_S * 1000).to_string();
    expect_cio_batch(
        &cio,
        json!([
            {"type": "person", "action": "event", "identifiers": {"id": "u-1"},
             "name": "churn_risk", "id": enrolment_id, "timestamp": now,
             "attributes": {"days_inactive": 45, "last_seen": AT_S}},
            {"type": "person", "action": "identify", "identifiers": {"id": "u-1"},
             "attributes": {"churn_risk_since": AT_S + 30 * DAY}}
        ]),
        1,
    )
    .await;
    let server = start(
        &cio,
        &segment,
        Options {
            churn: Some(ChurnConfig::default()),
            ..Options::default()
        },
    )
    .await;

    let body = track("m-1", "u-1", 30).to_string();
    assert_eq!(server.post("/segment", body.as_bytes(), &[]).await.0, 200);
    // The event's own timestamp is the activity; 45 days later the person is inactive.
    assert_eq!(server.state.churn_scan(now).await.unwrap(), 1);
    // Enrolled once.
    assert_eq!(server.state.churn_scan(now + DAY).await.unwrap(), 0);
    let (_, _, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("cio_sync_churn_enrolled_total 1\n"),
        "{metrics}"
    );
}
