//! Flow 7 end to end: deletions and suppressions from Segment and direct `forget` calls reach
//! a wiremock Customer.io as exact v2 `delete` / `suppress` operations, and only after it
//! accepted is the person gone from every store.

mod support_flows_a;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cio_segment_sync::StoreError;
use cio_segment_sync::activity::{ActivityStore, MemoryActivityStore};
use cio_segment_sync::flows::forget::{
    Forget, ForgetAction, ForgetActivity, ForgetFlow, ForgetProgress,
};
use cio_segment_sync::flows::onboarding::{MemoryProgressStore, ProgressStore};
use cio_segment_sync::flows::triggers::SegmentToCustomerIo;
use cio_segment_sync::identity::{IdentityKey, IdentityStore, MemoryIdentityStore, SkipReason};
use cio_segment_sync::pipeline::Outcome;
use serde_json::{Value, json};
use support_flows_a::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A host's own per-person store (say, audience membership) taking part through [`Forget`].
#[derive(Debug, Default)]
struct Audience(Mutex<HashSet<String>>);

impl Audience {
    fn contains(&self, person: &str) -> bool {
        self.0.lock().unwrap().contains(person)
    }
}

#[async_trait]
impl Forget for Audience {
    async fn forget(&self, person: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(person);
        Ok(())
    }
}

/// Every store of the flows, holding `u-1` (anonymousId `a-1`, email) and `u-2`.
struct Stores {
    identity: Arc<MemoryIdentityStore>,
    activity: Arc<MemoryActivityStore>,
    progress: Arc<MemoryProgressStore>,
    audience: Arc<Audience>,
}

impl Stores {
    async fn filled() -> Self {
        let stores = Stores {
            identity: Arc::new(MemoryIdentityStore::default()),
            activity: Arc::new(MemoryActivityStore::default()),
            progress: Arc::new(MemoryProgressStore::default()),
            audience: Arc::new(Audience::default()),
        };
        for person in ["u-1", "u-2"] {
            stores
                .identity
                .link(
                    person,
                    &[
                        IdentityKey::AnonymousId(format!("anon-{person}")),
                        IdentityKey::email(&format!("{person}@example.com")),
                    ],
                )
                .await
                .unwrap();
            stores.activity.record(person, 1_700_000_000).await.unwrap();
            stores.progress.advance(person, 2).await.unwrap();
            stores.audience.0.lock().unwrap().insert(person.to_owned());
        }
        stores
    }

    /// Whether any store still knows `person`.
    async fn knows(&self, person: &str) -> Vec<&'static str> {
        let mut found = Vec::new();
        for key in [
            IdentityKey::UserId(person.to_owned()),
            IdentityKey::AnonymousId(format!("anon-{person}")),
            IdentityKey::email(&format!("{person}@example.com")),
        ] {
            if self.identity.resolve(&key).await.unwrap().is_some() {
                found.push("identity");
            }
        }
        if self.activity.get(person).await.unwrap().is_some() {
            found.push("activity");
        }
        if self.progress.get(person).await.unwrap().is_some() {
            found.push("progress");
        }
        if self.audience.contains(person) {
            found.push("audience");
        }
        found
    }

    fn flow(&self, server: &MockServer) -> ForgetFlow {
        let (deliver, _handle, _dead) = deliver(server);
        ForgetFlow::builder(deliver, self.identity.clone())
            .activity_store(self.activity.clone())
            .progress_store(self.progress.clone())
            .forget_in(self.audience.clone())
            .build()
    }
}

fn person_op(action: &str, user: &str) -> Value {
    json!([{"type": "person", "action": action, "identifiers": {"id": user}}])
}

async fn assert_only_u1_forgotten(stores: &Stores) {
    assert_eq!(stores.knows("u-1").await, Vec::<&str>::new());
    assert_eq!(
        stores.knows("u-2").await,
        vec![
            "identity", "identity", "identity", "activity", "progress", "audience"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_deleted_event_deletes_in_customerio_then_empties_every_store() {
    let server = MockServer::start().await;
    expect_batch(&server, person_op("delete", "u-1"), 1).await;
    let stores = Stores::filled().await;
    let flow = stores.flow(&server);
    let deleted = message(json!({
        "type": "track", "messageId": "m-del", "userId": "u-1", "event": "User Deleted",
        "timestamp": AT
    }));
    assert_eq!(flow.process(&deleted).await.unwrap(), Outcome::Delivered);
    assert_only_u1_forgotten(&stores).await;
    // Redelivered by Segment: a duplicate, nothing sent again.
    assert_eq!(
        flow.process(&deleted).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_suppressed_by_anonymous_id_suppresses_the_linked_person() {
    let server = MockServer::start().await;
    expect_batch(&server, person_op("suppress", "u-1"), 1).await;
    let stores = Stores::filled().await;
    let flow = stores.flow(&server);
    let suppressed = message(json!({
        "type": "track", "messageId": "m-sup", "anonymousId": "anon-u-1",
        "event": "User Suppressed", "timestamp": AT
    }));
    assert_eq!(flow.process(&suppressed).await.unwrap(), Outcome::Delivered);
    assert_only_u1_forgotten(&stores).await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_delete_message_deletes_and_forgets() {
    let server = MockServer::start().await;
    expect_batch(&server, person_op("delete", "u-1"), 1).await;
    let stores = Stores::filled().await;
    let flow = stores.flow(&server);
    let delete = message(json!({"type": "delete", "messageId": "m-d", "userId": "u-1"}));
    assert_eq!(flow.process(&delete).await.unwrap(), Outcome::Delivered);
    assert_only_u1_forgotten(&stores).await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_forget_suppresses_then_empties_every_store() {
    let server = MockServer::start().await;
    expect_batch(&server, person_op("suppress", "u-1"), 1).await;
    let stores = Stores::filled().await;
    let flow = stores.flow(&server);
    assert_eq!(
        flow.forget("u-1", ForgetAction::Suppress).await.unwrap(),
        Outcome::Delivered
    );
    assert_only_u1_forgotten(&stores).await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_deletion_forgets_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"errors": [
            {"reason": "invalid", "field": "identifiers", "message": "refused"}
        ]})))
        .expect(2)
        .mount(&server)
        .await;
    let stores = Stores::filled().await;
    let flow = stores.flow(&server);
    let deleted = message(json!({
        "type": "track", "messageId": "m-del", "userId": "u-1", "event": "User Deleted",
        "timestamp": AT
    }));
    let outcome = flow.process(&deleted).await.unwrap();
    assert!(matches!(outcome, Outcome::DeadLettered(_)), "{outcome:?}");
    let outcome = flow.forget("u-1", ForgetAction::Delete).await.unwrap();
    assert!(matches!(outcome, Outcome::DeadLettered(_)), "{outcome:?}");
    assert_eq!(
        stores.knows("u-1").await,
        vec![
            "identity", "identity", "identity", "activity", "progress", "audience"
        ]
    );
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_messages_are_filtered_without_a_request() {
    let server = MockServer::start().await;
    let stores = Stores::filled().await;
    let flow = stores.flow(&server);
    let track = message(json!({
        "type": "track", "messageId": "m-1", "userId": "u-1", "event": "Signed Up"
    }));
    assert_eq!(
        flow.process(&track).await.unwrap(),
        Outcome::Skipped(SkipReason::Filtered)
    );
    assert!(received(&server).await.is_empty());
    assert_eq!(stores.knows("u-1").await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_triggers_flow_forgets_in_the_stores_it_was_given() {
    let server = MockServer::start().await;
    expect_batch(&server, person_op("delete", "u-1"), 1).await;
    let stores = Stores::filled().await;
    let (flow, _worker) = SegmentToCustomerIo::builder(client(&server), triggers_config())
        .identity_store(stores.identity.clone())
        .forget_in(Arc::new(ForgetActivity(stores.activity.clone())))
        .forget_in(Arc::new(ForgetProgress(stores.progress.clone())))
        .forget_in(stores.audience.clone())
        .spawn();
    let deleted = json!({
        "type": "track", "messageId": "m-del", "userId": "u-1", "event": "User Deleted",
        "timestamp": AT
    });
    assert_eq!(
        flow.process_slice(deleted.to_string().as_bytes())
            .await
            .unwrap(),
        Outcome::Delivered
    );
    flow.shutdown().await;
    assert_only_u1_forgotten(&stores).await;
    server.verify().await;
}
