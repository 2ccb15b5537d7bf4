//! The bounded webhook routes (feature `axum`) over real HTTP on `127.0.0.1:0`: load shedding
//! at the concurrency limit (held while the work outlives its deadline, so a flood pins no
//! more tasks than the limit), the request-rate limit, the body limit's 413 counted, the
//! `/segment` token, `/healthz` and `/readyz`, and the graceful drain.

mod dispatch_support;

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use cio_segment_sync::axum::{Endpoints, routes};
use cio_segment_sync::customerio_client::webhook::{SignatureVerifier, WebhookSigningKey};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dedupe::MemoryDeduper;
use cio_segment_sync::dispatch::sinks::SegmentTrackingSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig};
use cio_segment_sync::flows::engagement::{EngagementConfig, EngagementFlow};
use cio_segment_sync::http::{
    AnswerBody, CustomerIoEndpoint, DrainPhase, NotReadyReason, ProblemKind, Readiness,
    ReadinessReport, RequestRate, SegmentEndpoint, TOKEN_HEADER, WebhookToken,
};
use cio_segment_sync::loop_guard::StampingLoopGuard;
use cio_segment_sync::outcome::Outcome;
use cio_segment_sync::pipeline::{Pipeline, PipelineError};
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::Message;
use cio_segment_sync::segment_model::client::BaseUrl;
use cio_segment_sync::segment_model::client::tracking::{TrackingClient, WriteKey};
use dispatch_support::{Item, ScriptedSink, limits};
use serde_json::json;
use tokio::sync::{Semaphore, watch};

const TOKEN: &str = "segment-webhook-token-0123456789";

/// Delivers each message once a permit is released; counts the messages that entered and the
/// ones that finished.
#[derive(Debug)]
struct Held {
    release: Semaphore,
    entered: watch::Sender<usize>,
    finished: watch::Sender<usize>,
}

impl Held {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            release: Semaphore::new(0),
            entered: watch::Sender::new(0),
            finished: watch::Sender::new(0),
        })
    }

    async fn wait_entered(&self, n: usize) {
        let _ = self.entered.subscribe().wait_for(|e| *e >= n).await;
    }

    async fn wait_finished(&self, n: usize) {
        let _ = self.finished.subscribe().wait_for(|f| *f >= n).await;
    }

    fn entered(&self) -> usize {
        *self.entered.borrow()
    }
}

#[async_trait]
impl Pipeline for Held {
    async fn process(&self, _: &Message) -> Result<Outcome, PipelineError> {
        self.entered.send_modify(|n| *n += 1);
        self.release.acquire().await.unwrap().forget();
        self.finished.send_modify(|n| *n += 1);
        Ok(Outcome::Delivered)
    }
}

/// Serves `app` on `127.0.0.1:0`; the base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn event(id: usize) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"type": "track", "messageId": format!("m-{id}"), "userId": "u-1", "event": "Paid"}),
    )
    .unwrap()
}

async fn post(base: &str, route: &str, body: Vec<u8>) -> (u16, AnswerBody) {
    let response = reqwest::Client::new()
        .post(format!("{base}{route}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    (status, response.json().await.unwrap())
}

fn kind(body: &AnswerBody) -> ProblemKind {
    body.problems[0].kind
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn segment(pipeline: Arc<Held>, deadline: Duration) -> Arc<SegmentEndpoint> {
    Arc::new(
        SegmentEndpoint::builder(pipeline)
            .deadline(deadline)
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_over_the_concurrency_limit_is_shed_at_once_and_its_place_reused() {
    let held = Held::new();
    let segment = segment(held.clone(), Duration::from_secs(60));
    let base = serve(routes(
        Endpoints::new()
            .with_segment(segment.clone())
            .with_concurrency_limit(nz(2)),
    ))
    .await;

    let first = tokio::spawn({
        let base = base.clone();
        async move { post(&base, "/segment", event(1)).await }
    });
    let second = tokio::spawn({
        let base = base.clone();
        async move { post(&base, "/segment", event(2)).await }
    });
    held.wait_entered(2).await;

    // Both places are taken: the third is shed before its body is read, and nothing ran.
    let (status, body) = post(&base, "/segment", event(3)).await;
    assert_eq!(status, 503);
    assert_eq!(kind(&body), ProblemKind::Overloaded);
    assert_eq!(
        body.problems[0].message,
        "the route is at its limit of 2 requests at once; send the request again"
    );
    assert_eq!(held.entered(), 2);

    held.release.add_permits(2);
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(second.await.unwrap().0, 200);

    // The places are free again.
    held.release.add_permits(1);
    let (status, body) = post(&base, "/segment", event(4)).await;
    assert_eq!((status, body.delivered), (200, 1));

    let stats = segment.stats().snapshot();
    assert_eq!(
        (stats.ok, stats.service_unavailable, stats.overloaded),
        (3, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_during_an_outage_pins_no_more_work_than_the_limit() {
    // Work that outlives its deadline keeps its place: a flood of 20 while the pipeline is
    // stuck runs 4 of them and sheds 16, however long the outage lasts.
    let held = Held::new();
    let segment = segment(held.clone(), Duration::from_millis(200));
    let base = serve(routes(
        Endpoints::new()
            .with_segment(segment.clone())
            .with_concurrency_limit(nz(4)),
    ))
    .await;

    let flood: Vec<_> = (0..20)
        .map(|id| {
            let base = base.clone();
            tokio::spawn(async move { post(&base, "/segment", event(id)).await })
        })
        .collect();
    let mut kinds = Vec::new();
    for request in flood {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 503, "{body:?}");
        kinds.push(kind(&body));
    }
    let count = |wanted| kinds.iter().filter(|k| **k == wanted).count();
    assert_eq!(count(ProblemKind::Deadline), 4);
    assert_eq!(count(ProblemKind::Overloaded), 16);
    assert_eq!(held.entered(), 4);

    // Answered 503 at their deadlines, the 4 still hold their places.
    let (status, body) = post(&base, "/segment", event(20)).await;
    assert_eq!((status, kind(&body)), (503, ProblemKind::Overloaded));
    assert_eq!(held.entered(), 4);

    // Recovery: the stuck work ends and frees its places.
    held.release.add_permits(5);
    held.wait_finished(4).await;
    let mut answer = post(&base, "/segment", event(21)).await;
    // The last place is freed when the finished task is dropped, just after it counted.
    for _ in 0..500 {
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        answer = post(&base, "/segment", event(21)).await;
    }
    assert_eq!((answer.0, answer.1.delivered), (200, 1));
    assert_eq!(held.entered(), 5);
    let stats = segment.stats().snapshot();
    assert_eq!((stats.deadlines, stats.ok), (4, 1));
    assert!(stats.overloaded >= 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_request_rate_a_fast_503_names_the_limit() {
    let held = Held::new();
    held.release.add_permits(10);
    let segment = segment(held.clone(), Duration::from_secs(60));
    let rate = RequestRate::new(NonZeroU32::new(2).unwrap(), Duration::from_secs(3600)).unwrap();
    let base = serve(routes(
        Endpoints::new()
            .with_segment(segment.clone())
            .with_rate_limit(rate),
    ))
    .await;
    assert_eq!(post(&base, "/segment", event(1)).await.0, 200);
    assert_eq!(post(&base, "/segment", event(2)).await.0, 200);
    let (status, body) = post(&base, "/segment", event(3)).await;
    assert_eq!((status, kind(&body)), (503, ProblemKind::RateLimited));
    assert_eq!(
        body.problems[0].message,
        "the route is over its limit of 2 requests per 3600 s; send the request again"
    );
    assert_eq!(held.entered(), 2);
    assert_eq!(segment.stats().snapshot().rate_limited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_a_413_naming_it_and_counted() {
    let held = Held::new();
    let segment = segment(held.clone(), Duration::from_secs(60));
    let base = serve(routes(
        Endpoints::new()
            .with_segment(segment.clone())
            .with_body_limit(nz(64)),
    ))
    .await;
    let (status, body) = post(&base, "/segment", vec![b' '; 65]).await;
    assert_eq!(status, 413);
    assert_eq!(kind(&body), ProblemKind::TooLarge);
    assert_eq!(
        body.problems[0].message,
        "the request body is larger than the limit of 64 bytes"
    );
    assert_eq!(held.entered(), 0);
    let stats = segment.stats().snapshot();
    assert_eq!(
        (stats.requests(), stats.payload_too_large, stats.refused),
        (1, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segment_token_is_required_in_either_header() {
    let held = Held::new();
    held.release.add_permits(10);
    let segment = Arc::new(
        SegmentEndpoint::builder(held.clone())
            .token(WebhookToken::new(TOKEN).unwrap())
            .build()
            .unwrap(),
    );
    let base = serve(routes(Endpoints::new().with_segment(segment.clone()))).await;
    let http = reqwest::Client::new();
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.body(event(1)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<AnswerBody>().await.unwrap())
    };
    let url = format!("{base}/segment");

    let (status, body) = send(http.post(&url)).await;
    assert_eq!((status, kind(&body)), (401, ProblemKind::Token));
    assert_eq!(
        body.problems[0].message,
        "the request carries no webhook token (`Authorization: Bearer` or `X-Webhook-Token`)"
    );
    let (status, body) = send(http.post(&url).bearer_auth("not-the-token-0123456789")).await;
    assert_eq!((status, kind(&body)), (401, ProblemKind::Token));
    assert_eq!(
        body.problems[0].message,
        "the request's webhook token is wrong"
    );
    assert!(!body.problems[0].message.contains("not-the-token"));
    assert_eq!(held.entered(), 0, "nothing ran without the token");

    let (status, body) = send(http.post(&url).bearer_auth(TOKEN)).await;
    assert_eq!((status, body.delivered), (200, 1));
    let (status, body) = send(http.post(&url).header(TOKEN_HEADER, TOKEN)).await;
    assert_eq!((status, body.skipped + body.delivered), (200, 1));
    assert_eq!(held.entered(), 2);
    let stats = segment.stats().snapshot();
    assert_eq!((stats.unauthorized, stats.ok), (2, 2));
}

async fn readyz(base: &str) -> (u16, ReadinessReport) {
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_a_full_queue_and_healthz_stays_alive() {
    // A dispatcher whose worker is not run: submitted items stay outstanding.
    let (handle, _worker) = Dispatcher::new(
        ScriptedSink::new(limits(10, 10_000, Duration::from_millis(10)), true, vec![]),
        DispatcherConfig::default().with_queue_capacity(nz(1)),
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(10)),
    );
    let held = Held::new();
    let endpoints = Endpoints::new()
        .with_segment(segment(held, Duration::from_secs(60)))
        .with_health(Readiness::new().with_check(Arc::new(handle.clone())));
    let base = serve(routes(endpoints)).await;

    let (status, report) = readyz(&base).await;
    assert_eq!(status, 200, "{report:?}");
    assert!(report.ready);
    assert_eq!(
        report
            .checks
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["server", "dispatcher:scripted"]
    );

    let _completion = handle.try_submit(Item::new(1), None).unwrap();
    let (status, report) = readyz(&base).await;
    assert_eq!(status, 503);
    assert!(!report.ready);
    let failed = &report.checks[1];
    assert_eq!(failed.reason, Some(NotReadyReason::QueueFull));
    assert_eq!(
        failed.message.as_deref(),
        Some("the queue holds 1 of 1 items")
    );

    let alive = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(alive.status().as_u16(), 200);
    assert_eq!(alive.text().await.unwrap(), "ok");
}

/// An engagement flow whose dispatcher's worker is never run (nothing is sent).
fn engagement() -> Arc<EngagementFlow> {
    let client = TrackingClient::builder(WriteKey::new("wk"))
        .base_url(BaseUrl::parse("http://127.0.0.1:9").unwrap())
        .build()
        .unwrap();
    let dead = Arc::new(MemoryDeadLetters::new(10));
    let (handle, _worker) = Dispatcher::new(
        SegmentTrackingSink::new(client),
        DispatcherConfig::default(),
        Arc::new(Unlimited),
        dead.clone(),
    );
    Arc::new(
        EngagementFlow::new(
            EngagementConfig::default(),
            SignatureVerifier::new(WebhookSigningKey::new("signing-key").unwrap()),
            Arc::new(MemoryDeduper::default()),
            Arc::new(StampingLoopGuard::default()),
            handle,
            dead,
        )
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_answers_in_flight_requests_and_refuses_new_ones() {
    let held = Held::new();
    let segment = segment(held.clone(), Duration::from_secs(60));
    let customerio = Arc::new(
        CustomerIoEndpoint::builder(SignatureVerifier::new(
            WebhookSigningKey::new("signing-key").unwrap(),
        ))
        .engagement(engagement())
        .build()
        .unwrap(),
    );
    let endpoints = Endpoints::new()
        .with_segment(segment.clone())
        .with_customerio(customerio.clone())
        .with_health(Readiness::new());
    let drain = endpoints.drain();
    let base = serve(routes(endpoints)).await;
    assert_eq!(readyz(&base).await.0, 200);

    let in_flight = tokio::spawn({
        let base = base.clone();
        async move { post(&base, "/segment", event(1)).await }
    });
    held.wait_entered(1).await;
    assert_eq!(drain.in_flight(), 1);

    let draining = tokio::spawn({
        let drain = drain.clone();
        async move { drain.run(Duration::from_secs(60)).await }
    });
    while drain.phase() == DrainPhase::Serving {
        tokio::task::yield_now().await;
    }
    // New requests on either route: a fast 503 saying the server is shutting down (never a
    // 4xx to Customer.io).
    for route in ["/segment", "/customerio"] {
        let (status, body) = post(&base, route, event(2)).await;
        assert_eq!(
            (status, kind(&body)),
            (503, ProblemKind::ShuttingDown),
            "{route}"
        );
        assert_eq!(
            body.problems[0].message,
            "the server is shutting down and takes no new request; send it again"
        );
    }
    let (status, report) = readyz(&base).await;
    assert_eq!(status, 503);
    assert_eq!(report.checks[0].name, "server");
    assert_eq!(report.checks[0].reason, Some(NotReadyReason::ShuttingDown));
    assert!(!draining.is_finished());

    // The request in flight gets its own answer, and the drain ends without cutting it.
    held.release.add_permits(1);
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, body.delivered), (200, 1));
    let report = draining.await.unwrap();
    assert_eq!((report.in_flight_at_start, report.cut_short), (1, 0));
    assert_eq!(held.entered(), 1);
    assert_eq!(segment.stats().snapshot().shutting_down, 1);
    assert_eq!(customerio.stats().snapshot().shutting_down, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_end_of_the_grace_what_is_still_in_flight_is_answered_503() {
    let held = Held::new();
    let segment = segment(held.clone(), Duration::from_secs(60));
    let endpoints = Endpoints::new().with_segment(segment.clone());
    let drain = endpoints.drain();
    let base = serve(routes(endpoints)).await;

    let in_flight = tokio::spawn({
        let base = base.clone();
        async move { post(&base, "/segment", event(1)).await }
    });
    held.wait_entered(1).await;
    let report = drain.run(Duration::from_millis(200)).await;
    assert_eq!((report.in_flight_at_start, report.cut_short), (1, 1));
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, kind(&body)), (503, ProblemKind::ShuttingDown));
    assert_eq!(
        body.problems[0].message,
        "the server is shutting down and the request was not finished within the shutdown \
         grace period; send it again"
    );
    assert_eq!(drain.phase(), DrainPhase::GraceEnded);
    assert_eq!(drain.in_flight(), 0);
    // Its work was not cancelled: it finishes once released.
    held.release.add_permits(1);
    held.wait_finished(1).await;
    let stats = segment.stats().snapshot();
    assert_eq!((stats.shutting_down, stats.service_unavailable), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickling_in_is_answered_503_at_the_deadline_and_frees_its_place() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let held = Held::new();
    held.release.add_permits(1);
    let segment = segment(held.clone(), Duration::from_millis(200));
    let base = serve(routes(
        Endpoints::new()
            .with_segment(segment.clone())
            .with_concurrency_limit(nz(1)),
    ))
    .await;
    // Announces 100 bytes, sends one, and waits.
    let mut slow = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    slow.write_all(b"POST /segment HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") || !answer.ends_with(b"}") {
        let n = slow.read(&mut buffer).await.unwrap();
        assert!(n > 0, "closed before answering: {answer:?}");
        answer.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8(answer).unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.contains("the request body did not arrive within 200 ms"),
        "{text}"
    );
    assert_eq!(held.entered(), 0);
    // Its place is free: the next request is handled.
    let (status, body) = post(&base, "/segment", event(1)).await;
    assert_eq!((status, body.delivered), (200, 1));
}
