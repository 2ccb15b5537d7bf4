//! The `integrations` object: per-destination routing and options.
//!
//! Keys are destination display names (case-sensitive, e.g. `Customer.io (Actions)`), plus the
//! special `All` switch. A value is `true`/`false`, or an object of destination options (which
//! means "enabled, with these options"). Any other JSON value is kept as
//! [`IntegrationSetting::Other`] so the object round-trips exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::error::decode::{FromJson, Path};

/// The key of the fallback switch.
pub const ALL: &str = "All";

/// Destination names used by the Customer.io (Actions) destination, current name first.
pub const CUSTOMERIO_ACTIONS_NAMES: &[&str] = &[
    "Customer.io (Actions)",
    "Customer.io Actions",
    "Actions Customerio",
];

/// Destination name of the classic Customer.io destination.
pub const CUSTOMERIO_CLASSIC_NAME: &str = "Customer.io";

/// Destination names used by the Webhooks (Actions) destination.
pub const WEBHOOKS_ACTIONS_NAMES: &[&str] = &["Webhooks (Actions)", "Webhook"];

/// Destination name of the classic Webhooks destination.
pub const WEBHOOKS_CLASSIC_NAME: &str = "Webhooks";

/// Destination that is opt-in when neither it nor `All` is set (Segment's documented default
/// object is `{"All": true, "Salesforce": false}`).
pub const OPT_IN_BY_DEFAULT: &[&str] = &["Salesforce"];

/// One value of the `integrations` object.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum IntegrationSetting {
    /// `true` or `false`.
    Enabled(bool),
    /// An options object; the destination is enabled with these options.
    Options(Map<String, Value>),
    /// Any other JSON value, kept as sent. It does not decide routing: the `All` fallback
    /// applies instead.
    Other(Value),
}

impl IntegrationSetting {
    /// The routing decision this value makes on its own, if any.
    pub fn decision(&self) -> Option<bool> {
        match self {
            IntegrationSetting::Enabled(on) => Some(*on),
            IntegrationSetting::Options(_) => Some(true),
            IntegrationSetting::Other(_) => None,
        }
    }

    /// The options object, when the value is one.
    pub fn options(&self) -> Option<&Map<String, Value>> {
        match self {
            IntegrationSetting::Options(options) => Some(options),
            _ => None,
        }
    }

    fn from_value(value: Value) -> Self {
        match value {
            Value::Bool(on) => IntegrationSetting::Enabled(on),
            Value::Object(options) => IntegrationSetting::Options(options),
            other => IntegrationSetting::Other(other),
        }
    }
}

impl From<bool> for IntegrationSetting {
    fn from(on: bool) -> Self {
        IntegrationSetting::Enabled(on)
    }
}

impl From<Map<String, Value>> for IntegrationSetting {
    fn from(options: Map<String, Value>) -> Self {
        IntegrationSetting::Options(options)
    }
}

impl Serialize for IntegrationSetting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntegrationSetting::Enabled(on) => serializer.serialize_bool(*on),
            IntegrationSetting::Options(options) => options.serialize(serializer),
            IntegrationSetting::Other(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for IntegrationSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(IntegrationSetting::from_value)
    }
}

/// The `integrations` object.
///
/// ```
/// use segment_model::Integrations;
///
/// let integrations: Integrations = serde_json::from_str(
///     r#"{"All": false, "Customer.io (Actions)": true, "Amplitude": {"session_id": 1714558496000}}"#,
/// )?;
/// assert!(integrations.is_enabled("Customer.io (Actions)"));
/// assert!(integrations.is_enabled("Amplitude")); // an options object means enabled
/// assert!(!integrations.is_enabled("Mixpanel")); // falls back to All: false
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Integrations {
    entries: BTreeMap<String, IntegrationSetting>,
}

impl Integrations {
    /// An empty object: every destination enabled except the opt-in ones.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `All` switch, when it is a boolean.
    pub fn all(&self) -> Option<bool> {
        self.entries.get(ALL).and_then(IntegrationSetting::decision)
    }

    /// Sets the `All` switch.
    pub fn set_all(&mut self, on: bool) -> &mut Self {
        self.entries
            .insert(ALL.to_owned(), IntegrationSetting::Enabled(on));
        self
    }

    /// The value stored for `destination` (exact, case-sensitive name).
    pub fn get(&self, destination: &str) -> Option<&IntegrationSetting> {
        self.entries.get(destination)
    }

    /// Sets the value for `destination`, returning the previous one.
    pub fn insert(
        &mut self,
        destination: impl Into<String>,
        setting: impl Into<IntegrationSetting>,
    ) -> Option<IntegrationSetting> {
        self.entries.insert(destination.into(), setting.into())
    }

    /// Removes the value for `destination`.
    pub fn remove(&mut self, destination: &str) -> Option<IntegrationSetting> {
        self.entries.remove(destination)
    }

    /// Iterates over every key (including `All`) in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &IntegrationSetting)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of keys, including `All`.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when the object has no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a message carrying this object should reach `destination`.
    ///
    /// The destination's own key decides when it is a boolean or an options object;
    /// otherwise `All` decides when it is a boolean; otherwise the default is on, except for
    /// [`OPT_IN_BY_DEFAULT`] destinations. Segment additionally delivers to warehouses even
    /// under `All: false`; this function knows nothing about destination types.
    pub fn is_enabled(&self, destination: &str) -> bool {
        self.is_enabled_any(&[destination])
    }

    /// Like [`Integrations::is_enabled`] for a destination known under several names (see
    /// [`CUSTOMERIO_ACTIONS_NAMES`]): the first name with a deciding value wins.
    pub fn is_enabled_any(&self, names: &[&str]) -> bool {
        if let Some(decision) = names.iter().find_map(|name| {
            self.entries
                .get(*name)
                .and_then(IntegrationSetting::decision)
        }) {
            return decision;
        }
        if let Some(all) = self.all() {
            return all;
        }
        !names.iter().any(|name| OPT_IN_BY_DEFAULT.contains(name))
    }

    /// The options object for `destination`, when its value is one.
    pub fn options(&self, destination: &str) -> Option<&Map<String, Value>> {
        self.entries
            .get(destination)
            .and_then(IntegrationSetting::options)
    }

    /// Copies every key of `other` that `self` does not have. Keys already on `self` win.
    ///
    /// This is how a batch's top-level `integrations` applies to each item.
    pub fn fill_missing_from(&mut self, other: &Integrations) {
        for (key, value) in &other.entries {
            self.entries
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
    }
}

impl<K: Into<String>, V: Into<IntegrationSetting>> FromIterator<(K, V)> for Integrations {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl Serialize for Integrations {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Integrations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Integrations::from_json(value, &Path::Root).map_err(serde::de::Error::custom)
    }
}

impl FromJson for Integrations {
    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
        match value {
            Value::Object(map) => Ok(Self {
                entries: map
                    .into_iter()
                    .map(|(k, v)| (k, IntegrationSetting::from_value(v)))
                    .collect(),
            }),
            other => Err(path.wrong_type("an object", &other)),
        }
    }

    fn accepts(value: &Value) -> bool {
        value.is_object()
    }
}
