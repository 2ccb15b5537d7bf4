//! Who a call is about: a person by `id`, `email`, `cio_id` or `phone`.
//!
//! The two Track API versions write identifiers differently:
//! - **v1** puts the identifier in the URL path. An id or email is percent-encoded; a `cio_id`
//!   is written with its `cio_` prefix; a phone is not allowed (it would be read as an id).
//! - **v2** sends an object with exactly one key: `{"id": …}`, `{"email": …}`,
//!   `{"cio_id": …}` (raw, no prefix) or `{"phone": …}`.
//!
//! ```
//! use customerio_client::Identifier;
//!
//! assert_eq!(Identifier::email("ada+news@example.com").v1_path_segment()?, "ada%2Bnews%40example.com");
//! assert_eq!(Identifier::cio_id("cio_a3000001").v1_path_segment()?, "cio_a3000001");
//! assert!(Identifier::phone("+14155550100").v1_path_segment().is_err());
//!
//! let v2 = serde_json::to_value(Identifier::cio_id("cio_a3000001"))?;
//! assert_eq!(v2, serde_json::json!({"cio_id": "a3000001"}));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::limits::MAX_ID_BYTES;

/// Characters left as they are in a path segment: RFC 3986 unreserved characters. Everything
/// else (`/`, `@`, `+`, space, `&`, `%`, unicode, …) is percent-encoded.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `value` for use as one URL path segment.
pub fn encode_path_segment(value: &str) -> String {
    utf8_percent_encode(value, PATH_SEGMENT).to_string()
}

/// The kind of a person identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierKind {
    /// The workspace's own id for the person.
    Id,
    /// An email address.
    Email,
    /// Customer.io's immutable id.
    CioId,
    /// A phone number in E.164 form (Track v2 only).
    Phone,
}

impl IdentifierKind {
    /// The wire name: `id`, `email`, `cio_id` or `phone`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Id => "id",
            IdentifierKind::Email => "email",
            IdentifierKind::CioId => "cio_id",
            IdentifierKind::Phone => "phone",
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person identifier. Serialises as the Track v2 `identifiers` object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identifier {
    /// The workspace's own id.
    Id(String),
    /// An email address.
    Email(String),
    /// Customer.io's id, stored raw (without the `cio_` prefix).
    CioId(String),
    /// A phone number (E.164). Track v2 only.
    Phone(String),
}

impl Identifier {
    /// A person by id.
    pub fn id(value: impl Into<String>) -> Self {
        Identifier::Id(value.into())
    }

    /// A person by email.
    pub fn email(value: impl Into<String>) -> Self {
        Identifier::Email(value.into())
    }

    /// A person by Customer.io id; accepts the value with or without its `cio_` prefix.
    pub fn cio_id(value: impl Into<String>) -> Self {
        let value = value.into();
        match value.strip_prefix("cio_") {
            Some(raw) => Identifier::CioId(raw.to_owned()),
            None => Identifier::CioId(value),
        }
    }

    /// A person by phone number (Track v2 only).
    pub fn phone(value: impl Into<String>) -> Self {
        Identifier::Phone(value.into())
    }

    /// The kind of identifier.
    pub fn kind(&self) -> IdentifierKind {
        match self {
            Identifier::Id(_) => IdentifierKind::Id,
            Identifier::Email(_) => IdentifierKind::Email,
            Identifier::CioId(_) => IdentifierKind::CioId,
            Identifier::Phone(_) => IdentifierKind::Phone,
        }
    }

    /// The raw value (a `cio_id` without its prefix).
    pub fn value(&self) -> &str {
        match self {
            Identifier::Id(v)
            | Identifier::Email(v)
            | Identifier::CioId(v)
            | Identifier::Phone(v) => v,
        }
    }

    /// Checks the value is not empty and within the documented id length (150 bytes).
    pub fn validate(&self) -> Result<(), Error> {
        let value = self.value();
        if value.is_empty() {
            return Err(Error::invalid(
                "identifier",
                format!("{} is empty", self.kind()),
            ));
        }
        if value.len() > MAX_ID_BYTES {
            return Err(Error::invalid(
                "identifier",
                format!(
                    "{} is {} bytes; the limit is {MAX_ID_BYTES}",
                    self.kind(),
                    value.len()
                ),
            ));
        }
        Ok(())
    }

    /// The identifier as a Track v1 path segment: percent-encoded id or email, or
    /// `cio_<value>`. A phone is refused: v1 paths would read it as an id.
    pub fn v1_path_segment(&self) -> Result<String, Error> {
        self.validate()?;
        match self {
            Identifier::Id(v) | Identifier::Email(v) => Ok(encode_path_segment(v)),
            Identifier::CioId(v) => Ok(format!("cio_{}", encode_path_segment(v))),
            Identifier::Phone(_) => Err(Error::invalid(
                "identifier",
                "a phone number cannot identify a person in a Track v1 path; use Track v2",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_segments_are_percent_encoded() {
        let cases = [
            (Identifier::id("a/b"), "a%2Fb"),
            (Identifier::id("with space"), "with%20space"),
            (Identifier::id("a+b"), "a%2Bb"),
            (Identifier::id("zoë-日本"), "zo%C3%AB-%E6%97%A5%E6%9C%AC"),
            (
                Identifier::email("ada.l+x@example.com"),
                "ada.l%2Bx%40example.com",
            ),
            (Identifier::id("a&b?c#d%e"), "a%26b%3Fc%23d%25e"),
            (Identifier::id("plain-id_1.2~3"), "plain-id_1.2~3"),
            (Identifier::cio_id("a3000001"), "cio_a3000001"),
            (Identifier::cio_id("cio_a3000001"), "cio_a3000001"),
        ];
        for (identifier, expected) in cases {
            assert_eq!(
                identifier.v1_path_segment().unwrap(),
                expected,
                "{identifier:?}"
            );
        }
    }

    #[test]
    fn phone_is_refused_in_v1_paths() {
        let err = Identifier::phone("+14155550100")
            .v1_path_segment()
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        assert!(!err.to_string().contains("4155550100"));
    }

    #[test]
    fn v2_objects_have_one_key_and_raw_cio_id() {
        assert_eq!(
            serde_json::to_value(Identifier::id("u1")).unwrap(),
            json!({"id": "u1"})
        );
        assert_eq!(
            serde_json::to_value(Identifier::email("a@b.c")).unwrap(),
            json!({"email": "a@b.c"})
        );
        assert_eq!(
            serde_json::to_value(Identifier::cio_id("cio_03")).unwrap(),
            json!({"cio_id": "03"})
        );
        assert_eq!(
            serde_json::to_value(Identifier::phone("+1415")).unwrap(),
            json!({"phone": "+1415"})
        );
        let back: Identifier = serde_json::from_value(json!({"cio_id": "03"})).unwrap();
        assert_eq!(back, Identifier::cio_id("03"));
    }

    #[test]
    fn length_and_emptiness_are_checked_without_leaking_the_value() {
        assert!(Identifier::id("x".repeat(150)).validate().is_ok());
        let err = Identifier::id("secret-".repeat(30)).validate().unwrap_err();
        assert!(err.to_string().contains("210 bytes"));
        assert!(!err.to_string().contains("secret"));
        assert!(Identifier::email("").v1_path_segment().is_err());
    }
}
