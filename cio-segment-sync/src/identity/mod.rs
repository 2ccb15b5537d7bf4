//! Identity: which Customer.io person a Segment message is about.
//!
//! [`IdentityStore`] keeps the links between a person's anonymousIds, userId and emails so an
//! anonymous event after an identify reaches the person, and an alias between two known people
//! becomes a merge. [`IdentityResolver`] turns a Segment message into a [`Target`]; the default
//! [`StoreResolver`] applies Segment's identifier rules on top of an [`IdentityStore`].

mod memory;
mod resolver;
mod store;
mod target;

pub use memory::{MemoryIdentityConfig, MemoryIdentityStore};
pub use resolver::{IdentityResolver, ResolverConfig, StoreResolver, looks_like_email};
pub use store::{IdentityKey, IdentityStore, LinkOutcome};
pub use target::{SkipReason, Target};
