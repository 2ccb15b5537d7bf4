//! An outage seen from `POST /segment`: the endpoint's deadline answers 503 but does not cancel
//! the delivery; the claim stays held (its lease renewed) while the dispatcher waits, so the
//! source's redeliveries are answered 503 "in flight" and never sent twice; after the recovery
//! the event reaches Customer.io once and the next redelivery is answered 200 (a duplicate).
//!
//! Real sockets and short real timings (a 150 ms endpoint deadline, a 300 ms claim lease that
//! must be renewed several times), so no clock is paused and no duration is asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cio_segment_sync::builder::{SyncBuilder, SyncEngine};
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::http::{EndpointResponse, ProblemKind, SegmentEndpoint};
use http::{HeaderMap, StatusCode};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Short timings, set through the configuration the way a host would.
const CONFIG: &str = r#"
[triggers]
lease_seconds = 1

[triggers.dispatcher]
linger_ms = 1
initial_backoff_ms = 20
max_backoff_ms = 50
"#;

/// Customer.io's batch endpoint: 503 while `down`, then 200.
struct Outage {
    down: Arc<AtomicBool>,
}

impl Respond for Outage {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.down.load(Ordering::SeqCst) {
            ResponseTemplate::new(503)
        } else {
            ResponseTemplate::new(200).set_body_json(serde_json::json!({}))
        }
    }
}

fn engine(server: &MockServer) -> SyncEngine {
    let client = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        ClientConfig::new(Region::Us)
            .with_track_base_url(&server.uri())
            .unwrap(),
    )
    .unwrap();
    let config = SyncConfig::from_toml_str(CONFIG, "test").unwrap();
    let (engine, workers) = SyncBuilder::new(client, config).build().unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    engine
}

const BODY: &[u8] = br#"{"type": "track", "messageId": "m-outage", "userId": "u-1",
    "event": "Signed Up", "timestamp": "2024-05-01T10:00:00Z"}"#;

async fn post(endpoint: &SegmentEndpoint) -> EndpointResponse {
    endpoint
        .handle(&HeaderMap::new(), Bytes::from_static(BODY))
        .await
}

/// Requests Customer.io answered 200 (the deliveries that happened).
async fn accepted(server: &MockServer, down_until: usize) -> Vec<serde_json::Value> {
    let requests = server.received_requests().await.unwrap();
    requests[down_until..]
        .iter()
        .map(|request| serde_json::from_slice(&request.body).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_503_keeps_the_claim_until_the_outage_ends_and_delivers_once() {
    let server = MockServer::start().await;
    let down = Arc::new(AtomicBool::new(true));
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(Outage {
            down: Arc::clone(&down),
        })
        .mount(&server)
        .await;
    let engine = engine(&server);
    let endpoint = SegmentEndpoint::builder(engine.router.clone())
        .deadline(Duration::from_millis(150))
        .build()
        .unwrap();

    // The first delivery outlives the deadline: 503, and it goes on in the background.
    let first = post(&endpoint).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.body.problems[0].kind, ProblemKind::Deadline);

    // Segment's redeliveries during the outage, spread over several leases: each finds the
    // claim held (renewed, never lapsed) and is answered 503 in flight, not sent again.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let retry = post(&endpoint).await;
        assert_eq!(retry.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.body.retry_later, 1);
        assert_eq!(
            retry.body.problems[0].kind,
            ProblemKind::RetryLater,
            "{:?}",
            retry.body
        );
    }
    let failed = server.received_requests().await.unwrap().len();
    assert!(
        failed >= 2,
        "the dispatcher kept retrying ({failed} requests)"
    );

    // Recovery: the held item goes through; the next redelivery is a duplicate, answered 200.
    down.store(false, Ordering::SeqCst);
    let done = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = post(&endpoint).await;
        if answer.status == StatusCode::OK {
            break answer;
        }
    };
    assert_eq!((done.body.delivered, done.body.skipped), (0, 1));

    let requests = server.received_requests().await.unwrap();
    let after_recovery = accepted(&server, requests.len() - 1).await;
    assert_eq!(after_recovery.len(), 1, "one accepted request");
    let batch = after_recovery[0]["batch"].as_array().unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0]["name"], "Signed Up");
    // Every request (failed or accepted) carried the same single event: nothing was sent twice
    // as a second item, and no redelivery added one.
    for request in &requests {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["batch"].as_array().unwrap().len(), 1);
        assert_eq!(body["batch"][0]["id"], batch[0]["id"]);
    }
    engine.shutdown().await;
}
