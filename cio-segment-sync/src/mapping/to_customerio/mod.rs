//! The forward mapping: pure functions from a Segment [`Message`] and its resolved [`Target`]
//! to the Customer.io Track v2 [`Operation`]s that carry it.
//!
//! Every public item here is also at [`cio_segment_sync::mapping`](super), the path the rest
//! of the crate and its users name.
//!
//! Nothing here does I/O, reads a clock or keeps state: [`map`] (or [`map_at`], when future
//! timestamps are clamped) looks only at its arguments, so every rule below is tested with
//! fixture pairs (Segment message in, operations JSON out). Identity is decided before the
//! mapping runs, by identity resolution; the mapping takes its answer as a [`Target`].
//!
//! # Rules
//!
//! | Segment | Customer.io (Track v2) |
//! |---|---|
//! | `identify` | person `identify`: custom attributes = traits minus [`IDENTIFY_RESERVED_TRAITS`] (after [`MappingConfig::traits`]); `email` from `traits.email`; `created_at` from `traits.createdAt` / `traits.created_at`; `anonymous_id` when the target carries one; top-level `timestamp`; `traits.objectId` → one `cio_relationships` entry (type from `traits.objectTypeId` / `traits.object_type_id`, attributes from `traits.relationshipAttributes`) |
//! | `track` | person `event`: `name` = `event` (after [`NameFilter::rename`]), `attributes` = properties (after [`MappingConfig::properties`]), `id`, `timestamp`; an anonymous target sends `{"anonymous_id": …}` as its identifiers (what Segment's destination sends; not in Customer.io's v2 spec, unconfirmed — see [`EventTarget`]) |
//! | `track` with a [`LifecycleEvent`] name | see *Lifecycle events* below |
//! | `page` | person `page`, named per [`PageName`] / [`LongPageName`], with `id`, `timestamp` and the properties |
//! | `screen` | person `screen` named by the screen `name` (else `properties.name`; [`LongPageName`] applies), with `id`, `timestamp` and the properties |
//! | `group` | object `identify` (`object_id` = `groupId`, type from `traits.objectTypeId` / `traits.object_type_id`, else [`MappingConfig::default_object_type_id`]) with a relationship to the person (attributes from `traits.relationshipAttributes`); for an anonymous target, object `identify_anonymous` with an `anonymous_id` relationship. Object attributes per [`ObjectAttributes`] |
//! | `alias` | person `merge` of the [`Target::Merge`] sides; for a [`Target::Person`] carrying an `anonymous_id` (an alias from an anonymousId), a person `identify` setting only `anonymous_id`, so Customer.io stitches the anonymous activity; without one, skipped with [`SkipReason::AlreadyMerged`] |
//! | `delete` | person `delete` |
//!
//! A [`Target::Skip`] gives [`Mapped::Skip`] with the resolver's reason. An `identify` or
//! `delete` about an anonymous person is skipped with [`SkipReason::AnonymousNotAllowed`]:
//! Customer.io has no profile to update for them (person lifecycle operations too, unless
//! [`IncompleteLifecycle::PlainEvent`] sends them as plain events). A `track` event denied by
//! [`MappingConfig::events`] is skipped with [`SkipReason::Filtered`] before anything else is
//! looked at. A target the call cannot use (an `alias` resolved to an anonymous person, an
//! `identify` resolved to a merge) is a [`MappingError::TargetMismatch`].
//!
//! Every trait not in [`IDENTIFY_RESERVED_TRAITS`] is copied, `id` included: Customer.io reads
//! an `id` attribute as a request to set (or, keyed by `cio_id`, change) the person's id, which
//! is what a Segment `traits.id` (the user's database id) means. Deny it with
//! [`MappingConfig::traits`] if your traits carry an unrelated `id`.
//!
//! ## Event ids
//!
//! Events, pages and screens carry `id` =
//! [`event_id(messageId, time in ms)`](customerio_client::event_id::event_id), so a message
//! Segment delivers twice reaches Customer.io twice with the same id and is counted once. The
//! time is the message's own (see *Timestamps*), never the clamped one, so the id does not
//! depend on when the mapping ran; without any timestamp the id comes from
//! [`event_id_from_key(messageId)`](customerio_client::event_id::event_id_from_key). A message
//! without `messageId` is sent without `id`.
//!
//! ## Timestamps
//!
//! The message time is `timestamp`, else `originalTimestamp`, else `receivedAt`, else none (the
//! operation then has no `timestamp` and Customer.io uses the time it receives it). It is sent
//! as whole Unix seconds. With [`MappingConfig::clamp_future_timestamps`], a time after `now`
//! (given to [`map_at`]) is sent as `now`.
//!
//! With [`MappingConfig::convert_timestamps`] (the default), attribute values that are strict
//! ISO-8601 dates or date-times — see [`iso8601_unix_seconds`] for the exact shapes — become
//! Unix seconds, at any depth of nested objects and arrays. Numbers, phone numbers, ids,
//! numeric strings and date-times without an offset are left as they are. `created_at` is
//! always converted when it is such a string; a number (Unix seconds) or any other value is
//! sent as it is.
//!
//! ## Lifecycle events
//!
//! Reserved `track` names ([`LifecycleEvent`]) stand for an operation instead of an event:
//!
//! | event | operation | needs |
//! |---|---|---|
//! | `Application Installed`, `Application Opened`, `Device Created or Updated` | person `add_device` | a person; token from `context.device.token`, else `properties.device_id`, else `properties.token`; platform from `context.device.type`, else `properties.platform` |
//! | `Application Uninstalled`, `Device Deleted` | person `delete_device` | a person; a token as above |
//! | `User Deleted` | person `delete` | a person |
//! | `User Suppressed` / `User Unsuppressed` | person `suppress` / `unsuppress` | a person |
//! | `Object Deleted` | object `delete` | object id from `properties.objectId`, else `properties.object_id`, else `context.groupId`; type from `properties.objectTypeId` / `properties.object_type_id`, else the default |
//! | `Relationship Deleted` | object `delete_relationships` with the person | a person and an object id as above |
//! | `Report Delivery Event`, `Report Content Event` | none: [`MappingError::Unsupported`] | — |
//!
//! Platforms are normalised: Apple device types (`ios`, `ipados`, `iphone`, `ipad`, `ipod`,
//! `iphoneos`, `tvos`, `watchos`, `visionos`, any case) become `ios`, `android` (any case)
//! becomes `android`; anything else is an invalid field. An `add_device` carries
//! `last_used` = the message time and, when the context has them, the device attributes
//! `app_version` (`context.app.version`), `device_os` (`context.os.version`), `device_model`
//! (`context.device.model`) and `device_locale` (`context.locale`).
//!
//! With [`MappingConfig::forward_device_events`], a device event is also sent as a plain event
//! after its device operation. A lifecycle event missing what its operation needs fails with
//! a [`MappingError`] naming the field, or is sent as a plain event instead when
//! [`MappingConfig::incomplete_lifecycle`] is [`IncompleteLifecycle::PlainEvent`].
//!
//! ## Not used
//!
//! The `integrations` object is not consulted: routing is Segment's job, and recognising our
//! own echoes is the loop guard's. `context.traits` is not copied into events.
//!
//! # Example
//!
//! ```
//! use cio_segment_sync::identity::Target;
//! use cio_segment_sync::mapping::{map, Mapped, MappingConfig};
//! use customerio_client::Identifier;
//! use customerio_client::event_id::event_id;
//! use segment_model::Message;
//! use serde_json::json;
//!
//! let message = Message::from_value(json!({
//!     "type": "track", "userId": "usr_1", "event": "Order Completed",
//!     "messageId": "msg-1", "timestamp": "2024-05-01T10:15:30.123Z",
//!     "properties": {"total": 30, "shipped_at": "2024-05-02"}
//! }))?;
//! let target = Target::Person { identifier: Identifier::id("usr_1"), anonymous_id: None };
//!
//! let Mapped::Operations(ops) = map(&message, &target, &MappingConfig::default())? else {
//!     panic!("a plain event is never skipped");
//! };
//! assert_eq!(serde_json::to_value(&ops)?, json!([{
//!     "type": "person", "action": "event", "identifiers": {"id": "usr_1"},
//!     "name": "Order Completed", "id": event_id("msg-1", 1_714_558_530_123).to_string(),
//!     "timestamp": 1714558530, "attributes": {"total": 30, "shipped_at": 1714608000}
//! }]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod lifecycle;
mod timestamps;

use std::borrow::Cow;

use customerio_client::Identifier;
use customerio_client::event_id::{event_id, event_id_from_key};
use customerio_client::track::v2::{
    AnonymousId, EventTarget, Merge, ObjectIdentifiers, ObjectIdentify, ObjectIdentifyAnonymous,
    ObjectTypeId, Operation, PersonEvent, PersonIdentify, Relationship,
};
use segment_model::{
    Common, Group, Identify, LifecycleEvent, Message, Page, Properties, Screen, Track,
};
use serde_json::{Map, Value};

use crate::identity::{SkipReason, Target};

pub use config::{
    IncompleteLifecycle, KeyRules, LongPageName, MappingConfig, NameFilter, ObjectAttributes,
    PageName,
};
pub use error::MappingError;
pub use timestamps::iso8601_unix_seconds;

/// Trait keys an `identify` does not copy into attributes: they feed `created_at` and the
/// object relationship instead.
pub const IDENTIFY_RESERVED_TRAITS: &[&str] = &[
    "createdAt",
    "created_at",
    "objectId",
    "object_type_id",
    "objectTypeId",
    "relationshipAttributes",
];

/// Trait keys a `group` does not copy into object attributes: they choose the object type and
/// carry the object and relationship attributes.
pub const GROUP_RESERVED_TRAITS: &[&str] = &[
    "objectAttributes",
    "relationshipAttributes",
    "object_type_id",
    "objectTypeId",
];

/// Longest name (event, page, screen) Customer.io takes, in bytes.
const MAX_NAME_BYTES: usize = customerio_client::limits::MAX_EVENT_NAME_BYTES;

/// What a message maps to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Mapped {
    /// Send these operations, in this order (one for most messages; two for a device event
    /// that is also forwarded as a plain event).
    Operations(Vec<Operation>),
    /// Send nothing, for this reason.
    Skip(SkipReason),
}

/// Maps `message`, about `target`, to Customer.io operations. Pure: no I/O, no clock.
///
/// Fails with [`MappingError::ClockRequired`] when `config` clamps future timestamps, since
/// that needs the current time: use [`map_at`] then. See the [module docs](self) for the
/// rules and an example.
pub fn map(
    message: &Message,
    target: &Target,
    config: &MappingConfig,
) -> Result<Mapped, MappingError> {
    if config.clamp_future_timestamps {
        return Err(MappingError::ClockRequired);
    }
    map_inner(message, target, config, None)
}

/// [`map`] with the current time, `now_unix_seconds`, used to clamp future message timestamps
/// when [`MappingConfig::clamp_future_timestamps`] is set (it is ignored otherwise).
///
/// ```
/// use cio_segment_sync::identity::Target;
/// use cio_segment_sync::mapping::{map_at, Mapped, MappingConfig};
/// use customerio_client::Identifier;
/// use segment_model::Message;
///
/// let message = Message::from_str(
///     r#"{"type":"identify","userId":"u1","timestamp":"2099-01-01T00:00:00Z"}"#,
/// )?;
/// let target = Target::Person { identifier: Identifier::id("u1"), anonymous_id: None };
/// let mut config = MappingConfig::default();
/// config.clamp_future_timestamps = true;
///
/// let Mapped::Operations(ops) = map_at(&message, &target, &config, 1_714_558_530)? else {
///     unreachable!()
/// };
/// assert_eq!(serde_json::to_value(&ops[0])?["timestamp"], 1_714_558_530);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn map_at(
    message: &Message,
    target: &Target,
    config: &MappingConfig,
    now_unix_seconds: i64,
) -> Result<Mapped, MappingError> {
    map_inner(message, target, config, Some(now_unix_seconds))
}

/// What every call's mapping needs besides the call itself.
struct Cx<'a> {
    config: &'a MappingConfig,
    target: &'a Target,
    common: &'a Common,
    /// The message time in Unix seconds, clamped if configured.
    timestamp: Option<i64>,
    /// The event id, when the message has a `messageId`.
    event_id: Option<ulid::Ulid>,
}

fn map_inner(
    message: &Message,
    target: &Target,
    config: &MappingConfig,
    now: Option<i64>,
) -> Result<Mapped, MappingError> {
    if let Message::Track(track) = message
        && let Some(name) = track.event.as_deref()
        && !config.events.allows(name)
    {
        return Ok(Mapped::Skip(SkipReason::Filtered));
    }
    if let Target::Skip(reason) = target {
        return Ok(Mapped::Skip(reason.clone()));
    }
    let common = message.common();
    let time = timestamps::event_time(common);
    let timestamp = time.map(|t| {
        let seconds = t.as_unix_seconds();
        match now {
            Some(now) if config.clamp_future_timestamps => seconds.min(now),
            _ => seconds,
        }
    });
    let event_id = common.message_id.as_deref().map(|id| match time {
        Some(t) => event_id(id, t.as_unix_millis()),
        None => event_id_from_key(id),
    });
    let cx = Cx {
        config,
        target,
        common,
        timestamp,
        event_id,
    };
    match message {
        Message::Identify(call) => identify(call, &cx),
        Message::Track(call) => track(call, &cx),
        Message::Page(call) => page(call, &cx),
        Message::Screen(call) => screen(call, &cx),
        Message::Group(call) => group(call, &cx),
        Message::Alias(_) => alias(&cx),
        Message::Delete(_) => delete(&cx),
        other => Err(MappingError::UnsupportedCall {
            kind: other.kind().as_str(),
        }),
    }
}

fn one(op: Operation) -> Result<Mapped, MappingError> {
    Ok(Mapped::Operations(vec![op]))
}

fn target_kind(target: &Target) -> &'static str {
    match target {
        Target::Person { .. } => "person",
        Target::Anonymous { .. } => "anonymous",
        Target::Merge { .. } => "merge",
        Target::Skip(_) => "skip",
    }
}

fn mismatch(call: &'static str, target: &Target) -> MappingError {
    MappingError::TargetMismatch {
        call,
        target: target_kind(target),
    }
}

/// The person a person-only operation is about: `Ok(None)` for an anonymous target.
fn person<'a>(call: &'static str, cx: &Cx<'a>) -> Result<Option<&'a Identifier>, MappingError> {
    match cx.target {
        Target::Person { identifier, .. } => Ok(Some(identifier)),
        Target::Anonymous { .. } => Ok(None),
        other => Err(mismatch(call, other)),
    }
}

/// Who an event, page or screen is about.
fn event_target(call: &'static str, cx: &Cx<'_>) -> Result<EventTarget, MappingError> {
    match cx.target {
        Target::Person { identifier, .. } => Ok(EventTarget::Person(identifier.clone())),
        Target::Anonymous { anonymous_id } => {
            EventTarget::anonymous(anonymous_id.as_str()).map_err(MappingError::operation(call))
        }
        other => Err(mismatch(call, other)),
    }
}

/// `properties` after the key rules and the timestamp conversion.
fn event_attributes(properties: Option<&Properties>, cx: &Cx<'_>) -> Map<String, Value> {
    let mut attributes = properties
        .map(|p| cx.config.properties.apply(p, &[]))
        .unwrap_or_default();
    if cx.config.convert_timestamps {
        timestamps::convert_map(&mut attributes);
    }
    attributes
}

/// A person event, page or screen named `name`, with id, timestamp and attributes.
fn person_event(
    call: &'static str,
    name: &str,
    properties: Option<&Properties>,
    cx: &Cx<'_>,
) -> Result<PersonEvent, MappingError> {
    let wrap = MappingError::operation;
    let mut event = PersonEvent::new(event_target(call, cx)?, name)
        .map_err(wrap(call))?
        .with_attributes(event_attributes(properties, cx))
        .map_err(wrap(call))?;
    if let Some(id) = cx.event_id {
        event = event.with_id(id);
    }
    if let Some(seconds) = cx.timestamp {
        event = event.with_timestamp(seconds).map_err(wrap(call))?;
    }
    Ok(event)
}

// ---------------------------------------------------------------------------------------------
// identify

fn identify(call: &Identify, cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    const CALL: &str = "identify";
    let (who, anonymous_id) = match cx.target {
        Target::Person {
            identifier,
            anonymous_id,
        } => (identifier, anonymous_id),
        Target::Anonymous { .. } => return Ok(Mapped::Skip(SkipReason::AnonymousNotAllowed)),
        other => return Err(mismatch(CALL, other)),
    };
    let empty = Map::new();
    let traits: &Map<String, Value> = call.traits.as_deref().unwrap_or(&empty);

    let mut attributes = cx.config.traits.apply(traits, IDENTIFY_RESERVED_TRAITS);
    if cx.config.convert_timestamps {
        timestamps::convert_map(&mut attributes);
    }
    if let Some(email) = traits.get("email").and_then(Value::as_str) {
        // A person identified by email gets the identifier's form of it: a resolver that
        // rewrote the address (lower-cased it, say) must not leave the old form in the profile.
        let email = match who {
            Identifier::Email(identified) => identified.as_str(),
            _ => email,
        };
        attributes.insert("email".to_owned(), Value::from(email));
    }
    if let Some(created_at) = created_at(traits) {
        attributes.insert("created_at".to_owned(), created_at);
    }
    if let Some(anonymous_id) = anonymous_id {
        attributes.insert(
            "anonymous_id".to_owned(),
            Value::from(anonymous_id.as_str()),
        );
    }

    let wrap = MappingError::operation;
    let mut op = PersonIdentify::new(who.clone())
        .map_err(wrap(CALL))?
        .with_attributes(attributes)
        .map_err(wrap(CALL))?;
    if let Some(seconds) = cx.timestamp {
        op = op.with_timestamp(seconds).map_err(wrap(CALL))?;
    }
    if let Some(object_id) = text_value(traits, &[("objectId", "traits.objectId")], CALL)? {
        let object_type = object_type_id(traits, TRAIT_TYPE_KEYS, CALL, cx)?;
        let object = ObjectIdentifiers::new(object_type, object_id).map_err(wrap(CALL))?;
        let relationship = Relationship::new(object)
            .with_attributes(relationship_attributes(traits, cx))
            .map_err(wrap(CALL))?;
        op = op
            .with_relationships(vec![relationship])
            .map_err(wrap(CALL))?;
    }
    one(op.into())
}

/// `created_at` from `createdAt` / `created_at`: a strict ISO-8601 string becomes Unix
/// seconds; any other non-null value is sent as it is.
fn created_at(traits: &Map<String, Value>) -> Option<Value> {
    let value = ["createdAt", "created_at"]
        .iter()
        .find_map(|key| traits.get(*key).filter(|v| !v.is_null()))?;
    Some(match value {
        Value::String(text) => {
            iso8601_unix_seconds(text).map_or_else(|| value.clone(), Value::from)
        }
        other => other.clone(),
    })
}

/// `relationshipAttributes` when it is an object, converted like other attributes.
fn relationship_attributes(traits: &Map<String, Value>, cx: &Cx<'_>) -> Map<String, Value> {
    let mut attributes = traits
        .get("relationshipAttributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if cx.config.convert_timestamps {
        timestamps::convert_map(&mut attributes);
    }
    attributes
}

const TRAIT_TYPE_KEYS: &[(&str, &str)] = &[
    ("objectTypeId", "traits.objectTypeId"),
    ("object_type_id", "traits.object_type_id"),
];
const PROPERTY_TYPE_KEYS: &[(&str, &str)] = &[
    ("objectTypeId", "properties.objectTypeId"),
    ("object_type_id", "properties.object_type_id"),
];
const PROPERTY_OBJECT_ID_KEYS: &[(&str, &str)] = &[
    ("objectId", "properties.objectId"),
    ("object_id", "properties.object_id"),
];

/// The first of `keys` holding a non-empty string or a number, as text. `null`, absent and
/// empty count as missing; any other type is an invalid field.
fn text_value<'m>(
    map: &'m Map<String, Value>,
    keys: &[(&str, &'static str)],
    call: &'static str,
) -> Result<Option<Cow<'m, str>>, MappingError> {
    for (key, field) in keys {
        match map.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) => return Ok(Some(Cow::Borrowed(s))),
            Some(Value::Number(n)) => return Ok(Some(Cow::Owned(n.to_string()))),
            Some(_) => {
                return Err(MappingError::InvalidField {
                    call,
                    field,
                    problem: "is not a string or a number",
                });
            }
        }
    }
    Ok(None)
}

/// The object type named by the first of `keys`, else the configured default.
fn object_type_id(
    map: &Map<String, Value>,
    keys: &[(&str, &'static str)],
    call: &'static str,
    cx: &Cx<'_>,
) -> Result<ObjectTypeId, MappingError> {
    for (key, field) in keys {
        let invalid = || MappingError::InvalidField {
            call,
            field,
            problem: "is not a positive integer",
        };
        match map.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => return s.parse().map_err(|_| invalid()),
            Some(Value::Number(n)) => {
                return n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .and_then(|n| ObjectTypeId::new(n).ok())
                    .ok_or_else(invalid);
            }
            Some(_) => return Err(invalid()),
        }
    }
    Ok(cx.config.default_object_type_id)
}

// ---------------------------------------------------------------------------------------------
// track, page, screen

fn track(call: &Track, cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    const CALL: &str = "track";
    let Some(name) = call.event.as_deref().filter(|n| !n.trim().is_empty()) else {
        return Err(MappingError::MissingField {
            call: CALL,
            field: "event",
        });
    };
    match LifecycleEvent::from_name(name) {
        Some(event) => lifecycle::lifecycle(event, call, cx),
        None => plain_event(call, cx),
    }
}

/// The track as a plain person event, under its configured name.
fn plain_event(call: &Track, cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    one(plain_event_op(call, cx)?)
}

fn plain_event_op(call: &Track, cx: &Cx<'_>) -> Result<Operation, MappingError> {
    // Callers checked the name is present; an absent one maps to the same error as in `track`.
    let name = call.event.as_deref().ok_or(MappingError::MissingField {
        call: "track",
        field: "event",
    })?;
    let name = cx.config.events.rename(name);
    Ok(person_event("track", name, call.properties.as_ref(), cx)?.into())
}

fn page(call: &Page, cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    const CALL: &str = "page";
    let props = call.properties.as_ref();
    let page_ctx = cx.common.context.as_ref().and_then(|c| c.page.as_ref());
    let url = ("properties.url", props.and_then(|p| p.url()));
    let ctx_url = ("context.page.url", page_ctx.and_then(|p| p.url.as_deref()));
    let path = ("properties.path", props.and_then(|p| p.path()));
    let ctx_path = (
        "context.page.path",
        page_ctx.and_then(|p| p.path.as_deref()),
    );
    let name = ("name", call.name.as_deref());
    let prop_name = ("properties.name", props.and_then(|p| p.name()));
    let candidates = match cx.config.page_name {
        PageName::Path => vec![path, ctx_path, url, ctx_url, name],
        PageName::Name => vec![name, prop_name, url, ctx_url, path, ctx_path],
        PageName::Url => vec![url, ctx_url, path, ctx_path, name],
    };
    let chosen = choose_name(CALL, &candidates, cx.config.long_page_name)?;
    one(Operation::page(person_event(CALL, chosen, props, cx)?))
}

fn screen(call: &Screen, cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    const CALL: &str = "screen";
    let props = call.properties.as_ref();
    let candidates = [
        ("name", call.name.as_deref()),
        ("properties.name", props.and_then(|p| p.name())),
    ];
    let chosen = choose_name(CALL, &candidates, cx.config.long_page_name)?;
    one(Operation::screen(person_event(CALL, chosen, props, cx)?))
}

/// The first present, non-blank candidate that fits the name limit (or, with
/// [`LongPageName::Error`], the first present one, which must fit).
fn choose_name<'a>(
    call: &'static str,
    candidates: &[(&'static str, Option<&'a str>)],
    long: LongPageName,
) -> Result<&'a str, MappingError> {
    let mut too_long = None;
    for (field, value) in candidates {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        if value.len() <= MAX_NAME_BYTES {
            return Ok(value);
        }
        let err = MappingError::NameTooLong {
            call,
            field,
            bytes: value.len(),
        };
        if long == LongPageName::Error {
            return Err(err);
        }
        too_long.get_or_insert(err);
    }
    Err(too_long.unwrap_or(MappingError::MissingField {
        call,
        field: candidates.first().map_or("name", |(field, _)| field),
    }))
}

// ---------------------------------------------------------------------------------------------
// group, alias, delete

fn group(call: &Group, cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    const CALL: &str = "group";
    let wrap = MappingError::operation;
    let object_id = call
        .group_id
        .as_ref()
        .map(|id| id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or(MappingError::MissingField {
            call: CALL,
            field: "groupId",
        })?;
    let empty = Map::new();
    let traits: &Map<String, Value> = call.traits.as_deref().unwrap_or(&empty);
    let object_type = object_type_id(traits, TRAIT_TYPE_KEYS, CALL, cx)?;
    let object = ObjectIdentifiers::new(object_type, object_id).map_err(wrap(CALL))?;

    let explicit = traits.get("objectAttributes").and_then(Value::as_object);
    let mut attributes = match (cx.config.object_attributes, explicit) {
        (ObjectAttributes::ObjectAttributesOrTraits, Some(explicit))
        | (ObjectAttributes::ObjectAttributesOnly, Some(explicit)) => explicit.clone(),
        (ObjectAttributes::ObjectAttributesOnly, None) => Map::new(),
        _ => cx.config.traits.apply(traits, GROUP_RESERVED_TRAITS),
    };
    if cx.config.convert_timestamps {
        timestamps::convert_map(&mut attributes);
    }
    let relationship_attributes = relationship_attributes(traits, cx);

    let op: Operation = match cx.target {
        Target::Person { identifier, .. } => {
            let relationship = Relationship::new(identifier.clone())
                .with_attributes(relationship_attributes)
                .map_err(wrap(CALL))?;
            ObjectIdentify::new(object)
                .and_then(|op| op.with_attributes(attributes))
                .and_then(|op| op.with_relationships(vec![relationship]))
                .map_err(wrap(CALL))?
                .into()
        }
        Target::Anonymous { anonymous_id } => {
            let who = AnonymousId::new(anonymous_id.as_str()).map_err(wrap(CALL))?;
            let relationship = Relationship::new(who)
                .with_attributes(relationship_attributes)
                .map_err(wrap(CALL))?;
            ObjectIdentifyAnonymous::new(object)
                .and_then(|op| op.with_attributes(attributes))
                .and_then(|op| op.with_relationships(vec![relationship]))
                .map_err(wrap(CALL))?
                .into()
        }
        other => return Err(mismatch(CALL, other)),
    };
    one(op)
}

fn alias(cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    const CALL: &str = "alias";
    let wrap = MappingError::operation;
    match cx.target {
        Target::Merge { primary, secondary } => one(Merge::new(primary.clone(), secondary.clone())
            .map_err(wrap(CALL))?
            .into()),
        // An alias from an anonymousId to a person: Customer.io stitches the anonymous
        // activity when the person carries that `anonymous_id`, so send exactly that.
        Target::Person {
            identifier,
            anonymous_id: Some(anonymous_id),
        } => {
            let mut op = PersonIdentify::new(identifier.clone())
                .map_err(wrap(CALL))?
                .with_attribute("anonymous_id", Value::from(anonymous_id.as_str()))
                .map_err(wrap(CALL))?;
            if let Some(seconds) = cx.timestamp {
                op = op.with_timestamp(seconds).map_err(wrap(CALL))?;
            }
            one(op.into())
        }
        // Both ids are already the same person: nothing to write.
        Target::Person {
            anonymous_id: None, ..
        } => Ok(Mapped::Skip(SkipReason::AlreadyMerged)),
        other => Err(mismatch(CALL, other)),
    }
}

fn delete(cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    const CALL: &str = "delete";
    match person(CALL, cx)? {
        Some(who) => {
            one(Operation::delete_person(who.clone()).map_err(MappingError::operation(CALL))?)
        }
        None => Ok(Mapped::Skip(SkipReason::AnonymousNotAllowed)),
    }
}
