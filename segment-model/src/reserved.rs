//! [`Traits`] and [`Properties`]: JSON maps with typed accessors for Segment's reserved keys.
//!
//! Both types dereference to [`serde_json::Map`], so every map method works on them, and both
//! serialise exactly as the map they hold. The accessors come in two flavours:
//!
//! - `email()`, `created_at()`, `revenue()`, ...: lenient. A missing key, `null`, or a value of
//!   the wrong type gives `None`; nothing panics.
//! - `try_email()`, `try_created_at()`, `try_revenue()`, ...: the same lookup, but a value of the
//!   wrong type is an [`Error`] naming the key, and `Ok(None)` means absent or `null`.
//!
//! Where SDKs send both spellings of a reserved trait (`firstName` / `first_name`,
//! `createdAt` / `created_at`), the camelCase key is read first and the snake_case key is the
//! fallback.
//!
//! ```
//! use segment_model::Traits;
//!
//! let traits: Traits = serde_json::from_str(
//!     r#"{"email":"ada@example.org","first_name":"Ada","lastName":"Lovelace","createdAt":1700000000}"#,
//! )?;
//! assert_eq!(traits.email(), Some("ada@example.org"));
//! assert_eq!(traits.name().as_deref(), Some("Ada Lovelace"));
//! assert_eq!(traits.created_at().map(|t| t.as_unix_seconds()), Some(1_700_000_000));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::error::decode::{FromJson, Path, json_object};
use crate::error::{Error, JsonType};
use crate::message::{Id, NumberOrString};
use crate::timestamp::Timestamp;

/// Defines a JSON-map newtype with the shared plumbing.
macro_rules! map_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Map<String, Value>);

        impl $name {
            /// An empty map.
            pub fn new() -> Self {
                Self::default()
            }

            /// The underlying map.
            pub fn into_inner(self) -> Map<String, Value> {
                self.0
            }

            /// Sets `key` to `value`, returning `self` for chaining.
            pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
                self.0.insert(key.into(), value.into());
                self
            }
        }

        impl Deref for $name {
            type Target = Map<String, Value>;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl DerefMut for $name {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }

        impl From<Map<String, Value>> for $name {
            fn from(map: Map<String, Value>) -> Self {
                Self(map)
            }
        }

        impl From<$name> for Map<String, Value> {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for $name {
            fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
                Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
            }
        }
    };
}

map_newtype!(
    /// The `traits` of an identify or group call, or `context.traits`.
    Traits
);

map_newtype!(
    /// The `properties` of a track, page or screen call.
    Properties
);

impl FromJson for Properties {
    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
        Map::from_json(value, path).map(Properties)
    }

    fn accepts(value: &Value) -> bool {
        value.is_object()
    }
}

// ---------------------------------------------------------------------------------------------
// Lookup helpers: each returns Ok(None) for absent or null, an error naming the key otherwise.
// ---------------------------------------------------------------------------------------------

/// The first present, non-null value among `keys`, with the key it was found under.
fn lookup<'a>(
    map: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter()
        .find_map(|key| map.get(*key).filter(|v| !v.is_null()).map(|v| (*key, v)))
}

fn wrong(key: &str, expected: &'static str, found: &Value) -> Error {
    Error::WrongType {
        path: key.to_owned(),
        expected,
        found: JsonType::of(found),
    }
}

fn get_str<'a>(
    map: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Result<Option<&'a str>, Error> {
    match lookup(map, keys) {
        None => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s)),
        Some((key, other)) => Err(wrong(key, "a string", other)),
    }
}

/// A string, or a number rendered as text (ids and phone numbers arrive as either).
fn get_text<'a>(
    map: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Result<Option<Cow<'a, str>>, Error> {
    match lookup(map, keys) {
        None => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(Cow::Borrowed(s))),
        Some((_, Value::Number(n))) => Ok(Some(Cow::Owned(n.to_string()))),
        Some((key, other)) => Err(wrong(key, "a string or a number", other)),
    }
}

fn get_f64(map: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<f64>, Error> {
    match lookup(map, keys) {
        None => Ok(None),
        Some((key, Value::Number(n))) => n.as_f64().map(Some).ok_or_else(|| Error::OutOfRange {
            path: key.to_owned(),
        }),
        Some((key, other)) => Err(wrong(key, "a number", other)),
    }
}

/// A timestamp from an ISO-8601 string, or from a number of seconds since the Unix epoch.
fn get_time(map: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<Timestamp>, Error> {
    match lookup(map, keys) {
        None => Ok(None),
        Some((key, value @ Value::String(_))) => {
            let root = Path::Root;
            Timestamp::from_value_at(value, &root.key(key)).map(Some)
        }
        Some((key, Value::Number(n))) => unix_seconds(n)
            .map(|instant| Some(Timestamp::from_instant(instant)))
            .ok_or_else(|| Error::OutOfRange {
                path: key.to_owned(),
            }),
        Some((key, other)) => Err(wrong(key, "an ISO-8601 string or unix seconds", other)),
    }
}

fn unix_seconds(n: &Number) -> Option<jiff::Timestamp> {
    if let Some(secs) = n.as_i64() {
        return jiff::Timestamp::from_second(secs).ok();
    }
    let secs = n.as_f64()?;
    if !secs.is_finite() {
        return None;
    }
    let nanos = secs * 1e9;
    // i128 holds any f64 that jiff's range check can accept; larger values saturate and fail
    // the range check below.
    #[allow(clippy::cast_possible_truncation)]
    let nanos = nanos.round() as i128;
    jiff::Timestamp::from_nanosecond(nanos).ok()
}

/// A key and the object found under it.
type KeyedObject<'a> = (&'static str, &'a Map<String, Value>);

fn get_object<'a>(
    map: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Result<Option<KeyedObject<'a>>, Error> {
    match lookup(map, keys) {
        None => Ok(None),
        Some((key, Value::Object(o))) => Ok(Some((key, o))),
        Some((key, other)) => Err(wrong(key, "an object", other)),
    }
}

/// Generates a lenient accessor and its `try_` twin for a string-valued key.
macro_rules! string_accessors {
    ($( $(#[$doc:meta])* $name:ident, $try_name:ident => [$($key:literal),+]; )*) => {
        $(
            $(#[$doc])*
            ///
            /// `None` when absent, `null`, or not a string.
            pub fn $name(&self) -> Option<&str> {
                self.$try_name().ok().flatten()
            }

            #[doc = concat!("Like [`Self::", stringify!($name), "`], but a non-string value is an error naming the key.")]
            pub fn $try_name(&self) -> Result<Option<&str>, Error> {
                get_str(&self.0, &[$($key),+])
            }
        )*
    };
}

impl Traits {
    string_accessors! {
        /// `email`.
        email, try_email => ["email"];
        /// `firstName` (or `first_name`).
        first_name, try_first_name => ["firstName", "first_name"];
        /// `lastName` (or `last_name`).
        last_name, try_last_name => ["lastName", "last_name"];
        /// `username`.
        username, try_username => ["username"];
        /// `title`: job title.
        title, try_title => ["title"];
        /// `avatar`: image URL.
        avatar, try_avatar => ["avatar"];
        /// `website`.
        website, try_website => ["website"];
        /// `description`.
        description, try_description => ["description"];
        /// `gender`.
        gender, try_gender => ["gender"];
        /// `industry`.
        industry, try_industry => ["industry"];
        /// `plan`.
        plan, try_plan => ["plan"];
    }

    /// `name`, or `firstName` and `lastName` joined by a space when `name` is absent (Segment
    /// derives the full name the same way). Lenient: non-string parts are skipped.
    pub fn name(&self) -> Option<Cow<'_, str>> {
        if let Some(name) = self.0.get("name").and_then(Value::as_str) {
            return Some(Cow::Borrowed(name));
        }
        match (self.first_name(), self.last_name()) {
            (Some(first), Some(last)) => Some(Cow::Owned(format!("{first} {last}"))),
            (Some(one), None) | (None, Some(one)) => Some(Cow::Borrowed(one)),
            (None, None) => None,
        }
    }

    /// Like [`Traits::name`], but a present value of the wrong type is an error.
    pub fn try_name(&self) -> Result<Option<Cow<'_, str>>, Error> {
        if let Some(name) = get_str(&self.0, &["name"])? {
            return Ok(Some(Cow::Borrowed(name)));
        }
        let first = self.try_first_name()?;
        let last = self.try_last_name()?;
        Ok(match (first, last) {
            (Some(first), Some(last)) => Some(Cow::Owned(format!("{first} {last}"))),
            (Some(one), None) | (None, Some(one)) => Some(Cow::Borrowed(one)),
            (None, None) => None,
        })
    }

    /// `phone`, as text (some SDKs send it as a number).
    pub fn phone(&self) -> Option<Cow<'_, str>> {
        self.try_phone().ok().flatten()
    }

    /// Like [`Traits::phone`], but a value that is neither string nor number is an error.
    pub fn try_phone(&self) -> Result<Option<Cow<'_, str>>, Error> {
        get_text(&self.0, &["phone"])
    }

    /// `id`, as text (a string or a number).
    pub fn id(&self) -> Option<Cow<'_, str>> {
        self.try_id().ok().flatten()
    }

    /// Like [`Traits::id`], but a value that is neither string nor number is an error.
    pub fn try_id(&self) -> Result<Option<Cow<'_, str>>, Error> {
        get_text(&self.0, &["id"])
    }

    /// `createdAt` (or `created_at`): an ISO-8601 string, or a number of seconds since the
    /// Unix epoch. Reading numbers as seconds is a choice: Segment does not document numeric
    /// `createdAt` values.
    pub fn created_at(&self) -> Option<Timestamp> {
        self.try_created_at().ok().flatten()
    }

    /// Like [`Traits::created_at`], with errors for unparsable strings, out-of-range numbers
    /// and other JSON types.
    pub fn try_created_at(&self) -> Result<Option<Timestamp>, Error> {
        get_time(&self.0, &["createdAt", "created_at"])
    }

    /// `birthday`: an ISO date (`1990-04-17`, midnight UTC) or date-time.
    pub fn birthday(&self) -> Option<Timestamp> {
        self.try_birthday().ok().flatten()
    }

    /// Like [`Traits::birthday`], with errors for unparsable or non-string values.
    pub fn try_birthday(&self) -> Result<Option<Timestamp>, Error> {
        match lookup(&self.0, &["birthday"]) {
            None => Ok(None),
            Some((key, value)) => {
                let root = Path::Root;
                Timestamp::from_value_at(value, &root.key(key)).map(Some)
            }
        }
    }

    /// `age`, when it is a whole number between 0 and `u32::MAX`.
    pub fn age(&self) -> Option<u32> {
        self.try_age().ok().flatten()
    }

    /// Like [`Traits::age`], with errors for non-numbers and for fractional, negative or
    /// huge numbers.
    pub fn try_age(&self) -> Result<Option<u32>, Error> {
        match get_f64(&self.0, &["age"])? {
            None => Ok(None),
            Some(age) if age.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&age) => {
                // Range-checked just above, and whole, so the cast is exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(age as u32))
            }
            Some(_) => Err(Error::OutOfRange {
                path: "age".to_owned(),
            }),
        }
    }

    /// `address`, decoded leniently (see [`Address`]).
    pub fn address(&self) -> Option<Address> {
        self.try_address().ok().flatten()
    }

    /// Like [`Traits::address`], but a non-object value is an error.
    pub fn try_address(&self) -> Result<Option<Address>, Error> {
        match get_object(&self.0, &["address"])? {
            None => Ok(None),
            Some((key, map)) => {
                let root = Path::Root;
                Address::from_map(map.clone(), &root.key(key)).map(Some)
            }
        }
    }

    /// `company`, decoded leniently (see [`Company`]).
    pub fn company(&self) -> Option<Company> {
        self.try_company().ok().flatten()
    }

    /// Like [`Traits::company`], but a non-object value is an error.
    pub fn try_company(&self) -> Result<Option<Company>, Error> {
        match get_object(&self.0, &["company"])? {
            None => Ok(None),
            Some((key, map)) => {
                let root = Path::Root;
                Company::from_map(map.clone(), &root.key(key)).map(Some)
            }
        }
    }

    /// `employees` (a group trait): documented as a string, sent as a number by some SDKs.
    pub fn employees(&self) -> Option<NumberOrString> {
        self.try_employees().ok().flatten()
    }

    /// Like [`Traits::employees`], but other JSON types are an error.
    pub fn try_employees(&self) -> Result<Option<NumberOrString>, Error> {
        match lookup(&self.0, &["employees"]) {
            None => Ok(None),
            Some((key, value)) => {
                let root = Path::Root;
                NumberOrString::from_json(value.clone(), &root.key(key)).map(Some)
            }
        }
    }
}

impl Properties {
    string_accessors! {
        /// `currency`: ISO 4217 code (Segment assumes USD when absent).
        currency, try_currency => ["currency"];
        /// `url`.
        url, try_url => ["url"];
        /// `path`.
        path, try_path => ["path"];
        /// `title`.
        title, try_title => ["title"];
        /// `referrer`: the previous full URL.
        referrer, try_referrer => ["referrer"];
        /// `search`: the query string, including `?`.
        search, try_search => ["search"];
        /// `name`.
        name, try_name => ["name"];
        /// `category`.
        category, try_category => ["category"];
    }

    /// `revenue`, a decimal amount.
    pub fn revenue(&self) -> Option<f64> {
        self.try_revenue().ok().flatten()
    }

    /// Like [`Properties::revenue`], but a non-number is an error.
    pub fn try_revenue(&self) -> Result<Option<f64>, Error> {
        get_f64(&self.0, &["revenue"])
    }

    /// `value`: an abstract, non-revenue value.
    pub fn value(&self) -> Option<f64> {
        self.try_value().ok().flatten()
    }

    /// Like [`Properties::value`], but a non-number is an error.
    pub fn try_value(&self) -> Result<Option<f64>, Error> {
        get_f64(&self.0, &["value"])
    }

    /// `keywords` (page calls): the string entries, skipping anything else.
    pub fn keywords(&self) -> Option<Vec<&str>> {
        self.0
            .get("keywords")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
    }

    /// Like [`Properties::keywords`], but a non-array, or a non-string entry, is an error
    /// naming its index.
    pub fn try_keywords(&self) -> Result<Option<Vec<&str>>, Error> {
        match lookup(&self.0, &["keywords"]) {
            None => Ok(None),
            Some((_, Value::Array(items))) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str()
                        .ok_or_else(|| wrong(&format!("keywords[{i}]"), "a string", item))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some((key, other)) => Err(wrong(key, "an array", other)),
        }
    }
}

json_object! {
    mode = lenient;
    /// The reserved `address` trait. Keys with unexpected types stay in `extra`.
    pub struct Address {
        /// `city`.
        city: String => "city",
        /// `country`.
        country: String => "country",
        /// `postalCode`.
        postal_code: String => "postalCode",
        /// `state`.
        state: String => "state",
        /// `street`.
        street: String => "street",
    }
}

json_object! {
    mode = lenient;
    /// The reserved `company` trait. Keys with unexpected types stay in `extra`.
    pub struct Company {
        /// `name`.
        name: String => "name",
        /// `id`: a string or a number.
        id: Id => "id",
        /// `industry`.
        industry: String => "industry",
        /// `employee_count`.
        employee_count: Number => "employee_count",
        /// `plan`.
        plan: String => "plan",
    }
}
