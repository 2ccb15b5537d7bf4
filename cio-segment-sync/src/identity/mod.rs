//! Identity: which Customer.io person a Segment message is about.
//!
//! [`IdentityStore`] keeps the links between a person's anonymousIds, userId and emails so an
//! anonymous event after an identify reaches the person, and an alias between two known people
//! becomes a merge. [`IdentityResolver`] turns a Segment message into a [`Target`]; the default
//! [`StoreResolver`] applies Segment's identifier rules on top of an [`IdentityStore`];
//! [`RewriteIdentifiers`] puts a host's identifier rule over any resolver without breaking the
//! inner one's [`delivered`](IdentityResolver::delivered) (where identity links are written).

mod memory;
mod resolver;
mod rewrite;
mod store;
mod target;

pub use memory::{MemoryIdentityConfig, MemoryIdentityStore};
pub use resolver::{IdentityResolver, ResolverConfig, StoreResolver, looks_like_email};
pub use rewrite::RewriteIdentifiers;
pub use store::{IdentityKey, IdentityStore, LinkOutcome};
pub use target::{SkipReason, Target};
