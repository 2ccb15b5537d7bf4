//! `GET /readyz` over real HTTP with the stores on a real `redis-server` (features `axum`,
//! `redis`, `testing`): ready while Redis answers, 503 `unreachable` once it is killed, ready
//! again after it restarts.

use std::sync::Arc;

use cio_segment_sync::axum::{Endpoints, routes};
use cio_segment_sync::http::{NotReadyReason, Readiness, ReadinessReport};
use cio_segment_sync::store::Stores;
use cio_segment_sync::testing::redis_server::TestRedis;

async fn readyz(base: &str) -> (u16, ReadinessReport) {
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_redis_down_and_back() {
    let mut redis = TestRedis::start().await;
    let stores = Stores::redis(&redis.config()).await.unwrap();
    assert!(stores.is_shared());
    let endpoints = Endpoints::new().with_health(Readiness::new().with_check(Arc::new(stores)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes::<()>(endpoints)).await });

    let (status, report) = readyz(&base).await;
    assert_eq!(status, 200, "{report:?}");
    assert_eq!(report.checks[1].name, "stores");

    redis.kill();
    let (status, report) = readyz(&base).await;
    assert_eq!(status, 503, "{report:?}");
    let stores = &report.checks[1];
    assert!(!stores.ready);
    assert!(
        matches!(
            stores.reason,
            Some(NotReadyReason::Unreachable | NotReadyReason::TimedOut)
        ),
        "{stores:?}"
    );
    assert!(
        report.checks[0].ready,
        "the server itself is not shutting down"
    );

    redis.restart().await;
    // The connection manager reconnects by itself; the first ping after the restart may
    // still meet the broken connection.
    let mut ready = readyz(&base).await;
    for _ in 0..100 {
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ready = readyz(&base).await;
    }
    assert_eq!(ready.0, 200, "{:?}", ready.1);
}
