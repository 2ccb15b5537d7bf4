//! The typed identify body: [`IdentifyRequest`], its [`SubscriptionPreferences`] and the
//! [`RESERVED_IDENTIFY_KEYS`].

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::common::{check_id_value, check_timestamp};
use super::relationship::Relationships;
use crate::error::Error;
use crate::limits::{self, MAX_ATTRIBUTES};

/// The keys of an identify body that Customer.io reads specially.
pub const RESERVED_IDENTIFY_KEYS: [&str; 9] = [
    "id",
    "email",
    "anonymous_id",
    "created_at",
    "_timestamp",
    "_update",
    "unsubscribed",
    "cio_subscription_preferences",
    "cio_relationships",
];

/// The body of an identify call (`PUT /api/v1/customers/{identifier}`): the reserved keys as
/// typed fields plus custom attributes.
///
/// A reserved key may also arrive as a custom attribute (e.g. from a traits map); setting the
/// same key both ways is refused rather than written twice.
///
/// ```
/// use customerio_client::track::v1::IdentifyRequest;
///
/// let body = IdentifyRequest::new()
///     .email("ada@example.com")
///     .created_at(1717171717)
///     .timestamp(1717171800)
///     .attribute("plan", "pro")
///     .attribute("seats", 5);
/// assert_eq!(
///     serde_json::to_value(&body)?,
///     serde_json::json!({"email": "ada@example.com", "created_at": 1717171717,
///                        "_timestamp": 1717171800, "plan": "pro", "seats": 5})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IdentifyRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<u64>,
    #[serde(rename = "_timestamp", skip_serializing_if = "Option::is_none")]
    timestamp: Option<u64>,
    #[serde(rename = "_update", skip_serializing_if = "Option::is_none")]
    update_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsubscribed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cio_subscription_preferences: Option<SubscriptionPreferences>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cio_relationships: Option<Relationships>,
    #[serde(flatten)]
    attributes: Map<String, Value>,
}

impl IdentifyRequest {
    /// An empty body (an identify with no attributes just makes sure the person exists).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the person's `id`: when the path names them by email, or to change the id when
    /// the path uses their `cio_id`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the person's email address.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Links earlier anonymous events with this `anonymous_id` to the person.
    pub fn anonymous_id(mut self, anonymous_id: impl Into<String>) -> Self {
        self.anonymous_id = Some(anonymous_id.into());
        self
    }

    /// Sets the sign-up time (Unix seconds).
    pub fn created_at(mut self, seconds: u64) -> Self {
        self.created_at = Some(seconds);
        self
    }

    /// Sets `_timestamp`: when this update happened (Unix seconds). Customer.io uses it to
    /// order updates; send it whenever order matters (and before retrying).
    pub fn timestamp(mut self, seconds: u64) -> Self {
        self.timestamp = Some(seconds);
        self
    }

    /// Sets `_update: true`: only update an existing person, never create one.
    pub fn update_only(mut self) -> Self {
        self.update_only = Some(true);
        self
    }

    /// Sets the global `unsubscribed` flag.
    pub fn unsubscribed(mut self, unsubscribed: bool) -> Self {
        self.unsubscribed = Some(unsubscribed);
        self
    }

    /// Replaces the person's topic preferences (`cio_subscription_preferences`).
    pub fn subscription_preferences(mut self, preferences: SubscriptionPreferences) -> Self {
        self.cio_subscription_preferences = Some(preferences);
        self
    }

    /// Sets one topic preference without touching the others, with the dotted key
    /// `cio_subscription_preferences.topics.topic_<n>`.
    pub fn topic_preference(mut self, topic: u32, subscribed: bool) -> Self {
        self.attributes.insert(
            format!("cio_subscription_preferences.topics.topic_{topic}"),
            Value::Bool(subscribed),
        );
        self
    }

    /// Adds or removes relationships to objects (`cio_relationships`).
    pub fn relationships(mut self, relationships: Relationships) -> Self {
        self.cio_relationships = Some(relationships);
        self
    }

    /// Sets one custom attribute. An empty string is how Customer.io is usually told to unset
    /// an attribute (documented for objects; assumed for people).
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets many custom attributes at once.
    pub fn attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes.extend(attributes);
        self
    }

    /// The custom attributes set so far.
    pub fn custom_attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// Checks the documented limits and builds the JSON body.
    pub(super) fn to_body(&self, operation: &'static str) -> Result<Map<String, Value>, Error> {
        let typed: [(&str, bool); 9] = [
            ("id", self.id.is_some()),
            ("email", self.email.is_some()),
            ("anonymous_id", self.anonymous_id.is_some()),
            ("created_at", self.created_at.is_some()),
            ("_timestamp", self.timestamp.is_some()),
            ("_update", self.update_only.is_some()),
            ("unsubscribed", self.unsubscribed.is_some()),
            (
                "cio_subscription_preferences",
                self.cio_subscription_preferences.is_some(),
            ),
            ("cio_relationships", self.cio_relationships.is_some()),
        ];
        for (key, set) in typed {
            if set && self.attributes.contains_key(key) {
                return Err(Error::invalid(
                    operation,
                    format!("`{key}` is set twice: as a typed field and as a custom attribute"),
                ));
            }
        }
        if let Some(id) = &self.id {
            check_id_value(operation, "id", id)?;
        }
        if let Some(seconds) = self.created_at {
            check_timestamp(operation, "created_at", seconds)?;
        }
        if let Some(seconds) = self.timestamp {
            check_timestamp(operation, "_timestamp", seconds)?;
        }
        if let Some(relationships) = &self.cio_relationships {
            relationships.validate(operation)?;
        }
        let mut body = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::invalid(
                    operation,
                    "identify body did not serialise to a JSON object",
                ));
            }
            Err(err) => {
                return Err(
                    Error::invalid(operation, "identify body could not be serialised")
                        .with_source(err),
                );
            }
        };
        // The structured keys are not plain attributes: keep them out of the name/value
        // checks but count them against the per-call limit.
        let relationships = body.remove("cio_relationships");
        let preferences = body.remove("cio_subscription_preferences");
        limits::check_attributes(operation, "identify attributes", &body)?;
        let total = body.len() + usize::from(preferences.is_some());
        if total > MAX_ATTRIBUTES {
            return Err(Error::invalid(
                operation,
                format!("identify attributes: {total} attributes; the limit is {MAX_ATTRIBUTES}"),
            ));
        }
        if let Some(value) = preferences {
            body.insert("cio_subscription_preferences".to_owned(), value);
        }
        if let Some(value) = relationships {
            body.insert("cio_relationships".to_owned(), value);
        }
        Ok(body)
    }
}

/// A person's topic preferences: `{"topics": {"topic_<n>": true|false}}`. Topics left out
/// take the topic's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionPreferences {
    topics: BTreeMap<String, bool>,
}

impl SubscriptionPreferences {
    /// No topics set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to (`true`) or unsubscribes from (`false`) topic number `topic`.
    pub fn topic(mut self, topic: u32, subscribed: bool) -> Self {
        self.topics.insert(format!("topic_{topic}"), subscribed);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{OP, invalid_message};
    use super::*;
    use crate::track::v1::{ObjectIdentifier, Relationship};
    use serde_json::json;

    #[test]
    fn identify_body_has_reserved_keys_once() {
        let request = IdentifyRequest::new()
            .id("user-42")
            .email("ada@example.com")
            .anonymous_id("anon-7f3c")
            .created_at(1_717_171_717)
            .timestamp(1_717_171_800)
            .update_only()
            .unsubscribed(false)
            .subscription_preferences(
                SubscriptionPreferences::new()
                    .topic(1, true)
                    .topic(3, false),
            )
            .topic_preference(7, true)
            .relationships(Relationships::add(vec![
                Relationship::new(ObjectIdentifier::object("1", "acme")).attribute("role", "admin"),
                Relationship::new(ObjectIdentifier::cio_object_id("c0ffee")),
            ]))
            .attribute("plan", "pro");
        let body = request.to_body(OP).unwrap();
        assert_eq!(
            Value::Object(body.clone()),
            json!({
                "id": "user-42",
                "email": "ada@example.com",
                "anonymous_id": "anon-7f3c",
                "created_at": 1_717_171_717,
                "_timestamp": 1_717_171_800,
                "_update": true,
                "unsubscribed": false,
                "cio_subscription_preferences": {"topics": {"topic_1": true, "topic_3": false}},
                "cio_subscription_preferences.topics.topic_7": true,
                "cio_relationships": {
                    "action": "add_relationships",
                    "relationships": [
                        {"identifiers": {"object_type_id": "1", "object_id": "acme"},
                         "relationship_attributes": {"role": "admin"}},
                        {"identifiers": {"cio_object_id": "c0ffee"}}
                    ]
                },
                "plan": "pro"
            })
        );
        // Written once: the serialised text has exactly one `"email"` key.
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(text.matches("\"email\"").count(), 1);
    }

    #[test]
    fn reserved_key_set_twice_is_refused_without_the_value() {
        let err = IdentifyRequest::new()
            .email("ada@example.com")
            .attribute("email", "other@example.com")
            .to_body(OP)
            .unwrap_err();
        let shown = invalid_message(err);
        assert!(shown.contains("`email` is set twice"), "{shown}");
        assert!(!shown.contains("example.com"));
        // A reserved key given only as a custom attribute is fine.
        let body = IdentifyRequest::new()
            .attribute("email", "ada@example.com")
            .to_body(OP)
            .unwrap();
        assert_eq!(Value::Object(body), json!({"email": "ada@example.com"}));
    }

    #[test]
    fn identify_limits_name_the_field() {
        let long_id = IdentifyRequest::new()
            .id("x".repeat(151))
            .to_body(OP)
            .unwrap_err();
        assert!(invalid_message(long_id).contains("id is 151 bytes"));
        let ms = IdentifyRequest::new()
            .created_at(1_717_171_717_000)
            .to_body(OP)
            .unwrap_err();
        assert!(invalid_message(ms).contains("created_at is not Unix seconds"));
        let big = IdentifyRequest::new()
            .attribute("bio", "b".repeat(1001))
            .to_body(OP)
            .unwrap_err();
        assert!(invalid_message(big).contains("`bio` is 1001 bytes"));
        let many = (0..300).fold(IdentifyRequest::new().email("a@b.c"), |r, i| {
            r.attribute(format!("a{i}"), i)
        });
        assert!(invalid_message(many.to_body(OP).unwrap_err()).contains("301 attributes"));
        let exactly = (0..299).fold(IdentifyRequest::new().email("a@b.c"), |r, i| {
            r.attribute(format!("a{i}"), i)
        });
        assert!(exactly.to_body(OP).is_ok());
        let with_prefs = (0..299).fold(
            IdentifyRequest::new()
                .email("a@b.c")
                .subscription_preferences(SubscriptionPreferences::new().topic(1, true)),
            |r, i| r.attribute(format!("a{i}"), i),
        );
        assert!(invalid_message(with_prefs.to_body(OP).unwrap_err()).contains("301 attributes"));
    }
}
