//! An outage seen from `POST /segment`: the endpoint's deadline answers 503 but does not cancel
//! the delivery; the claim stays held (its lease renewed) while the dispatcher waits, so the
//! source's redeliveries are answered 503 "in flight" and never sent twice; after the recovery
//! the event reaches Customer.io once and the next redelivery is answered 200 (a duplicate).
//!
//! Real sockets and short real timings (a 150 ms endpoint deadline, a 300 ms claim lease that
//! must be renewed several times), so no clock is paused and no duration is asserted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// Customer.io's batch endpoint: 503 while `down`, then 200, keeping every operation it
/// accepted.
struct Outage {
    down: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Outage {
    fn new(down: &Arc<AtomicBool>) -> (Self, Arc<Mutex<Vec<serde_json::Value>>>) {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let outage = Self {
            down: Arc::clone(down),
            accepted: Arc::clone(&accepted),
        };
        (outage, accepted)
    }
}

impl Respond for Outage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.down.load(Ordering::SeqCst) {
            return ResponseTemplate::new(503);
        }
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let mut accepted = self.accepted.lock().unwrap();
        accepted.extend(body["batch"].as_array().unwrap().iter().cloned());
        ResponseTemplate::new(200).set_body_json(serde_json::json!({}))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_503_keeps_the_claim_until_the_outage_ends_and_delivers_once() {
    let server = MockServer::start().await;
    let down = Arc::new(AtomicBool::new(true));
    let (outage, accepted) = Outage::new(&down);
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(outage)
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

    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1, "accepted once");
    assert_eq!(accepted[0]["name"], "Signed Up");
    // Every request (failed or accepted) carried the same single event: no redelivery added a
    // second copy.
    for request in server.received_requests().await.unwrap() {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["batch"].as_array().unwrap().len(), 1);
        assert_eq!(body["batch"][0]["id"], accepted[0]["id"]);
    }
    engine.shutdown().await;
}

/// The issue's scenario, scaled to test timings: 60 events posted while Customer.io is down,
/// each redelivered Segment-style (every non-200 posted again after a pause) until answered
/// 200. Not one event may be answered 200 without being in Customer.io, and each must be there
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_style_redeliveries_through_an_outage_lose_and_duplicate_nothing() {
    let server = MockServer::start().await;
    let down = Arc::new(AtomicBool::new(true));
    let (outage, accepted) = Outage::new(&down);
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(outage)
        .mount(&server)
        .await;
    let engine = engine(&server);
    let endpoint = Arc::new(
        SegmentEndpoint::builder(engine.router.clone())
            .deadline(Duration::from_millis(150))
            .build()
            .unwrap(),
    );
    const EVENTS: usize = 60;
    let sources = (0..EVENTS).map(|n| {
        let endpoint = Arc::clone(&endpoint);
        tokio::spawn(async move {
            let body = format!(
                r#"{{"type": "track", "messageId": "m-{n}", "userId": "u-{}", "event": "Step {n}", "timestamp": "2024-05-01T10:00:00Z"}}"#,
                n % 7
            );
            let mut posts = 0;
            loop {
                posts += 1;
                let answer = endpoint
                    .handle(&HeaderMap::new(), Bytes::from(body.clone()))
                    .await;
                if answer.status == StatusCode::OK {
                    return (n, posts);
                }
                assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", answer.body);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let sources: Vec<_> = sources.collect();
    // The outage lasts past several leases.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    down.store(false, Ordering::SeqCst);
    let (mut redelivered, mut posts_total) = (0, 0);
    for source in sources {
        let (_, posts) = source.await.unwrap();
        redelivered += usize::from(posts > 1);
        posts_total += posts;
    }
    assert!(redelivered > 0, "the outage made Segment redeliver");
    // The figures RELIABILITY.md quotes (`--nocapture` shows them).
    #[allow(clippy::print_stderr)]
    let () = eprintln!(
        "{EVENTS} events, {posts_total} posts ({redelivered} events redelivered), {} requests to Customer.io",
        server.received_requests().await.unwrap().len()
    );

    // Every event acked 200 is at Customer.io, accepted exactly once.
    let mut counts = HashMap::<String, usize>::new();
    for op in accepted.lock().unwrap().iter() {
        *counts
            .entry(op["name"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        counts.len(),
        EVENTS,
        "every acked event reached Customer.io"
    );
    for (name, count) in &counts {
        assert_eq!(*count, 1, "{name} was accepted {count} times");
    }
    engine.shutdown().await;
}
