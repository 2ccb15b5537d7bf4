//! The [`Operation`] envelope (`type` + `action`): its constructors, the wire names of its type
//! and action, and the `From` conversions from every per-action type.

use serde::{Deserialize, Serialize};

use super::delivery::{DeliveryEvent, DeliveryOperation};
use super::device::{AddDevice, DeleteDevice};
use super::identifiers::ObjectIdentifiers;
use super::object::{
    ObjectIdentify, ObjectIdentifyAnonymous, ObjectOperation, ObjectRef, ObjectRelationships,
};
use super::person::{
    Merge, PersonEvent, PersonIdentify, PersonOperation, PersonRef, PersonRelationships,
};
use crate::error::Error;
use crate::identifier::Identifier;

/// One Track v2 operation, serialised as the documented envelope (`type`, `action`,
/// `identifiers`, …). See the [module docs](crate::track::v2) for the full table.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
