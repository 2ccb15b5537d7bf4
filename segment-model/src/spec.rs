//! The semantic specs this project uses, typed.
//!
//! - [`EmailEvent`] and [`EmailProperties`]: Segment's Email spec (six events, string
//!   properties), used to write Customer.io engagement back into Segment.
//! - [`PushEvent`], [`PushProperties`]: the campaign events of the Native Mobile spec.
//! - [`LifecycleEvent`]: the reserved `track` names that stand for an operation rather than a
//!   plain event (device registration, user deletion and suppression, object and relationship
//!   deletion, delivery and content reports). Recognising them lets a mapping route them to the
//!   matching operation instead of forwarding them as ordinary events.
//!
//! Event names are matched exactly (Segment names are case-sensitive). Property structs are
//! lossless: a documented key holding a value of another type (a numeric `campaign_id`, a
//! `null`) is left in `extra` untouched, and every unknown key is kept there too, so converting
//! properties to the typed struct and back gives the same JSON.
//!
//! ```
//! use segment_model::spec::{EmailEvent, EmailProperties, EmailSpecEvent, recipient_context};
//!
//! let message = EmailEvent::LinkClicked
//!     .track(EmailProperties {
//!         email_id: Some("dlv_7Hq2".into()),
//!         campaign_id: Some("311".into()),
//!         link_url: Some("https://app.example.com/reports/may".into()),
//!         ..EmailProperties::default()
//!     })
//!     .user_id("usr_48151623")
//!     .context(recipient_context("lena.fischer@example.org"))
//!     .build()?;
//! assert_eq!(message.event(), Some("Email Link Clicked"));
//!
//! let parsed = EmailSpecEvent::from_message(&message).expect("an Email spec event");
//! assert_eq!(parsed.event, EmailEvent::LinkClicked);
//! assert_eq!(parsed.properties.campaign_id.as_deref(), Some("311"));
//! assert_eq!(parsed.recipient.as_deref(), Some("lena.fischer@example.org"));
//! # Ok::<(), segment_model::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::builder::TrackBuilder;
use crate::context::Context;
use crate::message::Message;
use crate::reserved::{Properties, Traits};

/// A name that is not one of the names of the enum it was parsed as.
///
/// `Display` and `Debug` give the name's length, not the name: event names usually are
/// vocabulary, but the string parsed may be anything a caller holds (a misplaced trait, a
/// name typed by a person), and error messages end up in logs.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a known {family} event name ({} characters, not shown)",
    name.chars().count()
)]
pub struct UnknownEventName {
    /// Which family of names was expected (`Email spec`, `push`, `lifecycle`).
    pub family: &'static str,
    /// The name that was given.
    pub name: String,
}

impl fmt::Debug for UnknownEventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnknownEventName")
            .field("family", &self.family)
            .field(
                "name",
                &format_args!("<{} characters>", self.name.chars().count()),
            )
            .finish()
    }
}

/// Defines an enum of event names with `as_str`, `Display`, `FromStr` and string serde.
macro_rules! event_names {
    (
        family = $family:literal;
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )*
        }
        aliases { $( $alias:literal => $avariant:ident, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every name, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The event name as Segment writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }

            /// Recognises an event name (exact, case-sensitive); `None` for any other name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)*
                    $($alias => Some(Self::$avariant),)*
                    _ => None,
                }
            }

            /// Recognises the event name of a `track` message; `None` for other messages and
            /// names.
            pub fn from_message(message: &Message) -> Option<Self> {
                match message {
                    Message::Track(track) => track.event.as_deref().and_then(Self::from_name),
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownEventName;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                Self::from_name(name).ok_or_else(|| UnknownEventName {
                    family: $family,
                    name: name.to_owned(),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

event_names! {
    family = "Email spec";
    /// The six events of Segment's Email spec.
    ///
    /// [`EmailEvent::from_name`] also accepts `Email Unsubscribed`, the name the Customer.io
    /// source and Engage use for [`EmailEvent::Unsubscribed`]; [`EmailEvent::as_str`] always
    /// gives the spec name (`Unsubscribed`).
    pub enum EmailEvent {
        /// `Email Bounced`: the receiving server reported the message undeliverable.
        Bounced => "Email Bounced",
        /// `Email Delivered`: the receiving server confirmed receipt.
        Delivered => "Email Delivered",
        /// `Email Link Clicked`: the recipient clicked a link in the body.
        LinkClicked => "Email Link Clicked",
        /// `Email Marked as Spam`: the recipient marked the message as spam.
        MarkedAsSpam => "Email Marked as Spam",
        /// `Email Opened`: the recipient opened the message.
        Opened => "Email Opened",
        /// `Unsubscribed`: the recipient unsubscribed (from a list or globally).
        Unsubscribed => "Unsubscribed",
    }
    aliases {
        "Email Unsubscribed" => Unsubscribed,
    }
}

event_names! {
    family = "push";
    /// The campaign events of Segment's Native Mobile spec (push notifications and deep links).
    pub enum PushEvent {
        /// `Install Attributed`.
        InstallAttributed => "Install Attributed",
        /// `Push Notification Received`.
        PushNotificationReceived => "Push Notification Received",
        /// `Push Notification Tapped`.
        PushNotificationTapped => "Push Notification Tapped",
        /// `Push Notification Bounced`.
        PushNotificationBounced => "Push Notification Bounced",
        /// `Deep Link Opened`.
        DeepLinkOpened => "Deep Link Opened",
        /// `Deep Link Clicked`.
        DeepLinkClicked => "Deep Link Clicked",
    }
    aliases {}
}

event_names! {
    family = "lifecycle";
    /// Reserved `track` names that stand for an operation on the destination rather than a
    /// plain event.
    pub enum LifecycleEvent {
        /// `Application Installed`: registers the device in `context.device`.
        ApplicationInstalled => "Application Installed",
        /// `Application Opened`: registers (refreshes) the device in `context.device`.
        ApplicationOpened => "Application Opened",
        /// `Application Uninstalled`: removes the device in `context.device`.
        ApplicationUninstalled => "Application Uninstalled",
        /// `Device Created or Updated`: registers the device in `context.device`.
        DeviceCreatedOrUpdated => "Device Created or Updated",
        /// `Device Deleted`: removes the device in `context.device`.
        DeviceDeleted => "Device Deleted",
        /// `User Deleted`: deletes the person.
        UserDeleted => "User Deleted",
        /// `User Suppressed`: suppresses the person.
        UserSuppressed => "User Suppressed",
        /// `User Unsuppressed`: lifts the suppression.
        UserUnsuppressed => "User Unsuppressed",
        /// `Object Deleted`: deletes an object (group).
        ObjectDeleted => "Object Deleted",
        /// `Relationship Deleted`: removes a person-object relationship.
        RelationshipDeleted => "Relationship Deleted",
        /// `Report Delivery Event`: reports a delivery metric for a message.
        ReportDeliveryEvent => "Report Delivery Event",
        /// `Report Content Event`: reports a content view or click.
        ReportContentEvent => "Report Content Event",
    }
    aliases {}
}

/// What a device lifecycle event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceAction {
    /// Register or refresh the device.
    Upsert,
    /// Remove the device.
    Delete,
}

impl LifecycleEvent {
    /// The device operation this event stands for, if it is a device event.
    pub fn device_action(self) -> Option<DeviceAction> {
        match self {
            Self::ApplicationInstalled | Self::ApplicationOpened | Self::DeviceCreatedOrUpdated => {
                Some(DeviceAction::Upsert)
            }
            Self::ApplicationUninstalled | Self::DeviceDeleted => Some(DeviceAction::Delete),
            _ => None,
        }
    }
}

/// Moves the string value of `key` out of `map`; any other value stays in `map`.
fn take_string(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key) {
        Some(Value::String(_)) => match map.remove(key) {
            Some(Value::String(s)) => Some(s),
            // Just checked that the value is a string; nothing else can come out.
            _ => None,
        },
        _ => None,
    }
}

/// Defines a lossless struct of optional string properties plus `extra`.
macro_rules! string_properties {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident => $key:literal, )*
        }
    ) => {
        $(#[$meta])*
        ///
        /// Not `#[non_exhaustive]`, so it can be built with struct-update syntax; the spec's
        /// key set is fixed and anything else goes in `extra`.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<String>, )*
            /// Every other key, and documented keys whose value is not a string, as sent.
            pub extra: Map<String, Value>,
        }

        impl $name {
            /// The documented keys.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Reads the documented keys from `map` (string values only; anything else stays in
            /// `extra`).
            pub fn from_map(mut map: Map<String, Value>) -> Self {
                Self {
                    $( $field: take_string(&mut map, $key), )*
                    extra: map,
                }
            }

            /// Writes the struct back as a JSON map. A set field wins over an `extra` entry of
            /// the same key, so no key is written twice.
            pub fn into_map(self) -> Map<String, Value> {
                let mut map = self.extra;
                $(
                    if let Some(value) = self.$field {
                        map.insert($key.to_owned(), Value::String(value));
                    }
                )*
                map
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.clone().into_map().serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Map::deserialize(deserializer).map(Self::from_map)
            }
        }
    };
}

string_properties! {
    /// The properties of the Email spec events (all strings).
    pub struct EmailProperties {
        /// `email_id`: the message's id (all six events).
        email_id => "email_id",
        /// `email_subject` (all six events).
        email_subject => "email_subject",
        /// `campaign_id` (all six events).
        campaign_id => "campaign_id",
        /// `campaign_name` (all six events).
        campaign_name => "campaign_name",
        /// `link_id` (`Email Link Clicked` only).
        link_id => "link_id",
        /// `link_url` (`Email Link Clicked` only).
        link_url => "link_url",
        /// `list_id` (`Unsubscribed` only, optional).
        list_id => "list_id",
        /// `list_name` (`Unsubscribed` only, optional).
        list_name => "list_name",
    }
}

impl EmailProperties {
    /// Reads the properties of a message's `properties` object.
    pub fn from_properties(properties: &Properties) -> Self {
        Self::from_map(properties.0.clone())
    }
}

impl From<EmailProperties> for Properties {
    fn from(properties: EmailProperties) -> Self {
        Properties(properties.into_map())
    }
}

string_properties! {
    /// The `campaign` object of push events.
    pub struct PushCampaign {
        /// `name`: the campaign's name.
        name => "name",
        /// `medium`, e.g. `Push`.
        medium => "medium",
        /// `content`: the notification text.
        content => "content",
        /// `source`: the push provider (optional).
        source => "source",
    }
}

/// The properties of the push events: a `campaign` object and, on Tapped and Bounced, the
/// `action` (default `Open`). Lossless like the other property structs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushProperties {
    /// `campaign`, when it is an object.
    pub campaign: Option<PushCampaign>,
    /// `action`, when it is a string.
    pub action: Option<String>,
    /// Every other key, and documented keys of an unexpected type, as sent.
    pub extra: Map<String, Value>,
}

impl PushProperties {
    /// Reads the documented keys from `map`.
    pub fn from_map(mut map: Map<String, Value>) -> Self {
        let campaign = match map.get("campaign") {
            Some(Value::Object(_)) => match map.remove("campaign") {
                Some(Value::Object(campaign)) => Some(PushCampaign::from_map(campaign)),
                // Just checked that the value is an object.
                _ => None,
            },
            _ => None,
        };
        Self {
            campaign,
            action: take_string(&mut map, "action"),
            extra: map,
        }
    }

    /// Reads the properties of a message's `properties` object.
    pub fn from_properties(properties: &Properties) -> Self {
        Self::from_map(properties.0.clone())
    }

    /// Writes the struct back as a JSON map.
    pub fn into_map(self) -> Map<String, Value> {
        let mut map = self.extra;
        if let Some(campaign) = self.campaign {
            map.insert("campaign".to_owned(), Value::Object(campaign.into_map()));
        }
        if let Some(action) = self.action {
            map.insert("action".to_owned(), Value::String(action));
        }
        map
    }
}

impl Serialize for PushProperties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.clone().into_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PushProperties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from_map)
    }
}

impl From<PushProperties> for Properties {
    fn from(properties: PushProperties) -> Self {
        Properties(properties.into_map())
    }
}

impl EmailEvent {
    /// Starts a `track` message for this event with the given properties. Set the identity
    /// (`user_id` / `anonymous_id`), the recipient ([`recipient_context`]) and the timestamp on
    /// the returned builder, then `build()` it.
    pub fn track(self, properties: EmailProperties) -> TrackBuilder {
        Message::track(self.as_str()).properties(properties.into())
    }
}

impl PushEvent {
    /// Starts a `track` message for this event with the given properties.
    pub fn track(self, properties: PushProperties) -> TrackBuilder {
        Message::track(self.as_str()).properties(properties.into())
    }
}

/// A context whose `traits.email` is the recipient's address, where the Email spec puts it.
/// Add `ip` and `user_agent` for opens, clicks, spam reports and unsubscribes when known.
pub fn recipient_context(email: impl Into<String>) -> Context {
    Context {
        traits: Some(Traits::new().with("email", email.into())),
        ..Context::default()
    }
}

/// An Email spec event read from a `track` message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EmailSpecEvent {
    /// Which event.
    pub event: EmailEvent,
    /// Its properties (empty when the message has none).
    pub properties: EmailProperties,
    /// The recipient, from `context.traits.email`.
    pub recipient: Option<String>,
}

impl EmailSpecEvent {
    /// Reads an Email spec event; `None` when the message is not a `track` with one of the
    /// Email spec names.
    pub fn from_message(message: &Message) -> Option<Self> {
        let Message::Track(track) = message else {
            return None;
        };
        let event = EmailEvent::from_name(track.event.as_deref()?)?;
        Some(Self {
            event,
            properties: track
                .properties
                .as_ref()
                .map(EmailProperties::from_properties)
                .unwrap_or_default(),
            recipient: track
                .common
                .context
                .as_ref()
                .and_then(Context::email)
                .map(str::to_owned),
        })
    }
}
