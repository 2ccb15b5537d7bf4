//! Strict ISO-8601 detection and conversion of attribute values to Unix seconds.

use segment_model::{Common, Timestamp};
use serde_json::{Map, Value};

/// The Unix time (whole seconds) of `text` when it is a strict ISO-8601 date or date-time;
/// `None` for anything else.
///
/// Accepted shapes, and nothing else:
///
/// - a calendar date `YYYY-MM-DD` (midnight UTC);
/// - a date-time `YYYY-MM-DDTHH:MM`, optionally with `:SS` and then optionally 1 to 9
///   fractional digits, followed by an offset: `Z`, `±HH`, `±HHMM` or `±HH:MM`.
///
/// The shape check comes first; the text must then also be a real instant for
/// [`segment_model::Timestamp`]'s parser (so `2024-13-01` and `2024-02-30` are refused). A
/// date-time without an offset is left alone: the instant it means depends on a zone nobody
/// recorded. Phone numbers, ids, numeric strings and free text never match.
///
/// ```
/// use cio_segment_sync::mapping::iso8601_unix_seconds;
///
/// assert_eq!(iso8601_unix_seconds("2024-05-01"), Some(1_714_521_600));
/// assert_eq!(iso8601_unix_seconds("2024-05-01T10:15:30.123456789+02:00"), Some(1_714_551_330));
/// assert_eq!(iso8601_unix_seconds("+14155550100"), None);
/// assert_eq!(iso8601_unix_seconds("2024-13-01"), None);
/// ```
pub fn iso8601_unix_seconds(text: &str) -> Option<i64> {
    if !has_iso_shape(text.as_bytes()) {
        return None;
    }
    Timestamp::parse(text).ok().map(|ts| ts.as_unix_seconds())
}

/// Checks the byte shape described on [`iso8601_unix_seconds`].
fn has_iso_shape(b: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    let byte = |at: usize| b.get(at).copied();
    // YYYY-MM-DD
    let date = digits(0..4)
        && byte(4) == Some(b'-')
        && digits(5..7)
        && byte(7) == Some(b'-')
        && digits(8..10);
    if !date {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    // THH:MM
    if !(byte(10) == Some(b'T') && digits(11..13) && byte(13) == Some(b':') && digits(14..16)) {
        return false;
    }
    let mut at = 16;
    // :SS, then .fffffffff
    if byte(at) == Some(b':') {
        if !digits(at + 1..at + 3) {
            return false;
        }
        at += 3;
        if byte(at) == Some(b'.') {
            let fraction = b.get(at + 1..).map_or(0, |rest| {
                rest.iter().take_while(|c| c.is_ascii_digit()).count()
            });
            if !(1..=9).contains(&fraction) {
                return false;
            }
            at += 1 + fraction;
        }
    }
    // Z | ±HH | ±HHMM | ±HH:MM
    let Some(rest) = b.get(at..) else {
        return false;
    };
    match rest {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2] => h1.is_ascii_digit() && h2.is_ascii_digit(),
        [b'+' | b'-', offset @ ..] if offset.len() == 4 => offset.iter().all(u8::is_ascii_digit),
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Replaces every strict ISO-8601 string in `value` (walking nested objects and arrays) by its
/// Unix seconds.
pub(crate) fn convert_value(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Some(seconds) = iso8601_unix_seconds(text) {
                *value = Value::from(seconds);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert_value),
        Value::Object(map) => convert_map(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// [`convert_value`] on every value of `map`.
pub(crate) fn convert_map(map: &mut Map<String, Value>) {
    map.values_mut().for_each(convert_value);
}

/// The time a message happened: `timestamp`, else `originalTimestamp`, else `receivedAt`.
pub(crate) fn event_time(common: &Common) -> Option<&Timestamp> {
    common
        .timestamp
        .as_ref()
        .or(common.original_timestamp.as_ref())
        .or(common.received_at.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_table() {
        let converts = [
            ("2024-05-01", 1_714_521_600),
            ("2024-05-01T10:15:30Z", 1_714_558_530),
            ("2024-05-01T10:15:30.123Z", 1_714_558_530),
            ("2024-05-01T10:15:30.123456789+02:00", 1_714_551_330),
            ("2024-05-01T12:15:30.123+0200", 1_714_558_530),
            ("2024-05-01T12:15:30+02", 1_714_558_530),
            ("2024-05-01T03:15:30.1-07:00", 1_714_558_530),
            ("2024-05-01T10:15Z", 1_714_558_500),
            ("1969-12-31T23:59:59.5Z", -1),
        ];
        for (text, seconds) in converts {
            assert_eq!(iso8601_unix_seconds(text), Some(seconds), "{text}");
        }
        let stays = [
            "+14155550100",
            "12345",
            "2024-13-01",
            "2024-02-30",
            "May 1",
            "May 1, 2024",
            "2024-05-01T10:15:30",
            "2024-05-01 10:15:30Z",
            "2024-05-01t10:15:30z",
            "2024-05-01T10:15:30.Z",
            "2024-05-01T10:15:30.1234567890Z",
            "2024-5-01",
            "20240501",
            "2024-05-01T10:15:30+2:00",
            "2024-05-01T10:15:30Z ",
            " 2024-05-01",
            "2024-05-01T",
            "2024-05-01T10",
            "2024-05-01T10:15:3Z",
            "",
            "2015-2-02T00:30:08.276Z",
            "١٩٩٠-٠٤-١٧",
        ];
        for text in stays {
            assert_eq!(iso8601_unix_seconds(text), None, "{text:?}");
        }
    }

    #[test]
    fn nested_values_are_walked_and_non_strings_untouched() {
        let mut value = serde_json::json!({
            "a": "2024-05-01",
            "b": [1, "2024-05-01T10:15:30Z", {"c": "2024-05-01"}, null, true],
            "phone": "+14155550100",
            "n": 1714558530,
            "f": 1.5
        });
        convert_value(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "a": 1_714_521_600,
                "b": [1, 1_714_558_530, {"c": 1_714_521_600}, null, true],
                "phone": "+14155550100",
                "n": 1714558530,
                "f": 1.5
            })
        );
    }
}
