//! Keep Segment and Customer.io in sync.
//!
//! This crate translates and orchestrates between [`segment_model`] and [`customerio_client`]:
//! identity resolution, loop guarding, de-duplication, mapping and delivery. It holds no URL and
//! no vendor wire detail; those live in the two vendor crates, re-exported here so a host can
//! depend on one crate.
//!
//! Available now:
//! - [`activity`]: the [`ActivityStore`](activity::ActivityStore) of last activity per person
//!   (churn scans), and its bounded in-memory implementation;
//! - [`dedupe`]: the [`Deduper`](dedupe::Deduper) trait (claim → commit / release) and its
//!   bounded in-memory implementation;
//! - [`identity`]: the [`IdentityStore`](identity::IdentityStore) of links between a person's
//!   anonymousIds, userId and emails, and its bounded in-memory implementation;
//! - [`identity`] also holds the [`IdentityResolver`](identity::IdentityResolver) trait and its
//!   default [`StoreResolver`](identity::StoreResolver): Segment message → Customer.io person;
//! - [`loop_guard`]: the [`LoopGuard`](loop_guard::LoopGuard) that stamps what this library
//!   writes into Segment and recognises it when it comes back;
//! - [`pipeline`]: the [`Pipeline`](pipeline::Pipeline) trait and [`SyncPipeline`](pipeline::SyncPipeline),
//!   one message in, an [`Outcome`](pipeline::Outcome) out: dedupe → loop guard → identity →
//!   mapping → delivery;
//! - [`mapping`]: pure functions from a Segment message and its resolved target to
//!   Customer.io Track v2 operations, driven by a [`MappingConfig`](mapping::MappingConfig)
//!   ([`mapping::to_customerio`], re-exported at [`mapping`]), and from a Customer.io reporting
//!   event to the Segment `track` message that reports it ([`mapping::to_segment`]);
//! - [`rate_limit`]: the [`RateLimiter`](rate_limit::RateLimiter) trait (a token per attempt)
//!   and the in-process GCRA limiter;
//! - [`dispatch`]: the delivery engine, one [`Dispatcher`](dispatch::Dispatcher) generic over a
//!   [`Sink`](dispatch::Sink): batching, bounded queue, retries, per-person order, completions
//!   resolved only after the server accepted the item;
//! - [`flows`]: ready-made flows per use case (triggers and enrichment, onboarding
//!   milestones, churn prevention, audience sync, engagement back-sync, new-subscriber
//!   backfill, deletion and suppression);
//! - [`dead_letter`]: what was refused for good, with the reason, in one versioned record format
//!   shared with replay resume files (in memory, a rotated JSONL directory, one file, or a Redis
//!   stream), read back and marked when re-sent;
//! - [`store`]: the [`Stores`](store::Stores) bundle every flow shares, and the
//!   [`LeaseStore`](store::LeaseStore) of named leases with which replicas run a job once per
//!   interval between them (the churn scan: see [`ChurnScanner`](flows::churn::ChurnScanner));
//! - `http` (feature `http`): framework-free webhook endpoints for Segment and Customer.io:
//!   verify, decode, run under a deadline, answer 200 / 400 / 503 by one rule; load shedding,
//!   a graceful drain and readiness checks in front of them;
//! - `axum` (feature `axum`): those endpoints as routes a host mounts in its own axum `Router`,
//!   bounded, with `/healthz` and `/readyz`;
//! - `redis` (feature `redis`): Redis-backed stores shared by many workers, the scan lease among
//!   them; activity records expire after a time-to-live derived from the churn settings
//!   (`Stores::redis_for`; at least the churn period plus the scan interval plus a day);
//! - [`testing`] (feature `testing`): conformance suites hosts run against their own stores.

pub mod activity;
#[cfg(feature = "axum")]
pub mod axum;
pub mod builder;
pub mod config;
pub mod dead_letter;
pub mod dedupe;
pub mod dispatch;
mod expiring;
pub mod flows;
#[cfg(feature = "http")]
pub mod http;
pub mod identity;
pub mod loop_guard;
pub mod mapping;
pub mod outcome;
pub mod pipeline;
pub mod rate_limit;
#[cfg(feature = "redis")]
pub mod redis;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// Every error of the crate says what failed once (issue 13).
#[cfg(test)]
mod display_once;

/// The workspace README's code compiles.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadmeDoctests;

/// The crate README's code compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Re-exported so a host implements the crate's async traits with the same macro version.
pub use async_trait::async_trait;
pub use customerio_client;
pub use segment_model;
pub use store::StoreError;
