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

use std::fmt;
use std::io;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use ulid::Ulid;

use crate::error::{ApiError, Error, parse_api_errors};
use crate::http::Body;
use crate::identifier::{Identifier, IdentifierKind};
use crate::limits::{self, MAX_OBJECT_ATTRIBUTES_BYTES, MAX_OBJECT_ID_BYTES, MAX_OPERATION_BYTES};
use crate::track::TrackClient;
use crate::track::packer::{BatchPacker, PackedBatch, PackerLimits};

/// Largest timestamp accepted: ten digits of Unix seconds. Anything longer is almost surely
/// milliseconds (the Ruby SDK refuses such values for the same reason).
pub const MAX_TIMESTAMP_SECONDS: i64 = 9_999_999_999;

// ------------------------------------------------------------------------------------------
// Small helpers shared by the checks.

/// Counts bytes written, so a value's serialised size is known without allocating it.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn serialized_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        // A value that cannot be serialised cannot be sent either: report it as too large.
        Err(_) => usize::MAX,
    }
}

fn check_person(op: &'static str, field: &str, who: &Identifier) -> Result<(), Error> {
    let value = who.value();
    if value.is_empty() {
        return Err(Error::invalid(
            op,
            format!("{field}: {} is empty", who.kind()),
        ));
    }
    if value.len() > limits::MAX_ID_BYTES {
        return Err(Error::invalid(
            op,
            format!(
                "{field}: {} is {} bytes; the limit is {}",
                who.kind(),
                value.len(),
                limits::MAX_ID_BYTES
            ),
        ));
    }
    Ok(())
}

fn check_not_empty(op: &'static str, field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(op, format!("{field} is empty")));
    }
    Ok(())
}

fn check_timestamp(op: &'static str, field: &str, seconds: Option<i64>) -> Result<(), Error> {
    match seconds {
        Some(s) if !(-MAX_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&s) => {
            Err(Error::invalid(
                op,
                format!(
                    "{field} has more than ten digits; Customer.io expects Unix seconds, not milliseconds"
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Person attribute limits: names, values and count.
fn check_person_attributes(
    op: &'static str,
    what: &str,
    attributes: &Map<String, Value>,
) -> Result<(), Error> {
    limits::check_attributes(op, what, attributes)
}

/// Object and relationship attribute limits: the person limits plus a total size.
fn check_object_attributes(
    op: &'static str,
    what: &str,
    attributes: &Map<String, Value>,
) -> Result<(), Error> {
    limits::check_attributes(op, what, attributes)?;
    let size = serialized_len(attributes);
    if size > MAX_OBJECT_ATTRIBUTES_BYTES {
        return Err(Error::invalid(
            op,
            format!("{what}: {size} bytes in total; the limit is {MAX_OBJECT_ATTRIBUTES_BYTES}"),
        ));
    }
    Ok(())
}

/// Event attributes (v1 `data`): only the total size is documented.
fn check_event_attributes(op: &'static str, attributes: &Map<String, Value>) -> Result<(), Error> {
    limits::check_event_data(op, attributes)
}

/// `Option<Ulid>` as the 26-character text form.
mod ulid_text {
    use super::*;

    pub(super) fn serialize<S: Serializer>(id: &Option<Ulid>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_str(&id.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ulid>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                Ulid::from_string(&text).map_err(|_| D::Error::custom("`id` is not a ULID"))
            })
            .transpose()
    }
}

/// Declares a string enum with known values and a catch-all for values Customer.io may add.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know, sent and kept as it is.
            Other(String),
        }

        impl $name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Ok($name::from(text.as_str()))
            }
        }
    };
}

/// Declares a public per-action type as a newtype over a private field struct. Serialisation
/// is the field struct's; deserialisation runs `check` so a decoded value obeys the same
/// limits as a constructed one.
macro_rules! checked_type {
    ($(#[$meta:meta])* pub struct $name:ident($fields:ident);) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(transparent)]
        pub struct $name($fields);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = $name($fields::deserialize(d)?);
                value.check().map_err(D::Error::custom)?;
                Ok(value)
            }
        }
    };
}

// ------------------------------------------------------------------------------------------
// Identifiers.

/// An anonymous person, written `{"anonymous_id": "…"}`.
///
/// Used by object `identify_anonymous` relationships (documented) and, as an explicit opt-in,
/// by anonymous person events (sent by Segment's destination; not in Customer.io's spec — see
/// the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymousId {
    anonymous_id: String,
}

impl AnonymousId {
    /// An anonymous id (a cookie or device id). Refuses an empty value; no length limit is
    /// documented for anonymous ids, so none is applied.
    pub fn new(value: impl Into<String>) -> Result<Self, Error> {
        let id = Self {
            anonymous_id: value.into(),
        };
        id.check("track.v2.anonymous_id", "anonymous_id")?;
        Ok(id)
    }

    /// The anonymous id.
    pub fn as_str(&self) -> &str {
        &self.anonymous_id
    }

    fn check(&self, op: &'static str, path: &str) -> Result<(), Error> {
        if self.anonymous_id.is_empty() {
            return Err(Error::invalid(op, format!("{path} is empty")));
        }
        Ok(())
    }
}

/// Who a person event, page or screen is about: a known person, or (opt-in) an anonymous one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventTarget {
    /// A known person.
    Person(Identifier),
    /// An anonymous person, `{"anonymous_id": "…"}`. Sent by Segment's destination but not in
    /// Customer.io's spec (unconfirmed); see the [module docs](self).
    Anonymous(AnonymousId),
}

impl EventTarget {
    /// An anonymous person (opt-in; unconfirmed in Customer.io's spec).
    pub fn anonymous(anonymous_id: impl Into<String>) -> Result<Self, Error> {
        AnonymousId::new(anonymous_id).map(EventTarget::Anonymous)
    }

    fn check(&self, op: &'static str) -> Result<(), Error> {
        match self {
            EventTarget::Person(who) => check_person(op, "identifiers", who),
            EventTarget::Anonymous(id) => id.check(op, "identifiers.anonymous_id"),
        }
    }
}

impl From<Identifier> for EventTarget {
    fn from(who: Identifier) -> Self {
        EventTarget::Person(who)
    }
}

impl From<AnonymousId> for EventTarget {
    fn from(id: AnonymousId) -> Self {
        EventTarget::Anonymous(id)
    }
}

/// The one-key wire form of [`EventTarget`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventTargetWire {
    Id(String),
    Email(String),
    CioId(String),
    Phone(String),
    AnonymousId(String),
}

impl Serialize for EventTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EventTarget::Person(who) => who.serialize(s),
            EventTarget::Anonymous(id) => id.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for EventTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match EventTargetWire::deserialize(d)? {
            EventTargetWire::Id(v) => EventTarget::Person(Identifier::Id(v)),
            EventTargetWire::Email(v) => EventTarget::Person(Identifier::Email(v)),
            EventTargetWire::CioId(v) => EventTarget::Person(Identifier::CioId(v)),
            EventTargetWire::Phone(v) => EventTarget::Person(Identifier::Phone(v)),
            EventTargetWire::AnonymousId(anonymous_id) => {
                EventTarget::Anonymous(AnonymousId { anonymous_id })
            }
        })
    }
}

/// A custom object type id: a string-formatted integer starting at `"1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectTypeId(u32);

impl ObjectTypeId {
    /// The first object type of a workspace, `"1"`.
    pub const FIRST: ObjectTypeId = ObjectTypeId(1);

    /// An object type id; `0` is refused (ids start at 1).
    pub fn new(id: u32) -> Result<Self, Error> {
        if id == 0 {
            return Err(Error::invalid(
                "track.v2.object_type_id",
                "object_type_id must be 1 or more",
            ));
        }
        Ok(Self(id))
    }

    /// The numeric value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl std::str::FromStr for ObjectTypeId {
    type Err = Error;

    /// Parses the wire form (`"1"`, `"2"`, …).
    fn from_str(text: &str) -> Result<Self, Error> {
        let id = text.parse::<u32>().map_err(|_| {
            Error::invalid(
                "track.v2.object_type_id",
                "object_type_id is not a positive integer",
            )
        })?;
        Self::new(id)
    }
}

impl fmt::Display for ObjectTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for ObjectTypeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectTypeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// Which object an operation or relationship is about.
///
/// `{"object_type_id": "1", "object_id": "acme"}` creates or updates; `{"cio_object_id": …}`
/// only updates an object Customer.io already has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectIdentifiers {
    /// An object by its type and the workspace's own id for it.
    Typed {
        /// The object type (`"1"` is the first type of a workspace).
        object_type_id: ObjectTypeId,
        /// The workspace's id for the object (≤ 150 bytes).
        object_id: String,
    },
    /// An object by Customer.io's id for it (update only).
    CioObjectId(String),
}

impl ObjectIdentifiers {
    /// An object by type and id. Checks the id (non-empty, ≤ 150 bytes).
    pub fn new(object_type_id: ObjectTypeId, object_id: impl Into<String>) -> Result<Self, Error> {
        let object = ObjectIdentifiers::Typed {
            object_type_id,
            object_id: object_id.into(),
        };
        object.check("track.v2.object_identifiers", "identifiers")?;
        Ok(object)
    }

    /// An object by Customer.io's id (update only). Refuses an empty id.
    pub fn cio_object_id(id: impl Into<String>) -> Result<Self, Error> {
        let object = ObjectIdentifiers::CioObjectId(id.into());
        object.check("track.v2.object_identifiers", "identifiers")?;
        Ok(object)
    }

    /// Checks the id; `path` names where the identifiers sit (`identifiers`,
    /// `cio_relationships[2].identifiers`).
    fn check(&self, op: &'static str, path: &str) -> Result<(), Error> {
        let (field, value) = match self {
            ObjectIdentifiers::Typed { object_id, .. } => ("object_id", object_id),
            ObjectIdentifiers::CioObjectId(id) => ("cio_object_id", id),
        };
        if value.is_empty() {
            return Err(Error::invalid(op, format!("{path}.{field} is empty")));
        }
        if value.len() > MAX_OBJECT_ID_BYTES {
            return Err(Error::invalid(
                op,
                format!(
                    "{path}.{field} is {} bytes; the limit is {MAX_OBJECT_ID_BYTES}",
                    value.len()
                ),
            ));
        }
        Ok(())
    }
}

/// Every key either form may carry; exactly one form must be complete.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectIdentifiersWire {
    #[serde(default)]
    object_type_id: Option<ObjectTypeId>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    cio_object_id: Option<String>,
}

impl Serialize for ObjectIdentifiers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            ObjectIdentifiers::Typed {
                object_type_id,
                object_id,
            } => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("object_type_id", object_type_id)?;
                map.serialize_entry("object_id", object_id)?;
                map.end()
            }
            ObjectIdentifiers::CioObjectId(id) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("cio_object_id", id)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ObjectIdentifiers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = ObjectIdentifiersWire::deserialize(d)?;
        match (wire.object_type_id, wire.object_id, wire.cio_object_id) {
            (Some(object_type_id), Some(object_id), None) => Ok(ObjectIdentifiers::Typed {
                object_type_id,
                object_id,
            }),
            (None, None, Some(id)) => Ok(ObjectIdentifiers::CioObjectId(id)),
            _ => Err(D::Error::custom(
                "object identifiers need either `object_type_id` and `object_id`, or `cio_object_id` alone",
            )),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Relationships.

/// One entry of `cio_relationships`: who or what is related, and attributes of the relationship.
///
/// From a person the identifiers name an object ([`ObjectRelationship`]); from an object they
/// name a person ([`PersonRelationship`]) or an anonymous person ([`AnonymousRelationship`]).
/// The spec lists `id`, `email` and `cio_id` for the person side; a `phone` identifier is
/// passed through as it is (v2 accepts phone where the workspace enables it).
/// The attribute limits are checked by [`Relationship::with_attributes`] and again by the
/// operation that carries the relationship.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relationship<I> {
    identifiers: I,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    relationship_attributes: Map<String, Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// A relationship from a person to an object.
pub type ObjectRelationship = Relationship<ObjectIdentifiers>;
/// A relationship from an object to a person.
pub type PersonRelationship = Relationship<Identifier>;
/// A relationship from an object to an anonymous person (`identify_anonymous`).
pub type AnonymousRelationship = Relationship<AnonymousId>;

impl<I> Relationship<I> {
    /// A relationship without attributes.
    pub fn new(identifiers: I) -> Self {
        Self {
            identifiers,
            relationship_attributes: Map::new(),
            extra: Map::new(),
        }
    }

    /// Sets the relationship's attributes (same limits as object attributes).
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Result<Self, Error> {
        check_object_attributes(
            "track.v2.relationship",
            "relationship_attributes",
            &attributes,
        )?;
        self.relationship_attributes = attributes;
        Ok(self)
    }

    /// Who or what the relationship points to.
    pub fn identifiers(&self) -> &I {
        &self.identifiers
    }

    /// The relationship's attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.relationship_attributes
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

fn check_relationship_list<I>(
    op: &'static str,
    relationships: &[Relationship<I>],
    required: bool,
    check_identifiers: impl Fn(&I, &str) -> Result<(), Error>,
) -> Result<(), Error> {
    if required && relationships.is_empty() {
        return Err(Error::invalid(op, "cio_relationships is empty"));
    }
    for (index, relationship) in relationships.iter().enumerate() {
        check_identifiers(
            &relationship.identifiers,
            &format!("cio_relationships[{index}].identifiers"),
        )?;
        check_object_attributes(
            op,
            &format!("cio_relationships[{index}].relationship_attributes"),
            &relationship.relationship_attributes,
        )?;
    }
    Ok(())
}

fn check_object_relationships(
    op: &'static str,
    relationships: &[ObjectRelationship],
    required: bool,
) -> Result<(), Error> {
    check_relationship_list(op, relationships, required, |object, path| {
        object.check(op, path)
    })
}

fn check_person_relationships(
    op: &'static str,
    relationships: &[PersonRelationship],
    required: bool,
) -> Result<(), Error> {
    check_relationship_list(op, relationships, required, |who, path| {
        check_person(op, path, who)
    })
}

// ------------------------------------------------------------------------------------------
// Person operations.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PersonIdentifyFields {
    identifiers: Identifier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cio_relationships: Vec<ObjectRelationship>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Person `identify`: create or update a person's attributes.
    ///
    /// `attributes` holds custom attributes and the reserved keys (`email`, `created_at`,
    /// `_update`, `cio_subscription_preferences`, …); `timestamp` orders updates sent close
    /// together; `cio_relationships` relates the person to objects.
    ///
    /// ```
    /// use customerio_client::Identifier;
    /// use customerio_client::track::v2::{Operation, PersonIdentify};
    ///
    /// let op: Operation = PersonIdentify::new(Identifier::id("user-42"))?
    ///     .with_attribute("email", "ada@example.com")?
    ///     .into();
    /// assert_eq!(
    ///     serde_json::to_string(&op)?,
    ///     r#"{"type":"person","action":"identify","identifiers":{"id":"user-42"},"attributes":{"email":"ada@example.com"}}"#
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct PersonIdentify(PersonIdentifyFields);
}

impl PersonIdentify {
    const OP: &'static str = "track.v2.person.identify";

    /// Identifies `who`, without attributes yet. Checks the identifier.
    pub fn new(who: Identifier) -> Result<Self, Error> {
        check_person(Self::OP, "identifiers", &who)?;
        Ok(Self(PersonIdentifyFields {
            identifiers: who,
            timestamp: None,
            attributes: Map::new(),
            cio_relationships: Vec::new(),
            extra: Map::new(),
        }))
    }

    /// Replaces the attributes (≤ 300 attributes, names ≤ 150 bytes, values ≤ 1000 bytes).
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Result<Self, Error> {
        check_person_attributes(Self::OP, "attributes", &attributes)?;
        self.0.attributes = attributes;
        Ok(self)
    }

    /// Adds or replaces one attribute.
    pub fn with_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<Self, Error> {
        self.0.attributes.insert(name.into(), value.into());
        check_person_attributes(Self::OP, "attributes", &self.0.attributes)?;
        Ok(self)
    }

    /// When the update happened (Unix seconds).
    pub fn with_timestamp(mut self, seconds: i64) -> Result<Self, Error> {
        check_timestamp(Self::OP, "timestamp", Some(seconds))?;
        self.0.timestamp = Some(seconds);
        Ok(self)
    }

    /// Relates the person to objects.
    pub fn with_relationships(
        mut self,
        relationships: Vec<ObjectRelationship>,
    ) -> Result<Self, Error> {
        check_object_relationships(Self::OP, &relationships, false)?;
        self.0.cio_relationships = relationships;
        Ok(self)
    }

    /// The person.
    pub fn identifiers(&self) -> &Identifier {
        &self.0.identifiers
    }

    /// The attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.0.attributes
    }

    /// When the update happened (Unix seconds).
    pub fn timestamp(&self) -> Option<i64> {
        self.0.timestamp
    }

    /// Objects the person is related to.
    pub fn relationships(&self) -> &[ObjectRelationship] {
        &self.0.cio_relationships
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        let f = &self.0;
        check_person(Self::OP, "identifiers", &f.identifiers)?;
        check_timestamp(Self::OP, "timestamp", f.timestamp)?;
        check_person_attributes(Self::OP, "attributes", &f.attributes)?;
        check_object_relationships(Self::OP, &f.cio_relationships, false)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PersonRefFields {
    identifiers: Identifier,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// A person operation that only names the person: `delete`, `suppress` or `unsuppress`.
    ///
    /// Build the operation with [`Operation::delete_person`], [`Operation::suppress_person`]
    /// or [`Operation::unsuppress_person`].
    pub struct PersonRef(PersonRefFields);
}

impl PersonRef {
    const OP: &'static str = "track.v2.person";

    /// Names `who`. Checks the identifier.
    pub fn new(who: Identifier) -> Result<Self, Error> {
        check_person(Self::OP, "identifiers", &who)?;
        Ok(Self(PersonRefFields {
            identifiers: who,
            extra: Map::new(),
        }))
    }

    /// The person.
    pub fn identifiers(&self) -> &Identifier {
        &self.0.identifiers
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        check_person(Self::OP, "identifiers", &self.0.identifiers)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PersonEventFields {
    identifiers: EventTarget,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ulid_text")]
    id: Option<Ulid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attributes: Map<String, Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// A person `event`, `page` or `screen`.
    ///
    /// `name` is the event name, the page URL or path, or the screen name. The documented
    /// 100-byte event-name limit is applied to all three, so a long page URL is refused:
    /// send its path, or keep the full URL in an attribute.
    /// `id` is a ULID Customer.io de-duplicates on: set it (for example with
    /// [`crate::event_id::event_id`]) so a retried event is not counted twice. `attributes`
    /// are the event properties (`data` in v1), ≤ 100 000 bytes, and may hold `recipient`,
    /// `from_address` and `reply_to`.
    ///
    /// `Operation::from(event)` makes an `event`; [`Operation::page`] and
    /// [`Operation::screen`] make the other two.
    ///
    /// ```
    /// use customerio_client::Identifier;
    /// use customerio_client::track::v2::{EventTarget, Operation, PersonEvent};
    ///
    /// let page = Operation::page(PersonEvent::new(Identifier::id("user-42"), "/pricing")?);
    /// assert_eq!(page.action(), "page");
    ///
    /// // Anonymous people are an explicit opt-in (not in Customer.io's spec).
    /// let anonymous = PersonEvent::new(EventTarget::anonymous("anon-7f3c")?, "Checkout")?;
    /// assert_eq!(
    ///     serde_json::to_value(Operation::screen(anonymous))?,
    ///     serde_json::json!({"type": "person", "action": "screen",
    ///                        "identifiers": {"anonymous_id": "anon-7f3c"}, "name": "Checkout"})
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct PersonEvent(PersonEventFields);
}

impl PersonEvent {
    const OP: &'static str = "track.v2.person.event";

    /// An event named `name` for `who` (a person, or an anonymous person by opt-in). Checks
    /// the identifier and the name.
    pub fn new(who: impl Into<EventTarget>, name: impl Into<String>) -> Result<Self, Error> {
        let event = Self(PersonEventFields {
            identifiers: who.into(),
            name: name.into(),
            id: None,
            timestamp: None,
            attributes: Map::new(),
            extra: Map::new(),
        });
        event.0.identifiers.check(Self::OP)?;
        limits::check_event_name(Self::OP, &event.0.name)?;
        Ok(event)
    }

    /// Sets the de-duplication id.
    pub fn with_id(mut self, id: Ulid) -> Self {
        self.0.id = Some(id);
        self
    }

    /// When it happened (Unix seconds). Only events from the last 72 hours can trigger
    /// campaigns; older ones are stored.
    pub fn with_timestamp(mut self, seconds: i64) -> Result<Self, Error> {
        check_timestamp(Self::OP, "timestamp", Some(seconds))?;
        self.0.timestamp = Some(seconds);
        Ok(self)
    }

    /// Replaces the event properties (≤ 100 000 bytes serialised).
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Result<Self, Error> {
        check_event_attributes(Self::OP, &attributes)?;
        self.0.attributes = attributes;
        Ok(self)
    }

    /// Adds or replaces one event property.
    pub fn with_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<Self, Error> {
        self.0.attributes.insert(name.into(), value.into());
        check_event_attributes(Self::OP, &self.0.attributes)?;
        Ok(self)
    }

    /// Who the event is about.
    pub fn target(&self) -> &EventTarget {
        &self.0.identifiers
    }

    /// The event name, page URL/path or screen name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The de-duplication id.
    pub fn id(&self) -> Option<Ulid> {
        self.0.id
    }

    /// When it happened (Unix seconds).
    pub fn timestamp(&self) -> Option<i64> {
        self.0.timestamp
    }

    /// The event properties.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.0.attributes
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        let f = &self.0;
        f.identifiers.check(Self::OP)?;
        limits::check_event_name(Self::OP, &f.name)?;
        check_timestamp(Self::OP, "timestamp", f.timestamp)?;
        check_event_attributes(Self::OP, &f.attributes)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PersonRelationshipsFields {
    identifiers: Identifier,
    cio_relationships: Vec<ObjectRelationship>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Person `add_relationships` / `delete_relationships`: relate a person to objects, or
    /// remove such relationships. At least one relationship is required.
    pub struct PersonRelationships(PersonRelationshipsFields);
}

impl PersonRelationships {
    const OP: &'static str = "track.v2.person.relationships";

    /// Relationships between `who` and objects. Refuses an empty list.
    pub fn new(who: Identifier, relationships: Vec<ObjectRelationship>) -> Result<Self, Error> {
        let value = Self(PersonRelationshipsFields {
            identifiers: who,
            cio_relationships: relationships,
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// The person.
    pub fn identifiers(&self) -> &Identifier {
        &self.0.identifiers
    }

    /// The relationships.
    pub fn relationships(&self) -> &[ObjectRelationship] {
        &self.0.cio_relationships
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        check_person(Self::OP, "identifiers", &self.0.identifiers)?;
        check_object_relationships(Self::OP, &self.0.cio_relationships, true)
    }
}

string_enum! {
    /// A device's platform.
    pub enum Platform {
        /// Apple (APNs).
        Ios => "ios",
        /// Android (FCM).
        Android => "android",
    }
}

/// A push device for `add_device`: its token (`token`, not `id` as in v1), platform, when it
/// was last used and string attributes (`device_os`, `device_model`, `app_version`,
/// `cio_sdk_version`, `device_locale`, `push_enabled`). Its `Debug` shows the token's length,
/// not the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    token: String,
    platform: Platform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attributes: Map<String, Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("token", &crate::secret::TokenLength(&self.token))
            .field("platform", &self.platform)
            .field("last_used", &self.last_used)
            .field("attributes", &self.attributes)
            .field("extra", &self.extra)
            .finish()
    }
}

impl Device {
    const OP: &'static str = "track.v2.person.add_device";

    /// A device by token and platform. Refuses an empty token.
    pub fn new(token: impl Into<String>, platform: Platform) -> Result<Self, Error> {
        let device = Self {
            token: token.into(),
            platform,
            last_used: None,
            attributes: Map::new(),
            extra: Map::new(),
        };
        device.check()?;
        Ok(device)
    }

    /// When the device was last used (Unix seconds; Customer.io defaults it to the request
    /// time).
    pub fn with_last_used(mut self, seconds: i64) -> Result<Self, Error> {
        check_timestamp(Self::OP, "device.last_used", Some(seconds))?;
        self.last_used = Some(seconds);
        Ok(self)
    }

    /// Sets one device attribute. Customer.io stores device attribute values as strings
    /// (`push_enabled` is `"true"` or `"false"`).
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes
            .insert(name.into(), Value::String(value.into()));
        self
    }

    /// The device token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The platform.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// When the device was last used (Unix seconds).
    pub fn last_used(&self) -> Option<i64> {
        self.last_used
    }

    /// The device attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    fn check(&self) -> Result<(), Error> {
        check_not_empty(Self::OP, "device.token", &self.token)?;
        check_timestamp(Self::OP, "device.last_used", self.last_used)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AddDeviceFields {
    identifiers: Identifier,
    device: Device,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Person `add_device`: add or update a push device.
    pub struct AddDevice(AddDeviceFields);
}

impl AddDevice {
    const OP: &'static str = "track.v2.person.add_device";

    /// Adds `device` to `who`.
    pub fn new(who: Identifier, device: Device) -> Result<Self, Error> {
        let value = Self(AddDeviceFields {
            identifiers: who,
            device,
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// The person.
    pub fn identifiers(&self) -> &Identifier {
        &self.0.identifiers
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.0.device
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        check_person(Self::OP, "identifiers", &self.0.identifiers)?;
        self.0.device.check()
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct DeviceToken {
    token: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceToken")
            .field("token", &crate::secret::TokenLength(&self.token))
            .field("extra", &self.extra)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeleteDeviceFields {
    identifiers: Identifier,
    device: DeviceToken,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Person `delete_device`: remove a device by token (`{"device": {"token": …}}`).
    pub struct DeleteDevice(DeleteDeviceFields);
}

impl DeleteDevice {
    const OP: &'static str = "track.v2.person.delete_device";

    /// Removes the device `token` from `who`.
    pub fn new(who: Identifier, token: impl Into<String>) -> Result<Self, Error> {
        let value = Self(DeleteDeviceFields {
            identifiers: who,
            device: DeviceToken {
                token: token.into(),
                extra: Map::new(),
            },
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// The person.
    pub fn identifiers(&self) -> &Identifier {
        &self.0.identifiers
    }

    /// The device token.
    pub fn token(&self) -> &str {
        &self.0.device.token
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        check_person(Self::OP, "identifiers", &self.0.identifiers)?;
        check_not_empty(Self::OP, "device.token", &self.0.device.token)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MergeFields {
    primary: Identifier,
    secondary: Identifier,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Person `merge`: fold `secondary` into `primary` and delete `secondary` (irreversible).
    ///
    /// Each side is an `id`, `email` or `cio_id`; a phone number is refused. The primary
    /// person must already exist, or nothing happens.
    ///
    /// ```
    /// use customerio_client::{ErrorKind, Identifier};
    /// use customerio_client::track::v2::Merge;
    ///
    /// let err = Merge::new(Identifier::id("user-42"), Identifier::phone("+14155550100"))
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Invalid);
    /// assert!(Merge::new(Identifier::id("user-42"), Identifier::email("old@example.com")).is_ok());
    /// ```
    pub struct Merge(MergeFields);
}

impl Merge {
    const OP: &'static str = "track.v2.person.merge";

    /// Merges `secondary` into `primary`. Refuses a phone number on either side and the same
    /// identifier on both.
    pub fn new(primary: Identifier, secondary: Identifier) -> Result<Self, Error> {
        let value = Self(MergeFields {
            primary,
            secondary,
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// The person who stays.
    pub fn primary(&self) -> &Identifier {
        &self.0.primary
    }

    /// The person merged away (and deleted).
    pub fn secondary(&self) -> &Identifier {
        &self.0.secondary
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        for (field, side) in [
            ("primary", &self.0.primary),
            ("secondary", &self.0.secondary),
        ] {
            if side.kind() == IdentifierKind::Phone {
                return Err(Error::invalid(
                    Self::OP,
                    format!("{field}: a merge side must be an id, email or cio_id, not a phone"),
                ));
            }
            check_person(Self::OP, field, side)?;
        }
        if self.0.primary == self.0.secondary {
            return Err(Error::invalid(
                Self::OP,
                "primary and secondary are the same person",
            ));
        }
        Ok(())
    }
}

/// The actions on a person (`"type": "person"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PersonOperation {
    /// Create or update a person.
    Identify(PersonIdentify),
    /// Delete a person.
    Delete(PersonRef),
    /// A custom event.
    Event(PersonEvent),
    /// A page view (`name` is the URL or path).
    Page(PersonEvent),
    /// A mobile screen view.
    Screen(PersonEvent),
    /// Relate the person to objects.
    AddRelationships(PersonRelationships),
    /// Remove relationships to objects.
    DeleteRelationships(PersonRelationships),
    /// Add or update a device.
    AddDevice(AddDevice),
    /// Remove a device.
    DeleteDevice(DeleteDevice),
    /// Merge two people.
    Merge(Merge),
    /// Delete the person and block their identifiers from coming back.
    Suppress(PersonRef),
    /// Allow suppressed identifiers again (the old profile is not restored).
    Unsuppress(PersonRef),
}

// ------------------------------------------------------------------------------------------
// Object operations.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ObjectIdentifyFields {
    identifiers: ObjectIdentifiers,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cio_relationships: Vec<PersonRelationship>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Object `identify`: create or update an object (by type and id) or update one (by
    /// `cio_object_id`), with attributes (`null` or `""` removes one) and relationships to
    /// people.
    pub struct ObjectIdentify(ObjectIdentifyFields);
}

impl ObjectIdentify {
    const OP: &'static str = "track.v2.object.identify";

    /// Identifies `object`, without attributes yet.
    pub fn new(object: ObjectIdentifiers) -> Result<Self, Error> {
        let value = Self(ObjectIdentifyFields {
            identifiers: object,
            attributes: Map::new(),
            cio_relationships: Vec::new(),
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// Replaces the attributes (person limits plus ≤ 100 000 bytes in total).
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Result<Self, Error> {
        check_object_attributes(Self::OP, "attributes", &attributes)?;
        self.0.attributes = attributes;
        Ok(self)
    }

    /// Relates the object to people.
    pub fn with_relationships(
        mut self,
        relationships: Vec<PersonRelationship>,
    ) -> Result<Self, Error> {
        check_person_relationships(Self::OP, &relationships, false)?;
        self.0.cio_relationships = relationships;
        Ok(self)
    }

    /// The object.
    pub fn identifiers(&self) -> &ObjectIdentifiers {
        &self.0.identifiers
    }

    /// The attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.0.attributes
    }

    /// People the object is related to.
    pub fn relationships(&self) -> &[PersonRelationship] {
        &self.0.cio_relationships
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        self.0.identifiers.check(Self::OP, "identifiers")?;
        check_object_attributes(Self::OP, "attributes", &self.0.attributes)?;
        check_person_relationships(Self::OP, &self.0.cio_relationships, false)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ObjectIdentifyAnonymousFields {
    identifiers: ObjectIdentifiers,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cio_relationships: Vec<AnonymousRelationship>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Object `identify_anonymous`: relate an object to anonymous people; the relationship
    /// carries over when the person is identified.
    pub struct ObjectIdentifyAnonymous(ObjectIdentifyAnonymousFields);
}

impl ObjectIdentifyAnonymous {
    const OP: &'static str = "track.v2.object.identify_anonymous";

    /// Identifies `object`, without attributes or relationships yet.
    pub fn new(object: ObjectIdentifiers) -> Result<Self, Error> {
        let value = Self(ObjectIdentifyAnonymousFields {
            identifiers: object,
            attributes: Map::new(),
            cio_relationships: Vec::new(),
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// Replaces the attributes (person limits plus ≤ 100 000 bytes in total).
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Result<Self, Error> {
        check_object_attributes(Self::OP, "attributes", &attributes)?;
        self.0.attributes = attributes;
        Ok(self)
    }

    /// Relates the object to anonymous people.
    pub fn with_relationships(
        mut self,
        relationships: Vec<AnonymousRelationship>,
    ) -> Result<Self, Error> {
        check_relationship_list(Self::OP, &relationships, false, |id, path| {
            id.check(Self::OP, path)
        })?;
        self.0.cio_relationships = relationships;
        Ok(self)
    }

    /// The object.
    pub fn identifiers(&self) -> &ObjectIdentifiers {
        &self.0.identifiers
    }

    /// The attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.0.attributes
    }

    /// Anonymous people the object is related to.
    pub fn relationships(&self) -> &[AnonymousRelationship] {
        &self.0.cio_relationships
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        self.0.identifiers.check(Self::OP, "identifiers")?;
        check_object_attributes(Self::OP, "attributes", &self.0.attributes)?;
        check_relationship_list(Self::OP, &self.0.cio_relationships, false, |id, path| {
            id.check(Self::OP, path)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ObjectRefFields {
    identifiers: ObjectIdentifiers,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Object `delete` (also removes the object's relationships). Build the operation with
    /// [`Operation::delete_object`].
    pub struct ObjectRef(ObjectRefFields);
}

impl ObjectRef {
    const OP: &'static str = "track.v2.object";

    /// Names `object`.
    pub fn new(object: ObjectIdentifiers) -> Result<Self, Error> {
        let value = Self(ObjectRefFields {
            identifiers: object,
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// The object.
    pub fn identifiers(&self) -> &ObjectIdentifiers {
        &self.0.identifiers
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        self.0.identifiers.check(Self::OP, "identifiers")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ObjectRelationshipsFields {
    identifiers: ObjectIdentifiers,
    cio_relationships: Vec<PersonRelationship>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Object `add_relationships` / `delete_relationships`: relate an object to people, or
    /// remove such relationships. At least one relationship is required.
    pub struct ObjectRelationships(ObjectRelationshipsFields);
}

impl ObjectRelationships {
    const OP: &'static str = "track.v2.object.relationships";

    /// Relationships between `object` and people. Refuses an empty list.
    pub fn new(
        object: ObjectIdentifiers,
        relationships: Vec<PersonRelationship>,
    ) -> Result<Self, Error> {
        let value = Self(ObjectRelationshipsFields {
            identifiers: object,
            cio_relationships: relationships,
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// The object.
    pub fn identifiers(&self) -> &ObjectIdentifiers {
        &self.0.identifiers
    }

    /// The relationships.
    pub fn relationships(&self) -> &[PersonRelationship] {
        &self.0.cio_relationships
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        self.0.identifiers.check(Self::OP, "identifiers")?;
        check_person_relationships(Self::OP, &self.0.cio_relationships, true)
    }
}

/// The actions on an object (`"type": "object"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ObjectOperation {
    /// Create or update an object.
    Identify(ObjectIdentify),
    /// Relate an object to anonymous people.
    IdentifyAnonymous(ObjectIdentifyAnonymous),
    /// Delete an object.
    Delete(ObjectRef),
    /// Relate the object to people.
    AddRelationships(ObjectRelationships),
    /// Remove relationships to people.
    DeleteRelationships(ObjectRelationships),
}

// ------------------------------------------------------------------------------------------
// Delivery operations.

string_enum! {
    /// A device-side delivery metric reported with a delivery `event`.
    pub enum DeliveryMetric {
        /// The message was opened.
        Opened => "opened",
        /// The person converted.
        Converted => "converted",
        /// The message reached the device.
        Delivered => "delivered",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeliveryIdentifiers {
    id: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeliveryAttributes {
    device_token: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeliveryEventFields {
    identifiers: DeliveryIdentifiers,
    name: DeliveryMetric,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    attributes: DeliveryAttributes,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Delivery `event`: report a device-side metric (`opened`, `converted`, `delivered`) for
    /// a delivery, as `{"identifiers": {"id": <delivery id>}, "name": <metric>,
    /// "attributes": {"device_token": …}}`.
    ///
    /// `timestamp` is not documented for delivery operations; it is sent only when set.
    pub struct DeliveryEvent(DeliveryEventFields);
}

impl DeliveryEvent {
    const OP: &'static str = "track.v2.delivery.event";

    /// Reports `metric` for the delivery `delivery_id` on the device `device_token`.
    pub fn new(
        delivery_id: impl Into<String>,
        metric: DeliveryMetric,
        device_token: impl Into<String>,
    ) -> Result<Self, Error> {
        let value = Self(DeliveryEventFields {
            identifiers: DeliveryIdentifiers {
                id: delivery_id.into(),
                extra: Map::new(),
            },
            name: metric,
            timestamp: None,
            attributes: DeliveryAttributes {
                device_token: device_token.into(),
                extra: Map::new(),
            },
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// When the metric happened (Unix seconds).
    pub fn with_timestamp(mut self, seconds: i64) -> Result<Self, Error> {
        check_timestamp(Self::OP, "timestamp", Some(seconds))?;
        self.0.timestamp = Some(seconds);
        Ok(self)
    }

    /// The delivery id (`CIO-Delivery-ID`).
    pub fn delivery_id(&self) -> &str {
        &self.0.identifiers.id
    }

    /// The metric.
    pub fn metric(&self) -> &DeliveryMetric {
        &self.0.name
    }

    /// The device token.
    pub fn device_token(&self) -> &str {
        &self.0.attributes.device_token
    }

    /// When the metric happened (Unix seconds).
    pub fn timestamp(&self) -> Option<i64> {
        self.0.timestamp
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        let f = &self.0;
        check_not_empty(Self::OP, "identifiers.id", &f.identifiers.id)?;
        check_not_empty(Self::OP, "name", f.name.as_str())?;
        check_not_empty(
            Self::OP,
            "attributes.device_token",
            &f.attributes.device_token,
        )?;
        check_timestamp(Self::OP, "timestamp", f.timestamp)
    }
}

/// The actions on a delivery (`"type": "delivery"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryOperation {
    /// Report a device-side metric.
    Event(DeliveryEvent),
}

// ------------------------------------------------------------------------------------------
// The operation.

/// One Track v2 operation, serialised as the documented envelope (`type`, `action`,
/// `identifiers`, …). See the [module docs](self) for the full table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// `"type": "person"`.
    Person(PersonOperation),
    /// `"type": "object"`.
    Object(ObjectOperation),
    /// `"type": "delivery"`.
    Delivery(DeliveryOperation),
}

impl Operation {
    /// A person `page` view.
    pub fn page(view: PersonEvent) -> Self {
        Operation::Person(PersonOperation::Page(view))
    }

    /// A person `screen` view.
    pub fn screen(view: PersonEvent) -> Self {
        Operation::Person(PersonOperation::Screen(view))
    }

    /// Person `delete`.
    pub fn delete_person(who: Identifier) -> Result<Self, Error> {
        Ok(Operation::Person(PersonOperation::Delete(PersonRef::new(
            who,
        )?)))
    }

    /// Person `suppress`: delete and block the identifiers from being added again.
    pub fn suppress_person(who: Identifier) -> Result<Self, Error> {
        Ok(Operation::Person(PersonOperation::Suppress(
            PersonRef::new(who)?,
        )))
    }

    /// Person `unsuppress`: allow the identifiers again.
    pub fn unsuppress_person(who: Identifier) -> Result<Self, Error> {
        Ok(Operation::Person(PersonOperation::Unsuppress(
            PersonRef::new(who)?,
        )))
    }

    /// Person `add_relationships`.
    pub fn add_person_relationships(relationships: PersonRelationships) -> Self {
        Operation::Person(PersonOperation::AddRelationships(relationships))
    }

    /// Person `delete_relationships`.
    pub fn delete_person_relationships(relationships: PersonRelationships) -> Self {
        Operation::Person(PersonOperation::DeleteRelationships(relationships))
    }

    /// Object `delete`.
    pub fn delete_object(object: ObjectIdentifiers) -> Result<Self, Error> {
        Ok(Operation::Object(ObjectOperation::Delete(ObjectRef::new(
            object,
        )?)))
    }

    /// Object `add_relationships`.
    pub fn add_object_relationships(relationships: ObjectRelationships) -> Self {
        Operation::Object(ObjectOperation::AddRelationships(relationships))
    }

    /// Object `delete_relationships`.
    pub fn delete_object_relationships(relationships: ObjectRelationships) -> Self {
        Operation::Object(ObjectOperation::DeleteRelationships(relationships))
    }

    /// The `type` on the wire: `person`, `object` or `delivery`.
    pub fn entity_type(&self) -> &'static str {
        match self {
            Operation::Person(_) => "person",
            Operation::Object(_) => "object",
            Operation::Delivery(_) => "delivery",
        }
    }

    /// The `action` on the wire, e.g. `identify` or `add_relationships`.
    pub fn action(&self) -> &'static str {
        match self {
            Operation::Person(op) => match op {
                PersonOperation::Identify(_) => "identify",
                PersonOperation::Delete(_) => "delete",
                PersonOperation::Event(_) => "event",
                PersonOperation::Page(_) => "page",
                PersonOperation::Screen(_) => "screen",
                PersonOperation::AddRelationships(_) => "add_relationships",
                PersonOperation::DeleteRelationships(_) => "delete_relationships",
                PersonOperation::AddDevice(_) => "add_device",
                PersonOperation::DeleteDevice(_) => "delete_device",
                PersonOperation::Merge(_) => "merge",
                PersonOperation::Suppress(_) => "suppress",
                PersonOperation::Unsuppress(_) => "unsuppress",
            },
            Operation::Object(op) => match op {
                ObjectOperation::Identify(_) => "identify",
                ObjectOperation::IdentifyAnonymous(_) => "identify_anonymous",
                ObjectOperation::Delete(_) => "delete",
                ObjectOperation::AddRelationships(_) => "add_relationships",
                ObjectOperation::DeleteRelationships(_) => "delete_relationships",
            },
            Operation::Delivery(DeliveryOperation::Event(_)) => "event",
        }
    }
}

impl From<PersonIdentify> for Operation {
    fn from(value: PersonIdentify) -> Self {
        Operation::Person(PersonOperation::Identify(value))
    }
}

impl From<PersonEvent> for Operation {
    /// A person `event` (use [`Operation::page`] / [`Operation::screen`] for the others).
    fn from(value: PersonEvent) -> Self {
        Operation::Person(PersonOperation::Event(value))
    }
}

impl From<AddDevice> for Operation {
    fn from(value: AddDevice) -> Self {
        Operation::Person(PersonOperation::AddDevice(value))
    }
}

impl From<DeleteDevice> for Operation {
    fn from(value: DeleteDevice) -> Self {
        Operation::Person(PersonOperation::DeleteDevice(value))
    }
}

impl From<Merge> for Operation {
    fn from(value: Merge) -> Self {
        Operation::Person(PersonOperation::Merge(value))
    }
}

impl From<ObjectIdentify> for Operation {
    fn from(value: ObjectIdentify) -> Self {
        Operation::Object(ObjectOperation::Identify(value))
    }
}

impl From<ObjectIdentifyAnonymous> for Operation {
    fn from(value: ObjectIdentifyAnonymous) -> Self {
        Operation::Object(ObjectOperation::IdentifyAnonymous(value))
    }
}

impl From<DeliveryEvent> for Operation {
    fn from(value: DeliveryEvent) -> Self {
        Operation::Delivery(DeliveryOperation::Event(value))
    }
}

impl From<PersonOperation> for Operation {
    fn from(value: PersonOperation) -> Self {
        Operation::Person(value)
    }
}

impl From<ObjectOperation> for Operation {
    fn from(value: ObjectOperation) -> Self {
        Operation::Object(value)
    }
}

impl From<DeliveryOperation> for Operation {
    fn from(value: DeliveryOperation) -> Self {
        Operation::Delivery(value)
    }
}

// ------------------------------------------------------------------------------------------
// Responses and calls.

/// What a `/api/v2/batch` request achieved.
///
/// A `200` means every operation was accepted. A `207` means the operations listed in
/// [`rejected`](Self::rejected) were refused and **all others were accepted**: do not resend
/// the batch, only (fixed versions of) the refused operations. Errors a `207` lists without a
/// usable `batch_index` are kept in [`unattributed`](Self::unattributed);
/// [`is_ambiguous`](Self::is_ambiguous) says when the response does not tell which
/// operations failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    operations: usize,
    partial: bool,
    rejected: Vec<ApiError>,
    unattributed: Vec<ApiError>,
}

impl BatchOutcome {
    /// Reads a success response (`200` or `207`) to a batch of `operations` operations.
    ///
    /// Public so that code driving batches (and its tests) can build outcomes; the client's
    /// own calls use it on every success response.
    pub fn from_response(operations: usize, status: StatusCode, body: &[u8]) -> Self {
        let partial = status == StatusCode::MULTI_STATUS;
        let mut rejected = Vec::new();
        let mut unattributed = Vec::new();
        if partial {
            for error in parse_api_errors(body) {
                match error.batch_index {
                    Some(index) if index < operations => rejected.push(error),
                    _ => unattributed.push(error),
                }
            }
            // Stable: several errors for one operation keep the server's order.
            rejected.sort_by_key(|e| e.batch_index);
        }
        Self {
            operations,
            partial,
            rejected,
            unattributed,
        }
    }

    /// An outcome where every one of `operations` operations was accepted.
    pub fn all_accepted(operations: usize) -> Self {
        Self {
            operations,
            partial: false,
            rejected: Vec::new(),
            unattributed: Vec::new(),
        }
    }

    /// How many operations the request carried.
    pub fn operations(&self) -> usize {
        self.operations
    }

    /// Whether every operation was accepted (the server answered `200`).
    pub fn is_all_accepted(&self) -> bool {
        !self.partial
    }

    /// Whether the server answered `207` (some operations refused).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// Errors for refused operations, sorted by `batch_index` (every one is `Some` and below
    /// [`operations`](Self::operations)). One operation may have several errors.
    pub fn rejected(&self) -> &[ApiError] {
        &self.rejected
    }

    /// The indexes of refused operations, ascending, without repeats.
    pub fn rejected_indexes(&self) -> Vec<usize> {
        let mut indexes: Vec<usize> = self.rejected.iter().filter_map(|e| e.batch_index).collect();
        indexes.dedup();
        indexes
    }

    /// Whether the operation at `index` was refused.
    pub fn is_rejected(&self, index: usize) -> bool {
        self.rejected
            .iter()
            .any(|error| error.batch_index == Some(index))
    }

    /// The errors reported for the operation at `index`.
    pub fn errors_for(&self, index: usize) -> impl Iterator<Item = &ApiError> + '_ {
        self.rejected
            .iter()
            .filter(move |error| error.batch_index == Some(index))
    }

    /// Errors of a `207` without a `batch_index`, or with one outside the batch.
    pub fn unattributed(&self) -> &[ApiError] {
        &self.unattributed
    }

    /// Whether a `207` did not say which operations failed: no attributable error at all, or
    /// some errors without a usable index. A caller that must account for every operation
    /// should then treat the whole batch as unresolved (for example, resend it one operation
    /// at a time: events carry their de-duplication id, identifies are upserts).
    pub fn is_ambiguous(&self) -> bool {
        self.partial && (self.rejected.is_empty() || !self.unattributed.is_empty())
    }
}

impl TrackClient {
    /// Sends one operation (`POST /api/v2/entity`).
    ///
    /// The operation is serialised once and refused before sending if it is over
    /// [`MAX_OPERATION_BYTES`] (32 000 bytes). A `400` comes back as an [`Error`] whose
    /// [`api_errors`](Error::api_errors) lists the server's reasons.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::TrackClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::Identifier;
    /// use customerio_client::track::v2::{Operation, PersonEvent};
    ///
    /// let event = PersonEvent::new(Identifier::id("user-42"), "order_completed")?
    ///     .with_id(customerio_client::event_id::event_id("msg-1", 1_717_172_000_000))
    ///     .with_timestamp(1_717_172_000)?;
    /// client.entity(&Operation::from(event)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn entity(&self, op: &Operation) -> Result<(), Error> {
        const OP: &str = "track.v2.entity";
        let body = serde_json::to_vec(op).map_err(|err| {
            Error::invalid(OP, "operation could not be serialised").with_source(err)
        })?;
        if body.len() > MAX_OPERATION_BYTES {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} {} operation is {} bytes; the limit is {MAX_OPERATION_BYTES}",
                    op.entity_type(),
                    op.action(),
                    body.len()
                ),
            ));
        }
        self.transport
            .send(OP, Method::POST, "/api/v2/entity", &[], Body::Json(body))
            .await?;
        Ok(())
    }

    /// Sends operations in one request (`POST /api/v2/batch`, body `{"batch": [...]}`).
    ///
    /// Every operation must be at most 32 000 bytes and the whole body at most 500 000 bytes;
    /// otherwise nothing is sent and an [`ErrorKind::Invalid`](crate::ErrorKind) error names
    /// the first operation index or the total. Use a [`BatchPacker`] to split a larger set.
    /// An empty slice sends nothing and returns an outcome of zero operations.
    ///
    /// A `200` gives an outcome where all were accepted; a `207` lists the refused operations
    /// by index ([`BatchOutcome::rejected`]); a `400` (nothing accepted) is an [`Error`] whose
    /// [`api_errors`](Error::api_errors) lists the reasons.
    pub async fn batch(&self, ops: &[Operation]) -> Result<BatchOutcome, Error> {
        const OP: &str = "track.v2.batch";
        if ops.is_empty() {
            return Ok(BatchOutcome::all_accepted(0));
        }
        let mut packer = BatchPacker::new(PackerLimits::default());
        for (index, op) in ops.iter().enumerate() {
            let bytes = serde_json::to_vec(op).map_err(|err| {
                Error::invalid(OP, format!("operation {index} could not be serialised"))
                    .with_source(err)
            })?;
            // With no count cap, the packer hands a batch back only when the next operation
            // does not fit in the open one: then the set needs more than one request.
            match packer.push_bytes(index, Bytes::from(bytes)) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "the operations do not fit in one request of {} bytes (operation {index} overflows); split them with BatchPacker",
                            limits::MAX_BATCH_REQUEST_BYTES
                        ),
                    ));
                }
                Err((_, bytes)) => {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "operation {index} ({} {}) is {} bytes; the limit is {MAX_OPERATION_BYTES}",
                            op.entity_type(),
                            op.action(),
                            bytes.len()
                        ),
                    ));
                }
            }
        }
        match packer.flush() {
            Some(batch) => self.send_packed_as(OP, &batch).await,
            // Unreachable in practice: at least one operation was pushed and none overflowed.
            None => Ok(BatchOutcome::all_accepted(0)),
        }
    }

    /// Sends a batch made by a [`BatchPacker`] as it is, without serialising the operations
    /// again (`POST /api/v2/batch`).
    ///
    /// Indexes in the returned [`BatchOutcome`] are positions in
    /// [`PackedBatch::items`](crate::track::packer::PackedBatch::items), so each maps back to
    /// the caller's tag.
    pub async fn send_packed<T>(&self, batch: &PackedBatch<T>) -> Result<BatchOutcome, Error> {
        self.send_packed_as("track.v2.batch", batch).await
    }

    async fn send_packed_as<T>(
        &self,
        op: &'static str,
        batch: &PackedBatch<T>,
    ) -> Result<BatchOutcome, Error> {
        let response = self
            .transport
            .send(
                op,
                Method::POST,
                "/api/v2/batch",
                &[],
                Body::Json(batch.body().to_vec()),
            )
            .await?;
        let outcome = BatchOutcome::from_response(batch.len(), response.status, &response.body);
        if outcome.is_partial() {
            tracing::debug!(
                operation = op,
                operations = outcome.operations(),
                rejected = outcome.rejected_indexes().len(),
                unattributed = outcome.unattributed().len(),
                "customer.io refused part of a batch"
            );
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_device_token_is_not_shown_in_debug() {
        let op = DeleteDevice::new(Identifier::id("u1"), "ff15bc0c20c4aa6cd5").unwrap();
        let shown = format!("{op:?}");
        assert!(!shown.contains("ff15bc0c20c4aa6cd5"), "{shown}");
        assert!(shown.contains("<token, 18 bytes>"), "{shown}");
        let device = Device::new("ff15bc0c20c4aa6cd5", Platform::Ios).unwrap();
        let shown = format!("{device:?}");
        assert!(!shown.contains("ff15bc0c20c4aa6cd5"), "{shown}");
        assert!(shown.contains("<token, 18 bytes>"), "{shown}");
    }

    #[test]
    fn unknown_keys_are_kept_once_and_tags_are_not_duplicated() {
        let input = json!({
            "type": "person", "action": "event", "identifiers": {"id": "u1"},
            "name": "n", "future_key": {"a": 1}
        });
        let op: Operation = serde_json::from_value(input.clone()).unwrap();
        let Operation::Person(PersonOperation::Event(event)) = &op else {
            panic!("decoded as {op:?}");
        };
        assert_eq!(event.extra().len(), 1, "{:?}", event.extra());
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(text.matches("future_key").count(), 1, "{text}");
        assert_eq!(text.matches("\"type\"").count(), 1, "{text}");
        assert_eq!(text.matches("\"action\"").count(), 1, "{text}");
        assert_eq!(serde_json::to_value(&op).unwrap(), input);
    }

    #[test]
    fn byte_counter_matches_to_vec() {
        let value = json!({"a": [1, 2.5, "x\u{e9}\""], "b": null});
        assert_eq!(
            serialized_len(&value),
            serde_json::to_vec(&value).unwrap().len()
        );
    }

    #[test]
    fn outcome_sorts_and_splits_errors() {
        let body = br#"{"errors":[
            {"batch_index":3,"reason":"r","field":"f","message":"m"},
            {"batch_index":1,"message":"a"},
            {"batch_index":9,"message":"out of range"},
            {"message":"no index"},
            {"batch_index":1,"message":"b"}]}"#;
        let outcome = BatchOutcome::from_response(4, StatusCode::MULTI_STATUS, body);
        assert_eq!(outcome.rejected_indexes(), vec![1, 3]);
        assert_eq!(outcome.errors_for(1).count(), 2);
        assert_eq!(outcome.unattributed().len(), 2);
        assert!(outcome.is_partial() && outcome.is_ambiguous());
        assert!(outcome.is_rejected(3) && !outcome.is_rejected(0));

        let ok = BatchOutcome::from_response(4, StatusCode::OK, b"");
        assert!(ok.is_all_accepted() && !ok.is_ambiguous());
        assert!(ok.rejected().is_empty());

        let silent = BatchOutcome::from_response(4, StatusCode::MULTI_STATUS, b"");
        assert!(silent.is_ambiguous());
    }
}
