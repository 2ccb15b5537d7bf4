//! `cio-sync serve` over real HTTP: the library's endpoints mounted with health, status and
//! metrics routes, exact Customer.io requests, the environment checked before anything starts,
//! and a graceful shutdown that flushes the dispatchers.

use std::collections::HashMap;
use std::sync::Arc;

use cio_segment_sync::config::SyncConfig;
use cio_sync::env::Env;
use cio_sync::serve::{ServeError, ServeOptions, Server};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn env(pairs: &[(&str, String)]) -> Env {
    let map: HashMap<&str, String> = pairs.iter().cloned().collect();
    Env::from_lookup(|name| map.get(name).cloned()).unwrap()
}

fn options() -> ServeOptions {
    let mut options = ServeOptions::default();
    options.metrics = Some(Arc::new(|| {
        "# rendered by the host's recorder\n".to_owned()
    }));
    options
}

async fn start(
    server: Server,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));
    (base, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_webhook_reaches_customerio_and_the_status_counts_it() {
    let cio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", "Basic c2l0ZTprZXk="))
        .and(body_json(json!({"batch": [{
            "type": "person", "action": "event", "identifiers": {"id": "u-1"},
            "name": "Paid",
            "id": cio_segment_sync::customerio_client::event_id::event_id("m-1", 1_714_558_560_000).to_string(),
            "timestamp": 1714558560
        }]})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&cio)
        .await;
    let env = env(&[
        ("CIO_SITE_ID", "site".into()),
        ("CIO_API_KEY", "key".into()),
        ("CIO_TRACK_URL", cio.uri()),
    ]);
    let config =
        SyncConfig::from_toml_str("[triggers.dispatcher]\nlinger_ms = 1\n", "test").unwrap();
    let server = Server::build(env, config, options()).await.unwrap();
    let (base, stop, task) = start(server).await;
    let http = reqwest::Client::new();

    let event = json!({"type": "track", "userId": "u-1", "event": "Paid",
                       "messageId": "m-1", "timestamp": "2024-05-01T10:16:00Z"});
    let answer = http
        .post(format!("{base}/segment"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        (
            body["delivered"].as_u64(),
            body["problems"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0)),
        "{body}"
    );

    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("rendered by the host's recorder")
    );
    let status: Value = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["routes"]["triggers"]["delivered"], 1, "{status}");
    assert_eq!(status["endpoints"]["segment"]["ok"], 1, "{status}");
    assert_eq!(
        status["dispatchers"]["customerio"]["delivered"], 1,
        "{status}"
    );
    // Without a signing key there is no Customer.io route.
    let none = http
        .post(format!("{base}/customerio"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    cio.verify().await;
}

#[tokio::test]
async fn without_credentials_or_dry_run_nothing_starts_and_the_variables_are_named() {
    let error = Server::build(env(&[]), SyncConfig::default(), options())
        .await
        .unwrap_err();
    assert!(matches!(error, ServeError::Env(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("`CIO_SITE_ID` and `CIO_API_KEY` must be set"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_records_the_requests_and_signed_routes_refuse_unsigned_calls() {
    let segment = MockServer::start().await;
    let env = env(&[
        ("SEGMENT_WEBHOOK_SECRET", "segment-secret".into()),
        ("CIO_WEBHOOK_SIGNING_KEY", "cio-signing-key".into()),
        ("SEGMENT_WRITE_KEY", "write-key".into()),
        ("SEGMENT_API_URL", segment.uri()),
    ]);
    let mut options = options();
    options.dry_run = true;
    let config =
        SyncConfig::from_toml_str("[triggers.dispatcher]\nlinger_ms = 1\n", "test").unwrap();
    let server = Server::build(env, config, options).await.unwrap();
    let (base, stop, task) = start(server).await;
    let http = reqwest::Client::new();
    let event = json!({"type": "track", "userId": "u-1", "event": "Paid", "messageId": "m-1"});
    // Segment's signature is required once a secret is set.
    let unsigned = http
        .post(format!("{base}/segment"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let body: Value = unsigned.json().await.unwrap();
    assert_eq!(body["problems"][0]["kind"], "signature", "{body}");
    let signature = cio_segment_sync::segment_model::webhook::signature::sign(
        &cio_segment_sync::segment_model::SharedSecret::new("segment-secret"),
        event.to_string().as_bytes(),
    );
    let signed = http
        .post(format!("{base}/segment"))
        .header("x-signature", signature)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    // The back-sync route exists and checks Customer.io's signature.
    let cio = http
        .post(format!("{base}/customerio"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(cio.status(), 401);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
