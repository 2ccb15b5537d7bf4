//! Person operations (`"type": "person"`): identify, delete / suppress / unsuppress, events,
//! page and screen views, relationships and merge, and the [`PersonOperation`] enum. Devices
//! are in `device.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ulid::Ulid;

use super::common::{
    check_event_attributes, check_person, check_person_attributes, check_timestamp, ulid_text,
};
use super::device::{AddDevice, DeleteDevice};
use super::identifiers::EventTarget;
use super::relationship::{ObjectRelationship, check_object_relationships};
use crate::error::Error;
use crate::identifier::{Identifier, IdentifierKind};
use crate::limits;

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
    ///
    /// [`Operation::delete_person`]: super::Operation::delete_person
    /// [`Operation::suppress_person`]: super::Operation::suppress_person
    /// [`Operation::unsuppress_person`]: super::Operation::unsuppress_person
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
    /// [`Operation::page`]: super::Operation::page
    /// [`Operation::screen`]: super::Operation::screen
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
