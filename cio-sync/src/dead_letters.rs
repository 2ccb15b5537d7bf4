//! Where dead letters go, and `cio-sync dead-letters list | replay`.
//!
//! # Where
//!
//! One place for `serve`, `replay` and `dead-letters`, chosen in this order:
//!
//! 1. `--dead-letter FILE` (or `[server] dead_letter_file`): one JSON-lines file, never
//!    rotated;
//! 2. a Redis stream `<prefix>dead-letters` when `REDIS_URL` is set (every replica shares it);
//! 3. the data directory: `dead-letters-<seq>.jsonl` files rotated at
//!    `[server] dead_letter_rotate_bytes` (64 MiB by default), sealed when full.
//!
//! The data directory is `--data-dir`, else `$CIO_SYNC_DATA_DIR`, else `[server] data_dir`,
//! else `$XDG_STATE_HOME/cio-sync`, else `$HOME/.local/state/cio-sync`, else
//! `./cio-sync-data` ([`data_dir`]). Replay resume files go there too unless `--resume-to`
//! names one.
//!
//! # list
//!
//! Counts by reason, then one line per entry: its key, when it was recorded, what it is (the
//! sink), why (the reason's label), where it came from (an archive's file and line) and the
//! attempts made. No id, email, trait or server message is shown unless
//! `--show-personal-data` is given; then each entry also shows its id, the reason's detail and
//! the item itself.
//!
//! # replay
//!
//! Sends every pending dead letter again with the ids it was recorded with: a Segment message
//! through the flows (the same `messageId`, so the same Customer.io event id), a dispatcher's
//! item through that dispatcher (the same operation, its `id` included), each person's items in
//! their order. What is accepted (or skipped as nothing left to write) is marked replayed, so a
//! second replay does not send it again. What is refused again stays a dead letter, unchanged;
//! an outage is waited out as `cio-sync replay` does, and `--give-up-after` leaves what was not
//! sent pending.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::builder::SyncEngine;
use cio_segment_sync::config::ServerConfig;
use cio_segment_sync::dead_letter::{
    DeadLetter, DeadLetterDir, DeadLetterError, DeadLetterLog, DeadLetterStore, JsonlDeadLetters,
    RecordKey, RedisDeadLetters, Stored,
};
use cio_segment_sync::dispatch::{Delivery, DispatcherHandle, ResubmitError, Sink};
use cio_segment_sync::redis::RedisConfig;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::env::Env;
use crate::error_chain;
use crate::replay::{Backoff, CHUNK, Driver, Finished, Job, ReplayEnd, Step};

/// The variable naming the data directory.
pub const DATA_DIR_VAR: &str = "CIO_SYNC_DATA_DIR";

/// The data directory: `flag`, else `$CIO_SYNC_DATA_DIR`, else `config`, else
/// `$XDG_STATE_HOME/cio-sync` (an absolute `XDG_STATE_HOME` only, as the XDG spec says), else
/// `$HOME/.local/state/cio-sync`, else `./cio-sync-data`. Blank variables count as unset.
///
/// ```
/// use std::path::{Path, PathBuf};
/// use cio_sync::dead_letters::data_dir;
///
/// let env = |name: &str| (name == "HOME").then(|| "/home/ada".to_owned());
/// assert_eq!(data_dir(None, None, env), PathBuf::from("/home/ada/.local/state/cio-sync"));
/// assert_eq!(data_dir(None, Some(Path::new("/srv/cio")), env), PathBuf::from("/srv/cio"));
/// ```
pub fn data_dir(
    flag: Option<&Path>,
    config: Option<&Path>,
    lookup: impl Fn(&str) -> Option<String>,
) -> PathBuf {
    let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    if let Some(flag) = flag {
        return flag.to_path_buf();
    }
    if let Some(dir) = var(DATA_DIR_VAR) {
        return PathBuf::from(dir);
    }
    if let Some(config) = config {
        return config.to_path_buf();
    }
    if let Some(state) = var("XDG_STATE_HOME").map(PathBuf::from)
        && state.is_absolute()
    {
        return state.join("cio-sync");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".local/state/cio-sync");
    }
    PathBuf::from("cio-sync-data")
}

/// Where dead letters are kept (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Place {
    /// One JSON-lines file.
    File(PathBuf),
    /// The Redis stream (`REDIS_URL`).
    Redis,
    /// A data directory.
    Dir(PathBuf),
}

impl Place {
    /// The place by the rule of the [module docs](self): an explicit file, else Redis when
    /// `REDIS_URL` is set (or `redis` asks for it), else the data directory (`dir`).
    pub fn choose(file: Option<PathBuf>, redis: bool, env: &Env, dir: PathBuf) -> Self {
        match file {
            Some(file) => Place::File(file),
            None if redis || env.redis_url.is_some() => Place::Redis,
            None => Place::Dir(dir),
        }
    }

    /// `directory`, `file` or `redis`: for the status page.
    pub fn kind(&self) -> &'static str {
        match self {
            Place::File(_) => "file",
            Place::Redis => "redis",
            Place::Dir(_) => "directory",
        }
    }
}

/// The dead-letter store cannot be opened. Names the place; carries no secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file or directory cannot be opened, created or written.
    #[error("the dead letters at {} cannot be opened", .path.display())]
    Files {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Redis stream was asked for without `REDIS_URL`.
    #[error("`REDIS_URL` must be set for the Redis dead-letter stream")]
    NoRedisUrl,
    /// Redis cannot be reached.
    #[error("Redis cannot be reached for the dead-letter stream")]
    Redis(#[source] cio_segment_sync::StoreError),
}

/// Opens the store at `place` with the `[server]` settings (rotation size, stream length,
/// Redis prefix).
///
/// # Errors
///
/// [`OpenError`] naming the place.
pub async fn open(
    place: &Place,
    env: &Env,
    server: &ServerConfig,
) -> Result<Arc<dyn DeadLetterLog>, OpenError> {
    match place {
        Place::File(path) => {
            let store = JsonlDeadLetters::open(path).map_err(|source| OpenError::Files {
                path: path.clone(),
                source,
            })?;
            Ok(Arc::new(store))
        }
        Place::Dir(dir) => {
            let store = DeadLetterDir::open(dir)
                .map_err(|source| OpenError::Files {
                    path: dir.clone(),
                    source,
                })?
                .with_rotate_bytes(server.dead_letter_rotate_bytes);
            Ok(Arc::new(store))
        }
        Place::Redis => {
            let url = env.redis_url.as_ref().ok_or(OpenError::NoRedisUrl)?;
            let mut config = RedisConfig::new(url.expose());
            if let Some(prefix) = &server.redis_prefix {
                config = config.with_prefix(prefix.as_str());
            }
            let conn = config.connect().await.map_err(OpenError::Redis)?;
            Ok(Arc::new(
                RedisDeadLetters::new(conn).with_max_len(server.dead_letter_stream_max_len),
            ))
        }
    }
}

/// What `dead-letters list` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListSummary {
    /// Records pending, by reason label.
    pub by_reason: BTreeMap<String, usize>,
    /// Entries that could not be read.
    pub unreadable: usize,
}

impl ListSummary {
    /// Records pending.
    pub fn pending(&self) -> usize {
        self.by_reason.values().sum()
    }
}

/// Writes what `store` holds to `out` (see the [module docs](self)).
///
/// # Errors
///
/// The store cannot be read, or `out` refused the text.
pub async fn list(
    store: &dyn DeadLetterStore,
    show_personal_data: bool,
    out: &mut dyn Write,
) -> Result<ListSummary, Box<dyn std::error::Error + Send + Sync>> {
    let listing = store.pending().await?;
    let mut summary = ListSummary::default();
    for stored in &listing.records {
        *summary
            .by_reason
            .entry(stored.record.reason.label().to_owned())
            .or_default() += 1;
    }
    summary.unreadable = listing.errors.len();
    writeln!(
        out,
        "dead letters in {}: {} pending, {} unreadable",
        store.location(),
        summary.pending(),
        summary.unreadable
    )?;
    for (reason, n) in &summary.by_reason {
        writeln!(out, "  {n} × {reason}")?;
    }
    if !listing.records.is_empty() {
        writeln!(
            out,
            "entries (key, recorded at, sink, reason, source, attempts):"
        )?;
        if !show_personal_data {
            writeln!(
                out,
                "  (ids, details and items are left out; add --show-personal-data to see them)"
            )?;
        }
    }
    for Stored { key, record, .. } in &listing.records {
        let source = record
            .source
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        writeln!(
            out,
            "  {key}  {}  {}  {}  {source}  {}",
            record.recorded_at, record.sink, record.reason, record.attempts
        )?;
        if show_personal_data {
            writeln!(out, "      id: {}", record.id.as_deref().unwrap_or("-"))?;
            writeln!(out, "      detail: {}", record.reason.detail())?;
            writeln!(out, "      item: {}", record.item)?;
        }
    }
    if !listing.errors.is_empty() {
        writeln!(out, "unreadable entries:")?;
        for error in &listing.errors {
            writeln!(out, "  {}", error_chain(error))?;
        }
    }
    Ok(summary)
}

/// What `dead-letters replay` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResendSummary {
    /// Records pending at the start.
    pub pending: usize,
    /// Accepted and marked replayed.
    pub delivered: usize,
    /// Nothing left to write (e.g. filtered by the configuration now), marked replayed.
    pub skipped: usize,
    /// Refused again, by reason: still dead letters.
    pub refused: BTreeMap<String, usize>,
    /// Not replayable by this command, by why: still dead letters.
    pub not_replayable: BTreeMap<String, usize>,
    /// Entries of the store that could not be read.
    pub unreadable: usize,
    /// Left pending when it gave up.
    pub left: usize,
    /// Whether it gave up.
    pub gave_up: bool,
    /// Waits for an outage.
    pub waits: u64,
}

impl ResendSummary {
    /// How it ended (the same exit statuses as `replay`).
    pub fn end(&self) -> ReplayEnd {
        if self.gave_up {
            ReplayEnd::GaveUp
        } else if !self.refused.is_empty() || !self.not_replayable.is_empty() || self.unreadable > 0
        {
            ReplayEnd::Refused
        } else {
            ReplayEnd::Done
        }
    }
}

impl fmt::Display for ResendSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refused: usize = self.refused.values().sum();
        let not_replayable: usize = self.not_replayable.values().sum();
        writeln!(
            f,
            "pending {}: delivered {}, skipped {} (both marked replayed), refused again {}, not replayable {}, unreadable {}, left {}",
            self.pending,
            self.delivered,
            self.skipped,
            refused,
            not_replayable,
            self.unreadable,
            self.left
        )?;
        for (label, map) in [
            ("refused again", &self.refused),
            ("not replayable", &self.not_replayable),
        ] {
            for (why, n) in map {
                writeln!(f, "  {label}: {n} × {why}")?;
            }
        }
        if self.waits > 0 {
            writeln!(f, "  waited {} times for Customer.io", self.waits)?;
        }
        if self.gave_up {
            writeln!(
                f,
                "gave up: {} dead letters were not sent and stay pending",
                self.left
            )?;
        }
        Ok(())
    }
}

/// A dispatcher item's dead letter on its way again.
#[derive(Debug)]
struct ItemJob {
    key: RecordKey,
    entry: DeadLetter,
}

/// How re-sending a dispatcher item went.
enum Resent {
    Delivered,
    Refused(String),
    RetryLater,
    NotReplayable(String),
}

async fn resend_with<S>(handle: &DispatcherHandle<S>, entry: DeadLetter) -> Option<Resent>
where
    S: Sink,
    S::Item: DeserializeOwned,
{
    let result = handle.resubmit(vec![entry]).await.into_iter().next()?;
    Some(match result {
        Err(ResubmitError::WrongSink { .. }) => return None,
        Err(error) => Resent::NotReplayable(error_chain(&error)),
        Ok(completion) => match completion.await {
            Ok(Delivery::Delivered { .. }) => Resent::Delivered,
            Ok(Delivery::DeadLettered { reason, .. }) => Resent::Refused(reason.label().to_owned()),
            Ok(_) | Err(_) => Resent::RetryLater,
        },
    })
}

/// Sends a dispatcher item to the engine's dispatcher of its sink.
async fn resend(engine: &SyncEngine, entry: DeadLetter) -> Resent {
    let sink = entry.sink.clone();
    if let Some(resent) = resend_with(&engine.customerio, entry.clone()).await {
        return resent;
    }
    if let Some(segments) = &engine.segments
        && let Some(resent) = resend_with(segments, entry.clone()).await
    {
        return resent;
    }
    if let Some(segment) = &engine.segment
        && let Some(resent) = resend_with(segment, entry).await
    {
        return resent;
    }
    Resent::NotReplayable(format!(
        "no dispatcher for sink `{sink}` with this configuration and environment"
    ))
}

/// One person's (one ordering key's) items, in order, until one must wait.
async fn run_group(engine: &SyncEngine, group: &mut VecDeque<ItemJob>) -> Vec<(RecordKey, Resent)> {
    let mut done = Vec::new();
    while let Some(job) = group.front() {
        match resend(engine, job.entry.clone()).await {
            Resent::RetryLater => break,
            other => {
                let job = group.pop_front().expect("the front was there");
                done.push((job.key, other));
            }
        }
    }
    done
}

/// Sends the pending dead letters of `store` again through `engine` (see the
/// [module docs](self)), marking what was accepted. Waits out outages by `backoff`; gives up
/// `give_up_after` from now when given, leaving what was not sent pending.
///
/// # Errors
///
/// The store cannot be read or marked.
pub async fn replay(
    engine: &SyncEngine,
    store: &dyn DeadLetterStore,
    backoff: &Backoff,
    give_up_after: Option<Duration>,
) -> Result<ResendSummary, DeadLetterError> {
    let listing = store.pending().await?;
    let mut summary = ResendSummary {
        pending: listing.records.len(),
        unreadable: listing.errors.len(),
        ..ResendSummary::default()
    };
    let mut jobs: VecDeque<Job> = VecDeque::new();
    let mut groups: Vec<VecDeque<ItemJob>> = Vec::new();
    let mut group_of: HashMap<u64, usize> = HashMap::new();
    let not_replayable = |summary: &mut ResendSummary, why: String| {
        *summary.not_replayable.entry(why).or_default() += 1;
    };
    for Stored { key, record, .. } in listing.records {
        if let Some(message) = record.message() {
            match message {
                Ok(message) => {
                    let mut job = Job::from_record(&record, message);
                    job.key = Some(key);
                    jobs.push_back(job);
                }
                Err(_) => not_replayable(&mut summary, "still not a Segment message".to_owned()),
            }
            continue;
        }
        let Some(entry) = record.to_dead_letter() else {
            not_replayable(
                &mut summary,
                format!("a `{}` record", record.reason.label()),
            );
            continue;
        };
        let job = ItemJob { key, entry };
        match job.entry.ordering_key {
            Some(order) => {
                let index = *group_of.entry(order).or_insert_with(|| {
                    groups.push(VecDeque::new());
                    groups.len() - 1
                });
                groups[index].push_back(job);
            }
            None => groups.push(VecDeque::from([job])),
        }
    }

    // Segment messages: through the flows, as `replay` sends them.
    let mut driver = Driver::new(backoff, give_up_after, CHUNK);
    loop {
        match driver.next(&engine.router, || jobs.pop_front()).await {
            Step::Finished(finished) => {
                let mut accepted = Vec::new();
                for (job, how) in finished {
                    match how {
                        Finished::Delivered => summary.delivered += 1,
                        Finished::Skipped(_) => summary.skipped += 1,
                        Finished::Refused(_, label) => {
                            *summary.refused.entry(label).or_default() += 1;
                            continue;
                        }
                    }
                    accepted.extend(job.key);
                }
                store.mark_replayed(&accepted).await?;
            }
            Step::Done => break,
            Step::GaveUp(left) => {
                summary.gave_up = true;
                summary.left += left.len() + jobs.len();
                break;
            }
        }
    }
    summary.waits += driver.waits;

    // Dispatcher items: each ordering key's items in order, keys concurrently.
    let deadline = give_up_after.map(|after| Instant::now() + after);
    let mut rounds = 0;
    let mut delays = backoff.delays(rounds);
    while groups.iter().any(|g| !g.is_empty()) {
        if summary.gave_up || deadline.is_some_and(|d| Instant::now() >= d) {
            summary.gave_up = true;
            summary.left += groups.iter().map(VecDeque::len).sum::<usize>();
            break;
        }
        let round = futures::stream::iter(
            groups
                .iter_mut()
                .filter(|g| !g.is_empty())
                .map(|group| run_group(engine, group)),
        )
        .buffer_unordered(32)
        .collect::<Vec<_>>();
        let results = match deadline {
            None => round.await,
            Some(deadline) => tokio::select! {
                results = round => results,
                () = tokio::time::sleep_until(deadline) => Vec::new(),
            },
        };
        let results: Vec<(RecordKey, Resent)> = results.into_iter().flatten().collect();
        let progress = !results.is_empty();
        let mut accepted = Vec::new();
        for (key, resent) in results {
            match resent {
                Resent::Delivered => {
                    summary.delivered += 1;
                    accepted.push(key);
                }
                Resent::Refused(label) => *summary.refused.entry(label).or_default() += 1,
                Resent::NotReplayable(why) => not_replayable(&mut summary, why),
                Resent::RetryLater => {}
            }
        }
        store.mark_replayed(&accepted).await?;
        if progress {
            rounds += 1;
            delays = backoff.delays(rounds);
        } else if groups.iter().any(|g| !g.is_empty()) {
            let delay = delays.next().unwrap_or(Duration::from_secs(60));
            summary.waits += 1;
            match deadline {
                Some(deadline) if Instant::now() + delay >= deadline => {
                    tokio::time::sleep_until(deadline).await;
                }
                _ => tokio::time::sleep(delay).await,
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn the_data_directory_is_chosen_in_the_documented_order() {
        let all = [
            (DATA_DIR_VAR, "/env/dir"),
            ("XDG_STATE_HOME", "/xdg/state"),
            ("HOME", "/home/ada"),
        ];
        let flag = Path::new("/flag/dir");
        let config = Path::new("/config/dir");
        assert_eq!(data_dir(Some(flag), Some(config), lookup(&all)), flag);
        assert_eq!(
            data_dir(None, Some(config), lookup(&all)),
            Path::new("/env/dir")
        );
        assert_eq!(data_dir(None, Some(config), lookup(&all[1..])), config);
        assert_eq!(
            data_dir(None, None, lookup(&all[1..])),
            Path::new("/xdg/state/cio-sync")
        );
        // A relative XDG_STATE_HOME is ignored, as the spec says; so are blank variables.
        assert_eq!(
            data_dir(
                None,
                None,
                lookup(&[
                    ("XDG_STATE_HOME", "state"),
                    ("HOME", "/home/ada"),
                    (DATA_DIR_VAR, " ")
                ])
            ),
            Path::new("/home/ada/.local/state/cio-sync")
        );
        assert_eq!(
            data_dir(None, None, lookup(&[])),
            Path::new("cio-sync-data")
        );
    }

    #[test]
    fn a_file_wins_over_redis_which_wins_over_the_directory() {
        let plain = Env::from_lookup(|_| None).unwrap();
        let with_redis =
            Env::from_lookup(|name| (name == "REDIS_URL").then(|| "redis://localhost".to_owned()))
                .unwrap();
        let dir = PathBuf::from("/data");
        let file = Some(PathBuf::from("/dead.jsonl"));
        assert_eq!(
            Place::choose(file.clone(), true, &with_redis, dir.clone()),
            Place::File(PathBuf::from("/dead.jsonl"))
        );
        assert_eq!(
            Place::choose(None, false, &with_redis, dir.clone()),
            Place::Redis
        );
        assert_eq!(Place::choose(None, true, &plain, dir.clone()), Place::Redis);
        assert_eq!(
            Place::choose(None, false, &plain, dir.clone()),
            Place::Dir(dir)
        );
        assert_eq!(Place::Redis.kind(), "redis");
    }

    #[tokio::test]
    async fn the_redis_stream_needs_redis_url() {
        let plain = Env::from_lookup(|_| None).unwrap();
        let error = open(&Place::Redis, &plain, &ServerConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(error, OpenError::NoRedisUrl), "{error}");
    }
}
