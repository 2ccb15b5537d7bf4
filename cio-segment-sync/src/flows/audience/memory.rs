//! The in-memory [`MembershipStore`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::store::{MembershipChange, MembershipStore};
use crate::store::StoreError;

/// Settings of a [`MemoryMembershipStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryMembershipConfig {
    /// Most (person, audience) entries kept. When full, the entry with the oldest change is
    /// forgotten first (a later, older-still message for it would then be applied: size the
    /// store above the number of memberships in flight).
    pub capacity: usize,
}

impl Default for MemoryMembershipConfig {
    fn default() -> Self {
        Self {
            capacity: 1_000_000,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// person → audience → newest change.
    people: HashMap<String, HashMap<String, MembershipChange>>,
    /// (at, person, audience) of every entry, for eviction.
    by_age: BTreeSet<(i64, String, String)>,
}

impl State {
    fn remove(&mut self, person: &str, audience: &str) {
        if let Some(audiences) = self.people.get_mut(person) {
            if let Some(old) = audiences.remove(audience) {
                self.by_age
                    .remove(&(old.at, person.to_owned(), audience.to_owned()));
            }
            if audiences.is_empty() {
                self.people.remove(person);
            }
        }
    }
}

/// A [`MembershipStore`] for a single process, bounded by
/// [`MemoryMembershipConfig::capacity`].
pub struct MemoryMembershipStore {
    config: MemoryMembershipConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryMembershipStore {
    /// Shows the settings and the size only: the contents are personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMembershipStore")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for MemoryMembershipStore {
    fn default() -> Self {
        Self::new(MemoryMembershipConfig::default())
    }
}

impl MemoryMembershipStore {
    /// An empty store (a capacity of 0 is raised to 1).
    pub fn new(mut config: MemoryMembershipConfig) -> Self {
        config.capacity = config.capacity.max(1);
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.lock().by_age.len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update completes before the guard drops: a poisoned state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl MembershipStore for MemoryMembershipStore {
    async fn record_if_newer(
        &self,
        person: &str,
        audience: &str,
        change: &MembershipChange,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let stored = state
            .people
            .get(person)
            .and_then(|audiences| audiences.get(audience))
            .cloned();
        match stored {
            Some(stored) if *change < stored => return Ok(false),
            Some(_) => state.remove(person, audience),
            None => {
                if state.by_age.len() >= self.config.capacity
                    && let Some((_, p, a)) = state.by_age.first().cloned()
                {
                    state.remove(&p, &a);
                }
            }
        }
        state
            .by_age
            .insert((change.at, person.to_owned(), audience.to_owned()));
        state
            .people
            .entry(person.to_owned())
            .or_default()
            .insert(audience.to_owned(), change.clone());
        Ok(true)
    }

    async fn get(
        &self,
        person: &str,
        audience: &str,
    ) -> Result<Option<MembershipChange>, StoreError> {
        Ok(self
            .lock()
            .people
            .get(person)
            .and_then(|audiences| audiences.get(audience))
            .cloned())
    }

    async fn forget(&self, person: &str) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let Some(audiences) = state.people.remove(person) else {
            return Ok(0);
        };
        for (audience, change) in &audiences {
            state
                .by_age
                .remove(&(change.at, person.to_owned(), audience.clone()));
        }
        Ok(audiences.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::membership_store_conformance!(memory, async { MemoryMembershipStore::default() });

    fn change(at: i64) -> MembershipChange {
        MembershipChange {
            at,
            tiebreak: String::new(),
            entered: true,
        }
    }

    #[tokio::test]
    async fn debug_shows_no_person_or_audience() {
        let store = MemoryMembershipStore::default();
        store
            .record_if_newer("user-secret-1", "vip-secret", &change(1))
            .await
            .unwrap();
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("user-secret-1") && !shown.contains("vip-secret"),
            "{shown}"
        );
        assert!(shown.contains("len: 1"), "{shown}");
    }

    #[tokio::test]
    async fn capacity_forgets_the_oldest_change_first() {
        let store = MemoryMembershipStore::new(MemoryMembershipConfig { capacity: 2 });
        assert!(store.record_if_newer("a", "x", &change(20)).await.unwrap());
        assert!(store.record_if_newer("b", "x", &change(10)).await.unwrap());
        // Updating an existing entry evicts nothing.
        assert!(store.record_if_newer("a", "x", &change(30)).await.unwrap());
        assert_eq!(store.len(), 2);
        assert!(store.record_if_newer("c", "x", &change(40)).await.unwrap());
        assert_eq!(
            store.get("b", "x").await.unwrap(),
            None,
            "oldest goes first"
        );
        assert_eq!(store.get("a", "x").await.unwrap(), Some(change(30)));
        assert_eq!(store.len(), 2);
    }
}
