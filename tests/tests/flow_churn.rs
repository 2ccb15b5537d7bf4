//! Flow 3, churn prevention, end to end: the `ChurnMonitor` delivering through the real
//! dispatcher and `CustomerIoBatchSink` to a wiremock Customer.io. Exact requests, exact
//! counts; real sockets, so short real delays and no assertion on durations.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::activity::{ActivityStore, MemoryActivityStore};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dispatch::sinks::CustomerIoBatchSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle, RetryPolicy};
use cio_segment_sync::flows::churn::{ChurnConfig, ChurnMonitor};
use cio_segment_sync::rate_limit::Unlimited;
use customerio_client::event_id::event_id;
use customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";
const DAY: i64 = 86_400;
/// A fixed "now" for the scans: 2024-07-01T00:00:00Z.
const NOW: i64 = 1_719_792_000;

struct Harness {
    monitor: ChurnMonitor,
    store: Arc<MemoryActivityStore>,
    handle: DispatcherHandle<CustomerIoBatchSink>,
}

fn harness(server: &MockServer, config: ChurnConfig, dispatch: DispatcherConfig) -> Harness {
    let client_config = ClientConfig::new(Region::Us)
        .with_track_base_url(&server.uri())
        .unwrap();
    let client =
        TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), client_config).unwrap();
    let (handle, _worker) = Dispatcher::spawn(
        CustomerIoBatchSink::new(client),
        dispatch,
        Arc::new(Unlimited),
        Arc::new(MemoryDeadLetters::new(100)),
    );
    let store = Arc::new(MemoryActivityStore::default());
    let monitor = ChurnMonitor::new(config, store.clone(), Arc::new(handle.clone())).unwrap();
    Harness {
        monitor,
        store,
        handle,
    }
}

fn dispatch_config() -> DispatcherConfig {
    DispatcherConfig::default()
        .with_linger(Duration::from_millis(20))
        .with_attempt_timeout(Duration::from_secs(5))
        .with_retry(
            RetryPolicy::default()
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(20))
                .with_jitter_seed(3),
        )
}

fn cio_batch() -> MockBuilder {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .and(header("content-type", "application/json"))
}

/// Any request no other mock matched: answered 500 and expected never.
async fn nothing_else(server: &MockServer) {
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .with_priority(u8::MAX)
        .expect(0)
        .mount(server)
        .await;
}

fn enrolment(person: &str, last_active: i64, now: i64) -> Vec<Value> {
    let id = event_id(&format!("churn:churn_risk:{person}"), last_active * 1000).to_string();
    vec![
        json!({"type": "person", "action": "event", "identifiers": {"id": person},
               "name": "churn_risk", "id": id, "timestamp": now,
               "attributes": {"days_inactive": (now - last_active) / DAY,
                              "last_seen": last_active}}),
        json!({"type": "person", "action": "identify", "identifiers": {"id": person},
               "attributes": {"churn_risk_since": last_active + 30 * DAY}}),
    ]
}

#[tokio::test]
async fn inactive_person_is_enrolled_once_with_event_and_attribute() {
    let server = MockServer::start().await;
    let last_active = NOW - 45 * DAY;
    cio_batch()
        .and(body_json(
            json!({"batch": enrolment("user-42", last_active, NOW)}),
        ))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    let h = harness(&server, ChurnConfig::default(), dispatch_config());
    h.monitor.record("user-42", last_active).await.unwrap();
    // Active recently: never listed.
    h.monitor.record("user-7", NOW - DAY).await.unwrap();

    let first = h.monitor.scan(NOW, None).await.unwrap();
    assert_eq!((first.enrolled, first.skipped, first.failed), (1, 0, 0));
    assert!(first.next.is_none());
    assert_eq!(
        h.store.get("user-42").await.unwrap(),
        Some((last_active, true))
    );

    let second = h.monitor.scan(NOW + DAY, None).await.unwrap();
    assert_eq!((second.enrolled, second.skipped, second.failed), (0, 0, 0));
    h.handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn activity_after_enrolment_clears_the_attribute_and_sends_the_reactivation() {
    let server = MockServer::start().await;
    let last_active = NOW - 40 * DAY;
    let back = NOW + 3 * DAY;
    cio_batch()
        .and(body_json(
            json!({"batch": enrolment("user-42", last_active, NOW)}),
        ))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let reactivation_id = event_id("churn:churn_reactivated:user-42", back * 1000).to_string();
    cio_batch()
        .and(body_json(json!({"batch": [
            {"type": "person", "action": "event", "identifiers": {"id": "user-42"},
             "name": "churn_reactivated", "id": reactivation_id, "timestamp": back},
            {"type": "person", "action": "identify", "identifiers": {"id": "user-42"},
             "attributes": {"churn_risk_since": ""}},
        ]})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    let h = harness(&server, ChurnConfig::default(), dispatch_config());
    h.monitor.record("user-42", last_active).await.unwrap();
    assert_eq!(h.monitor.scan(NOW, None).await.unwrap().enrolled, 1);

    let activity = h.monitor.record("user-42", back).await.unwrap();
    assert!(activity.reactivated);
    assert_eq!(h.store.get("user-42").await.unwrap(), Some((back, false)));
    // Later activity is ordinary: nothing more is sent.
    assert!(
        !h.monitor
            .record("user-42", back + 60)
            .await
            .unwrap()
            .reactivated
    );
    h.handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn scans_are_bounded_and_resume_from_the_cursor() {
    let server = MockServer::start().await;
    // Oldest first: p0 … p4, one second apart.
    let people: Vec<(String, i64)> = (0..5)
        .map(|i| (format!("p{i}"), NOW - 60 * DAY + i))
        .collect();
    for (person, last_active) in &people {
        cio_batch()
            .and(body_json(
                json!({"batch": enrolment(person, *last_active, NOW)}),
            ))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
    }
    nothing_else(&server).await;
    let mut config = ChurnConfig::default();
    config.max_per_scan = 2;
    // Two operations per request: each person's enrolment is one request of its own.
    let dispatch = dispatch_config().with_max_items(NonZeroUsize::new(2).unwrap());
    let h = harness(&server, config, dispatch);
    for (person, last_active) in &people {
        h.monitor.record(person, *last_active).await.unwrap();
    }

    let mut cursor = None;
    let mut enrolled_per_scan = Vec::new();
    loop {
        let report = h.monitor.scan(NOW, cursor.as_ref()).await.unwrap();
        enrolled_per_scan.push(report.enrolled);
        assert_eq!(report.failed, 0);
        match report.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(enrolled_per_scan, vec![2, 2, 1]);
    for (person, last_active) in &people {
        assert_eq!(
            h.store.get(person).await.unwrap(),
            Some((*last_active, true))
        );
    }
    h.handle.shutdown().await;
    server.verify().await;
}

#[tokio::test]
async fn a_500_leaves_the_person_unenrolled_and_the_next_scan_delivers() {
    let server = MockServer::start().await;
    let last_active = NOW - 31 * DAY;
    let later = NOW + 3_600;
    let first = enrolment("user-42", last_active, NOW);
    let second = enrolment("user-42", last_active, later);
    // The re-sent enrolment carries the same event id, so Customer.io applies it once.
    assert_eq!(first[0]["id"], second[0]["id"]);
    cio_batch()
        .and(body_json(json!({"batch": first})))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    cio_batch()
        .and(body_json(json!({"batch": second})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    // One attempt per request: the 500 dead-letters the batch at once.
    let dispatch = dispatch_config().with_retry(RetryPolicy::default().with_max_attempts(1));
    let h = harness(&server, ChurnConfig::default(), dispatch);
    h.monitor.record("user-42", last_active).await.unwrap();

    let failed = h.monitor.scan(NOW, None).await.unwrap();
    assert_eq!((failed.enrolled, failed.failed), (0, 1));
    assert_eq!(
        h.store.get("user-42").await.unwrap(),
        Some((last_active, false))
    );

    let retried = h.monitor.scan(later, None).await.unwrap();
    assert_eq!((retried.enrolled, retried.failed), (1, 0));
    assert_eq!(
        h.store.get("user-42").await.unwrap(),
        Some((last_active, true))
    );
    h.handle.shutdown().await;
    server.verify().await;
}
