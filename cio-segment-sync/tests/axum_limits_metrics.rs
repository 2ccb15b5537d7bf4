//! With the `metrics` feature, every request the webhook routes refuse is counted as
//! `cio_segment_sync_http_rejected_total{route, reason}`. (Built only with `--features
//! axum,metrics`; one test, because the recorder is process-wide.)

mod metrics_support;

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cio_segment_sync::axum::{Endpoints, routes};
use cio_segment_sync::http::{RequestRate, SegmentEndpoint};
use cio_segment_sync::outcome::Outcome;
use cio_segment_sync::pipeline::{Pipeline, PipelineError};
use cio_segment_sync::segment_model::Message;
use metrics_support::Capture;
use tokio::sync::{Semaphore, watch};

/// A rejection counter's value.
fn rejected(capture: &Capture, route: &str, reason: &str) -> u64 {
    capture.get(&format!(
        "cio_segment_sync_http_rejected_total{{reason={reason},route={route}}}"
    ))
}

/// Holds every message until released.
#[derive(Debug)]
struct Held {
    release: Semaphore,
    entered: watch::Sender<usize>,
}

#[async_trait]
impl Pipeline for Held {
    async fn process(&self, _: &Message) -> Result<Outcome, PipelineError> {
        self.entered.send_modify(|n| *n += 1);
        self.release.acquire().await.unwrap().forget();
        Ok(Outcome::Delivered)
    }
}

async fn post(base: &str, body: Vec<u8>) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/segment"))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn event(id: u32) -> Vec<u8> {
    format!(r#"{{"type":"track","messageId":"m-{id}","userId":"u-1","event":"Paid"}}"#).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_counted_by_route_and_reason() {
    let capture = Capture::default();
    metrics::set_global_recorder(capture.clone()).unwrap();

    let held = Arc::new(Held {
        release: Semaphore::new(0),
        entered: watch::Sender::new(0),
    });
    let segment = Arc::new(SegmentEndpoint::builder(held.clone()).build().unwrap());
    let endpoints = Endpoints::new()
        .with_segment(segment)
        .with_concurrency_limit(NonZeroUsize::new(1).unwrap())
        .with_body_limit(NonZeroUsize::new(128).unwrap())
        .with_rate_limit(
            RequestRate::new(NonZeroU32::new(4).unwrap(), Duration::from_secs(3600)).unwrap(),
        );
    let drain = endpoints.drain();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes::<()>(endpoints)).await });

    // 1: admitted and held (rate 1 of 4).
    let in_flight = tokio::spawn({
        let base = base.clone();
        async move { post(&base, event(1)).await }
    });
    let _ = held.entered.subscribe().wait_for(|n| *n >= 1).await;
    // 2: at the concurrency limit (rate 2 of 4).
    assert_eq!(post(&base, event(2)).await, 503);
    assert_eq!(rejected(&capture, "segment", "overloaded"), 1);
    // 3: admitted once the first is answered, but its body is over the limit (rate 3 of 4).
    held.release.add_permits(1);
    assert_eq!(in_flight.await.unwrap(), 200);
    assert_eq!(post(&base, vec![b' '; 129]).await, 413);
    assert_eq!(rejected(&capture, "segment", "too_large"), 1);
    // 4: admitted and held again (rate 4 of 4).
    let in_flight = tokio::spawn({
        let base = base.clone();
        async move { post(&base, event(4)).await }
    });
    let _ = held.entered.subscribe().wait_for(|n| *n >= 2).await;
    // 5: over the rate.
    assert_eq!(post(&base, event(5)).await, 503);
    assert_eq!(rejected(&capture, "segment", "rate_limited"), 1);
    // The drain: the held one is cut short at the end of its grace; a new one is refused.
    let report = drain.run(Duration::from_millis(200)).await;
    assert_eq!(report.cut_short, 1);
    assert_eq!(in_flight.await.unwrap(), 503);
    assert_eq!(rejected(&capture, "segment", "grace_ended"), 1);
    assert_eq!(post(&base, event(6)).await, 503);
    assert_eq!(rejected(&capture, "segment", "shutting_down"), 1);
    assert_eq!(rejected(&capture, "segment", "overloaded"), 1);
    held.release.add_permits(1);
}
