//! Checks shared by the v2 operation types: serialised size, identifiers, timestamps and
//! attribute limits, and the ULID text form of event ids.

use std::io;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use ulid::Ulid;

use crate::error::Error;
use crate::identifier::Identifier;
use crate::limits::{self, MAX_OBJECT_ATTRIBUTES_BYTES};

/// Largest timestamp accepted: ten digits of Unix seconds. Anything longer is almost surely
/// milliseconds (the Ruby SDK refuses such values for the same reason).
pub const MAX_TIMESTAMP_SECONDS: i64 = 9_999_999_999;

/// Counts bytes written, so a value's serialised size is known without allocating it.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn serialized_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        // A value that cannot be serialised cannot be sent either: report it as too large.
        Err(_) => usize::MAX,
    }
}

pub(super) fn check_person(op: &'static str, field: &str, who: &Identifier) -> Result<(), Error> {
    let value = who.value();
    if value.is_empty() {
        return Err(Error::invalid(
            op,
            format!("{field}: {} is empty", who.kind()),
        ));
    }
    if value.len() > limits::MAX_ID_BYTES {
        return Err(Error::invalid(
            op,
            format!(
                "{field}: {} is {} bytes; the limit is {}",
                who.kind(),
                value.len(),
                limits::MAX_ID_BYTES
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_not_empty(op: &'static str, field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(op, format!("{field} is empty")));
    }
    Ok(())
}

pub(super) fn check_timestamp(
    op: &'static str,
    field: &str,
    seconds: Option<i64>,
) -> Result<(), Error> {
    match seconds {
        Some(s) if !(-MAX_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&s) => {
            Err(Error::invalid(
                op,
                format!(
                    "{field} has more than ten digits; Customer.io expects Unix seconds, not milliseconds"
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Person attribute limits: names, values and count.
pub(super) fn check_person_attributes(
    op: &'static str,
    what: &str,
    attributes: &Map<String, Value>,
) -> Result<(), Error> {
    limits::check_attributes(op, what, attributes)
}

/// Object and relationship attribute limits: the person limits plus a total size.
pub(super) fn check_object_attributes(
    op: &'static str,
    what: &str,
    attributes: &Map<String, Value>,
) -> Result<(), Error> {
    limits::check_attributes(op, what, attributes)?;
    let size = serialized_len(attributes);
    if size > MAX_OBJECT_ATTRIBUTES_BYTES {
        return Err(Error::invalid(
            op,
            format!("{what}: {size} bytes in total; the limit is {MAX_OBJECT_ATTRIBUTES_BYTES}"),
        ));
    }
    Ok(())
}

/// Event attributes (v1 `data`): only the total size is documented.
pub(super) fn check_event_attributes(
    op: &'static str,
    attributes: &Map<String, Value>,
) -> Result<(), Error> {
    limits::check_event_data(op, attributes)
}

/// `Option<Ulid>` as the 26-character text form.
pub(super) mod ulid_text {
    use super::*;

    pub(in crate::track::v2) fn serialize<S: Serializer>(
        id: &Option<Ulid>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_str(&id.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(in crate::track::v2) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Ulid>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                Ulid::from_string(&text).map_err(|_| D::Error::custom("`id` is not a ULID"))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn byte_counter_matches_to_vec() {
        let value = json!({"a": [1, 2.5, "x\u{e9}\""], "b": null});
        assert_eq!(
            serialized_len(&value),
            serde_json::to_vec(&value).unwrap().len()
        );
    }
}
