//! The [`RecentIds`] conformance cases. Each takes a fresh store.

use std::time::Duration;

use crate::loop_guard::RecentIds;

const LONG: Duration = Duration::from_secs(60);
/// A time-to-live short enough to run out during a test.
const SHORT: Duration = Duration::from_millis(50);

/// Polls until `id` is forgotten. The outcome is asserted, not the time it took; the bound
/// only stops a broken store from hanging the suite.
async fn forgotten_eventually(store: &dyn RecentIds, id: &str) {
    for _ in 0..1000 {
        if !store.contains(id).await.expect("contains") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the id was never forgotten");
}

/// An id never remembered is absent.
pub async fn unknown_id_is_absent(store: &dyn RecentIds) {
    assert!(!store.contains("conf-recent-none").await.unwrap());
}

/// A remembered id is present.
pub async fn remembered_id_is_present(store: &dyn RecentIds) {
    store.remember("conf-recent-1", LONG).await.unwrap();
    assert!(store.contains("conf-recent-1").await.unwrap());
}

/// Ids do not affect each other.
pub async fn ids_are_independent(store: &dyn RecentIds) {
    store.remember("conf-recent-a", LONG).await.unwrap();
    assert!(store.contains("conf-recent-a").await.unwrap());
    assert!(!store.contains("conf-recent-b").await.unwrap());
    assert!(!store.contains("conf-recent-").await.unwrap());
}

/// An id is forgotten when its time-to-live runs out.
pub async fn id_expires(store: &dyn RecentIds) {
    store.remember("conf-recent-exp", SHORT).await.unwrap();
    forgotten_eventually(store, "conf-recent-exp").await;
}

/// Remembering an id again extends its life.
pub async fn remember_again_extends(store: &dyn RecentIds) {
    store.remember("conf-recent-ext", SHORT).await.unwrap();
    store.remember("conf-recent-ext", LONG).await.unwrap();
    tokio::time::sleep(SHORT * 3).await;
    assert!(store.contains("conf-recent-ext").await.unwrap());
}
