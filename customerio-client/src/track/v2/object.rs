//! Object operations (`"type": "object"`): identify, identify_anonymous, delete and
//! relationships, and the [`ObjectOperation`] enum.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::check_object_attributes;
use super::identifiers::ObjectIdentifiers;
use super::relationship::{
    AnonymousRelationship, PersonRelationship, check_person_relationships, check_relationship_list,
};
use crate::error::Error;

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
    ///
    /// [`Operation::delete_object`]: super::Operation::delete_object
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
