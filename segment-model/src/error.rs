//! The crate's error type and the JSON decoding support shared by every wire type.
//!
//! Every decode error names *where* the problem is (a JSON path such as `traits`,
//! `context.externalIds[2]` or, for batches, the item index) and *what* was wrong, but never echoes the offending value: the
//! values are customer data (ids, emails) and error messages end up in logs.

use std::fmt;

use serde_json::Value;

use crate::message::MessageKind;
use crate::validate::Violations;

/// Everything that can go wrong when decoding or building Segment messages.
///
/// The `Display` output names the field or JSON path at fault and never contains a customer
/// id, an email address or a secret.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not syntactically valid JSON (or ends early).
    #[error("malformed JSON at line {line}, column {column}")]
    Json {
        /// 1-based line of the first syntax error.
        line: usize,
        /// 1-based column of the first syntax error.
        column: usize,
        /// The parser's own error. For syntax errors it describes the grammar problem only.
        /// (Shared so that [`Error`] can be cloned.)
        #[source]
        source: std::sync::Arc<serde_json::Error>,
    },

    /// The message has no `type` key.
    #[error("`type` is missing")]
    MissingType,

    /// The message's `type` is present but is not a string.
    #[error("`type`: expected a string, found {found}")]
    TypeNotString {
        /// The JSON type that was found instead.
        found: JsonType,
    },

    /// The message's `type` is a string this crate does not know.
    #[error("`type`: unknown message type {}", shown_type(found))]
    UnknownType {
        /// The `type` value as received, cut to its first 64 characters. `Display` shows it
        /// only when it looks like a type tag (a short word of ASCII letters, digits, `_`, `-`),
        /// so a misplaced email or id never reaches a log line.
        found: String,
    },

    /// The message's `type` contradicts the kind the caller said the endpoint implies.
    #[error("`type`: expected `{expected}`, found `{found}`")]
    TypeMismatch {
        /// The kind implied by the endpoint.
        expected: MessageKind,
        /// The kind named by the payload.
        found: MessageKind,
    },

    /// A required key is absent.
    #[error("`{path}` is missing")]
    MissingField {
        /// JSON path of the missing key.
        path: String,
    },

    /// A value has the wrong JSON type, e.g. `traits` given as a string.
    #[error("`{path}`: expected {expected}, found {found}")]
    WrongType {
        /// JSON path of the offending value (`message` for the top level).
        path: String,
        /// What the field must hold, in words ("an object", "a string or a number").
        expected: &'static str,
        /// The JSON type that was found instead.
        found: JsonType,
    },

    /// A timestamp field holds a string that is not an ISO-8601 timestamp with an offset, or a
    /// plain `YYYY-MM-DD` date.
    #[error("`{path}`: not an ISO-8601 timestamp")]
    InvalidTimestamp {
        /// JSON path of the offending value.
        path: String,
    },

    /// A numeric value cannot be interpreted the way the accessor needs (for example a unix
    /// time outside the representable range).
    #[error("`{path}`: number out of range")]
    OutOfRange {
        /// JSON path of the offending value.
        path: String,
    },

    /// An item of a batch failed to decode. `index` is its position in the `batch` array and
    /// `source` the item's own error, whose path is relative to the item.
    #[error("`batch[{index}]`: {source}")]
    BatchItem {
        /// Position of the item in the `batch` array.
        index: usize,
        /// What was wrong with the item.
        #[source]
        source: Box<Error>,
    },

    /// A builder was asked to produce a message that breaks Segment's rules. Each violation
    /// names its field.
    #[error("invalid message: {0}")]
    Invalid(#[from] Violations),
}

impl Error {
    /// The JSON path of the value at fault, if the error concerns one value.
    ///
    /// ```
    /// use segment_model::{Error, Message};
    ///
    /// let err = Message::from_str(r#"{"type":"identify","userId":"u1","traits":"x"}"#).unwrap_err();
    /// assert_eq!(err.path(), Some("traits"));
    /// ```
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::MissingField { path }
            | Error::WrongType { path, .. }
            | Error::InvalidTimestamp { path }
            | Error::OutOfRange { path } => Some(path),
            Error::MissingType | Error::TypeNotString { .. } | Error::UnknownType { .. } => {
                Some("type")
            }
            Error::TypeMismatch { .. } => Some("type"),
            Error::BatchItem { source, .. } => source.path(),
            Error::Json { .. } | Error::Invalid(_) => None,
        }
    }

    pub(crate) fn from_json(source: serde_json::Error) -> Self {
        Error::Json {
            line: source.line(),
            column: source.column(),
            source: std::sync::Arc::new(source),
        }
    }
}

/// The six JSON value types, used to say what was found where something else was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JsonType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonType {
    /// The JSON type of `value`.
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Bool,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonType::Null => "null",
            JsonType::Bool => "a boolean",
            JsonType::Number => "a number",
            JsonType::String => "a string",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
        })
    }
}

/// Decoding machinery shared by the wire types: JSON paths built lazily, a small `FromJson`
/// trait, and the `json_object!` macro that generates lossless structs.
pub(crate) mod decode {
    use std::fmt::{self, Write as _};

    use serde_json::{Map, Number, Value};

    use super::{Error, JsonType};

    /// How the root of a decoded value is named in error paths.
    pub(crate) const ROOT: &str = "message";

    /// A JSON path, built on the stack while decoding and only rendered to a string when an
    /// error needs it.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Path<'a> {
        Root,
        Key(&'a Path<'a>, &'a str),
        Index(&'a Path<'a>, usize),
    }

    impl<'a> Path<'a> {
        pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
            Path::Key(self, key)
        }

        pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
            Path::Index(self, index)
        }

        fn write(&self, out: &mut String) {
            match self {
                Path::Root => {}
                Path::Key(parent, key) => {
                    parent.write(out);
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Path::Index(parent, index) => {
                    parent.write(out);
                    // Writing to a String cannot fail.
                    let _ = write!(out, "[{index}]");
                }
            }
        }

        pub(crate) fn render(&self) -> String {
            let mut out = String::new();
            self.write(&mut out);
            if out.is_empty() {
                out.push_str(ROOT);
            }
            out
        }

        pub(crate) fn wrong_type(&self, expected: &'static str, found: &Value) -> Error {
            Error::WrongType {
                path: self.render(),
                expected,
                found: JsonType::of(found),
            }
        }
    }

    impl fmt::Display for Path<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.render())
        }
    }

    /// A type that can be decoded from an owned JSON value, naming the path on failure.
    pub(crate) trait FromJson: Sized {
        /// Decodes `value`, which sits at `path`.
        fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error>;

        /// A cheap check used by lenient decoding: `true` when `from_json` would accept the
        /// value's JSON shape.
        fn accepts(value: &Value) -> bool;
    }

    impl FromJson for String {
        fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
            match value {
                Value::String(s) => Ok(s),
                other => Err(path.wrong_type("a string", &other)),
            }
        }
        fn accepts(value: &Value) -> bool {
            value.is_string()
        }
    }

    impl FromJson for bool {
        fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
            match value {
                Value::Bool(b) => Ok(b),
                other => Err(path.wrong_type("a boolean", &other)),
            }
        }
        fn accepts(value: &Value) -> bool {
            value.is_boolean()
        }
    }

    impl FromJson for Number {
        fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
            match value {
                Value::Number(n) => Ok(n),
                other => Err(path.wrong_type("a number", &other)),
            }
        }
        fn accepts(value: &Value) -> bool {
            value.is_number()
        }
    }

    impl FromJson for Map<String, Value> {
        fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
            match value {
                Value::Object(m) => Ok(m),
                other => Err(path.wrong_type("an object", &other)),
            }
        }
        fn accepts(value: &Value) -> bool {
            value.is_object()
        }
    }

    impl<T: FromJson> FromJson for Vec<T> {
        fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
            match value {
                Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| T::from_json(item, &path.index(i)))
                    .collect(),
                other => Err(path.wrong_type("an array", &other)),
            }
        }
        fn accepts(value: &Value) -> bool {
            value
                .as_array()
                .is_some_and(|items| items.iter().all(T::accepts))
        }
    }

    /// Strict take: a present, non-null value under `key` must decode, or the whole decode
    /// fails. Absent and `null` values give `None`; a `null` stays in `map` so it is written
    /// back verbatim through `extra`.
    pub(crate) fn take_strict<T: FromJson>(
        map: &mut Map<String, Value>,
        key: &str,
        path: &Path<'_>,
    ) -> Result<Option<T>, Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => match map.remove(key) {
                Some(value) => T::from_json(value, &path.key(key)).map(Some),
                None => Ok(None),
            },
        }
    }

    /// [`FromJson::accepts`] for the type of `_slot` (lets the `json_object!` macro name the
    /// field's type through the field itself).
    pub(crate) fn accepts_like<T: FromJson>(_slot: &Option<T>, value: &Value) -> bool {
        T::accepts(value)
    }

    /// Takes the object at `value`, or reports that `path` must be an object.
    pub(crate) fn expect_object(
        value: Value,
        path: &Path<'_>,
    ) -> Result<Map<String, Value>, Error> {
        match value {
            Value::Object(map) => Ok(map),
            other => Err(path.wrong_type("an object", &other)),
        }
    }

    /// Generates a lossless struct over a JSON object: one `Option` field per modelled key,
    /// plus `extra` for everything else (including modelled keys whose value was `null`).
    ///
    /// Mode `strict`: a modelled key with the wrong JSON type fails the decode.
    /// Mode `lenient`: such a value is kept verbatim in `extra` instead.
    macro_rules! json_object {
        (
            mode = $mode:ident;
            $(#[$meta:meta])*
            pub struct $name:ident {
                $(
                    $(#[$fmeta:meta])*
                    $field:ident : $ty:ty => $key:literal,
                )*
            }
        ) => {
            $(#[$meta])*
            #[derive(Clone, Debug, Default, PartialEq)]
            #[non_exhaustive]
            pub struct $name {
                $(
                    $(#[$fmeta])*
                    pub $field: Option<$ty>,
                )*
                /// Keys this type does not model, kept verbatim and written back once. A
                /// modelled key whose value was `null` is kept here too, so `null` survives a
                /// round-trip; when the typed field is set, it wins over an `extra` entry of
                /// the same name.
                pub extra: serde_json::Map<String, serde_json::Value>,
            }

            impl $name {
                /// The JSON keys this type models.
                pub const KEYS: &'static [&'static str] = &[$($key),*];

                /// One pass over `map`: each entry is moved into its typed field or into
                /// `extra`, with no look-up or removal per modelled key (the decode's hot
                /// path). Entries are visited in key order, so with several bad values the
                /// error names the first bad key in that order.
                #[allow(dead_code, unreachable_patterns, unused_mut)]
                pub(crate) fn from_map(
                    map: serde_json::Map<String, serde_json::Value>,
                    path: &$crate::error::decode::Path<'_>,
                ) -> Result<Self, $crate::error::Error> {
                    let mut out = Self::default();
                    let mut extra: Vec<(String, serde_json::Value)> = Vec::new();
                    for (key, value) in map {
                        match key.as_str() {
                            $(
                                $key => $crate::error::decode::json_object!(
                                    @put $mode, out.$field, extra, key, value, $key, path
                                ),
                            )*
                            _ => extra.push((key, value)),
                        }
                    }
                    out.extra = extra.into_iter().collect();
                    Ok(out)
                }

                /// `true` when the typed field for `key` holds a value.
                #[allow(dead_code, unreachable_patterns)]
                pub(crate) fn is_set(&self, key: &str) -> bool {
                    match key {
                        $($key => self.$field.is_some(),)*
                        _ => false,
                    }
                }

                /// Writes the typed fields (not `extra`) into a serde map.
                #[allow(dead_code)]
                pub(crate) fn serialize_fields<M: serde::ser::SerializeMap>(
                    &self,
                    map: &mut M,
                ) -> Result<(), M::Error> {
                    $(
                        if let Some(value) = &self.$field {
                            map.serialize_entry($key, value)?;
                        }
                    )*
                    Ok(())
                }

                /// Fills every field that `self` leaves unset (neither typed nor present in
                /// `extra`) from `other`. Values already on `self` win, whole: nested objects
                /// are not merged key by key.
                #[allow(dead_code)]
                pub fn fill_missing_from(&mut self, other: &Self) {
                    $(
                        if self.$field.is_none() && !self.extra.contains_key($key) {
                            self.$field = other.$field.clone();
                        }
                    )*
                    for (key, value) in &other.extra {
                        if !self.is_set(key) && !self.extra.contains_key(key) {
                            self.extra.insert(key.clone(), value.clone());
                        }
                    }
                }
            }

            impl $crate::error::decode::FromJson for $name {
                fn from_json(
                    value: serde_json::Value,
                    path: &$crate::error::decode::Path<'_>,
                ) -> Result<Self, $crate::error::Error> {
                    let map = $crate::error::decode::expect_object(value, path)?;
                    Self::from_map(map, path)
                }
                fn accepts(value: &serde_json::Value) -> bool {
                    value.is_object()
                }
            }

            impl serde::Serialize for $name {
                fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    use serde::ser::SerializeMap as _;
                    let mut map = serializer.serialize_map(None)?;
                    self.serialize_fields(&mut map)?;
                    for (key, value) in &self.extra {
                        if !self.is_set(key) {
                            map.serialize_entry(key, value)?;
                        }
                    }
                    map.end()
                }
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
                    <Self as $crate::error::decode::FromJson>::from_json(
                        value,
                        &$crate::error::decode::Path::Root,
                    )
                    .map_err(<D::Error as serde::de::Error>::custom)
                }
            }
        };
        (@put strict, $slot:expr, $extra:ident, $k:ident, $v:ident, $key:literal, $path:ident) => {
            if $v.is_null() {
                $extra.push(($k, $v));
            } else {
                $slot = Some($crate::error::decode::FromJson::from_json($v, &$path.key($key))?);
            }
        };
        (@put lenient, $slot:expr, $extra:ident, $k:ident, $v:ident, $key:literal, $path:ident) => {
            if $v.is_null() || !$crate::error::decode::accepts_like(&$slot, &$v) {
                $extra.push(($k, $v));
            } else {
                $slot = Some($crate::error::decode::FromJson::from_json($v, &$path.key($key))?);
            }
        };
    }
    pub(crate) use json_object;

    /// Serialises `extra` entries that no typed field shadows.
    pub(crate) fn serialize_extra<M: serde::ser::SerializeMap>(
        map: &mut M,
        extra: &Map<String, Value>,
        shadowed: impl Fn(&str) -> bool,
    ) -> Result<(), M::Error> {
        for (key, value) in extra {
            if !shadowed(key) {
                map.serialize_entry(key, value)?;
            }
        }
        Ok(())
    }
}

/// How an unknown `type` value is shown: quoted when it looks like a type tag, otherwise only
/// its length (it may be personal data sent in the wrong field).
fn shown_type(found: &str) -> String {
    let tag_like = !found.is_empty()
        && found.len() <= 32
        && found
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if tag_like {
        format!("{found:?}")
    } else {
        format!("({} characters, not shown)", found.chars().count())
    }
}

#[cfg(test)]
mod unknown_type_display {
    use super::Error;

    #[test]
    fn tags_are_shown_and_anything_else_is_not() {
        let tag = Error::UnknownType {
            found: "identity".into(),
        };
        assert_eq!(tag.to_string(), "`type`: unknown message type \"identity\"");
        let email = Error::UnknownType {
            found: "ada@example.com".into(),
        };
        assert_eq!(
            email.to_string(),
            "`type`: unknown message type (15 characters, not shown)"
        );
        assert!(!email.to_string().contains("ada"));
    }
}
