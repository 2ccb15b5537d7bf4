//! [`MemoryDeadLetters`]: the newest records, in the process.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{
    DeadLetter, DeadLetterError, DeadLetterSink, DeadLetterStore, Listing, Record, RecordKey,
    Stored,
};

/// A bounded in-memory dead-letter store: keeps the newest `capacity` records; when full, the
/// oldest is dropped to make room and counted in [`dropped`](Self::dropped). Gone when the
/// process ends: use a [`DeadLetterDir`](super::DeadLetterDir) or Redis in production.
pub struct MemoryDeadLetters {
    capacity: usize,
    inner: Mutex<Inner>,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Inner {
    records: VecDeque<(u64, Record)>,
    next: u64,
}

impl fmt::Debug for MemoryDeadLetters {
    /// Shows the counts only: the records hold customer data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDeadLetters")
            .field("capacity", &self.capacity)
            .field("len", &self.lock().records.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl MemoryDeadLetters {
    /// A store keeping the newest `capacity` records. With 0 it keeps none: every record is
    /// refused ([`DeadLetterError::Full`]) and counted.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
            dropped: AtomicU64::new(0),
        }
    }

    /// A copy of the dispatchers' dead letters, oldest first (records that are not a sink's
    /// refusal, such as Segment messages, are in [`records`](Self::records) only).
    pub fn entries(&self) -> Vec<DeadLetter> {
        self.lock()
            .records
            .iter()
            .filter_map(|(_, record)| record.to_dead_letter())
            .collect()
    }

    /// A copy of every record, oldest first.
    pub fn records(&self) -> Vec<Record> {
        self.lock()
            .records
            .iter()
            .map(|(_, record)| record.clone())
            .collect()
    }

    /// Takes every record out, oldest first.
    pub fn drain(&self) -> Vec<Record> {
        self.lock()
            .records
            .drain(..)
            .map(|(_, record)| record)
            .collect()
    }

    /// How many records were dropped (the oldest, to make room for newer ones).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change under the lock is a single push, pop or retain, so a panic elsewhere
        // cannot leave it half-done: a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DeadLetterSink for MemoryDeadLetters {
    async fn append(&self, record: Record) -> Result<(), DeadLetterError> {
        let mut inner = self.lock();
        if self.capacity == 0 {
            // It can keep nothing: say so, rather than let the caller ack what is not kept.
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(DeadLetterError::Full { capacity: 0 });
        }
        if inner.records.len() >= self.capacity {
            inner.records.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let key = inner.next;
        inner.next += 1;
        inner.records.push_back((key, record));
        Ok(())
    }
}

#[async_trait]
impl DeadLetterStore for MemoryDeadLetters {
    async fn pending(&self) -> Result<Listing, DeadLetterError> {
        let records = self
            .lock()
            .records
            .iter()
            .map(|(key, record)| Stored::new(RecordKey::new(key.to_string()), record.clone()))
            .collect();
        Ok(Listing {
            records,
            errors: Vec::new(),
        })
    }

    async fn mark_replayed(&self, keys: &[RecordKey]) -> Result<(), DeadLetterError> {
        let keys: std::collections::HashSet<&str> = keys.iter().map(RecordKey::as_str).collect();
        self.lock()
            .records
            .retain(|(key, _)| !keys.contains(key.to_string().as_str()));
        Ok(())
    }

    async fn pending_count(&self) -> Result<u64, DeadLetterError> {
        Ok(self.lock().records.len() as u64)
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dead_letter::DeadLetterReason;
    use crate::dispatch::FailureKind;

    fn entry(n: u32) -> DeadLetter {
        DeadLetter::new(
            "test",
            json!({"n": n}),
            DeadLetterReason::Failed {
                kind: FailureKind::Permanent,
                error: "credentials refused".into(),
            },
            n,
        )
    }

    #[tokio::test]
    async fn debug_shows_counts_not_entries() {
        let store = MemoryDeadLetters::new(5);
        let mut secret = entry(1);
        secret.item = json!({"identifiers": {"email": "ada@example.com"}});
        store.record(secret).await.unwrap();
        assert_eq!(
            format!("{store:?}"),
            "MemoryDeadLetters { capacity: 5, len: 1, dropped: 0 }"
        );
    }

    #[tokio::test]
    async fn keeps_the_newest_and_counts_what_it_dropped() {
        let store = MemoryDeadLetters::new(2);
        for n in 1..=5 {
            store.record(entry(n)).await.unwrap();
        }
        assert_eq!(store.dropped(), 3);
        let kept: Vec<u32> = store.entries().iter().map(|e| e.attempts).collect();
        assert_eq!(kept, vec![4, 5], "the newest entries are kept");
        assert_eq!(store.pending_count().await.unwrap(), 2);
        assert_eq!(store.drain().len(), 2);
        store.record(entry(6)).await.unwrap();
        assert_eq!(store.entries().len(), 1);

        let none = MemoryDeadLetters::new(0);
        let error = none.record(entry(1)).await.unwrap_err();
        assert!(
            matches!(error, DeadLetterError::Full { capacity: 0 }),
            "{error}"
        );
        assert_eq!((none.records().len(), none.dropped()), (0, 1));
    }
}
