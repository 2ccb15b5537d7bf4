//! A bounded memory of message ids this library wrote into Segment recently.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::expiring::ExpiringMap;
use crate::store::StoreError;

/// Message ids written recently, each remembered for a time-to-live.
///
/// The loop guard records every message id it stamps and asks about every message that comes
/// in, so an echo is recognised even when the stamp in its `context` did not survive the trip.
/// Implementations are shared by every worker that writes into Segment; a store that forgets
/// early only weakens that second line of defence.
#[async_trait]
pub trait RecentIds: fmt::Debug + Send + Sync + 'static {
    /// Remembers `id` for `ttl`. Remembering an id again replaces its time-to-live.
    async fn remember(&self, id: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Whether `id` was remembered and has not expired.
    async fn contains(&self, id: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: RecentIds + ?Sized> RecentIds for Arc<T> {
    async fn remember(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        (**self).remember(id, ttl).await
    }

    async fn contains(&self, id: &str) -> Result<bool, StoreError> {
        (**self).contains(id).await
    }
}

/// [`RecentIds`] for one process: at most `capacity` ids; when full, the id closest to expiry
/// is forgotten first. Time is read from `tokio::time`, so tests may pause the clock.
pub struct MemoryRecentIds {
    capacity: usize,
    ids: Mutex<ExpiringMap<String, ()>>,
}

impl std::fmt::Debug for MemoryRecentIds {
    /// Shows the capacity and the size only, not the ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self
            .ids
            .lock()
            .map_or_else(|poisoned| poisoned.into_inner().len(), |ids| ids.len());
        f.debug_struct("MemoryRecentIds")
            .field("capacity", &self.capacity)
            .field("len", &len)
            .finish()
    }
}

impl Default for MemoryRecentIds {
    /// Room for 100 000 ids.
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl MemoryRecentIds {
    /// An empty memory holding at most `capacity` ids (0 is raised to 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ids: Mutex::new(ExpiringMap::default()),
        }
    }

    /// Ids held now, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringMap<String, ()>> {
        // Every update completes before the guard drops: a poisoned map is still consistent.
        self.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl RecentIds for MemoryRecentIds {
    async fn remember(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut ids = self.lock();
        if ids.get(id, now).is_none() {
            ids.make_room(self.capacity, now, |_| true);
        }
        ids.insert(id.to_owned(), (), now + ttl);
        Ok(())
    }

    async fn contains(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().get(id, Instant::now()).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::recent_ids_conformance!(memory, async { MemoryRecentIds::default() });
    crate::recent_ids_conformance!(memory_arc_dyn, async {
        Arc::new(MemoryRecentIds::default()) as Arc<dyn RecentIds>
    });

    #[tokio::test]
    async fn debug_shows_no_id() {
        let ids = MemoryRecentIds::new(10);
        ids.remember("message-secret-1", Duration::from_secs(60))
            .await
            .unwrap();
        let shown = format!("{ids:?}");
        assert_eq!(shown, "MemoryRecentIds { capacity: 10, len: 1 }");
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_is_bounded_and_the_soonest_to_expire_goes_first() {
        let ids = MemoryRecentIds::new(2);
        ids.remember("long", Duration::from_secs(100))
            .await
            .unwrap();
        ids.remember("short", Duration::from_secs(10))
            .await
            .unwrap();
        ids.remember("third", Duration::from_secs(50))
            .await
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains("long").await.unwrap());
        assert!(!ids.contains("short").await.unwrap());
        assert!(ids.contains("third").await.unwrap());
        // Remembering a held id again does not evict anybody.
        ids.remember("third", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(ids.contains("long").await.unwrap());
        tokio::time::advance(Duration::from_secs(101)).await;
        assert!(!ids.contains("long").await.unwrap());
        assert!(!ids.contains("third").await.unwrap());
    }
}
