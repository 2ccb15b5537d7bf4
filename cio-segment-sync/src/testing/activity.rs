//! The [`ActivityStore`] conformance cases. Each takes a fresh store.

use crate::activity::{ActivityStore, Cursor};

async fn all_inactive(store: &dyn ActivityStore, before: i64, page: usize) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..10_000 {
        let result = store
            .inactive_since(before, cursor.as_ref(), page)
            .await
            .unwrap();
        assert!(result.people.len() <= page);
        out.extend(result.people.into_iter().map(|p| (p.person, p.last_active)));
        match result.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
    panic!("paging never ended");
}

/// Activity keeps the latest time; an older time changes nothing.
pub async fn record_keeps_the_latest(store: &dyn ActivityStore) {
    assert_eq!(store.get("conf-p").await.unwrap(), None);
    assert_eq!(store.record("conf-p", 100).await.unwrap().last_active, 100);
    assert_eq!(store.record("conf-p", 50).await.unwrap().last_active, 100);
    assert_eq!(store.record("conf-p", 150).await.unwrap().last_active, 150);
    assert_eq!(store.get("conf-p").await.unwrap(), Some((150, false)));
}

/// The listing holds exactly the people inactive before the instant, oldest first, ties by
/// person.
pub async fn inactive_listing_is_ordered_and_strict(store: &dyn ActivityStore) {
    for (person, at) in [
        ("conf-c", 30),
        ("conf-a", 10),
        ("conf-b", 10),
        ("conf-d", 40),
        ("conf-e", 50),
    ] {
        store.record(person, at).await.unwrap();
    }
    let got = all_inactive(store, 40, 100).await;
    let want: Vec<(String, i64)> = [("conf-a", 10), ("conf-b", 10), ("conf-c", 30)]
        .iter()
        .map(|(p, t)| (p.to_string(), *t))
        .collect();
    assert_eq!(got, want);
}

/// Paging with any page size returns every inactive person exactly once, in order.
pub async fn paging_visits_everyone_once(store: &dyn ActivityStore) {
    for i in 0..25 {
        // Many ties on the same time, to exercise the cursor's tie-break.
        store
            .record(&format!("conf-{i:02}"), 100 + i64::from(i % 3))
            .await
            .unwrap();
    }
    let full = all_inactive(store, 1_000, 1_000).await;
    assert_eq!(full.len(), 25);
    for page in [1, 2, 3, 7, 24, 25, 26] {
        assert_eq!(
            all_inactive(store, 1_000, page).await,
            full,
            "page size {page}"
        );
    }
}

/// Enrolment happens once, leaves the listing, and new activity reactivates.
pub async fn enroll_once_then_reactivate(store: &dyn ActivityStore) {
    store.record("conf-x", 10).await.unwrap();
    assert!(store.enroll("conf-x", 10).await.unwrap());
    assert!(!store.enroll("conf-x", 10).await.unwrap(), "enrolled twice");
    assert!(all_inactive(store, 100, 10).await.is_empty());
    assert_eq!(store.get("conf-x").await.unwrap(), Some((10, true)));
    // Old or equal activity does not reactivate.
    assert!(!store.record("conf-x", 10).await.unwrap().reactivated);
    let recorded = store.record("conf-x", 20).await.unwrap();
    assert!(recorded.reactivated);
    assert_eq!(store.get("conf-x").await.unwrap(), Some((20, false)));
    assert_eq!(
        all_inactive(store, 100, 10).await,
        vec![("conf-x".to_owned(), 20)]
    );
}

/// Activity that lands between a scan's listing and its enrolment wins.
pub async fn enroll_loses_to_racing_activity(store: &dyn ActivityStore) {
    store.record("conf-r", 10).await.unwrap();
    let listed = all_inactive(store, 100, 10).await;
    assert_eq!(listed, vec![("conf-r".to_owned(), 10)]);
    store.record("conf-r", 90).await.unwrap();
    assert!(!store.enroll("conf-r", 10).await.unwrap());
    assert_eq!(store.get("conf-r").await.unwrap(), Some((90, false)));
}

/// Unknown people cannot be enrolled.
pub async fn unknown_person_is_not_enrolled(store: &dyn ActivityStore) {
    assert!(!store.enroll("conf-nobody", 0).await.unwrap());
    assert_eq!(store.get("conf-nobody").await.unwrap(), None);
}

/// Forgetting a person removes them from the record, the listing and the enrolments.
pub async fn forget_removes_the_person(store: &dyn ActivityStore) {
    store.record("conf-g", 10).await.unwrap();
    store.record("conf-h", 10).await.unwrap();
    store.record("conf-e2", 5).await.unwrap();
    assert!(store.enroll("conf-e2", 5).await.unwrap());
    assert!(store.forget("conf-g").await.unwrap());
    assert!(store.forget("conf-e2").await.unwrap());
    assert!(!store.forget("conf-g").await.unwrap());
    assert_eq!(store.get("conf-g").await.unwrap(), None);
    assert_eq!(store.get("conf-e2").await.unwrap(), None);
    assert_eq!(
        all_inactive(store, 100, 10).await,
        vec![("conf-h".to_owned(), 10)]
    );
    // A forgotten person who comes back starts afresh, not enrolled.
    assert!(!store.record("conf-e2", 50).await.unwrap().reactivated);
}
