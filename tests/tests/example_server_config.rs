//! The `webhook_server` example set up the way the binary is: `Settings::from_args` with
//! `--config FILE.toml` and `--dead-letter FILE`, variables through a map. The configuration
//! file turns the onboarding and audience flows on for `POST /segment`; the dead-letter file
//! receives what Customer.io refuses. wiremock stands in for Customer.io; exact requests and
//! counts are asserted.

mod support_server;

use std::collections::HashMap;
use std::path::Path;

use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::dead_letter::{DeadLetterReason, read_all};
use examples::server::settings::Settings;
use serde_json::{Value, json};
use support_server::serve;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";

/// 2024-05-01T10:15:30.123Z, and in Unix milliseconds / seconds.
const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;
const AT_S: i64 = AT_MS / 1000;

/// Onboarding with one milestone, audience `vip` → manual segment 7, short lingers, one
/// attempt per request.
const CONFIG: &str = r#"
[triggers.dispatcher]
linger_ms = 10
max_attempts = 1

[onboarding]
milestones = [{ event = "Signed Up", key = "signed_up" }]

[audience.segments]
vip = 7

[server]
segment_deadline_ms = 10000
churn_scan_interval_seconds = 60
"#;

fn settings(cio: &MockServer, args: &[&str]) -> Settings {
    let env = HashMap::from([
        ("CIO_SITE_ID", "site".to_owned()),
        ("CIO_API_KEY", "key".to_owned()),
        ("CIO_TRACK_URL", cio.uri()),
    ]);
    Settings::from_args(args.iter().map(|arg| (*arg).to_owned()), |name| {
        env.get(name).cloned()
    })
    .unwrap()
}

fn write_config(dir: &Path) -> String {
    let file = dir.join("sync.toml");
    std::fs::write(&file, CONFIG).unwrap();
    file.display().to_string()
}

async fn post(base: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/segment"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn signed_up(message_id: &str, user: &str) -> Value {
    json!({"type": "track", "messageId": message_id, "userId": user, "event": "Signed Up",
           "timestamp": AT})
}

fn signed_up_ops(message_id: &str, user: &str) -> Vec<Value> {
    vec![
        json!({"type": "person", "action": "identify", "identifiers": {"id": user},
               "attributes": {"onboarding_signed_up_at": AT_S, "onboarding_step": "signed_up"}}),
        json!({"type": "person", "action": "event", "identifiers": {"id": user},
               "name": "Signed Up", "id": event_id(message_id, AT_MS).to_string(),
               "timestamp": AT_S}),
    ]
}

fn entered_vip(message_id: &str, user: &str) -> Value {
    json!({"type": "track", "messageId": message_id, "userId": user,
           "event": "Audience Entered", "timestamp": AT,
           "properties": {"audience_key": "vip", "vip": true},
           "context": {"personas": {"computation_class": "audience", "computation_key": "vip"}}})
}

fn order(message_id: &str, user: &str) -> Value {
    json!({"type": "track", "messageId": message_id, "userId": user,
           "event": "Order Completed", "timestamp": AT, "properties": {"total": 30}})
}

fn order_op(message_id: &str, user: &str) -> Value {
    json!({"type": "person", "action": "event", "identifiers": {"id": user},
           "name": "Order Completed", "id": event_id(message_id, AT_MS).to_string(),
           "timestamp": AT_S, "attributes": {"total": 30}})
}

fn mount_batch(operations: Vec<Value>) -> Mock {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({ "batch": operations })))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
}

fn add_to_segment_7(ids: &[&str]) -> Mock {
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/7/add_customers"))
        .and(query_param("id_type", "id"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({ "ids": ids })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_file_routes_milestones_and_audiences_to_their_flows() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let cio = MockServer::start().await;
    let settings = settings(&cio, &["--config", &config]);
    assert_eq!(settings.churn_scan_every.as_secs(), 60);
    let (base, state) = serve(settings).await;
    assert_eq!(
        state.flows().describe(),
        "triggers, onboarding, audience",
        "both sections turned their flow on"
    );

    // One request at a time, so each one's operations are a request of their own.
    let mounted = cio
        .register_as_scoped(mount_batch(signed_up_ops("m-1", "u-1")))
        .await;
    assert_eq!(post(&base, &signed_up("m-1", "u-1")).await.0, 200);
    drop(mounted);
    let mounted = cio.register_as_scoped(add_to_segment_7(&["u-1"])).await;
    assert_eq!(post(&base, &entered_vip("m-2", "u-1")).await.0, 200);
    drop(mounted);
    let mounted = cio
        .register_as_scoped(mount_batch(vec![order_op("m-3", "u-1")]))
        .await;
    assert_eq!(post(&base, &order("m-3", "u-1")).await.0, 200);
    drop(mounted);
    // Scoped mocks verify their `expect(1)` when dropped; nothing else was sent.
    assert_eq!(cio.received_requests().await.unwrap().len(), 3);

    let (_, _, metrics) = get(&base, "/metrics").await;
    for line in [
        r#"cio_sync_flow_messages_total{flow="onboarding",result="delivered"} 1"#,
        r#"cio_sync_flow_messages_total{flow="audience",result="delivered"} 1"#,
        r#"cio_sync_flow_messages_total{flow="triggers",result="delivered"} 1"#,
        r#"cio_sync_dispatcher_delivered_total{dispatcher="customerio_segments"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_body_is_split_among_the_flows_and_answered_once_all_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let cio = MockServer::start().await;
    // The v2 operations of the onboarding and triggers flows share one dispatcher, so how
    // they are grouped into requests depends on timing: accept any grouping and compare the
    // operations received.
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&cio)
        .await;
    add_to_segment_7(&["u-2"]).mount(&cio).await;
    let (base, _state) = serve(settings(&cio, &["--config", &config])).await;

    let body = json!([
        order("b-1", "u-1"),
        signed_up("b-2", "u-2"),
        entered_vip("b-3", "u-2"),
        order("b-4", "u-3"),
    ]);
    let (status, answer) = post(&base, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"message": "4 event(s) handled"}));

    let mut received: Vec<Value> = Vec::new();
    for request in cio.received_requests().await.unwrap() {
        if request.url.path() == "/api/v2/batch" {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            received.extend(body["batch"].as_array().unwrap().iter().cloned());
        }
    }
    let mut expected = vec![order_op("b-1", "u-1"), order_op("b-4", "u-3")];
    expected.extend(signed_up_ops("b-2", "u-2"));
    let key = |v: &Value| v.to_string();
    received.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(received, expected, "each operation exactly once");
    cio.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_appended_to_the_file_given_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let dead_letters = dir.path().join("dead.jsonl");
    let cio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({"batch": [order_op("d-1", "u-1")]})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "errors": [{"reason": "invalid", "field": "name", "message": "bad event"}]
        })))
        .expect(1)
        .mount(&cio)
        .await;
    let mut settings = settings(&cio, &["--dead-letter", dead_letters.to_str().unwrap()]);
    settings.flows.triggers.dispatcher.linger_ms = Some(10);
    settings.flows.triggers.dispatcher.max_attempts = std::num::NonZeroU32::new(1);
    let (base, state) = serve(settings).await;

    // Given up for good: acknowledged, so Segment does not resend it forever.
    assert_eq!(post(&base, &order("d-1", "u-1")).await.0, 200);
    state.shutdown().await;
    cio.verify().await;

    let entries = read_all(&dead_letters).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].item, order_op("d-1", "u-1"));
    assert!(
        matches!(
            &entries[0].reason,
            DeadLetterReason::RejectedByServer { .. }
        ),
        "{:?}",
        entries[0].reason
    );
}

async fn get(base: &str, route: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{base}{route}")).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_forgets_the_person_in_the_audience_store_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let cio = MockServer::start().await;
    let (base, _state) = serve(settings(&cio, &["--config", &config])).await;
    let entered_at = |message_id: &str, timestamp: &str| {
        let mut message = entered_vip(message_id, "u-1");
        message["timestamp"] = json!(timestamp);
        message
    };

    let mounted = cio.register_as_scoped(add_to_segment_7(&["u-1"])).await;
    assert_eq!(
        post(&base, &entered_at("e-2", "2024-05-02T00:00:00Z"))
            .await
            .0,
        200
    );
    drop(mounted);
    // An older change is stale while the membership is remembered: nothing is sent.
    assert_eq!(
        post(&base, &entered_at("e-1", "2024-05-01T00:00:00Z"))
            .await
            .0,
        200
    );
    assert_eq!(cio.received_requests().await.unwrap().len(), 1);

    let delete = json!({"type": "track", "messageId": "del-1", "userId": "u-1",
                        "event": "User Deleted", "timestamp": AT});
    let mounted = cio
        .register_as_scoped(mount_batch(vec![json!({
            "type": "person", "action": "delete", "identifiers": {"id": "u-1"}
        })]))
        .await;
    assert_eq!(post(&base, &delete).await.0, 200);
    drop(mounted);
    // Forgotten after Customer.io accepted the delete: the same older change is new again.
    let mounted = cio.register_as_scoped(add_to_segment_7(&["u-1"])).await;
    assert_eq!(
        post(&base, &entered_at("e-0", "2024-05-01T00:00:00Z"))
            .await
            .0,
        200
    );
    drop(mounted);
    assert_eq!(cio.received_requests().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_later_message_waits_for_an_earlier_one_in_another_flow() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let cio = MockServer::start().await;
    // u-1's milestone fails (one attempt, 500) and its dead letter cannot be written (the
    // file is /dev/full): nothing kept it, so the source must resend it.
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(body_json(json!({ "batch": signed_up_ops("o-1", "u-1") })))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&cio)
        .await;
    // So u-1's later order is not attempted: it must not overtake the milestone.
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(body_json(json!({ "batch": [order_op("o-2", "u-1")] })))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&cio)
        .await;
    // Another person in the same request is not held back.
    add_to_segment_7(&["u-2"]).mount(&cio).await;
    let (base, _state) = serve(settings(
        &cio,
        &["--config", &config, "--dead-letter", "/dev/full"],
    ))
    .await;

    let body = json!([
        signed_up("o-1", "u-1"),
        order("o-2", "u-1"),
        entered_vip("o-3", "u-2")
    ]);
    let (status, answer) = post(&base, &body).await;
    assert_eq!(status, 503, "{answer}");
    let text = answer["message"].as_str().unwrap();
    assert!(
        text.contains("event at index 0 was not handled by the onboarding flow")
            && text
                .contains("event at index 1 was not handled by the triggers flow: not attempted"),
        "{text}"
    );
    assert!(!text.contains("index 2"), "{text}");
    cio.verify().await;
}
