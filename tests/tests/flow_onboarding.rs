//! Flow 2 end to end: `OnboardingFlow` → dispatcher → a wiremock Customer.io. Out-of-order and
//! repeated milestones with exact bodies and exact request counts.

mod support_flows_a;

use std::sync::Arc;

use cio_segment_sync::flows::onboarding::{
    MemoryProgressStore, Milestone, OnboardingConfig, OnboardingFlow, ProgressStore, StepValue,
};
use cio_segment_sync::identity::SkipReason;
use cio_segment_sync::pipeline::{Outcome, Pipeline};
use serde_json::{Value, json};
use support_flows_a::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config() -> OnboardingConfig {
    let mut config = OnboardingConfig::default();
    config.milestones = vec![
        Milestone::new("Account Created", "account"),
        Milestone::new("Project Created", "project"),
        Milestone::new("Teammate Invited", "team"),
    ];
    config
}

/// A milestone track of `u-1` at `seconds` after [`AT`].
fn milestone(message_id: &str, event: &str, timestamp: &str) -> Value {
    json!({
        "type": "track", "messageId": message_id, "userId": "u-1", "event": event,
        "timestamp": timestamp
    })
}

fn ops(attributes: Value, event: &str, message_id: &str, at_ms: i64) -> Value {
    json!([
        {"type": "person", "action": "identify", "identifiers": {"id": "u-1"},
         "attributes": attributes},
        {"type": "person", "action": "event", "identifiers": {"id": "u-1"}, "name": event,
         "id": cio_segment_sync::customerio_client::event_id::event_id(message_id, at_ms).to_string(),
         "timestamp": at_ms / 1000}
    ])
}

const T1: &str = "2024-05-01T10:00:00.000Z";
const T1_MS: i64 = 1_714_557_600_000;
const T2: &str = "2024-05-02T10:00:00.000Z";
const T2_MS: i64 = T1_MS + 86_400_000;
const T3: &str = "2024-05-03T10:00:00.000Z";
const T3_MS: i64 = T2_MS + 86_400_000;
const T4: &str = "2024-05-04T10:00:00.000Z";
const T4_MS: i64 = T3_MS + 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_and_repeated_milestones_never_move_the_step_backwards() {
    let server = MockServer::start().await;
    // 1. "project" first: step project.
    expect_batch(
        &server,
        ops(
            json!({"onboarding_project_at": T2_MS / 1000, "onboarding_step": "project"}),
            "Project Created",
            "m-project",
            T2_MS,
        ),
        1,
    )
    .await;
    // 2. "account" late: its time recorded, the step stays at project.
    expect_batch(
        &server,
        ops(
            json!({"onboarding_account_at": T1_MS / 1000, "onboarding_step": "project"}),
            "Account Created",
            "m-account",
            T1_MS,
        ),
        1,
    )
    .await;
    // 3. "project" again (another messageId): its time again, the step stays.
    expect_batch(
        &server,
        ops(
            json!({"onboarding_project_at": T3_MS / 1000, "onboarding_step": "project"}),
            "Project Created",
            "m-project-again",
            T3_MS,
        ),
        1,
    )
    .await;
    // 4. "team": the step moves on.
    expect_batch(
        &server,
        ops(
            json!({"onboarding_team_at": T4_MS / 1000, "onboarding_step": "team"}),
            "Teammate Invited",
            "m-team",
            T4_MS,
        ),
        1,
    )
    .await;
    let (deliver, handle, _dead) = deliver(&server);
    let progress = Arc::new(MemoryProgressStore::default());
    let flow = OnboardingFlow::builder(deliver, config())
        .progress_store(progress.clone())
        .build()
        .unwrap();

    let steps = [
        ("m-project", "Project Created", T2, 2),
        ("m-account", "Account Created", T1, 2),
        ("m-project-again", "Project Created", T3, 2),
        ("m-team", "Teammate Invited", T4, 3),
    ];
    for (message_id, event, at, stored) in steps {
        let outcome = flow
            .process(&message(milestone(message_id, event, at)))
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Delivered, "{message_id}");
        assert_eq!(
            progress.get("u-1").await.unwrap(),
            Some(stored),
            "{message_id}"
        );
    }
    // The same messageId again: a duplicate, nothing sent.
    assert_eq!(
        flow.process(&message(milestone("m-team", "Teammate Invited", T4)))
            .await
            .unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    // Not a milestone: filtered, nothing sent.
    assert_eq!(
        flow.process(&message(milestone("m-other", "Logged In", T4)))
            .await
            .unwrap(),
        Outcome::Skipped(SkipReason::Filtered)
    );
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_steps_without_forwarding_send_only_the_attributes() {
    let server = MockServer::start().await;
    expect_batch(
        &server,
        json!([{"type": "person", "action": "identify", "identifiers": {"id": "u-1"},
                "attributes": {"onboarding_team_at": T4_MS / 1000, "onboarding_step": 3}}]),
        1,
    )
    .await;
    expect_batch(
        &server,
        json!([{"type": "person", "action": "identify", "identifiers": {"id": "u-1"},
                "attributes": {"onboarding_account_at": T1_MS / 1000, "onboarding_step": 3}}]),
        1,
    )
    .await;
    let (deliver, handle, _dead) = deliver(&server);
    let mut config = config();
    config.step_value = StepValue::Index;
    config.forward_event = false;
    let flow = OnboardingFlow::builder(deliver, config).build().unwrap();
    for (message_id, event, at) in [
        ("m-team", "Teammate Invited", T4),
        ("m-account", "Account Created", T1),
    ] {
        assert_eq!(
            flow.process(&message(milestone(message_id, event, at)))
                .await
                .unwrap(),
            Outcome::Delivered
        );
    }
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_delivery_leaves_the_progress_store_behind_customerio() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"errors": [
            {"reason": "invalid", "field": "attributes", "message": "refused"}
        ]})))
        // The two operations together, then (the dispatcher splits a refused batch to find
        // the bad operation) each alone: three requests, all refused.
        .expect(3)
        .mount(&server)
        .await;
    let (deliver, handle, dead) = deliver(&server);
    let progress = Arc::new(MemoryProgressStore::default());
    let flow = OnboardingFlow::builder(deliver, config())
        .progress_store(progress.clone())
        .build()
        .unwrap();
    let outcome = flow
        .process(&message(milestone("m-team", "Teammate Invited", T4)))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::DeadLettered(_)), "{outcome:?}");
    assert_eq!(progress.get("u-1").await.unwrap(), None);
    assert!(!dead.entries().is_empty());
    handle.shutdown().await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_milestone_is_skipped_without_a_request() {
    let server = MockServer::start().await;
    let (deliver, handle, _dead) = deliver(&server);
    let flow = OnboardingFlow::builder(deliver, config()).build().unwrap();
    let anonymous = json!({
        "type": "track", "messageId": "m-1", "anonymousId": "a-9", "event": "Account Created",
        "timestamp": T1
    });
    assert_eq!(
        flow.process(&message(anonymous)).await.unwrap(),
        Outcome::Skipped(SkipReason::AnonymousNotAllowed)
    );
    handle.shutdown().await;
    assert!(received(&server).await.is_empty());
}
