//! [`MappingConfig`]: the knobs of the mapping, loadable from TOML or JSON.

use std::collections::{BTreeMap, BTreeSet};

use customerio_client::track::v2::ObjectTypeId;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// How Segment messages become Customer.io operations. Every field has a default, so an empty
/// TOML table (or `MappingConfig::default()`) is a working configuration. Unknown keys are
/// refused, so a misspelt option is an error rather than silently ignored.
///
/// Every option, with its default value:
///
/// ```toml
/// convert_timestamps = true          # strict ISO-8601 attribute values → Unix seconds
/// clamp_future_timestamps = false    # needs map_at(…, now)
/// page_name = "url"                  # "url" | "path" | "name"
/// long_page_name = "fallback"        # "fallback" | "error"
/// default_object_type_id = "1"       # or 1
/// object_attributes = "object_attributes_or_traits"  # | "object_attributes_only" | "traits"
/// forward_device_events = false
/// incomplete_lifecycle = "error"     # | "plain_event"
///
/// [events]                           # track event names
/// # allow = ["Order Completed"]      # absent: every event passes
/// deny = []
/// rename = {}                        # e.g. { "Order Completed" = "order_completed" }
///
/// [traits]                           # identify and group trait keys (top level)
/// deny = []
/// rename = {}
///
/// [properties]                       # track, page and screen property keys (top level)
/// deny = []
/// rename = {}
/// ```
///
/// ```
/// use cio_segment_sync::mapping::{MappingConfig, PageName};
///
/// let config: MappingConfig = serde_json::from_value(serde_json::json!({
///     "events": {"deny": ["Debug Ping"], "rename": {"Order Completed": "order_completed"}},
///     "page_name": "path",
///     "convert_timestamps": false
/// }))?;
/// assert_eq!(config.page_name, PageName::Path);
/// assert!(!config.convert_timestamps);
/// assert!(config.events.allows("Order Completed"));
/// assert!(!config.events.allows("Debug Ping"));
/// assert_eq!(config.events.rename("Order Completed"), "order_completed");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MappingConfig {
    /// Which `track` events are sent, and under which name. Matched against the event name as
    /// Segment sent it (before renaming), for plain and lifecycle events alike; a denied event
    /// is skipped with [`SkipReason::Filtered`](crate::identity::SkipReason::Filtered).
    pub events: NameFilter,
    /// Which top-level `identify` and `group` trait keys become attributes, and under which
    /// name. Reserved keys (see [`IDENTIFY_RESERVED_TRAITS`](super::IDENTIFY_RESERVED_TRAITS))
    /// are handled before these rules, so `email` and `created_at` are always derived from the
    /// traits as sent.
    pub traits: KeyRules,
    /// Which top-level `track`, `page` and `screen` property keys become event attributes, and
    /// under which name.
    pub properties: KeyRules,
    /// Convert strict ISO-8601 strings in attributes (at any depth) to Unix seconds. Default
    /// `true`. The top-level `timestamp` and `created_at` are converted whatever this says.
    pub convert_timestamps: bool,
    /// Clamp message timestamps that lie in the future to `now`. Default `false`. Needs a
    /// clock: use [`map_at`](super::map_at); [`map`](super::map) refuses a configuration with
    /// this set.
    pub clamp_future_timestamps: bool,
    /// Which value names a `page` operation. Default [`PageName::Url`].
    pub page_name: PageName,
    /// What to do when the chosen page name is longer than Customer.io's 100-byte name limit.
    /// Default [`LongPageName::Fallback`].
    pub long_page_name: LongPageName,
    /// The object type used for `group` calls and object lifecycle events that name none.
    /// Default `"1"`, the first object type of a workspace. Written as a string (`"2"`) or an
    /// integer (`2`); `0` is refused.
    #[serde(deserialize_with = "object_type_id_text_or_number")]
    pub default_object_type_id: ObjectTypeId,
    /// Where a `group` call's object attributes come from. Default
    /// [`ObjectAttributes::ObjectAttributesOrTraits`].
    pub object_attributes: ObjectAttributes,
    /// Also send device lifecycle events (`Application Opened`, `Device Deleted`, …) as plain
    /// events after their device operation. Default `false`, as in Segment's own Customer.io
    /// destination, which keeps these names out of its plain-event subscription.
    pub forward_device_events: bool,
    /// What to do with a lifecycle event that lacks the data its operation needs (a device
    /// event without a token, `Object Deleted` without an object id, a person operation such
    /// as `User Deleted` about an anonymous person). Default [`IncompleteLifecycle::Error`].
    pub incomplete_lifecycle: IncompleteLifecycle,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            events: NameFilter::default(),
            traits: KeyRules::default(),
            properties: KeyRules::default(),
            convert_timestamps: true,
            clamp_future_timestamps: false,
            page_name: PageName::default(),
            long_page_name: LongPageName::default(),
            default_object_type_id: ObjectTypeId::FIRST,
            object_attributes: ObjectAttributes::default(),
            forward_device_events: false,
            incomplete_lifecycle: IncompleteLifecycle::default(),
        }
    }
}

/// Reads an object type id written as `"2"` or `2`.
fn object_type_id_text_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<ObjectTypeId, D::Error> {
    let number = match Value::deserialize(deserializer)? {
        Value::String(text) => text.parse::<u32>().ok(),
        Value::Number(number) => number.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    number
        .and_then(|n| ObjectTypeId::new(n).ok())
        .ok_or_else(|| {
            serde::de::Error::custom(
                "default_object_type_id must be a positive integer, as a number or as text",
            )
        })
}

/// An allow list, a deny list and renames for `track` event names.
///
/// An event passes when it is on the allow list (or there is none) and not on the deny list:
/// the deny list wins. Names match exactly and case-sensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NameFilter {
    /// When set, only these events are sent.
    pub allow: Option<BTreeSet<String>>,
    /// These events are never sent.
    pub deny: BTreeSet<String>,
    /// Event name as sent by Segment → name in Customer.io.
    pub rename: BTreeMap<String, String>,
}

impl NameFilter {
    /// Whether the event `name` (as Segment sent it) passes the allow and deny lists.
    pub fn allows(&self, name: &str) -> bool {
        !self.deny.contains(name) && self.allow.as_ref().is_none_or(|allow| allow.contains(name))
    }

    /// The name to send for the event `name`: its rename, or `name` itself.
    pub fn rename<'a>(&'a self, name: &'a str) -> &'a str {
        self.rename.get(name).map_or(name, String::as_str)
    }
}

/// An allow list, a deny list and renames for the top-level keys of traits or properties.
///
/// A key is kept when it is on the allow list (or there is none) and not on the deny list;
/// kept keys are then renamed. Lists and renames match the key as sent. A renamed key replaces
/// a key of the same name that was sent alongside it. Nested keys are never touched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyRules {
    /// When set, only these keys are kept.
    pub allow: Option<BTreeSet<String>>,
    /// These keys are dropped.
    pub deny: BTreeSet<String>,
    /// Key as sent → attribute name in Customer.io.
    pub rename: BTreeMap<String, String>,
}

impl KeyRules {
    /// Whether the key `key` (as sent) is kept.
    pub fn keeps(&self, key: &str) -> bool {
        !self.deny.contains(key) && self.allow.as_ref().is_none_or(|allow| allow.contains(key))
    }

    /// Applies the rules to `map`, leaving out the keys in `reserved` (handled elsewhere).
    ///
    /// ```
    /// use cio_segment_sync::mapping::KeyRules;
    /// use serde_json::json;
    ///
    /// let rules: KeyRules = serde_json::from_value(json!({
    ///     "deny": ["password_hint"], "rename": {"firstName": "first_name"}
    /// }))?;
    /// let traits = json!({"firstName": "Ada", "password_hint": "x", "plan": "pro"});
    /// let out = rules.apply(traits.as_object().unwrap(), &[]);
    /// assert_eq!(serde_json::Value::Object(out), json!({"first_name": "Ada", "plan": "pro"}));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn apply(&self, map: &Map<String, Value>, reserved: &[&str]) -> Map<String, Value> {
        let mut kept = Map::new();
        let mut renamed = Vec::new();
        for (key, value) in map {
            if reserved.contains(&key.as_str()) || !self.keeps(key) {
                continue;
            }
            match self.rename.get(key) {
                Some(new_key) => renamed.push((new_key.clone(), value.clone())),
                None => {
                    kept.insert(key.clone(), value.clone());
                }
            }
        }
        // Renamed keys go in last so they replace a same-named key whatever the input order.
        kept.extend(renamed);
        kept
    }
}

/// Which value names a `page` operation. Each choice falls back to the others, in the order
/// listed on the variant, when its own value is absent (or too long, see [`LongPageName`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PageName {
    /// `properties.url`, then `context.page.url`, then the path, then the page name. This is
    /// what Segment's own Customer.io destination sends.
    #[default]
    Url,
    /// `properties.path`, then `context.page.path`, then the URL, then the page name.
    Path,
    /// The page's `name`, then `properties.name`, then the URL, then the path.
    Name,
}

/// What to do when a page name is longer than Customer.io's 100-byte event-name limit.
///
/// URLs are never truncated: a cut URL names a different page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LongPageName {
    /// Use the next candidate of the [`PageName`] order that fits; fail with
    /// [`MappingError::NameTooLong`](super::MappingError::NameTooLong) when none does.
    #[default]
    Fallback,
    /// Fail with [`MappingError::NameTooLong`](super::MappingError::NameTooLong) at once.
    Error,
}

/// Where a `group` call's object attributes come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ObjectAttributes {
    /// `traits.objectAttributes` when it is an object, else every trait except the reserved
    /// ones (see [`GROUP_RESERVED_TRAITS`](super::GROUP_RESERVED_TRAITS)).
    #[default]
    ObjectAttributesOrTraits,
    /// Only `traits.objectAttributes`; none when it is absent (Segment's destination).
    ObjectAttributesOnly,
    /// Every trait except the reserved ones, ignoring `traits.objectAttributes`.
    Traits,
}

/// What to do with a lifecycle event that lacks the data its operation needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IncompleteLifecycle {
    /// Fail with a [`MappingError`](super::MappingError) naming the missing field. A person
    /// operation about an anonymous person is skipped with
    /// [`SkipReason::AnonymousNotAllowed`](crate::identity::SkipReason::AnonymousNotAllowed)
    /// instead: nothing is wrong with the message, there is just nobody to act on.
    #[default]
    Error,
    /// Send it as a plain event instead (RudderStack's behaviour for device events).
    PlainEvent,
}
