//! The `cio_relationships` of an identify call: [`Relationships`], [`Relationship`] and the
//! [`ObjectIdentifier`] a relationship points at, with their checks.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::limits::{self, MAX_OBJECT_ATTRIBUTES_BYTES, MAX_OBJECT_ID_BYTES};

/// Whether [`Relationships`] are added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipAction {
    /// `add_relationships`
    AddRelationships,
    /// `delete_relationships`
    DeleteRelationships,
}

/// The `cio_relationships` of an identify call: relationships to objects (companies,
/// accounts, …), all added or all removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relationships {
    action: RelationshipAction,
    relationships: Vec<Relationship>,
}

impl Relationships {
    /// Relates the person to these objects.
    pub fn add(relationships: Vec<Relationship>) -> Self {
        Self {
            action: RelationshipAction::AddRelationships,
            relationships,
        }
    }

    /// Removes the person's relationships to these objects.
    pub fn delete(relationships: Vec<Relationship>) -> Self {
        Self {
            action: RelationshipAction::DeleteRelationships,
            relationships,
        }
    }

    pub(super) fn validate(&self, operation: &'static str) -> Result<(), Error> {
        if self.relationships.is_empty() {
            return Err(Error::invalid(
                operation,
                "cio_relationships.relationships is empty",
            ));
        }
        for (index, relationship) in self.relationships.iter().enumerate() {
            let at = format!("cio_relationships.relationships[{index}]");
            relationship.identifiers.validate(operation, &at)?;
            let what = format!("{at}.relationship_attributes");
            limits::check_attributes(operation, &what, &relationship.relationship_attributes)?;
            let size = serde_json::to_vec(&relationship.relationship_attributes)
                .map(|bytes| bytes.len())
                .unwrap_or(usize::MAX);
            if size > MAX_OBJECT_ATTRIBUTES_BYTES {
                return Err(Error::invalid(
                    operation,
                    format!("{what} is {size} bytes; the limit is {MAX_OBJECT_ATTRIBUTES_BYTES}"),
                ));
            }
        }
        Ok(())
    }
}

/// One relationship: the object and, optionally, attributes of the relationship itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relationship {
    identifiers: ObjectIdentifier,
    #[serde(skip_serializing_if = "Map::is_empty")]
    relationship_attributes: Map<String, Value>,
}

impl Relationship {
    /// A relationship to `object`, without attributes.
    pub fn new(object: ObjectIdentifier) -> Self {
        Self {
            identifiers: object,
            relationship_attributes: Map::new(),
        }
    }

    /// Sets an attribute of the relationship (e.g. the person's role in the account).
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.relationship_attributes
            .insert(name.into(), value.into());
        self
    }
}

/// Which object a relationship points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectIdentifier {
    /// `{"object_type_id": "1", "object_id": "acme"}`: your id within an object type.
    Object {
        /// The object type, a string holding an integer starting at `"1"`.
        object_type_id: String,
        /// Your id for the object.
        object_id: String,
    },
    /// `{"cio_object_id": "…"}`: Customer.io's own id for the object.
    CioObjectId(String),
}

impl ObjectIdentifier {
    /// An object by type and your id.
    pub fn object(object_type_id: impl Into<String>, object_id: impl Into<String>) -> Self {
        ObjectIdentifier::Object {
            object_type_id: object_type_id.into(),
            object_id: object_id.into(),
        }
    }

    /// An object by Customer.io's id.
    pub fn cio_object_id(id: impl Into<String>) -> Self {
        ObjectIdentifier::CioObjectId(id.into())
    }

    fn validate(&self, operation: &'static str, at: &str) -> Result<(), Error> {
        match self {
            ObjectIdentifier::Object {
                object_type_id,
                object_id,
            } => {
                if object_type_id.is_empty() || !object_type_id.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(Error::invalid(
                        operation,
                        format!(
                            "{at}.identifiers.object_type_id must be a number written as a string"
                        ),
                    ));
                }
                check_object_id(operation, &format!("{at}.identifiers.object_id"), object_id)
            }
            ObjectIdentifier::CioObjectId(id) => {
                check_object_id(operation, &format!("{at}.identifiers.cio_object_id"), id)
            }
        }
    }
}

fn check_object_id(operation: &'static str, field: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid(operation, format!("{field} is empty")));
    }
    if id.len() > MAX_OBJECT_ID_BYTES {
        return Err(Error::invalid(
            operation,
            format!(
                "{field} is {} bytes; the limit is {MAX_OBJECT_ID_BYTES}",
                id.len()
            ),
        ));
    }
    Ok(())
}

impl Serialize for ObjectIdentifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ObjectIdentifier::Object {
                object_type_id,
                object_id,
            } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("object_type_id", object_type_id)?;
                map.serialize_entry("object_id", object_id)?;
                map.end()
            }
            ObjectIdentifier::CioObjectId(id) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("cio_object_id", id)?;
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{OP, invalid_message};
    use super::*;
    use crate::track::v1::IdentifyRequest;

    #[test]
    fn relationship_checks_name_the_index() {
        let empty = IdentifyRequest::new().relationships(Relationships::delete(vec![]));
        assert!(invalid_message(empty.to_body(OP).unwrap_err()).contains("relationships is empty"));
        let bad_type = IdentifyRequest::new().relationships(Relationships::add(vec![
            Relationship::new(ObjectIdentifier::object("1", "a")),
            Relationship::new(ObjectIdentifier::object("company", "b")),
        ]));
        assert!(
            invalid_message(bad_type.to_body(OP).unwrap_err())
                .contains("relationships[1].identifiers.object_type_id")
        );
        let long_object =
            IdentifyRequest::new().relationships(Relationships::add(vec![Relationship::new(
                ObjectIdentifier::cio_object_id("o".repeat(151)),
            )]));
        assert!(
            invalid_message(long_object.to_body(OP).unwrap_err())
                .contains("relationships[0].identifiers.cio_object_id is 151 bytes")
        );
        let long_attr = IdentifyRequest::new().relationships(Relationships::add(vec![
            Relationship::new(ObjectIdentifier::object("1", "a"))
                .attribute("note", "n".repeat(1001)),
        ]));
        assert!(
            invalid_message(long_attr.to_body(OP).unwrap_err()).contains(
                "relationships[0].relationship_attributes: attribute `note` is 1001 bytes"
            )
        );
    }
}
