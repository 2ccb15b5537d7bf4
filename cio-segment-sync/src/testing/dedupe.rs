//! The [`Deduper`] conformance cases. Each takes a fresh store.

use std::time::Duration;

use crate::dedupe::{Claim, ClaimToken, Deduper};
use crate::store::StoreError;

const LONG: Duration = Duration::from_secs(60);
/// A lease short enough to run out during a test.
const SHORT: Duration = Duration::from_millis(50);

async fn first(store: &dyn Deduper, key: &str, lease: Duration) -> ClaimToken {
    match store.claim(key, lease).await {
        Ok(Claim::First(token)) => token,
        other => panic!("expected a first claim, got {other:?}"),
    }
}

/// Claims `key` until the store answers `First` (its old lease ran out), polling with short
/// sleeps. The outcome is asserted, not the time it took; the bound only stops a broken store
/// from hanging the suite.
async fn first_after_expiry(store: &dyn Deduper, key: &str, lease: Duration) -> ClaimToken {
    for _ in 0..1000 {
        match store.claim(key, lease).await {
            Ok(Claim::First(token)) => return token,
            Ok(Claim::InFlight) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => panic!("expected in-flight until the lease expires, got {other:?}"),
        }
    }
    panic!("the lease never expired");
}

/// A key nobody has seen is `First`.
pub async fn first_claim_is_first(store: &dyn Deduper) {
    first(store, "conf-first", LONG).await;
}

/// A key under a live lease is `InFlight` to everyone else.
pub async fn held_key_is_in_flight(store: &dyn Deduper) {
    first(store, "conf-held", LONG).await;
    assert_eq!(
        store.claim("conf-held", LONG).await.unwrap(),
        Claim::InFlight
    );
    assert_eq!(
        store.claim("conf-held", LONG).await.unwrap(),
        Claim::InFlight
    );
}

/// A committed key is `Done`.
pub async fn committed_key_is_done(store: &dyn Deduper) {
    let token = first(store, "conf-done", LONG).await;
    store.commit("conf-done", &token).await.unwrap();
    assert_eq!(store.claim("conf-done", LONG).await.unwrap(), Claim::Done);
}

/// A released key can be claimed again at once.
pub async fn released_key_is_delivered_again(store: &dyn Deduper) {
    let token = first(store, "conf-release", LONG).await;
    store.release("conf-release", &token).await.unwrap();
    first(store, "conf-release", LONG).await;
}

/// The sequence that a seen-flag gets wrong: claim, delivery fails, release; the source
/// retries; the retry must be delivered (First), then committed, then a third copy is Done.
pub async fn failed_delivery_then_retry_is_delivered(store: &dyn Deduper) {
    let attempt1 = first(store, "conf-retry", LONG).await;
    // Delivery failed.
    store.release("conf-retry", &attempt1).await.unwrap();
    // The source retries: it must be delivered, not skipped as a duplicate.
    let attempt2 = match store.claim("conf-retry", LONG).await.unwrap() {
        Claim::First(token) => token,
        other => panic!("a retry after a failed delivery was not delivered: {other:?}"),
    };
    store.commit("conf-retry", &attempt2).await.unwrap();
    assert_eq!(store.claim("conf-retry", LONG).await.unwrap(), Claim::Done);
}

/// A worker that dies without committing or releasing frees the key when its lease runs out.
pub async fn expired_lease_frees_the_key(store: &dyn Deduper) {
    first(store, "conf-expire", SHORT).await;
    first_after_expiry(store, "conf-expire", LONG).await;
}

/// A worker whose lease ran out and was taken over cannot commit over the new holder.
pub async fn stale_token_cannot_commit_over_new_holder(store: &dyn Deduper) {
    let stale = first(store, "conf-stale-commit", SHORT).await;
    let _current = first_after_expiry(store, "conf-stale-commit", LONG).await;
    match store.commit("conf-stale-commit", &stale).await {
        Err(StoreError::LeaseLost { .. }) => {}
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert_eq!(
        store.claim("conf-stale-commit", LONG).await.unwrap(),
        Claim::InFlight
    );
}

/// A stale release leaves the new holder's lease alone.
pub async fn stale_token_cannot_release_new_holder(store: &dyn Deduper) {
    let stale = first(store, "conf-stale-release", SHORT).await;
    let _current = first_after_expiry(store, "conf-stale-release", LONG).await;
    store.release("conf-stale-release", &stale).await.unwrap();
    assert_eq!(
        store.claim("conf-stale-release", LONG).await.unwrap(),
        Claim::InFlight
    );
}

/// A slow worker whose lease ran out, with nobody claiming since, may still record its
/// delivery: the key becomes Done.
pub async fn commit_after_expiry_without_new_holder_is_done(store: &dyn Deduper) {
    let token = first(store, "conf-late-commit", SHORT).await;
    tokio::time::sleep(SHORT * 3).await;
    store.commit("conf-late-commit", &token).await.unwrap();
    assert_eq!(
        store.claim("conf-late-commit", LONG).await.unwrap(),
        Claim::Done
    );
}

/// Keys do not affect each other.
pub async fn keys_are_independent(store: &dyn Deduper) {
    let a = first(store, "conf-a", LONG).await;
    store.commit("conf-a", &a).await.unwrap();
    first(store, "conf-b", LONG).await;
    assert_eq!(store.claim("conf-a", LONG).await.unwrap(), Claim::Done);
    assert_eq!(store.claim("conf-b", LONG).await.unwrap(), Claim::InFlight);
}

/// Many workers claiming one key at once: exactly one wins.
pub async fn concurrent_claims_have_one_winner(store: &dyn Deduper) {
    // The store is borrowed; run the claims concurrently on this task.
    let claims = (0..32).map(|_| store.claim("conf-race", LONG));
    let results = futures::future::join_all(claims).await;
    let winners = results
        .iter()
        .filter(|r| matches!(r, Ok(Claim::First(_))))
        .count();
    let in_flight = results
        .iter()
        .filter(|r| matches!(r, Ok(Claim::InFlight)))
        .count();
    assert_eq!((winners, in_flight), (1, 31), "{results:?}");
}

/// Committing twice, or committing a key already done, is fine.
pub async fn commit_is_idempotent(store: &dyn Deduper) {
    let token = first(store, "conf-twice", LONG).await;
    store.commit("conf-twice", &token).await.unwrap();
    store.commit("conf-twice", &token).await.unwrap();
    assert_eq!(store.claim("conf-twice", LONG).await.unwrap(), Claim::Done);
}

/// A renewed lease holds the key past its first term.
pub async fn renewed_lease_outlives_its_first_term(store: &dyn Deduper) {
    let token = first(store, "conf-renew", SHORT).await;
    assert!(store.renew("conf-renew", &token, LONG).await.unwrap());
    tokio::time::sleep(SHORT * 3).await;
    assert_eq!(
        store.claim("conf-renew", LONG).await.unwrap(),
        Claim::InFlight
    );
    store.commit("conf-renew", &token).await.unwrap();
    assert_eq!(store.claim("conf-renew", LONG).await.unwrap(), Claim::Done);
}

/// A lease that ran out with nobody claiming the key since is taken back by a renewal.
pub async fn renew_takes_back_a_lapsed_free_key(store: &dyn Deduper) {
    let token = first(store, "conf-renew-lapsed", SHORT).await;
    tokio::time::sleep(SHORT * 3).await;
    assert!(
        store
            .renew("conf-renew-lapsed", &token, LONG)
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim("conf-renew-lapsed", LONG).await.unwrap(),
        Claim::InFlight
    );
}

/// A renewal with a stale token neither succeeds nor disturbs the new holder.
pub async fn stale_token_cannot_renew_over_new_holder(store: &dyn Deduper) {
    let stale = first(store, "conf-renew-stale", SHORT).await;
    let fresh = first_after_expiry(store, "conf-renew-stale", LONG).await;
    assert!(!store.renew("conf-renew-stale", &stale, LONG).await.unwrap());
    store.commit("conf-renew-stale", &fresh).await.unwrap();
    assert_eq!(
        store.claim("conf-renew-stale", LONG).await.unwrap(),
        Claim::Done
    );
}

/// A key already done cannot be renewed back into a lease.
pub async fn renew_of_a_done_key_is_refused(store: &dyn Deduper) {
    let token = first(store, "conf-renew-done", LONG).await;
    store.commit("conf-renew-done", &token).await.unwrap();
    assert!(!store.renew("conf-renew-done", &token, LONG).await.unwrap());
    assert_eq!(
        store.claim("conf-renew-done", LONG).await.unwrap(),
        Claim::Done
    );
}
