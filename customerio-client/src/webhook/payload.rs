//! Typed reporting-webhook payloads.
//!
//! Customer.io POSTs one JSON object per request (never an array) with this envelope:
//!
//! ```json
//! {"event_id": "...", "object_type": "email", "metric": "clicked", "timestamp": 1717173000,
//!  "data": {"identifiers": {"id": "...", "email": "..."}, "delivery_id": "...", ...}}
//! ```
//!
//! [`ReportingEvent::from_slice`] decodes it into [`ReportingEvent`]. The model is built to be
//! **lossless**: every key this version does not know is kept in an `extra` map at the level it
//! appeared (event, `data`, `data.identifiers`, `data.recipients[i]`) and written back once, and
//! every optional key remembers whether it was absent or `null` ([`Field`]). Serialising a parsed
//! event gives back the same JSON value.
//!
//! # Leniency and strictness
//!
//! Customer.io adds payload fields without notice, and holds back later events while one is
//! failing, so decoding is lenient where it can be and strict only where it must:
//!
//! - unknown keys, `object_type` values and `metric` values are kept (`Other(String)`);
//! - every key inside `data` is optional and may be `null`;
//! - message ids (`campaign_id`, `action_id`, `link_id`, …) are documented as integers but are
//!   read as [`IdValue`], which also takes a string, and written back in the form they came in;
//! - a key we model that holds the wrong JSON type is an error ([`PayloadError::WrongType`]) that
//!   names the JSON path, as is a missing or empty `event_id`, `object_type` or `metric`, and a
//!   missing `timestamp` or `data`.
//!
//! Error messages name paths and JSON types only, never the values (which may be emails or ids).
//!
//! `Debug` output of these types does contain the payload, personal data included: do not log
//! it at info level or above.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

// ------------------------------------------------------------------------------------------------
// Errors and JSON paths
// ------------------------------------------------------------------------------------------------

/// Why a reporting-webhook body could not be decoded.
///
/// Paths are written `$` for the body itself, `$.data.campaign_id` for keys and
/// `$.data.recipients[0]` for array elements.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The body is not one well-formed JSON document.
    #[error("the webhook body is not valid JSON (line {line}, column {column})")]
    Syntax {
        /// 1-based line of the first error.
        line: usize,
        /// 1-based column of the first error.
        column: usize,
        /// The parser's own error.
        #[source]
        source: serde_json::Error,
    },
    /// A required key is absent.
    #[error("`{path}` is required but missing")]
    MissingField {
        /// JSON path of the missing key.
        path: String,
    },
    /// A key holds a JSON type other than the one the payload documents.
    #[error("`{path}` has the wrong type: expected {expected}, found {found}")]
    WrongType {
        /// JSON path of the offending value.
        path: String,
        /// What was expected there.
        expected: &'static str,
        /// The JSON type found instead.
        found: JsonType,
    },
    /// A key that identifies the event is an empty string.
    #[error("`{path}` must not be empty")]
    EmptyField {
        /// JSON path of the empty value.
        path: String,
    },
}

impl PayloadError {
    /// The JSON path the error is about, or `None` for a syntax error.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Syntax { .. } => None,
            Self::MissingField { path }
            | Self::WrongType { path, .. }
            | Self::EmptyField { path } => Some(path),
        }
    }
}

/// The JSON type of a value, as reported in [`PayloadError::WrongType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JsonType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number that is a whole number within the 64-bit signed range.
    Integer,
    /// Any other number (with a fraction or exponent, or outside the 64-bit signed range).
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonType {
    /// The type of `value`.
    #[must_use]
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Bool,
            Value::Number(n) if n.is_i64() => Self::Integer,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Integer => "an integer",
            Self::Number => "a non-integer or out-of-range number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        })
    }
}

/// Where a value sits in the body; built on the stack while decoding, formatted only on error.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

fn wrong_type(path: &Path<'_>, expected: &'static str, found: &Value) -> PayloadError {
    PayloadError::WrongType {
        path: path.to_string(),
        expected,
        found: JsonType::of(found),
    }
}

// ------------------------------------------------------------------------------------------------
// Decoding machinery
// ------------------------------------------------------------------------------------------------

/// Decoding from an owned JSON value with path-aware errors.
trait FromJson: Sized {
    /// Describes the expected JSON shape in error messages.
    const EXPECTED: &'static str;

    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError>;
}

impl FromJson for String {
    const EXPECTED: &'static str = "a string";

    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(path, Self::EXPECTED, &other)),
        }
    }
}

impl FromJson for bool {
    const EXPECTED: &'static str = "a boolean";

    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(wrong_type(path, Self::EXPECTED, &other)),
        }
    }
}

impl FromJson for i64 {
    const EXPECTED: &'static str = "an integer";

    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError> {
        match value.as_i64() {
            Some(n) => Ok(n),
            None => Err(wrong_type(path, Self::EXPECTED, &value)),
        }
    }
}

impl FromJson for Value {
    const EXPECTED: &'static str = "any JSON value";

    fn from_json(value: Value, _path: &Path<'_>) -> Result<Self, PayloadError> {
        Ok(value)
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    const EXPECTED: &'static str = "an array";

    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError> {
        match value {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| T::from_json(item, &Path::Index(path, index)))
                .collect(),
            other => Err(wrong_type(path, Self::EXPECTED, &other)),
        }
    }
}

/// Takes the keys of one JSON object out one by one; what is left over is the `extra` map.
struct ObjectReader<'p> {
    map: Map<String, Value>,
    path: &'p Path<'p>,
}

impl<'p> ObjectReader<'p> {
    fn new(value: Value, path: &'p Path<'p>) -> Result<Self, PayloadError> {
        match value {
            Value::Object(map) => Ok(Self { map, path }),
            other => Err(wrong_type(path, "an object", &other)),
        }
    }

    fn required<T: FromJson>(&mut self, key: &'static str) -> Result<T, PayloadError> {
        let path = Path::Key(self.path, key);
        match self.map.remove(key) {
            Some(value) => T::from_json(value, &path),
            None => Err(PayloadError::MissingField {
                path: path.to_string(),
            }),
        }
    }

    fn optional<T: FromJson>(&mut self, key: &'static str) -> Result<Field<T>, PayloadError> {
        match self.map.remove(key) {
            None => Ok(Field::Absent),
            Some(Value::Null) => Ok(Field::Null),
            Some(value) => T::from_json(value, &Path::Key(self.path, key)).map(Field::Present),
        }
    }

    fn non_empty_string(&mut self, key: &'static str) -> Result<String, PayloadError> {
        let value: String = self.required(key)?;
        if value.is_empty() {
            return Err(PayloadError::EmptyField {
                path: Path::Key(self.path, key).to_string(),
            });
        }
        Ok(value)
    }

    fn rest(self) -> Map<String, Value> {
        self.map
    }
}

/// Writes `extra` after the known keys, skipping any key the type models itself, so a key is
/// never written twice.
fn serialize_extra<M: SerializeMap>(
    map: &mut M,
    extra: &Map<String, Value>,
    known: &[&str],
) -> Result<(), M::Error> {
    for (key, value) in extra {
        if !known.contains(&key.as_str()) {
            map.serialize_entry(key, value)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Field<T> and IdValue
// ------------------------------------------------------------------------------------------------

/// An optional payload key: absent, present as `null`, or present with a value.
///
/// Keeping `Absent` and `Null` apart is what lets a parsed payload serialise back to exactly
/// the JSON it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Field<T> {
    /// The key was not in the object.
    #[default]
    Absent,
    /// The key was present with the value `null`.
    Null,
    /// The key was present with a value.
    Present(T),
}

impl<T> Field<T> {
    /// The value, if present and not `null`.
    #[must_use]
    pub fn get(&self) -> Option<&T> {
        match self {
            Self::Present(value) => Some(value),
            Self::Absent | Self::Null => None,
        }
    }

    /// `true` if the key was not in the object.
    #[must_use]
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    /// `true` if the key was present with `null`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The value, if present and not `null`.
    #[must_use]
    pub fn into_option(self) -> Option<T> {
        match self {
            Self::Present(value) => Some(value),
            Self::Absent | Self::Null => None,
        }
    }
}

impl Field<String> {
    /// The string, if present, not `null` and not empty.
    #[must_use]
    pub fn non_empty(&self) -> Option<&str> {
        self.get().map(String::as_str).filter(|s| !s.is_empty())
    }
}

impl<T> From<T> for Field<T> {
    fn from(value: T) -> Self {
        Self::Present(value)
    }
}

impl<T: Serialize> Serialize for Field<T> {
    /// Writes the value, or `null` for [`Field::Null`]. Containing types skip
    /// [`Field::Absent`] keys entirely; serialised on its own, `Absent` also writes `null`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Present(value) => value.serialize(serializer),
            Self::Absent | Self::Null => serializer.serialize_none(),
        }
    }
}

/// A Customer.io id that is documented as an integer but may arrive as a string.
///
/// Written back in the form it arrived in. [`Display`](fmt::Display) gives the decimal or the
/// string, which is the form to use when an id has to become a string (Segment properties).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdValue {
    /// A JSON integer.
    Int(i64),
    /// A JSON string.
    Text(String),
}

impl IdValue {
    /// The id as an integer: the integer itself, or a string holding only a decimal integer.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Text(s) => s.parse().ok(),
        }
    }
}

impl fmt::Display for IdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

impl From<i64> for IdValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<String> for IdValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for IdValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl FromJson for IdValue {
    const EXPECTED: &'static str = "an integer or a string";

    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError> {
        match value {
            Value::String(s) => Ok(Self::Text(s)),
            Value::Number(ref n) => n
                .as_i64()
                .map(Self::Int)
                .ok_or_else(|| wrong_type(path, Self::EXPECTED, &value)),
            other => Err(wrong_type(path, Self::EXPECTED, &other)),
        }
    }
}

impl Serialize for IdValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(n) => serializer.serialize_i64(*n),
            Self::Text(s) => serializer.serialize_str(s),
        }
    }
}

/// Implements `Deserialize` through `FromJson`, so serde users get the same checks.
macro_rules! deserialize_via_from_json {
    ($($ty:ty),* $(,)?) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                <$ty as FromJson>::from_json(value, &Path::Root).map_err(D::Error::custom)
            }
        }
    )*};
}

// ------------------------------------------------------------------------------------------------
// object_type and metric
// ------------------------------------------------------------------------------------------------

/// Declares a server-side string enum with an `Other(String)` catch-all that round-trips.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know, kept exactly as received. Build values with
            /// `From<&str>`, which never puts a known value here.
            Other(String),
        }

        impl $name {
            /// The wire string.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match Self::from(value.as_str()) {
                    Self::Other(_) => Self::Other(value),
                    known => known,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl FromJson for $name {
            const EXPECTED: &'static str = "a string";

            fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError> {
                String::from_json(value, path).map(Self::from)
            }
        }

        deserialize_via_from_json!($name);
    };
}

wire_enum! {
    /// What the event is about: a person (`customer`) or a message channel.
    ///
    /// Customer events caused by a message may carry the channel (e.g. `email`) here instead of
    /// `customer`, so match on the pair (`object_type`, [`Metric`]).
    pub enum ObjectType {
        /// `customer`: subscription changes of a person.
        Customer = "customer",
        /// `email`.
        Email = "email",
        /// `push`.
        Push = "push",
        /// `in_app`.
        InApp = "in_app",
        /// `sms`.
        Sms = "sms",
        /// `slack`.
        Slack = "slack",
        /// `webhook`: a campaign webhook action.
        Webhook = "webhook",
        /// `whatsapp`.
        Whatsapp = "whatsapp",
    }
}

wire_enum! {
    /// What happened. Which metrics each [`ObjectType`] can carry is listed in Customer.io's
    /// reporting-webhook documentation; this enum does not enforce the pairing.
    pub enum Metric {
        /// `drafted`: a message draft was created.
        Drafted = "drafted",
        /// `attempted`: a send was tried and will be retried.
        Attempted = "attempted",
        /// `sent`.
        Sent = "sent",
        /// `delivered`.
        Delivered = "delivered",
        /// `opened`.
        Opened = "opened",
        /// `clicked`: a tracked link was followed.
        Clicked = "clicked",
        /// `converted`: the person hit the campaign's conversion goal.
        Converted = "converted",
        /// `unsubscribed`.
        Unsubscribed = "unsubscribed",
        /// `subscribed` (customer events).
        Subscribed = "subscribed",
        /// `cio_subscription_preferences_changed` (customer events).
        SubscriptionPreferencesChanged = "cio_subscription_preferences_changed",
        /// `bounced`.
        Bounced = "bounced",
        /// `dropped`: not sent because the recipient is suppressed.
        Dropped = "dropped",
        /// `spammed`: the recipient marked the message as spam.
        Spammed = "spammed",
        /// `failed`.
        Failed = "failed",
        /// `undeliverable`: message limits, a cancelled newsletter, or delivery disabled.
        Undeliverable = "undeliverable",
        /// `replied` (SMS, WhatsApp).
        Replied = "replied",
    }
}

impl Metric {
    /// `true` for metrics that record something the recipient did with a message: `opened`,
    /// `clicked`, `converted`, `replied`, `spammed` and `unsubscribed`.
    ///
    /// Delivery states (`sent`, `delivered`, `bounced`, …) are not engagement. Opens flagged
    /// `prefetched`, `proxied` or `synthetic` and clicks flagged `machine` still count here; look
    /// at those flags to tell human engagement from mail-client automation.
    #[must_use]
    pub fn is_engagement(&self) -> bool {
        matches!(
            self,
            Self::Opened
                | Self::Clicked
                | Self::Converted
                | Self::Replied
                | Self::Spammed
                | Self::Unsubscribed
        )
    }
}

// ------------------------------------------------------------------------------------------------
// Objects whose keys are all optional
// ------------------------------------------------------------------------------------------------

/// Declares a payload object whose modelled keys are all optional ([`Field`]), plus its decoder
/// and serialiser. The JSON key is the field name.
macro_rules! optional_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Field<$ty>, )*
            /// Keys this version does not model, kept verbatim and written back once.
            pub extra: Map<String, Value>,
        }

        impl $name {
            /// The JSON keys this type models.
            const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl FromJson for $name {
            const EXPECTED: &'static str = "an object";

            fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError> {
                let mut reader = ObjectReader::new(value, path)?;
                $( let $field = reader.optional(stringify!($field))?; )*
                Ok(Self { $( $field, )* extra: reader.rest() })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                $(
                    if !self.$field.is_absent() {
                        map.serialize_entry(stringify!($field), &self.$field)?;
                    }
                )*
                serialize_extra(&mut map, &self.extra, Self::KEYS)?;
                map.end()
            }
        }

        deserialize_via_from_json!($name);
    };
}

optional_object! {
    /// `data.identifiers`: every identifier enabled in the workspace.
    pub struct Identifiers {
        /// The person's `id` (`null` when they have none).
        id: String,
        /// The person's email (`null` when they have none).
        email: String,
        /// Customer.io's immutable id (email+id workspaces), without the `cio_` prefix.
        cio_id: String,
        /// The phone number, when phone is an enabled identifier.
        phone: String,
    }
}

optional_object! {
    /// One entry of `data.recipients` on push events.
    pub struct PushRecipient {
        /// The device token.
        device_id: String,
        /// The device platform (`ios`, `android`, …).
        device_platform: String,
        /// Why delivery to this device failed.
        failure_message: String,
    }
}

optional_object! {
    /// The `data` object. Which keys appear depends on `object_type`, `metric` and the kind of
    /// send (campaign, broadcast, newsletter, transactional).
    pub struct EventData {
        /// Every identifier of the person; prefer this to `customer_id`.
        identifiers: Identifiers,
        /// Deprecated person id; blank when the person was deleted.
        customer_id: String,
        /// The person's email on `customer` events.
        email_address: String,
        /// The message delivery this event belongs to.
        delivery_id: String,
        /// Campaign (automation) the message came from.
        campaign_id: IdValue,
        /// The campaign, broadcast or newsletter step that sent the message.
        action_id: IdValue,
        /// The parent step, for messages sent by a nested action.
        parent_action_id: IdValue,
        /// The journey (one person's run through a campaign or broadcast).
        journey_id: String,
        /// The event that triggered the campaign, for event-triggered campaigns.
        trigger_event_id: String,
        /// API-triggered broadcast the message came from.
        broadcast_id: IdValue,
        /// The broadcast trigger (one API call that started the broadcast).
        trigger_id: IdValue,
        /// Newsletter (one-time send) the message came from.
        newsletter_id: IdValue,
        /// The newsletter variant (A/B test or language).
        content_id: IdValue,
        /// Transactional message template the message came from.
        transactional_message_id: IdValue,
        /// The message template.
        template_id: IdValue,
        /// Name of the campaign, when known.
        campaign_name: String,
        /// Tags of the campaign, when known.
        campaign_tags: Vec<String>,
        /// Name of the broadcast, when known.
        broadcast_name: String,
        /// Tags of the broadcast, when known.
        broadcast_tags: Vec<String>,
        /// Name of the newsletter, when known.
        newsletter_name: String,
        /// Tags of the newsletter, when known.
        newsletter_tags: Vec<String>,
        /// Address the message went to (email address, phone number, channel, URL).
        recipient: String,
        /// Email subject.
        subject: String,
        /// Why sending failed (attempted, bounced, dropped, failed, undeliverable).
        failure_message: String,
        /// Message body on `sent` when body content is switched on; on
        /// `cio_subscription_preferences_changed`, the new preferences as a JSON string.
        content: String,
        /// Email headers on `sent` when body content is switched on (shape kept as is).
        headers: Value,
        /// Opened: the open was fetched through a privacy proxy.
        proxied: bool,
        /// Opened: the open was a mail client's prefetch, not a person.
        prefetched: bool,
        /// Opened: the open was inferred (e.g. from a click) rather than seen.
        synthetic: bool,
        /// Clicked: the link target.
        href: String,
        /// Clicked: which tracked link in the message.
        link_id: IdValue,
        /// Clicked: the click looks automated (link scanners).
        machine: bool,
        /// Push: the devices the message went to.
        recipients: Vec<PushRecipient>,
        /// Push: the app the message was sent through.
        app_id: IdValue,
        /// Push: other deliveries of the same send.
        related_delivery_ids: Vec<String>,
        /// In-app clicked: the tracked response the person chose.
        tracked_response: String,
        /// Replied: the inbound message event.
        inbound_event_id: String,
        /// Replied: the number the reply was sent to.
        to: String,
    }
}

// ------------------------------------------------------------------------------------------------
// The event
// ------------------------------------------------------------------------------------------------

/// One reporting-webhook event: the whole body of one POST.
///
/// ```
/// use customerio_client::webhook::{Metric, ObjectType, ReportingEvent};
///
/// let body = br#"{
///   "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
///   "object_type": "email",
///   "metric": "clicked",
///   "timestamp": 1717173000,
///   "data": {
///     "identifiers": {"id": "user-42", "email": "ada@example.com"},
///     "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
///     "campaign_id": 5,
///     "href": "https://example.com/upgrade",
///     "link_id": 3,
///     "shiny_new_field": true
///   }
/// }"#;
/// let event = ReportingEvent::from_slice(body)?;
/// assert_eq!(event.object_type, ObjectType::Email);
/// assert_eq!(event.metric, Metric::Clicked);
/// assert!(event.is_engagement());
/// assert_eq!(event.delivery_id(), Some("RPILAgUBcRhIBqSfeiIwdIYJKxTY"));
/// assert_eq!(event.person_identifiers().id, Some("user-42"));
/// assert_eq!(event.data.href.get().map(String::as_str), Some("https://example.com/upgrade"));
///
/// // Unknown keys survive a round trip.
/// let original: serde_json::Value = serde_json::from_slice(body)?;
/// assert_eq!(serde_json::to_value(&event)?, original);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReportingEvent {
    /// Unique per event and stable across Customer.io's retries: the de-duplication key.
    pub event_id: String,
    /// What the event is about.
    pub object_type: ObjectType,
    /// What happened.
    pub metric: Metric,
    /// When it happened, in Unix seconds.
    pub timestamp: i64,
    /// The event's details.
    pub data: EventData,
    /// Top-level keys this version does not model, kept verbatim and written back once.
    pub extra: Map<String, Value>,
}

impl ReportingEvent {
    const KEYS: &'static [&'static str] =
        &["event_id", "object_type", "metric", "timestamp", "data"];

    /// Builds an event from its parts, with no unknown top-level keys.
    #[must_use]
    pub fn new(
        event_id: impl Into<String>,
        object_type: ObjectType,
        metric: Metric,
        timestamp: i64,
        data: EventData,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            object_type,
            metric,
            timestamp,
            data,
            extra: Map::new(),
        }
    }

    /// Decodes a request body, exactly as received.
    ///
    /// # Errors
    ///
    /// [`PayloadError::Syntax`] if the body is not JSON; otherwise an error naming the JSON path
    /// of the first missing, empty or mistyped key.
    pub fn from_slice(body: &[u8]) -> Result<Self, PayloadError> {
        let value: Value = serde_json::from_slice(body).map_err(|source| PayloadError::Syntax {
            line: source.line(),
            column: source.column(),
            source,
        })?;
        Self::from_value(value)
    }

    /// Decodes an already-parsed JSON value.
    ///
    /// # Errors
    ///
    /// As [`from_slice`](Self::from_slice), without the syntax error.
    pub fn from_value(value: Value) -> Result<Self, PayloadError> {
        <Self as FromJson>::from_json(value, &Path::Root)
    }

    /// The person the event is about.
    ///
    /// Read from `data.identifiers`; blank values count as absent. Two fallbacks cover
    /// payloads without `identifiers`: the deprecated `data.customer_id` for the id, and
    /// `data.email_address` (customer events) for the email. `data.recipient` is never used as
    /// the person's email, because a message can be sent to an address other than the
    /// person's own.
    #[must_use]
    pub fn person_identifiers(&self) -> PersonIdentifiers<'_> {
        let ids = self.data.identifiers.get();
        let from_ids =
            |pick: fn(&Identifiers) -> &Field<String>| ids.and_then(|i| pick(i).non_empty());
        PersonIdentifiers {
            id: from_ids(|i| &i.id).or_else(|| self.data.customer_id.non_empty()),
            email: from_ids(|i| &i.email).or_else(|| self.data.email_address.non_empty()),
            cio_id: from_ids(|i| &i.cio_id),
            phone: from_ids(|i| &i.phone),
        }
    }

    /// `true` when a recipient acted on a message: an [engagement metric](Metric::is_engagement)
    /// on any object type other than `customer`.
    #[must_use]
    pub fn is_engagement(&self) -> bool {
        self.object_type != ObjectType::Customer && self.metric.is_engagement()
    }

    /// The message delivery this event belongs to, if any (message events carry one, customer
    /// events usually do not).
    #[must_use]
    pub fn delivery_id(&self) -> Option<&str> {
        self.data.delivery_id.non_empty()
    }

    /// When the event happened, or `None` if `timestamp` is outside what [`SystemTime`] can
    /// hold on this platform.
    #[must_use]
    pub fn occurred_at(&self) -> Option<SystemTime> {
        let magnitude = Duration::from_secs(self.timestamp.unsigned_abs());
        if self.timestamp >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        }
    }

    /// Which kind of send produced the message, read from the first of `campaign_id`,
    /// `broadcast_id`, `newsletter_id` and `transactional_message_id` that is present (even if
    /// `null`). `None` for events not tied to a send.
    #[must_use]
    pub fn message_source(&self) -> Option<MessageSource<'_>> {
        let data = &self.data;
        if !data.campaign_id.is_absent() {
            Some(MessageSource::Campaign(data.campaign_id.get()))
        } else if !data.broadcast_id.is_absent() {
            Some(MessageSource::Broadcast(data.broadcast_id.get()))
        } else if !data.newsletter_id.is_absent() {
            Some(MessageSource::Newsletter(data.newsletter_id.get()))
        } else if !data.transactional_message_id.is_absent() {
            Some(MessageSource::Transactional(
                data.transactional_message_id.get(),
            ))
        } else {
            None
        }
    }
}

impl FromJson for ReportingEvent {
    const EXPECTED: &'static str = "an object";

    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, PayloadError> {
        let mut reader = ObjectReader::new(value, path)?;
        let event_id = reader.non_empty_string("event_id")?;
        let object_type = ObjectType::from(reader.non_empty_string("object_type")?);
        let metric = Metric::from(reader.non_empty_string("metric")?);
        let timestamp = reader.required("timestamp")?;
        let data = reader.required("data")?;
        Ok(Self {
            event_id,
            object_type,
            metric,
            timestamp,
            data,
            extra: reader.rest(),
        })
    }
}

impl Serialize for ReportingEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("event_id", &self.event_id)?;
        map.serialize_entry("object_type", &self.object_type)?;
        map.serialize_entry("metric", &self.metric)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("data", &self.data)?;
        serialize_extra(&mut map, &self.extra, Self::KEYS)?;
        map.end()
    }
}

deserialize_via_from_json!(ReportingEvent, IdValue);

/// The person an event is about, as borrowed, non-blank identifier strings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PersonIdentifiers<'a> {
    /// The person's `id`.
    pub id: Option<&'a str>,
    /// The person's email.
    pub email: Option<&'a str>,
    /// Customer.io's `cio_id`, without the `cio_` prefix.
    pub cio_id: Option<&'a str>,
    /// The person's phone number.
    pub phone: Option<&'a str>,
}

impl PersonIdentifiers<'_> {
    /// `true` when no identifier is known (for example, the person was deleted).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.email.is_none() && self.cio_id.is_none() && self.phone.is_none()
    }
}

/// The kind of send a message came from, with its id (`None` when the payload had `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageSource<'a> {
    /// A campaign (automation): `campaign_id`.
    Campaign(Option<&'a IdValue>),
    /// An API-triggered broadcast: `broadcast_id`.
    Broadcast(Option<&'a IdValue>),
    /// A newsletter (one-time send): `newsletter_id`.
    Newsletter(Option<&'a IdValue>),
    /// A transactional message: `transactional_message_id`.
    Transactional(Option<&'a IdValue>),
}

impl<'a> MessageSource<'a> {
    /// The id of the campaign, broadcast, newsletter or transactional message.
    #[must_use]
    pub fn id(&self) -> Option<&'a IdValue> {
        match *self {
            Self::Campaign(id)
            | Self::Broadcast(id)
            | Self::Newsletter(id)
            | Self::Transactional(id) => id,
        }
    }
}
