//! A bounded map whose entries expire: the storage of every in-memory store.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

#[derive(Debug)]
struct Slot<V> {
    value: V,
    expires_at: Instant,
    seq: u64,
}

/// Entries with an expiry instant, indexed by expiry so expired entries are purged in order
/// and the next one to expire can be evicted when the map is full.
#[derive(Debug)]
pub(crate) struct ExpiringMap<K, V> {
    slots: HashMap<K, Slot<V>>,
    by_expiry: BTreeMap<(Instant, u64), K>,
    next_seq: u64,
}

impl<K, V> Default for ExpiringMap<K, V> {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
            by_expiry: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V> ExpiringMap<K, V> {
    /// Entries held, expired ones not yet purged included.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The live value of `key`; an expired entry is dropped first.
    pub(crate) fn get<Q>(&mut self, key: &Q, now: Instant) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self
            .slots
            .get(key)
            .is_some_and(|slot| slot.expires_at <= now)
        {
            self.remove(key);
        }
        self.slots.get(key).map(|slot| &slot.value)
    }

    /// Removes `key` if present.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.slots.remove(key)?;
        self.by_expiry.remove(&(slot.expires_at, slot.seq));
        Some(slot.value)
    }

    /// Inserts or replaces `key`, expiring at `expires_at`.
    pub(crate) fn insert(&mut self, key: K, value: V, expires_at: Instant) {
        self.remove(&key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_expiry.insert((expires_at, seq), key.clone());
        self.slots.insert(
            key,
            Slot {
                value,
                expires_at,
                seq,
            },
        );
    }

    /// A snapshot of every key held (expired ones not yet purged included).
    pub(crate) fn keys(&self) -> Vec<K> {
        self.slots.keys().cloned().collect()
    }

    /// Removes the entry closest to expiry.
    pub(crate) fn pop_first(&mut self) -> Option<(K, V)> {
        let (_, key) = self.by_expiry.pop_first()?;
        let slot = self.slots.remove(&key)?;
        Some((key, slot.value))
    }

    /// Drops every entry expired at `now`.
    pub(crate) fn purge_expired(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.slots.remove(&key);
        }
    }

    /// Makes room for one more entry under `capacity`: purges expired entries, then evicts the
    /// entry closest to expiry among those `evictable` allows. Returns `false` when nothing
    /// could be evicted and the map is still full.
    pub(crate) fn make_room(
        &mut self,
        capacity: usize,
        now: Instant,
        evictable: impl Fn(&V) -> bool,
    ) -> bool {
        if self.slots.len() < capacity {
            return true;
        }
        self.purge_expired(now);
        if self.slots.len() < capacity {
            return true;
        }
        let victim = self
            .by_expiry
            .values()
            .find(|key| {
                self.slots
                    .get(*key)
                    .is_some_and(|slot| evictable(&slot.value))
            })
            .cloned();
        match victim {
            Some(key) => {
                self.remove(&key);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expiry_purge_and_eviction_order() {
        let now = Instant::now();
        let mut map: ExpiringMap<String, u32> = ExpiringMap::default();
        map.insert("a".into(), 1, now + Duration::from_secs(3));
        map.insert("b".into(), 2, now + Duration::from_secs(1));
        map.insert("c".into(), 3, now + Duration::from_secs(2));
        assert_eq!(map.get("b", now), Some(&2));
        assert_eq!(map.get("b", now + Duration::from_secs(1)), None);
        assert_eq!(map.len(), 2);
        // Full at 2: evict the evictable entry closest to expiry ("c" before "a").
        assert!(map.make_room(2, now, |_| true));
        assert_eq!(map.get("c", now), None);
        assert_eq!(map.get("a", now), Some(&1));
        // Nothing evictable: refuse.
        map.insert("d".into(), 4, now + Duration::from_secs(9));
        assert!(!map.make_room(2, now, |v| *v > 10));
        // Expired entries make room first.
        assert!(map.make_room(2, now + Duration::from_secs(5), |_| false));
        assert_eq!(map.len(), 1);
        // The entry closest to expiry pops first.
        map.insert("e".into(), 6, now + Duration::from_secs(1));
        assert_eq!(map.pop_first(), Some(("e".to_owned(), 6)));
        assert_eq!(map.get("e", now), None);
        // Re-inserting replaces and re-indexes.
        map.insert("d".into(), 5, now + Duration::from_secs(1));
        map.purge_expired(now + Duration::from_secs(2));
        assert_eq!(map.len(), 0);
    }
}
