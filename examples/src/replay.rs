//! Replaying Segment archives into Customer.io (the `replay` example's engine).
//!
//! An archive is a file of JSON lines, plain or gzip-compressed (recognised by its first two
//! bytes, whatever its name). Each line is one Segment message or one batch envelope
//! (`{"batch": [...], "context": ...}`, the envelope's `context`, `integrations` and `sentAt`
//! applied to each item). Messages go through the flows the configuration turns on
//! ([`SegmentFlows`]: triggers and deletions, onboarding milestones, audience changes, routed as
//! the quickstart and the webhook server route them) in chunks, so each person's messages keep
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
use std::io::{BufRead, BufReader, Write};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use indicatif::ProgressBar;
use segment_model::{Batch, Message};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::ConfigError;
use crate::flows::{FlowResult, SegmentFlows};

/// Prefix of the `messageId`s derived from content.
pub const DERIVED_ID_PREFIX: &str = "replay-sha256-";

/// Messages handed to the flow at once (per-person order holds within and across chunks).
pub const CHUNK: usize = 500;

/// The command line of `replay`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayArgs {
    /// `--dry-run`: send to a local recording server instead of Customer.io.
    pub dry_run: bool,
    /// `--dead-letter FILE`: where dead-lettered and unreadable items are appended (JSON lines).
    pub dead_letter: Option<PathBuf>,
    /// `--concurrency N`: people processed at once (default 16).
    pub concurrency: NonZeroUsize,
    /// `--rate R`: most Track API requests per second (default: unlimited).
    pub rate: Option<NonZeroU32>,
    /// The archives.
    pub files: Vec<PathBuf>,
}

impl ReplayArgs {
    /// Parses the arguments after the program name (`--config` already removed).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, ConfigError> {
        let mut parsed = ReplayArgs {
            dry_run: false,
            dead_letter: None,
            concurrency: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            rate: None,
            files: Vec::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    (name.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            let mut value = |what: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| bad(&name, format!("needs {what}")))
            };
            match name.as_str() {
                "--dry-run" => parsed.dry_run = true,
                "--dead-letter" => parsed.dead_letter = Some(PathBuf::from(value("a file")?)),
                "--concurrency" => {
                    let text = value("a number")?;
                    parsed.concurrency = text
                        .parse()
                        .map_err(|_| bad(&name, "must be a whole number above 0"))?;
                }
                "--rate" => {
                    let text = value("a number")?;
                    parsed.rate = Some(
                        text.parse()
                            .map_err(|_| bad(&name, "must be a whole number above 0"))?,
                    );
                }
                "--" => parsed.files.extend(args.by_ref().map(PathBuf::from)),
                flag if flag.starts_with("--") => return Err(bad(flag, "unknown option")),
                _ => parsed.files.push(PathBuf::from(arg)),
            }
        }
        if parsed.files.is_empty() {
            return Err(bad("FILE", "give at least one archive"));
        }
        Ok(parsed)
    }
}

fn bad(arg: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Argument {
        arg: arg.to_owned(),
        problem: problem.into(),
    }
}

/// Opens `path`, decompressing it when it starts with the gzip magic bytes.
pub fn open(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::new(File::open(path)?);
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
/// use examples::replay::{messages_from_line, DERIVED_ID_PREFIX};
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

/// Replays `files` through `flows` (a [`SegmentFlows`], or only the triggers flow:
/// `SegmentFlows::from(Arc::new(flow))`). Dead-lettered and unreadable items are appended to
/// `dead_letters` (one JSON object per line: `file`, `line`, `reason`, `message`) when given;
/// `progress`, when given, shows the counts. Errors writing the dead-letter file are returned.
pub async fn replay_files(
    flows: &SegmentFlows,
    files: &[PathBuf],
    mut dead_letters: Option<&mut dyn Write>,
    progress: Option<&ProgressBar>,
) -> std::io::Result<ReplaySummary> {
    let mut summary = ReplaySummary::default();
    for path in files {
        let file = path.display().to_string();
        let reader = match open(path) {
            Ok(reader) => reader,
            Err(error) => {
                let reason = format!("cannot open file ({})", error.kind());
                bump(&mut summary.unreadable, &reason);
                write_dead(&mut dead_letters, &file, 0, &reason, &Value::Null)?;
                continue;
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
                run_chunk(flows, &file, &mut chunk, &mut summary, &mut dead_letters).await?;
                if let Some(bar) = progress {
                    bar.set_message(progress_text(&summary));
                }
            }
        }
        run_chunk(flows, &file, &mut chunk, &mut summary, &mut dead_letters).await?;
        if let Some(bar) = progress {
            bar.set_message(progress_text(&summary));
        }
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
    flows: &SegmentFlows,
    file: &str,
    chunk: &mut Vec<(usize, Message)>,
    summary: &mut ReplaySummary,
    dead_letters: &mut Option<&mut dyn Write>,
) -> std::io::Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    let (lines, messages): (Vec<usize>, Vec<Message>) = std::mem::take(chunk).into_iter().unzip();
    let results = flows.process_batch(messages.clone()).await;
    for ((line, message), (_flow, result)) in lines.into_iter().zip(messages).zip(results) {
        let reason = match result {
            FlowResult::Delivered => {
                summary.delivered += 1;
                continue;
            }
            FlowResult::Skipped(reason) => {
                bump(&mut summary.skipped, &reason);
                continue;
            }
            FlowResult::DeadLettered(reason) => reason,
            // A replay has no source to redeliver: what did not finish is recorded so the
            // line can be replayed again.
            FlowResult::Failed { message, .. } => message,
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
