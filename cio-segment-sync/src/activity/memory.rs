//! The in-memory [`ActivityStore`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{ActivityStore, Cursor, Inactive, InactivePage, Recorded};
use crate::store::StoreError;

const STORE: &str = "memory activity store";

/// Settings of a [`MemoryActivityStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryActivityConfig {
    /// Most people tracked. When full, an enrolled person is forgotten first, then the person
    /// inactive longest; if neither exists, `record` fails with [`StoreError::Full`].
    pub capacity: usize,
}

impl Default for MemoryActivityConfig {
    fn default() -> Self {
        Self {
            capacity: 1_000_000,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// person → (last active, enrolled)
    people: HashMap<String, (i64, bool)>,
    /// (last active, person) of every person not enrolled.
    candidates: BTreeSet<(i64, String)>,
    /// (last active, person) of every enrolled person.
    enrolled: BTreeSet<(i64, String)>,
}

impl State {
    fn evict_one(&mut self) -> bool {
        let victim = self
            .enrolled
            .pop_first()
            .or_else(|| self.candidates.pop_first());
        match victim {
            Some((_, person)) => {
                self.people.remove(&person);
                true
            }
            None => false,
        }
    }
}

/// An [`ActivityStore`] for a single process, bounded by
/// [`MemoryActivityConfig::capacity`].
pub struct MemoryActivityStore {
    config: MemoryActivityConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryActivityStore {
    /// Shows the settings and the size only: the contents are personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryActivityStore")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for MemoryActivityStore {
    fn default() -> Self {
        Self::new(MemoryActivityConfig::default())
    }
}

impl MemoryActivityStore {
    /// An empty store (a capacity of 0 is raised to 1).
    pub fn new(mut config: MemoryActivityConfig) -> Self {
        config.capacity = config.capacity.max(1);
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// People tracked.
    pub fn len(&self) -> usize {
        self.lock().people.len()
    }

    /// Whether nobody is tracked.
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
impl ActivityStore for MemoryActivityStore {
    async fn record(&self, person: &str, at: i64) -> Result<Recorded, StoreError> {
        let mut state = self.lock();
        match state.people.get(person).copied() {
            Some((last, enrolled)) => {
                let last_active = last.max(at);
                let reactivated = enrolled && at > last;
                if reactivated {
                    state.enrolled.remove(&(last, person.to_owned()));
                } else if !enrolled {
                    state.candidates.remove(&(last, person.to_owned()));
                }
                let still_enrolled = enrolled && !reactivated;
                let index = if still_enrolled {
                    &mut state.enrolled
                } else {
                    &mut state.candidates
                };
                index.insert((last_active, person.to_owned()));
                state
                    .people
                    .insert(person.to_owned(), (last_active, still_enrolled));
                Ok(Recorded {
                    last_active,
                    reactivated,
                })
            }
            None => {
                if state.people.len() >= self.config.capacity && !state.evict_one() {
                    return Err(StoreError::Full {
                        store: STORE,
                        capacity: self.config.capacity,
                    });
                }
                state.people.insert(person.to_owned(), (at, false));
                state.candidates.insert((at, person.to_owned()));
                Ok(Recorded {
                    last_active: at,
                    reactivated: false,
                })
            }
        }
    }

    async fn inactive_since(
        &self,
        before: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<InactivePage, StoreError> {
        let state = self.lock();
        let start = after.map(|c| (c.last_active, c.person.clone()));
        let mut people = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for (last_active, person) in state.candidates.iter() {
            if *last_active >= before {
                break;
            }
            if let Some(start) = &start
                && (last_active, person) <= (&start.0, &start.1)
            {
                continue;
            }
            if people.len() == limit {
                more = true;
                break;
            }
            people.push(Inactive {
                person: person.clone(),
                last_active: *last_active,
            });
        }
        let next = if more {
            people.last().map(|p| Cursor {
                last_active: p.last_active,
                person: p.person.clone(),
            })
        } else {
            None
        };
        Ok(InactivePage { people, next })
    }

    async fn enroll(&self, person: &str, last_active: i64) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.people.get(person).copied() {
            Some((last, false)) if last == last_active => {
                state.candidates.remove(&(last, person.to_owned()));
                state.enrolled.insert((last, person.to_owned()));
                state.people.insert(person.to_owned(), (last, true));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get(&self, person: &str) -> Result<Option<(i64, bool)>, StoreError> {
        Ok(self.lock().people.get(person).copied())
    }

    async fn forget(&self, person: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some((last, enrolled)) = state.people.remove(person) else {
            return Ok(false);
        };
        let index = if enrolled {
            &mut state.enrolled
        } else {
            &mut state.candidates
        };
        index.remove(&(last, person.to_owned()));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::activity_store_conformance!(memory, async { MemoryActivityStore::default() });

    #[tokio::test]
    async fn debug_shows_no_person() {
        let store = MemoryActivityStore::default();
        store.record("user-secret-1", 10).await.unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains("user-secret-1"), "{shown}");
    }

    #[tokio::test]
    async fn capacity_forgets_enrolled_then_longest_inactive() {
        let store = MemoryActivityStore::new(MemoryActivityConfig { capacity: 2 });
        store.record("a", 10).await.unwrap();
        store.record("b", 20).await.unwrap();
        assert!(store.enroll("b", 20).await.unwrap());
        store.record("c", 30).await.unwrap();
        assert_eq!(
            store.get("b").await.unwrap(),
            None,
            "the enrolled person goes first"
        );
        store.record("d", 40).await.unwrap();
        assert_eq!(
            store.get("a").await.unwrap(),
            None,
            "then the longest inactive"
        );
        assert_eq!(store.len(), 2);
    }
}
