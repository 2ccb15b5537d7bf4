//! Track API v1 calls (`/api/v1`): people, events, devices, merges, segments, metrics.
//!
//! Every call checks its input against the documented limits first and sends nothing when
//! it is refused ([`ErrorKind::Invalid`](crate::ErrorKind::Invalid), phase `NotSent`; the
//! message names the field, never its value). Every call makes exactly one attempt; wrap it in
//! [`retry`](crate::retry::retry) for more, and see the [retry module](crate::retry) for which
//! calls are safe to resend.
//!
//! People are named by an [`Identifier`] written into the URL path: an id or email is
//! percent-encoded, a `cio_id` gets its `cio_` prefix, and a phone number is refused (v1 would
//! read it as an id; use Track v2).
//!
//! Timestamps are integer Unix **seconds**. A value of 10¹⁰ or more is refused as it is almost
//! certainly milliseconds. Future timestamps are sent as given (the server's handling of them
//! is not documented; clamp them in your own code if you need to).
//!
//! ```no_run
//! use customerio_client::track::v1::{Event, IdentifyRequest};
//! use customerio_client::{ClientConfig, Identifier, Region, SiteId, TrackApiKey, TrackClient};
//!
//! # async fn run(id: ulid::Ulid) -> Result<(), customerio_client::Error> {
//! let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), ClientConfig::new(Region::Eu))?;
//! let person = Identifier::id("user-42");
//! client
//!     .identify_with(&person, &IdentifyRequest::new().email("ada@example.com").created_at(1717171717).attribute("plan", "pro"))
//!     .await?;
//! client
//!     .track(&person, &Event::new("order_completed").id(id).timestamp(1717172000).property("total", 129.5))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`Identifier`]: crate::Identifier

// Where things are:
//   identify.rs      IdentifyRequest, SubscriptionPreferences, RESERVED_IDENTIFY_KEYS
//   relationship.rs  Relationships, Relationship, ObjectIdentifier (cio_relationships)
//   event.rs         Event, EventType
//   device.rs        Platform, Device
//   metrics.rs       the per-channel metrics, DeliveryMetric, DeliveryMetricReport
//   segments.rs      SegmentIdType and the manual-segment body and checks
//   calls.rs         every v1 call on TrackClient (and the merge body)
//   common.rs        checks shared by the calls (timestamps, ids, person path)

mod calls;
mod common;
mod device;
mod event;
mod identify;
mod metrics;
mod relationship;
mod segments;

pub use common::TIMESTAMP_SECONDS_LIMIT;
pub use device::{Device, Platform};
pub use event::{Event, EventType};
pub use identify::{IdentifyRequest, RESERVED_IDENTIFY_KEYS, SubscriptionPreferences};
pub use metrics::{
    DeliveryMetric, DeliveryMetricReport, EmailMetric, InAppMetric, PushMetric, SlackMetric,
    SmsMetric,
};
pub use relationship::{ObjectIdentifier, Relationship, RelationshipAction, Relationships};
pub use segments::SegmentIdType;
