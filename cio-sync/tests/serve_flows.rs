//! `cio-sync serve` wiring over real HTTP (127.0.0.1:0, reqwest), with wiremock standing in for
//! Customer.io and Segment: the answers per status (200 / 400 / 413 / 503), the Segment and
//! Customer.io deadlines, the dead-letter file, the back-sync and the backfill behind
//! `POST /customerio`, the churn scan on its interval, a deletion forgetting audience
//! memberships, the status page without personal data, and what refuses to start. The
//! endpoints' own rules are tested in `cio-segment-sync/tests/http_*.rs`; here, that the server
//! builds and mounts them from the environment and the configuration.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::webhook::WebhookSigningKey;
use cio_segment_sync::dead_letter::{DeadLetterReason, read_all};
use cio_segment_sync::flows::engagement::message_id_for;
use cio_sync::serve::{ServeError, ServeOptions, Server};
use serde_json::{Value, json};
use support::{
    AT, AT_S, cio_batch, env_for, expect_batch, post, serve, status_page, track, track_op,
};
use wiremock::matchers::{any, body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// `Basic base64("wk:")`.
const SEGMENT_AUTH: &str = "Basic d2s6";
const SIGNING_KEY: &str = "reporting-webhook-signing-key";

fn config(extra: &str) -> SyncConfig {
    SyncConfig::from_toml_str(
        &format!("[triggers.dispatcher]\nlinger_ms = 5\nmax_attempts = 1\n\n{extra}"),
        "test",
    )
    .unwrap()
}

async fn expect_nothing(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(server)
        .await;
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// POSTs `body` to `/customerio` signed now with [`SIGNING_KEY`], as Customer.io does.
async fn post_signed(base: &str, body: &str) -> (u16, Value) {
    let key = WebhookSigningKey::new(SIGNING_KEY).unwrap();
    let now = unix_now();
    let headers = [
        ("x-cio-timestamp", now.to_string()),
        ("x-cio-signature", key.sign(now, body.as_bytes())),
    ];
    post(base, "/customerio", body.as_bytes(), &headers).await
}

/// The variables of the back-sync: Segment's write key and API at `segment`, and the key
/// Customer.io signs its reporting webhooks with.
fn back_sync_vars(segment: &MockServer) -> [(&'static str, String); 3] {
    [
        ("SEGMENT_WRITE_KEY", "wk".to_owned()),
        ("SEGMENT_API_URL", segment.uri()),
        ("CIO_WEBHOOK_SIGNING_KEY", SIGNING_KEY.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_400_or_413_and_the_status_page_holds_no_personal_data() {
    let cio = MockServer::start().await;
    expect_batch(&cio, json!([track_op("m-1", "person-secret-1")])).await;
    let serving = serve(
        env_for(&cio, &[]),
        config("[server]\nbody_limit_bytes = 65536\n"),
        ServeOptions::default(),
    )
    .await;
    let base = &serving.base;

    let (status, answer) = post(base, "/segment", b"not json", &[]).await;
    assert_eq!(status, 400, "{answer}");
    // A bad item next to a good one: the good one is delivered, the answer names the index
    // and not the person.
    let batch = format!(
        "[{},{}]",
        track("m-1", "person-secret-1"),
        json!({"type": "track", "messageId": "m-2", "userId": "person-secret-2", "event": 5})
    );
    let (status, answer) = post(base, "/segment", batch.as_bytes(), &[]).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["delivered"], 1, "{answer}");
    assert!(!answer.to_string().contains("person-secret"), "{answer}");
    // Over `[server] body_limit_bytes`.
    let (status, _) = post(base, "/segment", &vec![b' '; 64 * 1024 + 1], &[]).await;
    assert_eq!(status, 413);

    let page = status_page(base).await;
    let status: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(status["endpoints"]["segment"]["bad_request"], 2, "{status}");
    assert_eq!(
        status["endpoints"]["segment"]["payload_too_large"], 1,
        "{status}"
    );
    assert_eq!(status["routes"]["triggers"]["delivered"], 1, "{status}");
    assert!(!page.contains("person-secret"), "{page}");
    serving.stop().await;
    cio.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customerio_outage_is_503_at_the_segment_deadline_and_the_retry_finds_it_claimed() {
    let cio = MockServer::start().await;
    // The first attempt fails; the retry waits at least 14 s, long after the test ended.
    cio_batch()
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&cio)
        .await;
    let config = SyncConfig::from_toml_str(
        "[triggers.dispatcher]\nlinger_ms = 5\nmax_attempts = 5\ninitial_backoff_ms = 14000\n\
         max_backoff_ms = 20000\n\n[server]\nsegment_deadline_ms = 300\n",
        "test",
    )
    .unwrap();
    let serving = serve(env_for(&cio, &[]), config, ServeOptions::default()).await;
    let base = &serving.base;
    let body = track("m-1", "u-1").to_string();
    let (status, answer) = post(base, "/segment", body.as_bytes(), &[]).await;
    assert_eq!(status, 503, "{answer}");
    // Segment's retry meanwhile finds the message still claimed: 503 again, nothing sent.
    let (status, answer) = post(base, "/segment", body.as_bytes(), &[]).await;
    assert_eq!(status, 503, "{answer}");
    let status: Value = serde_json::from_str(&status_page(base).await).unwrap();
    assert_eq!(status["endpoints"]["segment"]["deadlines"], 1, "{status}");
    assert_eq!(
        status["endpoints"]["segment"]["service_unavailable"], 2,
        "{status}"
    );
    assert_eq!(
        status["dispatchers"]["customerio"]["delivered"], 0,
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_appended_to_the_file_of_the_options_or_the_config() {
    for from_options in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dead.jsonl");
        let cio = MockServer::start().await;
        cio_batch()
            .and(body_json(json!({"batch": [track_op("d-1", "u-1")]})))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "errors": [{"reason": "invalid", "field": "name", "message": "bad event"}]
            })))
            .expect(1)
            .mount(&cio)
            .await;
        let mut options = ServeOptions::default();
        let config = if from_options {
            options.dead_letter = Some(file.clone());
            config("")
        } else {
            config(&format!(
                "[server]\ndead_letter_file = {:?}\n",
                file.display().to_string()
            ))
        };
        let serving = serve(env_for(&cio, &[]), config, options).await;
        let base = &serving.base;
        // Given up for good: acknowledged, so Segment does not resend it forever.
        let body = track("d-1", "u-1").to_string();
        assert_eq!(post(base, "/segment", body.as_bytes(), &[]).await.0, 200);
        serving.stop().await;
        cio.verify().await;

        let entries = read_all(&file).unwrap();
        assert_eq!(entries.len(), 1, "from_options = {from_options}");
        assert_eq!(entries[0].item, track_op("d-1", "u-1"));
        assert!(
            matches!(
                &entries[0].reason,
                DeadLetterReason::RejectedByServer { .. }
            ),
            "{:?}",
            entries[0].reason
        );
    }
}

/// A Customer.io reporting webhook: an email click.
fn clicked() -> String {
    json!({
        "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": "email", "metric": "clicked",
        "timestamp": 1_717_173_000,
        "data": {
            "identifiers": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c106000001"},
            "customer_id": "user-42", "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "campaign_id": 5, "campaign_name": "Trial ending", "action_id": 96,
            "recipient": "ada@example.com", "subject": "Your trial ends soon",
            "href": "https://example.com/upgrade", "link_id": 3, "machine": false
        }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_reporting_webhook_is_sent_to_segment_once() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    expect_nothing(&cio).await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(header("authorization", SEGMENT_AUTH))
        .and(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let event = &body["batch"][0];
            body["batch"].as_array().map(Vec::len) == Some(1)
                && event["event"] == "Email Link Clicked"
                && event["userId"] == "user-42"
                && event["messageId"] == message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ").as_str()
        })
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&segment)
        .await;
    let more = back_sync_vars(&segment);
    let config = config("[server.segment_dispatcher]\nlinger_ms = 5\nmax_attempts = 1\n");
    let serving = serve(env_for(&cio, &more), config, ServeOptions::default()).await;
    let base = &serving.base;
    let body = clicked();
    let (status, answer) = post_signed(base, &body).await;
    assert_eq!(status, 200, "{answer}");
    // Customer.io's retry of the same event_id is acknowledged and not sent again.
    let (status, answer) = post_signed(base, &body).await;
    assert_eq!(status, 200, "{answer}");
    let status: Value = serde_json::from_str(&status_page(base).await).unwrap();
    assert_eq!(status["endpoints"]["customerio"]["ok"], 2, "{status}");
    assert_eq!(status["dispatchers"]["segment"]["delivered"], 1, "{status}");
    serving.stop().await;
    segment.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_webhook_backfills_the_profile_into_customerio() {
    let cio = MockServer::start().await;
    let profiles = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/v1/spaces/spa_1/collections/users/profiles/user_id:user-42/traits",
        ))
        // `Basic base64("tok:")`.
        .and(header("authorization", "Basic dG9rOg=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {"email": "ada@example.com", "plan": "pro"},
            "cursor": {"url": "/v1/...", "has_more": false, "next": ""}
        })))
        .expect(1)
        .mount(&profiles)
        .await;
    expect_batch(
        &cio,
        json!([{
            "type": "person", "action": "identify", "identifiers": {"id": "user-42"},
            "attributes": {"email": "ada@example.com", "plan": "pro"}
        }]),
    )
    .await;
    let more = [
        ("SEGMENT_PROFILE_TOKEN", "tok".to_owned()),
        ("SEGMENT_SPACE_ID", "spa_1".to_owned()),
        ("SEGMENT_PROFILE_URL", profiles.uri()),
        ("CIO_WEBHOOK_SIGNING_KEY", SIGNING_KEY.to_owned()),
    ];
    let serving = serve(env_for(&cio, &more), config(""), ServeOptions::default()).await;
    let base = &serving.base;
    let body = json!({
        "event_id": "01HSUB0000000000000000001", "object_type": "customer",
        "metric": "subscribed", "timestamp": 1_717_173_000,
        "data": {
            "identifiers": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c106000001"},
            "customer_id": "", "email_address": null
        }
    })
    .to_string();
    let (status, answer) = post_signed(base, &body).await;
    assert_eq!(status, 200, "{answer}");
    serving.stop().await;
    profiles.verify().await;
    cio.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_churn_scan_runs_on_its_interval_and_enrols_the_inactive() {
    let cio = MockServer::start().await;
    expect_batch(&cio, json!([track_op("m-1", "u-1")])).await;
    // The enrolment: the churn event (its id derived from the last activity) and the attribute.
    let enrolment = event_id("churn:churn_risk:u-1", AT_S * 1000).to_string();
    cio_batch()
        .and(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            body["batch"][0]["name"] == "churn_risk"
                && body["batch"][0]["id"] == enrolment.as_str()
                && body["batch"][1]["attributes"]["churn_risk_since"].is_i64()
        })
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&cio)
        .await;
    let config = config("[churn]\n\n[server]\nchurn_scan_interval_seconds = 1\n");
    let serving = serve(env_for(&cio, &[]), config, ServeOptions::default()).await;
    let base = &serving.base;
    // An event of 2024 is the person's last activity: long inactive by now.
    let body = track("m-1", "u-1").to_string();
    assert_eq!(post(base, "/segment", body.as_bytes(), &[]).await.0, 200);
    // The first scan runs one interval after the start; later scans enrol nobody again.
    let mut waited = Duration::ZERO;
    while cio.received_requests().await.unwrap().len() < 2 && waited < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // The status page counts the scans: this one replica holds the lease every interval.
    let status: Value = serde_json::from_str(&status_page(base).await).unwrap();
    let scan = &status["churn_scan"];
    assert_eq!(scan["enrolled"], 1, "{status}");
    assert!(scan["scans"].as_u64().unwrap() >= 1, "{status}");
    assert_eq!(
        (&scan["skipped"], &scan["errors"]),
        (&json!(0), &json!(0)),
        "{status}"
    );
    serving.stop().await;
    cio.verify().await;
    assert_eq!(cio.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn sections_that_cannot_work_and_an_unopenable_dead_letter_file_stop_the_build() {
    let cio = MockServer::start().await;
    // Creating missing segments needs the App API key.
    let error = Server::build(
        env_for(&cio, &[]),
        config("[audience]\ncreate_missing = true\n"),
        ServeOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, ServeError::Build(_)), "{error:?}");
    assert!(error.to_string().contains("[audience]"), "{error}");

    let mut options = ServeOptions::default();
    options.dead_letter = Some("/definitely/not/here/dead.jsonl".into());
    let error = Server::build(env_for(&cio, &[]), config(""), options)
        .await
        .unwrap_err();
    assert!(matches!(error, ServeError::DeadLetterFile(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_forgets_the_person_in_the_audience_store_too() {
    let cio = MockServer::start().await;
    let serving = serve(
        env_for(&cio, &[]),
        config("[audience.segments]\nvip = 7\n"),
        ServeOptions::default(),
    )
    .await;
    let base = &serving.base;
    let entered = |message_id: &str, timestamp: &str| {
        json!({"type": "track", "messageId": message_id, "userId": "u-1",
               "event": "Audience Entered", "timestamp": timestamp,
               "properties": {"audience_key": "vip", "vip": true},
               "context": {"personas": {"computation_class": "audience",
                                        "computation_key": "vip"}}})
        .to_string()
    };
    let add = || {
        Mock::given(method("POST"))
            .and(path("/api/v1/segments/7/add_customers"))
            .and(body_json(json!({"ids": ["u-1"]})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
    };
    let mounted = cio.register_as_scoped(add()).await;
    let body = entered("e-2", "2024-05-02T00:00:00Z");
    assert_eq!(post(base, "/segment", body.as_bytes(), &[]).await.0, 200);
    drop(mounted);
    // An older change is stale while the membership is remembered: nothing is sent.
    let body = entered("e-1", "2024-05-01T00:00:00Z");
    assert_eq!(post(base, "/segment", body.as_bytes(), &[]).await.0, 200);
    assert_eq!(cio.received_requests().await.unwrap().len(), 1);

    let mounted = cio
        .register_as_scoped(
            cio_batch()
                .and(body_json(json!({"batch": [{
                    "type": "person", "action": "delete", "identifiers": {"id": "u-1"}
                }]})))
                .respond_with(ResponseTemplate::new(200))
                .expect(1),
        )
        .await;
    let delete = json!({"type": "track", "messageId": "del-1", "userId": "u-1",
                        "event": "User Deleted", "timestamp": AT})
    .to_string();
    assert_eq!(post(base, "/segment", delete.as_bytes(), &[]).await.0, 200);
    drop(mounted);
    // Forgotten after Customer.io accepted the delete: the same older change is new again.
    let mounted = cio.register_as_scoped(add()).await;
    let body = entered("e-0", "2024-05-01T00:00:00Z");
    assert_eq!(post(base, "/segment", body.as_bytes(), &[]).await.0, 200);
    drop(mounted);
    assert_eq!(cio.received_requests().await.unwrap().len(), 3);
    serving.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_outage_is_503_at_the_customerio_deadline_never_429_or_500() {
    let cio = MockServer::start().await;
    let segment = MockServer::start().await;
    // The first attempt fails; the retry waits at least 14 s, long after the test ended.
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&segment)
        .await;
    let more = back_sync_vars(&segment);
    let config = config(
        "[server]\ncustomerio_deadline_ms = 300\n\n[server.segment_dispatcher]\nlinger_ms = 5\n\
         max_attempts = 5\ninitial_backoff_ms = 14000\nmax_backoff_ms = 20000\n",
    );
    let serving = serve(env_for(&cio, &more), config, ServeOptions::default()).await;
    let base = &serving.base;
    let body = clicked();
    let (status, answer) = post_signed(base, &body).await;
    assert_eq!(status, 503, "{answer}");
    let status: Value = serde_json::from_str(&status_page(base).await).unwrap();
    assert_eq!(
        status["endpoints"]["customerio"]["deadlines"], 1,
        "{status}"
    );
}
