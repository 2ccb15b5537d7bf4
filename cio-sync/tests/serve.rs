//! `cio-sync serve` over real HTTP: the library's endpoints mounted with health, status and
//! metrics routes, exact Customer.io requests, the environment checked before anything starts,
//! and a graceful shutdown that flushes the dispatchers.

mod support;

use std::sync::Arc;

use cio_segment_sync::config::SyncConfig;
use cio_sync::serve::{ServeError, ServeOptions, Server};
use serde_json::{Value, json};
use support::{env, env_for, expect_batch, post, serve, start, status_page};
use wiremock::MockServer;

fn options() -> ServeOptions {
    let mut options = ServeOptions::default();
    options.metrics = Some(Arc::new(|| {
        "# rendered by the host's recorder\n".to_owned()
    }));
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_webhook_reaches_customerio_and_the_status_counts_it() {
    let cio = MockServer::start().await;
    expect_batch(&cio, json!([{
            "type": "person", "action": "event", "identifiers": {"id": "u-1"},
            "name": "Paid",
            "id": cio_segment_sync::customerio_client::event_id::event_id("m-1", 1_714_558_560_000).to_string(),
            "timestamp": 1714558560
        }])).await;
    let config =
        SyncConfig::from_toml_str("[triggers.dispatcher]\nlinger_ms = 1\n", "test").unwrap();
    let serving = serve(env_for(&cio, &[]), config, options()).await;
    let base = &serving.base;
    let http = reqwest::Client::new();

    let event = json!({"type": "track", "userId": "u-1", "event": "Paid",
                       "messageId": "m-1", "timestamp": "2024-05-01T10:16:00Z"});
    let (status, body) = post(base, "/segment", event.to_string().as_bytes(), &[]).await;
    assert_eq!(status, 200, "{body}");
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
    let status: Value = serde_json::from_str(&status_page(base).await).unwrap();
    assert_eq!(status["routes"]["triggers"]["delivered"], 1, "{status}");
    assert_eq!(status["endpoints"]["segment"]["ok"], 1, "{status}");
    assert_eq!(
        status["dispatchers"]["customerio"]["delivered"], 1,
        "{status}"
    );
    // Without a signing key there is no Customer.io route.
    assert_eq!(post(base, "/customerio", b"{}", &[]).await.0, 404);

    serving.stop().await;
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
    let recorder = server
        .dry_run()
        .expect("--dry-run starts a recording server");
    assert!(recorder.base_url().starts_with("http://127.0.0.1:"));
    let serving = start(server).await;
    let base = &serving.base;
    let event =
        json!({"type": "track", "userId": "u-1", "event": "Paid", "messageId": "m-1"}).to_string();
    // Segment's signature is required once a secret is set.
    let (status, body) = post(base, "/segment", event.as_bytes(), &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["problems"][0]["kind"], "signature", "{body}");
    let signature = cio_segment_sync::segment_model::webhook::signature::sign(
        &cio_segment_sync::segment_model::SharedSecret::new("segment-secret"),
        event.as_bytes(),
    );
    let signed = post(
        base,
        "/segment",
        event.as_bytes(),
        &[("x-signature", signature)],
    )
    .await;
    assert_eq!(signed.0, 200, "{}", signed.1);
    // The recording server answered the operation: delivered, not sent to Customer.io.
    let status: Value = serde_json::from_str(&status_page(base).await).unwrap();
    assert_eq!(
        status["dispatchers"]["customerio"]["delivered"], 1,
        "{status}"
    );
    // The back-sync route exists and checks Customer.io's signature.
    assert_eq!(post(base, "/customerio", b"{}", &[]).await.0, 401);
    serving.stop().await;
}
