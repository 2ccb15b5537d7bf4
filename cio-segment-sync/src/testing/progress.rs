//! The [`ProgressStore`] conformance cases. Each takes a fresh store.

use crate::flows::onboarding::{Advance, ProgressStore};

/// An unknown person has no progress; the first advance reports no previous step.
pub async fn unknown_person_has_no_progress(store: &dyn ProgressStore) {
    assert_eq!(store.get("conf-p").await.unwrap(), None);
    let advance = store.advance("conf-p", 2).await.unwrap();
    assert_eq!(
        advance,
        Advance {
            previous: None,
            current: 2
        }
    );
    assert!(advance.moved());
    assert_eq!(store.get("conf-p").await.unwrap(), Some(2));
}

/// A step only grows: a lower or equal step changes nothing and says so.
pub async fn advance_never_moves_backwards(store: &dyn ProgressStore) {
    store.advance("conf-p", 3).await.unwrap();
    let lower = store.advance("conf-p", 1).await.unwrap();
    assert_eq!(
        lower,
        Advance {
            previous: Some(3),
            current: 3
        }
    );
    assert!(!lower.moved());
    let same = store.advance("conf-p", 3).await.unwrap();
    assert!(!same.moved());
    let higher = store.advance("conf-p", 5).await.unwrap();
    assert_eq!(
        higher,
        Advance {
            previous: Some(3),
            current: 5
        }
    );
    assert_eq!(store.get("conf-p").await.unwrap(), Some(5));
}

/// People are independent.
pub async fn people_are_independent(store: &dyn ProgressStore) {
    store.advance("conf-a", 4).await.unwrap();
    store.advance("conf-b", 1).await.unwrap();
    assert_eq!(store.get("conf-a").await.unwrap(), Some(4));
    assert_eq!(store.get("conf-b").await.unwrap(), Some(1));
}

/// Forgetting removes the person (and only them); forgetting an unknown person is `false`.
pub async fn forget_removes_the_person(store: &dyn ProgressStore) {
    store.advance("conf-a", 4).await.unwrap();
    store.advance("conf-b", 1).await.unwrap();
    assert!(store.forget("conf-a").await.unwrap());
    assert!(!store.forget("conf-a").await.unwrap());
    assert_eq!(store.get("conf-a").await.unwrap(), None);
    assert_eq!(store.get("conf-b").await.unwrap(), Some(1));
    // A forgotten person starts again from nothing.
    assert_eq!(store.advance("conf-a", 1).await.unwrap().previous, None);
}

/// Concurrent advances keep the maximum, whatever the order they land in.
pub async fn concurrent_advances_keep_the_maximum(store: &dyn ProgressStore) {
    let advances = (1..=20u32).rev().map(|step| store.advance("conf-p", step));
    let results = futures::future::join_all(advances).await;
    for result in results {
        let advance = result.unwrap();
        assert!(advance.current >= advance.previous.unwrap_or(0));
    }
    assert_eq!(store.get("conf-p").await.unwrap(), Some(20));
}
