//! Strict validation on demand: the rules Segment applies at ingestion, checked locally.
//!
//! Decoding is deliberately lenient about *semantics* (a track without `event` still decodes,
//! so a webhook receiver can see and report it). [`Message::validate`] and [`Batch::validate`]
//! then check the rules and return **every** problem found, each naming its field and, inside
//! a batch, the item's index.
//!
//! Rules checked:
//!
//! | rule | applies to |
//! |---|---|
//! | `userId` or `anonymousId` present and non-empty | identify, track, page, screen, group |
//! | `event` present and not blank | track |
//! | `groupId` present and non-empty | group |
//! | `userId` and `previousId` present and non-empty | alias |
//! | `userId` present and non-empty | delete |
//! | `messageId`, when present, non-empty and at most [`MAX_MESSAGE_ID_CHARS`] characters | all |
//! | serialised message at most [`MAX_MESSAGE_BYTES`] | all, and every batch item |
//! | serialised batch at most [`MAX_BATCH_BYTES`], at most [`MAX_BATCH_MESSAGES`] items | batch |
//! | standard `context` keys have their documented JSON types | all |
//!
//! # Sizes
//!
//! Segment documents "32 KB" per message and "500 KB" per batch without saying whether a KB is
//! 1000 or 1024 bytes, and its own SDKs disagree (analytics-go uses 32,000 / 500,000 bytes,
//! analytics-ruby 32,768 / 512,000). The defaults here take the decimal reading, the stricter
//! of the two, so a message that passes is accepted under either reading. Use
//! [`Limits`] to choose other values. Sizes are measured on the compact JSON serialisation.
//!
//! ```
//! use segment_model::Message;
//! use segment_model::validate::ViolationKind;
//!
//! let msg = Message::from_str(r#"{"type":"track","properties":{}}"#)?;
//! let violations = msg.validate().unwrap_err();
//! let kinds: Vec<_> = violations.iter().map(|v| v.kind().clone()).collect();
//! assert_eq!(kinds, [ViolationKind::MissingIdentity, ViolationKind::MissingField { field: "event" }]);
//! # Ok::<(), segment_model::Error>(())
//! ```

use std::fmt;
use std::io;

use serde::Serialize;

use crate::batch::Batch;
use crate::message::{Id, Message};

/// Maximum serialised size of one message, in bytes ("32 KB", decimal reading).
pub const MAX_MESSAGE_BYTES: usize = 32_000;

/// Maximum serialised size of one batch request body, in bytes ("500 KB", decimal reading).
pub const MAX_BATCH_BYTES: usize = 500_000;

/// Maximum number of messages in one batch.
pub const MAX_BATCH_MESSAGES: usize = 2_500;

/// Maximum length of `messageId`, in characters.
pub const MAX_MESSAGE_ID_CHARS: usize = 100;

/// The limits validation checks against. [`Limits::default`] holds Segment's documented
/// limits (see the module docs on how KB is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum serialised bytes per message.
    pub max_message_bytes: usize,
    /// Maximum serialised bytes per batch body.
    pub max_batch_bytes: usize,
    /// Maximum messages per batch.
    pub max_batch_messages: usize,
    /// Maximum `messageId` characters.
    pub max_message_id_chars: usize,
}

impl Limits {
    /// Segment's documented limits, with KB read as 1000 bytes.
    pub const SEGMENT: Limits = Limits {
        max_message_bytes: MAX_MESSAGE_BYTES,
        max_batch_bytes: MAX_BATCH_BYTES,
        max_batch_messages: MAX_BATCH_MESSAGES,
        max_message_id_chars: MAX_MESSAGE_ID_CHARS,
    };

    /// Segment's documented limits with KB read as 1024 bytes (32,768 / 512,000 bytes).
    pub const SEGMENT_BINARY_KB: Limits = Limits {
        max_message_bytes: 32 * 1024,
        max_batch_bytes: 500 * 1024,
        max_batch_messages: MAX_BATCH_MESSAGES,
        max_message_id_chars: MAX_MESSAGE_ID_CHARS,
    };

    /// Returns these limits with a different per-message byte limit.
    pub const fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Returns these limits with a different per-batch byte limit.
    pub const fn with_max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Returns these limits with a different per-batch message count.
    pub const fn with_max_batch_messages(mut self, count: usize) -> Self {
        self.max_batch_messages = count;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::SEGMENT
    }
}

/// What rule a [`Violation`] broke.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// Neither `userId` nor `anonymousId` is present and non-empty.
    MissingIdentity,
    /// A required field is absent (or `null`).
    MissingField {
        /// The field's JSON key.
        field: &'static str,
    },
    /// A required field is present but empty (or blank, for `event`).
    EmptyField {
        /// The field's JSON key.
        field: &'static str,
    },
    /// A field is longer than allowed.
    TooLong {
        /// The field's JSON key.
        field: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The serialised message is larger than allowed.
    MessageTooLarge {
        /// Its size in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The serialised batch is larger than allowed.
    BatchTooLarge {
        /// Its size in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The batch holds more messages than allowed.
    TooManyMessages {
        /// How many it holds.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A standard `context` key holds a value of an undocumented JSON type (it was kept
    /// verbatim in `extra`, see [`crate::context`]).
    NonconformingContext {
        /// Path of the key, starting with `context.`.
        path: String,
    },
}

/// One broken rule, with the batch index of the message it concerns (if inside a batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    index: Option<usize>,
    kind: ViolationKind,
}

impl Violation {
    /// A violation of `kind`, not tied to a batch item.
    pub fn new(kind: ViolationKind) -> Self {
        Self { index: None, kind }
    }

    /// The batch index of the offending message, when validating a batch.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// What rule was broken.
    pub fn kind(&self) -> &ViolationKind {
        &self.kind
    }

    /// The JSON key or path the violation concerns, if it concerns one field.
    pub fn field(&self) -> Option<&str> {
        match &self.kind {
            ViolationKind::MissingField { field }
            | ViolationKind::EmptyField { field }
            | ViolationKind::TooLong { field, .. } => Some(field),
            ViolationKind::MissingIdentity => Some("userId"),
            ViolationKind::NonconformingContext { path } => Some(path),
            ViolationKind::MessageTooLarge { .. }
            | ViolationKind::BatchTooLarge { .. }
            | ViolationKind::TooManyMessages { .. } => None,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(index) = self.index {
            write!(f, "`batch[{index}]`: ")?;
        }
        match &self.kind {
            ViolationKind::MissingIdentity => {
                f.write_str("neither `userId` nor `anonymousId` is set")
            }
            ViolationKind::MissingField { field } => write!(f, "`{field}` is missing"),
            ViolationKind::EmptyField { field } => write!(f, "`{field}` is empty"),
            ViolationKind::TooLong { field, chars, max } => {
                write!(
                    f,
                    "`{field}` is {chars} characters long, the limit is {max}"
                )
            }
            ViolationKind::MessageTooLarge { bytes, max } => {
                write!(f, "message is {bytes} bytes, the limit is {max}")
            }
            ViolationKind::BatchTooLarge { bytes, max } => {
                write!(f, "batch is {bytes} bytes, the limit is {max}")
            }
            ViolationKind::TooManyMessages { count, max } => {
                write!(f, "batch holds {count} messages, the limit is {max}")
            }
            ViolationKind::NonconformingContext { path } => {
                write!(f, "`{path}` does not have its documented JSON type")
            }
        }
    }
}

/// Every rule a message or batch breaks, in the order found (never empty when returned as an
/// error).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// The violations.
    pub fn as_slice(&self) -> &[Violation] {
        &self.0
    }

    /// Iterates over the violations.
    pub fn iter(&self) -> std::slice::Iter<'_, Violation> {
        self.0.iter()
    }

    /// Number of violations.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations as a vector.
    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }

    fn into_result(self) -> Result<(), Violations> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, violation) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            fmt::Display::fmt(violation, f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl IntoIterator for Violations {
    type Item = Violation;
    type IntoIter = std::vec::IntoIter<Violation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a Violation;
    type IntoIter = std::slice::Iter<'a, Violation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Size in bytes of `value`'s compact JSON serialisation, without allocating it.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Our wire types serialise infallibly (string keys, finite numbers) and the writer never
    // fails; a failure would only make the count smaller, never panic.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

fn present(id: Option<&Id>) -> bool {
    id.is_some_and(|id| !id.is_empty())
}

/// Checks a required id: missing, empty, or fine.
fn require_id(out: &mut Vec<ViolationKind>, id: Option<&Id>, field: &'static str) {
    match id {
        None => out.push(ViolationKind::MissingField { field }),
        Some(id) if id.is_empty() => out.push(ViolationKind::EmptyField { field }),
        Some(_) => {}
    }
}

impl Message {
    /// Checks the message against Segment's rules and [`Limits::default`], returning every
    /// violation found.
    ///
    /// ```
    /// use segment_model::Message;
    ///
    /// let ok = Message::from_str(r#"{"type":"identify","anonymousId":"a1","traits":{}}"#)?;
    /// assert!(ok.validate().is_ok());
    /// # Ok::<(), segment_model::Error>(())
    /// ```
    pub fn validate(&self) -> Result<(), Violations> {
        self.validate_with(&Limits::default())
    }

    /// Like [`Message::validate`], with explicit limits.
    pub fn validate_with(&self, limits: &Limits) -> Result<(), Violations> {
        Violations(
            self.violations(limits)
                .into_iter()
                .map(Violation::new)
                .collect(),
        )
        .into_result()
    }

    /// The size of this message's compact JSON serialisation, in bytes.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self)
    }

    /// Everything except the size rule (the builder checks these; sizes are a transport
    /// concern).
    pub(crate) fn structural_violations(&self, limits: &Limits) -> Vec<ViolationKind> {
        let mut out = Vec::new();
        let common = self.common();
        match self {
            Message::Alias(alias) => {
                require_id(&mut out, common.user_id.as_ref(), "userId");
                require_id(&mut out, alias.previous_id.as_ref(), "previousId");
            }
            Message::Delete(_) => require_id(&mut out, common.user_id.as_ref(), "userId"),
            _ => {
                if !present(common.user_id.as_ref()) && !present(common.anonymous_id.as_ref()) {
                    out.push(ViolationKind::MissingIdentity);
                }
            }
        }
        match self {
            Message::Track(track) => match track.event.as_deref() {
                None => out.push(ViolationKind::MissingField { field: "event" }),
                Some(event) if event.trim().is_empty() => {
                    out.push(ViolationKind::EmptyField { field: "event" });
                }
                Some(_) => {}
            },
            Message::Group(group) => require_id(&mut out, group.group_id.as_ref(), "groupId"),
            _ => {}
        }
        if let Some(message_id) = common.message_id.as_deref() {
            let chars = message_id.chars().count();
            if chars == 0 {
                out.push(ViolationKind::EmptyField { field: "messageId" });
            } else if chars > limits.max_message_id_chars {
                out.push(ViolationKind::TooLong {
                    field: "messageId",
                    chars,
                    max: limits.max_message_id_chars,
                });
            }
        }
        out
    }

    fn violations(&self, limits: &Limits) -> Vec<ViolationKind> {
        let mut out = self.structural_violations(limits);
        if let Some(context) = &self.common().context {
            out.extend(context.nonconforming_paths().into_iter().map(|path| {
                ViolationKind::NonconformingContext {
                    path: format!("context.{path}"),
                }
            }));
        }
        let bytes = self.encoded_len();
        if bytes > limits.max_message_bytes {
            out.push(ViolationKind::MessageTooLarge {
                bytes,
                max: limits.max_message_bytes,
            });
        }
        out
    }
}

impl Batch {
    /// Checks every item (violations carry the item's index) and the batch's own size and
    /// count against [`Limits::default`].
    pub fn validate(&self) -> Result<(), Violations> {
        self.validate_with(&Limits::default())
    }

    /// Like [`Batch::validate`], with explicit limits.
    pub fn validate_with(&self, limits: &Limits) -> Result<(), Violations> {
        let mut out = Vec::new();
        for (index, message) in self.batch.iter().enumerate() {
            out.extend(
                message
                    .violations(limits)
                    .into_iter()
                    .map(|kind| Violation {
                        index: Some(index),
                        kind,
                    }),
            );
        }
        if self.batch.len() > limits.max_batch_messages {
            out.push(Violation::new(ViolationKind::TooManyMessages {
                count: self.batch.len(),
                max: limits.max_batch_messages,
            }));
        }
        let bytes = encoded_len(self);
        if bytes > limits.max_batch_bytes {
            out.push(Violation::new(ViolationKind::BatchTooLarge {
                bytes,
                max: limits.max_batch_bytes,
            }));
        }
        Violations(out).into_result()
    }

    /// The size of this batch's compact JSON serialisation, in bytes.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self)
    }
}

impl From<Vec<Violation>> for Violations {
    fn from(violations: Vec<Violation>) -> Self {
        Violations(violations)
    }
}
