//! The [`LeaseStore`] conformance cases. Each takes a fresh store.
//!
//! Expiry is real time here (a Redis lease expires on Redis' clock): the cases that wait for a
//! lease to run out poll until it has, with short sleeps, and assert the outcome, never how
//! long it took; the bound on polling only stops a broken store from hanging the suite.

use std::time::Duration;

use crate::store::LeaseStore;

const LONG: Duration = Duration::from_secs(60);
/// A lease short enough to run out during a test.
const SHORT: Duration = Duration::from_millis(50);
/// Long enough for a few calls to a local store to happen before it runs out, short enough to
/// wait for.
const MEDIUM: Duration = Duration::from_millis(400);

/// Tries `holder`'s acquisition until it succeeds (the other holder's lease ran out).
async fn acquire_after_expiry(store: &dyn LeaseStore, name: &str, holder: &str, ttl: Duration) {
    for _ in 0..1000 {
        if store.try_acquire(name, holder, ttl).await.unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the lease never expired");
}

/// A lease nobody holds is acquired.
pub async fn free_lease_is_acquired(store: &dyn LeaseStore) {
    assert!(store.try_acquire("conf-free", "a", LONG).await.unwrap());
}

/// A held lease is refused to every other holder, however often they ask.
pub async fn held_lease_is_refused_to_others(store: &dyn LeaseStore) {
    assert!(store.try_acquire("conf-held", "a", LONG).await.unwrap());
    assert!(!store.try_acquire("conf-held", "b", LONG).await.unwrap());
    assert!(!store.try_acquire("conf-held", "c", LONG).await.unwrap());
    assert!(!store.try_acquire("conf-held", "b", LONG).await.unwrap());
}

/// The holder acquiring again keeps the lease, and its time-to-live starts again.
pub async fn holder_acquires_again_and_extends(store: &dyn LeaseStore) {
    assert!(store.try_acquire("conf-again", "a", MEDIUM).await.unwrap());
    assert!(store.try_acquire("conf-again", "a", LONG).await.unwrap());
    // Past the first time-to-live: the second one holds.
    tokio::time::sleep(MEDIUM + Duration::from_millis(100)).await;
    assert!(!store.try_acquire("conf-again", "b", LONG).await.unwrap());
}

/// A released lease is free at once.
pub async fn released_lease_is_free(store: &dyn LeaseStore) {
    assert!(store.try_acquire("conf-release", "a", LONG).await.unwrap());
    assert!(store.release("conf-release", "a").await.unwrap());
    assert!(store.try_acquire("conf-release", "b", LONG).await.unwrap());
}

/// Releasing a lease one does not hold changes nothing and says so.
pub async fn release_by_another_holder_changes_nothing(store: &dyn LeaseStore) {
    assert!(
        !store.release("conf-other", "a").await.unwrap(),
        "nobody holds it"
    );
    assert!(store.try_acquire("conf-other", "a", LONG).await.unwrap());
    assert!(!store.release("conf-other", "b").await.unwrap());
    assert!(!store.try_acquire("conf-other", "b", LONG).await.unwrap());
    assert!(store.release("conf-other", "a").await.unwrap());
    assert!(
        !store.release("conf-other", "a").await.unwrap(),
        "released twice"
    );
}

/// A lease that is not renewed expires, and another holder takes it (a crashed holder).
pub async fn expired_lease_is_taken_over(store: &dyn LeaseStore) {
    assert!(store.try_acquire("conf-expire", "a", SHORT).await.unwrap());
    acquire_after_expiry(store, "conf-expire", "b", LONG).await;
    assert!(!store.try_acquire("conf-expire", "a", LONG).await.unwrap());
}

/// The holder's renewal extends its lease past the first time-to-live.
pub async fn renewal_extends_the_lease(store: &dyn LeaseStore) {
    assert!(store.try_acquire("conf-renew", "a", MEDIUM).await.unwrap());
    assert!(store.renew("conf-renew", "a", LONG).await.unwrap());
    tokio::time::sleep(MEDIUM + Duration::from_millis(100)).await;
    assert!(!store.try_acquire("conf-renew", "b", LONG).await.unwrap());
    assert!(store.renew("conf-renew", "a", LONG).await.unwrap());
}

/// Only the holder renews: another holder's renewal fails, and so does renewing a lease
/// nobody holds (renewing never acquires).
pub async fn renewal_is_for_the_holder_only(store: &dyn LeaseStore) {
    assert!(!store.renew("conf-renew-only", "a", LONG).await.unwrap());
    assert!(
        store
            .try_acquire("conf-renew-only", "b", LONG)
            .await
            .unwrap()
    );
    assert!(!store.renew("conf-renew-only", "a", LONG).await.unwrap());
    assert!(store.release("conf-renew-only", "b").await.unwrap());
    assert!(!store.renew("conf-renew-only", "b", LONG).await.unwrap());
    assert!(
        store
            .try_acquire("conf-renew-only", "a", LONG)
            .await
            .unwrap()
    );
}

/// A holder whose lease ran out and was taken over can neither renew nor release the new
/// holder's lease.
pub async fn stale_holder_cannot_touch_the_new_lease(store: &dyn LeaseStore) {
    assert!(store.try_acquire("conf-stale", "a", SHORT).await.unwrap());
    acquire_after_expiry(store, "conf-stale", "b", LONG).await;
    assert!(!store.renew("conf-stale", "a", LONG).await.unwrap());
    assert!(!store.release("conf-stale", "a").await.unwrap());
    assert!(!store.try_acquire("conf-stale", "c", LONG).await.unwrap());
    assert!(store.renew("conf-stale", "b", LONG).await.unwrap());
}

/// Leases of different names do not interfere.
pub async fn names_are_independent(store: &dyn LeaseStore) {
    assert!(store.try_acquire("conf-one", "a", LONG).await.unwrap());
    assert!(store.try_acquire("conf-two", "b", LONG).await.unwrap());
    assert!(!store.try_acquire("conf-one", "b", LONG).await.unwrap());
    assert!(store.release("conf-one", "a").await.unwrap());
    assert!(!store.try_acquire("conf-two", "a", LONG).await.unwrap());
}

/// Of many holders asking at once, exactly one gets the lease.
pub async fn concurrent_acquisitions_have_one_winner(store: &dyn LeaseStore) {
    let holders: Vec<String> = (0..16).map(|i| format!("holder-{i}")).collect();
    let answers = futures::future::join_all(
        holders
            .iter()
            .map(|holder| store.try_acquire("conf-race", holder, LONG)),
    )
    .await;
    let winners = answers.into_iter().filter(|a| *a.as_ref().unwrap()).count();
    assert_eq!(winners, 1);
}
