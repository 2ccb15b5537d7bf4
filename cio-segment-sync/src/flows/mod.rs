//! The use cases, one module each, built from the stores, the loop guard, the mapping and the
//! dispatcher.
//!
//! - [`engagement`]: engagement back-sync — Customer.io reporting webhooks → Segment `track`
//!   events named by Segment's semantic specs, stamped so they never flow back;
//! - [`backfill`]: new-subscriber backfill — a person who subscribes in Customer.io gets their
//!   traits read from Segment's Profile API and written back into Customer.io.

pub mod backfill;
pub mod engagement;
