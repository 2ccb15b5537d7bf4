//! Track API v2 (`/api/v2`): typed operations and the `entity` / `batch` calls.
//!
//! Every v2 request carries one or more *operations*: a JSON object with a `type` (`person`,
//! `object` or `delivery`), an `action`, the `identifiers` of what it is about, and the
//! action's own keys. [`Operation`] models all of them:
//!
//! | `type` | `action` | Rust type | built with |
//! |---|---|---|---|
//! | `person` | `identify` | [`PersonIdentify`] | `PersonIdentify::new(who)?` |
//! | `person` | `delete`, `suppress`, `unsuppress` | [`PersonRef`] | [`Operation::delete_person`], [`Operation::suppress_person`], [`Operation::unsuppress_person`] |
//! | `person` | `event`, `page`, `screen` | [`PersonEvent`] | `PersonEvent::new(who, name)?`, then [`Operation::from`], [`Operation::page`], [`Operation::screen`] |
//! | `person` | `add_relationships`, `delete_relationships` | [`PersonRelationships`] | [`Operation::add_person_relationships`], [`Operation::delete_person_relationships`] |
//! | `person` | `add_device` | [`AddDevice`] | `AddDevice::new(who, Device::new(token, platform)?)?` |
//! | `person` | `delete_device` | [`DeleteDevice`] | `DeleteDevice::new(who, token)?` |
//! | `person` | `merge` | [`Merge`] | `Merge::new(primary, secondary)?` |
//! | `object` | `identify` | [`ObjectIdentify`] | `ObjectIdentify::new(object)` |
//! | `object` | `identify_anonymous` | [`ObjectIdentifyAnonymous`] | `ObjectIdentifyAnonymous::new(object)` |
//! | `object` | `delete` | [`ObjectRef`] | [`Operation::delete_object`] |
//! | `object` | `add_relationships`, `delete_relationships` | [`ObjectRelationships`] | [`Operation::add_object_relationships`], [`Operation::delete_object_relationships`] |
//! | `delivery` | `event` | [`DeliveryEvent`] | `DeliveryEvent::new(delivery_id, metric, device_token)?` |
//!
//! # Invariants
//!
//! The per-action types keep their fields private. Their constructors and `with_*` methods
//! check the documented limits (identifier and object id ≤ 150 bytes, event name ≤ 100 bytes,
//! person and object attribute limits, event attributes ≤ 100 000 bytes, see
//! [`crate::limits`]) and return an [`Error`] of kind [`ErrorKind::Invalid`](crate::ErrorKind)
//! that names the field, never its value. Deserialising an operation runs the same checks, so
//! every [`Operation`] value is one the client is willing to send. The one limit not checked
//! at construction is the serialised size of a whole operation (32 000 bytes): it is checked
//! where the operation is serialised: by [`TrackClient::entity`], [`TrackClient::batch`] and
//! the [`BatchPacker`].
//!
//! Keys this crate does not model are kept when an operation is deserialised and written back
//! once when it is serialised.
//!
//! # Anonymous people (unconfirmed)
//!
//! The Track v2 spec lets person operations name someone by `id`, `email`, `cio_id` or `phone`.
//! Segment's Customer.io destination also sends `{"anonymous_id": "…"}` for people it does not
//! know yet; that form is not in Customer.io's spec. This module supports it only for
//! event-like actions (`event`, `page`, `screen`) and only when asked for explicitly, through
//! [`EventTarget::anonymous`]. If Customer.io refuses it, send the event through Track v1's
//! anonymous-event endpoint instead.
//!
//! # Example
//!
//! ```
//! use customerio_client::Identifier;
//! use customerio_client::track::v2::{Operation, PersonEvent, PersonIdentify};
//! use serde_json::json;
//!
//! let identify: Operation = PersonIdentify::new(Identifier::id("user-42"))?
//!     .with_timestamp(1717172400)?
//!     .with_attribute("plan", "pro")?
//!     .into();
//! let event: Operation = PersonEvent::new(Identifier::email("bob@example.com"), "trial_started")?
//!     .with_id("01J0ZQ9W2D4F6H8J0K2M4N6P8R".parse()?)
//!     .with_timestamp(1717172410)?
//!     .with_attribute("source", "ads")?
//!     .into();
//!
//! assert_eq!(
//!     serde_json::to_value(&event)?,
//!     json!({"type": "person", "action": "event", "identifiers": {"email": "bob@example.com"},
//!            "name": "trial_started", "id": "01J0ZQ9W2D4F6H8J0K2M4N6P8R",
//!            "timestamp": 1717172410, "attributes": {"source": "ads"}})
//! );
//! assert_eq!(identify.action(), "identify");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Error`]: crate::error::Error
//! [`TrackClient::entity`]: crate::TrackClient::entity
//! [`TrackClient::batch`]: crate::TrackClient::batch
//! [`BatchPacker`]: crate::track::packer::BatchPacker

// Where things are:
//   identifiers.rs   EventTarget, AnonymousId, ObjectTypeId, ObjectIdentifiers
//   relationship.rs  Relationship and its aliases; checks of a relationship list
//   person.rs        person operations (identify, ref, event, relationships, merge) and
//                    PersonOperation
//   device.rs        Platform, Device, AddDevice, DeleteDevice
//   object.rs        object operations and ObjectOperation
//   delivery.rs      DeliveryMetric, DeliveryEvent, DeliveryOperation
//   operation.rs     the Operation envelope, its constructors and From conversions
//   calls.rs         TrackClient::{entity, batch, send_packed} and BatchOutcome
//   common.rs        checks shared by all of them (sizes, identifiers, timestamps, attributes)
//   macros.rs        string_enum! and checked_type!
// The batch packer these calls use is crate::track::packer.

#[macro_use]
mod macros;

mod calls;
mod common;
mod delivery;
mod device;
mod identifiers;
mod object;
mod operation;
mod person;
mod relationship;

pub use calls::BatchOutcome;
pub use common::MAX_TIMESTAMP_SECONDS;
pub use delivery::{DeliveryEvent, DeliveryMetric, DeliveryOperation};
pub use device::{AddDevice, DeleteDevice, Device, Platform};
pub use identifiers::{AnonymousId, EventTarget, ObjectIdentifiers, ObjectTypeId};
pub use object::{
    ObjectIdentify, ObjectIdentifyAnonymous, ObjectOperation, ObjectRef, ObjectRelationships,
};
pub use operation::Operation;
pub use person::{
    Merge, PersonEvent, PersonIdentify, PersonOperation, PersonRef, PersonRelationships,
};
pub use relationship::{
    AnonymousRelationship, ObjectRelationship, PersonRelationship, Relationship,
};
