//! The real sinks through the dispatcher against wiremock servers: exact requests, exact
//! attempt counts. Real sockets, so real (short) delays and no paused clock; no assertion on
//! durations.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::dead_letter::{DeadLetterReason, MemoryDeadLetters};
use cio_segment_sync::dispatch::sinks::{
    CustomerIoBatchSink, ManualSegmentSink, SegmentDirection, SegmentMembership,
    SegmentTrackingSink,
};
use cio_segment_sync::dispatch::{
    Completion, Delivery, Dispatcher, DispatcherConfig, DispatcherHandle, OrderingKey, RetryPolicy,
    Sink,
};
use cio_segment_sync::rate_limit::Unlimited;
use customerio_client::track::v1::SegmentIdType;
use customerio_client::track::v2::Operation;
use customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use segment_model::Message;
use segment_model::client::BaseUrl;
use segment_model::client::tracking::{TrackingClient, WriteKey};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";
/// `Basic base64("wk:")`: the write key as user name, empty password.
const SEGMENT_AUTH: &str = "Basic d2s6";

fn config() -> DispatcherConfig {
    DispatcherConfig::default()
        .with_linger(Duration::from_millis(20))
        .with_attempt_timeout(Duration::from_secs(5))
        .with_retry(
            RetryPolicy::default()
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(20))
                .with_jitter_seed(9),
        )
}

fn spawn<S: Sink>(sink: S) -> (DispatcherHandle<S>, Arc<MemoryDeadLetters>) {
    let dead = Arc::new(MemoryDeadLetters::new(100));
    let (handle, _worker) = Dispatcher::spawn(sink, config(), Arc::new(Unlimited), dead.clone());
    (handle, dead)
}

async fn submit_all<S: Sink>(handle: &DispatcherHandle<S>, items: Vec<S::Item>) -> Vec<Completion> {
    let mut out = Vec::new();
    for item in items {
        out.push(handle.submit(item, None).await.expect("accepted"));
    }
    out
}

async fn resolve(completions: Vec<Completion>) -> Vec<Delivery> {
    let mut out = Vec::new();
    for c in completions {
        out.push(c.await.expect("resolved"));
    }
    out
}

fn track_client(server: &MockServer) -> TrackClient {
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&server.uri())
        .unwrap();
    TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap()
}

fn ops() -> Vec<Value> {
    (0..4)
        .map(|n| {
            json!({
                "type": "person", "action": "event", "identifiers": {"id": format!("user-{n}")},
                "name": "signed_up", "id": format!("01J0ZQ9W2D4F6H8J0K2M4N6P8{n}"),
                "timestamp": 1717172410
            })
        })
        .collect()
}

fn operations(values: &[Value]) -> Vec<Operation> {
    values
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect()
}

fn batch_body(values: &[Value]) -> Value {
    json!({"batch": values})
}

fn cio_batch() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .and(header("content-type", "application/json"))
}

#[tokio::test]
async fn customerio_v2_a_500_then_200_takes_two_attempts_with_the_same_body() {
    let server = MockServer::start().await;
    let values = ops()[..2].to_vec();
    cio_batch()
        .and(body_json(batch_body(&values)))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    cio_batch()
        .and(body_json(batch_body(&values)))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let (handle, dead) = spawn(CustomerIoBatchSink::new(track_client(&server)));
    let results = resolve(submit_all(&handle, operations(&values)).await).await;
    assert_eq!(results, vec![Delivery::Delivered { attempts: 2 }; 2]);
    assert!(dead.entries().is_empty());
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn customerio_v2_a_429_with_retry_after_is_retried() {
    let server = MockServer::start().await;
    let values = ops()[..1].to_vec();
    cio_batch()
        .and(body_json(batch_body(&values)))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    cio_batch()
        .and(body_json(batch_body(&values)))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let (handle, _dead) = spawn(CustomerIoBatchSink::new(track_client(&server)));
    let results = resolve(submit_all(&handle, operations(&values)).await).await;
    assert_eq!(results, vec![Delivery::Delivered { attempts: 2 }]);
    assert_eq!(handle.stats().throttled, 1);
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn customerio_v2_a_207_dead_letters_only_the_named_operation() {
    let server = MockServer::start().await;
    let values = ops()[..3].to_vec();
    cio_batch()
        .and(body_json(batch_body(&values)))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({"errors": [
            {"batch_index": 1, "reason": "invalid", "field": "identifiers", "message": "unknown person"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let (handle, dead) = spawn(CustomerIoBatchSink::new(track_client(&server)));
    let results = resolve(submit_all(&handle, operations(&values)).await).await;
    let reason = DeadLetterReason::RejectedByServer {
        message: "unknown person".into(),
        field: Some("identifiers".into()),
    };
    assert_eq!(
        results,
        vec![
            Delivery::Delivered { attempts: 1 },
            Delivery::DeadLettered {
                reason: reason.clone(),
                attempts: 1,
                recorded: true
            },
            Delivery::Delivered { attempts: 1 },
        ]
    );
    let entries = dead.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].item, values[1]);
    assert_eq!(entries[0].sink, "customerio.track.v2.batch");
    assert_eq!(entries[0].reason, reason);
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn customerio_v2_a_400_is_split_until_the_bad_operation_is_alone() {
    let server = MockServer::start().await;
    let values = ops();
    let bad_400 = || {
        ResponseTemplate::new(400).set_body_json(json!({"errors": [
            {"reason": "invalid", "field": "name", "message": "event name refused"}
        ]}))
    };
    for (slice, response) in [
        (&values[..], bad_400()),
        (&values[..2], ResponseTemplate::new(200)),
        (&values[2..], bad_400()),
        (&values[2..3], bad_400()),
        (&values[3..], ResponseTemplate::new(200)),
    ] {
        cio_batch()
            .and(body_json(batch_body(slice)))
            .respond_with(response)
            .expect(1)
            .mount(&server)
            .await;
    }
    let (handle, dead) = spawn(CustomerIoBatchSink::new(track_client(&server)));
    let results = resolve(submit_all(&handle, operations(&values)).await).await;
    assert!(results[0].is_delivered() && results[1].is_delivered() && results[3].is_delivered());
    assert_eq!(
        results[2],
        Delivery::DeadLettered {
            reason: DeadLetterReason::RejectedByServer {
                message: "event name refused".into(),
                field: None
            },
            attempts: 3,
            recorded: true
        }
    );
    assert_eq!(dead.entries()[0].item, values[2]);
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn manual_segments_one_request_per_segment_and_direction_with_retries() {
    let server = MockServer::start().await;
    let membership = |segment_id, direction, id_type, person: &str| SegmentMembership {
        segment_id,
        direction,
        id_type,
        person: person.to_owned(),
    };
    let add7 = || {
        Mock::given(method("POST"))
            .and(path("/api/v1/segments/7/add_customers"))
            .and(query_param("id_type", "id"))
            .and(header("authorization", CIO_AUTH))
            .and(body_json(json!({"ids": ["user-1", "user-2"]})))
    };
    add7()
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    add7()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/7/remove_customers"))
        .and(query_param("id_type", "id"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({"ids": ["user-3"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/8/add_customers"))
        .and(query_param("id_type", "email"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({"ids": ["ada@example.com"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let (handle, _dead) = spawn(ManualSegmentSink::new(track_client(&server)));
    let items = vec![
        membership(7, SegmentDirection::Add, SegmentIdType::Id, "user-1"),
        membership(7, SegmentDirection::Remove, SegmentIdType::Id, "user-3"),
        membership(
            8,
            SegmentDirection::Add,
            SegmentIdType::Email,
            "ada@example.com",
        ),
        membership(7, SegmentDirection::Add, SegmentIdType::Id, "user-2"),
    ];
    let mut completions = Vec::new();
    for item in items {
        let key = Some(OrderingKey::new(&item.person));
        completions.push(handle.submit(item, key).await.unwrap());
    }
    let results = resolve(completions).await;
    assert_eq!(
        results,
        vec![
            Delivery::Delivered { attempts: 2 },
            Delivery::Delivered { attempts: 1 },
            Delivery::Delivered { attempts: 1 },
            Delivery::Delivered { attempts: 2 },
        ]
    );
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn manual_segments_a_400_on_one_id_dead_letters_it_with_the_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/9/add_customers"))
        .and(query_param("id_type", "id"))
        .and(body_json(json!({"ids": ["user-1"]})))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"meta": {"errors": ["segment is not manual"]}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (handle, dead) = spawn(ManualSegmentSink::new(track_client(&server)));
    let item = SegmentMembership {
        segment_id: 9,
        direction: SegmentDirection::Add,
        id_type: SegmentIdType::Id,
        person: "user-1".into(),
    };
    let result = handle.submit(item, None).await.unwrap().await.unwrap();
    assert_eq!(
        result,
        Delivery::DeadLettered {
            reason: DeadLetterReason::RejectedByServer {
                message: "segment is not manual".into(),
                field: None
            },
            attempts: 1,
            recorded: true
        }
    );
    assert_eq!(
        dead.entries()[0].item,
        json!({"segment_id": 9, "direction": "add", "id_type": "id", "person": "user-1"})
    );
    handle.shutdown().await;
    server.verify().await;
}

/// Matches a JSON body equal to `expected` once `sentAt` (stamped per attempt) is checked to
/// be a string and removed.
struct JsonBodyWithSentAt(Value);

impl Match for JsonBodyWithSentAt {
    fn matches(&self, request: &Request) -> bool {
        let Ok(mut body) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let Some(object) = body.as_object_mut() else {
            return false;
        };
        match object.remove("sentAt") {
            Some(Value::String(_)) => body == self.0,
            _ => false,
        }
    }
}

fn segment_messages() -> Vec<Value> {
    (0..2)
        .map(|n| {
            json!({
                "type": "track", "event": "Email Opened", "userId": format!("user-{n}"),
                "messageId": format!("5f0c3b3e-8a44-5b2c-9d1e-00000000000{n}"),
                "properties": {"email_id": format!("delivery-{n}")}
            })
        })
        .collect()
}

fn segment_sink(server: &MockServer) -> SegmentTrackingSink {
    let client = TrackingClient::builder(WriteKey::new("wk"))
        .base_url(BaseUrl::parse(&server.uri()).unwrap())
        .build()
        .unwrap();
    SegmentTrackingSink::new(client)
}

fn segment_batch() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(header("authorization", SEGMENT_AUTH))
        .and(header("content-type", "application/json"))
}

#[tokio::test]
async fn segment_tracking_a_500_then_200_resends_the_same_message_ids() {
    let server = MockServer::start().await;
    let values = segment_messages();
    let expected = JsonBodyWithSentAt(json!({"batch": values}));
    segment_batch()
        .and(JsonBodyWithSentAt(expected.0.clone()))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    segment_batch()
        .and(expected)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let (handle, _dead) = spawn(segment_sink(&server));
    let messages: Vec<Message> = values
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect();
    let results = resolve(submit_all(&handle, messages).await).await;
    assert_eq!(results, vec![Delivery::Delivered { attempts: 2 }; 2]);
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn segment_tracking_a_429_with_retry_after_then_a_400_split() {
    let server = MockServer::start().await;
    let values = segment_messages();
    let whole = json!({"batch": values});
    segment_batch()
        .and(JsonBodyWithSentAt(whole.clone()))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    segment_batch()
        .and(JsonBodyWithSentAt(whole))
        .respond_with(ResponseTemplate::new(400))
        .expect(1)
        .mount(&server)
        .await;
    segment_batch()
        .and(JsonBodyWithSentAt(json!({"batch": [values[0]]})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    segment_batch()
        .and(JsonBodyWithSentAt(json!({"batch": [values[1]]})))
        .respond_with(ResponseTemplate::new(400))
        .expect(1)
        .mount(&server)
        .await;
    let (handle, dead) = spawn(segment_sink(&server));
    let messages: Vec<Message> = values
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect();
    let results = resolve(submit_all(&handle, messages).await).await;
    assert_eq!(results[0], Delivery::Delivered { attempts: 3 });
    assert!(
        matches!(
            &results[1],
            Delivery::DeadLettered {
                reason: DeadLetterReason::RejectedByServer { .. },
                attempts: 3,
                ..
            }
        ),
        "{:?}",
        results[1]
    );
    assert_eq!(dead.entries()[0].item, values[1]);
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn segment_tracking_refuses_a_message_without_message_id_at_submit() {
    let server = MockServer::start().await;
    let (handle, _dead) = spawn(segment_sink(&server));
    let message: Message =
        serde_json::from_value(json!({"type": "track", "event": "Email Opened", "userId": "u"}))
            .unwrap();
    let err = handle.submit(message, None).await.unwrap_err();
    assert!(err.to_string().contains("could not be encoded"), "{err}");
    assert!(
        err.into_item().message_id().is_none(),
        "the message is handed back"
    );
    handle.shutdown().await;
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn sink_limits_come_from_the_vendor_crates() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(MockServer::start());
    let v2 = CustomerIoBatchSink::new(track_client(&server)).limits();
    assert_eq!(
        (
            v2.max_request_bytes,
            v2.max_item_bytes,
            v2.wrapper_bytes,
            v2.max_items.get()
        ),
        (500_000, 32_000, r#"{"batch":[]}"#.len(), 100)
    );
    let segments = ManualSegmentSink::new(track_client(&server))
        .with_max_ids(NonZeroUsize::new(5_000).unwrap())
        .limits();
    assert_eq!(
        segments.max_items.get(),
        1_000,
        "capped at the documented 1000 ids"
    );
    assert_eq!(segments.wrapper_bytes, r#"{"ids":[]}"#.len());
    let segment = segment_sink(&server).limits();
    // {"batch":[ + ],"sentAt":" + 24-character timestamp + "}
    assert_eq!(segment.wrapper_bytes, 10 + 12 + 24 + 2);
    assert_eq!(segment.max_request_bytes, 475_000);
}

#[tokio::test]
async fn customerio_v2_a_response_slower_than_the_client_timeout_is_retried() {
    let server = MockServer::start().await;
    let values = ops()[..2].to_vec();
    cio_batch()
        .and(body_json(batch_body(&values)))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    cio_batch()
        .and(body_json(batch_body(&values)))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&server.uri())
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap();
    let (handle, dead) = spawn(CustomerIoBatchSink::new(client));
    let results = resolve(submit_all(&handle, operations(&values)).await).await;
    // The first attempt may have been applied; the operations carry event ids, so resending is
    // safe and the sink is declared de-duplicated.
    assert_eq!(results, vec![Delivery::Delivered { attempts: 2 }; 2]);
    assert!(dead.entries().is_empty());
    handle.shutdown().await;
    server.verify().await;
}

/// A raw TCP "Customer.io" that resets the first `resets` connections after reading a whole
/// request, then answers `200` with an empty body. Returns its URL and the count of requests
/// it read.
async fn resetting_server(resets: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                loop {
                    // Read one whole request: headers, then Content-Length bytes of body.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let header_end = loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    while buf.len() < header_end + length {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let number = counter.fetch_add(1, Ordering::SeqCst);
                    if number < resets {
                        // RST instead of FIN: linger zero, then drop.
                        let _ = socket.set_zero_linger();
                        return;
                    }
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn customerio_v2_a_reset_connection_is_retried_until_accepted() {
    use std::sync::atomic::Ordering;

    let (url, seen) = resetting_server(2).await;
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&url)
        .unwrap();
    let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap();
    let (handle, dead) = spawn(CustomerIoBatchSink::new(client));
    let values = ops()[..3].to_vec();
    let results = resolve(submit_all(&handle, operations(&values)).await).await;
    assert_eq!(results, vec![Delivery::Delivered { attempts: 3 }; 3]);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "two reset requests, then the accepted one"
    );
    assert!(dead.entries().is_empty());
    handle.shutdown().await;
}

/// Answers 200, but the first request holding a merge only after `delay` (past the attempt
/// timeout), as if the answer were lost.
struct SlowFirstMerge {
    seen: std::sync::atomic::AtomicUsize,
    delay: Duration,
}

impl wiremock::Respond for SlowFirstMerge {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body);
        let first = body.contains("\"merge\"")
            && self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let template = ResponseTemplate::new(200).set_body_json(json!({}));
        if first {
            template.set_delay(self.delay)
        } else {
            template
        }
    }
}

async fn merge_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .respond_with(SlowFirstMerge {
            seen: std::sync::atomic::AtomicUsize::new(0),
            delay: Duration::from_millis(800),
        })
        .mount(&server)
        .await;
    server
}

fn merge_and_event() -> Vec<Operation> {
    vec![
        serde_json::from_value(json!({
            "type": "person", "action": "merge",
            "primary": {"id": "user-42"}, "secondary": {"id": "anon-1"}
        }))
        .unwrap(),
        serde_json::from_value(json!({
            "type": "person", "action": "event", "identifiers": {"id": "user-42"},
            "name": "signed_up", "id": "01J0ZQ9W2D4F6H8J0K2M4N6P8Q"
        }))
        .unwrap(),
    ]
}

fn short_timeout<S: Sink>(sink: S) -> DispatcherHandle<S> {
    let (handle, _worker) = Dispatcher::spawn(
        sink,
        config().with_attempt_timeout(Duration::from_millis(200)),
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(10)),
    );
    handle
}

async fn batches(server: &MockServer) -> Vec<Vec<String>> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            body["batch"]
                .as_array()
                .unwrap()
                .iter()
                .map(|op| op["action"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_possibly_sent_merge_is_resent_by_default() {
    let server = merge_server().await;
    let handle = short_timeout(CustomerIoBatchSink::new(track_client(&server)));
    let outcomes = resolve(submit_all(&handle, merge_and_event()).await).await;
    assert_eq!(
        outcomes,
        vec![
            Delivery::Delivered { attempts: 2 },
            Delivery::Delivered { attempts: 2 }
        ]
    );
    let merge_event = vec!["merge".to_owned(), "event".to_owned()];
    assert_eq!(
        batches(&server).await,
        vec![merge_event.clone(), merge_event]
    );
}

#[tokio::test]
async fn refused_merge_resends_send_merges_alone_and_hand_a_possibly_sent_one_back() {
    let server = merge_server().await;
    let handle =
        short_timeout(CustomerIoBatchSink::new(track_client(&server)).refuse_merge_resends());
    let outcomes = resolve(submit_all(&handle, merge_and_event()).await).await;
    match &outcomes[0] {
        Delivery::RetryLater {
            stopped, attempts, ..
        } => {
            assert_eq!(*stopped, cio_segment_sync::dispatch::GiveUp::MaybeSent);
            assert_eq!(*attempts, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(outcomes[1], Delivery::Delivered { attempts: 1 });
    let mut sent = batches(&server).await;
    sent.sort();
    assert_eq!(
        sent,
        vec![vec!["event".to_owned()], vec!["merge".to_owned()]]
    );
}
