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
            done_ttl: super::SEGMENT_DONE_TTL,
            capacity: 1_000_000,
        }
    }
}

impl MemoryDeduperConfig {
    /// The defaults for Customer.io webhook event ids: done keys kept for
    /// [`CUSTOMERIO_DONE_TTL`](super::CUSTOMERIO_DONE_TTL), past the source's 7-day retries.
    pub fn customerio() -> Self {
        Self {
            done_ttl: super::CUSTOMERIO_DONE_TTL,
            ..Self::default()
        }
    }
}

/// The two kinds of key, each in its own expiry order: live leases expire within seconds and
/// are never evicted, done keys live for hours and the oldest is evicted when the store is full.
/// Keeping them apart makes eviction a pop rather than a walk past every live lease.
#[derive(Debug, Default)]
struct State {
    leases: ExpiringMap<String, ClaimToken>,
    done: ExpiringMap<String, ()>,
}

impl State {
    fn len(&self) -> usize {
        self.leases.len() + self.done.len()
    }
}

/// A [`Deduper`] for a single process.
///
/// Memory is bounded: done keys expire after [`MemoryDeduperConfig::done_ttl`], and when the
/// store holds [`MemoryDeduperConfig::capacity`] keys the done key closest to expiry is forgotten
/// first (a replay of that key would then be delivered again: Customer.io's event ids still
/// de-duplicate it). When every slot is a live lease, `claim` fails with [`StoreError::Full`].
/// Time is read from `tokio::time`, so tests may pause the clock.
pub struct MemoryDeduper {
    config: MemoryDeduperConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryDeduper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDeduper")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish()
    }
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
            state: Mutex::new(State::default()),
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
    fn make_room(&self, state: &mut State, now: Instant) -> Result<(), StoreError> {
        let capacity = self.config.capacity;
        if state.len() < capacity {
            return Ok(());
        }
        state.leases.purge_expired(now);
        state.done.purge_expired(now);
        if state.len() < capacity {
            return Ok(());
        }
        if state.done.pop_first().is_some() {
            tracing::debug!("memory deduper full; forgot the oldest done key");
            return Ok(());
        }
        Err(StoreError::Full {
            store: STORE,
            capacity,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update completes before the guard drops, so a poisoned lock still guards a
        // consistent state: recover it.
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
        if state.done.get(key, now).is_some() {
            return Ok(Claim::Done);
        }
        if state.leases.get(key, now).is_some() {
            return Ok(Claim::InFlight);
        }
        self.make_room(&mut state, now)?;
        let token = ClaimToken::generate();
        state
            .leases
            .insert(key.to_owned(), token.clone(), now + lease);
        Ok(Claim::First(token))
    }

    async fn commit(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        if state.done.get(key, now).is_some() {
            return Ok(());
        }
        match state.leases.get(key, now) {
            Some(held) if held != token => return Err(StoreError::LeaseLost { store: STORE }),
            Some(_) => {
                state.leases.remove(key);
            }
            None => self.make_room(&mut state, now)?,
        }
        state
            .done
            .insert(key.to_owned(), (), now + self.config.done_ttl);
        Ok(())
    }

    async fn renew(
        &self,
        key: &str,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        if state.done.get(key, now).is_some() {
            return Ok(false);
        }
        match state.leases.get(key, now) {
            Some(held) if held != token => return Ok(false),
            Some(_) => {}
            None => self.make_room(&mut state, now)?,
        }
        state
            .leases
            .insert(key.to_owned(), token.clone(), now + lease);
        Ok(true)
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        if state.leases.get(key, now).is_some_and(|held| held == token) {
            state.leases.remove(key);
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
