//! The [`IdentityStore`] conformance cases. Each takes a fresh store.

use crate::identity::{IdentityKey, IdentityStore};

fn anon(v: &str) -> IdentityKey {
    IdentityKey::AnonymousId(v.to_owned())
}

fn user(v: &str) -> IdentityKey {
    IdentityKey::UserId(v.to_owned())
}

async fn resolved(store: &dyn IdentityStore, key: &IdentityKey) -> Option<String> {
    store.resolve(key).await.expect("resolve")
}

/// An unknown key resolves to nothing.
pub async fn unknown_key_is_none(store: &dyn IdentityStore) {
    assert_eq!(resolved(store, &anon("conf-nobody")).await, None);
    assert_eq!(resolved(store, &user("conf-nobody")).await, None);
}

/// After a link, the person's userId and every linked key resolve to the person.
pub async fn link_then_resolve(store: &dyn IdentityStore) {
    let outcome = store
        .link(
            "conf-u1",
            &[anon("conf-a1"), IdentityKey::email("Ada@Example.com ")],
        )
        .await
        .unwrap();
    assert!(outcome.moved.is_empty());
    assert_eq!(
        resolved(store, &user("conf-u1")).await.as_deref(),
        Some("conf-u1")
    );
    assert_eq!(
        resolved(store, &anon("conf-a1")).await.as_deref(),
        Some("conf-u1")
    );
    assert_eq!(
        resolved(store, &IdentityKey::email("ada@example.com"))
            .await
            .as_deref(),
        Some("conf-u1")
    );
}

/// Linking a key that belonged to someone else moves it and reports the previous person.
pub async fn relink_reports_previous_person(store: &dyn IdentityStore) {
    store.link("conf-u1", &[anon("conf-shared")]).await.unwrap();
    let outcome = store.link("conf-u2", &[anon("conf-shared")]).await.unwrap();
    assert_eq!(
        outcome.moved,
        vec![(anon("conf-shared"), "conf-u1".to_owned())]
    );
    assert_eq!(
        resolved(store, &anon("conf-shared")).await.as_deref(),
        Some("conf-u2")
    );
    // Linking again to the same person reports nothing.
    let again = store.link("conf-u2", &[anon("conf-shared")]).await.unwrap();
    assert!(again.moved.is_empty());
}

/// After a merge, the secondary and every key of the secondary resolve to the primary.
pub async fn merge_moves_every_key(store: &dyn IdentityStore) {
    store.link("conf-p", &[anon("conf-pa")]).await.unwrap();
    store
        .link(
            "conf-s",
            &[anon("conf-sa"), IdentityKey::email("s@example.com")],
        )
        .await
        .unwrap();
    store.merge("conf-p", "conf-s").await.unwrap();
    for key in [
        user("conf-s"),
        anon("conf-sa"),
        IdentityKey::email("s@example.com"),
        anon("conf-pa"),
    ] {
        assert_eq!(
            resolved(store, &key).await.as_deref(),
            Some("conf-p"),
            "{key:?}"
        );
    }
    // New links to the merged userId land on the primary.
    store.link("conf-s", &[anon("conf-late")]).await.unwrap();
    assert_eq!(
        resolved(store, &anon("conf-late")).await.as_deref(),
        Some("conf-p")
    );
}

/// Merges chain, and merging back the other way is a no-op rather than a cycle.
pub async fn merge_chains_without_cycles(store: &dyn IdentityStore) {
    store.link("conf-x", &[anon("conf-xa")]).await.unwrap();
    store.link("conf-y", &[]).await.unwrap();
    store.link("conf-z", &[]).await.unwrap();
    store.merge("conf-y", "conf-x").await.unwrap();
    store.merge("conf-z", "conf-y").await.unwrap();
    assert_eq!(
        resolved(store, &anon("conf-xa")).await.as_deref(),
        Some("conf-z")
    );
    store.merge("conf-x", "conf-z").await.unwrap();
    assert_eq!(
        resolved(store, &anon("conf-xa")).await.as_deref(),
        Some("conf-z")
    );
    assert_eq!(
        resolved(store, &user("conf-x")).await.as_deref(),
        Some("conf-z")
    );
}

/// Merging people the store never saw records the link anyway.
pub async fn merge_of_unknown_people_is_recorded(store: &dyn IdentityStore) {
    store.merge("conf-new-p", "conf-new-s").await.unwrap();
    assert_eq!(
        resolved(store, &user("conf-new-s")).await.as_deref(),
        Some("conf-new-p")
    );
    assert_eq!(
        resolved(store, &user("conf-new-p")).await.as_deref(),
        Some("conf-new-p")
    );
}

/// Forgetting a person removes every key that resolves to them, merged people included, and
/// nobody else's.
pub async fn forget_removes_every_key_of_the_person(store: &dyn IdentityStore) {
    store
        .link(
            "conf-f",
            &[anon("conf-fa"), IdentityKey::email("f@example.com")],
        )
        .await
        .unwrap();
    store.link("conf-old", &[anon("conf-olda")]).await.unwrap();
    store.merge("conf-f", "conf-old").await.unwrap();
    store.link("conf-other", &[anon("conf-oa")]).await.unwrap();
    let removed = store.forget("conf-old").await.unwrap();
    assert_eq!(removed, 5, "own id, anon, email, merged id, merged anon");
    for key in [
        user("conf-f"),
        anon("conf-fa"),
        IdentityKey::email("f@example.com"),
        user("conf-old"),
        anon("conf-olda"),
    ] {
        assert_eq!(resolved(store, &key).await, None, "{key:?}");
    }
    assert_eq!(
        resolved(store, &anon("conf-oa")).await.as_deref(),
        Some("conf-other")
    );
    assert_eq!(store.forget("conf-nobody").await.unwrap(), 0);
}
