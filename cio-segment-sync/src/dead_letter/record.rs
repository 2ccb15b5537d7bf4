//! The one record format of dead letters and resume files, and its reader.
//!
//! A [`Record`] is one JSON object on one line:
//!
//! ```text
//! {"v":1,"id":"m-1","sink":"segment.message","reason":{"type":"not_sent","last_error":"…"},
//!  "source":{"kind":"archive","file":"day.jsonl","line":3},"attempts":2,
//!  "submitted_at":"2024-05-01T10:15:30Z","recorded_at":"2024-05-01T10:16:00Z",
//!  "item":{"type":"track","messageId":"m-1",…}}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `v` | the format version, [`RECORD_VERSION`]; a reader refuses a newer one by line |
//! | `id` | the id the destination de-duplicates on, when the item has one: a Segment `messageId`, a Customer.io operation's `id` |
//! | `sink` | what `item` is: [`SEGMENT_MESSAGE`] for a Segment message, else the dispatcher sink it was meant for ([`Sink::name`](crate::dispatch::Sink::name)) |
//! | `reason` | a permanent refusal ([`DeadLetterReason`]'s `type`s), [`not_sent`](Reason::NotSent) (resume files) or [`unreadable`](Reason::Unreadable) |
//! | `source` | where the item came from, when known (an archive's file and line) |
//! | `attempts`, `submitted_at`, `recorded_at`, `ordering_key` | how it went; the ordering key keeps a re-submission in line behind the person's other items |
//! | `item` | the item itself: a Segment message as it was read (with a derived `messageId` when it had none), or the sink's item |
//!
//! The reader is strict per line and lenient per file: a line that is not a record is a
//! [`ReadError`] naming the file and line, and the other lines are still returned. Lines of the
//! two v0.1 formats are read too: the dispatcher's dead letters (a [`DeadLetter`] per line) and
//! the v0.1 replay's `{"file", "line", "reason", "message"}` lines.

use std::fmt;
use std::io;
use std::path::Path;

use jiff::Timestamp;
use segment_model::{JsonErrorCategory, Message};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{DeadLetter, DeadLetterReason};
use crate::dispatch::FailureKind;

/// The version of the record format this crate writes. A record with a higher `v` is refused
/// by line ([`Problem::NewerVersion`]), never guessed at.
pub const RECORD_VERSION: u64 = 1;

/// The [`Record::sink`] of a Segment message (replayed through the flows, not a dispatcher).
pub const SEGMENT_MESSAGE: &str = "segment.message";

/// One dead letter or resume entry. See the [module docs](self) for the line format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Record {
    /// The format version ([`RECORD_VERSION`] when written by this crate).
    pub v: u64,
    /// The id the destination de-duplicates on, when the item has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What `item` is: [`SEGMENT_MESSAGE`], or the dispatcher sink it was meant for.
    pub sink: String,
    /// Why it is here.
    pub reason: Reason,
    /// Where the item came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Attempts made to deliver it.
    #[serde(default)]
    pub attempts: u32,
    /// When it was first submitted, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Timestamp>,
    /// When this record was written (the Unix epoch for v0.1 replay lines, which had no time).
    pub recorded_at: Timestamp,
    /// The ordering key the item was submitted with, so a re-submission keeps its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<u64>,
    /// The item: a Segment message, or the sink's item as it serialises.
    pub item: Value,
}

impl Record {
    /// A record of `item` for `sink`, written now, with no source and no attempts.
    pub fn new(sink: impl Into<String>, item: Value, reason: Reason) -> Self {
        let id = event_id_of(&item);
        Self {
            v: RECORD_VERSION,
            id,
            sink: sink.into(),
            reason,
            source: None,
            attempts: 0,
            submitted_at: None,
            recorded_at: Timestamp::now(),
            ordering_key: None,
            item,
        }
    }

    /// A record of a Segment message (its `messageId` as the id), written now.
    ///
    /// # Errors
    ///
    /// The message cannot be serialised (a map with non-string keys; never for a parsed one).
    pub fn segment_message(
        message: &Message,
        reason: Reason,
        source: Option<Source>,
    ) -> Result<Self, serde_json::Error> {
        let mut record = Self::new(SEGMENT_MESSAGE, serde_json::to_value(message)?, reason);
        record.id = message.message_id().map(str::to_owned);
        record.source = source;
        Ok(record)
    }

    /// Sets the source.
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// Sets the attempts made and when the item was first submitted.
    pub fn with_attempts(mut self, attempts: u32, submitted_at: Option<Timestamp>) -> Self {
        self.attempts = attempts;
        self.submitted_at = submitted_at;
        self
    }

    /// Whether the item is a Segment message.
    pub fn is_segment_message(&self) -> bool {
        self.sink == SEGMENT_MESSAGE
    }

    /// The Segment message, for a record of one ([`SEGMENT_MESSAGE`]); `None` for a sink's item.
    pub fn message(&self) -> Option<Result<Message, segment_model::Error>> {
        self.is_segment_message()
            .then(|| Message::from_value(self.item.clone()))
    }

    /// The dispatcher's view of a sink's item that was refused for good (what
    /// [`DispatcherHandle::resubmit`](crate::dispatch::DispatcherHandle::resubmit) takes).
    /// `None` for a Segment message, and for a record that is not a refusal.
    pub fn to_dead_letter(&self) -> Option<DeadLetter> {
        let Reason::Refused(reason) = &self.reason else {
            return None;
        };
        if self.is_segment_message() {
            return None;
        }
        Some(DeadLetter {
            sink: self.sink.clone(),
            item: self.item.clone(),
            reason: reason.clone(),
            attempts: self.attempts,
            submitted_at: self.submitted_at.unwrap_or(self.recorded_at),
            dead_lettered_at: self.recorded_at,
            ordering_key: self.ordering_key,
        })
    }

    /// The record as one line of JSON, newline included.
    ///
    /// # Errors
    ///
    /// The item cannot be serialised (never for a `Value` read from JSON).
    pub fn to_line(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut line = serde_json::to_vec(self)?;
        line.push(b'\n');
        Ok(line)
    }
}

impl From<DeadLetter> for Record {
    fn from(entry: DeadLetter) -> Self {
        Self {
            v: RECORD_VERSION,
            id: event_id_of(&entry.item),
            sink: entry.sink,
            reason: Reason::Refused(entry.reason),
            source: None,
            attempts: entry.attempts,
            submitted_at: Some(entry.submitted_at),
            recorded_at: entry.dead_lettered_at,
            ordering_key: entry.ordering_key,
            item: entry.item,
        }
    }
}

/// The id an item carries for de-duplication: a Customer.io operation's `id`, a Segment
/// message's `messageId`.
fn event_id_of(item: &Value) -> Option<String> {
    ["id", "messageId"]
        .iter()
        .find_map(|key| item.get(key).and_then(Value::as_str))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Why a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Refused for good (a dead letter): written as the [`DeadLetterReason`] itself.
    Refused(DeadLetterReason),
    /// Not sent yet and worth sending again (`{"type": "not_sent"}`): what a replay that gave
    /// up writes to its resume file. Never a dead letter.
    NotSent {
        /// The last failure, as its `Display` reads (no customer data), or why it was not
        /// attempted.
        last_error: String,
    },
    /// The item could not be read as what it should be (`{"type": "unreadable"}`), e.g. an
    /// archive line that is not a Segment message. A dead letter: it needs a human.
    Unreadable {
        /// Why, naming the JSON path or category (no value quoted).
        error: String,
    },
}

impl Reason {
    /// A short, data-free label: the refusal's ([`DeadLetterReason::label`]), `not_sent` or
    /// `unreadable`.
    pub fn label(&self) -> &'static str {
        match self {
            Reason::Refused(reason) => reason.label(),
            Reason::NotSent { .. } => "not_sent",
            Reason::Unreadable { .. } => "unreadable",
        }
    }

    /// Whether this is a dead letter (refused or unreadable), not a resume entry.
    pub fn is_dead_letter(&self) -> bool {
        !matches!(self, Reason::NotSent { .. })
    }

    /// The detail (a server's message, an error's text): may name a field or quote the
    /// server, so it is shown only when personal data is asked for.
    pub fn detail(&self) -> String {
        match self {
            Reason::Refused(DeadLetterReason::RejectedByServer { message, field }) => match field {
                Some(field) => format!("{message} (field `{field}`)"),
                None => message.clone(),
            },
            Reason::Refused(DeadLetterReason::RetriesExhausted { last_error, .. }) => {
                last_error.clone()
            }
            Reason::Refused(DeadLetterReason::Failed { error, .. }) => error.clone(),
            Reason::Refused(DeadLetterReason::TooLarge { bytes, limit }) => {
                format!("{bytes} bytes, the limit is {limit}")
            }
            Reason::NotSent { last_error } => last_error.clone(),
            Reason::Unreadable { error } => error.clone(),
        }
    }
}

impl fmt::Display for Reason {
    /// The label only (the detail may quote the server).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The reasons of this format that are not a [`DeadLetterReason`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum OwnReason {
    NotSent { last_error: String },
    Unreadable { error: String },
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Reason::Refused(reason) => reason.serialize(serializer),
            Reason::NotSent { last_error } => OwnReason::NotSent {
                last_error: last_error.clone(),
            }
            .serialize(serializer),
            Reason::Unreadable { error } => OwnReason::Unreadable {
                error: error.clone(),
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let own = matches!(
            value.get("type").and_then(Value::as_str),
            Some("not_sent" | "unreadable")
        );
        if own {
            return match OwnReason::deserialize(value).map_err(D::Error::custom)? {
                OwnReason::NotSent { last_error } => Ok(Reason::NotSent { last_error }),
                OwnReason::Unreadable { error } => Ok(Reason::Unreadable { error }),
            };
        }
        DeadLetterReason::deserialize(value)
            .map(Reason::Refused)
            .map_err(D::Error::custom)
    }
}

/// Where a record's item came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Source {
    /// A line of a replayed archive (a batch envelope's items share their line).
    Archive {
        /// The archive's path as given.
        file: String,
        /// The 1-based line (0: the file itself, e.g. it could not be opened).
        line: u64,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Archive { file, line } => write!(f, "{file}:{line}"),
        }
    }
}

/// Where an unreadable entry is: a line of a file, or an entry of a Redis stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A line of a file.
    Line {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
    },
    /// An entry of a Redis stream.
    Entry {
        /// The stream's key.
        stream: String,
        /// The entry's id.
        id: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { file, line } => write!(f, "{file}, line {line}"),
            Location::Entry { stream, id } => write!(f, "stream {stream}, entry {id}"),
        }
    }
}

/// What is wrong with an entry. Never quotes it: serde's messages can, so only their
/// category and column are shown (the `serde_json` error stays the source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// Not JSON.
    #[error("not JSON ({} at column {})", JsonErrorCategory::of(.0), .0.column())]
    NotJson(#[source] serde_json::Error),
    /// JSON, but neither a record nor a v0.1 dead-letter line.
    #[error("not a dead-letter record")]
    NotARecord,
    /// A record whose fields do not fit the format.
    #[error("not a valid record ({})", JsonErrorCategory::of(.0))]
    Invalid(#[source] serde_json::Error),
    /// A record of a newer format than this reader knows.
    #[error("record version {found} is newer than this reader's ({RECORD_VERSION})")]
    NewerVersion {
        /// The version found.
        found: u64,
    },
    /// The line is not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
}

/// An entry that could not be read, and where it is.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {problem}")]
#[non_exhaustive]
pub struct ReadError {
    /// Where.
    pub location: Location,
    /// What is wrong.
    #[source]
    pub problem: Problem,
}

impl ReadError {
    /// An error at `location`.
    pub fn new(location: Location, problem: Problem) -> Self {
        Self { location, problem }
    }
}

/// Reads one entry (a line without its newline, or a stream entry's value) as a record:
/// a v1 record, a v0.1 dead letter, or a v0.1 replay line.
///
/// # Errors
///
/// [`Problem`] saying what is wrong (never quoting the entry).
pub fn parse_record(entry: &[u8]) -> Result<Record, Problem> {
    let text = std::str::from_utf8(entry).map_err(|_| Problem::NotUtf8)?;
    let value: Value = serde_json::from_str(text).map_err(Problem::NotJson)?;
    let Some(object) = value.as_object() else {
        return Err(Problem::NotARecord);
    };
    if let Some(version) = object.get("v") {
        return match version.as_u64() {
            Some(RECORD_VERSION) => serde_json::from_value(value).map_err(Problem::Invalid),
            Some(found) if found > RECORD_VERSION => Err(Problem::NewerVersion { found }),
            _ => Err(Problem::NotARecord),
        };
    }
    if object.contains_key("sink") && object.contains_key("dead_lettered_at") {
        let entry: DeadLetter = serde_json::from_value(value).map_err(Problem::Invalid)?;
        return Ok(Record::from(entry));
    }
    if object.contains_key("file") && object.contains_key("message") {
        return legacy_replay_line(value);
    }
    Err(Problem::NotARecord)
}

/// The v0.1 replay's dead-letter line: `{"file", "line", "reason", "message"}`, the reason a
/// free text (`not delivered, retry: …`, `refused: …`, a dead-letter label, or why the line
/// could not be read).
fn legacy_replay_line(value: Value) -> Result<Record, Problem> {
    #[derive(Deserialize)]
    struct Line {
        file: String,
        line: u64,
        reason: String,
        message: Value,
    }
    let line: Line = serde_json::from_value(value).map_err(Problem::Invalid)?;
    let reason = if line.reason.starts_with("not delivered") || line.reason == "retries_exhausted" {
        Reason::NotSent {
            last_error: line.reason,
        }
    } else if line.message.is_object() {
        Reason::Refused(DeadLetterReason::Failed {
            kind: FailureKind::Permanent,
            error: line.reason,
        })
    } else {
        Reason::Unreadable { error: line.reason }
    };
    let mut record = Record::new(SEGMENT_MESSAGE, line.message, reason);
    record.recorded_at = Timestamp::UNIX_EPOCH;
    record.source = Some(Source::Archive {
        file: line.file,
        line: line.line,
    });
    Ok(record)
}

/// The records of a text of lines, with the lines that could not be read.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Parsed {
    /// Each record with its 1-based line, in order.
    pub records: Vec<(usize, Record)>,
    /// The lines that are not records, in order.
    pub errors: Vec<ReadError>,
    /// Complete lines seen (blank ones excluded): `records.len() + errors.len()`.
    pub lines: usize,
    /// The bytes that hold complete lines; an unterminated last line of a file still being
    /// written is left out (see [`parse_lines`]).
    pub complete_bytes: usize,
}

/// Reads the lines of `bytes` (named `file` in errors). Blank lines are skipped. With
/// `complete == false` the text may still be growing (another process appends to it), so an
/// unterminated last line is left out rather than reported; with `complete == true` it is a
/// line like the others.
pub fn parse_lines(bytes: &[u8], file: &str, complete: bool) -> Parsed {
    let mut parsed = Parsed::default();
    let mut rest = bytes;
    let mut line_no = 0;
    let mut offset = 0;
    while !rest.is_empty() {
        let (line, terminated) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        if !terminated && !complete {
            break;
        }
        line_no += 1;
        let consumed = line.len() + usize::from(terminated);
        rest = &rest[consumed..];
        offset += consumed;
        parsed.complete_bytes = offset;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        parsed.lines += 1;
        match parse_record(line) {
            Ok(record) => parsed.records.push((line_no, record)),
            Err(problem) => parsed.errors.push(ReadError::new(
                Location::Line {
                    file: file.to_owned(),
                    line: line_no,
                },
                problem,
            )),
        }
    }
    parsed
}

/// Reads a whole file of records (a resume file, a sealed dead-letter file). Blocking.
///
/// # Errors
///
/// The file cannot be read; lines that are not records are in [`Parsed::errors`].
pub fn read_records(path: &Path) -> io::Result<Parsed> {
    let bytes = std::fs::read(path)?;
    Ok(parse_lines(&bytes, &path.display().to_string(), true))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dispatch::GiveUp;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_record_is_one_line_with_its_version_and_reads_back() {
        let message =
            Message::from_str(r#"{"type":"track","messageId":"m-1","userId":"u","event":"E"}"#)
                .unwrap();
        let mut record = Record::segment_message(
            &message,
            Reason::NotSent {
                last_error: "server error (HTTP 503)".into(),
            },
            Some(Source::Archive {
                file: "a.jsonl".into(),
                line: 3,
            }),
        )
        .unwrap()
        .with_attempts(2, Some(at("2024-05-01T10:15:30Z")));
        record.recorded_at = at("2024-05-01T10:16:00Z");
        let line = record.to_line().unwrap();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(
            serde_json::from_slice::<Value>(&line).unwrap(),
            json!({"v": 1, "id": "m-1", "sink": "segment.message",
                   "reason": {"type": "not_sent", "last_error": "server error (HTTP 503)"},
                   "source": {"kind": "archive", "file": "a.jsonl", "line": 3},
                   "attempts": 2, "submitted_at": "2024-05-01T10:15:30Z",
                   "recorded_at": "2024-05-01T10:16:00Z",
                   "item": {"type": "track", "messageId": "m-1", "userId": "u", "event": "E"}})
        );
        assert_eq!(parse_record(&line[..line.len() - 1]).unwrap(), record);
        assert_eq!(record.message().unwrap().unwrap(), message);
        assert!(record.to_dead_letter().is_none());
    }

    #[test]
    fn a_refusal_is_written_as_the_dead_letter_reason_itself() {
        let reason = Reason::Refused(DeadLetterReason::RejectedByServer {
            message: "bad".into(),
            field: Some("name".into()),
        });
        let value = serde_json::to_value(&reason).unwrap();
        assert_eq!(
            value,
            json!({"type": "rejected_by_server", "message": "bad", "field": "name"})
        );
        assert_eq!(serde_json::from_value::<Reason>(value).unwrap(), reason);
        let unreadable = Reason::Unreadable {
            error: "not JSON".into(),
        };
        let value = serde_json::to_value(&unreadable).unwrap();
        assert_eq!(value, json!({"type": "unreadable", "error": "not JSON"}));
        assert_eq!(serde_json::from_value::<Reason>(value).unwrap(), unreadable);
        assert!(serde_json::from_value::<Reason>(json!({"type": "bogus"})).is_err());
        assert!(serde_json::from_value::<Reason>(json!({"type": "not_sent", "extra": 1})).is_err());
    }

    #[test]
    fn a_dead_letter_converts_both_ways_and_keeps_the_operation_id() {
        let mut entry = DeadLetter::new(
            "customerio.track.v2.batch",
            json!({"type": "person", "action": "event", "id": "01HX", "name": "E"}),
            DeadLetterReason::TooLarge {
                bytes: 40_000,
                limit: 32_000,
            },
            1,
        );
        entry.ordering_key = Some(7);
        let record = Record::from(entry.clone());
        assert_eq!(record.id.as_deref(), Some("01HX"));
        assert_eq!(record.v, RECORD_VERSION);
        assert!(record.reason.is_dead_letter());
        assert_eq!(record.to_dead_letter(), Some(entry));
    }

    #[test]
    fn v01_dead_letter_lines_read_as_records() {
        let line = json!({"sink": "customerio.track.v2.batch", "item": {"id": "x"},
            "reason": {"type": "retries_exhausted", "stopped": "attempts_exhausted",
                       "last_kind": "server", "last_error": "HTTP 503"},
            "attempts": 3, "submitted_at": "2024-05-01T10:15:30Z",
            "dead_lettered_at": "2024-05-01T10:16:00Z", "ordering_key": 9})
        .to_string();
        let record = parse_record(line.as_bytes()).unwrap();
        assert_eq!(record.id.as_deref(), Some("x"));
        assert_eq!(record.attempts, 3);
        assert_eq!(record.ordering_key, Some(9));
        assert_eq!(record.recorded_at, at("2024-05-01T10:16:00Z"));
        assert_eq!(
            record.reason,
            Reason::Refused(DeadLetterReason::RetriesExhausted {
                stopped: GiveUp::AttemptsExhausted,
                last_kind: FailureKind::Server,
                last_error: "HTTP 503".into(),
            })
        );
    }

    #[test]
    fn v01_replay_lines_read_as_records_of_segment_messages() {
        let message = json!({"type": "track", "messageId": "r-1", "userId": "u", "event": "E"});
        let cases = [
            (
                json!({"file": "a.jsonl", "line": 2, "reason": "not delivered, retry: HTTP 503", "message": message}),
                "not_sent",
            ),
            (
                json!({"file": "a.jsonl", "line": 3, "reason": "rejected_by_server", "message": message}),
                "failed",
            ),
            (
                json!({"file": "a.jsonl", "line": 4, "reason": "not JSON (column 2)", "message": "{nope"}),
                "unreadable",
            ),
        ];
        for (line, label) in cases {
            let record = parse_record(line.to_string().as_bytes()).unwrap();
            assert_eq!(record.reason.label(), label, "{line}");
            assert!(record.is_segment_message());
            let id = line["message"].get("messageId").and_then(Value::as_str);
            assert_eq!(record.id.as_deref(), id);
            assert_eq!(
                record.source,
                Some(Source::Archive {
                    file: "a.jsonl".into(),
                    line: line["line"].as_u64().unwrap()
                })
            );
        }
    }

    #[test]
    fn the_reader_is_strict_per_line_and_names_each_bad_line_without_quoting_it() {
        let good = Record::new(
            "s",
            json!({"n": 1}),
            Reason::Unreadable {
                error: "why".into(),
            },
        );
        let good = String::from_utf8(good.to_line().unwrap()).unwrap();
        let text = format!(
            "{good}\n{{\"email\": \"ada@example.com\"\n[1]\n{{\"v\": 2}}\n{{\"v\": 1, \"sink\": \"ada@example.com\"}}\n{good}{}",
            good.trim_end()
        );
        let parsed = parse_lines(text.as_bytes(), "dead.jsonl", true);
        assert_eq!(
            parsed.records.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [1, 7, 8]
        );
        let errors: Vec<String> = parsed.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            [
                "dead.jsonl, line 3: not JSON (unexpected end of input at column 27)",
                "dead.jsonl, line 4: not a dead-letter record",
                "dead.jsonl, line 5: record version 2 is newer than this reader's (1)",
                "dead.jsonl, line 6: not a valid record (unexpected data)",
            ]
        );
        for error in &parsed.errors {
            let described = crate::outcome::describe(error);
            assert!(!described.contains("ada@"), "{described}");
        }
        assert_eq!(parsed.lines, 7);

        // A text still being written: the unterminated last line is left out, not an error.
        let growing = parse_lines(text.as_bytes(), "dead.jsonl", false);
        assert_eq!(growing.records.len(), 2);
        assert_eq!(growing.errors.len(), 4);
        assert_eq!(growing.complete_bytes, text.len() - good.trim_end().len());
    }
}
