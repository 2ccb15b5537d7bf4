//! With the `metrics` feature, the engagement back-sync and the new-subscriber backfill report
//! every answer under the router's metric names with their own `flow` label, plus the duration
//! histogram. A *local* recorder captures them (no global state): the whole run happens on one
//! thread inside `metrics::with_local_recorder`.

mod metrics_support;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use cio_segment_sync::customerio_client::track::v2::Operation;
use cio_segment_sync::customerio_client::webhook::{
    ReportingEvent, SignatureVerifier, WebhookSigningKey,
};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dedupe::{Claim, Deduper, MemoryDeduper};
use cio_segment_sync::dispatch::sinks::SegmentTrackingSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig};
use cio_segment_sync::flows::backfill::{BackfillConfig, BackfillFlow, BackfillPerson};
use cio_segment_sync::flows::engagement::{
    DEDUPE_KEY_PREFIX, EngagementConfig, EngagementError, EngagementFlow, SignedRequest,
    message_id_for,
};
use cio_segment_sync::flows::metrics::{MESSAGE_DURATION_SECONDS, MESSAGES_TOTAL};
use cio_segment_sync::loop_guard::StampingLoopGuard;
use cio_segment_sync::outcome::{Outcome, SkipReason};
use cio_segment_sync::pipeline::{Deliver, DeliverError, Delivered};
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::client::BaseUrl;
use cio_segment_sync::segment_model::client::profile::{AccessToken, ProfileClient};
use cio_segment_sync::segment_model::client::tracking::{TrackingClient, WriteKey};
use metrics_support::Capture;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Every answer metric (messages and durations), by name and labels.
fn answers(capture: &Capture) -> BTreeMap<String, u64> {
    capture
        .names()
        .into_iter()
        .filter(|name| {
            name.starts_with(MESSAGES_TOTAL) || name.starts_with(MESSAGE_DURATION_SECONDS)
        })
        .map(|name| {
            let value = capture.get(&name);
            (name, value)
        })
        .collect()
}

/// Runs `test` on one thread with `capture` as the thread's recorder.
fn with_capture<F: std::future::Future<Output = ()>>(capture: &Capture, test: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(capture, || runtime.block_on(test));
}

fn expected(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
    entries
        .iter()
        .map(|(name, count)| ((*name).to_owned(), *count))
        .collect()
}

const SIGNING_KEY: &str = "reporting-webhook-signing-key";
const SIGNED_AT: u64 = 1_717_173_005;
/// `Basic base64("wk:")`.
const SEGMENT_AUTH: &str = "Basic d2s6";

fn reporting(event_id: &str, object_type: &str, metric: &str, id: &str) -> Value {
    json!({
        "event_id": event_id, "object_type": object_type, "metric": metric,
        "timestamp": 1_717_173_000, "data": {"identifiers": {"id": id}, "delivery_id": "D1"}
    })
}

/// Hands `flow` the webhook `body` with the headers Customer.io sends, `signature` included.
async fn receive(
    flow: &EngagementFlow,
    signature: &str,
    body: &[u8],
) -> Result<Outcome, EngagementError> {
    let timestamp = SIGNED_AT.to_string();
    let request = SignedRequest {
        timestamp: Some(timestamp.as_bytes()),
        signature: Some(signature.as_bytes()),
        body,
    };
    flow.receive(request, UNIX_EPOCH + Duration::from_secs(SIGNED_AT))
        .await
}

#[test]
fn every_engagement_answer_is_counted_with_its_flow_and_timed() {
    let capture = Capture::default();
    with_capture(&capture, async {
        let segment = MockServer::start().await;
        let opened_id = message_id_for("E-opened");
        Mock::given(method("POST"))
            .and(path("/v1/batch"))
            .and(header("authorization", SEGMENT_AUTH))
            .and(move |request: &Request| {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
                let batch = body["batch"].as_array().cloned().unwrap_or_default();
                batch.len() == 1
                    && batch[0]["event"] == "Email Opened"
                    && batch[0]["messageId"] == opened_id.as_str()
                    && batch[0]["userId"] == "user-42"
            })
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
            .expect(1)
            .mount(&segment)
            .await;
        let tracking = TrackingClient::builder(WriteKey::new("wk"))
            .base_url(BaseUrl::parse(&segment.uri()).unwrap())
            .build()
            .unwrap();
        let dead_letters = Arc::new(MemoryDeadLetters::new(10));
        let (handle, worker) = Dispatcher::spawn(
            SegmentTrackingSink::new(tracking),
            DispatcherConfig::default()
                .with_max_items(NonZeroUsize::MIN)
                .with_linger(Duration::from_millis(1)),
            Arc::new(Unlimited),
            dead_letters.clone(),
        );
        let deduper = Arc::new(MemoryDeduper::default());
        let flow = EngagementFlow::new(
            EngagementConfig::default(),
            SignatureVerifier::new(WebhookSigningKey::new(SIGNING_KEY).unwrap()),
            deduper.clone(),
            Arc::new(StampingLoopGuard::default()),
            handle.clone(),
            dead_letters,
        )
        .unwrap();
        let body =
            serde_json::to_vec(&reporting("E-opened", "email", "opened", "user-42")).unwrap();
        let signature = WebhookSigningKey::new(SIGNING_KEY)
            .unwrap()
            .sign(SIGNED_AT, &body);
        // Delivered, then the same webhook again: a duplicate.
        assert_eq!(
            receive(&flow, &signature, &body).await.unwrap(),
            Outcome::Delivered
        );
        assert_eq!(
            receive(&flow, &signature, &body).await.unwrap(),
            Outcome::Skipped(SkipReason::Duplicate)
        );
        // A forged signature: refused.
        assert!(receive(&flow, "0000", &body).await.is_err());
        // An event with no Segment name: skipped.
        let sent = ReportingEvent::from_value(reporting("E-sent", "email", "sent", "u")).unwrap();
        assert_eq!(
            flow.process(&sent).await.unwrap(),
            Outcome::Skipped(SkipReason::NotMapped("email_sent".into()))
        );
        // Another worker holds the event: retry later.
        let held = reporting("E-held", "email", "clicked", "u");
        let key = format!("{DEDUPE_KEY_PREFIX}E-held");
        assert!(matches!(
            deduper.claim(&key, Duration::from_secs(60)).await.unwrap(),
            Claim::First(_)
        ));
        let held = ReportingEvent::from_value(held).unwrap();
        assert!(flow.process(&held).await.is_err());

        handle.shutdown().await;
        worker.await.unwrap();
        segment.verify().await;
    });
    assert_eq!(
        answers(&capture),
        expected(&[
            (
                "cio_segment_sync_message_duration_seconds{flow=engagement}",
                5
            ),
            (
                "cio_segment_sync_messages_total{flow=engagement,outcome=delivered}",
                1
            ),
            (
                "cio_segment_sync_messages_total{flow=engagement,outcome=refused}",
                1
            ),
            (
                "cio_segment_sync_messages_total{flow=engagement,outcome=retry_later}",
                1
            ),
            (
                "cio_segment_sync_messages_total{flow=engagement,outcome=skipped}",
                2
            ),
        ])
    );
}

/// Accepts every delivery and keeps the operations, as JSON.
#[derive(Debug, Default)]
struct Accept(Mutex<Vec<Value>>);

#[async_trait]
impl Deliver for Accept {
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        _: &str,
    ) -> Result<Delivered, DeliverError> {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::to_value(&operations).unwrap());
        Ok(Delivered::Accepted)
    }
}

/// `Basic base64("tok:")`.
const PROFILE_AUTH: &str = "Basic dG9rOg==";

fn profile_traits(user: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(format!(
            "/v1/spaces/spa_1/collections/users/profiles/user_id:{user}/traits"
        )))
        .and(query_param("limit", "200"))
        .and(header("authorization", PROFILE_AUTH))
}

#[test]
fn every_backfill_answer_is_counted_with_its_flow_and_timed() {
    let capture = Capture::default();
    let deliver = Arc::new(Accept::default());
    with_capture(&capture, async {
        let profiles = MockServer::start().await;
        profile_traits("user-42")
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "traits": {"plan": "pro"},
                "cursor": {"url": "", "has_more": false, "next": ""}
            })))
            .expect(1)
            .mount(&profiles)
            .await;
        profile_traits("user-7")
            .respond_with(ResponseTemplate::new(500))
            .expect(1)
            .mount(&profiles)
            .await;
        profile_traits("user-9")
            .respond_with(ResponseTemplate::new(403))
            .expect(1)
            .mount(&profiles)
            .await;
        let client = ProfileClient::builder(AccessToken::new("tok"), "spa_1")
            .base_url(BaseUrl::parse(&profiles.uri()).unwrap())
            .build()
            .unwrap();
        let flow = BackfillFlow::new(
            BackfillConfig::default(),
            client,
            Arc::new(MemoryDeduper::default()),
            deliver.clone(),
        )
        .unwrap()
        .with_rate_limiter(Arc::new(Unlimited));

        let subscribed = |event_id: &str, id: &str| {
            ReportingEvent::from_value(reporting(event_id, "customer", "subscribed", id)).unwrap()
        };
        // Delivered, then the same webhook again: a duplicate.
        let ada = subscribed("S-1", "user-42");
        assert_eq!(flow.on_event(&ada).await.unwrap(), Outcome::Delivered);
        assert_eq!(
            flow.on_event(&ada).await.unwrap(),
            Outcome::Skipped(SkipReason::Duplicate)
        );
        // Not a subscription: skipped.
        let opened =
            ReportingEvent::from_value(reporting("S-2", "email", "opened", "user-42")).unwrap();
        assert_eq!(
            flow.on_event(&opened).await.unwrap(),
            Outcome::Skipped(SkipReason::Filtered)
        );
        // The Profile API fails: 500 may pass (retry later), 403 never will (refused).
        assert!(flow.on_event(&subscribed("S-3", "user-7")).await.is_err());
        assert!(
            flow.backfill(&BackfillPerson::new().with_id("user-9"))
                .await
                .is_err()
        );
        profiles.verify().await;
    });
    assert_eq!(
        *deliver.0.lock().unwrap(),
        vec![json!([{
            "type": "person", "action": "identify", "identifiers": {"id": "user-42"},
            "attributes": {"plan": "pro"}
        }])]
    );
    assert_eq!(
        answers(&capture),
        expected(&[
            (
                "cio_segment_sync_message_duration_seconds{flow=backfill}",
                5
            ),
            (
                "cio_segment_sync_messages_total{flow=backfill,outcome=delivered}",
                1
            ),
            (
                "cio_segment_sync_messages_total{flow=backfill,outcome=refused}",
                1
            ),
            (
                "cio_segment_sync_messages_total{flow=backfill,outcome=retry_later}",
                1
            ),
            (
                "cio_segment_sync_messages_total{flow=backfill,outcome=skipped}",
                2
            ),
        ])
    );
}
