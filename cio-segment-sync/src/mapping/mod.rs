//! Mapping between the two vendors' models: pure functions, no I/O, no clock, no state, so
//! every rule is tested with fixture pairs.
//!
//! - [`to_customerio`]: a Segment message and its resolved [`Target`](crate::identity::Target)
//!   → Customer.io Track v2 operations, driven by a [`MappingConfig`]. Its items are
//!   re-exported here ([`map`], [`map_at`], [`Mapped`], [`MappingConfig`], [`MappingError`], …),
//!   so `cio_segment_sync::mapping::map` is the path to name; the rules are in
//!   [its docs](to_customerio).
//! - [`to_segment`]: a Customer.io reporting-webhook event → the Segment `track` message that
//!   reports it (the engagement back-sync's translation): event names, properties, context and
//!   the UUID v5 `messageId`.

pub mod to_customerio;
pub mod to_segment;

pub use to_customerio::{
    GROUP_RESERVED_TRAITS, IDENTIFY_RESERVED_TRAITS, IncompleteLifecycle, KeyRules, LongPageName,
    Mapped, MappingConfig, MappingError, NameFilter, ObjectAttributes, PageName,
    iso8601_unix_seconds, map, map_at,
};
