//! One replica scans churn (features `redis` + `testing`): two engines built by `SyncBuilder`
//! over one real `redis-server` (the same activity data, the same scan lease) and one mocked
//! Customer.io. Exact requests and counts; the lease's expiry is real time on Redis' clock, so
//! the take-over is polled for and its outcome asserted, never a duration.

use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::builder::{SyncBuilder, SyncEngine};
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::flows::churn::{ChurnScanner, ScanRun, ScanStats};
use cio_segment_sync::store::Stores;
use cio_segment_sync::testing::redis_server::TestRedis;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";
const DAY: i64 = 86_400;
/// A fixed "now" for the scans run by hand: 2024-07-01T00:00:00Z.
const NOW: i64 = 1_719_792_000;
/// Everybody's last activity: 45 days before `NOW`.
const LAST: i64 = NOW - 45 * DAY;

/// `[churn]` with the defaults, scans every second (the shortest interval, and so the
/// shortest lease), and a short dispatcher linger.
const CONFIG: &str = "[triggers.dispatcher]\nlinger_ms = 10\n\n[churn]\n\n[server]\nchurn_scan_interval_seconds = 1\n";

/// One replica: its own Redis connections, stores, dispatcher and scanner.
async fn engine(redis: &TestRedis, customerio: &MockServer) -> SyncEngine {
    let config = SyncConfig::from_toml_str(CONFIG, "test").unwrap();
    let client_config = ClientConfig::new(Region::Us)
        .with_track_base_url(&customerio.uri())
        .unwrap();
    let track =
        TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), client_config).unwrap();
    let stores = Stores::redis_for(&redis.config(), &config).await.unwrap();
    let (engine, workers) = SyncBuilder::new(track, config)
        .stores(stores)
        .build()
        .unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    engine
}

fn scanner(engine: &SyncEngine) -> Arc<ChurnScanner> {
    engine.churn_scanner.clone().expect("[churn] is configured")
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

/// The request enrolling `person` (last active at `LAST`) in a scan at `now`.
fn enrolment(person: &str, now: i64) -> Value {
    let id = event_id(&format!("churn:churn_risk:{person}"), LAST * 1000).to_string();
    json!({"batch": [
        {"type": "person", "action": "event", "identifiers": {"id": person},
         "name": "churn_risk", "id": id, "timestamp": now,
         "attributes": {"days_inactive": (now - LAST) / DAY, "last_seen": LAST}},
        {"type": "person", "action": "identify", "identifiers": {"id": person},
         "attributes": {"churn_risk_since": LAST + 30 * DAY}},
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_asking_at_once_scan_once_and_send_one_enrolment() {
    let redis = TestRedis::start().await;
    let customerio = MockServer::start().await;
    // The answer takes a while, so without the lease both replicas would list the person
    // before either stored the enrolment, and both would send it.
    cio_batch()
        .and(body_json(enrolment("u-1", NOW)))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&customerio)
        .await;
    nothing_else(&customerio).await;
    let (one, two) = (
        engine(&redis, &customerio).await,
        engine(&redis, &customerio).await,
    );
    let monitor = one.churn.clone().unwrap();
    monitor.record("u-1", LAST).await.unwrap();

    let (a, b) = (scanner(&one), scanner(&two));
    let (first, second) = tokio::join!(a.run_once(NOW), b.run_once(NOW));
    let mut runs = [first.unwrap(), second.unwrap()];
    runs.sort_by_key(|run| matches!(run, ScanRun::HeldElsewhere));
    let [ScanRun::Scanned(totals), ScanRun::HeldElsewhere] = runs else {
        panic!("expected one scan and one skip, got {runs:?}");
    };
    assert_eq!((totals.enrolled, totals.failed), (1, 0));
    // Enrolled in the shared store: the other replica sees it.
    let other = two.churn.clone().unwrap();
    assert_eq!(
        other.scan(NOW, None).await.unwrap().enrolled,
        0,
        "enrolled twice"
    );
    customerio.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_running_replicas_scan_once_per_interval() {
    let redis = TestRedis::start().await;
    let customerio = MockServer::start().await;
    // The scanners use the system clock: match the enrolment by its event id (derived from
    // the person and their last activity, not from the scan's time) and the attribute.
    let id = event_id("churn:churn_risk:u-1", LAST * 1000).to_string();
    cio_batch()
        .and(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            body["batch"].as_array().map(Vec::len) == Some(2)
                && body["batch"][0]["id"] == id.as_str()
                && body["batch"][1]["attributes"]["churn_risk_since"] == LAST + 30 * DAY
        })
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&customerio)
        .await;
    nothing_else(&customerio).await;
    let (one, two) = (
        engine(&redis, &customerio).await,
        engine(&redis, &customerio).await,
    );
    one.churn
        .clone()
        .unwrap()
        .record("u-1", LAST)
        .await
        .unwrap();

    let (a, b) = (scanner(&one), scanner(&two));
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let run = |scanner: Arc<ChurnScanner>, stopped: tokio::sync::oneshot::Receiver<()>| {
        tokio::spawn(async move {
            scanner
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    let (task_a, task_b) = (run(a.clone(), stopped_a), run(b.clone(), stopped_b));
    // Let each replica have its turn at three intervals (polled; bounded against a hang).
    let turns = |s: ScanStats| s.scans + s.skipped + s.errors;
    for _ in 0..300 {
        if turns(a.stats()) >= 3 && turns(b.stats()) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    task_a.await.unwrap();
    task_b.await.unwrap();

    let (a, b) = (a.stats(), b.stats());
    assert!(turns(a) >= 3 && turns(b) >= 3, "{a:?} {b:?}");
    assert_eq!((a.errors, b.errors), (0, 0), "{a:?} {b:?}");
    // At each interval one replica scanned and the other found the lease taken.
    assert!(
        a.scans + b.scans >= 1 && a.skipped + b.skipped >= 1,
        "{a:?} {b:?}"
    );
    assert_eq!(a.enrolled + b.enrolled, 1, "{a:?} {b:?}");
    customerio.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_lease_holder_stops_the_other_replica_takes_over() {
    let redis = TestRedis::start().await;
    let customerio = MockServer::start().await;
    for person in ["u-1", "u-2"] {
        cio_batch()
            .and(body_json(enrolment(person, NOW)))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&customerio)
            .await;
    }
    nothing_else(&customerio).await;
    let (one, two) = (
        engine(&redis, &customerio).await,
        engine(&redis, &customerio).await,
    );
    one.churn
        .clone()
        .unwrap()
        .record("u-1", LAST)
        .await
        .unwrap();
    let (a, b) = (scanner(&one), scanner(&two));
    assert!(matches!(a.run_once(NOW).await.unwrap(), ScanRun::Scanned(t) if t.enrolled == 1));
    assert_eq!(b.run_once(NOW).await.unwrap(), ScanRun::HeldElsewhere);

    // Replica one stops without releasing its lease (a crash); more inactive data arrives.
    drop((a, one));
    two.churn
        .clone()
        .unwrap()
        .record("u-2", LAST)
        .await
        .unwrap();
    // Its lease runs out on Redis' clock (one interval); then replica two scans.
    let mut took_over = None;
    for _ in 0..200 {
        match b.run_once(NOW).await.unwrap() {
            ScanRun::HeldElsewhere => tokio::time::sleep(Duration::from_millis(50)).await,
            ScanRun::Scanned(totals) => {
                took_over = Some(totals);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let totals = took_over.expect("the crashed holder's lease never expired");
    assert_eq!((totals.enrolled, totals.failed), (1, 0));
    assert!(b.stats().skipped >= 1);
    customerio.verify().await;
}
