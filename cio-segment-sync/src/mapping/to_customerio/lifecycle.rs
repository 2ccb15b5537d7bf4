//! Lifecycle events: reserved `track` names that stand for an operation (device, deletion,
//! suppression, object and relationship deletion) instead of an event. The rules are in the
//! [module docs](super#lifecycle-events).

use customerio_client::Identifier;
use customerio_client::track::v2::{
    AddDevice, DeleteDevice, Device, ObjectIdentifiers, ObjectRelationships, Operation, Platform,
    Relationship,
};
use segment_model::spec::DeviceAction;
use segment_model::{LifecycleEvent, Track};
use serde_json::{Map, Value};

use super::{
    Cx, IncompleteLifecycle, Mapped, MappingError, PROPERTY_OBJECT_ID_KEYS, PROPERTY_TYPE_KEYS,
    object_type_id, one, person, plain_event, plain_event_op, text_value,
};
use crate::identity::SkipReason;

pub(super) fn lifecycle(
    event: LifecycleEvent,
    call: &Track,
    cx: &Cx<'_>,
) -> Result<Mapped, MappingError> {
    let name = event.as_str();
    let wrap = MappingError::operation;
    let empty = Map::new();
    let props: &Map<String, Value> = call.properties.as_deref().unwrap_or(&empty);

    // The object-only operation needs no person.
    if event == LifecycleEvent::ObjectDeleted {
        return match lifecycle_object(name, props, cx)? {
            Some(object) => one(Operation::delete_object(object).map_err(wrap(name))?),
            None => incomplete(missing_object_id(name), call, cx),
        };
    }
    if matches!(
        event,
        LifecycleEvent::ReportDeliveryEvent | LifecycleEvent::ReportContentEvent
    ) {
        return Err(MappingError::Unsupported { event: name });
    }

    let Some(who) = person(name, cx)? else {
        return match cx.config.incomplete_lifecycle {
            IncompleteLifecycle::PlainEvent => plain_event(call, cx),
            IncompleteLifecycle::Error => Ok(Mapped::Skip(SkipReason::AnonymousNotAllowed)),
        };
    };
    let op = match event {
        LifecycleEvent::UserDeleted => Operation::delete_person(who.clone()),
        LifecycleEvent::UserSuppressed => Operation::suppress_person(who.clone()),
        LifecycleEvent::UserUnsuppressed => Operation::unsuppress_person(who.clone()),
        LifecycleEvent::RelationshipDeleted => {
            let Some(object) = lifecycle_object(name, props, cx)? else {
                return incomplete(missing_object_id(name), call, cx);
            };
            ObjectRelationships::new(object, vec![Relationship::new(who.clone())])
                .map(Operation::delete_object_relationships)
        }
        _ => match event.device_action() {
            Some(action) => return device(event, action, who, call, props, cx),
            None => return Err(MappingError::Unsupported { event: name }),
        },
    };
    one(op.map_err(wrap(name))?)
}

fn missing_object_id(call: &'static str) -> MappingError {
    MappingError::MissingField {
        call,
        field: "properties.objectId",
    }
}

/// A lifecycle event that lacks data: the error, or a plain event when so configured.
fn incomplete(err: MappingError, call: &Track, cx: &Cx<'_>) -> Result<Mapped, MappingError> {
    match cx.config.incomplete_lifecycle {
        IncompleteLifecycle::PlainEvent => plain_event(call, cx),
        IncompleteLifecycle::Error => Err(err),
    }
}

/// The object a lifecycle event names; `None` when no object id is given.
fn lifecycle_object(
    call: &'static str,
    props: &Map<String, Value>,
    cx: &Cx<'_>,
) -> Result<Option<ObjectIdentifiers>, MappingError> {
    let object_id = match text_value(props, PROPERTY_OBJECT_ID_KEYS, call)? {
        Some(id) => id.into_owned(),
        None => match cx
            .common
            .context
            .as_ref()
            .and_then(|c| c.group_id.as_ref())
            .map(|id| id.as_str().into_owned())
            .filter(|id| !id.is_empty())
        {
            Some(id) => id,
            None => return Ok(None),
        },
    };
    let object_type = object_type_id(props, PROPERTY_TYPE_KEYS, call, cx)?;
    ObjectIdentifiers::new(object_type, object_id)
        .map(Some)
        .map_err(MappingError::operation(call))
}

fn device(
    event: LifecycleEvent,
    action: DeviceAction,
    who: &Identifier,
    call: &Track,
    props: &Map<String, Value>,
    cx: &Cx<'_>,
) -> Result<Mapped, MappingError> {
    let name = event.as_str();
    let wrap = MappingError::operation;
    let context = cx.common.context.as_ref();
    let ctx_device = context.and_then(|c| c.device.as_ref());
    let non_empty = |v: Option<&str>| v.filter(|s| !s.trim().is_empty()).map(str::to_owned);

    // `context.device` is decoded leniently: a token or type of the wrong JSON type sits in
    // `extra` with the typed field empty. Such a value is reported as invalid, not missing.
    let nonconforming =
        |key: &str| ctx_device.is_some_and(|d| d.extra.get(key).is_some_and(|v| !v.is_null()));
    let token = non_empty(ctx_device.and_then(|d| d.token.as_deref()))
        .or_else(|| non_empty(props.get("device_id").and_then(Value::as_str)))
        .or_else(|| non_empty(props.get("token").and_then(Value::as_str)));
    let Some(token) = token else {
        let err = if nonconforming("token") {
            MappingError::InvalidField {
                call: name,
                field: "context.device.token",
                problem: "is not a string",
            }
        } else {
            MappingError::MissingField {
                call: name,
                field: "context.device.token",
            }
        };
        return incomplete(err, call, cx);
    };

    let op: Operation = match action {
        DeviceAction::Upsert => {
            let (field, raw) = match non_empty(ctx_device.and_then(|d| d.device_type.as_deref())) {
                Some(raw) => ("context.device.type", Some(raw)),
                None => (
                    "properties.platform",
                    non_empty(props.get("platform").and_then(Value::as_str)),
                ),
            };
            let Some(raw) = raw else {
                let err = if nonconforming("type") {
                    MappingError::InvalidField {
                        call: name,
                        field: "context.device.type",
                        problem: "is not a string",
                    }
                } else {
                    MappingError::MissingField {
                        call: name,
                        field: "context.device.type",
                    }
                };
                return incomplete(err, call, cx);
            };
            let Some(platform) = platform(&raw) else {
                return incomplete(
                    MappingError::InvalidField {
                        call: name,
                        field,
                        problem: "is not an iOS or Android device type",
                    },
                    call,
                    cx,
                );
            };
            let mut device = Device::new(token, platform).map_err(wrap(name))?;
            if let Some(seconds) = cx.timestamp {
                device = device.with_last_used(seconds).map_err(wrap(name))?;
            }
            let attributes = [
                (
                    "app_version",
                    context.and_then(|c| c.app.as_ref()?.version.as_deref()),
                ),
                (
                    "device_os",
                    context.and_then(|c| c.os.as_ref()?.version.as_deref()),
                ),
                ("device_model", ctx_device.and_then(|d| d.model.as_deref())),
                ("device_locale", context.and_then(|c| c.locale.as_deref())),
            ];
            for (key, value) in attributes {
                if let Some(value) = value.filter(|v| !v.is_empty()) {
                    device = device.with_attribute(key, value);
                }
            }
            AddDevice::new(who.clone(), device)
                .map_err(wrap(name))?
                .into()
        }
        DeviceAction::Delete => DeleteDevice::new(who.clone(), token)
            .map_err(wrap(name))?
            .into(),
        _ => return Err(MappingError::Unsupported { event: name }),
    };
    let mut ops = vec![op];
    if cx.config.forward_device_events {
        ops.push(plain_event_op(call, cx)?);
    }
    Ok(Mapped::Operations(ops))
}

/// `ios` for Apple device types, `android` for Android, `None` for anything else.
fn platform(raw: &str) -> Option<Platform> {
    let lower = raw.trim().to_ascii_lowercase();
    match lower.as_str() {
        "ios" | "ipados" | "iphone" | "ipad" | "ipod" | "iphoneos" | "tvos" | "watchos"
        | "visionos" => Some(Platform::Ios),
        "android" => Some(Platform::Android),
        _ => None,
    }
}
