//! Identity resolution through the public API: a person's journey, workers sharing a store,
//! and store failures. Each message is resolved and then reported delivered, as the pipeline
//! does once Customer.io accepted it. (Each rule on its own is covered by the `store_resolver_conformance!`
//! suite in the crate's unit tests.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use cio_segment_sync::StoreError;
use cio_segment_sync::customerio_client::Identifier;
use cio_segment_sync::identity::{
    IdentityKey, IdentityResolver, IdentityStore, LinkOutcome, MemoryIdentityStore, ResolverConfig,
    StoreResolver, Target,
};
use cio_segment_sync::segment_model::Message;
use serde_json::{Value, json};

fn message(value: Value) -> Message {
    Message::from_value(value).expect("test message decodes")
}

fn resolver(store: Arc<dyn IdentityStore>) -> Arc<dyn IdentityResolver> {
    Arc::new(StoreResolver::new(store, ResolverConfig::default()))
}

#[tokio::test]
async fn a_visitor_signs_up_and_merges_an_old_account() {
    let r = resolver(Arc::new(MemoryIdentityStore::default()));
    let steps = [
        // Browsing before login.
        (
            json!({"type": "page", "anonymousId": "anon-1", "name": "Pricing"}),
            Target::Anonymous {
                anonymous_id: "anon-1".into(),
            },
        ),
        // Sign-up: the identify stitches the anonymous activity.
        (
            json!({"type": "identify", "userId": "usr-1", "anonymousId": "anon-1",
                   "traits": {"email": "Lena@Example.org"}}),
            Target::Person {
                identifier: Identifier::id("usr-1"),
                anonymous_id: Some("anon-1".into()),
            },
        ),
        // A late anonymous event from the same browser reaches the person.
        (
            json!({"type": "track", "anonymousId": "anon-1", "event": "Viewed Docs"}),
            Target::Person {
                identifier: Identifier::id("usr-1"),
                anonymous_id: None,
            },
        ),
        // A mobile event carrying only the email reaches the person too.
        (
            json!({"type": "screen", "anonymousId": "device-2", "name": "Home",
                   "context": {"traits": {"email": "lena@example.org"}}}),
            Target::Person {
                identifier: Identifier::id("usr-1"),
                anonymous_id: None,
            },
        ),
        // An older account of hers.
        (
            json!({"type": "identify", "userId": "usr-legacy"}),
            Target::Person {
                identifier: Identifier::id("usr-legacy"),
                anonymous_id: None,
            },
        ),
        // She aliases the old account into the new one: a merge.
        (
            json!({"type": "alias", "previousId": "usr-legacy", "userId": "usr-1"}),
            Target::Merge {
                primary: Identifier::id("usr-1"),
                secondary: Identifier::id("usr-legacy"),
            },
        ),
        // A backend still sending for the old id reaches the merged person.
        (
            json!({"type": "track", "userId": "usr-legacy", "event": "Invoice Paid"}),
            Target::Person {
                identifier: Identifier::id("usr-1"),
                anonymous_id: None,
            },
        ),
        // A deletion request for the old id deletes the person it became.
        (
            json!({"type": "delete", "userId": "usr-legacy"}),
            Target::Person {
                identifier: Identifier::id("usr-1"),
                anonymous_id: None,
            },
        ),
    ];
    for (index, (input, expected)) in steps.into_iter().enumerate() {
        let msg = message(input);
        let target = r.resolve(&msg).await.unwrap();
        assert_eq!(target, expected, "step {index}");
        r.delivered(&msg, &target).await.unwrap();
    }
}

#[tokio::test]
async fn workers_sharing_a_store_share_links() {
    let store: Arc<dyn IdentityStore> = Arc::new(MemoryIdentityStore::default());
    let worker_a = resolver(store.clone());
    let worker_b = resolver(store);
    let identify = message(json!({"type": "identify", "userId": "usr-5", "anonymousId": "anon-5"}));
    let target = worker_a.resolve(&identify).await.unwrap();
    worker_a.delivered(&identify, &target).await.unwrap();
    assert_eq!(
        worker_b
            .resolve(&message(
                json!({"type": "track", "anonymousId": "anon-5", "event": "E"})
            ))
            .await
            .unwrap(),
        Target::Person {
            identifier: Identifier::id("usr-5"),
            anonymous_id: None,
        }
    );
}

/// A store that answers reads from memory and refuses writes, counting them.
#[derive(Debug, Default)]
struct ReadOnly {
    inner: MemoryIdentityStore,
    writes: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("read-only replica")]
struct ReadOnlyReplica;

fn refused() -> StoreError {
    StoreError::Unavailable {
        store: "test identity store",
        source: Box::new(ReadOnlyReplica),
    }
}

#[async_trait]
impl IdentityStore for ReadOnly {
    async fn link(&self, _: &str, _: &[IdentityKey]) -> Result<LinkOutcome, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Err(refused())
    }

    async fn resolve(&self, key: &IdentityKey) -> Result<Option<String>, StoreError> {
        self.inner.resolve(key).await
    }

    async fn merge(&self, _: &str, _: &str) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Err(refused())
    }

    async fn forget(&self, _: &str) -> Result<usize, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Err(refused())
    }
}

#[tokio::test]
async fn store_failures_are_returned_not_guessed_around() {
    let store = Arc::new(ReadOnly::default());
    let r = resolver(store.clone());
    // Resolving only reads: it works on a read-only store.
    let identify = message(json!({"type": "identify", "userId": "u", "anonymousId": "a"}));
    let target = r.resolve(&identify).await.unwrap();
    assert_eq!(
        target,
        Target::Person {
            identifier: Identifier::id("u"),
            anonymous_id: Some("a".into()),
        }
    );
    assert_eq!(store.writes.load(Ordering::SeqCst), 0);
    // Writing the links after delivery fails, and says so.
    assert!(matches!(
        r.delivered(&identify, &target).await,
        Err(StoreError::Unavailable { .. })
    ));
    let alias = message(json!({"type": "alias", "previousId": "a", "userId": "u"}));
    let target = r.resolve(&alias).await.unwrap();
    assert!(matches!(
        r.delivered(&alias, &target).await,
        Err(StoreError::Unavailable { .. })
    ));
    let delete = message(json!({"type": "delete", "userId": "u"}));
    let target = r.resolve(&delete).await.unwrap();
    assert!(matches!(
        r.delivered(&delete, &target).await,
        Err(StoreError::Unavailable { .. })
    ));
    assert_eq!(store.writes.load(Ordering::SeqCst), 3);
    // An event implies no write.
    let track = message(json!({"type": "track", "userId": "u", "event": "E"}));
    let target = r.resolve(&track).await.unwrap();
    r.delivered(&track, &target).await.unwrap();
    assert_eq!(store.writes.load(Ordering::SeqCst), 3);
}
