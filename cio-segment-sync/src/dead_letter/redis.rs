//! [`RedisDeadLetters`]: a Redis stream of records (feature `redis`).

use std::num::NonZeroU64;

use async_trait::async_trait;

use super::record::{Location, ReadError, parse_record};
use super::{
    DEFAULT_STREAM_MAX_LEN, DeadLetterError, DeadLetterSink, DeadLetterStore, Listing, Record,
    RecordKey, Stored,
};
use crate::redis::RedisConnection;

const STORE: &str = "redis dead-letter stream";

/// Entries read or deleted per command.
const PAGE: usize = 1000;

/// A dead-letter store shared by every worker connected to the same Redis and prefix: one
/// stream, `<prefix>dead-letters`, each entry a field `r` holding a [`Record`]'s JSON.
///
/// - [`append`](DeadLetterSink::append) is `XADD <key> MAXLEN ~ <max_len> * r <json>`: the
///   stream is trimmed, oldest first, once it passes about `max_len` entries
///   ([`DEFAULT_STREAM_MAX_LEN`]), so Redis memory stays bounded. Trimmed entries are gone:
///   size `max_len` for the refusals you expect between two replays.
/// - [`pending`](DeadLetterStore::pending) reads the stream with `XRANGE`, in pages; a
///   record's key is its entry id.
/// - [`mark_replayed`](DeadLetterStore::mark_replayed) deletes the entries with `XDEL`: the
///   stream holds exactly what is still to be replayed, and
///   [`pending_count`](DeadLetterStore::pending_count) is `XLEN`.
#[derive(Debug, Clone)]
pub struct RedisDeadLetters {
    conn: RedisConnection,
    key: String,
    max_len: u64,
}

impl RedisDeadLetters {
    /// A stream under `conn`'s prefix keeping about [`DEFAULT_STREAM_MAX_LEN`] entries.
    pub fn new(conn: RedisConnection) -> Self {
        let key = conn.key("dead-letters");
        Self {
            conn,
            key,
            max_len: DEFAULT_STREAM_MAX_LEN.get(),
        }
    }

    /// Keeps about `max_len` entries.
    pub fn with_max_len(mut self, max_len: NonZeroU64) -> Self {
        self.max_len = max_len.get();
        self
    }

    /// The stream's key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// One `XRANGE` entry: the id and the flat field/value list.
type Entry = (String, Vec<Vec<u8>>);

/// `<ms>-<seq>`, both decimal.
fn is_stream_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        [ms, seq]
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[async_trait]
impl DeadLetterSink for RedisDeadLetters {
    async fn append(&self, record: Record) -> Result<(), DeadLetterError> {
        let json = serde_json::to_vec(&record)?;
        let (key, max_len) = (self.key.clone(), self.max_len);
        let _id: String = self
            .conn
            .run(STORE, |mut c| async move {
                redis::cmd("XADD")
                    .arg(key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(max_len)
                    .arg("*")
                    .arg("r")
                    .arg(json)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
impl DeadLetterStore for RedisDeadLetters {
    async fn pending(&self) -> Result<Listing, DeadLetterError> {
        let mut listing = Listing::default();
        let mut start = "-".to_owned();
        loop {
            let key = self.key.clone();
            let from = start.clone();
            let page: Vec<Entry> = self
                .conn
                .run(STORE, |mut c| async move {
                    redis::cmd("XRANGE")
                        .arg(key)
                        .arg(from)
                        .arg("+")
                        .arg("COUNT")
                        .arg(PAGE)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let full = page.len() == PAGE;
            for (id, fields) in page {
                start = format!("({id}");
                let value = fields
                    .chunks(2)
                    .find(|pair| pair.first().is_some_and(|f| f == b"r"))
                    .and_then(|pair| pair.get(1));
                let location = || Location::Entry {
                    stream: self.key.clone(),
                    id: id.clone(),
                };
                match value.map(|v| parse_record(v)) {
                    Some(Ok(record)) => listing
                        .records
                        .push(Stored::new(RecordKey::new(id.clone()), record)),
                    Some(Err(problem)) => listing.errors.push(ReadError::new(location(), problem)),
                    None => listing
                        .errors
                        .push(ReadError::new(location(), super::Problem::NotARecord)),
                }
            }
            if !full {
                return Ok(listing);
            }
        }
    }

    async fn mark_replayed(&self, keys: &[RecordKey]) -> Result<(), DeadLetterError> {
        for chunk in keys.chunks(PAGE) {
            let key = self.key.clone();
            // Only stream ids: anything else names no entry (and would make XDEL fail).
            let ids: Vec<String> = chunk
                .iter()
                .map(RecordKey::as_str)
                .filter(|id| is_stream_id(id))
                .map(str::to_owned)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let _deleted: u64 = self
                .conn
                .run(STORE, |mut c| async move {
                    redis::cmd("XDEL")
                        .arg(key)
                        .arg(ids)
                        .query_async(&mut c)
                        .await
                })
                .await?;
        }
        Ok(())
    }

    async fn pending_count(&self) -> Result<u64, DeadLetterError> {
        let key = self.key.clone();
        Ok(self
            .conn
            .run(STORE, |mut c| async move {
                redis::cmd("XLEN").arg(key).query_async(&mut c).await
            })
            .await?)
    }

    fn location(&self) -> String {
        format!("redis stream {}", self.key)
    }
}
