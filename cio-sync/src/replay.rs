//! `cio-sync replay`: Segment archives into Customer.io, outlasting outages.
//!
//! An archive is a file of JSON lines, plain or gzip-compressed (recognised by its first two
//! bytes, whatever its name). Each line is one Segment message or one batch envelope
//! (`{"batch": [...], "context": ...}`, the envelope's `context`, `integrations` and `sentAt`
//! applied to each item). A resume file (`--resume FILE`) is a file of
//! [records](cio_segment_sync::dead_letter::record) written by a replay that gave up; its Segment
//! messages are sent with the ids they were written with. Messages go through the flows the
//! configuration turns on ([`SegmentRouter`]: triggers and deletions, onboarding milestones,
//! audience changes, routed as `serve` routes them) in chunks: each person's messages keep
//! their order while different people run concurrently.
//!
//! # Outages
//!
//! A message the delivery engine could not deliver yet (Customer.io down, throttling, a store
//! unavailable: [`Ack::RetryLater`](cio_segment_sync::outcome::Ack)) is never dead-lettered: it
//! stays pending, at the head of its person's line, and is sent again with the next chunk. The
//! person's later messages wait behind it. When a whole chunk makes no progress (an outage), the
//! replay waits before trying again: [`Backoff`], 1 s doubling to at most 60 s by default, plus
//! up to as much again of jitter. It stops reading while it waits, so memory stays bounded by
//! the chunk.
//!
//! By default it waits for as long as the outage lasts. With a [`GiveUp`] (`--give-up-after
//! 2h`) it stops at that deadline, even in the middle of a chunk, and writes every message not
//! delivered yet, the pending ones first and then the rest of the input in order, to a resume
//! file of records ([`Reason::NotSent`], the last error, the archive file and line). A message
//! whose delivery was in flight at the deadline is written too: it may have been delivered, and
//! sending it again is harmless since it carries the same ids.
//!
//! Permanent refusals (a `400`, a `207` item, an item too large, a message that cannot be
//! mapped) and unreadable items are recorded in the dead-letter store, as Segment messages
//! with their archive file and line, so `cio-sync dead-letters replay` can send them again.
//!
//! # Same ids on every replay
//!
//! Customer.io de-duplicates events by their id, and the mapping derives the id from the
//! message's `messageId` (and timestamp). A message without a `messageId` gets one derived from
//! its content: `replay-sha256-` followed by the first 32 hex digits (128 bits) of the SHA-256
//! of the item's bytes exactly as they are in the archive (a single-message line without its
//! surrounding whitespace; a batch item as the text between its delimiters). The same line
//! replayed again therefore gets the same `messageId`, the same Customer.io event id, and the
//! same dedupe key; two byte-identical lines are one message. Resume files and dead letters
//! keep the derived `messageId` in the message they hold.
//!
//! Reading is synchronous between chunks (archives are local files); delivery is async.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Lines, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use cio_segment_sync::dead_letter::{
    DeadLetterError, DeadLetterReason, DeadLetterSink, Reason, Record, RecordKey, SEGMENT_MESSAGE,
    Source, parse_record,
};
use cio_segment_sync::dispatch::FailureKind;
use cio_segment_sync::flows::router::SegmentRouter;
use cio_segment_sync::outcome::{AckRule, Outcome};
use cio_segment_sync::pipeline::PipelineError;
use flate2::read::MultiGzDecoder;
use indicatif::ProgressBar;
use jiff::Timestamp;
use segment_model::{Batch, Message};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error_chain;

/// Prefix of the `messageId`s derived from content.
pub const DERIVED_ID_PREFIX: &str = "replay-sha256-";

/// Messages handed to the flow at once (per-person order holds within and across chunks).
pub const CHUNK: usize = 500;

/// The `messageId` derived from an item's bytes (see the [module docs](self)).
pub fn derived_message_id(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    format!("{DERIVED_ID_PREFIX}{}", hex::encode(&digest[..16]))
}

/// `item` with a `messageId` derived from `raw` (its bytes in the archive) when it has none.
fn with_message_id(mut item: Value, raw: &[u8]) -> Value {
    let missing = item
        .get("messageId")
        .is_none_or(|id| id.as_str().is_none_or(str::is_empty));
    if missing && let Some(object) = item.as_object_mut() {
        object.insert(
            "messageId".to_owned(),
            Value::String(derived_message_id(raw)),
        );
    }
    item
}

/// The raw text of each item of a batch envelope, in order.
#[derive(serde::Deserialize)]
struct RawItems<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
}

/// An item of an archive that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// Why (names the JSON path; no customer data).
    pub reason: String,
    /// The item or line as read (a JSON value, or the raw line as a string).
    pub raw: Value,
}

/// The messages of one archive line, and the items that could not be read. Messages without a
/// `messageId` get a [derived one](derived_message_id).
///
/// ```
/// use cio_sync::replay::{messages_from_line, DERIVED_ID_PREFIX};
///
/// let line = r#"{"batch":[{"type":"track","userId":"u-1","event":"A"},{"type":"nope"}]}"#;
/// let (messages, unreadable) = messages_from_line(line);
/// assert_eq!(messages.len(), 1);
/// assert!(messages[0].message_id().unwrap().starts_with(DERIVED_ID_PREFIX));
/// assert_eq!(unreadable.len(), 1);
/// assert!(unreadable[0].reason.starts_with("batch item 1"));
/// ```
pub fn messages_from_line(line: &str) -> (Vec<Message>, Vec<Unreadable>) {
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(error) => {
            return (
                Vec::new(),
                vec![Unreadable {
                    reason: format!("not JSON (column {})", error.column()),
                    raw: Value::String(line.to_owned()),
                }],
            );
        }
    };
    let is_batch = value.get("batch").is_some_and(Value::is_array);
    if !is_batch {
        let raw = line.trim().as_bytes();
        return match Message::from_value(with_message_id(value.clone(), raw)) {
            Ok(message) => (vec![message], Vec::new()),
            Err(error) => (
                Vec::new(),
                vec![Unreadable {
                    reason: error_chain(&error),
                    raw: value,
                }],
            ),
        };
    }
    let mut value = value;
    // The line parsed as JSON with an array under `batch`, so this borrowing parse succeeds
    // too; were it to fail, the items would merely keep no derived id.
    let raw_items = serde_json::from_str::<RawItems<'_>>(line)
        .map(|r| r.batch)
        .unwrap_or_default();
    if let Some(items) = value.get_mut("batch").and_then(Value::as_array_mut) {
        for (item, raw) in items.iter_mut().zip(&raw_items) {
            *item = with_message_id(std::mem::take(item), raw.get().as_bytes());
        }
    }
    match Batch::from_value_lenient(value.clone()) {
        Ok(parsed) => {
            let unreadable = parsed
                .errors
                .into_iter()
                .map(|e| Unreadable {
                    reason: format!("batch item {}: {}", e.index, e.error),
                    raw: e.raw,
                })
                .collect();
            (parsed.batch.into_messages(), unreadable)
        }
        Err(error) => (
            Vec::new(),
            vec![Unreadable {
                reason: error_chain(&error),
                raw: value,
            }],
        ),
    }
}

/// The first wait after a chunk made no progress.
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(1);

/// The longest wait between two tries during an outage, before jitter.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(60);

/// How long to wait between tries while nothing can be delivered: exponential from `initial`,
/// doubling up to `max`, plus a random jitter of up to as much again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The first wait ([`DEFAULT_RETRY_INITIAL`]).
    pub initial: Duration,
    /// The longest wait before jitter ([`DEFAULT_RETRY_MAX`]).
    pub max: Duration,
    /// Seeds the jitter, for reproducible runs; random when `None`.
    pub jitter_seed: Option<u64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: DEFAULT_RETRY_INITIAL,
            max: DEFAULT_RETRY_MAX,
            jitter_seed: None,
        }
    }
}

impl Backoff {
    /// Waits from `initial` doubling to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter_seed: None,
        }
    }

    /// Seeds the jitter.
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// The waits, endless; `round` varies a seeded jitter between runs of waits.
    pub(crate) fn delays(&self, round: u64) -> impl Iterator<Item = Duration> + use<> {
        let mut builder = ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .without_max_times();
        if let Some(seed) = self.jitter_seed {
            builder = builder.with_jitter_seed(seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        builder.build()
    }
}

/// When to stop waiting for an outage, and where to write what was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveUp {
    /// How long after the start to stop.
    pub after: Duration,
    /// The resume file to create (it must not exist yet).
    pub resume_to: PathBuf,
}

/// How a replay runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayOptions {
    /// The waits during an outage.
    pub backoff: Backoff,
    /// When to give up; `None` (the default) waits for as long as it takes.
    pub give_up: Option<GiveUp>,
    /// Messages handed to the flows at once ([`CHUNK`]); at least 1.
    pub chunk: usize,
    /// Where what was not sent goes when the replay is stopped ([`replay_until`]) without a
    /// [`give_up`](Self::give_up) naming its own resume file.
    pub resume_to: Option<PathBuf>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            give_up: None,
            chunk: CHUNK,
            resume_to: None,
        }
    }
}

impl ReplayOptions {
    /// Sets the waits during an outage.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Gives up `after` the start, writing what was not sent to `resume_to`.
    pub fn give_up_after(mut self, after: Duration, resume_to: impl Into<PathBuf>) -> Self {
        self.give_up = Some(GiveUp {
            after,
            resume_to: resume_to.into(),
        });
        self
    }

    /// Where what was not sent goes when a [`replay_until`] is stopped (a give-up's own file
    /// wins).
    pub fn resume_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume_to = Some(path.into());
        self
    }

    /// Sets the chunk size (0 counts as 1).
    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }
}

/// What a replay reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A Segment archive (JSON lines, plain or gzip).
    Archive(PathBuf),
    /// A resume file (or a dead-letter file) of records; its Segment messages are sent.
    Resume(PathBuf),
}

/// How a replay ended, from the best to the worst. Each has its exit status
/// ([`crate::cli::EXIT_CODES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ReplayEnd {
    /// Everything read was delivered or skipped.
    Done,
    /// Some items were refused for good or could not be read; the refused and unreadable ones
    /// are in the dead letters.
    Refused,
    /// It gave up; what was not sent is in the resume file.
    GaveUp,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplaySummary {
    /// Messages read (decoded).
    pub read: usize,
    /// Messages Customer.io accepted.
    pub delivered: usize,
    /// Skipped messages, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Messages refused for good and dead-lettered, by reason.
    pub dead_lettered: BTreeMap<String, usize>,
    /// Lines, items or files that could not be read, by reason.
    pub unreadable: BTreeMap<String, usize>,
    /// Records of a resume file that are not Segment messages (left where they are; send them
    /// with `cio-sync dead-letters replay`).
    pub not_replayable: usize,
    /// Messages that had to be tried again at least once.
    pub retried: usize,
    /// Waits for an outage (chunks that made no progress).
    pub waits: u64,
    /// Messages written to the resume file when it gave up.
    pub not_sent: usize,
    /// The resume file, when it gave up.
    pub resume_file: Option<PathBuf>,
}

impl ReplaySummary {
    /// How it ended: gave up, else some refused or unreadable, else done.
    pub fn end(&self) -> ReplayEnd {
        if self.resume_file.is_some() {
            ReplayEnd::GaveUp
        } else if !self.dead_lettered.is_empty()
            || !self.unreadable.is_empty()
            || self.not_replayable > 0
        {
            ReplayEnd::Refused
        } else {
            ReplayEnd::Done
        }
    }

    /// Whether everything read was delivered or skipped.
    pub fn is_clean(&self) -> bool {
        self.end() == ReplayEnd::Done
    }

    /// Renders the summary with the throughput over `seconds`.
    pub fn report(&self, seconds: f64) -> String {
        let total = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
        let rate = if seconds > 0.0 {
            self.read as f64 / seconds
        } else {
            0.0
        };
        let mut out = format!(
            "read {}, delivered {}, skipped {}, dead-lettered {}, unreadable {}, not sent {} in {seconds:.1} s ({rate:.0} messages/s)\n",
            self.read,
            self.delivered,
            total(&self.skipped),
            total(&self.dead_lettered),
            total(&self.unreadable),
            self.not_sent,
        );
        if self.waits > 0 || self.retried > 0 {
            out.push_str(&format!(
                "  waited {} times for Customer.io; {} messages were tried more than once\n",
                self.waits, self.retried
            ));
        }
        for (label, map) in [
            ("skipped", &self.skipped),
            ("dead-lettered", &self.dead_lettered),
            ("unreadable", &self.unreadable),
        ] {
            for (why, n) in map {
                out.push_str(&format!("  {label}: {n} × {why}\n"));
            }
        }
        if self.not_replayable > 0 {
            out.push_str(&format!(
                "  {} records are not Segment messages: send them with `cio-sync dead-letters replay --file FILE`\n",
                self.not_replayable
            ));
        }
        if let Some(file) = &self.resume_file {
            out.push_str(&format!(
                "gave up: {} messages not sent were written to {}; send them with `cio-sync replay --resume {}`\n",
                self.not_sent,
                file.display(),
                file.display()
            ));
        }
        out
    }
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report(0.0))
    }
}

/// A replay could not record what it must keep. Nothing already recorded is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The dead-letter store refused a record.
    #[error("a dead letter could not be recorded")]
    DeadLetters(#[source] DeadLetterError),
    /// The resume file could not be written.
    #[error("the resume file {} could not be written", .path.display())]
    Resume {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The replay was stopped with no resume file to write what was not sent to.
    #[error("the replay was stopped and no resume file was named")]
    NoResumeFile,
}

/// A message on its way: where it came from and how it went so far.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) message: Message,
    pub(crate) source: Option<Source>,
    /// The dead-letter record it came from (`dead-letters replay`).
    pub(crate) key: Option<RecordKey>,
    pub(crate) attempts: u32,
    pub(crate) submitted_at: Option<Timestamp>,
    pub(crate) last_error: Option<String>,
}

impl Job {
    pub(crate) fn new(message: Message, source: Option<Source>) -> Self {
        Self {
            message,
            source,
            key: None,
            attempts: 0,
            submitted_at: None,
            last_error: None,
        }
    }

    /// The job of a record holding a Segment message, keeping its source and attempts.
    pub(crate) fn from_record(record: &Record, message: Message) -> Self {
        Self {
            message,
            source: record.source.clone(),
            key: None,
            attempts: record.attempts,
            submitted_at: record.submitted_at,
            last_error: None,
        }
    }

    /// The record of this message with `reason`.
    pub(crate) fn record(&self, reason: Reason) -> Record {
        let record = Record::segment_message(&self.message, reason, self.source.clone())
            // A parsed message always serialises; were it not to, keep its id at least.
            .unwrap_or_else(|_| {
                Record::new(
                    SEGMENT_MESSAGE,
                    Value::Null,
                    Reason::Unreadable {
                        error: "the message could not be serialised".to_owned(),
                    },
                )
            });
        record.with_attempts(self.attempts, self.submitted_at)
    }

    /// The resume entry of this message.
    pub(crate) fn not_sent(&self) -> Record {
        self.record(Reason::NotSent {
            last_error: self
                .last_error
                .clone()
                .unwrap_or_else(|| "not attempted before giving up".to_owned()),
        })
    }
}

/// How a job finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finished {
    Delivered,
    Skipped(String),
    /// Refused for good: the reason, and the summary's key for it.
    Refused(DeadLetterReason, String),
}

/// What the driver has next.
#[derive(Debug)]
pub(crate) enum Step {
    /// Jobs that finished in the last chunk.
    Finished(Vec<(Job, Finished)>),
    /// Nothing left.
    Done,
    /// The deadline passed: the jobs not finished, in order (pending first). The input not
    /// read yet is still in the reader.
    GaveUp(Vec<Job>),
}

/// Runs jobs through the router chunk by chunk, keeping each person's order, waiting out
/// outages with [`Backoff`] and giving up at a deadline.
pub(crate) struct Driver {
    backoff: Backoff,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    resets: u64,
    deadline: Option<Instant>,
    chunk: usize,
    pending: VecDeque<Job>,
    wait: Option<Duration>,
    stop: Option<watch::Receiver<bool>>,
    pub(crate) waits: u64,
    pub(crate) retried: usize,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("backoff", &self.backoff)
            .field("deadline", &self.deadline)
            .field("chunk", &self.chunk)
            .field("pending", &self.pending.len())
            .field("waits", &self.waits)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver waiting by `backoff`, giving up `give_up_after` from now when given.
    pub(crate) fn new(backoff: &Backoff, give_up_after: Option<Duration>, chunk: usize) -> Self {
        Self {
            backoff: backoff.clone(),
            delays: Box::new(backoff.delays(0)),
            resets: 0,
            deadline: give_up_after.map(|after| Instant::now() + after),
            chunk: chunk.max(1),
            pending: VecDeque::new(),
            wait: None,
            stop: None,
            waits: 0,
            retried: 0,
        }
    }

    /// Stops (like a deadline) once `stop` turns `true`: a shutdown signal.
    pub(crate) fn with_stop(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    fn is_stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| *stop.borrow())
    }

    /// Resolves once the stop signal is given (never without one).
    async fn stopped(&self) {
        match &self.stop {
            Some(stop) => {
                let mut stop = stop.clone();
                if stop.wait_for(|stopped| *stopped).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    fn reset_backoff(&mut self) {
        self.resets += 1;
        self.delays = Box::new(self.backoff.delays(self.resets));
    }

    fn gave_up(&mut self) -> Step {
        Step::GaveUp(self.pending.drain(..).collect())
    }

    fn deadline_passed(&self) -> bool {
        self.is_stopped()
            || self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Resolves at the deadline or the stop signal, whichever comes first (never without).
    async fn ended(&self) {
        let deadline = async {
            match self.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = deadline => {}
            () = self.stopped() => {}
        }
    }

    /// Sleeps `delay`, or until the deadline or the stop signal when that comes first (`false`
    /// then).
    async fn sleep(&self, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = self.ended() => false,
        }
    }

    /// The next step: tops the pending jobs up from `fresh` to a chunk, runs them, and
    /// answers with what finished; waits first when the last chunk made no progress.
    pub(crate) async fn next(
        &mut self,
        router: &SegmentRouter,
        mut fresh: impl FnMut() -> Option<Job>,
    ) -> Step {
        loop {
            if let Some(delay) = self.wait.take() {
                self.waits += 1;
                tracing::info!(
                    pending = self.pending.len(),
                    wait_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "Nothing could be delivered; waiting before trying again."
                );
                if !self.sleep(delay).await {
                    return self.gave_up();
                }
            }
            if self.deadline_passed() {
                return self.gave_up();
            }
            while self.pending.len() < self.chunk {
                match fresh() {
                    Some(job) => self.pending.push_back(job),
                    None => break,
                }
            }
            if self.pending.is_empty() {
                return Step::Done;
            }
            let jobs: Vec<Job> = self.pending.drain(..).collect();
            let messages: Vec<Message> = jobs.iter().map(|job| job.message.clone()).collect();
            let now = Timestamp::now();
            let run = router.process_batch_routed(&messages);
            let results = tokio::select! {
                results = run => results,
                () = self.ended() => {
                    self.pending = jobs.into();
                    return self.gave_up();
                }
            };
            let mut finished = Vec::new();
            for (mut job, (_route, result)) in jobs.into_iter().zip(results) {
                job.submitted_at.get_or_insert(now);
                let how = match result {
                    Ok(Outcome::Delivered) => Finished::Delivered,
                    Ok(Outcome::Skipped(reason)) => Finished::Skipped(reason.to_string()),
                    Ok(Outcome::DeadLettered(reason)) => {
                        let label = reason.label().to_owned();
                        Finished::Refused(reason, label)
                    }
                    Ok(other) => Finished::Refused(
                        DeadLetterReason::Failed {
                            kind: FailureKind::Permanent,
                            error: other.to_string(),
                        },
                        other.label().to_owned(),
                    ),
                    Err(error) if error.ack().is_retry_later() => {
                        if job.last_error.is_none() {
                            self.retried += 1;
                        }
                        // A blocked message was not attempted: it keeps its own last error.
                        if !matches!(error, PipelineError::Blocked) {
                            job.attempts += 1;
                            job.last_error = Some(error_chain(&error));
                        } else if job.last_error.is_none() {
                            job.last_error = Some(error_chain(&error));
                        }
                        self.pending.push_back(job);
                        continue;
                    }
                    Err(error) => {
                        let text = error_chain(&error);
                        Finished::Refused(
                            DeadLetterReason::Failed {
                                kind: FailureKind::Permanent,
                                error: text.clone(),
                            },
                            format!("refused: {text}"),
                        )
                    }
                };
                job.attempts += 1;
                finished.push((job, how));
            }
            if self.pending.is_empty() {
                self.reset_backoff();
            } else if finished.is_empty() {
                self.wait = Some(self.delays.next().unwrap_or(self.backoff.max));
            } else {
                self.reset_backoff();
            }
            if !finished.is_empty() {
                return Step::Finished(finished);
            }
        }
    }
}

/// Counts the bytes read from the file itself (compressed bytes for a gzip archive), so the
/// progress bar's position and ETA are right for both kinds.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path`, decompressing it when it starts with the gzip magic bytes.
pub fn open(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    open_counting(path, Arc::default())
}

fn open_counting(path: &Path, read: Arc<AtomicU64>) -> std::io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::new(Counting {
        inner: File::open(path)?,
        read,
    });
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// One thing read from the inputs.
enum Item {
    Job(Box<Job>),
    /// An item that is not a Segment message: a dead letter.
    Unreadable {
        record: Box<Record>,
        reason: String,
    },
    /// A line of a resume file that is not a record (it stays in that file).
    BadRecord(String),
    /// A record that is not a Segment message.
    NotReplayable,
}

/// The input being read: what it is, its name, its lines and the last line number read.
struct Current {
    archive: bool,
    file: String,
    lines: Lines<Box<dyn BufRead>>,
    line_no: u64,
}

/// Reads the inputs in order, an item at a time.
struct Reader<'a> {
    inputs: std::slice::Iter<'a, Input>,
    current: Option<Current>,
    queue: VecDeque<Item>,
    bytes: Arc<AtomicU64>,
    done_before: u64,
}

impl<'a> Reader<'a> {
    fn new(inputs: &'a [Input]) -> Self {
        Self {
            inputs: inputs.iter(),
            current: None,
            queue: VecDeque::new(),
            bytes: Arc::default(),
            done_before: 0,
        }
    }

    fn position(&self) -> u64 {
        self.done_before + self.bytes.load(Ordering::Relaxed)
    }

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if let Some(Current {
                archive,
                file,
                lines,
                line_no,
            }) = self.current.as_mut()
            {
                let next = lines.next();
                let is_archive = *archive;
                let file = file.clone();
                match next {
                    Some(Ok(line)) => {
                        *line_no += 1;
                        let at = *line_no;
                        if line.trim().is_empty() {
                            continue;
                        }
                        if is_archive {
                            self.queue_archive_line(&file, at, &line);
                        } else {
                            self.queue_record_line(&file, at, &line);
                        }
                    }
                    Some(Err(error)) => {
                        let at = *line_no + 1;
                        self.current = None;
                        let reason = format!("read error ({})", error.kind());
                        self.queue
                            .push_back(unreadable(&file, at, Value::Null, reason));
                    }
                    None => {
                        self.current = None;
                        self.done_before += self.bytes.swap(0, Ordering::Relaxed);
                    }
                }
                continue;
            }
            let input = self.inputs.next()?;
            let path = match input {
                Input::Archive(path) | Input::Resume(path) => path,
            };
            let file = path.display().to_string();
            self.bytes.store(0, Ordering::Relaxed);
            match open_counting(path, Arc::clone(&self.bytes)) {
                Ok(reader) => {
                    self.current = Some(Current {
                        archive: matches!(input, Input::Archive(_)),
                        file,
                        lines: reader.lines(),
                        line_no: 0,
                    });
                }
                Err(error) => {
                    let reason = format!("cannot open file ({})", error.kind());
                    match input {
                        Input::Archive(_) => {
                            self.queue
                                .push_back(unreadable(&file, 0, Value::Null, reason));
                        }
                        Input::Resume(_) => self
                            .queue
                            .push_back(Item::BadRecord(format!("{file}: {reason}"))),
                    }
                }
            }
        }
    }

    fn queue_archive_line(&mut self, file: &str, line: u64, text: &str) {
        let (messages, bad) = messages_from_line(text);
        for item in bad {
            let record = Record::new(
                SEGMENT_MESSAGE,
                item.raw,
                Reason::Unreadable {
                    error: item.reason.clone(),
                },
            )
            .with_source(Source::Archive {
                file: file.to_owned(),
                line,
            });
            self.queue.push_back(Item::Unreadable {
                record: Box::new(record),
                reason: "not a Segment message".to_owned(),
            });
        }
        let source = Source::Archive {
            file: file.to_owned(),
            line,
        };
        for message in messages {
            self.queue
                .push_back(Item::Job(Box::new(Job::new(message, Some(source.clone())))));
        }
    }

    fn queue_record_line(&mut self, file: &str, line: u64, text: &str) {
        let record = match parse_record(text.as_bytes()) {
            Ok(record) => record,
            Err(problem) => {
                self.queue
                    .push_back(Item::BadRecord(format!("{file}, line {line}: {problem}")));
                return;
            }
        };
        let item = match record.message() {
            None => Item::NotReplayable,
            Some(Ok(message)) => Item::Job(Box::new(Job::from_record(&record, message))),
            Some(Err(error)) => {
                let reason = format!("not a Segment message ({error})");
                let mut record = record;
                record.reason = Reason::Unreadable {
                    error: reason.clone(),
                };
                Item::Unreadable {
                    record: Box::new(record),
                    reason: "not a Segment message".to_owned(),
                }
            }
        };
        self.queue.push_back(item);
    }
}

fn unreadable(file: &str, line: u64, raw: Value, reason: String) -> Item {
    let record = Record::new(
        SEGMENT_MESSAGE,
        raw,
        Reason::Unreadable {
            error: reason.clone(),
        },
    )
    .with_source(Source::Archive {
        file: file.to_owned(),
        line,
    });
    Item::Unreadable {
        record: Box::new(record),
        reason,
    }
}

fn bump(map: &mut BTreeMap<String, usize>, reason: &str) {
    *map.entry(reason.to_owned()).or_default() += 1;
}

fn progress_text(summary: &ReplaySummary, driver: &Driver) -> String {
    format!(
        "read {} delivered {} dead-lettered {} pending {}",
        summary.read,
        summary.delivered,
        summary.dead_lettered.values().sum::<usize>(),
        driver.pending.len()
    )
}

/// Replays `inputs` through `router`. Permanent refusals and unreadable items are appended to
/// `dead_letters` as records of Segment messages with their archive file and line; what is
/// not delivered when [`ReplayOptions::give_up`] strikes goes to the resume file. `progress`,
/// when given, advances by the bytes read from the files (set its length to their total size)
/// and shows the counts.
///
/// # Errors
///
/// [`ReplayError`] when a dead letter or the resume file cannot be written (the replay stops
/// there: it cannot keep what it would otherwise lose).
pub async fn replay(
    router: &SegmentRouter,
    inputs: &[Input],
    options: &ReplayOptions,
    dead_letters: &dyn DeadLetterSink,
    progress: Option<&ProgressBar>,
) -> Result<ReplaySummary, ReplayError> {
    let (_never, stop) = watch::channel(false);
    replay_until(router, inputs, options, dead_letters, progress, stop).await
}

/// [`replay`], stopping cleanly once `stop` turns `true` (a shutdown signal): what was not
/// delivered goes to the resume file ([`ReplayOptions::resume_to`], or the give-up's), as when
/// giving up, so nothing read is lost and a `replay --resume` sends it with the same ids.
///
/// # Errors
///
/// As [`replay`]; and [`ReplayError::NoResumeFile`] when stopped with nowhere to write.
pub async fn replay_until(
    router: &SegmentRouter,
    inputs: &[Input],
    options: &ReplayOptions,
    dead_letters: &dyn DeadLetterSink,
    progress: Option<&ProgressBar>,
    stop: watch::Receiver<bool>,
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::default();
    let mut reader = Reader::new(inputs);
    let mut driver = Driver::new(
        &options.backoff,
        options.give_up.as_ref().map(|give_up| give_up.after),
        options.chunk,
    )
    .with_stop(stop);
    // Unreadable items met while topping up a chunk, recorded before the chunk's results.
    let mut refused: Vec<(Record, String)> = Vec::new();
    let mut not_replayable = 0;
    let mut bad_records: Vec<String> = Vec::new();
    let mut read = 0;
    loop {
        let step = driver
            .next(router, || {
                loop {
                    match reader.next()? {
                        Item::Job(job) => {
                            read += 1;
                            return Some(*job);
                        }
                        Item::Unreadable { record, reason } => refused.push((*record, reason)),
                        Item::BadRecord(reason) => bad_records.push(reason),
                        Item::NotReplayable => not_replayable += 1,
                    }
                }
            })
            .await;
        summary.read = read;
        for (record, reason) in refused.drain(..) {
            dead_letters
                .append(record)
                .await
                .map_err(ReplayError::DeadLetters)?;
            bump(&mut summary.unreadable, &reason);
        }
        for reason in bad_records.drain(..) {
            bump(&mut summary.unreadable, &reason);
        }
        summary.not_replayable = not_replayable;
        match step {
            Step::Finished(finished) => {
                for (job, how) in finished {
                    match how {
                        Finished::Delivered => summary.delivered += 1,
                        Finished::Skipped(reason) => bump(&mut summary.skipped, &reason),
                        Finished::Refused(reason, label) => {
                            dead_letters
                                .append(job.record(Reason::Refused(reason)))
                                .await
                                .map_err(ReplayError::DeadLetters)?;
                            bump(&mut summary.dead_lettered, &label);
                        }
                    }
                }
            }
            Step::Done => break,
            Step::GaveUp(pending) => {
                let resume_to = options
                    .give_up
                    .as_ref()
                    .map(|give_up| &give_up.resume_to)
                    .or(options.resume_to.as_ref())
                    .ok_or(ReplayError::NoResumeFile)?;
                write_resume(resume_to, pending, &mut reader, dead_letters, &mut summary).await?;
                break;
            }
        }
        if let Some(bar) = progress {
            bar.set_position(reader.position());
            bar.set_message(progress_text(&summary, &driver));
        }
    }
    summary.waits = driver.waits;
    summary.retried = driver.retried;
    if let Some(bar) = progress {
        bar.set_position(reader.position());
    }
    Ok(summary)
}

/// Writes `pending` and then every message not read yet to a new resume file; unreadable
/// items met on the way are dead letters as usual.
async fn write_resume(
    path: &Path,
    pending: Vec<Job>,
    reader: &mut Reader<'_>,
    dead_letters: &dyn DeadLetterSink,
    summary: &mut ReplaySummary,
) -> Result<(), ReplayError> {
    let fail = |source| ReplayError::Resume {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(fail)?;
    let mut out = BufWriter::new(file);
    let write = |job: &Job, out: &mut BufWriter<File>| -> Result<(), ReplayError> {
        let line = job
            .not_sent()
            .to_line()
            .map_err(|e| fail(std::io::Error::other(e)))?;
        out.write_all(&line).map_err(fail)
    };
    for job in &pending {
        write(job, &mut out)?;
        summary.not_sent += 1;
    }
    let mut read_now = 0;
    while let Some(item) = reader.next() {
        match item {
            Item::Job(job) => {
                write(&job, &mut out)?;
                summary.not_sent += 1;
                read_now += 1;
            }
            Item::Unreadable { record, reason } => {
                dead_letters
                    .append(*record)
                    .await
                    .map_err(ReplayError::DeadLetters)?;
                bump(&mut summary.unreadable, &reason);
            }
            Item::BadRecord(reason) => bump(&mut summary.unreadable, &reason),
            Item::NotReplayable => summary.not_replayable += 1,
        }
    }
    summary.read += read_now;
    let file = out.into_inner().map_err(|e| fail(e.into_error()))?;
    file.sync_all().map_err(fail)?;
    summary.resume_file = Some(path.to_path_buf());
    Ok(())
}
