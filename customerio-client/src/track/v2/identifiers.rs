//! Who or what an operation is about: [`EventTarget`] and [`AnonymousId`] for people,
//! [`ObjectTypeId`] and [`ObjectIdentifiers`] for objects.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::common::check_person;
use crate::error::Error;
use crate::identifier::Identifier;
use crate::limits::MAX_OBJECT_ID_BYTES;

/// An anonymous person, written `{"anonymous_id": "…"}`.
///
/// Used by object `identify_anonymous` relationships (documented) and, as an explicit opt-in,
/// by anonymous person events (sent by Segment's destination; not in Customer.io's spec — see
/// the [module docs](crate::track::v2)).
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

    pub(super) fn check(&self, op: &'static str, path: &str) -> Result<(), Error> {
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
    /// Customer.io's spec (unconfirmed); see the [module docs](crate::track::v2).
    Anonymous(AnonymousId),
}

impl EventTarget {
    /// An anonymous person (opt-in; unconfirmed in Customer.io's spec).
    pub fn anonymous(anonymous_id: impl Into<String>) -> Result<Self, Error> {
        AnonymousId::new(anonymous_id).map(EventTarget::Anonymous)
    }

    pub(super) fn check(&self, op: &'static str) -> Result<(), Error> {
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
    pub(super) fn check(&self, op: &'static str, path: &str) -> Result<(), Error> {
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
