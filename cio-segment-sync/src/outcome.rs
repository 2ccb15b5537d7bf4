//! The one shape every flow answers in: an [`Outcome`] when a message is finished, an error
//! carrying an [`Ack`] when it is not.
//!
//! | answer | what the host does with its source |
//! |---|---|
//! | `Ok(Outcome::Delivered)` | ack (answer `2xx`, commit the offset) |
//! | `Ok(Outcome::Skipped(reason))` | ack: nothing had to be written |
//! | `Ok(Outcome::DeadLettered(reason))` | ack: the item was refused for good and recorded in the dead-letter sink |
//! | `Err(e)` with `e.ack() == Ack::RetryLater` | do not ack: the source redelivers it (HTTP `503`, no offset commit) |
//! | `Err(e)` with `e.ack() == Ack::Refuse` | the message can never be handled: refuse it (HTTP `400`) or park it for a human |
//!
//! A retryable failure is never an `Outcome`, however long it lasts: when the delivery engine
//! stops retrying, the claim on the message is released and the caller is told to retry later.
//! Only a permanent refusal is dead-lettered.

use std::fmt;

pub use crate::dead_letter::DeadLetterReason;

/// How a message that went through a flow ended. Every outcome means: ack the source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The destination accepted everything the message turned into.
    Delivered,
    /// Nothing had to be written, for this reason.
    Skipped(SkipReason),
    /// The destination refused (part of) it for good; the refused items are recorded in the
    /// dead-letter sink. The reason is the first refused item's.
    DeadLettered(DeadLetterReason),
}

impl Outcome {
    /// `delivered`, `skipped` or `dead_lettered`: a label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Skipped(_) => "skipped",
            Outcome::DeadLettered(_) => "dead_lettered",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered => f.write_str("delivered"),
            Outcome::Skipped(reason) => write!(f, "skipped: {reason}"),
            Outcome::DeadLettered(reason) => write!(f, "dead-lettered: {}", reason.label()),
        }
    }
}

/// Why a message was not written anywhere. Carries no identifier or personal data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// No userId, anonymousId or email to identify anyone by (or none of the kind a flow needs).
    NoIdentity,
    /// The message only makes sense for a known person (e.g. an identify with nothing but an
    /// anonymousId) and none is known.
    AnonymousNotAllowed,
    /// An alias whose two sides are already the same person.
    AlreadyMerged,
    /// The configuration filters this event or call out.
    Filtered,
    /// A message this library wrote itself, coming back (loop guard).
    OwnEcho,
    /// A duplicate of a message already finished.
    Duplicate,
    /// A newer change of the same state (e.g. an audience membership) was already applied.
    Stale,
    /// An Engage audience with no Customer.io segment configured, while creating segments is
    /// off. Holds the audience key (a name from the Engage space, not personal data).
    UnknownAudience(String),
    /// An event the flow has no mapping for (e.g. a Customer.io reporting metric with no
    /// Segment event name configured). Holds the key that was looked up, e.g. `email_sent`.
    NotMapped(String),
    /// The other side has no record of the person (e.g. no Segment profile to backfill from).
    NotFound,
    /// Nothing is left to write (e.g. every trait of a profile is protected).
    NothingToWrite,
    /// A host-defined reason.
    Custom(String),
}

impl SkipReason {
    /// A short, data-free label for logs and metrics (`duplicate`, `own_echo`, …).
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::NoIdentity => "no_identity",
            SkipReason::AnonymousNotAllowed => "anonymous_not_allowed",
            SkipReason::AlreadyMerged => "already_merged",
            SkipReason::Filtered => "filtered",
            SkipReason::OwnEcho => "own_echo",
            SkipReason::Duplicate => "duplicate",
            SkipReason::Stale => "stale",
            SkipReason::UnknownAudience(_) => "unknown_audience",
            SkipReason::NotMapped(_) => "not_mapped",
            SkipReason::NotFound => "not_found",
            SkipReason::NothingToWrite => "nothing_to_write",
            SkipReason::Custom(_) => "custom",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoIdentity => f.write_str("no identity"),
            SkipReason::AnonymousNotAllowed => f.write_str("anonymous not allowed for this call"),
            SkipReason::AlreadyMerged => f.write_str("already the same person"),
            SkipReason::Filtered => f.write_str("filtered by the configuration"),
            SkipReason::OwnEcho => f.write_str("written by this library (loop guard)"),
            SkipReason::Duplicate => f.write_str("duplicate of a finished message"),
            SkipReason::Stale => f.write_str("a newer change was already applied"),
            SkipReason::UnknownAudience(key) => {
                write!(f, "no manual segment configured for audience `{key}`")
            }
            SkipReason::NotMapped(key) => write!(f, "nothing is mapped to `{key}`"),
            SkipReason::NotFound => f.write_str("no record of the person on the other side"),
            SkipReason::NothingToWrite => f.write_str("nothing left to write"),
            SkipReason::Custom(reason) => f.write_str(reason),
        }
    }
}

/// What the host does with a message whose flow answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ack {
    /// Not finished, and a redelivery can succeed: do not ack; let the source retry (HTTP
    /// `503`, no offset commit, keep it in the resume file).
    RetryLater,
    /// It can never be handled as it is (it does not decode, cannot be mapped, names a
    /// configuration that does not exist): refuse it (HTTP `400`) or park it for a human.
    Refuse,
}

impl Ack {
    /// Whether the source should redeliver the message.
    pub fn is_retry_later(self) -> bool {
        self == Ack::RetryLater
    }

    /// `retry_later` or `refused`: a label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Ack::RetryLater => "retry_later",
            Ack::Refuse => "refused",
        }
    }
}

/// The one ack rule: every error a flow can answer with says whether to retry or refuse.
pub trait AckRule {
    /// [`Ack::RetryLater`] or [`Ack::Refuse`].
    fn ack(&self) -> Ack;
}

/// The label of a flow's answer, one of five: the [`Outcome::label`] of an outcome
/// (`delivered`, `skipped`, `dead_lettered`) or the [`Ack::label`] of an error (`retry_later`,
/// `refused`). Every flow's metrics use it as their `outcome` label.
///
/// ```
/// use cio_segment_sync::outcome::{answer_label, Ack, AckRule, Outcome};
///
/// struct Down;
/// impl AckRule for Down {
///     fn ack(&self) -> Ack {
///         Ack::RetryLater
///     }
/// }
///
/// assert_eq!(answer_label::<Down>(&Ok(Outcome::Delivered)), "delivered");
/// assert_eq!(answer_label(&Err::<Outcome, _>(Down)), "retry_later");
/// ```
pub fn answer_label<E: AckRule>(result: &Result<Outcome, E>) -> &'static str {
    match result {
        Ok(outcome) => outcome.label(),
        Err(error) => error.ack().label(),
    }
}

/// The error and its sources, each written once, joined with `: `: the text the endpoints,
/// the CLI and the logs show for a failure.
///
/// Many errors of the workspace already write their source into their own `Display`; a source
/// whose text is already there is not repeated. A `serde_json` error among the sources is named
/// by its category only, since some of its messages quote the input.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = match cause.downcast_ref::<serde_json::Error>() {
            Some(json) => segment_model::JsonErrorCategory::of(json).to_string(),
            None => cause.to_string(),
        };
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        if cause.is::<serde_json::Error>() {
            break;
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_no_data() {
        let reason = SkipReason::UnknownAudience("vip".to_owned());
        assert_eq!(reason.label(), "unknown_audience");
        assert_eq!(
            reason.to_string(),
            "no manual segment configured for audience `vip`"
        );
        assert_eq!(Outcome::Skipped(SkipReason::Stale).label(), "skipped");
        assert_eq!(
            Outcome::Skipped(SkipReason::Duplicate).to_string(),
            "skipped: duplicate of a finished message"
        );
        let refused = DeadLetterReason::TooLarge {
            bytes: 40_000,
            limit: 32_000,
        };
        assert_eq!(
            Outcome::DeadLettered(refused).to_string(),
            "dead-lettered: too_large"
        );
    }

    #[test]
    fn only_retry_later_asks_for_a_redelivery() {
        assert!(Ack::RetryLater.is_retry_later());
        assert!(!Ack::Refuse.is_retry_later());
    }

    struct Failed(Ack);

    impl AckRule for Failed {
        fn ack(&self) -> Ack {
            self.0
        }
    }

    #[test]
    fn every_answer_has_one_of_five_labels() {
        let dead = DeadLetterReason::TooLarge { bytes: 2, limit: 1 };
        let cases: [(Result<Outcome, Failed>, &str); 5] = [
            (Ok(Outcome::Delivered), "delivered"),
            (Ok(Outcome::Skipped(SkipReason::Duplicate)), "skipped"),
            (Ok(Outcome::DeadLettered(dead)), "dead_lettered"),
            (Err(Failed(Ack::RetryLater)), "retry_later"),
            (Err(Failed(Ack::Refuse)), "refused"),
        ];
        for (result, label) in cases {
            assert_eq!(answer_label(&result), label);
        }
    }
}
