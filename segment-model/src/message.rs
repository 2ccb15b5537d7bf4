//! [`Message`]: the Segment calls, tagged by `type`, with one shared envelope ([`Common`]).
//!
//! # Decoding
//!
//! [`Message::from_slice`], [`Message::from_str`] and [`Message::from_value`] read the `type` key
//! first and decode the call it names; there is no guessing from the other keys. A missing
//! `type`, a non-string `type` and an unknown `type` are three distinct [`Error`] variants.
//! Every other decode error names the JSON path of the value at fault (`traits`,
//! `context.device`, `properties`).
//!
//! # Lossless round-trips
//!
//! Serialising a decoded message gives back the same JSON value: keys this crate does not
//! model live in [`Common::extra`] and are written back exactly once; an absent key stays
//! absent; a modelled key sent as `null` is kept in `extra` as `null` (its typed field stays
//! `None`), so it is written back as `null`. When a typed field is set it always wins over an
//! `extra` entry of the same name, so no key is ever written twice.
//!
//! ```
//! use segment_model::{Message, MessageKind};
//!
//! let raw = serde_json::json!({
//!     "type": "track",
//!     "userId": 42,
//!     "event": "Report Exported",
//!     "properties": {"format": "csv"},
//!     "timestamp": "2024-05-01T10:15:30.123+00:00",
//!     "someVendorKey": {"kept": true}
//! });
//! let msg = Message::from_value(raw.clone())?;
//! assert_eq!(msg.kind(), MessageKind::Track);
//! assert_eq!(msg.user_id().map(|id| id.as_str()).as_deref(), Some("42"));
//! assert_eq!(serde_json::to_value(&msg)?, raw);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::context::Context;
use crate::error::decode::{self, FromJson, Path, json_object};
use crate::error::{Error, JsonType};
use crate::integrations::Integrations;
use crate::reserved::{Properties, Traits};
use crate::timestamp::Timestamp;

// ---------------------------------------------------------------------------------------------
// Small value types
// ---------------------------------------------------------------------------------------------

/// A user, anonymous, group or previous id, kept in the JSON form it arrived in.
///
/// Real traffic carries numeric ids (`"userId": 42`); an [`Id`] remembers whether it was a
/// string or a number so serialising writes back the same JSON. Use [`Id::as_str`] to get a
/// string key regardless of the representation. Equality is representation-sensitive: the
/// string `"42"` and the number `42` are different [`Id`]s but have the same `as_str()`.
///
/// ```
/// use segment_model::Id;
///
/// let id: Id = serde_json::from_str("42")?;
/// assert_eq!(id.as_str(), "42");
/// assert_eq!(serde_json::to_string(&id)?, "42");
/// assert_eq!(Id::from("usr_1").as_str(), "usr_1");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Id {
    /// A JSON string id.
    String(String),
    /// A JSON number id.
    Number(Number),
}

impl Id {
    /// The id as text: the string itself, or the number's JSON spelling.
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            Id::String(s) => Cow::Borrowed(s),
            Id::Number(n) => Cow::Owned(n.to_string()),
        }
    }

    /// `true` for the empty string. Numbers are never empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Id::String(s) if s.is_empty())
    }

    /// Length of [`Id::as_str`] in characters.
    pub fn char_len(&self) -> usize {
        match self {
            Id::String(s) => s.chars().count(),
            Id::Number(n) => n.to_string().len(),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::String(s) => f.write_str(s),
            Id::Number(n) => fmt::Display::fmt(n, f),
        }
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id::String(s)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::String(s.to_owned())
    }
}

impl From<&String> for Id {
    fn from(s: &String) -> Self {
        Id::String(s.clone())
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Self {
        Id::Number(n.into())
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Number(n.into())
    }
}

impl From<u32> for Id {
    fn from(n: u32) -> Self {
        Id::Number(n.into())
    }
}

impl From<i32> for Id {
    fn from(n: i32) -> Self {
        Id::Number(n.into())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::String(s) => serializer.serialize_str(s),
            Id::Number(n) => n.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Id::from_json(value, &Path::Root).map_err(serde::de::Error::custom)
    }
}

impl FromJson for Id {
    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
        match value {
            Value::String(s) => Ok(Id::String(s)),
            Value::Number(n) => Ok(Id::Number(n)),
            other => Err(path.wrong_type("a string or a number", &other)),
        }
    }

    fn accepts(value: &Value) -> bool {
        value.is_string() || value.is_number()
    }
}

/// A value Segment documents as "number or string", kept as sent: `version`,
/// `context.location.latitude` / `longitude`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NumberOrString {
    /// Sent as a JSON number.
    Number(Number),
    /// Sent as a JSON string.
    String(String),
}

impl NumberOrString {
    /// The value as an `f64`: the number itself, or the string parsed as a decimal.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            NumberOrString::Number(n) => n.as_f64(),
            NumberOrString::String(s) => s.trim().parse().ok(),
        }
    }
}

impl fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberOrString::Number(n) => fmt::Display::fmt(n, f),
            NumberOrString::String(s) => f.write_str(s),
        }
    }
}

impl From<&str> for NumberOrString {
    fn from(s: &str) -> Self {
        NumberOrString::String(s.to_owned())
    }
}

impl From<u64> for NumberOrString {
    fn from(n: u64) -> Self {
        NumberOrString::Number(n.into())
    }
}

impl Serialize for NumberOrString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NumberOrString::Number(n) => n.serialize(serializer),
            NumberOrString::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for NumberOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        NumberOrString::from_json(value, &Path::Root).map_err(serde::de::Error::custom)
    }
}

impl FromJson for NumberOrString {
    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
        match value {
            Value::String(s) => Ok(NumberOrString::String(s)),
            Value::Number(n) => Ok(NumberOrString::Number(n)),
            other => Err(path.wrong_type("a number or a string", &other)),
        }
    }

    fn accepts(value: &Value) -> bool {
        value.is_string() || value.is_number()
    }
}

/// A Segment source write key. `Debug` and `Display` never show it.
///
/// It serialises as the plain string, because that is what the wire needs; use
/// [`WriteKey::expose`] when you need the text yourself.
///
/// ```
/// use segment_model::WriteKey;
///
/// let key = WriteKey::new("wk_live_abc");
/// assert_eq!(format!("{key:?}"), "WriteKey(<redacted>)");
/// assert_eq!(key.to_string(), "<redacted>");
/// assert_eq!(key.expose(), "wk_live_abc");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WriteKey(String);

impl WriteKey {
    /// Wraps a write key.
    pub fn new(key: impl Into<String>) -> Self {
        WriteKey(key.into())
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WriteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteKey(<redacted>)")
    }
}

impl fmt::Display for WriteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for WriteKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WriteKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(WriteKey)
    }
}

impl FromJson for WriteKey {
    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
        String::from_json(value, path).map(WriteKey)
    }

    fn accepts(value: &Value) -> bool {
        value.is_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The shared envelope
// ---------------------------------------------------------------------------------------------

json_object! {
    mode = strict;
    /// The envelope fields every call shares (Segment spec, common fields).
    ///
    /// Keys no call models (and modelled keys sent as `null`) are in [`Common::extra`].
    pub struct Common {
        /// `messageId`: the unique id Segment de-duplicates on (at most 100 characters).
        message_id: String => "messageId",
        /// `anonymousId`: the pseudonymous id of a not-yet-known user.
        anonymous_id: Id => "anonymousId",
        /// `userId`: your stable id for the user.
        user_id: Id => "userId",
        /// `timestamp`: when the event happened (skew-corrected in delivered payloads).
        timestamp: Timestamp => "timestamp",
        /// `originalTimestamp`: the client clock when the call was made.
        original_timestamp: Timestamp => "originalTimestamp",
        /// `sentAt`: the client clock when the request was sent.
        sent_at: Timestamp => "sentAt",
        /// `receivedAt`: Segment's clock at ingestion.
        received_at: Timestamp => "receivedAt",
        /// `context`: typed standard context fields.
        context: Context => "context",
        /// `integrations`: per-destination routing.
        integrations: Integrations => "integrations",
        /// `version`: Tracking API version, a number or a string as sent.
        version: NumberOrString => "version",
        /// `channel`: where the call came from (`server`, `browser`, ...), top-level form.
        channel: String => "channel",
        /// `projectId`: the source id in delivered payloads.
        project_id: String => "projectId",
        /// `writeKey`: the source write key when sent in the body.
        write_key: WriteKey => "writeKey",
        /// `_metadata`: SDK bookkeeping, kept as sent.
        metadata: Map<String, Value> => "_metadata",
    }
}

impl Common {
    /// The channel, from the top level or, failing that, from `context.channel`.
    pub fn effective_channel(&self) -> Option<&str> {
        self.channel
            .as_deref()
            .or_else(|| self.context.as_ref().and_then(|c| c.channel.as_deref()))
    }
}

// ---------------------------------------------------------------------------------------------
// Message kinds
// ---------------------------------------------------------------------------------------------

/// The value of a message's `type` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MessageKind {
    /// `identify`.
    Identify,
    /// `track`.
    Track,
    /// `page`.
    Page,
    /// `screen`.
    Screen,
    /// `group`.
    Group,
    /// `alias`.
    Alias,
    /// `delete`: a user-deletion notification from a Webhooks destination.
    Delete,
}

impl MessageKind {
    /// Every kind, in declaration order.
    pub const ALL: [MessageKind; 7] = [
        MessageKind::Identify,
        MessageKind::Track,
        MessageKind::Page,
        MessageKind::Screen,
        MessageKind::Group,
        MessageKind::Alias,
        MessageKind::Delete,
    ];

    /// The wire spelling of this kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Identify => "identify",
            MessageKind::Track => "track",
            MessageKind::Page => "page",
            MessageKind::Screen => "screen",
            MessageKind::Group => "group",
            MessageKind::Alias => "alias",
            MessageKind::Delete => "delete",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageKind {
    type Err = Error;

    /// Parses the exact, lowercase wire spelling.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| Error::UnknownType {
                found: s.chars().take(64).collect(),
            })
    }
}

impl Serialize for MessageKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Per-call structs
// ---------------------------------------------------------------------------------------------

/// Generates a call struct: its own fields (strictly typed) plus the shared [`Common`].
macro_rules! call_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $kind:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty => $key:literal,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: Option<$ty>,
            )*
            /// The envelope fields shared by every call, and the keys nothing models.
            pub common: Common,
        }

        impl $name {
            /// The JSON keys this call adds to the envelope.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Decodes the call from an object whose `type` key was already removed.
            #[allow(unused_mut)]
            pub(crate) fn from_map(
                mut map: Map<String, Value>,
                path: &Path<'_>,
            ) -> Result<Self, Error> {
                $(
                    let $field = decode::take_strict(&mut map, $key, path)?;
                )*
                Ok(Self {
                    $($field,)*
                    common: Common::from_map(map, path)?,
                })
            }

            /// `true` when the typed field for `key` (call or envelope) holds a value.
            #[allow(unreachable_patterns)]
            pub(crate) fn is_set(&self, key: &str) -> bool {
                match key {
                    $($key => self.$field.is_some(),)*
                    _ => self.common.is_set(key),
                }
            }

            pub(crate) fn serialize_body<M: serde::ser::SerializeMap>(
                &self,
                map: &mut M,
            ) -> Result<(), M::Error> {
                map.serialize_entry("type", MessageKind::$kind.as_str())?;
                $(
                    if let Some(value) = &self.$field {
                        map.serialize_entry($key, value)?;
                    }
                )*
                self.common.serialize_fields(map)?;
                decode::serialize_extra(map, &self.common.extra, |key| {
                    key == "type" || self.is_set(key)
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                self.serialize_body(&mut map)?;
                map.end()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                match Message::from_value_implied(value, MessageKind::$kind) {
                    Ok(Message::$kind(call)) => Ok(call),
                    Ok(_) => Err(serde::de::Error::custom("unexpected message type")),
                    Err(err) => Err(serde::de::Error::custom(err)),
                }
            }
        }

        impl From<$name> for Message {
            fn from(call: $name) -> Self {
                Message::$kind(call)
            }
        }
    };
}

call_struct! {
    /// An `identify` call: who the user is and their traits.
    pub struct Identify = Identify {
        /// `traits`: the user's traits.
        traits: Traits => "traits",
    }
}

call_struct! {
    /// A `track` call: an action the user performed.
    pub struct Track = Track {
        /// `event`: the event name, e.g. `Order Completed`.
        event: String => "event",
        /// `properties`: the event's properties.
        properties: Properties => "properties",
    }
}

call_struct! {
    /// A `page` call: a web page view.
    pub struct Page = Page {
        /// `name`: the page name.
        name: String => "name",
        /// `category`: the page category.
        category: String => "category",
        /// `properties`: the page's properties (`url`, `path`, `title`, ...).
        properties: Properties => "properties",
    }
}

call_struct! {
    /// A `screen` call: a mobile screen view.
    pub struct Screen = Screen {
        /// `name`: the screen name.
        name: String => "name",
        /// `category`: the screen category (sent by analytics-next).
        category: String => "category",
        /// `properties`: the screen's properties.
        properties: Properties => "properties",
    }
}

call_struct! {
    /// A `group` call: associates a user with an account.
    pub struct Group = Group {
        /// `groupId`: the account id.
        group_id: Id => "groupId",
        /// `traits`: the account's traits.
        traits: Traits => "traits",
    }
}

call_struct! {
    /// An `alias` call: `previousId` is another id of the user `userId`.
    pub struct Alias = Alias {
        /// `previousId`: the user's earlier id (often the anonymous id).
        previous_id: Id => "previousId",
    }
}

call_struct! {
    /// A `delete` notification: Segment's Webhooks destinations send it when a user-deletion
    /// request is filed for the source. It carries `userId` and `timestamp` in the envelope.
    pub struct Delete = Delete {
    }
}

// ---------------------------------------------------------------------------------------------
// Message
// ---------------------------------------------------------------------------------------------

/// One Segment message, tagged by its `type` key.
///
/// See the [module documentation](self) for decoding and round-trip rules.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// `identify`.
    Identify(Identify),
    /// `track`.
    Track(Track),
    /// `page`.
    Page(Page),
    /// `screen`.
    Screen(Screen),
    /// `group`.
    Group(Group),
    /// `alias`.
    Alias(Alias),
    /// `delete`.
    Delete(Delete),
}

/// Applies `$body` to the call inside any variant.
macro_rules! with_call {
    ($msg:expr, $call:ident => $body:expr) => {
        match $msg {
            Message::Identify($call) => $body,
            Message::Track($call) => $body,
            Message::Page($call) => $body,
            Message::Screen($call) => $body,
            Message::Group($call) => $body,
            Message::Alias($call) => $body,
            Message::Delete($call) => $body,
        }
    };
}

impl Message {
    /// Decodes a message from JSON bytes.
    ///
    /// ```
    /// use segment_model::{Error, Message};
    ///
    /// let msg = Message::from_slice(br#"{"type":"alias","previousId":"anon-1","userId":"u1"}"#)?;
    /// assert_eq!(msg.kind().as_str(), "alias");
    ///
    /// let err = Message::from_slice(br#"{"type":"launch","userId":"u1"}"#).unwrap_err();
    /// assert!(matches!(err, Error::UnknownType { ref found } if found == "launch"));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let value: Value = serde_json::from_slice(bytes).map_err(Error::from_json)?;
        Self::from_value(value)
    }

    /// Decodes a message from a JSON string. See [`Message::from_slice`].
    #[allow(clippy::should_implement_trait)] // Also implemented; this inherent form is the documented entry point.
    pub fn from_str(text: &str) -> Result<Self, Error> {
        Self::from_slice(text.as_bytes())
    }

    /// Decodes a message from a JSON value. The `type` key is required.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        Self::decode(value, None, &Path::Root)
    }

    /// Decodes JSON bytes with an implied `type`. See [`Message::from_value_implied`].
    pub fn from_slice_implied(bytes: &[u8], implied: MessageKind) -> Result<Self, Error> {
        let value: Value = serde_json::from_slice(bytes).map_err(Error::from_json)?;
        Self::from_value_implied(value, implied)
    }

    /// Decodes a message whose `type` may be omitted because the endpoint implies it (the
    /// single-call Tracking API paths such as `/v1/track`).
    ///
    /// When `type` is present it must equal `implied` ([`Error::TypeMismatch`] otherwise).
    /// The decoded message always carries a kind, so serialising it writes `type` even when
    /// the input had none.
    pub fn from_value_implied(value: Value, implied: MessageKind) -> Result<Self, Error> {
        Self::decode(value, Some(implied), &Path::Root)
    }

    pub(crate) fn decode(
        value: Value,
        implied: Option<MessageKind>,
        path: &Path<'_>,
    ) -> Result<Self, Error> {
        let mut map = decode::expect_object(value, path)?;
        let kind = match (map.remove("type"), implied) {
            (None, Some(implied)) => implied,
            (None, None) => return Err(Error::MissingType),
            (Some(Value::String(tag)), implied) => {
                let kind: MessageKind = tag.parse()?;
                match implied {
                    Some(expected) if expected != kind => {
                        return Err(Error::TypeMismatch {
                            expected,
                            found: kind,
                        });
                    }
                    _ => kind,
                }
            }
            (Some(other), _) => {
                return Err(Error::TypeNotString {
                    found: JsonType::of(&other),
                });
            }
        };
        Ok(match kind {
            MessageKind::Identify => Message::Identify(Identify::from_map(map, path)?),
            MessageKind::Track => Message::Track(Track::from_map(map, path)?),
            MessageKind::Page => Message::Page(Page::from_map(map, path)?),
            MessageKind::Screen => Message::Screen(Screen::from_map(map, path)?),
            MessageKind::Group => Message::Group(Group::from_map(map, path)?),
            MessageKind::Alias => Message::Alias(Alias::from_map(map, path)?),
            MessageKind::Delete => Message::Delete(Delete::from_map(map, path)?),
        })
    }

    /// The message's kind (its `type`).
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Identify(_) => MessageKind::Identify,
            Message::Track(_) => MessageKind::Track,
            Message::Page(_) => MessageKind::Page,
            Message::Screen(_) => MessageKind::Screen,
            Message::Group(_) => MessageKind::Group,
            Message::Alias(_) => MessageKind::Alias,
            Message::Delete(_) => MessageKind::Delete,
        }
    }

    /// The envelope fields.
    pub fn common(&self) -> &Common {
        with_call!(self, call => &call.common)
    }

    /// The envelope fields, mutably.
    pub fn common_mut(&mut self) -> &mut Common {
        with_call!(self, call => &mut call.common)
    }

    /// `messageId`.
    pub fn message_id(&self) -> Option<&str> {
        self.common().message_id.as_deref()
    }

    /// Returns `messageId`, first setting it to a new UUID v4 if the message has none.
    ///
    /// Call it once when an event enters your system, before any send or retry, so every
    /// attempt carries the same id and Segment can de-duplicate.
    ///
    /// ```
    /// use segment_model::Message;
    ///
    /// let mut msg = Message::from_str(r#"{"type":"track","userId":"u","event":"E"}"#)?;
    /// let id = msg.ensure_message_id().to_owned();
    /// assert_eq!(msg.ensure_message_id(), id); // stable once set
    /// # Ok::<(), segment_model::Error>(())
    /// ```
    pub fn ensure_message_id(&mut self) -> &str {
        self.common_mut()
            .message_id
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
    }

    /// `userId`.
    pub fn user_id(&self) -> Option<&Id> {
        self.common().user_id.as_ref()
    }

    /// `anonymousId`.
    pub fn anonymous_id(&self) -> Option<&Id> {
        self.common().anonymous_id.as_ref()
    }

    /// `timestamp`.
    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.common().timestamp.as_ref()
    }

    /// `context`.
    pub fn context(&self) -> Option<&Context> {
        self.common().context.as_ref()
    }

    /// `integrations`.
    pub fn integrations(&self) -> Option<&Integrations> {
        self.common().integrations.as_ref()
    }

    /// `event`, for a track call.
    pub fn event(&self) -> Option<&str> {
        match self {
            Message::Track(track) => track.event.as_deref(),
            _ => None,
        }
    }

    /// `traits` of an identify or group call (not `context.traits`).
    pub fn traits(&self) -> Option<&Traits> {
        match self {
            Message::Identify(call) => call.traits.as_ref(),
            Message::Group(call) => call.traits.as_ref(),
            _ => None,
        }
    }

    /// `properties` of a track, page or screen call.
    pub fn properties(&self) -> Option<&Properties> {
        match self {
            Message::Track(call) => call.properties.as_ref(),
            Message::Page(call) => call.properties.as_ref(),
            Message::Screen(call) => call.properties.as_ref(),
            _ => None,
        }
    }
}

impl FromStr for Message {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Message::from_slice(s.as_bytes())
    }
}

impl TryFrom<Value> for Message {
    type Error = Error;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Message::from_value(value)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        with_call!(self, call => call.serialize_body(&mut map))?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Message::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl FromJson for Message {
    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
        Message::decode(value, None, path)
    }

    fn accepts(value: &Value) -> bool {
        value.is_object()
    }
}
