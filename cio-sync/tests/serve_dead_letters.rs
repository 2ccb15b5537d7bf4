//! `cio-sync serve` keeps its dead letters durably (a data directory, one file, or in memory
//! when the library host names no place) and the status page shows how many are pending, over
//! real HTTP (127.0.0.1:0) with wiremock standing in for Customer.io.

use std::collections::HashMap;

use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::dead_letter::{DeadLetterDir, DeadLetterStore, JsonlDeadLetters};
use cio_sync::env::Env;
use cio_sync::serve::{ServeOptions, Server};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;

fn env(cio: &MockServer) -> Env {
    let vars = HashMap::from([
        ("CIO_SITE_ID", "site".to_owned()),
        ("CIO_API_KEY", "key".to_owned()),
        ("CIO_TRACK_URL", cio.uri()),
    ]);
    Env::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

fn config() -> SyncConfig {
    SyncConfig::from_toml_str(
        "[triggers.dispatcher]\nlinger_ms = 5\nmax_attempts = 1\n",
        "test",
    )
    .unwrap()
}

fn track_op(message_id: &str) -> Value {
    json!({"type": "person", "action": "event", "identifiers": {"id": "person-secret"},
           "name": "Order Completed", "id": event_id(message_id, AT_MS).to_string(),
           "timestamp": AT_MS / 1000})
}

/// Customer.io refusing `message_id` for good.
async fn refusing(message_id: &str) -> MockServer {
    let cio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(body_json(json!({"batch": [track_op(message_id)]})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "errors": [{"reason": "invalid", "field": "name", "message": "bad event"}]
        })))
        .expect(1)
        .mount(&cio)
        .await;
    cio
}

/// Serves `server`, posts one refused track, reads the status page, stops.
async fn refuse_one(server: Server, message_id: &str) -> Value {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));
    let body = json!({"type": "track", "messageId": message_id, "userId": "person-secret",
                      "event": "Order Completed", "timestamp": AT});
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{base}/segment"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    // Refused for good and kept: acknowledged, so Segment does not resend it forever.
    assert_eq!(answer.status().as_u16(), 200);
    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("person-secret"), "{page}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    serde_json::from_str(&page).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_lands_in_the_data_directory_and_the_status_page_counts_it() {
    let cio = refusing("d-1").await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = ServeOptions::default();
    options.data_dir = Some(dir.path().join("data"));
    let server = Server::build(env(&cio), config(), options).await.unwrap();
    let status = refuse_one(server, "d-1").await;
    assert_eq!(
        status["dead_letters"],
        json!({"store": "directory", "pending": 1}),
        "{status}"
    );
    cio.verify().await;

    let store = DeadLetterDir::open(dir.path().join("data")).unwrap();
    let listing = store.pending().await.unwrap();
    assert!(listing.errors.is_empty(), "{:?}", listing.errors);
    assert_eq!(listing.records.len(), 1);
    let record = &listing.records[0].record;
    assert_eq!(record.v, 1);
    assert_eq!(record.sink, "customerio.track.v2.batch");
    assert_eq!(record.item, track_op("d-1"));
    assert_eq!(
        record.id.as_deref(),
        Some(event_id("d-1", AT_MS).to_string().as_str())
    );
    assert_eq!(record.reason.label(), "rejected_by_server");
    assert_eq!(record.reason.detail(), "bad event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_file_wins_over_the_data_directory() {
    let cio = refusing("d-2").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dead.jsonl");
    let mut options = ServeOptions::default();
    options.data_dir = Some(dir.path().join("data"));
    options.dead_letter = Some(file.clone());
    let server = Server::build(env(&cio), config(), options).await.unwrap();
    let status = refuse_one(server, "d-2").await;
    assert_eq!(
        status["dead_letters"],
        json!({"store": "file", "pending": 1}),
        "{status}"
    );
    let store = JsonlDeadLetters::open(&file).unwrap();
    assert_eq!(store.pending_count().await.unwrap(), 1);
    assert!(
        !dir.path().join("data").exists(),
        "the directory is not used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_names_no_place_keeps_dead_letters_in_memory() {
    let cio = refusing("d-3").await;
    let server = Server::build(env(&cio), config(), ServeOptions::default())
        .await
        .unwrap();
    let status = refuse_one(server, "d-3").await;
    assert_eq!(
        status["dead_letters"],
        json!({"store": "memory", "pending": 1}),
        "{status}"
    );
}
