//! Documented Customer.io limits as named constants, and checks that apply them before a
//! request is sent (the server's over-limit behaviour is not documented, so we refuse early).
//!
//! Sizes are bytes of UTF-8; "KB" in Customer.io's docs is taken as 1000 bytes, which keeps us
//! under the limit whichever unit the server uses.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::Error;

/// Longest person `id` value.
pub const MAX_ID_BYTES: usize = 150;
/// Longest attribute name.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 150;
/// Longest attribute value (serialised).
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1000;
/// Most distinct attributes in one identify call (and per person).
pub const MAX_ATTRIBUTES: usize = 300;
/// Longest object id.
pub const MAX_OBJECT_ID_BYTES: usize = 150;
/// Largest total of an object's or relationship's attributes.
pub const MAX_OBJECT_ATTRIBUTES_BYTES: usize = 100_000;
/// Longest event name.
pub const MAX_EVENT_NAME_BYTES: usize = 100;
/// Largest event `data` (v1) or `attributes` (v2) object, serialised.
pub const MAX_EVENT_DATA_BYTES: usize = 100_000;
/// Largest single v2 operation, serialised (also the `/api/v2/entity` request limit).
pub const MAX_OPERATION_BYTES: usize = 32_000;
/// Largest `/api/v2/batch` request body, `{"batch":[…]}` wrapper included.
pub const MAX_BATCH_REQUEST_BYTES: usize = 500_000;
/// Most ids in one manual-segment `add_customers` / `remove_customers` request.
pub const MAX_SEGMENT_IDS_PER_REQUEST: usize = 1000;
/// Most people in one App API attributes-by-id look-up.
pub const MAX_PEOPLE_PER_ATTRIBUTES_LOOKUP: usize = 100;

/// Track API rate limit per workspace in the current spec (soft, "not strictly enforced").
pub const TRACK_REQUESTS_PER_SECOND_DOCUMENTED: u32 = 1000;
/// Track API fair-use rate from older docs. The published numbers disagree; this lower one is
/// the safe default for a limiter.
pub const TRACK_REQUESTS_PER_SECOND_FAIR_USE: u32 = 100;
/// App API rate limit per workspace (one bucket shared by every App API call).
pub const APP_REQUESTS_PER_SECOND: u32 = 10;
/// API-triggered broadcasts: one request per this interval.
pub const BROADCAST_TRIGGER_INTERVAL: Duration = Duration::from_secs(10);
/// Transactional sends, per the older spec (the newer one shares the Track soft limit).
pub const TRANSACTIONAL_REQUESTS_PER_SECOND: u32 = 100;

/// Checks an attribute map against the name, value and count limits. `what` names the call in
/// the error (`"identify attributes"`); errors name the attribute, never its value.
pub fn check_attributes(
    operation: &'static str,
    what: &str,
    attributes: &Map<String, Value>,
) -> Result<(), Error> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(Error::invalid(
            operation,
            format!(
                "{what}: {} attributes; the limit is {MAX_ATTRIBUTES}",
                attributes.len()
            ),
        ));
    }
    for (name, value) in attributes {
        if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
            return Err(Error::invalid(
                operation,
                format!(
                    "{what}: an attribute name is {} bytes; the limit is {MAX_ATTRIBUTE_NAME_BYTES}",
                    name.len()
                ),
            ));
        }
        let size = value_size(value);
        if size > MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(Error::invalid(
                operation,
                format!(
                    "{what}: attribute `{name}` is {size} bytes; the limit is {MAX_ATTRIBUTE_VALUE_BYTES}"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks an event name (non-empty, at most [`MAX_EVENT_NAME_BYTES`]).
pub fn check_event_name(operation: &'static str, name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid(operation, "event name is empty"));
    }
    if name.len() > MAX_EVENT_NAME_BYTES {
        return Err(Error::invalid(
            operation,
            format!(
                "event name is {} bytes; the limit is {MAX_EVENT_NAME_BYTES}",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// Checks event data (at most [`MAX_EVENT_DATA_BYTES`] serialised).
pub fn check_event_data(operation: &'static str, data: &Map<String, Value>) -> Result<(), Error> {
    let size = serde_json::to_vec(data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_DATA_BYTES {
        return Err(Error::invalid(
            operation,
            format!("event data is {size} bytes; the limit is {MAX_EVENT_DATA_BYTES}"),
        ));
    }
    Ok(())
}

/// Size of a value as the server would count it: a string's own bytes, anything else
/// serialised.
fn value_size(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        other => serde_json::to_vec(other)
            .map(|v| v.len())
            .unwrap_or(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn attribute_limits_at_the_boundary() {
        let ok = map(json!({ "n".repeat(150): "v".repeat(1000) }));
        assert!(check_attributes("op", "attrs", &ok).is_ok());
        let long_name = map(json!({ "n".repeat(151): 1 }));
        assert!(check_attributes("op", "attrs", &long_name).is_err());
        let long_value = map(json!({ "plan": "v".repeat(1001) }));
        let err = check_attributes("op", "attrs", &long_value).unwrap_err();
        assert!(err.to_string().contains("`plan` is 1001 bytes"));
        assert!(!err.to_string().contains("vvv"));
        let many: Map<String, Value> = (0..301).map(|i| (format!("a{i}"), json!(i))).collect();
        assert!(check_attributes("op", "attrs", &many).is_err());
        let exactly: Map<String, Value> = (0..300).map(|i| (format!("a{i}"), json!(i))).collect();
        assert!(check_attributes("op", "attrs", &exactly).is_ok());
    }

    #[test]
    fn event_name_and_data_limits() {
        assert!(check_event_name("op", &"e".repeat(100)).is_ok());
        assert!(check_event_name("op", &"e".repeat(101)).is_err());
        assert!(check_event_name("op", "  ").is_err());
        // {"k":"…"} is 8 bytes of wrapper.
        let fits = map(json!({ "k": "x".repeat(MAX_EVENT_DATA_BYTES - 8) }));
        assert!(check_event_data("op", &fits).is_ok());
        let over = map(json!({ "k": "x".repeat(MAX_EVENT_DATA_BYTES - 7) }));
        assert!(check_event_data("op", &over).is_err());
    }
}
