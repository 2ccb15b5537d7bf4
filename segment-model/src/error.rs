//! The crate's error type and the JSON decoding support shared by every wire type.
//!
//! Every decode error names *where* the problem is (a JSON path such as `traits`,
//! `context.externalIds[2]`, a line and column, or for batches the item index) and *what* was
//! wrong (a JSON type, a category), but never echoes the offending value: the values are
//! customer data (ids, emails, names) and error messages end up in logs and in the answers a
//! webhook endpoint sends back. That holds for `Display`, for `Debug` and for every error in the
//! `source()` chain; serde_json's errors are reduced to their category and position for that
//! reason.

use std::fmt;

use serde_json::Value;

use crate::message::MessageKind;
use crate::validate::Violations;

/// Everything that can go wrong when decoding or building Segment messages.
///
/// The `Display` output names the field or JSON path at fault and never contains a customer
/// id, an email address, a name or a secret; neither does `Debug`, and no error has a source
/// that would.
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not syntactically valid JSON (or ends early).
    ///
    /// Only the parser's error category and position are kept: some of serde_json's messages
    /// quote a piece of the input, so its error is not carried as a source.
    #[error("malformed JSON at line {line}, column {column} ({category})")]
    Json {
        /// What kind of problem the parser reported.
        category: JsonErrorCategory,
        /// 1-based line of the first error.
        line: usize,
        /// Column of the first error, as serde_json counts it (1-based; 0 when the input is
        /// empty or ends right after a newline).
        column: usize,
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
    #[error(
        "`type`: unknown message type ({} characters, not shown)",
        found.chars().count()
    )]
    UnknownType {
        /// The `type` value as received, cut to its first 64 characters. Neither `Display`
        /// nor `Debug` shows it (only its length): a misplaced email or name must not reach a
        /// log line. Read it here when a caller needs it.
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
    #[error("`batch[{index}]` does not decode")]
    BatchItem {
        /// Position of the item in the `batch` array.
        index: usize,
        /// What was wrong with the item.
        #[source]
        source: Box<Error>,
    },

    /// A builder was asked to produce a message that breaks Segment's rules. Each violation
    /// names its field.
    #[error("invalid message")]
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

    /// Keeps the category and position of a serde_json error, and nothing of its message.
    pub(crate) fn from_json(source: serde_json::Error) -> Self {
        Error::Json {
            category: JsonErrorCategory::of(&source),
            line: source.line(),
            column: source.column(),
        }
    }
}

/// Written by hand so that [`Error::UnknownType`] shows the length of the value, not the value;
/// every other variant holds only paths, type names, kinds and positions.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Json {
                category,
                line,
                column,
            } => f
                .debug_struct("Json")
                .field("category", category)
                .field("line", line)
                .field("column", column)
                .finish(),
            Error::MissingType => f.write_str("MissingType"),
            Error::TypeNotString { found } => f
                .debug_struct("TypeNotString")
                .field("found", found)
                .finish(),
            Error::UnknownType { found } => f
                .debug_struct("UnknownType")
                .field(
                    "found",
                    &format_args!("<{} characters>", found.chars().count()),
                )
                .finish(),
            Error::TypeMismatch { expected, found } => f
                .debug_struct("TypeMismatch")
                .field("expected", expected)
                .field("found", found)
                .finish(),
            Error::MissingField { path } => {
                f.debug_struct("MissingField").field("path", path).finish()
            }
            Error::WrongType {
                path,
                expected,
                found,
            } => f
                .debug_struct("WrongType")
                .field("path", path)
                .field("expected", expected)
                .field("found", found)
                .finish(),
            Error::InvalidTimestamp { path } => f
                .debug_struct("InvalidTimestamp")
                .field("path", path)
                .finish(),
            Error::OutOfRange { path } => f.debug_struct("OutOfRange").field("path", path).finish(),
            Error::BatchItem { index, source } => f
                .debug_struct("BatchItem")
                .field("index", index)
                .field("source", source)
                .finish(),
            Error::Invalid(violations) => f.debug_tuple("Invalid").field(violations).finish(),
        }
    }
}

/// The kind of problem a JSON parser reported, without its message (mirrors
/// [`serde_json::error::Category`]). serde_json's messages for some kinds quote the input
/// (`invalid type: string "…"`), so this crate keeps the kind and the position only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JsonErrorCategory {
    /// Invalid JSON syntax.
    Syntax,
    /// The input ended in the middle of a value.
    Eof,
    /// Valid JSON of an unexpected shape.
    Data,
    /// Reading failed.
    Io,
}

impl JsonErrorCategory {
    /// The category of a serde_json error.
    pub fn of(error: &serde_json::Error) -> Self {
        match error.classify() {
            serde_json::error::Category::Syntax => Self::Syntax,
            serde_json::error::Category::Eof => Self::Eof,
            serde_json::error::Category::Data => Self::Data,
            serde_json::error::Category::Io => Self::Io,
        }
    }
}

impl fmt::Display for JsonErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "syntax error",
            Self::Eof => "unexpected end of input",
            Self::Data => "unexpected data",
            Self::Io => "read error",
        })
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

#[cfg(test)]
mod unknown_type_display {
    use super::Error;

    #[test]
    fn the_value_is_never_shown_only_its_length() {
        for (found, length) in [("identity", 8), ("Ada", 3), ("ada@example.com", 15)] {
            let error = Error::UnknownType {
                found: found.into(),
            };
            assert_eq!(
                error.to_string(),
                format!("`type`: unknown message type ({length} characters, not shown)")
            );
            assert_eq!(
                format!("{error:?}"),
                format!("UnknownType {{ found: <{length} characters> }}")
            );
        }
    }
}

#[cfg(test)]
mod json_error_display {
    use super::{Error, JsonErrorCategory};

    #[test]
    fn a_data_error_that_quotes_the_input_is_reduced_to_its_category_and_position() {
        // serde_json's own message for this one is `invalid type: string "ada@example.com",
        // expected u8 at line 1 column 17`.
        let Err(source) = serde_json::from_str::<u8>("\"ada@example.com\"") else {
            panic!("a string is not a u8");
        };
        assert!(source.to_string().contains("ada@"));
        let error = Error::from_json(source);
        assert!(matches!(
            error,
            Error::Json {
                category: JsonErrorCategory::Data,
                line: 1,
                column: 17
            }
        ));
        assert_eq!(
            error.to_string(),
            "malformed JSON at line 1, column 17 (unexpected data)"
        );
        assert!(!format!("{error:?}").contains("ada@"));
        assert!(std::error::Error::source(&error).is_none());
    }
}
