//! `axum::routes` (feature `axum`) mounted in a host's own router and served over real HTTP on
//! `127.0.0.1:0`, called with a real client: the host's routes and ours side by side (nested
//! and merged, with and without host state), the JSON answers, the body limit's 413, `GET
//! /metrics` from the host's closure, and routes left out when not configured.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use cio_segment_sync::axum::{DEFAULT_BODY_LIMIT, Endpoints, METRICS_CONTENT_TYPE, routes};
use cio_segment_sync::customerio_client::webhook::{SignatureVerifier, WebhookSigningKey};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dedupe::MemoryDeduper;
use cio_segment_sync::dispatch::sinks::SegmentTrackingSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig};
use cio_segment_sync::flows::engagement::{EngagementConfig, EngagementFlow};
use cio_segment_sync::http::{AnswerBody, CustomerIoEndpoint, ProblemKind, SegmentEndpoint};
use cio_segment_sync::loop_guard::StampingLoopGuard;
use cio_segment_sync::outcome::Outcome;
use cio_segment_sync::pipeline::{Pipeline, PipelineError};
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::Message;
use cio_segment_sync::segment_model::client::BaseUrl;
use cio_segment_sync::segment_model::client::tracking::{TrackingClient, WriteKey};
use serde_json::{Value, json};
use wiremock::MockServer;

const SIGNING_KEY: &str = "reporting-webhook-signing-key";
const LIMIT: usize = 1024;

/// Delivers every message and counts them.
#[derive(Debug, Default)]
struct DeliverAll(AtomicUsize);

#[async_trait]
impl Pipeline for DeliverAll {
    async fn process(&self, _: &Message) -> Result<Outcome, PipelineError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::Delivered)
    }
}

/// The host's own state.
#[derive(Clone)]
struct HostState {
    greeting: &'static str,
}

async fn hello(State(state): State<HostState>) -> &'static str {
    state.greeting
}

/// Serves `app` on `127.0.0.1:0`; the base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn track(id: &str) -> Value {
    json!({"type": "track", "messageId": id, "userId": "u-1", "event": "Signed Up"})
}

async fn answer(response: reqwest::Response) -> (u16, Option<String>, AnswerBody) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.json::<AnswerBody>().await.unwrap();
    (status, content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_router_with_state_serves_its_routes_and_ours_nested() {
    let pipeline = Arc::new(DeliverAll::default());
    let segment = Arc::new(SegmentEndpoint::builder(pipeline.clone()).build().unwrap());
    let endpoints = Endpoints::new()
        .with_segment(segment.clone())
        .with_body_limit(NonZeroUsize::new(LIMIT).unwrap())
        .with_metrics(Arc::new(|| "cio_sync_up 1\n".to_owned()));
    let app = Router::new()
        .route("/hello", get(hello))
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .nest("/hooks", routes(endpoints))
        .with_state(HostState {
            greeting: "hello from the host",
        });
    let base = serve(app).await;
    let client = reqwest::Client::new();

    // The host's own route.
    let hello = client.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(hello.status().as_u16(), 200);
    assert_eq!(hello.text().await.unwrap(), "hello from the host");

    // Ours: a batch, answered with the JSON counts.
    let batch = serde_json::to_vec(&[track("m-0"), track("m-1")]).unwrap();
    let response = client
        .post(format!("{base}/hooks/segment"))
        .header("content-type", "application/json")
        .body(batch)
        .send()
        .await
        .unwrap();
    let (status, content_type, body) = answer(response).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!((body.delivered, body.problems.len()), (2, 0));
    assert_eq!(pipeline.0.load(Ordering::SeqCst), 2);

    // An undecodable item: 400 naming its index.
    let bad = serde_json::to_vec(&[track("m-2"), json!({"type": "bogus"})]).unwrap();
    let response = client
        .post(format!("{base}/hooks/segment"))
        .body(bad)
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 400);
    assert_eq!(body.delivered, 1);
    assert_eq!(body.problems[0].index, Some(1));
    assert_eq!(body.problems[0].kind, ProblemKind::Undecodable);

    // Over the limit: 413 naming it, and nothing ran.
    let response = client
        .post(format!("{base}/hooks/segment"))
        .body(vec![b' '; 4 * LIMIT])
        .send()
        .await
        .unwrap();
    let (status, content_type, body) = answer(response).await;
    assert_eq!(status, 413);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body.problems.len(), 1);
    assert_eq!(body.problems[0].kind, ProblemKind::TooLarge);
    assert_eq!(
        body.problems[0].message,
        "the request body is larger than the limit of 1024 bytes"
    );
    assert_eq!(pipeline.0.load(Ordering::SeqCst), 3);

    // Our limit is not the host's: its own route takes the same body.
    let upload = client
        .post(format!("{base}/upload"))
        .body(vec![b' '; 4 * LIMIT])
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 200);
    assert_eq!(upload.text().await.unwrap(), (4 * LIMIT).to_string());

    // The host's metrics text, as it rendered it.
    let metrics = client
        .get(format!("{base}/hooks/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert_eq!(
        metrics.headers()["content-type"].to_str().unwrap(),
        METRICS_CONTENT_TYPE
    );
    assert_eq!(metrics.text().await.unwrap(), "cio_sync_up 1\n");

    // Not configured: no Customer.io route.
    let missing = client
        .post(format!("{base}/hooks/customerio"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    let stats = segment.stats().snapshot();
    assert_eq!(
        (stats.ok, stats.bad_request, stats.payload_too_large),
        (1, 1, 1)
    );
}

/// An engagement flow whose dispatcher sends to `segment`.
fn engagement(segment: &MockServer) -> Arc<EngagementFlow> {
    let client = TrackingClient::builder(WriteKey::new("wk"))
        .base_url(BaseUrl::parse(&segment.uri()).unwrap())
        .build()
        .unwrap();
    let dead = Arc::new(MemoryDeadLetters::new(10));
    let (handle, _worker) = Dispatcher::spawn(
        SegmentTrackingSink::new(client),
        DispatcherConfig::default(),
        Arc::new(Unlimited),
        dead.clone(),
    );
    let flow = EngagementFlow::new(
        EngagementConfig::default(),
        SignatureVerifier::new(WebhookSigningKey::new(SIGNING_KEY).unwrap()),
        Arc::new(MemoryDeduper::default()),
        Arc::new(StampingLoopGuard::default()),
        handle,
        dead,
    )
    .unwrap();
    Arc::new(flow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_routes_serve_both_webhooks_beside_the_host_routes() {
    let segment_api = MockServer::start().await;
    let pipeline = Arc::new(DeliverAll::default());
    let segment = SegmentEndpoint::builder(pipeline.clone()).build().unwrap();
    let customerio = CustomerIoEndpoint::builder(SignatureVerifier::new(
        WebhookSigningKey::new(SIGNING_KEY).unwrap(),
    ))
    .engagement(engagement(&segment_api))
    .build()
    .unwrap();
    let endpoints = Endpoints::new()
        .with_segment(Arc::new(segment))
        .with_customerio(Arc::new(customerio));
    assert_eq!(endpoints.body_limit(), DEFAULT_BODY_LIMIT);
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .merge(routes(endpoints));
    let base = serve(app).await;
    let client = reqwest::Client::new();

    let hello = client.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(hello.text().await.unwrap(), "hello");

    let one = serde_json::to_vec(&track("m-0")).unwrap();
    let response = client
        .post(format!("{base}/segment"))
        .body(one)
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!((status, body.delivered), (200, 1));

    // Customer.io: unsigned → 401 and nothing sent.
    let event = br#"{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","object_type":"email"}"#;
    let response = client
        .post(format!("{base}/customerio"))
        .body(event.to_vec())
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 401);
    assert_eq!(body.problems[0].kind, ProblemKind::Signature);

    // Signed but undecodable (no `metric`): acknowledged with 200, the problem named.
    let signed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signature = WebhookSigningKey::new(SIGNING_KEY)
        .unwrap()
        .sign(signed_at, event);
    let response = client
        .post(format!("{base}/customerio"))
        .header("x-cio-timestamp", signed_at.to_string())
        .header("x-cio-signature", signature)
        .body(event.to_vec())
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 200);
    assert_eq!(body.problems[0].kind, ProblemKind::Undecodable);
    assert_eq!(
        segment_api
            .received_requests()
            .await
            .unwrap_or_default()
            .len(),
        0
    );

    // Only POST is routed.
    let get = client.get(format!("{base}/segment")).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    // No metrics closure given: no metrics route.
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 404);
}
