//! `cio-sync replay`: Segment archives into Customer.io.
//!
//! An archive is a file of JSON lines, plain or gzip-compressed (recognised by its first two
//! bytes, whatever its name). Each line is one Segment message or one batch envelope
//! (`{"batch": [...], "context": ...}`, the envelope's `context`, `integrations` and `sentAt`
//! applied to each item). Messages go through the flows the configuration turns on
//! ([`SegmentRouter`]: triggers and deletions, onboarding milestones, audience changes, routed as
//! `serve` routes them) in chunks, so each person's messages keep
//! their order while different people run concurrently.
//!
//! # Same ids on every replay
//!
//! Customer.io de-duplicates events by their id, and the mapping derives the id from the
//! message's `messageId` (and timestamp). A message without a `messageId` gets one derived from
//! its content: `replay-sha256-` followed by the first 32 hex digits (128 bits) of the SHA-256
//! of the item's bytes exactly as they are in the archive (a single-message line without its
//! surrounding whitespace; a batch item as the text between its delimiters). The same line
//! replayed again therefore gets the same `messageId`, the same Customer.io event id, and the
//! same dedupe key; two byte-identical lines are one message.
//!
//! Reading is synchronous between chunks (archives are local files); delivery is async.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cio_segment_sync::flows::router::SegmentRouter;
use cio_segment_sync::outcome::{AckRule, Outcome};
use flate2::read::MultiGzDecoder;
use indicatif::ProgressBar;
use segment_model::{Batch, Message};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error_chain;

/// Prefix of the `messageId`s derived from content.
pub const DERIVED_ID_PREFIX: &str = "replay-sha256-";

/// Messages handed to the flow at once (per-person order holds within and across chunks).
pub const CHUNK: usize = 500;

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
                    reason: error.to_string(),
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
                reason: error.to_string(),
                raw: value,
            }],
        ),
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Messages read (decoded).
    pub read: usize,
    /// Messages Customer.io accepted.
    pub delivered: usize,
    /// Skipped messages, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Dead-lettered messages (given up by the delivery engine, or failed), by reason.
    pub dead_lettered: BTreeMap<String, usize>,
    /// Lines, items or files that could not be read, by reason.
    pub unreadable: BTreeMap<String, usize>,
}

impl ReplaySummary {
    /// Whether everything read was finished and nothing was unreadable.
    pub fn is_clean(&self) -> bool {
        self.dead_lettered.is_empty() && self.unreadable.is_empty()
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
            "read {}, delivered {}, skipped {}, dead-lettered {}, unreadable {} in {seconds:.1} s ({rate:.0} messages/s)\n",
            self.read,
            self.delivered,
            total(&self.skipped),
            total(&self.dead_lettered),
            total(&self.unreadable),
        );
        for (label, map) in [
            ("skipped", &self.skipped),
            ("dead-lettered", &self.dead_lettered),
            ("unreadable", &self.unreadable),
        ] {
            for (why, n) in map {
                out.push_str(&format!("  {label}: {n} × {why}\n"));
            }
        }
        out
    }
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report(0.0))
    }
}

/// Replays `files` through `router`. Dead-lettered, unfinished and unreadable items are appended
/// to `dead_letters` (one JSON object per line: `file`, `line`, `reason`, `message`) when given;
/// `progress`, when given, advances by the bytes read from the files (set its length to their
/// total size) and shows the counts. Errors writing the dead-letter file are returned.
pub async fn replay_files(
    router: &SegmentRouter,
    files: &[PathBuf],
    mut dead_letters: Option<&mut dyn Write>,
    progress: Option<&ProgressBar>,
) -> std::io::Result<ReplaySummary> {
    let mut summary = ReplaySummary::default();
    let read = Arc::new(AtomicU64::new(0));
    let mut done_before = 0;
    for path in files {
        let file = path.display().to_string();
        read.store(0, Ordering::Relaxed);
        let reader = match open_counting(path, read.clone()) {
            Ok(reader) => reader,
            Err(error) => {
                let reason = format!("cannot open file ({})", error.kind());
                bump(&mut summary.unreadable, &reason);
                write_dead(&mut dead_letters, &file, 0, &reason, &Value::Null)?;
                continue;
            }
        };
        let show = |summary: &ReplaySummary| {
            if let Some(bar) = progress {
                bar.set_position(done_before + read.load(Ordering::Relaxed));
                bar.set_message(progress_text(summary));
            }
        };
        let mut chunk: Vec<(usize, Message)> = Vec::with_capacity(CHUNK);
        for (index, line) in reader.lines().enumerate() {
            let line_no = index + 1;
            let line = match line {
                Ok(line) => line,
                Err(error) => {
                    let reason = format!("read error ({})", error.kind());
                    bump(&mut summary.unreadable, &reason);
                    write_dead(&mut dead_letters, &file, line_no, &reason, &Value::Null)?;
                    break;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let (messages, unreadable) = messages_from_line(&line);
            for item in unreadable {
                bump(&mut summary.unreadable, "not a Segment message");
                write_dead(&mut dead_letters, &file, line_no, &item.reason, &item.raw)?;
            }
            summary.read += messages.len();
            chunk.extend(messages.into_iter().map(|m| (line_no, m)));
            if chunk.len() >= CHUNK {
                run_chunk(router, &file, &mut chunk, &mut summary, &mut dead_letters).await?;
                show(&summary);
            }
        }
        run_chunk(router, &file, &mut chunk, &mut summary, &mut dead_letters).await?;
        show(&summary);
        done_before += read.load(Ordering::Relaxed);
    }
    Ok(summary)
}

fn progress_text(summary: &ReplaySummary) -> String {
    format!(
        "read {} delivered {} dead-lettered {}",
        summary.read,
        summary.delivered,
        summary.dead_lettered.values().sum::<usize>()
    )
}

async fn run_chunk(
    router: &SegmentRouter,
    file: &str,
    chunk: &mut Vec<(usize, Message)>,
    summary: &mut ReplaySummary,
    dead_letters: &mut Option<&mut dyn Write>,
) -> std::io::Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    let (lines, messages): (Vec<usize>, Vec<Message>) = std::mem::take(chunk).into_iter().unzip();
    let results = router.process_batch_routed(&messages).await;
    for ((line, message), (_route, result)) in lines.into_iter().zip(messages).zip(results) {
        let reason = match result {
            Ok(Outcome::Delivered) => {
                summary.delivered += 1;
                continue;
            }
            Ok(Outcome::Skipped(reason)) => {
                bump(&mut summary.skipped, &reason.to_string());
                continue;
            }
            Ok(Outcome::DeadLettered(reason)) => reason.label().to_owned(),
            Ok(other) => other.label().to_owned(),
            // A replay has no source to redeliver: what did not finish is recorded so the line
            // can be replayed again.
            Err(error) if error.ack().is_retry_later() => {
                format!("not delivered, retry: {}", error_chain(&error))
            }
            Err(error) => format!("refused: {}", error_chain(&error)),
        };
        bump(&mut summary.dead_lettered, &reason);
        let raw = serde_json::to_value(&message).unwrap_or(Value::Null);
        write_dead(dead_letters, file, line, &reason, &raw)?;
    }
    Ok(())
}

fn bump(map: &mut BTreeMap<String, usize>, reason: &str) {
    *map.entry(reason.to_owned()).or_default() += 1;
}

fn write_dead(
    out: &mut Option<&mut dyn Write>,
    file: &str,
    line: usize,
    reason: &str,
    message: &Value,
) -> std::io::Result<()> {
    if let Some(out) = out {
        let record = json!({"file": file, "line": line, "reason": reason, "message": message});
        writeln!(out, "{record}")?;
    }
    Ok(())
}
