//! The answer of identity resolution: who a message is about in Customer.io.

use std::fmt;

use customerio_client::Identifier;

/// Who a Segment message is about in Customer.io, as decided by identity resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A person, by id, email or cio_id.
    Person {
        /// How Customer.io knows the person.
        identifier: Identifier,
        /// An anonymousId to stitch into this person: set on an identify that follows
        /// anonymous activity, so Customer.io attaches the anonymous events itself.
        anonymous_id: Option<String>,
    },
    /// Somebody not identified yet, known only by a Segment anonymousId.
    Anonymous {
        /// The Segment anonymousId.
        anonymous_id: String,
    },
    /// An alias between two known people: merge `secondary` into `primary`.
    Merge {
        /// The person who stays.
        primary: Identifier,
        /// The person merged into the primary (deleted in Customer.io).
        secondary: Identifier,
    },
    /// Write nothing to Customer.io for this message.
    Skip(SkipReason),
}

/// Why a message is not written to Customer.io. Carries no identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// No userId, anonymousId or email to identify anyone by.
    NoIdentity,
    /// The message only makes sense for a known person (e.g. an identify with nothing but an
    /// anonymousId) and none is known.
    AnonymousNotAllowed,
    /// An alias whose two sides are already the same person.
    AlreadyMerged,
    /// The mapping configuration filters this event or call out.
    Filtered,
    /// A message this library wrote itself, coming back (loop guard).
    OwnEcho,
    /// A duplicate of a message already delivered.
    Duplicate,
    /// A host-defined reason.
    Custom(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoIdentity => f.write_str("no identity"),
            SkipReason::AnonymousNotAllowed => f.write_str("anonymous not allowed for this call"),
            SkipReason::AlreadyMerged => f.write_str("already the same person"),
            SkipReason::Filtered => f.write_str("filtered by the mapping configuration"),
            SkipReason::OwnEcho => f.write_str("written by this library (loop guard)"),
            SkipReason::Duplicate => f.write_str("duplicate of a delivered message"),
            SkipReason::Custom(reason) => f.write_str(reason),
        }
    }
}
