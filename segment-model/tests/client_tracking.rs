//! Tracking API writer against a mock server: exact requests, packing, ids, error classes.
#![cfg(feature = "client")]

use std::time::{Duration, SystemTime};

use segment_model::client::tracking::{
    DEFAULT_MAX_REQUEST_BYTES, MAX_MESSAGES_PER_REQUEST, MessageError, TrackingClient,
    TrackingClientBuilder, TrackingConfigError, WriteKey,
};
use segment_model::client::{
    Api, BaseUrl, ClientError, FailureKind, Phase, Region, RetryAfter, TransportFailure,
    classify_status,
};
use serde_json::{Map, Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const WRITE_KEY: &str = "wk_test_1234";
/// `printf 'wk_test_1234:' | base64`
const AUTH: &str = "Basic d2tfdGVzdF8xMjM0Og==";
const USER_AGENT: &str = concat!("segment-model/", env!("CARGO_PKG_VERSION"));
/// Bytes of a batch body that are not messages or commas:
/// `{"batch":[` (10) + `],"sentAt":"` (12) + 24-byte timestamp + `"}` (2).
const ENVELOPE: usize = 48;

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test fixture is not an object: {other}"),
    }
}

fn track(i: usize) -> Map<String, Value> {
    obj(json!({
        "type": "track",
        "userId": format!("usr_{i}"),
        "event": "Report Exported",
        "messageId": format!("msg-{i:04}"),
        "properties": {}
    }))
}

fn builder(server: &MockServer) -> TrackingClientBuilder {
    TrackingClient::builder(WriteKey::new(WRITE_KEY))
        .base_url(BaseUrl::parse(&server.uri()).expect("mock server uri"))
}

/// Matches a request without a query string.
struct NoQuery;

impl Match for NoQuery {
    fn matches(&self, request: &Request) -> bool {
        request.url.query().is_none()
    }
}

/// Matches a batch body equal to `{"batch": <expected>, "sentAt": <ms timestamp>}`.
struct BatchBody(Value);

impl Match for BatchBody {
    fn matches(&self, request: &Request) -> bool {
        let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let Some(Value::String(sent_at)) = body.remove("sentAt") else {
            return false;
        };
        is_ms_timestamp(&sent_at) && Value::Object(body) == json!({ "batch": self.0 })
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`
fn is_ms_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn batch_of(request: &Request) -> Vec<Value> {
    let body: Value = serde_json::from_slice(&request.body).expect("json body");
    body["batch"].as_array().expect("batch array").clone()
}

fn ids_of(request: &Request) -> Vec<String> {
    batch_of(request)
        .iter()
        .map(|m| m["messageId"].as_str().expect("messageId").to_owned())
        .collect()
}

fn ok_response() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"success": true}))
}

#[tokio::test]
async fn posts_one_batch_with_exact_method_path_auth_headers_and_body() {
    let server = MockServer::start().await;
    let messages = vec![track(1), track(2)];
    let expected = json!([track(1), track(2)]);
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(NoQuery)
        .and(header("authorization", AUTH))
        .and(header("content-type", "application/json"))
        .and(header("user-agent", USER_AGENT))
        .and(BatchBody(expected))
        .respond_with(ok_response())
        .expect(1)
        .mount(&server)
        .await;

    let client = builder(&server).build().expect("client");
    let report = client.send_batch(messages).await;

    assert!(report.rejected.is_empty());
    assert_eq!(report.requests.len(), 1);
    let request = &report.requests[0];
    assert!(request.result.is_ok(), "{:?}", request.result);
    let ids: Vec<_> = request
        .batch
        .messages()
        .iter()
        .map(|m| m.message_id())
        .collect();
    assert_eq!(ids, ["msg-0001", "msg-0002"]);
    let indices: Vec<_> = request.batch.messages().iter().map(|m| m.index()).collect();
    assert_eq!(indices, [0, 1]);
}

#[tokio::test]
async fn missing_message_id_is_filled_once_and_reused_on_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ok_response())
        .expect(1)
        .mount(&server)
        .await;

    let client = builder(&server).build().expect("client");
    let mut without_id = track(1);
    without_id.remove("messageId");
    let mut empty_id = track(2);
    empty_id.insert("messageId".into(), json!(""));
    let prepared = client.prepare(vec![without_id, empty_id, track(3)]);
    assert!(prepared.rejected.is_empty());
    assert_eq!(prepared.batches.len(), 1);
    let batch = &prepared.batches[0];

    let first = client
        .send(batch)
        .await
        .expect_err("first attempt gets 503");
    assert_eq!(first.status(), Some(503));
    assert_eq!(first.kind(), FailureKind::Server);
    assert!(first.is_retryable());
    client.send(batch).await.expect("retry succeeds");

    let requests = server.received_requests().await.expect("recording on");
    assert_eq!(requests.len(), 2);
    let first_ids = ids_of(&requests[0]);
    let retry_ids = ids_of(&requests[1]);
    assert_eq!(
        first_ids, retry_ids,
        "a retry must carry the same messageIds"
    );
    for filled in &first_ids[..2] {
        let uuid = uuid::Uuid::parse_str(filled).expect("filled id is a UUID");
        assert_eq!(uuid.get_version_num(), 4);
    }
    assert_ne!(first_ids[0], first_ids[1]);
    assert_eq!(first_ids[2], "msg-0003", "a caller's id is kept");
    let batch_ids: Vec<_> = batch
        .messages()
        .iter()
        .map(|m| m.message_id().to_owned())
        .collect();
    assert_eq!(batch_ids, first_ids);
    // Apart from the ids and sentAt, the messages are sent unchanged.
    let sent = batch_of(&requests[0]);
    assert_eq!(sent[0]["userId"], "usr_1");
    assert_eq!(sent[0]["event"], "Report Exported");
}

#[tokio::test]
async fn packs_by_message_count() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ok_response())
        .expect(3)
        .mount(&server)
        .await;
    let client = builder(&server)
        .max_messages_per_request(3)
        .build()
        .expect("client");
    let report = client.send_batch((0..7).map(track).collect()).await;
    assert_eq!(report.requests.len(), 3);
    assert!(report.requests.iter().all(|r| r.result.is_ok()));

    let requests = server.received_requests().await.expect("recording on");
    let sizes: Vec<_> = requests.iter().map(|r| batch_of(r).len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let all_ids: Vec<_> = requests.iter().flat_map(ids_of).collect();
    let expected: Vec<_> = (0..7).map(|i| format!("msg-{i:04}")).collect();
    assert_eq!(all_ids, expected, "order is preserved across requests");
}

#[tokio::test]
async fn default_count_limit_is_2500_messages() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ok_response())
        .expect(2)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let tiny = |i: usize| obj(json!({"type": "track", "event": "E", "messageId": format!("{i}")}));
    let report = client
        .send_batch((0..=MAX_MESSAGES_PER_REQUEST).map(tiny).collect())
        .await;
    assert!(report.requests.iter().all(|r| r.result.is_ok()));
    let requests = server.received_requests().await.expect("recording on");
    let sizes: Vec<_> = requests.iter().map(|r| batch_of(r).len()).collect();
    assert_eq!(sizes, [2500, 1]);
}

/// Messages of identical serialised size `s`.
fn sized(i: usize) -> Map<String, Value> {
    obj(
        json!({"type": "track", "event": "Sized", "messageId": format!("m{i:03}"), "properties": {"pad": "x".repeat(200)}}),
    )
}

#[tokio::test]
async fn packs_by_bytes_counting_the_whole_body() {
    let s = serde_json::to_string(&sized(0)).expect("json").len();
    // Exactly three messages fit: envelope + 3 messages + 2 commas.
    let limit = ENVELOPE + 3 * s + 2;

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ok_response())
        .expect(3)
        .mount(&server)
        .await;
    let client = builder(&server)
        .max_request_bytes(limit)
        .build()
        .expect("client");
    let prepared = client.prepare((0..7).map(sized).collect());
    let lens: Vec<_> = prepared.batches.iter().map(|b| b.len()).collect();
    assert_eq!(lens, [3, 3, 1]);
    assert_eq!(prepared.batches[0].body_len(), limit);
    for batch in &prepared.batches {
        client.send(batch).await.expect("sent");
    }
    let requests = server.received_requests().await.expect("recording on");
    let body_lens: Vec<_> = requests.iter().map(|r| r.body.len()).collect();
    assert_eq!(
        body_lens,
        [limit, limit, ENVELOPE + s],
        "the whole body is counted"
    );
}

#[tokio::test]
async fn one_byte_less_moves_the_third_message_to_the_next_request() {
    let s = serde_json::to_string(&sized(0)).expect("json").len();
    let limit = ENVELOPE + 3 * s + 2 - 1;
    let server = MockServer::start().await;
    let client = builder(&server)
        .max_request_bytes(limit)
        .build()
        .expect("client");
    let prepared = client.prepare((0..5).map(sized).collect());
    let lens: Vec<_> = prepared.batches.iter().map(|b| b.len()).collect();
    assert_eq!(lens, [2, 2, 1]);
    assert!(prepared.batches.iter().all(|b| b.body_len() <= limit));
}

#[tokio::test]
async fn a_message_too_large_on_its_own_is_handed_back_and_the_rest_is_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(BatchBody(json!([track(0), track(2)])))
        .respond_with(ok_response())
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let mut huge = track(1);
    huge.insert("properties".into(), json!({"blob": "y".repeat(40_000)}));
    let report = client
        .send_batch(vec![track(0), huge.clone(), track(2)])
        .await;

    assert_eq!(report.requests.len(), 1);
    assert!(report.requests[0].result.is_ok());
    assert_eq!(report.rejected.len(), 1);
    let rejected = &report.rejected[0];
    assert_eq!(rejected.message, huge, "handed back unchanged");
    match &rejected.error {
        MessageError::TooLarge { index, size, limit } => {
            assert_eq!(*index, 1);
            assert_eq!(*size, serde_json::to_string(&huge).expect("json").len());
            assert_eq!(*limit, 32_000);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(rejected.error.index(), 1);
}

#[tokio::test]
async fn bad_message_ids_are_handed_back() {
    let server = MockServer::start().await;
    let client = builder(&server).build().expect("client");
    let mut long = track(0);
    long.insert("messageId".into(), json!("a".repeat(101)));
    let mut numeric = track(1);
    numeric.insert("messageId".into(), json!(42));
    let mut at_limit = track(2);
    at_limit.insert("messageId".into(), json!("b".repeat(100)));

    let prepared = client.prepare(vec![long, numeric.clone(), at_limit]);
    assert_eq!(prepared.batches.len(), 1);
    assert_eq!(prepared.batches[0].len(), 1);
    assert_eq!(prepared.batches[0].messages()[0].index(), 2);
    assert_eq!(prepared.rejected.len(), 2);
    assert!(matches!(
        prepared.rejected[0].error,
        MessageError::MessageIdTooLong {
            index: 0,
            chars: 101
        }
    ));
    assert!(matches!(
        prepared.rejected[1].error,
        MessageError::MessageIdNotString { index: 1 }
    ));
    assert_eq!(prepared.rejected[1].message, numeric);
}

#[tokio::test]
async fn non_object_messages_are_handed_back() {
    let server = MockServer::start().await;
    let client = builder(&server).build().expect("client");
    #[derive(serde::Serialize)]
    struct NotAnObject;
    impl segment_model::client::tracking::TrackingMessage for NotAnObject {
        fn message_id(&self) -> segment_model::client::tracking::MessageIdSlot<'_> {
            segment_model::client::tracking::MessageIdSlot::Present("id-1")
        }
        fn set_message_id(&mut self, _: String) {}
    }
    let prepared = client.prepare(vec![NotAnObject]);
    assert!(prepared.batches.is_empty());
    assert!(matches!(
        prepared.rejected[0].error,
        MessageError::Serialize { index: 0, .. }
    ));
}

async fn error_for(template: ResponseTemplate) -> ClientError {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let report = client.send_batch(vec![track(0)]).await;
    assert_eq!(report.requests.len(), 1);
    match &report.requests[0].result {
        Err(_) => {}
        Ok(()) => panic!("expected an error"),
    }
    report
        .requests
        .into_iter()
        .next()
        .and_then(|r| r.result.err())
        .expect("error")
}

#[tokio::test]
async fn throttled_with_retry_after_seconds() {
    let err = error_for(ResponseTemplate::new(429).insert_header("Retry-After", "7")).await;
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.kind(), FailureKind::Throttled);
    assert!(err.is_retryable());
    assert_eq!(err.phase(), Phase::ResponseReceived);
    assert!(err.may_have_been_sent());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(err.api(), Api::Tracking);
}

#[tokio::test]
async fn throttled_with_retry_after_http_date() {
    let date = "Wed, 21 Oct 2099 07:28:00 GMT";
    let err = error_for(ResponseTemplate::new(429).insert_header("Retry-After", date)).await;
    assert_eq!(err.kind(), FailureKind::Throttled);
    match &err {
        ClientError::Status {
            retry_after: Some(RetryAfter::At(at)),
            ..
        } => {
            assert_eq!(Some(RetryAfter::At(*at)), RetryAfter::parse(date));
            assert_eq!(httpdate::fmt_http_date(*at), date);
        }
        other => panic!("expected an HTTP-date Retry-After, got {other:?}"),
    }
    assert!(err.retry_after().is_some());
}

#[tokio::test]
async fn throttled_without_retry_after_has_no_delay() {
    let err = error_for(ResponseTemplate::new(429)).await;
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), None);
}

#[tokio::test]
async fn server_errors_are_retryable_except_501_and_505() {
    for status in [500, 502, 503, 504] {
        let err = error_for(ResponseTemplate::new(status)).await;
        assert_eq!(err.kind(), FailureKind::Server, "{status}");
        assert!(err.is_retryable(), "{status}");
    }
    for status in [501, 505] {
        let err = error_for(ResponseTemplate::new(status)).await;
        assert!(!err.is_retryable(), "{status}");
    }
}

#[tokio::test]
async fn bad_request_is_permanent_and_keeps_the_body() {
    let body = json!({"success": false, "message": "malformed JSON", "code": "invalid_request"});
    let err = error_for(ResponseTemplate::new(400).set_body_json(&body)).await;
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.kind(), FailureKind::Permanent);
    assert!(!err.is_retryable());
    assert_eq!(
        serde_json::from_str::<Value>(err.body().expect("body")).expect("json"),
        body
    );
    assert_eq!(
        err.to_string(),
        "the Segment Tracking API answered HTTP 400 (invalid_request)"
    );
}

#[tokio::test]
async fn redirects_are_not_followed_and_are_permanent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/elsewhere"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ok_response())
        .expect(0)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let report = client.send_batch(vec![track(0)]).await;
    let err = report.requests[0]
        .result
        .as_ref()
        .expect_err("307 is an error");
    assert_eq!(err.status(), Some(307));
    assert!(!err.is_retryable());
}

#[test]
fn status_classification_table() {
    let table: &[(u16, Option<FailureKind>)] = &[
        (200, None),
        (204, None),
        (400, Some(FailureKind::Permanent)),
        (401, Some(FailureKind::Permanent)),
        (403, Some(FailureKind::Permanent)),
        (404, Some(FailureKind::Permanent)),
        (408, Some(FailureKind::Transient)),
        (410, Some(FailureKind::Transient)),
        (413, Some(FailureKind::Permanent)),
        (429, Some(FailureKind::Throttled)),
        (460, Some(FailureKind::Transient)),
        (500, Some(FailureKind::Server)),
        (501, Some(FailureKind::Permanent)),
        (502, Some(FailureKind::Server)),
        (503, Some(FailureKind::Server)),
        (504, Some(FailureKind::Server)),
        (505, Some(FailureKind::Permanent)),
        (511, Some(FailureKind::Permanent)),
        (599, Some(FailureKind::Server)),
        (302, Some(FailureKind::Permanent)),
    ];
    for (status, expected) in table {
        assert_eq!(classify_status(*status), *expected, "status {status}");
    }
}

#[test]
fn retry_after_parsing_and_delay_are_pure() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(
        RetryAfter::parse(" 120 "),
        Some(RetryAfter::Delay(Duration::from_secs(120)))
    );
    let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
    let parsed = RetryAfter::parse(&later).expect("http date");
    assert_eq!(parsed.delay_from(now), Duration::from_secs(90));
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
    assert_eq!(
        RetryAfter::parse(&earlier)
            .expect("http date")
            .delay_from(now),
        Duration::ZERO
    );
    assert_eq!(RetryAfter::parse("soon"), None);
    assert_eq!(RetryAfter::parse(""), None);
    assert_eq!(RetryAfter::parse("-5"), None);
}

#[tokio::test]
async fn connection_refused_is_not_sent_and_retryable() {
    // Bind then drop a listener so the port is (very likely) closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = TrackingClient::builder(WriteKey::new(WRITE_KEY))
        .base_url(BaseUrl::parse(&format!("http://127.0.0.1:{port}")).expect("url"))
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let report = client.send_batch(vec![track(0)]).await;
    let err = report.requests[0].result.as_ref().expect_err("refused");
    assert!(
        matches!(
            err,
            ClientError::Transport {
                what: TransportFailure::Connect,
                phase: Phase::NotSent,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.may_have_been_sent());
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("127.0.0.1"), "{err}");
}

#[tokio::test]
async fn a_timeout_may_have_been_sent_and_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ok_response().set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server)
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let report = client.send_batch(vec![track(0)]).await;
    let err = report.requests[0].result.as_ref().expect_err("timed out");
    assert!(
        matches!(
            err,
            ClientError::Transport {
                what: TransportFailure::Timeout,
                phase: Phase::MaybeSent,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.kind(), FailureKind::Transient);
}

#[test]
fn region_selects_the_tracking_host() {
    let url = |region| {
        TrackingClient::builder(WriteKey::new(WRITE_KEY))
            .region(region)
            .build()
            .expect("client")
            .batch_url()
            .to_string()
    };
    assert_eq!(url(Region::Us), "https://api.segment.io/v1/batch");
    assert_eq!(
        url(Region::Eu),
        "https://events.eu1.segmentapis.com/v1/batch"
    );
    assert_eq!(
        TrackingClient::builder(WriteKey::new(WRITE_KEY))
            .build()
            .expect("client")
            .batch_url()
            .as_str(),
        "https://api.segment.io/v1/batch",
        "US is the default"
    );
}

#[tokio::test]
async fn base_url_with_a_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/segment-proxy/v1/batch"))
        .and(header("authorization", AUTH))
        .respond_with(ok_response())
        .expect(1)
        .mount(&server)
        .await;
    let base = BaseUrl::parse(&format!("{}/segment-proxy", server.uri())).expect("url");
    let client = TrackingClient::builder(WriteKey::new(WRITE_KEY))
        .base_url(base)
        .build()
        .expect("client");
    let report = client.send_batch(vec![track(0)]).await;
    assert!(report.requests[0].result.is_ok());
}

#[test]
fn invalid_configuration_is_rejected() {
    let b = || TrackingClient::builder(WriteKey::new(WRITE_KEY));
    assert!(matches!(
        b().max_request_bytes(500_001).build(),
        Err(TrackingConfigError::MaxRequestBytes { got: 500_001, .. })
    ));
    assert!(matches!(
        b().max_request_bytes(10).build(),
        Err(TrackingConfigError::MaxRequestBytes { got: 10, .. })
    ));
    assert!(matches!(
        b().max_messages_per_request(0).build(),
        Err(TrackingConfigError::MaxMessages(0))
    ));
    assert!(matches!(
        b().max_messages_per_request(2501).build(),
        Err(TrackingConfigError::MaxMessages(2501))
    ));
    assert!(matches!(
        b().max_message_bytes(32_001).build(),
        Err(TrackingConfigError::MaxMessageBytes(32_001))
    ));
    assert!(matches!(
        b().timeout(Duration::ZERO).build(),
        Err(TrackingConfigError::ZeroTimeout)
    ));
    assert!(
        b().max_request_bytes(DEFAULT_MAX_REQUEST_BYTES)
            .build()
            .is_ok()
    );
    assert!(BaseUrl::parse("ftp://example.com").is_err());
    assert!(BaseUrl::parse("http://user:pw@example.com").is_err());
    assert!(BaseUrl::parse("http://example.com/?q=1").is_err());
    assert!(BaseUrl::parse("not a url").is_err());
}

#[tokio::test]
async fn the_write_key_never_appears_in_debug_output() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("unauthorized"))
        .expect(1)
        .mount(&server)
        .await;
    let key = WriteKey::new(WRITE_KEY);
    let builder = builder(&server);
    let builder_debug = format!("{builder:?}");
    let client = builder.build().expect("client");
    let report = client.send_batch(vec![track(0)]).await;
    let err = report.requests[0].result.as_ref().expect_err("401");
    let outputs = [
        format!("{key:?}"),
        format!("{key}"),
        builder_debug,
        format!("{client:?}"),
        format!("{report:?}"),
        format!("{err:?}"),
        format!("{err}"),
    ];
    let encoded = AUTH.trim_start_matches("Basic ");
    for text in outputs {
        assert!(!text.contains(WRITE_KEY), "write key leaked: {text}");
        assert!(!text.contains(encoded), "encoded key leaked: {text}");
    }
}

#[tokio::test]
async fn typed_messages_are_sent_losslessly_with_a_filled_id() {
    let raw = json!({
        "type": "identify",
        "userId": "usr_48151623",
        "traits": {"email": "lena.fischer@example.org", "plan": "growth"},
        "context": {"library": {"name": "cio-segment-sync", "version": "0.1.0"}, "custom": {"a": 1}},
        "timestamp": "2024-05-01T10:15:30.123Z",
        "unmodelled": [1, 2, 3]
    });
    let message = segment_model::Message::from_value(raw.clone()).expect("valid message");
    assert_eq!(message.message_id(), None);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(header("authorization", AUTH))
        .respond_with(ok_response())
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let report = client.send_batch(vec![message]).await;
    assert!(report.requests[0].result.is_ok());

    let requests = server.received_requests().await.expect("recording on");
    let sent = batch_of(&requests[0]);
    let id = report.requests[0].batch.messages()[0]
        .message_id()
        .to_owned();
    let mut expected = raw;
    expected["messageId"] = json!(id);
    assert_eq!(sent, vec![expected]);
}

#[test]
fn clients_and_futures_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let client = TrackingClient::builder(WriteKey::new(WRITE_KEY))
        .build()
        .expect("client");
    assert_send_sync(&client);
    let prepared = client.prepare(vec![track(0)]);
    let batch = &prepared.batches[0];
    // Futures are only constructed, never polled.
    assert_send(&client.send(batch));
    assert_send(&client.send_batch(vec![track(1)]));
    assert_send(&client.send_batch(Vec::<segment_model::Message>::new()));
}

#[test]
fn messages_encoded_elsewhere_are_sent_as_they_are_within_one_request() {
    use segment_model::client::tracking::MessageError;

    let client = TrackingClient::builder(WriteKey::new(WRITE_KEY))
        .max_messages_per_request(2)
        .build()
        .expect("client");
    let a = br#"{"type":"track","messageId":"m-a","event":"A","userId":"u"}"#;
    let b = br#"{"type":"track","messageId":"m-b","event":"B","userId":"u"}"#;
    let batch = client
        .prepare_encoded([("m-a".to_owned(), &a[..]), ("m-b".to_owned(), &b[..])])
        .expect("fits");
    let texts: Vec<&str> = batch.messages().iter().map(|m| m.json()).collect();
    assert_eq!(
        texts,
        [
            std::str::from_utf8(a).unwrap(),
            std::str::from_utf8(b).unwrap()
        ]
    );
    assert_eq!(batch.messages()[1].message_id(), "m-b");

    let three = [
        ("1".to_owned(), &a[..]),
        ("2".to_owned(), &a[..]),
        ("3".to_owned(), &a[..]),
    ];
    assert!(matches!(
        client.prepare_encoded(three),
        Err(MessageError::DoesNotFit {
            index: 2,
            limit: "message count"
        })
    ));
    assert!(matches!(
        client.prepare_encoded([("m".to_owned(), &b"[1,2]"[..])]),
        Err(MessageError::Serialize { index: 0, .. })
    ));
    let long_id = "x".repeat(101);
    assert!(matches!(
        client.prepare_encoded([(long_id, &a[..])]),
        Err(MessageError::MessageIdTooLong {
            index: 0,
            chars: 101
        })
    ));
}
