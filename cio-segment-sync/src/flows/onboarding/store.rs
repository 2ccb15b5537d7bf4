//! Per-person onboarding progress: [`ProgressStore`] and its bounded in-memory implementation.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::expiring::ExpiringMap;
use crate::store::StoreError;

const STORE: &str = "memory progress store";

/// What [`ProgressStore::advance`] found and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// The person's furthest step before the call, if any.
    pub previous: Option<u32>,
    /// The furthest step after the call: the larger of `previous` and the step given.
    pub current: u32,
}

impl Advance {
    /// Whether the call moved the person forwards.
    pub fn moved(&self) -> bool {
        self.previous.is_none_or(|previous| previous < self.current)
    }
}

/// The furthest onboarding step each person reached, shared by every worker of the flow.
///
/// A step only ever grows: [`advance`](Self::advance) is an atomic maximum. People are named by
/// a [`person_key`](crate::flows::forget::person_key). Object safe.
#[async_trait]
pub trait ProgressStore: fmt::Debug + Send + Sync + 'static {
    /// Raises the person's step to `step` if it is below (or unknown), atomically, and says
    /// what it was and is.
    async fn advance(&self, person: &str, step: u32) -> Result<Advance, StoreError>;

    /// The person's furthest step, if known.
    async fn get(&self, person: &str) -> Result<Option<u32>, StoreError>;

    /// Removes the person. Returns whether they were known.
    async fn forget(&self, person: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: ProgressStore + ?Sized> ProgressStore for Arc<T> {
    async fn advance(&self, person: &str, step: u32) -> Result<Advance, StoreError> {
        (**self).advance(person, step).await
    }

    async fn get(&self, person: &str) -> Result<Option<u32>, StoreError> {
        (**self).get(person).await
    }

    async fn forget(&self, person: &str) -> Result<bool, StoreError> {
        (**self).forget(person).await
    }
}

/// Settings of a [`MemoryProgressStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryProgressConfig {
    /// Most people held. When full, the person whose progress is closest to expiry (the one
    /// advanced longest ago) is dropped. Default 1 000 000; 0 is raised to 1.
    pub capacity: usize,
    /// How long a person's progress is kept after their last advance. Default 180 days.
    pub ttl: Duration,
}

impl Default for MemoryProgressConfig {
    fn default() -> Self {
        Self {
            capacity: 1_000_000,
            ttl: Duration::from_secs(180 * 24 * 60 * 60),
        }
    }
}

impl MemoryProgressConfig {
    /// Sets [`capacity`](Self::capacity).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Sets [`ttl`](Self::ttl).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// A [`ProgressStore`] for one process, bounded by a capacity and a time to live.
///
/// A person dropped (expired or evicted) starts again from no progress: the flow then sends
/// the step of their next milestone, which may be below what Customer.io holds. Size the
/// capacity and the time to live above the number of people onboarding at once and the length
/// of onboarding; several workers share a Redis-backed store instead.
pub struct MemoryProgressStore {
    config: MemoryProgressConfig,
    entries: Mutex<ExpiringMap<String, u32>>,
}

impl fmt::Debug for MemoryProgressStore {
    /// Shows the settings and the size only: the people are personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryProgressStore")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for MemoryProgressStore {
    fn default() -> Self {
        Self::new(MemoryProgressConfig::default())
    }
}

impl MemoryProgressStore {
    /// An empty store.
    pub fn new(mut config: MemoryProgressConfig) -> Self {
        config.capacity = config.capacity.max(1);
        Self {
            config,
            entries: Mutex::new(ExpiringMap::default()),
        }
    }

    /// People held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no one is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringMap<String, u32>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (every operation is a single insert or remove), so a poisoned lock is used.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ProgressStore for MemoryProgressStore {
    async fn advance(&self, person: &str, step: u32) -> Result<Advance, StoreError> {
        let now = Instant::now();
        let mut entries = self.lock();
        let previous = entries.get(person, now).copied();
        let current = previous.map_or(step, |previous| previous.max(step));
        if previous.is_none() && !entries.make_room(self.config.capacity, now, |_| true) {
            return Err(StoreError::Full {
                store: STORE,
                capacity: self.config.capacity,
            });
        }
        entries.insert(person.to_owned(), current, now + self.config.ttl);
        Ok(Advance { previous, current })
    }

    async fn get(&self, person: &str) -> Result<Option<u32>, StoreError> {
        Ok(self.lock().get(person, Instant::now()).copied())
    }

    async fn forget(&self, person: &str) -> Result<bool, StoreError> {
        Ok(self.lock().remove(person).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::progress_store_conformance!(memory, async { MemoryProgressStore::default() });

    #[tokio::test(start_paused = true)]
    async fn progress_expires_after_its_ttl() {
        let store = MemoryProgressStore::new(
            MemoryProgressConfig::default().with_ttl(Duration::from_secs(10)),
        );
        store.advance("p", 2).await.unwrap();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(store.get("p").await.unwrap(), Some(2));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(store.get("p").await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn full_store_drops_the_person_advanced_longest_ago() {
        let store = MemoryProgressStore::new(MemoryProgressConfig::default().with_capacity(2));
        store.advance("old", 1).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        store.advance("mid", 1).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        store.advance("new", 1).await.unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("old").await.unwrap(), None);
        assert_eq!(store.get("mid").await.unwrap(), Some(1));
        assert_eq!(store.get("new").await.unwrap(), Some(1));
    }

    #[test]
    fn debug_shows_no_person() {
        let store = MemoryProgressStore::default();
        futures::executor::block_on(store.advance("secret-person@example.com", 1)).unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("secret-person"), "{debug}");
        assert!(debug.contains("len: 1"), "{debug}");
    }
}
