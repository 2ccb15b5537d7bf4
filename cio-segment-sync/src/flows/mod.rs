//! Ready-made flows: one module per use case, each built from the four traits
//! ([`Deduper`](crate::dedupe::Deduper), [`LoopGuard`](crate::loop_guard::LoopGuard),
//! [`IdentityResolver`](crate::identity::IdentityResolver), [`Pipeline`](crate::pipeline::Pipeline))
//! and the [dispatcher](crate::dispatch).
//!
//! - [`triggers`]: behavioural triggers and profile enrichment, Segment → Customer.io;
//! - [`onboarding`]: onboarding milestones that only ever move a person forwards;
//! - [`forget`]: deletion and suppression, in Customer.io and in every store of the flows.
//!
//! Every flow's configuration is a serde struct with documented defaults, so a host can load
//! it from TOML.

pub mod forget;
pub mod onboarding;
pub mod triggers;
