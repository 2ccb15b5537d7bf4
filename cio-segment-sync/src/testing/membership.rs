//! The [`MembershipStore`] conformance cases. Each takes a fresh store.

use crate::flows::audience::{MembershipChange, MembershipStore};

fn change(at: i64, tiebreak: &str, entered: bool) -> MembershipChange {
    MembershipChange {
        at,
        tiebreak: tiebreak.to_owned(),
        entered,
    }
}

/// A seeded Fisher–Yates shuffle (a small LCG, so the suite needs no random-number crate).
fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((state >> 33) % (i as u64 + 1)).unwrap();
        items.swap(i, j);
    }
    items
}

/// A newer change is recorded; an older one is refused and changes nothing.
pub async fn newer_wins_older_loses(store: &dyn MembershipStore) {
    assert_eq!(store.get("conf-p", "aud").await.unwrap(), None);
    assert!(
        store
            .record_if_newer("conf-p", "aud", &change(100, "m1", true))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_if_newer("conf-p", "aud", &change(200, "m2", false))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_if_newer("conf-p", "aud", &change(150, "m3", true))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("conf-p", "aud").await.unwrap(),
        Some(change(200, "m2", false))
    );
}

/// Two changes of the same millisecond are ordered by tiebreak, whichever arrives first.
pub async fn ties_break_by_tiebreak(store: &dyn MembershipStore) {
    assert!(
        store
            .record_if_newer("conf-t1", "aud", &change(100, "b", false))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_if_newer("conf-t1", "aud", &change(100, "a", true))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_if_newer("conf-t2", "aud", &change(100, "a", true))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_if_newer("conf-t2", "aud", &change(100, "b", false))
            .await
            .unwrap()
    );
    for person in ["conf-t1", "conf-t2"] {
        assert_eq!(
            store.get(person, "aud").await.unwrap(),
            Some(change(100, "b", false)),
            "{person}"
        );
    }
}

/// Recording the stored change again succeeds (a redelivery is applied again).
pub async fn repeat_of_the_newest_is_accepted(store: &dyn MembershipStore) {
    let c = change(100, "m1", true);
    assert!(store.record_if_newer("conf-r", "aud", &c).await.unwrap());
    assert!(store.record_if_newer("conf-r", "aud", &c).await.unwrap());
    assert_eq!(store.get("conf-r", "aud").await.unwrap(), Some(c));
}

/// People and audiences are independent of each other.
pub async fn people_and_audiences_are_independent(store: &dyn MembershipStore) {
    assert!(
        store
            .record_if_newer("conf-i", "a1", &change(300, "m", true))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_if_newer("conf-i", "a2", &change(100, "m", false))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_if_newer("conf-j", "a1", &change(100, "m", false))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("conf-i", "a2").await.unwrap(),
        Some(change(100, "m", false))
    );
    assert_eq!(
        store.get("conf-j", "a1").await.unwrap(),
        Some(change(100, "m", false))
    );
}

/// Any arrival order ends at the newest change, and only increasingly new changes are
/// accepted on the way.
pub async fn any_order_ends_at_the_newest(store: &dyn MembershipStore) {
    let changes: Vec<MembershipChange> = (0..12)
        .map(|i| change(1_000 + (i / 2), &format!("m{i:02}"), i % 3 == 0))
        .collect();
    let newest = changes.iter().max().cloned().unwrap();
    for seed in 0..8u64 {
        let person = format!("conf-s{seed}");
        let mut accepted: Vec<MembershipChange> = Vec::new();
        for c in shuffled(changes.clone(), seed) {
            if store.record_if_newer(&person, "aud", &c).await.unwrap() {
                if let Some(last) = accepted.last() {
                    assert!(c > *last, "seed {seed}: accepted an older change");
                }
                accepted.push(c);
            }
        }
        assert_eq!(accepted.last(), Some(&newest), "seed {seed}");
        assert_eq!(
            store.get(&person, "aud").await.unwrap(),
            Some(newest.clone())
        );
    }
}

/// Concurrent records of shuffled changes leave the newest.
pub async fn concurrent_records_keep_the_newest(store: &dyn MembershipStore) {
    let changes: Vec<MembershipChange> = (0..40)
        .map(|i| change(i64::from(i) * 7 % 23, &format!("m{i}"), i % 2 == 0))
        .collect();
    let newest = changes.iter().max().cloned().unwrap();
    let tasks = shuffled(changes, 42)
        .into_iter()
        .map(|c| async move { store.record_if_newer("conf-c", "aud", &c).await.unwrap() });
    futures::future::join_all(tasks).await;
    assert_eq!(store.get("conf-c", "aud").await.unwrap(), Some(newest));
}

/// Forgetting a person removes every audience of theirs and nobody else's.
pub async fn forget_removes_every_audience_of_the_person(store: &dyn MembershipStore) {
    for audience in ["a1", "a2", "a3"] {
        assert!(
            store
                .record_if_newer("conf-f", audience, &change(10, "m", true))
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .record_if_newer("conf-g", "a1", &change(10, "m", true))
            .await
            .unwrap()
    );
    assert_eq!(store.forget("conf-f").await.unwrap(), 3);
    assert_eq!(store.forget("conf-f").await.unwrap(), 0);
    assert_eq!(store.get("conf-f", "a1").await.unwrap(), None);
    assert!(store.get("conf-g", "a1").await.unwrap().is_some());
    // A forgotten person starts afresh: an old change is accepted again.
    assert!(
        store
            .record_if_newer("conf-f", "a1", &change(1, "m", false))
            .await
            .unwrap()
    );
}
