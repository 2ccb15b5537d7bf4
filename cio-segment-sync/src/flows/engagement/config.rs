//! The settings of the engagement back-sync.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use customerio_client::webhook::{Metric, ObjectType};
use serde::{Deserialize, Serialize};

use crate::mapping::to_segment::{WithoutUserId, default_event_name, event_key};

/// Settings of an [`EngagementFlow`](super::EngagementFlow), loadable from TOML or JSON. Every
/// key has a default; unknown keys are refused.
///
/// ```toml
/// unsubscribed_event = "Unsubscribed"  # or "Email Unsubscribed"
/// replace_default_names = false        # true: `names` is the whole table
/// without_user_id = "anonymous_email"  # | "skip"
/// lease_seconds = 600
/// disable = []                         # e.g. ["email_bounced"]
///
/// [names]                              # "<object_type>_<metric>" = "Segment event"
/// # email_sent = "Email Sent"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EngagementConfig {
    /// The Segment name of `email_unsubscribed` and `customer_unsubscribed`. Default
    /// `Unsubscribed` (the Email spec's name); Customer.io's own Segment integration uses
    /// `Email Unsubscribed`.
    pub unsubscribed_event: String,
    /// Names by `<object_type>_<metric>`, added to (or replacing entries of) the default table.
    pub names: BTreeMap<String, String>,
    /// Whether the default table is dropped, leaving [`names`](Self::names) as the whole table.
    /// Default `false`.
    pub replace_default_names: bool,
    /// `<object_type>_<metric>` keys never sent, whatever the tables say.
    pub disable: BTreeSet<String>,
    /// What to do when the person has no Customer.io `id`. Default
    /// [`WithoutUserId::AnonymousEmail`].
    pub without_user_id: WithoutUserId,
    /// How long, in seconds, a claim on an `event_id` lasts. It must outlast the slowest
    /// delivery, retries included. Default 600.
    pub lease_seconds: u64,
}

impl Default for EngagementConfig {
    fn default() -> Self {
        Self {
            unsubscribed_event: "Unsubscribed".to_owned(),
            names: BTreeMap::new(),
            replace_default_names: false,
            disable: BTreeSet::new(),
            without_user_id: WithoutUserId::default(),
            lease_seconds: 600,
        }
    }
}

impl EngagementConfig {
    /// The Segment event name for the pair, or `None` when the pair is not sent: [`disable`]
    /// first, then [`names`], then (unless [`replace_default_names`]) the
    /// [default table](crate::mapping::to_segment#event-names).
    ///
    /// [`disable`]: Self::disable
    /// [`names`]: Self::names
    /// [`replace_default_names`]: Self::replace_default_names
    pub fn event_name(&self, object_type: &ObjectType, metric: &Metric) -> Option<&str> {
        let key = event_key(object_type, metric);
        if self.disable.contains(&key) {
            return None;
        }
        if let Some(name) = self.names.get(&key) {
            return Some(name);
        }
        if self.replace_default_names {
            return None;
        }
        default_event_name(&key, &self.unsubscribed_event)
    }

    /// Checks the settings: no blank event name, a lease of at least one second.
    ///
    /// # Errors
    ///
    /// [`EngagementConfigError`] naming the setting.
    pub fn validate(&self) -> Result<(), EngagementConfigError> {
        if self.unsubscribed_event.trim().is_empty() {
            return Err(EngagementConfigError::BlankName {
                key: "unsubscribed_event".to_owned(),
            });
        }
        if let Some((key, _)) = self.names.iter().find(|(_, name)| name.trim().is_empty()) {
            return Err(EngagementConfigError::BlankName {
                key: format!("names.{key}"),
            });
        }
        if self.lease_seconds == 0 {
            return Err(EngagementConfigError::ZeroLease);
        }
        Ok(())
    }

    pub(super) fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
}

/// An [`EngagementConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngagementConfigError {
    /// An event name is empty or blank.
    #[error("`{key}` is a blank event name")]
    BlankName {
        /// Where: `unsubscribed_event` or `names.<key>`.
        key: String,
    },
    /// `lease_seconds` is 0.
    #[error("`lease_seconds` must be at least 1")]
    ZeroLease,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_the_default_table() {
        let config: EngagementConfig = toml::from_str("").unwrap();
        assert_eq!(config, EngagementConfig::default());
        config.validate().unwrap();
        let name = |o: &str, m: &str| config.event_name(&ObjectType::from(o), &Metric::from(m));
        assert_eq!(name("email", "clicked"), Some("Email Link Clicked"));
        assert_eq!(name("email", "unsubscribed"), Some("Unsubscribed"));
        assert_eq!(name("customer", "unsubscribed"), Some("Unsubscribed"));
        assert_eq!(name("push", "opened"), Some("Push Notification Tapped"));
        assert_eq!(name("sms", "replied"), Some("SMS Received"));
        assert_eq!(name("email", "sent"), None);
        assert_eq!(name("customer", "subscribed"), None);
        assert_eq!(name("in_app", "opened"), None);
    }

    #[test]
    fn names_override_add_disable_and_replace_the_table() {
        let config: EngagementConfig = toml::from_str(
            r#"
            unsubscribed_event = "Email Unsubscribed"
            disable = ["email_bounced"]
            [names]
            email_sent = "Email Sent"
            email_opened = "Opened It"
            "#,
        )
        .unwrap();
        let name = |o: &str, m: &str| {
            config
                .event_name(&ObjectType::from(o), &Metric::from(m))
                .map(str::to_owned)
        };
        assert_eq!(
            name("email", "unsubscribed").as_deref(),
            Some("Email Unsubscribed")
        );
        assert_eq!(
            name("customer", "unsubscribed").as_deref(),
            Some("Email Unsubscribed")
        );
        assert_eq!(name("email", "sent").as_deref(), Some("Email Sent"));
        assert_eq!(name("email", "opened").as_deref(), Some("Opened It"));
        assert_eq!(name("email", "bounced"), None);
        assert_eq!(
            name("email", "delivered").as_deref(),
            Some("Email Delivered")
        );

        let only: EngagementConfig =
            toml::from_str("replace_default_names = true\n[names]\nemail_clicked = \"Clicked\"\n")
                .unwrap();
        let o = |m: &str| only.event_name(&ObjectType::Email, &Metric::from(m));
        assert_eq!(o("clicked"), Some("Clicked"));
        assert_eq!(o("delivered"), None);
    }

    #[test]
    fn bad_configurations_are_typed_errors() {
        let blank: EngagementConfig = toml::from_str("[names]\nemail_sent = \" \"\n").unwrap();
        assert_eq!(
            blank.validate(),
            Err(EngagementConfigError::BlankName {
                key: "names.email_sent".into()
            })
        );
        let blank_unsubscribe: EngagementConfig =
            toml::from_str("unsubscribed_event = \"\"").unwrap();
        assert_eq!(
            blank_unsubscribe.validate(),
            Err(EngagementConfigError::BlankName {
                key: "unsubscribed_event".into()
            })
        );
        let zero: EngagementConfig = toml::from_str("lease_seconds = 0").unwrap();
        assert_eq!(zero.validate(), Err(EngagementConfigError::ZeroLease));
        let unknown = toml::from_str::<EngagementConfig>("unsubscribe_event = \"x\"");
        assert!(unknown.is_err());
        let bad_fallback = toml::from_str::<EngagementConfig>("without_user_id = \"guess\"");
        assert!(bad_fallback.is_err());
        let skip: EngagementConfig = toml::from_str("without_user_id = \"skip\"").unwrap();
        assert_eq!(skip.without_user_id, WithoutUserId::Skip);
    }
}
