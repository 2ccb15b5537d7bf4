//! The settings of the audience flow: [`AudienceConfig`] and [`AudienceIdType`].

use std::collections::BTreeMap;

use segment_model::audience::AudienceOptions;
use serde::{Deserialize, Serialize};

/// How the person is identified to Customer.io's segment membership calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudienceIdType {
    /// The Segment `userId`, sent as `id_type=id` (the default).
    #[default]
    UserId,
    /// The profile's email (`traits.email` / `context.traits.email`), sent as
    /// `id_type=email`.
    Email,
}

/// Settings of an [`AudienceSync`](super::AudienceSync), loadable from TOML (every field has a default):
///
/// ```toml
/// id_type = "user_id"            # or "email"
/// create_missing = false         # create a manual segment for an unknown audience key
/// reuse_existing_by_name = true  # before creating, look for a segment of that name
/// segment_name_prefix = ""       # created segments are named prefix + audience key
/// write_attribute = false        # also set `<audience_key>: true|false` on the person
/// entered_event = "Audience Entered"
/// exited_event = "Audience Exited"
///
/// [segments]                     # audience key → Customer.io manual segment id
/// churn_risk_high = 7
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AudienceConfig {
    /// Audience key → manual segment id.
    pub segments: BTreeMap<String, u64>,
    /// How the person is identified.
    pub id_type: AudienceIdType,
    /// Whether an audience key missing from `segments` gets a manual segment created through
    /// the App API (needs [`AudienceSync::with_app_client`](super::AudienceSync::with_app_client)).
    pub create_missing: bool,
    /// Whether, before creating, the workspace's segments are listed and a manual segment with
    /// the same name is used instead.
    pub reuse_existing_by_name: bool,
    /// Prefix of created segments' names (the rest is the audience key).
    pub segment_name_prefix: String,
    /// Whether to also write the boolean attribute `<audience_key>` (needs
    /// [`AudienceSync::with_attribute_dispatcher`](super::AudienceSync::with_attribute_dispatcher)).
    pub write_attribute: bool,
    /// Name of the track event sent on entry.
    pub entered_event: String,
    /// Name of the track event sent on exit.
    pub exited_event: String,
}

impl Default for AudienceConfig {
    fn default() -> Self {
        let options = AudienceOptions::default();
        Self {
            segments: BTreeMap::new(),
            id_type: AudienceIdType::default(),
            create_missing: false,
            reuse_existing_by_name: true,
            segment_name_prefix: String::new(),
            write_attribute: false,
            entered_event: options.entered_event,
            exited_event: options.exited_event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_loads_from_toml() {
        let config: AudienceConfig = toml::from_str(
            r#"
            id_type = "email"
            create_missing = true
            segment_name_prefix = "Engage: "
            [segments]
            vip = 7
            "#,
        )
        .unwrap();
        assert_eq!(config.id_type, AudienceIdType::Email);
        assert_eq!(config.segments, BTreeMap::from([("vip".to_owned(), 7)]));
        assert!(config.reuse_existing_by_name);
        assert_eq!(config.entered_event, "Audience Entered");
        assert!(toml::from_str::<AudienceConfig>("segmentz = 1").is_err());
        assert!(toml::from_str::<AudienceConfig>("[segments]\nvip = \"seven\"").is_err());
    }
}
