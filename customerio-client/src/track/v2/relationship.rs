//! `cio_relationships` entries ([`Relationship`] and its three aliases) and the checks of a
//! list of them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{check_object_attributes, check_person};
use super::identifiers::{AnonymousId, ObjectIdentifiers};
use crate::error::Error;
use crate::identifier::Identifier;

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

pub(super) fn check_relationship_list<I>(
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

pub(super) fn check_object_relationships(
    op: &'static str,
    relationships: &[ObjectRelationship],
    required: bool,
) -> Result<(), Error> {
    check_relationship_list(op, relationships, required, |object, path| {
        object.check(op, path)
    })
}

pub(super) fn check_person_relationships(
    op: &'static str,
    relationships: &[PersonRelationship],
    required: bool,
) -> Result<(), Error> {
    check_relationship_list(op, relationships, required, |who, path| {
        check_person(op, path, who)
    })
}
