//! The answer of identity resolution: who a message is about in Customer.io.

use customerio_client::Identifier;

pub use crate::outcome::SkipReason;

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
