//! Dead letters: items the dispatcher could not deliver, kept with the reason so an operator
//! can look at them and send them again.
//!
//! [`DeadLetterSink`] is the small object-safe trait the dispatcher writes to. Two
//! implementations ship here: [`MemoryDeadLetters`] (bounded; counts what it had to refuse) and
//! [`JsonlDeadLetters`] (one JSON line per entry appended to a file; [`read_all`] loads them
//! back, e.g. for [`DispatcherHandle::resubmit`](crate::dispatch::DispatcherHandle::resubmit)).
//!
//! ```
//! use cio_segment_sync::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterSink, MemoryDeadLetters};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cio_segment_sync::dead_letter::DeadLetterError> {
//! let dead_letters = MemoryDeadLetters::new(100);
//! let entry = DeadLetter::new(
//!     "customerio.v2.batch",
//!     serde_json::json!({"type": "person", "action": "event", "name": "signed_up"}),
//!     DeadLetterReason::RejectedByServer { message: "must be a ULID".into(), field: Some("id".into()) },
//!     1,
//! );
//! dead_letters.record(entry).await?;
//! assert_eq!(dead_letters.entries().len(), 1);
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::dispatch::{FailureKind, GiveUp};

/// Why an item was dead-lettered.
///
/// Messages are the server's words or an error's `Display`; they are stored for operators and
/// never written to logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The server refused this item (one index of a `207`, or a `400` on the item alone).
    RejectedByServer {
        /// The server's reason.
        message: String,
        /// The field it named, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// Read from dead-letter files written by v0.1 only: v0.1 dead-lettered an item when an
    /// outage outlasted its retry budget. Since v0.2 a failure that may pass is never
    /// dead-lettered (the caller is told to retry later), so nothing writes this reason any
    /// more; entries that carry it were never refused by the server and are safe to replay.
    RetriesExhausted {
        /// Why it stopped (attempt cap, deadline, a possibly-sent write it may not repeat, …).
        stopped: GiveUp,
        /// The kind of the last failure.
        last_kind: FailureKind,
        /// The last failure, as its `Display` reads.
        last_error: String,
    },
    /// The request failed in a way no retry can fix (credentials refused, configuration).
    Failed {
        /// The kind of the failure.
        kind: FailureKind,
        /// The failure, as its `Display` reads.
        error: String,
    },
    /// The item is larger than the sink accepts. The dispatcher refuses such items at submit
    /// (handing them back); hosts record them with this reason if they keep them.
    TooLarge {
        /// The item's encoded size.
        bytes: usize,
        /// The largest size the sink accepts.
        limit: usize,
    },
}

impl DeadLetterReason {
    /// A short, data-free label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DeadLetterReason::RejectedByServer { .. } => "rejected_by_server",
            DeadLetterReason::RetriesExhausted { .. } => "retries_exhausted",
            DeadLetterReason::Failed { .. } => "failed",
            DeadLetterReason::TooLarge { .. } => "too_large",
        }
    }
}

/// One item the dispatcher could not deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The sink it was meant for ([`Sink::name`](crate::dispatch::Sink::name)).
    pub sink: String,
    /// The item, as the sink's item type serialises it.
    pub item: serde_json::Value,
    /// Why it was given up.
    pub reason: DeadLetterReason,
    /// Attempts made to send it.
    pub attempts: u32,
    /// When it was submitted.
    pub submitted_at: Timestamp,
    /// When it was given up.
    pub dead_lettered_at: Timestamp,
    /// The ordering key it was submitted with, so a re-submission keeps its place in line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<u64>,
}

impl DeadLetter {
    /// An entry given up now (both timestamps set to now; adjust with the public fields).
    pub fn new(
        sink: impl Into<String>,
        item: serde_json::Value,
        reason: DeadLetterReason,
        attempts: u32,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            sink: sink.into(),
            item,
            reason,
            attempts,
            submitted_at: now,
            dead_lettered_at: now,
            ordering_key: None,
        }
    }
}

/// A dead-letter store could not keep an entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// A bounded store is full; the entry was not kept.
    #[error("dead-letter store is full ({capacity} entries); the entry was not kept")]
    Full {
        /// The store's capacity.
        capacity: usize,
    },
    /// Writing the entry failed.
    #[error("dead-letter store could not write the entry")]
    Io(#[from] io::Error),
    /// The entry could not be serialised.
    #[error("dead-letter entry could not be serialised")]
    Serialize(#[from] serde_json::Error),
}

/// Where the dispatcher puts what it could not deliver. Object-safe: hosts pass
/// `Arc<dyn DeadLetterSink>`.
#[async_trait]
pub trait DeadLetterSink: fmt::Debug + Send + Sync + 'static {
    /// Keeps one entry. An error means the entry is lost; the dispatcher logs it at ERROR
    /// and reports it on the item's completion.
    async fn record(&self, entry: DeadLetter) -> Result<(), DeadLetterError>;
}

#[async_trait]
impl<T: DeadLetterSink + ?Sized> DeadLetterSink for Arc<T> {
    async fn record(&self, entry: DeadLetter) -> Result<(), DeadLetterError> {
        (**self).record(entry).await
    }
}

/// A bounded in-memory dead-letter store. When full it keeps what it has, refuses new entries
/// with [`DeadLetterError::Full`] and counts them in [`dropped`](Self::dropped).
pub struct MemoryDeadLetters {
    capacity: usize,
    entries: Mutex<VecDeque<DeadLetter>>,
    dropped: AtomicU64,
}

impl fmt::Debug for MemoryDeadLetters {
    /// Shows the counts only: the entries hold customer data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDeadLetters")
            .field("capacity", &self.capacity)
            .field("len", &self.lock().len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl MemoryDeadLetters {
    /// A store keeping at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
        }
    }

    /// A copy of the entries, oldest first.
    pub fn entries(&self) -> Vec<DeadLetter> {
        self.lock().iter().cloned().collect()
    }

    /// Takes every entry out, oldest first.
    pub fn drain(&self) -> Vec<DeadLetter> {
        self.lock().drain(..).collect()
    }

    /// How many entries were refused because the store was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<DeadLetter>> {
        // A panic while holding the lock cannot leave the deque half-changed (each operation
        // is a single push or drain), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DeadLetterSink for MemoryDeadLetters {
    async fn record(&self, entry: DeadLetter) -> Result<(), DeadLetterError> {
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(DeadLetterError::Full {
                capacity: self.capacity,
            });
        }
        entries.push_back(entry);
        Ok(())
    }
}

/// Appends each entry as one JSON line to a file. Writes run on tokio's blocking pool; each
/// line is written with a single `write_all` and flushed, and optionally synced to disk.
pub struct JsonlDeadLetters {
    path: PathBuf,
    file: Arc<Mutex<File>>,
    sync: bool,
}

impl fmt::Debug for JsonlDeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlDeadLetters")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl JsonlDeadLetters {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
            sync: false,
        })
    }

    /// Also `fsync` after every entry (slower; survives a machine crash, not only a process
    /// crash).
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl DeadLetterSink for JsonlDeadLetters {
    async fn record(&self, entry: DeadLetter) -> Result<(), DeadLetterError> {
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        let file = Arc::clone(&self.file);
        let sync = self.sync;
        let write = move || -> io::Result<()> {
            // A panic mid-write cannot happen inside this closure's own code; if another
            // writer panicked, the file handle itself is still valid.
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            file.write_all(&line)?;
            file.flush()?;
            if sync {
                file.sync_data()?;
            }
            Ok(())
        };
        tokio::task::spawn_blocking(write)
            .await
            .map_err(|join| io::Error::other(join.to_string()))??;
        Ok(())
    }
}

/// A dead-letter file could not be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadDeadLettersError {
    /// The file could not be read.
    #[error("could not read the dead-letter file")]
    Io(#[from] io::Error),
    /// One line is not a dead-letter entry.
    #[error("dead-letter file line {line}: not a valid entry")]
    Line {
        /// The 1-based line number.
        line: usize,
        /// Why it could not be read.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads every entry of a file written by [`JsonlDeadLetters`], in order. Blank lines are
/// skipped. Blocking (plain `std::fs`): call it from tooling or `spawn_blocking`.
pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<DeadLetter>, ReadDeadLettersError> {
    let reader = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).map_err(|source| ReadDeadLettersError::Line {
            line: index + 1,
            source,
        })?;
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    async fn memory_store_debug_shows_counts_not_entries() {
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
    async fn memory_store_is_bounded_and_counts_refusals() {
        let store = MemoryDeadLetters::new(2);
        store.record(entry(1)).await.unwrap();
        store.record(entry(2)).await.unwrap();
        let err = store.record(entry(3)).await.unwrap_err();
        assert!(matches!(err, DeadLetterError::Full { capacity: 2 }));
        assert_eq!(store.dropped(), 1);
        let kept: Vec<u32> = store.entries().iter().map(|e| e.attempts).collect();
        assert_eq!(kept, vec![1, 2], "the oldest entries are kept");
        assert_eq!(store.drain().len(), 2);
        store.record(entry(4)).await.unwrap();
        assert_eq!(store.entries().len(), 1);
    }

    #[test]
    fn reason_serialises_with_a_type_tag() {
        let reason = DeadLetterReason::RetriesExhausted {
            stopped: GiveUp::AttemptsExhausted,
            last_kind: FailureKind::Server,
            last_error: "server error (HTTP 503)".into(),
        };
        assert_eq!(
            serde_json::to_value(&reason).unwrap(),
            json!({
                "type": "retries_exhausted",
                "stopped": "attempts_exhausted",
                "last_kind": "server",
                "last_error": "server error (HTTP 503)"
            })
        );
        assert_eq!(reason.label(), "retries_exhausted");
    }

    #[test]
    fn read_all_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let good = serde_json::to_string(&entry(1)).unwrap();
        std::fs::write(&path, format!("{good}\n\n{{not json\n")).unwrap();
        match read_all(&path) {
            Err(ReadDeadLettersError::Line { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a line error, got {other:?}"),
        }
    }
}
