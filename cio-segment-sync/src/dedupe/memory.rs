//! The in-memory [`Deduper`]: one process, bounded by a time-to-live and a capacity.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Claim, ClaimToken, Deduper};
use crate::expiring::ExpiringMap;
use crate::store::StoreError;

const STORE: &str = "memory deduper";

/// Settings of a [`MemoryDeduper`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryDeduperConfig {
    /// How long a committed key is remembered as done. Segment itself de-duplicates over about
    /// 24 hours; the default matches it.
    pub done_ttl: Duration,
    /// Most keys held at once (leases and done keys together).
    pub capacity: usize,
}

impl Default for MemoryDeduperConfig {
    fn default() -> Self {
        Self {
            done_ttl: Duration::from_secs(24 * 60 * 60),
            capacity: 1_000_000,
        }
    }
}

#[derive(Debug)]
enum Held {
    Lease(ClaimToken),
    Done,
}

/// A [`Deduper`] for a single process.
///
/// Memory is bounded: done keys expire after [`MemoryDeduperConfig::done_ttl`], and when the
/// store holds [`MemoryDeduperConfig::capacity`] keys the done key closest to expiry is forgotten
/// first (a replay of that key would then be delivered again: Customer.io's event ids still
/// de-duplicate it). When every slot is a live lease, `claim` fails with [`StoreError::Full`].
/// Time is read from `tokio::time`, so tests may pause the clock.
#[derive(Debug)]
pub struct MemoryDeduper {
    config: MemoryDeduperConfig,
    state: Mutex<ExpiringMap<String, Held>>,
}

impl Default for MemoryDeduper {
    fn default() -> Self {
        Self::new(MemoryDeduperConfig::default())
    }
}

impl MemoryDeduper {
    /// An empty store with the given settings (a capacity of 0 is raised to 1).
    pub fn new(mut config: MemoryDeduperConfig) -> Self {
        config.capacity = config.capacity.max(1);
        Self {
            config,
            state: Mutex::new(ExpiringMap::default()),
        }
    }

    /// Keys held now (live leases and done keys, expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for one more key: expired keys go first, then the done key closest to expiry;
    /// live leases are never evicted.
    fn make_room(
        &self,
        state: &mut ExpiringMap<String, Held>,
        now: Instant,
    ) -> Result<(), StoreError> {
        if state.make_room(self.config.capacity, now, |held| matches!(held, Held::Done)) {
            Ok(())
        } else {
            Err(StoreError::Full {
                store: STORE,
                capacity: self.config.capacity,
            })
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringMap<String, Held>> {
        // Every update to the map completes before the guard drops, so a poisoned lock
        // still guards a consistent map: recover it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Deduper for MemoryDeduper {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        match state.get(key, now) {
            Some(Held::Done) => return Ok(Claim::Done),
            Some(Held::Lease(_)) => return Ok(Claim::InFlight),
            None => {}
        }
        self.make_room(&mut state, now)?;
        let token = ClaimToken::generate();
        state.insert(key.to_owned(), Held::Lease(token.clone()), now + lease);
        Ok(Claim::First(token))
    }

    async fn commit(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        match state.get(key, now) {
            Some(Held::Lease(held)) if held != token => {
                return Err(StoreError::LeaseLost { store: STORE });
            }
            Some(Held::Done) => return Ok(()),
            Some(Held::Lease(_)) => {}
            None => self.make_room(&mut state, now)?,
        }
        state.insert(key.to_owned(), Held::Done, now + self.config.done_ttl);
        Ok(())
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        if matches!(state.get(key, now), Some(Held::Lease(held)) if held == token) {
            state.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::deduper_conformance!(memory, async { MemoryDeduper::default() });
    crate::deduper_conformance!(memory_arc_dyn, async {
        std::sync::Arc::new(MemoryDeduper::default()) as std::sync::Arc<dyn Deduper>
    });

    fn small(capacity: usize) -> MemoryDeduper {
        MemoryDeduper::new(MemoryDeduperConfig {
            done_ttl: Duration::from_secs(60),
            capacity,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn done_keys_expire_after_ttl() {
        let d = small(10);
        let Claim::First(t) = d.claim("k", Duration::from_secs(5)).await.unwrap() else {
            panic!()
        };
        d.commit("k", &t).await.unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            d.claim("k", Duration::from_secs(5)).await.unwrap(),
            Claim::Done
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(matches!(
            d.claim("k", Duration::from_secs(5)).await.unwrap(),
            Claim::First(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_evicts_oldest_done_key_never_a_lease() {
        let d = small(3);
        let lease = Duration::from_secs(30);
        let Claim::First(a) = d.claim("a", lease).await.unwrap() else {
            panic!()
        };
        d.commit("a", &a).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let Claim::First(b) = d.claim("b", lease).await.unwrap() else {
            panic!()
        };
        d.commit("b", &b).await.unwrap();
        let Claim::First(_c) = d.claim("c", lease).await.unwrap() else {
            panic!()
        };
        // Full: "a" (oldest done) goes, the lease on "c" stays.
        assert!(matches!(
            d.claim("d", lease).await.unwrap(),
            Claim::First(_)
        ));
        assert_eq!(d.len(), 3);
        assert!(matches!(
            d.claim("a", lease).await.unwrap(),
            Claim::First(_)
        ));
        assert_eq!(d.claim("c", lease).await.unwrap(), Claim::InFlight);
        // Now "b" was evicted for "a"; only leases remain (a, c, d): the store is full.
        assert!(matches!(
            d.claim("e", lease).await,
            Err(StoreError::Full { capacity: 3, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_leases_make_room() {
        let d = small(1);
        let _ = d.claim("a", Duration::from_secs(1)).await.unwrap();
        assert!(matches!(
            d.claim("b", Duration::from_secs(1)).await,
            Err(StoreError::Full { .. })
        ));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(matches!(
            d.claim("b", Duration::from_secs(1)).await.unwrap(),
            Claim::First(_)
        ));
        assert_eq!(d.len(), 1);
    }
}
