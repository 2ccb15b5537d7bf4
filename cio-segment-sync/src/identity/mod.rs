//! Identity: which Customer.io person a Segment message is about.
//!
//! [`IdentityStore`] keeps the links between a person's anonymousIds, userId and emails so an
//! anonymous event after an identify reaches the person, and an alias between two known people
//! becomes a merge.

mod memory;
mod store;
mod target;

pub use memory::{MemoryIdentityConfig, MemoryIdentityStore};
pub use store::{IdentityKey, IdentityStore, LinkOutcome};
pub use target::{SkipReason, Target};
