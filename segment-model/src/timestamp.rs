//! [`Timestamp`]: an instant plus the exact text it was read from.
//!
//! Segment's SDKs disagree on how they write ISO-8601: zero to nine fractional digits, `Z` or a
//! numeric offset with or without a colon, and plain dates for `Date` values. A [`Timestamp`]
//! accepts all of these, exposes the instant as a [`jiff::Timestamp`], and serialises back the
//! exact text it was parsed from, so a payload round-trips byte for byte in that field.
//!
//! Accepted forms (anything [`jiff`]'s RFC 3339 / ISO 8601 parser takes with an offset, plus
//! plain dates):
//!
//! | input | instant |
//! |---|---|
//! | `2024-05-01T10:15:30.123Z` | as written |
//! | `2024-05-01T10:15:30Z`, `...30.123456789Z` | 0-9 fractional digits |
//! | `2024-05-01T10:15:30.123+00:00`, `...+0000`, `...-07:00` | offset applied |
//! | `2024-05-01` | midnight UTC of that date |
//!
//! Rejected: date-times without an offset (`2024-05-01T10:15:30`), because the instant they
//! mean depends on a zone nobody recorded, and malformed dates such as `2015-2-02`.

use std::fmt;
use std::str::FromStr;

use jiff::fmt::temporal::DateTimePrinter;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::Error;
use crate::error::decode::{FromJson, Path};

/// Prints `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form Segment's own servers use.
const MILLIS_PRINTER: DateTimePrinter = DateTimePrinter::new().precision(Some(3));

/// An instant read from (or written as) an ISO-8601 string, keeping the original text.
///
/// Equality and hashing compare both the instant and the text, so two values that denote the
/// same instant in different notations are not equal; compare [`Timestamp::instant`] for
/// chronology.
///
/// ```
/// use segment_model::Timestamp;
///
/// let ts: Timestamp = "2024-05-01T12:15:30.5+02:00".parse()?;
/// assert_eq!(ts.as_str(), "2024-05-01T12:15:30.5+02:00");
/// assert_eq!(ts.instant().to_string(), "2024-05-01T10:15:30.5Z");
/// assert_eq!(ts.as_unix_seconds(), 1_714_558_530);
///
/// let date_only: Timestamp = "2024-05-01".parse()?;
/// assert_eq!(date_only.instant().to_string(), "2024-05-01T00:00:00Z");
/// # Ok::<(), segment_model::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    instant: jiff::Timestamp,
    text: String,
}

impl Timestamp {
    /// The current time, written as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn now() -> Self {
        Self::from_instant(jiff::Timestamp::now())
    }

    /// Wraps an instant, written as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    ///
    /// The instant is truncated to whole milliseconds so that [`Timestamp::instant`] is exactly
    /// what the text says.
    pub fn from_instant(instant: jiff::Timestamp) -> Self {
        let nanos = i128::from(instant.subsec_nanosecond().rem_euclid(1_000_000));
        // Truncating towards the earlier millisecond stays inside jiff's range: the earliest
        // representable instant is itself a whole second.
        let instant =
            jiff::Timestamp::from_nanosecond(instant.as_nanosecond() - nanos).unwrap_or(instant);
        Self {
            instant,
            text: MILLIS_PRINTER.timestamp_to_string(&instant),
        }
    }

    /// Parses one of the accepted ISO-8601 forms (see the module docs).
    ///
    /// The error does not say which field the text came from; decoding a message reports
    /// [`Error::InvalidTimestamp`] with the field's path instead.
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse_instant(text)
            .map(|instant| Self {
                instant,
                text: text.to_owned(),
            })
            .ok_or_else(|| Error::InvalidTimestamp {
                path: "timestamp".to_owned(),
            })
    }

    /// The instant this timestamp denotes.
    pub fn instant(&self) -> jiff::Timestamp {
        self.instant
    }

    /// The text this timestamp was parsed from (or formatted as).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whole seconds since the Unix epoch, rounded towards negative infinity.
    pub fn as_unix_seconds(&self) -> i64 {
        // jiff truncates towards zero; step back one unit for a negative fractional part.
        let nanos = self.instant.subsec_nanosecond();
        self.instant.as_second() - i64::from(nanos < 0)
    }

    /// Milliseconds since the Unix epoch, rounded towards negative infinity.
    pub fn as_unix_millis(&self) -> i64 {
        let nanos = self.instant.subsec_nanosecond();
        self.instant.as_millisecond() - i64::from(nanos < 0 && nanos % 1_000_000 != 0)
    }

    /// The instant formatted canonically as `YYYY-MM-DDTHH:MM:SS.mmmZ` (sub-millisecond
    /// digits truncated), regardless of the original notation.
    pub fn to_canonical_string(&self) -> String {
        Self::from_instant(self.instant).text
    }

    /// Reads `value` at `path` as a timestamp (used by decoders that know the field name).
    pub(crate) fn from_value_at(value: &Value, path: &Path<'_>) -> Result<Self, Error> {
        match value {
            Value::String(text) => parse_instant(text)
                .map(|instant| Self {
                    instant,
                    text: text.clone(),
                })
                .ok_or_else(|| Error::InvalidTimestamp {
                    path: path.render(),
                }),
            other => Err(path.wrong_type("an ISO-8601 timestamp string", other)),
        }
    }
}

/// Parses an instant from any accepted notation.
fn parse_instant(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        return Some(instant);
    }
    // A plain calendar date means midnight UTC. Require the exact `YYYY-MM-DD` shape: jiff
    // would also accept `YYYYMMDD`, which is more likely a number than a date.
    let bytes = text.as_bytes();
    if bytes.len() == 10 && bytes.get(4) == Some(&b'-') && bytes.get(7) == Some(&b'-') {
        let date: jiff::civil::Date = text.parse().ok()?;
        return date
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    None
}

impl FromStr for Timestamp {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<jiff::Timestamp> for Timestamp {
    fn from(instant: jiff::Timestamp) -> Self {
        Self::from_instant(instant)
    }
}

impl From<Timestamp> for jiff::Timestamp {
    fn from(ts: Timestamp) -> Self {
        ts.instant
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_instant(&text)
            .map(|instant| Self { instant, text })
            .ok_or_else(|| serde::de::Error::custom("not an ISO-8601 timestamp"))
    }
}

impl FromJson for Timestamp {
    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
        Self::from_value_at(&value, path)
    }

    fn accepts(value: &Value) -> bool {
        value
            .as_str()
            .is_some_and(|text| parse_instant(text).is_some())
    }
}
