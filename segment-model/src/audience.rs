//! Engage audience membership changes, from either form Segment delivers them in.
//!
//! Engage tells event destinations that a profile entered or left an audience in one of two
//! ways:
//!
//! 1. an **identify** whose trait named by `context.personas.computation_key` is `true`
//!    (entered) or `false` (exited);
//! 2. a **track** named `Audience Entered` / `Audience Exited` (the default names; they can be
//!    renamed per destination, see [`AudienceOptions`]) whose properties carry `audience_key`
//!    (the key) and `<key>: true|false`.
//!
//! [`AudienceChange::from_message`] reads both into one [`AudienceChange`]. The decision rule is
//! the one Segment's Actions framework uses — only `computation_class` `audience` or
//! `journey_step` with a non-empty `computation_key` counts, and the value under the key decides
//! — plus three tolerances:
//!
//! - the strings `"true"` / `"false"` (any ASCII case; Journeys v1 sends strings) count as
//!   booleans;
//! - a `journey_step` value that is not boolean-like means "entered" (legacy journeys never
//!   remove anyone);
//! - a missing `computation_class` is read as `audience`, and a class this crate does not know
//!   counts only when its value is boolean-like.
//!
//! Computed traits (`trait` / `computed_trait`) are values, not memberships: they give
//! `Ok(None)`, as does any message that is not an audience change at all. A message that claims
//! to be one but cannot be read is an [`AudienceError`] naming the JSON path at fault:
//!
//! - an identify whose `context.personas` names an audience (or journey step) but whose trait
//!   under the key is missing or not boolean-like;
//! - an `Audience Entered` / `Audience Exited` track without a key, with `audience_key` and
//!   `computation_key` disagreeing, or with a value under the key that is not boolean-like or
//!   contradicts the event name.
//!
//! A track with any other name counts only when `context.personas` names an audience and
//! `properties[key]` is boolean-like (an audience event renamed in the destination); otherwise
//! it is `Ok(None)`, since ordinary events can carry a copied `personas` context.
//!
//! ```
//! use segment_model::Message;
//! use segment_model::audience::{AudienceChange, ComputationClass, Membership};
//!
//! let message = Message::from_value(serde_json::json!({
//!     "type": "identify",
//!     "userId": "usr_48151623",
//!     "traits": { "email": "lena.fischer@example.org", "churn_risk_high": true },
//!     "context": { "personas": {
//!         "computation_class": "audience", "computation_id": "aud_2aBcDeFgHiJkLmN",
//!         "computation_key": "churn_risk_high", "space_id": "spa_9zYxWvUtS"
//!     }}
//! }))?;
//! let change = AudienceChange::from_message(&message)?.expect("an audience change");
//! assert_eq!(change.key, "churn_risk_high");
//! assert_eq!(change.membership, Membership::Entered);
//! assert_eq!(change.class, ComputationClass::Audience);
//! assert_eq!(change.computation_id.as_deref(), Some("aud_2aBcDeFgHiJkLmN"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde_json::{Map, Value};

use crate::context::{Context, Personas};
use crate::error::JsonType;
use crate::message::{Common, Id, Message};
use crate::timestamp::Timestamp;

/// Default name of the track event sent when a profile enters an audience.
pub const AUDIENCE_ENTERED: &str = "Audience Entered";
/// Default name of the track event sent when a profile leaves an audience.
pub const AUDIENCE_EXITED: &str = "Audience Exited";

/// Whether the profile entered or left the audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Membership {
    /// Added to the audience.
    Entered,
    /// Removed from the audience.
    Exited,
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Entered => "entered",
            Self::Exited => "exited",
        })
    }
}

impl Membership {
    fn from_bool(member: bool) -> Self {
        if member { Self::Entered } else { Self::Exited }
    }
}

/// `context.personas.computation_class`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ComputationClass {
    /// `audience`.
    Audience,
    /// `journey_step` (legacy Journeys).
    JourneyStep,
    /// `trait` (the documented name of a computed trait).
    Trait,
    /// `computed_trait` (the name seen in Segment's code).
    ComputedTrait,
    /// Any other value, as sent.
    Other(String),
}

impl ComputationClass {
    /// Reads a class name.
    pub fn parse(name: &str) -> Self {
        match name {
            "audience" => Self::Audience,
            "journey_step" => Self::JourneyStep,
            "trait" => Self::Trait,
            "computed_trait" => Self::ComputedTrait,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The class name as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Audience => "audience",
            Self::JourneyStep => "journey_step",
            Self::Trait => "trait",
            Self::ComputedTrait => "computed_trait",
            Self::Other(other) => other,
        }
    }

    /// Whether this is a computed trait (`trait` or `computed_trait`).
    pub fn is_computed_trait(&self) -> bool {
        matches!(self, Self::Trait | Self::ComputedTrait)
    }
}

impl fmt::Display for ComputationClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which form the change arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudienceForm {
    /// An identify with the key as a trait.
    Identify,
    /// A track event (`Audience Entered` / `Audience Exited` or a renamed equivalent).
    Track,
}

/// One profile entering or leaving one Engage audience (or journey step).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AudienceChange {
    /// The audience key (`computation_key`, or `audience_key` on the track form).
    pub key: String,
    /// Entered or exited.
    pub membership: Membership,
    /// The computation class (`audience` when the message did not say).
    pub class: ComputationClass,
    /// `context.personas.computation_id` (`aud_...`): the audience's stable id.
    pub computation_id: Option<String>,
    /// The Engage space: `context.personas.space_id`, else `namespace`.
    pub space_id: Option<String>,
    /// The message's `userId`.
    pub user_id: Option<Id>,
    /// The message's `anonymousId`.
    pub anonymous_id: Option<Id>,
    /// The profile's email: `traits.email` (identify) or `context.traits.email` (track).
    pub email: Option<String>,
    /// The message's `timestamp`, else its `originalTimestamp`.
    pub timestamp: Option<Timestamp>,
    /// The message's `messageId`.
    pub message_id: Option<String>,
    /// Which form it arrived in.
    pub form: AudienceForm,
}

/// A message that presents itself as an audience change but cannot be read as one.
///
/// Paths and keys are audience keys (vendor vocabulary), never trait values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AudienceError {
    /// The membership value is absent.
    #[error("`{path}` is missing: the audience membership value must be there")]
    MissingValue {
        /// JSON path where the value was expected (`traits.<key>` or `properties.<key>`).
        path: String,
    },
    /// The membership value is neither a boolean nor `"true"` / `"false"`.
    #[error("`{path}`: expected a boolean or \"true\"/\"false\", found {found}")]
    NotBooleanLike {
        /// JSON path of the value.
        path: String,
        /// Its JSON type.
        found: JsonType,
    },
    /// An `Audience Entered` / `Audience Exited` event carries no audience key.
    #[error(
        "the audience event has no key: neither `properties.audience_key` nor `context.personas.computation_key` is a non-empty string"
    )]
    MissingKey,
    /// `properties.audience_key` and `context.personas.computation_key` disagree.
    #[error(
        "`properties.audience_key` and `context.personas.computation_key` name different audiences"
    )]
    KeyMismatch,
    /// The event name says one thing and the membership value the other.
    #[error("`{path}` contradicts the event name, which says the profile {event_says}")]
    Contradiction {
        /// JSON path of the value.
        path: String,
        /// What the event name says.
        event_says: Membership,
    },
}

/// Names of the track events that carry audience changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceOptions {
    /// The event sent on entry. Default [`AUDIENCE_ENTERED`].
    pub entered_event: String,
    /// The event sent on exit. Default [`AUDIENCE_EXITED`].
    pub exited_event: String,
}

impl Default for AudienceOptions {
    fn default() -> Self {
        Self {
            entered_event: AUDIENCE_ENTERED.to_owned(),
            exited_event: AUDIENCE_EXITED.to_owned(),
        }
    }
}

impl AudienceChange {
    /// Reads an audience change with the default event names. See the [module docs](self).
    ///
    /// # Errors
    ///
    /// [`AudienceError`] for an Engage audience message that cannot be read.
    pub fn from_message(message: &Message) -> Result<Option<Self>, AudienceError> {
        Self::from_message_with(message, &AudienceOptions::default())
    }

    /// Reads an audience change, with the track event names of `options`.
    ///
    /// # Errors
    ///
    /// [`AudienceError`] for an Engage audience message that cannot be read.
    pub fn from_message_with(
        message: &Message,
        options: &AudienceOptions,
    ) -> Result<Option<Self>, AudienceError> {
        match message {
            Message::Identify(identify) => {
                let traits = identify.traits.as_ref().map(|t| &t.0);
                let email = traits
                    .and_then(|t| t.get("email"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                from_personas(&identify.common, traits, "traits").map(|found| {
                    found.map(|(key, membership, class)| {
                        build(
                            &identify.common,
                            key,
                            membership,
                            class,
                            email,
                            AudienceForm::Identify,
                        )
                    })
                })
            }
            Message::Track(track) => {
                let properties = track.properties.as_ref().map(|p| &p.0);
                let email = context_email(&track.common);
                let event = track.event.as_deref();
                let named = match event {
                    Some(e) if e == options.entered_event => Some(Membership::Entered),
                    Some(e) if e == options.exited_event => Some(Membership::Exited),
                    _ => None,
                };
                let found = match named {
                    Some(membership) => {
                        Some(from_audience_event(&track.common, properties, membership)?)
                    }
                    None => from_personas_track(&track.common, properties),
                };
                Ok(found.map(|(key, membership, class)| {
                    build(
                        &track.common,
                        key,
                        membership,
                        class,
                        email,
                        AudienceForm::Track,
                    )
                }))
            }
            _ => Ok(None),
        }
    }
}

type Found = (String, Membership, ComputationClass);

fn personas(common: &Common) -> Option<&Personas> {
    common.context.as_ref().and_then(|c| c.personas.as_ref())
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(String::as_str).filter(|s| !s.is_empty())
}

fn context_email(common: &Common) -> Option<String> {
    common
        .context
        .as_ref()
        .and_then(Context::email)
        .map(str::to_owned)
}

/// Reads `"true"`/`"false"` strings and booleans.
fn boolean_like(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The identify form: the class and key come from `context.personas`, the value from
/// `container[key]`.
fn from_personas(
    common: &Common,
    container: Option<&Map<String, Value>>,
    container_name: &str,
) -> Result<Option<Found>, AudienceError> {
    let Some(personas) = personas(common) else {
        return Ok(None);
    };
    let Some(key) = non_empty(personas.computation_key.as_ref()) else {
        return Ok(None);
    };
    let class = personas
        .computation_class
        .as_deref()
        .map_or(ComputationClass::Audience, ComputationClass::parse);
    if class.is_computed_trait() {
        return Ok(None);
    }
    let path = format!("{container_name}.{key}");
    let value = container.and_then(|c| c.get(key));
    let membership = match (&class, value) {
        (ComputationClass::Other(_), None) => return Ok(None),
        (ComputationClass::Other(_), Some(v)) => match boolean_like(v) {
            Some(b) => Membership::from_bool(b),
            None => return Ok(None),
        },
        (_, None) => return Err(AudienceError::MissingValue { path }),
        (ComputationClass::JourneyStep, Some(v)) => {
            // Legacy journeys: anything that is not boolean-like means "added".
            boolean_like(v).map_or(Membership::Entered, Membership::from_bool)
        }
        (_, Some(v)) => match boolean_like(v) {
            Some(b) => Membership::from_bool(b),
            None => {
                return Err(AudienceError::NotBooleanLike {
                    path,
                    found: JsonType::of(v),
                });
            }
        },
    };
    Ok(Some((key.to_owned(), membership, class)))
}

/// A track event with another name but an audience computation in `context.personas` (an
/// audience event renamed in the destination): it counts only when `properties[key]` is
/// boolean-like. Anything else is left alone rather than reported, because ordinary events may
/// carry a copied `personas` context.
fn from_personas_track(common: &Common, properties: Option<&Map<String, Value>>) -> Option<Found> {
    let personas = personas(common)?;
    let key = non_empty(personas.computation_key.as_ref())?;
    let class = personas
        .computation_class
        .as_deref()
        .map_or(ComputationClass::Audience, ComputationClass::parse);
    if class.is_computed_trait() {
        return None;
    }
    let member = boolean_like(properties?.get(key)?)?;
    Some((key.to_owned(), Membership::from_bool(member), class))
}

/// The `Audience Entered` / `Audience Exited` form: the event name decides, the key comes from
/// `properties.audience_key` or `context.personas.computation_key`, and a value under the key,
/// when present, must agree with the name.
fn from_audience_event(
    common: &Common,
    properties: Option<&Map<String, Value>>,
    membership: Membership,
) -> Result<Found, AudienceError> {
    let personas = personas(common);
    let property_key = properties
        .and_then(|p| p.get("audience_key"))
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty());
    let personas_key = personas.and_then(|p| non_empty(p.computation_key.as_ref()));
    let key = match (property_key, personas_key) {
        (Some(a), Some(b)) if a != b => return Err(AudienceError::KeyMismatch),
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => return Err(AudienceError::MissingKey),
    };
    let class = personas
        .and_then(|p| p.computation_class.as_deref())
        .map_or(ComputationClass::Audience, ComputationClass::parse);
    if let Some(value) = properties.and_then(|p| p.get(key)) {
        let path = format!("properties.{key}");
        match boolean_like(value) {
            Some(b) if Membership::from_bool(b) == membership => {}
            Some(_) => {
                return Err(AudienceError::Contradiction {
                    path,
                    event_says: membership,
                });
            }
            None if class == ComputationClass::JourneyStep => {}
            None => {
                return Err(AudienceError::NotBooleanLike {
                    path,
                    found: JsonType::of(value),
                });
            }
        }
    }
    Ok((key.to_owned(), membership, class))
}

fn build(
    common: &Common,
    key: String,
    membership: Membership,
    class: ComputationClass,
    email: Option<String>,
    form: AudienceForm,
) -> AudienceChange {
    let personas = personas(common);
    AudienceChange {
        key,
        membership,
        class,
        computation_id: personas.and_then(|p| p.computation_id.clone()),
        space_id: personas.and_then(|p| p.space_id.clone().or_else(|| p.namespace.clone())),
        user_id: common.user_id.clone(),
        anonymous_id: common.anonymous_id.clone(),
        email,
        timestamp: common
            .timestamp
            .clone()
            .or_else(|| common.original_timestamp.clone()),
        message_id: common.message_id.clone(),
        form,
    }
}
