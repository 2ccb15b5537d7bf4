//! Checks shared by the v1 calls: timestamps in Unix seconds, id values, person identifiers
//! and the person path.

use crate::error::Error;
use crate::identifier::Identifier;
use crate::limits::MAX_ID_BYTES;

/// Timestamps at or above this many seconds (the year 2286) are refused: they are almost
/// certainly milliseconds. Customer.io takes Unix seconds.
pub const TIMESTAMP_SECONDS_LIMIT: u64 = 10_000_000_000;

pub(super) fn check_timestamp(
    operation: &'static str,
    field: &str,
    seconds: u64,
) -> Result<(), Error> {
    if seconds >= TIMESTAMP_SECONDS_LIMIT {
        return Err(Error::invalid(
            operation,
            format!("{field} is not Unix seconds (it has more than 10 digits; milliseconds?)"),
        ));
    }
    Ok(())
}

pub(super) fn check_id_value(
    operation: &'static str,
    field: &str,
    value: &str,
) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(operation, format!("{field} is empty")));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(Error::invalid(
            operation,
            format!(
                "{field} is {} bytes; the limit is {MAX_ID_BYTES}",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Checks a person identifier for a v1 call and names the field in the error.
pub(super) fn check_person(
    operation: &'static str,
    field: &str,
    person: &Identifier,
) -> Result<(), Error> {
    if let Identifier::Phone(_) = person {
        return Err(Error::invalid(
            operation,
            format!(
                "{field}: a phone number cannot identify a person in Track v1; use an id, email or cio_id (or Track v2)"
            ),
        ));
    }
    check_id_value(
        operation,
        &format!("{field} {}", person.kind()),
        person.value(),
    )
}

/// The path of a person: `/api/v1/customers/{identifier}`.
pub(super) fn person_path(operation: &'static str, person: &Identifier) -> Result<String, Error> {
    check_person(operation, "person", person)?;
    Ok(format!("/api/v1/customers/{}", person.v1_path_segment()?))
}

/// Helpers for the unit tests of the v1 files.
#[cfg(test)]
pub(super) mod test_support {
    use crate::ErrorKind;
    use crate::error::Error;

    pub(in crate::track::v1) const OP: &str = "test";

    pub(in crate::track::v1) fn invalid_message(err: Error) -> String {
        assert_eq!(err.kind(), ErrorKind::Invalid);
        err.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{OP, invalid_message};
    use super::*;

    #[test]
    fn person_checks_name_the_side() {
        let err = check_person(OP, "secondary", &Identifier::phone("+14155550100")).unwrap_err();
        let shown = invalid_message(err);
        assert!(shown.contains("secondary: a phone number"));
        assert!(!shown.contains("4155550100"));
        let err = check_person(OP, "primary", &Identifier::email("")).unwrap_err();
        assert!(invalid_message(err).contains("primary email is empty"));
    }
}
