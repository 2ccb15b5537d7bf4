//! Manual segments: the [`SegmentIdType`] of the `ids`, the request body and the check of the
//! ids.

use serde::Serialize;
use serde::ser::Serializer;

use crate::error::Error;
use crate::limits::{MAX_ID_BYTES, MAX_SEGMENT_IDS_PER_REQUEST};

/// What the `ids` of a manual-segment call are (`id_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SegmentIdType {
    /// Person ids (the server's default).
    #[default]
    Id,
    /// Email addresses.
    Email,
    /// Customer.io ids.
    CioId,
}

impl SegmentIdType {
    /// The wire value: `id`, `email` or `cio_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentIdType::Id => "id",
            SegmentIdType::Email => "email",
            SegmentIdType::CioId => "cio_id",
        }
    }
}

#[derive(Serialize)]
pub(super) struct SegmentIdsBody<'a, S: AsRef<str>> {
    #[serde(serialize_with = "serialize_str_refs")]
    pub(super) ids: &'a [S],
}

fn serialize_str_refs<S: AsRef<str>, Z: Serializer>(
    ids: &[S],
    serializer: Z,
) -> Result<Z::Ok, Z::Error> {
    serializer.collect_seq(ids.iter().map(AsRef::as_ref))
}

pub(super) fn check_segment_ids<S: AsRef<str>>(
    operation: &'static str,
    id_type: SegmentIdType,
    ids: &[S],
) -> Result<(), Error> {
    if ids.is_empty() || ids.len() > MAX_SEGMENT_IDS_PER_REQUEST {
        return Err(Error::invalid(
            operation,
            format!(
                "ids holds {} entries; 1 to {MAX_SEGMENT_IDS_PER_REQUEST} are allowed",
                ids.len()
            ),
        ));
    }
    for (index, id) in ids.iter().enumerate() {
        let id = id.as_ref();
        if id.is_empty() {
            return Err(Error::invalid(operation, format!("ids[{index}] is empty")));
        }
        if id_type == SegmentIdType::Id && id.len() > MAX_ID_BYTES {
            return Err(Error::invalid(
                operation,
                format!(
                    "ids[{index}] is {} bytes; the limit is {MAX_ID_BYTES}",
                    id.len()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{OP, invalid_message};
    use super::*;

    #[test]
    fn segment_id_bounds() {
        let none: [&str; 0] = [];
        assert!(
            invalid_message(check_segment_ids(OP, SegmentIdType::Id, &none).unwrap_err())
                .contains("0 entries")
        );
        let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
        assert!(
            invalid_message(check_segment_ids(OP, SegmentIdType::Id, &many).unwrap_err())
                .contains("1001 entries")
        );
        assert!(check_segment_ids(OP, SegmentIdType::Id, &many[..1000]).is_ok());
        let blank = ["a", ""];
        assert!(
            invalid_message(check_segment_ids(OP, SegmentIdType::Email, &blank).unwrap_err())
                .contains("ids[1] is empty")
        );
        let long = ["x".repeat(151)];
        assert!(check_segment_ids(OP, SegmentIdType::Id, &long).is_err());
        assert!(check_segment_ids(OP, SegmentIdType::Email, &long).is_ok());
    }
}
