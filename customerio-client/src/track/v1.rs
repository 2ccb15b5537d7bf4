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

use std::collections::BTreeMap;
use std::fmt;

use reqwest::Method;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};
use ulid::Ulid;

use crate::error::Error;
use crate::http::Body;
use crate::identifier::{Identifier, encode_path_segment};
use crate::limits::{
    self, MAX_ATTRIBUTES, MAX_ID_BYTES, MAX_OBJECT_ATTRIBUTES_BYTES, MAX_OBJECT_ID_BYTES,
    MAX_SEGMENT_IDS_PER_REQUEST,
};
use crate::retry::Idempotency;
use crate::track::TrackClient;

/// Timestamps at or above this many seconds (the year 2286) are refused: they are almost
/// certainly milliseconds. Customer.io takes Unix seconds.
pub const TIMESTAMP_SECONDS_LIMIT: u64 = 10_000_000_000;

fn check_timestamp(operation: &'static str, field: &str, seconds: u64) -> Result<(), Error> {
    if seconds >= TIMESTAMP_SECONDS_LIMIT {
        return Err(Error::invalid(
            operation,
            format!("{field} is not Unix seconds (it has more than 10 digits; milliseconds?)"),
        ));
    }
    Ok(())
}

fn check_id_value(operation: &'static str, field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(operation, format!("{field} is empty")));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(Error::invalid(
            operation,
            format!(
                "{field} is {} bytes; the limit is {MAX_ID_BYTES}",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Checks a person identifier for a v1 call and names the field in the error.
fn check_person(operation: &'static str, field: &str, person: &Identifier) -> Result<(), Error> {
    if let Identifier::Phone(_) = person {
        return Err(Error::invalid(
            operation,
            format!(
                "{field}: a phone number cannot identify a person in Track v1; use an id, email or cio_id (or Track v2)"
            ),
        ));
    }
    check_id_value(
        operation,
        &format!("{field} {}", person.kind()),
        person.value(),
    )
}

/// The path of a person: `/api/v1/customers/{identifier}`.
fn person_path(operation: &'static str, person: &Identifier) -> Result<String, Error> {
    check_person(operation, "person", person)?;
    Ok(format!("/api/v1/customers/{}", person.v1_path_segment()?))
}

// ---------------------------------------------------------------------------------------------
// Identify
// ---------------------------------------------------------------------------------------------

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
    fn to_body(&self, operation: &'static str) -> Result<Map<String, Value>, Error> {
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

    fn validate(&self, operation: &'static str) -> Result<(), Error> {
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

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// The `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A custom event. Sent without a `type` key (the server's default).
    #[default]
    Event,
    /// A page view; the event name is the URL or path.
    Page,
    /// A mobile screen view; the event name is the screen's name.
    Screen,
}

impl EventType {
    fn is_event(&self) -> bool {
        matches!(self, EventType::Event)
    }
}

/// An event for [`TrackClient::track`] (a person) or [`TrackClient::track_anonymous`].
///
/// Give it an [`id`](Event::id) (a ULID) whenever the event may be sent more than once:
/// Customer.io ignores an id it has already received, which makes retries safe.
///
/// ```
/// use customerio_client::track::v1::Event;
///
/// let page = Event::page("https://shop.example.com/pricing").property("referrer", "https://google.com");
/// assert_eq!(
///     serde_json::to_value(&page)?,
///     serde_json::json!({"type": "page", "name": "https://shop.example.com/pricing",
///                        "data": {"referrer": "https://google.com"}})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    name: String,
    #[serde(rename = "type", skip_serializing_if = "EventType::is_event")]
    kind: EventType,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_ulid"
    )]
    id: Option<Ulid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<u64>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    data: Map<String, Value>,
}

fn serialize_ulid<S: Serializer>(id: &Option<Ulid>, serializer: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serializer.collect_str(id),
        None => serializer.serialize_none(),
    }
}

impl Event {
    /// A custom event named `name` (at most 100 bytes).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: EventType::Event,
            id: None,
            timestamp: None,
            data: Map::new(),
        }
    }

    /// A page view of `url` (the URL or path is the event name).
    pub fn page(url: impl Into<String>) -> Self {
        Self {
            kind: EventType::Page,
            ..Self::new(url)
        }
    }

    /// A view of the mobile screen `name`.
    pub fn screen(name: impl Into<String>) -> Self {
        Self {
            kind: EventType::Screen,
            ..Self::new(name)
        }
    }

    /// Sets the de-duplication id. Customer.io ignores an event whose id it has already seen.
    pub fn id(mut self, id: Ulid) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets when the event happened (Unix seconds; defaults to the time of receipt). Only
    /// events from the last 72 hours can trigger campaigns.
    pub fn timestamp(mut self, seconds: u64) -> Self {
        self.timestamp = Some(seconds);
        self
    }

    /// Replaces the event's `data` (its properties, at most 100,000 bytes serialised).
    pub fn data(mut self, data: Map<String, Value>) -> Self {
        self.data = data;
        self
    }

    /// Sets one property in `data`. The keys `recipient`, `from_address` and `reply_to`
    /// override the settings of messages the event triggers.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(name.into(), value.into());
        self
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.kind
    }

    /// The de-duplication id, if set.
    pub fn dedupe_id(&self) -> Option<Ulid> {
        self.id
    }

    /// How safe a resend of this event is: [`Idempotency::DedupeId`] with an id,
    /// [`Idempotency::NotIdempotent`] without.
    pub fn idempotency(&self) -> Idempotency {
        if self.id.is_some() {
            Idempotency::DedupeId
        } else {
            Idempotency::NotIdempotent
        }
    }

    fn validate(&self, operation: &'static str) -> Result<(), Error> {
        limits::check_event_name(operation, &self.name)?;
        limits::check_event_data(operation, &self.data)?;
        if let Some(seconds) = self.timestamp {
            check_timestamp(operation, "timestamp", seconds)?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct AnonymousEventBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'a str>,
    #[serde(flatten)]
    event: &'a Event,
}

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

/// A device's platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Platform {
    /// `ios`
    Ios,
    /// `android`
    Android,
    /// A platform this crate does not know yet, sent as written.
    Other(String),
}

impl Platform {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Other(other) => other,
        }
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A push device for [`TrackClient::add_device`].
///
/// ```
/// use customerio_client::track::v1::{Device, Platform};
///
/// let device = Device::new("fcm-token", Platform::Android).last_used(1717172300).attribute("app_version", "3.2.1");
/// assert_eq!(
///     serde_json::to_value(&device)?,
///     serde_json::json!({"id": "fcm-token", "platform": "android", "last_used": 1717172300,
///                        "attributes": {"app_version": "3.2.1"}})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Serialize)]
pub struct Device {
    id: String,
    platform: Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
}

impl fmt::Debug for Device {
    /// Shows the token's length, not the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("id", &crate::secret::TokenLength(&self.id))
            .field("platform", &self.platform)
            .field("last_used", &self.last_used)
            .field("attributes", &self.attributes)
            .finish()
    }
}

impl Device {
    /// A device by its push token (APNs or FCM) and platform.
    pub fn new(token: impl Into<String>, platform: Platform) -> Self {
        Self {
            id: token.into(),
            platform,
            last_used: None,
            attributes: BTreeMap::new(),
        }
    }

    /// Sets when the device was last used (Unix seconds; defaults to the time of the request).
    pub fn last_used(mut self, seconds: u64) -> Self {
        self.last_used = Some(seconds);
        self
    }

    /// Sets a device attribute. Known keys: `device_os`, `device_model`, `app_version`,
    /// `cio_sdk_version`, `device_locale`, `push_enabled`. Values are strings.
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets `push_enabled` to `"true"` or `"false"`.
    pub fn push_enabled(self, enabled: bool) -> Self {
        self.attribute("push_enabled", if enabled { "true" } else { "false" })
    }

    fn validate(&self, operation: &'static str) -> Result<(), Error> {
        if self.id.is_empty() {
            return Err(Error::invalid(operation, "device.id (the token) is empty"));
        }
        if self.platform.as_str().is_empty() {
            return Err(Error::invalid(operation, "device.platform is empty"));
        }
        if let Some(seconds) = self.last_used {
            check_timestamp(operation, "device.last_used", seconds)?;
        }
        if self.attributes.contains_key("_last_status") {
            return Err(Error::invalid(
                operation,
                "device.attributes._last_status is read-only",
            ));
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct DeviceBody<'a> {
    device: &'a Device,
}

// ---------------------------------------------------------------------------------------------
// Merge
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct MergeBody<'a> {
    primary: &'a Identifier,
    secondary: &'a Identifier,
}

// ---------------------------------------------------------------------------------------------
// Delivery metrics
// ---------------------------------------------------------------------------------------------

macro_rules! channel_metrics {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The wire value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }
    };
}

channel_metrics! {
    /// Metrics that can be reported for an email.
    EmailMetric {
        /// `bounced`
        Bounced => "bounced",
        /// `clicked`
        Clicked => "clicked",
        /// `converted`
        Converted => "converted",
        /// `deferred`
        Deferred => "deferred",
        /// `delivered`
        Delivered => "delivered",
        /// `dropped`
        Dropped => "dropped",
        /// `opened`
        Opened => "opened",
        /// `spammed`
        Spammed => "spammed",
    }
}

channel_metrics! {
    /// Metrics that can be reported for a push notification.
    PushMetric {
        /// `converted`
        Converted => "converted",
        /// `delivered`
        Delivered => "delivered",
        /// `opened`
        Opened => "opened",
    }
}

channel_metrics! {
    /// Metrics that can be reported for an in-app message.
    InAppMetric {
        /// `clicked`
        Clicked => "clicked",
        /// `converted`
        Converted => "converted",
        /// `opened`
        Opened => "opened",
    }
}

channel_metrics! {
    /// Metrics that can be reported for an SMS.
    SmsMetric {
        /// `bounced`
        Bounced => "bounced",
        /// `clicked`
        Clicked => "clicked",
        /// `delivered`
        Delivered => "delivered",
        /// `opened`
        Opened => "opened",
    }
}

channel_metrics! {
    /// Metrics that can be reported for a Slack message.
    SlackMetric {
        /// `clicked`
        Clicked => "clicked",
        /// `converted`
        Converted => "converted",
        /// `delivered`
        Delivered => "delivered",
        /// `opened`
        Opened => "opened",
    }
}

/// A delivery metric, typed per channel so only documented combinations can be built. The
/// channel itself is not sent: the delivery id already names the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryMetric {
    /// An email metric.
    Email(EmailMetric),
    /// A push metric.
    Push(PushMetric),
    /// An in-app message metric.
    InApp(InAppMetric),
    /// An SMS metric.
    Sms(SmsMetric),
    /// A Slack metric.
    Slack(SlackMetric),
    /// A metric this crate does not know yet, sent as written.
    Other(String),
}

impl DeliveryMetric {
    /// The wire value of `metric`.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryMetric::Email(m) => m.as_str(),
            DeliveryMetric::Push(m) => m.as_str(),
            DeliveryMetric::InApp(m) => m.as_str(),
            DeliveryMetric::Sms(m) => m.as_str(),
            DeliveryMetric::Slack(m) => m.as_str(),
            DeliveryMetric::Other(other) => other,
        }
    }
}

impl Serialize for DeliveryMetric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl From<EmailMetric> for DeliveryMetric {
    fn from(metric: EmailMetric) -> Self {
        DeliveryMetric::Email(metric)
    }
}

impl From<PushMetric> for DeliveryMetric {
    fn from(metric: PushMetric) -> Self {
        DeliveryMetric::Push(metric)
    }
}

impl From<InAppMetric> for DeliveryMetric {
    fn from(metric: InAppMetric) -> Self {
        DeliveryMetric::InApp(metric)
    }
}

impl From<SmsMetric> for DeliveryMetric {
    fn from(metric: SmsMetric) -> Self {
        DeliveryMetric::Sms(metric)
    }
}

impl From<SlackMetric> for DeliveryMetric {
    fn from(metric: SlackMetric) -> Self {
        DeliveryMetric::Slack(metric)
    }
}

/// A delivery metric report for [`TrackClient::report_metric`] (`POST /api/v1/metrics`).
///
/// ```
/// use customerio_client::track::v1::{DeliveryMetricReport, EmailMetric};
///
/// let report = DeliveryMetricReport::new("RPILAgUBcRhIBqSfeiIwdIYJKxTY", EmailMetric::Clicked, 1717173000)
///     .href("https://example.com/upgrade");
/// assert_eq!(
///     serde_json::to_value(&report)?,
///     serde_json::json!({"delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "metric": "clicked",
///                        "timestamp": 1717173000, "href": "https://example.com/upgrade"})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryMetricReport {
    delivery_id: String,
    metric: DeliveryMetric,
    timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    href: Option<String>,
}

impl DeliveryMetricReport {
    /// A report that `metric` happened to the message `delivery_id` (the `CIO-Delivery-ID`
    /// Customer.io puts on messages) at `timestamp` (Unix seconds).
    pub fn new(
        delivery_id: impl Into<String>,
        metric: impl Into<DeliveryMetric>,
        timestamp: u64,
    ) -> Self {
        Self {
            delivery_id: delivery_id.into(),
            metric: metric.into(),
            timestamp,
            recipient: None,
            reason: None,
            href: None,
        }
    }

    /// Sets the recipient (address or number) the metric is about.
    pub fn recipient(mut self, recipient: impl Into<String>) -> Self {
        self.recipient = Some(recipient.into());
        self
    }

    /// Sets the reason (e.g. for a bounce or a drop).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the clicked link.
    pub fn href(mut self, href: impl Into<String>) -> Self {
        self.href = Some(href.into());
        self
    }

    fn validate(&self, operation: &'static str) -> Result<(), Error> {
        if self.delivery_id.is_empty() {
            return Err(Error::invalid(operation, "delivery_id is empty"));
        }
        if self.metric.as_str().is_empty() {
            return Err(Error::invalid(operation, "metric is empty"));
        }
        check_timestamp(operation, "timestamp", self.timestamp)
    }
}

// ---------------------------------------------------------------------------------------------
// Manual segments
// ---------------------------------------------------------------------------------------------

/// What the `ids` of a manual-segment call are (`id_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SegmentIdType {
    /// Person ids (the server's default).
    #[default]
    Id,
    /// Email addresses.
    Email,
    /// Customer.io ids.
    CioId,
}

impl SegmentIdType {
    /// The wire value: `id`, `email` or `cio_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentIdType::Id => "id",
            SegmentIdType::Email => "email",
            SegmentIdType::CioId => "cio_id",
        }
    }
}

#[derive(Serialize)]
struct SegmentIdsBody<'a, S: AsRef<str>> {
    #[serde(serialize_with = "serialize_str_refs")]
    ids: &'a [S],
}

fn serialize_str_refs<S: AsRef<str>, Z: Serializer>(
    ids: &[S],
    serializer: Z,
) -> Result<Z::Ok, Z::Error> {
    serializer.collect_seq(ids.iter().map(AsRef::as_ref))
}

fn check_segment_ids<S: AsRef<str>>(
    operation: &'static str,
    id_type: SegmentIdType,
    ids: &[S],
) -> Result<(), Error> {
    if ids.is_empty() || ids.len() > MAX_SEGMENT_IDS_PER_REQUEST {
        return Err(Error::invalid(
            operation,
            format!(
                "ids holds {} entries; 1 to {MAX_SEGMENT_IDS_PER_REQUEST} are allowed",
                ids.len()
            ),
        ));
    }
    for (index, id) in ids.iter().enumerate() {
        let id = id.as_ref();
        if id.is_empty() {
            return Err(Error::invalid(operation, format!("ids[{index}] is empty")));
        }
        if id_type == SegmentIdType::Id && id.len() > MAX_ID_BYTES {
            return Err(Error::invalid(
                operation,
                format!(
                    "ids[{index}] is {} bytes; the limit is {MAX_ID_BYTES}",
                    id.len()
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The calls
// ---------------------------------------------------------------------------------------------

impl TrackClient {
    /// Creates or updates a person (`PUT /api/v1/customers/{identifier}`).
    ///
    /// `attributes` is the flat body: custom attributes plus the reserved keys (`email`,
    /// `created_at`, `anonymous_id`, `_timestamp`, `_update`, …). The attribute limits are
    /// checked before sending. [`identify_with`](Self::identify_with) takes a typed body.
    ///
    /// Beware: when the path and body identifiers belong to different people the server still
    /// answers `200` and only its activity log shows the failed update.
    pub async fn identify(
        &self,
        person: &Identifier,
        attributes: &Map<String, Value>,
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.identify";
        let path = person_path(OP, person)?;
        limits::check_attributes(OP, "identify attributes", attributes)?;
        let body = Body::json(OP, attributes)?;
        self.transport
            .send(OP, Method::PUT, &path, &[], body)
            .await?;
        Ok(())
    }

    /// Creates or updates a person from a typed [`IdentifyRequest`]
    /// (`PUT /api/v1/customers/{identifier}`). Idempotent.
    pub async fn identify_with(
        &self,
        person: &Identifier,
        request: &IdentifyRequest,
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.identify";
        let path = person_path(OP, person)?;
        let body = Body::json(OP, &request.to_body(OP)?)?;
        self.transport
            .send(OP, Method::PUT, &path, &[], body)
            .await?;
        Ok(())
    }

    /// Deletes a person and their data (`DELETE /api/v1/customers/{identifier}`). A later
    /// call that identifies them creates them again. Idempotent.
    pub async fn delete(&self, person: &Identifier) -> Result<(), Error> {
        const OP: &str = "track.v1.delete";
        let path = person_path(OP, person)?;
        self.transport
            .send(OP, Method::DELETE, &path, &[], Body::None)
            .await?;
        Ok(())
    }

    /// Deletes a person **and** blocks their identifiers from being added again
    /// (`POST /api/v1/customers/{identifier}/suppress`). Meant for GDPR/CCPA erasure; the data
    /// cannot be restored. Idempotent.
    pub async fn suppress(&self, person: &Identifier) -> Result<(), Error> {
        const OP: &str = "track.v1.suppress";
        let path = format!("{}/suppress", person_path(OP, person)?);
        self.transport
            .send(OP, Method::POST, &path, &[], Body::None)
            .await?;
        Ok(())
    }

    /// Frees a suppressed person's identifiers
    /// (`POST /api/v1/customers/{identifier}/unsuppress`). The old profile is not restored;
    /// the next identify creates a new person. Idempotent.
    pub async fn unsuppress(&self, person: &Identifier) -> Result<(), Error> {
        const OP: &str = "track.v1.unsuppress";
        let path = format!("{}/unsuppress", person_path(OP, person)?);
        self.transport
            .send(OP, Method::POST, &path, &[], Body::None)
            .await?;
        Ok(())
    }

    /// Records an event, page view or screen view for a person
    /// (`POST /api/v1/customers/{identifier}/events`). Safe to resend only with an event id
    /// ([`Event::idempotency`]).
    pub async fn track(&self, person: &Identifier, event: &Event) -> Result<(), Error> {
        const OP: &str = "track.v1.event";
        let path = format!("{}/events", person_path(OP, person)?);
        event.validate(OP)?;
        let body = Body::json(OP, event)?;
        self.transport
            .send(OP, Method::POST, &path, &[], body)
            .await?;
        Ok(())
    }

    /// Records an event, page view or screen view for someone not identified yet
    /// (`POST /api/v1/events`).
    ///
    /// `anonymous_id` (a cookie id, …) lets a later identify that sets the same
    /// `anonymous_id` attach these events to the person (last 30 days, when event merging is
    /// on). Anonymous events cannot trigger campaigns themselves. `None` sends no
    /// `anonymous_id` (with a `recipient` in the data that is a legacy "invite" event); an
    /// empty string is refused. Safe to resend only with an event id.
    pub async fn track_anonymous(
        &self,
        anonymous_id: Option<&str>,
        event: &Event,
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.anonymous_event";
        if anonymous_id.is_some_and(str::is_empty) {
            return Err(Error::invalid(
                OP,
                "anonymous_id is empty; pass None to leave it out",
            ));
        }
        event.validate(OP)?;
        let body = Body::json(
            OP,
            &AnonymousEventBody {
                anonymous_id,
                event,
            },
        )?;
        self.transport
            .send(OP, Method::POST, "/api/v1/events", &[], body)
            .await?;
        Ok(())
    }

    /// Adds a push device to a person or updates it
    /// (`PUT /api/v1/customers/{identifier}/devices`). Idempotent (keyed by the token).
    pub async fn add_device(&self, person: &Identifier, device: &Device) -> Result<(), Error> {
        const OP: &str = "track.v1.add_device";
        let path = format!("{}/devices", person_path(OP, person)?);
        device.validate(OP)?;
        let body = Body::json(OP, &DeviceBody { device })?;
        self.transport
            .send(OP, Method::PUT, &path, &[], body)
            .await?;
        Ok(())
    }

    /// Removes a person's device by its token
    /// (`DELETE /api/v1/customers/{identifier}/devices/{token}`, token percent-encoded).
    /// Sending the device again later adds it back. Idempotent.
    pub async fn delete_device(&self, person: &Identifier, token: &str) -> Result<(), Error> {
        const OP: &str = "track.v1.delete_device";
        let person = person_path(OP, person)?;
        if token.is_empty() {
            return Err(Error::invalid(OP, "device token is empty"));
        }
        let path = format!("{person}/devices/{}", encode_path_segment(token));
        self.transport
            .send(OP, Method::DELETE, &path, &[], Body::None)
            .await?;
        Ok(())
    }

    /// Merges `secondary` into `primary` (`POST /api/v1/merge_customers`).
    ///
    /// Each side is an id, email or `cio_id` (sent raw, without the `cio_` prefix); a phone is
    /// refused, and so is merging a person with the same identifier. The secondary person is
    /// **deleted** and the merge cannot be undone; the primary must already exist or nothing
    /// happens. **Not idempotent**: never resend after the server may have received it.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::TrackClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::Identifier;
    /// client.merge(&Identifier::id("user-42"), &Identifier::email("old-address@example.com")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn merge(&self, primary: &Identifier, secondary: &Identifier) -> Result<(), Error> {
        const OP: &str = "track.v1.merge";
        check_person(OP, "primary", primary)?;
        check_person(OP, "secondary", secondary)?;
        if primary == secondary {
            return Err(Error::invalid(
                OP,
                "primary and secondary are the same identifier",
            ));
        }
        let body = Body::json(OP, &MergeBody { primary, secondary })?;
        self.transport
            .send(OP, Method::POST, "/api/v1/merge_customers", &[], body)
            .await?;
        Ok(())
    }

    /// Reports a delivery metric (`POST /api/v1/metrics`), e.g. an open or click your own
    /// systems observed. The endpoint does not need credentials; this client sends them
    /// anyway. Not idempotent (no de-duplication is documented).
    pub async fn report_metric(&self, report: &DeliveryMetricReport) -> Result<(), Error> {
        const OP: &str = "track.v1.metrics";
        report.validate(OP)?;
        let body = Body::json(OP, report)?;
        self.transport
            .send(OP, Method::POST, "/api/v1/metrics", &[], body)
            .await?;
        Ok(())
    }

    /// Adds people to a manual segment
    /// (`POST /api/v1/segments/{segment_id}/add_customers?id_type=…`, body `{"ids": […]}`).
    ///
    /// `ids` holds 1 to 1000 values of the kind `id_type` names (checked before sending;
    /// person ids at most 150 bytes). `id_type` is always sent, `id` included, although `id`
    /// is the server's default: the request then says what it means. Entries that match nobody
    /// are ignored by the server without an error. `cio_id` values are sent as given. The
    /// segment must be a manual one and must exist. Idempotent.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::TrackClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::track::v1::SegmentIdType;
    /// client.add_to_segment(7, SegmentIdType::Email, &["ada@example.com", "bob@example.com"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_to_segment<S: AsRef<str>>(
        &self,
        segment_id: u64,
        id_type: SegmentIdType,
        ids: &[S],
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.segment_add";
        self.segment_membership(OP, "add_customers", segment_id, id_type, ids)
            .await
    }

    /// Removes people from a manual segment
    /// (`POST /api/v1/segments/{segment_id}/remove_customers?id_type=…`). Same rules as
    /// [`add_to_segment`](Self::add_to_segment). Idempotent.
    pub async fn remove_from_segment<S: AsRef<str>>(
        &self,
        segment_id: u64,
        id_type: SegmentIdType,
        ids: &[S],
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.segment_remove";
        self.segment_membership(OP, "remove_customers", segment_id, id_type, ids)
            .await
    }

    async fn segment_membership<S: AsRef<str>>(
        &self,
        operation: &'static str,
        action: &str,
        segment_id: u64,
        id_type: SegmentIdType,
        ids: &[S],
    ) -> Result<(), Error> {
        check_segment_ids(operation, id_type, ids)?;
        let body = Body::json(operation, &SegmentIdsBody { ids })?;
        self.transport
            .send(
                operation,
                Method::POST,
                &format!("/api/v1/segments/{segment_id}/{action}"),
                &[("id_type", id_type.as_str())],
                body,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    #[test]
    fn a_device_token_is_not_shown_in_debug() {
        let device = Device::new("apns-secret-token", Platform::Ios).last_used(1);
        let shown = format!("{device:?}");
        assert!(!shown.contains("apns-secret-token"), "{shown}");
        assert!(shown.contains("<token, 17 bytes>"), "{shown}");
    }

    const OP: &str = "test";

    fn invalid_message(err: Error) -> String {
        assert_eq!(err.kind(), ErrorKind::Invalid);
        err.to_string()
    }

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

    #[test]
    fn event_serialises_type_id_and_timestamp() {
        let id: Ulid = "01J0ZQ4N7S8K3M2B9TVW5XY6AB".parse().unwrap();
        let event = Event::new("order_completed")
            .id(id)
            .timestamp(1_717_172_000)
            .property("total", 129.5);
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"name": "order_completed", "id": "01J0ZQ4N7S8K3M2B9TVW5XY6AB",
                   "timestamp": 1_717_172_000, "data": {"total": 129.5}})
        );
        assert_eq!(event.idempotency(), Idempotency::DedupeId);
        assert_eq!(Event::new("x").idempotency(), Idempotency::NotIdempotent);
        assert_eq!(
            serde_json::to_value(Event::screen("Checkout")).unwrap(),
            json!({"name": "Checkout", "type": "screen"})
        );
        let anonymous = AnonymousEventBody {
            anonymous_id: Some("anon-7f3c"),
            event: &Event::screen("Checkout").timestamp(1_717_172_100),
        };
        assert_eq!(
            serde_json::to_value(&anonymous).unwrap(),
            json!({"anonymous_id": "anon-7f3c", "type": "screen", "name": "Checkout", "timestamp": 1_717_172_100})
        );
    }

    #[test]
    fn event_limits() {
        assert!(Event::new("e".repeat(100)).validate(OP).is_ok());
        assert!(
            invalid_message(Event::new("e".repeat(101)).validate(OP).unwrap_err())
                .contains("101 bytes")
        );
        assert!(Event::new(" ").validate(OP).is_err());
        let big = Event::new("e").property("blob", "x".repeat(100_000));
        assert!(invalid_message(big.validate(OP).unwrap_err()).contains("event data is"));
        let ms = Event::new("e").timestamp(1_717_172_000_000);
        assert!(
            invalid_message(ms.validate(OP).unwrap_err()).contains("timestamp is not Unix seconds")
        );
        assert!(
            Event::new("e")
                .timestamp(TIMESTAMP_SECONDS_LIMIT - 1)
                .validate(OP)
                .is_ok()
        );
    }

    #[test]
    fn device_checks() {
        assert!(Device::new("", Platform::Ios).validate(OP).is_err());
        assert!(
            Device::new("t", Platform::Other(String::new()))
                .validate(OP)
                .is_err()
        );
        assert!(
            Device::new("t", Platform::Ios)
                .attribute("_last_status", "x")
                .validate(OP)
                .is_err()
        );
        assert!(
            Device::new("t", Platform::Ios)
                .last_used(17_171_723_000_000)
                .validate(OP)
                .is_err()
        );
        assert_eq!(
            serde_json::to_value(
                Device::new("t", Platform::Other("web".into())).push_enabled(false)
            )
            .unwrap(),
            json!({"id": "t", "platform": "web", "attributes": {"push_enabled": "false"}})
        );
    }

    #[test]
    fn metric_wire_values() {
        let cases: Vec<(DeliveryMetric, &str)> = vec![
            (EmailMetric::Bounced.into(), "bounced"),
            (EmailMetric::Deferred.into(), "deferred"),
            (EmailMetric::Spammed.into(), "spammed"),
            (EmailMetric::Dropped.into(), "dropped"),
            (PushMetric::Delivered.into(), "delivered"),
            (InAppMetric::Clicked.into(), "clicked"),
            (SmsMetric::Opened.into(), "opened"),
            (SlackMetric::Converted.into(), "converted"),
            (DeliveryMetric::Other("replied".into()), "replied"),
        ];
        for (metric, wire) in cases {
            assert_eq!(serde_json::to_value(&metric).unwrap(), json!(wire));
        }
        let no_id = DeliveryMetricReport::new("", EmailMetric::Opened, 1);
        assert!(invalid_message(no_id.validate(OP).unwrap_err()).contains("delivery_id is empty"));
    }

    #[test]
    fn segment_id_bounds() {
        let none: [&str; 0] = [];
        assert!(
            invalid_message(check_segment_ids(OP, SegmentIdType::Id, &none).unwrap_err())
                .contains("0 entries")
        );
        let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
        assert!(
            invalid_message(check_segment_ids(OP, SegmentIdType::Id, &many).unwrap_err())
                .contains("1001 entries")
        );
        assert!(check_segment_ids(OP, SegmentIdType::Id, &many[..1000]).is_ok());
        let blank = ["a", ""];
        assert!(
            invalid_message(check_segment_ids(OP, SegmentIdType::Email, &blank).unwrap_err())
                .contains("ids[1] is empty")
        );
        let long = ["x".repeat(151)];
        assert!(check_segment_ids(OP, SegmentIdType::Id, &long).is_err());
        assert!(check_segment_ids(OP, SegmentIdType::Email, &long).is_ok());
    }

    #[test]
    fn person_checks_name_the_side() {
        let err = check_person(OP, "secondary", &Identifier::phone("+14155550100")).unwrap_err();
        let shown = invalid_message(err);
        assert!(shown.contains("secondary: a phone number"));
        assert!(!shown.contains("4155550100"));
        let err = check_person(OP, "primary", &Identifier::email("")).unwrap_err();
        assert!(invalid_message(err).contains("primary email is empty"));
    }
}
