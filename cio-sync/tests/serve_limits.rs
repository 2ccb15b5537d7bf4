//! `cio-sync serve` bounded and drained, over real HTTP on port 0: the `SEGMENT_WEBHOOK_TOKEN`
//! check, `/readyz` (a full queue, a throttled dispatcher, Redis down with feature
//! `redis-tests`), and the graceful shutdown: in-flight requests answered, new ones 503, those
//! still in flight at the end of the grace 503, then the engine shut down and flushed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use cio_segment_sync::config::SyncConfig;
use cio_sync::env::Env;
use cio_sync::serve::{ServeOptions, Server};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot, watch};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "serve-webhook-token-0123456789";

fn env(pairs: &[(&str, String)]) -> Env {
    let map: HashMap<&str, String> = pairs.iter().cloned().collect();
    Env::from_lookup(|name| map.get(name).cloned()).unwrap()
}

fn cio_env(track_url: String) -> Env {
    env(&[
        ("CIO_SITE_ID", "site".into()),
        ("CIO_API_KEY", "key".into()),
        ("CIO_TRACK_URL", track_url),
    ])
}

fn config(text: &str) -> SyncConfig {
    SyncConfig::from_toml_str(text, "test").unwrap()
}

struct Running {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(server: Server) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));
    Running { base, stop, task }
}

fn event(id: &str) -> Value {
    json!({"type": "track", "userId": "u-1", "event": "Paid", "messageId": id,
           "timestamp": "2024-05-01T10:16:00Z"})
}

async fn post_event(base: &str, event: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/segment"))
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn readyz(base: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls `/readyz` until `check` holds (bounded; the state changes by itself shortly).
async fn readyz_until(base: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        let (_, report) = readyz(base).await;
        if check(&report) {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("/readyz never reached the expected state");
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// A Customer.io Track API that holds each batch request until the test releases it.
struct HeldCustomerIo {
    url: String,
    arrived: watch::Receiver<usize>,
    release: Arc<Semaphore>,
}

async fn held_customerio() -> HeldCustomerIo {
    let (arrivals, arrived) = watch::channel(0usize);
    let release = Arc::new(Semaphore::new(0));
    let gate = release.clone();
    let app = Router::new().route(
        "/api/v2/batch",
        post(move || {
            let (arrivals, gate) = (arrivals.clone(), gate.clone());
            async move {
                arrivals.send_modify(|n| *n += 1);
                gate.acquire().await.unwrap().forget();
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    HeldCustomerIo {
        url,
        arrived,
        release,
    }
}

impl HeldCustomerIo {
    async fn wait_arrived(&self, n: usize) {
        let _ = self.arrived.clone().wait_for(|a| *a >= n).await;
    }
    fn arrived(&self) -> usize {
        *self.arrived.borrow()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_token_from_the_environment_is_required_on_segment() {
    let env = env(&[("SEGMENT_WEBHOOK_TOKEN", TOKEN.into())]);
    let mut options = ServeOptions::default();
    options.dry_run = true;
    let server = Server::build(
        env,
        config("[triggers.dispatcher]\nlinger_ms = 1\n"),
        options,
    )
    .await
    .unwrap();
    let running = start(server).await;
    let http = reqwest::Client::new();
    let url = format!("{}/segment", running.base);

    let missing = http.post(&url).json(&event("m-1")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["problems"][0]["kind"], "token", "{body}");
    let wrong = http
        .post(&url)
        .header("x-webhook-token", "wrong-token-0123456789abcdef")
        .json(&event("m-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&event("m-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let body: Value = right.json().await.unwrap();
    assert_eq!(body["delivered"], 1, "{body}");

    let status: Value = http
        .get(format!("{}/", running.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["endpoints"]["segment"]["unauthorized"], 2,
        "{status}"
    );
    running.stop.send(()).unwrap();
    running.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_a_full_queue_and_the_shutdown_flushes_it() {
    let cio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&cio)
        .await;
    // One item fills the queue; it lingers (10 minutes) until the shutdown flushes it.
    let server = Server::build(
        cio_env(cio.uri()),
        config(
            "[triggers.dispatcher]\nqueue_capacity = 1\nlinger_ms = 600000\n\n\
             [server]\nsegment_deadline_ms = 200\n",
        ),
        ServeOptions::default(),
    )
    .await
    .unwrap();
    let engine = server.engine().clone();
    let running = start(server).await;

    let (status, report) = readyz(&running.base).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["server", "stores", "dispatcher:customerio.track.v2.batch"]
    );

    // Not delivered within the deadline: 503, the item stays with the dispatcher.
    let (status, body) = post_event(&running.base, &event("m-1")).await;
    assert_eq!(status, 503, "{body}");
    let (status, report) = readyz(&running.base).await;
    assert_eq!(status, 503, "{report}");
    let queue = check(&report, "dispatcher:customerio.track.v2.batch");
    assert_eq!(queue["reason"], "queue_full", "{report}");
    assert_eq!(queue["message"], "the queue holds 1 of 1 items");
    assert_eq!(cio.received_requests().await.unwrap().len(), 0);

    // The shutdown drains (nothing in flight), then the engine flushes the lingering item.
    running.stop.send(()).unwrap();
    running.task.await.unwrap().unwrap();
    assert!(engine.customerio.is_closed());
    cio.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_a_dispatcher_paused_by_a_429() {
    let cio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&cio)
        .await;
    let server = Server::build(
        cio_env(cio.uri()),
        config("[triggers.dispatcher]\nlinger_ms = 1\nmax_attempts = 1\n"),
        ServeOptions::default(),
    )
    .await
    .unwrap();
    let running = start(server).await;
    let (status, body) = post_event(&running.base, &event("m-1")).await;
    assert_eq!(status, 503, "{body}");
    let report = readyz_until(&running.base, |r| r["ready"] == false).await;
    let dispatcher = check(&report, "dispatcher:customerio.track.v2.batch");
    assert_eq!(dispatcher["reason"], "paused", "{report}");
    assert!(
        dispatcher["message"]
            .as_str()
            .unwrap()
            .starts_with("every send is paused for "),
        "{report}"
    );
    assert_eq!(check(&report, "server")["ready"], true);
    running.stop.send(()).unwrap();
    running.task.await.unwrap().unwrap();
    cio.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_answers_what_is_in_flight_and_refuses_new_requests() {
    let cio = held_customerio().await;
    let mut options = ServeOptions::default();
    options.shutdown_grace = Some(Duration::from_secs(60));
    let server = Server::build(
        cio_env(cio.url.clone()),
        config("[triggers.dispatcher]\nlinger_ms = 1\n\n[server]\nsegment_deadline_ms = 60000\n"),
        options,
    )
    .await
    .unwrap();
    assert_eq!(server.shutdown_grace(), Duration::from_secs(60));
    let engine = server.engine().clone();
    let running = start(server).await;

    let in_flight = tokio::spawn({
        let base = running.base.clone();
        async move { post_event(&base, &event("m-1")).await }
    });
    cio.wait_arrived(1).await;

    running.stop.send(()).unwrap();
    let report = readyz_until(&running.base, |r| r["ready"] == false).await;
    assert_eq!(
        check(&report, "server")["reason"],
        "shutting_down",
        "{report}"
    );
    // A new request during the drain: a fast 503 saying so, and nothing sent.
    let (status, body) = post_event(&running.base, &event("m-2")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["problems"][0]["kind"], "shutting_down", "{body}");
    assert!(
        !running.task.is_finished(),
        "the drain waits for the request in flight"
    );

    // Customer.io answers: the request in flight gets its 200, then the server stops.
    cio.release.add_permits(1);
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(
        (status, body["delivered"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    running.task.await.unwrap().unwrap();
    assert!(engine.customerio.is_closed());
    assert_eq!(cio.arrived(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_end_of_the_grace_what_is_in_flight_is_answered_503_then_the_engine_stops() {
    let cio = held_customerio().await;
    let mut options = ServeOptions::default();
    options.shutdown_grace = Some(Duration::from_millis(300));
    let server = Server::build(
        cio_env(cio.url.clone()),
        config("[triggers.dispatcher]\nlinger_ms = 1\n\n[server]\nsegment_deadline_ms = 60000\n"),
        options,
    )
    .await
    .unwrap();
    let engine = server.engine().clone();
    let running = start(server).await;

    let in_flight = tokio::spawn({
        let base = running.base.clone();
        async move { post_event(&base, &event("m-1")).await }
    });
    cio.wait_arrived(1).await;
    running.stop.send(()).unwrap();

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["problems"][0]["kind"], "shutting_down", "{body}");
    // The engine's shutdown waits for the dispatcher's request; Customer.io answers it.
    assert!(!running.task.is_finished());
    cio.release.add_permits(1);
    running.task.await.unwrap().unwrap();
    assert!(engine.customerio.is_closed());
    let stats = engine.customerio.stats();
    assert_eq!((stats.delivered, stats.attempts), (1, 1));
}

#[cfg(feature = "redis-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_when_redis_is_unreachable() {
    use cio_segment_sync::testing::redis_server::TestRedis;

    let mut redis = TestRedis::start().await;
    let env = env(&[("REDIS_URL", redis.url().to_owned())]);
    let mut options = ServeOptions::default();
    options.dry_run = true;
    let server = Server::build(
        env,
        config("[server]\nredis_prefix = \"serve-limits:\"\n"),
        options,
    )
    .await
    .unwrap();
    let running = start(server).await;
    assert_eq!(readyz(&running.base).await.0, 200);
    redis.kill();
    let report = readyz_until(&running.base, |r| r["ready"] == false).await;
    let stores = check(&report, "stores");
    assert!(
        stores["reason"] == "unreachable" || stores["reason"] == "timed_out",
        "{report}"
    );
    redis.restart().await;
    readyz_until(&running.base, |r| r["ready"] == true).await;
    running.stop.send(()).unwrap();
    running.task.await.unwrap().unwrap();
}
