//! The in-memory [`Deduper`]: one process, bounded by a time-to-live and a capacity.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Claim, ClaimToken, Deduper};
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

#[derive(Debug)]
struct Entry {
    held: Held,
    expires_at: Instant,
    seq: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Every entry by (expiry, insertion sequence), to purge expired entries in order.
    by_expiry: BTreeMap<(Instant, u64), String>,
    next_seq: u64,
}

impl State {
    /// The live entry for `key`, dropping it first if it has expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&Entry> {
        let expired = self.entries.get(key).is_some_and(|e| e.expires_at <= now);
        if expired {
            self.remove(key);
        }
        self.entries.get(key)
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_expiry.remove(&(entry.expires_at, entry.seq));
        }
    }

    fn insert(&mut self, key: &str, held: Held, expires_at: Instant) {
        self.remove(key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_expiry.insert((expires_at, seq), key.to_owned());
        self.entries.insert(
            key.to_owned(),
            Entry {
                held,
                expires_at,
                seq,
            },
        );
    }

    fn purge_expired(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
        }
    }

    /// Makes room for one more entry: drops expired entries, then the done key closest to
    /// expiry. Live leases are never evicted.
    fn make_room(&mut self, capacity: usize, now: Instant) -> Result<(), StoreError> {
        if self.entries.len() < capacity {
            return Ok(());
        }
        self.purge_expired(now);
        if self.entries.len() < capacity {
            return Ok(());
        }
        let victim = self.by_expiry.iter().find_map(|(_, key)| {
            matches!(self.entries.get(key).map(|e| &e.held), Some(Held::Done)).then(|| key.clone())
        });
        match victim {
            Some(key) => {
                tracing::debug!("memory deduper full; forgetting the oldest done key");
                self.remove(&key);
                Ok(())
            }
            None => Err(StoreError::Full {
                store: STORE,
                capacity,
            }),
        }
    }
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
    state: Mutex<State>,
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
        self.lock().entries.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated in a way that
        // matters more than losing the store, so recover the guard.
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
        match state.live(key, now).map(|e| &e.held) {
            Some(Held::Done) => return Ok(Claim::Done),
            Some(Held::Lease(_)) => return Ok(Claim::InFlight),
            None => {}
        }
        state.make_room(self.config.capacity, now)?;
        let token = ClaimToken::generate();
        state.insert(key, Held::Lease(token.clone()), now + lease);
        Ok(Claim::First(token))
    }

    async fn commit(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        match state.live(key, now).map(|e| &e.held) {
            Some(Held::Lease(held)) if held != token => {
                return Err(StoreError::LeaseLost { store: STORE });
            }
            Some(Held::Done) => return Ok(()),
            Some(Held::Lease(_)) => {}
            None => state.make_room(self.config.capacity, now)?,
        }
        state.insert(key, Held::Done, now + self.config.done_ttl);
        Ok(())
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        if matches!(state.live(key, now).map(|e| &e.held), Some(Held::Lease(held)) if held == token)
        {
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
