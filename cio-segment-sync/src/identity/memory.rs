//! The in-memory [`IdentityStore`]: one process, bounded by a time-to-live and a capacity.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::store::{IdentityKey, IdentityStore, LinkOutcome};
use crate::expiring::ExpiringMap;
use crate::store::StoreError;

/// Merges are followed at most this many hops (a longer chain is cut, never looped).
const MAX_HOPS: usize = 32;

/// Settings of a [`MemoryIdentityStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryIdentityConfig {
    /// How long a link lives after it was last written. Customer.io attaches anonymous events
    /// of the last 30 days to a person; the default keeps links a little longer.
    pub ttl: Duration,
    /// Most links held at once; when full, the link closest to expiry is forgotten.
    pub capacity: usize,
}

impl Default for MemoryIdentityConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(35 * 24 * 60 * 60),
            capacity: 1_000_000,
        }
    }
}

/// An [`IdentityStore`] for a single process. Links expire [`MemoryIdentityConfig::ttl`] after
/// they were last written; at capacity the link closest to expiry is forgotten (a later message
/// for that key then resolves by its own identifiers only).
pub struct MemoryIdentityStore {
    config: MemoryIdentityConfig,
    links: Mutex<ExpiringMap<IdentityKey, String>>,
}

impl std::fmt::Debug for MemoryIdentityStore {
    /// Shows the settings and the size only: the contents are personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryIdentityStore")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for MemoryIdentityStore {
    fn default() -> Self {
        Self::new(MemoryIdentityConfig::default())
    }
}

impl MemoryIdentityStore {
    /// An empty store (a capacity of 0 is raised to 1).
    pub fn new(mut config: MemoryIdentityConfig) -> Self {
        config.capacity = config.capacity.max(1);
        Self {
            config,
            links: Mutex::new(ExpiringMap::default()),
        }
    }

    /// Links held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no link.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringMap<IdentityKey, String>> {
        // Every update completes before the guard drops: a poisoned map is still consistent.
        self.links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn put(
        &self,
        links: &mut ExpiringMap<IdentityKey, String>,
        key: IdentityKey,
        user_id: String,
        now: Instant,
    ) {
        links.make_room(self.config.capacity, now, |_| true);
        links.insert(key, user_id, now + self.config.ttl);
    }
}

/// Follows `key` and then userId links to the person at the end of the merge chain.
fn canonical(
    links: &mut ExpiringMap<IdentityKey, String>,
    key: &IdentityKey,
    now: Instant,
) -> Option<String> {
    let mut user = links.get(key, now)?.clone();
    for _ in 0..MAX_HOPS {
        match links.get(&IdentityKey::UserId(user.clone()), now) {
            Some(next) if *next != user => user = next.clone(),
            _ => break,
        }
    }
    Some(user)
}

#[async_trait]
impl IdentityStore for MemoryIdentityStore {
    async fn link(&self, user_id: &str, keys: &[IdentityKey]) -> Result<LinkOutcome, StoreError> {
        let now = Instant::now();
        let mut links = self.lock();
        let own = IdentityKey::UserId(user_id.to_owned());
        let person = match canonical(&mut links, &own, now) {
            Some(person) => person,
            None => user_id.to_owned(),
        };
        if person == user_id {
            // Refresh (or create) the person's own entry.
            self.put(&mut links, own, person.clone(), now);
        }
        let mut outcome = LinkOutcome::default();
        for key in keys {
            if let Some(previous) = canonical(&mut links, key, now)
                && previous != person
            {
                outcome.moved.push((key.clone(), previous));
            }
            if *key != IdentityKey::UserId(person.clone()) {
                self.put(&mut links, key.clone(), person.clone(), now);
            }
        }
        Ok(outcome)
    }

    async fn resolve(&self, key: &IdentityKey) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        Ok(canonical(&mut self.lock(), key, now))
    }

    async fn merge(&self, primary: &str, secondary: &str) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut links = self.lock();
        let p_key = IdentityKey::UserId(primary.to_owned());
        let s_key = IdentityKey::UserId(secondary.to_owned());
        let p = canonical(&mut links, &p_key, now).unwrap_or_else(|| primary.to_owned());
        let s = canonical(&mut links, &s_key, now).unwrap_or_else(|| secondary.to_owned());
        if p == s {
            return Ok(());
        }
        if p == primary {
            self.put(&mut links, p_key, p.clone(), now);
        }
        // Pointing the secondary's person at the primary re-points every key that resolves
        // through it; no key has to be rewritten.
        self.put(&mut links, IdentityKey::UserId(s.clone()), p.clone(), now);
        if s != secondary {
            self.put(&mut links, s_key, p, now);
        }
        Ok(())
    }

    async fn forget(&self, user_id: &str) -> Result<usize, StoreError> {
        let now = Instant::now();
        let mut links = self.lock();
        let Some(person) = canonical(&mut links, &IdentityKey::UserId(user_id.to_owned()), now)
        else {
            return Ok(0);
        };
        let mut doomed = Vec::new();
        for key in links.keys() {
            if canonical(&mut links, &key, now).as_deref() == Some(person.as_str()) {
                doomed.push(key);
            }
        }
        for key in &doomed {
            links.remove(key);
        }
        Ok(doomed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::identity_store_conformance!(memory, async { MemoryIdentityStore::default() });
    crate::identity_store_conformance!(memory_arc_dyn, async {
        std::sync::Arc::new(MemoryIdentityStore::default()) as std::sync::Arc<dyn IdentityStore>
    });

    #[tokio::test]
    async fn debug_shows_no_identity() {
        let store = MemoryIdentityStore::default();
        store
            .link("user-secret-1", &[IdentityKey::email("ada@example.com")])
            .await
            .unwrap();
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("user-secret-1") && !shown.contains("ada@"),
            "{shown}"
        );
        assert!(shown.contains("len: 2"), "{shown}");
    }

    #[tokio::test(start_paused = true)]
    async fn links_expire_and_capacity_is_bounded() {
        let store = MemoryIdentityStore::new(MemoryIdentityConfig {
            ttl: Duration::from_secs(10),
            capacity: 4,
        });
        for i in 0..10 {
            store
                .link(
                    &format!("u{i}"),
                    &[IdentityKey::AnonymousId(format!("a{i}"))],
                )
                .await
                .unwrap();
            assert!(store.len() <= 4);
        }
        // The newest links survive.
        assert_eq!(
            store
                .resolve(&IdentityKey::AnonymousId("a9".into()))
                .await
                .unwrap()
                .as_deref(),
            Some("u9")
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            store
                .resolve(&IdentityKey::AnonymousId("a9".into()))
                .await
                .unwrap(),
            None
        );
    }
}
