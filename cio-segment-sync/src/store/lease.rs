//! Named leases: at most one holder at a time, and a lease that is not renewed expires on its
//! own.
//!
//! A [`LeaseStore`] lets several replicas of one deployment agree on who does a job that must
//! run once, not once per replica — the churn scan takes the lease
//! [`CHURN_SCAN_LEASE`](crate::flows::churn::CHURN_SCAN_LEASE) for each interval (see
//! [`ChurnScanner`](crate::flows::churn::ChurnScanner)). The holder is an opaque id each replica
//! picks for itself (a random one by default); the time-to-live is what makes a crashed holder
//! harmless: its lease runs out and another replica takes it.
//!
//! [`MemoryLeaseStore`] serves one process (every "replica" is in it, so it arbitrates between
//! tasks); `RedisLeaseStore` (feature `redis`) serves every replica connected to one Redis.
//! Both pass the conformance suite `testing::lease` (`lease_store_conformance!`, feature
//! `testing`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::store::StoreError;

/// Named leases with a time-to-live, shared by every replica of a store. Object safe.
///
/// A lease is *held* by `holder` from a successful [`try_acquire`](Self::try_acquire) until its
/// time-to-live runs out or the holder [releases](Self::release) it; meanwhile every other
/// holder is refused. Times are the store's own (Redis' clock for the Redis store), so replicas
/// with skewed clocks still agree.
#[async_trait]
pub trait LeaseStore: fmt::Debug + Send + Sync + 'static {
    /// Takes the lease `name` for `holder` for `ttl`, if it is free (never taken, released or
    /// expired) or already held by `holder` (then its time-to-live starts again from now).
    /// Returns whether `holder` holds the lease now; `false` means another holder does.
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Extends `holder`'s lease `name` to `ttl` from now. Returns `false`, changing nothing,
    /// when `holder` does not hold it (it expired, or another holder took it since): the
    /// caller has lost the lease and should stop the work it guards.
    async fn renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives up `holder`'s lease `name`, so another holder can take it at once. Returns whether
    /// `holder` held it; a lease held by someone else is left alone.
    async fn release(&self, name: &str, holder: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: LeaseStore + ?Sized> LeaseStore for Arc<T> {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        (**self).try_acquire(name, holder, ttl).await
    }

    async fn renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        (**self).renew(name, holder, ttl).await
    }

    async fn release(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        (**self).release(name, holder).await
    }
}

/// A [`LeaseStore`] for one process: the leases live in this process's memory, so they only
/// arbitrate between tasks of this process (with several replicas, use the Redis store).
///
/// Lease names are a deployment's fixed job names, not data, so the map stays small; expired
/// leases are dropped whenever a lease is taken. Time is read from `tokio::time`, so tests may
/// pause the clock.
#[derive(Default)]
pub struct MemoryLeaseStore {
    leases: Mutex<HashMap<String, Held>>,
}

#[derive(Debug)]
struct Held {
    holder: String,
    expires_at: Instant,
}

impl fmt::Debug for MemoryLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Holder ids are not secret, but the map is an implementation detail.
        f.debug_struct("MemoryLeaseStore")
            .field("leases", &self.lock().len())
            .finish()
    }
}

impl MemoryLeaseStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        // Every update completes before the guard drops: a poisoned map is still consistent.
        self.leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live lease `name` held by `holder`, if it is.
    fn held_by<'a>(
        leases: &'a mut HashMap<String, Held>,
        name: &str,
        holder: &str,
        now: Instant,
    ) -> Option<&'a mut Held> {
        leases
            .get_mut(name)
            .filter(|held| held.expires_at > now && held.holder == holder)
    }
}

#[async_trait]
impl LeaseStore for MemoryLeaseStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut leases = self.lock();
        leases.retain(|_, held| held.expires_at > now);
        match leases.get_mut(name) {
            Some(held) if held.holder != holder => Ok(false),
            Some(held) => {
                held.expires_at = now + ttl;
                Ok(true)
            }
            None => {
                leases.insert(
                    name.to_owned(),
                    Held {
                        holder: holder.to_owned(),
                        expires_at: now + ttl,
                    },
                );
                Ok(true)
            }
        }
    }

    async fn renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut leases = self.lock();
        match Self::held_by(&mut leases, name, holder, now) {
            Some(held) => {
                held.expires_at = now + ttl;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut leases = self.lock();
        if Self::held_by(&mut leases, name, holder, now).is_none() {
            return Ok(false);
        }
        leases.remove(name);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::lease_store_conformance!(memory, async { MemoryLeaseStore::default() });
    crate::lease_store_conformance!(memory_arc_dyn, async {
        Arc::new(MemoryLeaseStore::default()) as Arc<dyn LeaseStore>
    });

    #[tokio::test(start_paused = true)]
    async fn a_lease_lasts_exactly_its_ttl_on_the_paused_clock() {
        let store = MemoryLeaseStore::default();
        let ttl = Duration::from_secs(60);
        assert!(store.try_acquire("job", "a", ttl).await.unwrap());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!store.try_acquire("job", "b", ttl).await.unwrap());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(store.try_acquire("job", "b", ttl).await.unwrap());
        // The expired holder cannot renew or release the new holder's lease.
        assert!(!store.renew("job", "a", ttl).await.unwrap());
        assert!(!store.release("job", "a").await.unwrap());
        assert!(!store.try_acquire("job", "a", ttl).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn expired_leases_are_dropped_when_a_lease_is_taken() {
        let store = MemoryLeaseStore::default();
        for name in ["one", "two", "three"] {
            store
                .try_acquire(name, "a", Duration::from_secs(1))
                .await
                .unwrap();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        store
            .try_acquire("four", "a", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(store.lock().len(), 1);
        assert_eq!(format!("{store:?}"), "MemoryLeaseStore { leases: 1 }");
    }
}
