//! Keep Segment and Customer.io in sync.
//!
//! This crate translates and orchestrates between [`segment_model`] and [`customerio_client`]:
//! identity resolution, loop guarding, de-duplication, mapping and delivery. The building blocks
//! arrive in later releases; this release re-exports the two vendor crates so hosts can depend on
//! one crate.

pub use customerio_client;
pub use segment_model;
