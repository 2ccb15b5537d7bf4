//! Dead letters: items refused for good, kept with the reason so an operator can look at them
//! and send them again once the cause is fixed; and the record format they share with a
//! replay's resume file.
//!
//! Only a permanent refusal is a dead letter (a `400`, one index of a `207`, an item too large
//! for any request, a message that cannot be read or mapped). A failure that may pass is never
//! dead-lettered: the caller is told to retry later ([`Ack::RetryLater`](crate::outcome::Ack)).
//!
//! # One record format
//!
//! Every store writes [`Record`]s, one JSON object per line or stream entry, versioned
//! (`"v": 1`); see [`record`] for the fields. A dead letter and an entry of a resume file
//! (written by `cio-sync replay` when it gives up) differ only in their [`Reason`]. The reader
//! ([`parse_lines`], [`read_records`]) is strict per line: a bad line is a [`ReadError`] naming
//! the file and line, and the other lines are still returned. Files of v0.1 (the dispatcher's
//! [`DeadLetter`] lines, and the v0.1 replay's `file, line, reason, message` lines) read too.
//!
//! # Two traits
//!
//! - [`DeadLetterSink`]: where the dispatcher and the flows put what was refused. Small and
//!   object-safe; one required method, [`append`](DeadLetterSink::append).
//! - [`DeadLetterStore`]: reading back what is pending, marking what a re-submission delivered,
//!   and the count a status page shows.
//!
//! # The stores
//!
//! | store | where | bounded by | marks replayed entries |
//! |---|---|---|---|
//! | [`MemoryDeadLetters`] | the process | keeps the newest `capacity`, counts what it dropped | removes them |
//! | [`DeadLetterDir`] | a directory of JSONL files, rotated by size | disk (rotation seals files; delete old sealed files as you see fit) | a `replayed.jsonl` file of keys |
//! | [`JsonlDeadLetters`] | one JSONL file, never rotated (the v0.1 layout) | disk | a `<file>.replayed.jsonl` file of keys |
//! | `RedisDeadLetters` (feature `redis`) | a Redis stream `<prefix>dead-letters` | `MAXLEN ~` | `XDEL` |
//!
//! The conformance suite [`dead_letter_store_conformance!`](crate::dead_letter_store_conformance)
//! (feature `testing`) runs against every one of them.
//!
//! ```
//! use cio_segment_sync::dead_letter::{
//!     DeadLetter, DeadLetterReason, DeadLetterSink, DeadLetterStore, MemoryDeadLetters,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cio_segment_sync::dead_letter::DeadLetterError> {
//! let dead_letters = MemoryDeadLetters::new(100);
//! let entry = DeadLetter::new(
//!     "customerio.track.v2.batch",
//!     serde_json::json!({"type": "person", "action": "event", "name": "signed_up"}),
//!     DeadLetterReason::RejectedByServer { message: "must be a ULID".into(), field: Some("id".into()) },
//!     1,
//! );
//! dead_letters.record(entry).await?;
//! let pending = dead_letters.pending().await?;
//! assert_eq!(pending.records.len(), 1);
//! assert_eq!(pending.records[0].record.reason.label(), "rejected_by_server");
//! // Re-sent and accepted: mark it, and it is no longer pending.
//! dead_letters.mark_replayed(&[pending.records[0].key.clone()]).await?;
//! assert_eq!(dead_letters.pending_count().await?, 0);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::dispatch::{FailureKind, GiveUp};

mod jsonl;
mod memory;
pub mod record;
#[cfg(feature = "redis")]
mod redis;

pub use jsonl::{DEFAULT_ROTATE_BYTES, DeadLetterDir, JsonlDeadLetters};
pub use memory::MemoryDeadLetters;
pub use record::{
    Location, Parsed, Problem, RECORD_VERSION, ReadError, Reason, Record, SEGMENT_MESSAGE, Source,
    parse_lines, parse_record, read_records,
};
#[cfg(feature = "redis")]
pub use redis::RedisDeadLetters;

/// How many entries the Redis dead-letter stream keeps by default (`MAXLEN ~`): 100 000,
/// about 100 MB of Redis memory at 1 KiB a record.
pub const DEFAULT_STREAM_MAX_LEN: std::num::NonZeroU64 = match std::num::NonZeroU64::new(100_000) {
    Some(len) => len,
    None => std::num::NonZeroU64::MIN,
};

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

/// A dead-letter store could not keep, read or mark an entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// A bounded store is full; the entry was not kept. (The stores of this crate no longer
    /// refuse: the memory store drops its oldest entry and counts it.)
    #[error("dead-letter store is full ({capacity} entries); the entry was not kept")]
    Full {
        /// The store's capacity.
        capacity: usize,
    },
    /// Reading or writing the store's files failed.
    #[error("dead-letter store could not read or write its files")]
    Io(#[from] io::Error),
    /// The entry could not be serialised.
    #[error("dead-letter entry could not be serialised")]
    Serialize(#[from] serde_json::Error),
    /// A shared store (Redis) cannot be reached or answered oddly.
    #[error("dead-letter store is unavailable")]
    Store(#[from] crate::StoreError),
}

/// Where the dispatcher and the flows put what was refused for good. Object-safe: hosts pass
/// `Arc<dyn DeadLetterSink>`.
///
/// Implement [`append`](Self::append); [`record`](Self::record), which the dispatcher calls,
/// turns its [`DeadLetter`] into a [`Record`] and appends it.
#[async_trait]
pub trait DeadLetterSink: fmt::Debug + Send + Sync + 'static {
    /// Keeps one record durably (as durably as the store goes). An error means the record is
    /// not kept: the caller must not ack the item's source.
    async fn append(&self, record: Record) -> Result<(), DeadLetterError>;

    /// Keeps one entry the dispatcher gave up. An error means the entry is lost; the
    /// dispatcher logs it at ERROR and reports it on the item's completion.
    async fn record(&self, entry: DeadLetter) -> Result<(), DeadLetterError> {
        self.append(Record::from(entry)).await
    }
}

#[async_trait]
impl<T: DeadLetterSink + ?Sized> DeadLetterSink for Arc<T> {
    async fn append(&self, record: Record) -> Result<(), DeadLetterError> {
        (**self).append(record).await
    }

    async fn record(&self, entry: DeadLetter) -> Result<(), DeadLetterError> {
        (**self).record(entry).await
    }
}

/// A stored record's key: stable for as long as the record is kept, unique within its store,
/// opaque (a file's sequence number and line, a stream entry id, a counter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordKey(String);

impl RecordKey {
    /// A key as a store spells it.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record and its key in the store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Stored {
    /// Its key, for [`DeadLetterStore::mark_replayed`].
    pub key: RecordKey,
    /// The record.
    pub record: Record,
}

impl Stored {
    /// A record under `key`.
    pub fn new(key: RecordKey, record: Record) -> Self {
        Self { key, record }
    }
}

/// What a store holds that was not replayed yet.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Listing {
    /// The records, oldest first.
    pub records: Vec<Stored>,
    /// The entries that could not be read, each naming where it is.
    pub errors: Vec<ReadError>,
}

/// Reading back a dead-letter store: what is pending, marking what a re-submission
/// delivered, and a count cheap enough for a status page. Object-safe.
#[async_trait]
pub trait DeadLetterStore: fmt::Debug + Send + Sync + 'static {
    /// Every record not marked replayed, oldest first, and the entries that could not be read
    /// (a bad entry never hides the others). Safe while another process appends.
    async fn pending(&self) -> Result<Listing, DeadLetterError>;

    /// Marks records as replayed (a re-submission was accepted): [`pending`](Self::pending)
    /// and [`pending_count`](Self::pending_count) leave them out from now on. Keys already
    /// marked, or not in the store, are ignored.
    async fn mark_replayed(&self, keys: &[RecordKey]) -> Result<(), DeadLetterError>;

    /// How many entries are pending, unreadable ones included.
    async fn pending_count(&self) -> Result<u64, DeadLetterError>;

    /// Where the records are, for messages (a directory, a file, a stream key; never a
    /// secret).
    fn location(&self) -> String;
}

#[async_trait]
impl<T: DeadLetterStore + ?Sized> DeadLetterStore for Arc<T> {
    async fn pending(&self) -> Result<Listing, DeadLetterError> {
        (**self).pending().await
    }

    async fn mark_replayed(&self, keys: &[RecordKey]) -> Result<(), DeadLetterError> {
        (**self).mark_replayed(keys).await
    }

    async fn pending_count(&self) -> Result<u64, DeadLetterError> {
        (**self).pending_count().await
    }

    fn location(&self) -> String {
        (**self).location()
    }
}

/// A store that is both a [`DeadLetterSink`] and a [`DeadLetterStore`] (every store of this
/// crate), usable as one `Arc<dyn DeadLetterLog>`; it upcasts to either trait object.
pub trait DeadLetterLog: DeadLetterSink + DeadLetterStore {}

impl<T: DeadLetterSink + DeadLetterStore + ?Sized> DeadLetterLog for T {}

/// A dead-letter file could not be read back by [`read_all`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadDeadLettersError {
    /// The file could not be read.
    #[error("could not read the dead-letter file")]
    Io(#[from] io::Error),
    /// One line is not valid JSON.
    #[error("dead-letter file line {line}: not a valid entry")]
    Line {
        /// The 1-based line number.
        line: usize,
        /// Why it could not be read.
        #[source]
        source: serde_json::Error,
    },
    /// One line is not a record, or a record that is not a sink's dead letter (a Segment
    /// message, a resume entry): read such files with [`read_records`].
    #[error("dead-letter file line {line}: not a dispatcher's dead letter")]
    NotADeadLetter {
        /// The 1-based line number.
        line: usize,
    },
}

/// Reads every dispatcher dead letter of a file written by [`JsonlDeadLetters`] (v0.1 or v1
/// lines), in order, stopping at the first line that is not one. Blank lines are skipped; an
/// unterminated last line is read as a line. Blocking (plain `std::fs`).
///
/// [`read_records`] reads every kind of record and keeps going past a bad line.
pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<DeadLetter>, ReadDeadLettersError> {
    let parsed = read_records(path.as_ref())?;
    if let Some(first) = parsed.errors.into_iter().next() {
        let line = match first.location {
            Location::Line { line, .. } => line,
            Location::Entry { .. } => 0,
        };
        return Err(match first.problem {
            Problem::NotJson(source) | Problem::Invalid(source) => {
                ReadDeadLettersError::Line { line, source }
            }
            _ => ReadDeadLettersError::NotADeadLetter { line },
        });
    }
    parsed
        .records
        .into_iter()
        .map(|(line, record)| {
            record
                .to_dead_letter()
                .ok_or(ReadDeadLettersError::NotADeadLetter { line })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Guarded;
    use serde_json::json;

    crate::dead_letter_store_conformance!(memory, async { MemoryDeadLetters::new(100) });
    crate::dead_letter_store_conformance!(memory_arc, async {
        Arc::new(MemoryDeadLetters::new(100))
    });
    crate::dead_letter_store_conformance!(directory, async {
        let guard = tempfile::tempdir().unwrap();
        Guarded {
            store: DeadLetterDir::open(guard.path().join("dead-letters")).unwrap(),
            guard,
        }
    });
    // Small files: the same cases across many sealed files.
    crate::dead_letter_store_conformance!(directory_rotating, async {
        let guard = tempfile::tempdir().unwrap();
        let store = DeadLetterDir::open(guard.path())
            .unwrap()
            .with_rotate_bytes(std::num::NonZeroU64::new(600).unwrap())
            .with_sync(true);
        Guarded { store, guard }
    });
    crate::dead_letter_store_conformance!(single_file, async {
        let guard = tempfile::tempdir().unwrap();
        Guarded {
            store: JsonlDeadLetters::open(guard.path().join("dead.jsonl")).unwrap(),
            guard,
        }
    });

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

    #[test]
    fn read_all_reads_v01_and_v1_dead_letters_and_refuses_other_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let (first, second) = (entry(1), entry(2));
        let v01 = serde_json::to_string(&first).unwrap();
        let v1 = String::from_utf8(Record::from(second.clone()).to_line().unwrap()).unwrap();
        std::fs::write(&path, format!("{v01}\n{v1}")).unwrap();
        assert_eq!(read_all(&path).unwrap(), vec![first, second]);

        let resume = Record::new(
            SEGMENT_MESSAGE,
            json!({"type": "track"}),
            Reason::NotSent {
                last_error: "HTTP 503".into(),
            },
        );
        let resume = String::from_utf8(resume.to_line().unwrap()).unwrap();
        std::fs::write(&path, format!("{v1}{resume}")).unwrap();
        assert!(matches!(
            read_all(&path),
            Err(ReadDeadLettersError::NotADeadLetter { line: 2 })
        ));
    }
}
