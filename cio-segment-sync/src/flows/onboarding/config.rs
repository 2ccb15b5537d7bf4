//! The settings of the onboarding flow: [`OnboardingConfig`], its [`Milestone`]s and their
//! validation into [`Milestones`].

use std::collections::HashMap;

use customerio_client::limits::MAX_ATTRIBUTE_NAME_BYTES;
use serde::{Deserialize, Serialize};

use crate::flows::triggers::ResolverSettings;
use crate::mapping::MappingConfig;

/// One milestone: a Segment event name and the key that names it in attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Milestone {
    /// The Segment `track` event name, matched exactly.
    pub event: String,
    /// The key in attribute names (`onboarding_<key>_at`) and the step value: ASCII letters,
    /// digits and `_`.
    pub key: String,
}

impl Milestone {
    /// The milestone reached by the event `event`, named `key`.
    pub fn new(event: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            key: key.into(),
        }
    }
}

/// What the step attribute holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepValue {
    /// The furthest milestone's key (a string). The default.
    #[default]
    Key,
    /// The furthest milestone's 1-based position in the list (a number), for "step ≥ n"
    /// conditions.
    Index,
}

/// Settings of [`OnboardingFlow`](super::OnboardingFlow), loadable from TOML or JSON. Unknown keys are refused.
///
/// | key | default |
/// |---|---|
/// | `milestones` | none: at least one is required |
/// | `attribute_prefix` | `"onboarding_"` (attributes `<prefix><key>_at`) |
/// | `step_attribute` | `"onboarding_step"` |
/// | `step_value` | `"key"` (or `"index"`) |
/// | `forward_event` | `true` |
/// | `lease_seconds` | 600 |
/// | `mapping` | [`MappingConfig::default`] (for the forwarded event) |
/// | `resolver` | [`ResolverSettings::default`] |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OnboardingConfig {
    /// The milestones, in onboarding order.
    pub milestones: Vec<Milestone>,
    /// Prefix of the per-milestone time attributes.
    pub attribute_prefix: String,
    /// The attribute holding the furthest milestone.
    pub step_attribute: String,
    /// What the step attribute holds.
    pub step_value: StepValue,
    /// Also send the milestone event itself.
    pub forward_event: bool,
    /// How long a claimed messageId is held, in seconds.
    pub lease_seconds: u64,
    /// How the forwarded event is mapped.
    pub mapping: MappingConfig,
    /// The default identity resolver's rules.
    pub resolver: ResolverSettings,
}

impl Default for OnboardingConfig {
    fn default() -> Self {
        Self {
            milestones: Vec::new(),
            attribute_prefix: "onboarding_".to_owned(),
            step_attribute: "onboarding_step".to_owned(),
            step_value: StepValue::Key,
            forward_event: true,
            lease_seconds: 600,
            mapping: MappingConfig::default(),
            resolver: ResolverSettings::default(),
        }
    }
}

/// An [`OnboardingConfig`] that cannot work. Names the milestone by its index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OnboardingConfigError {
    /// `milestones` is empty.
    #[error("`milestones` is empty")]
    NoMilestones,
    /// A milestone's event name is blank.
    #[error("`milestones[{index}].event` is blank")]
    BlankEvent {
        /// Position in `milestones`.
        index: usize,
    },
    /// A milestone's key is empty or has a character other than ASCII letters, digits and `_`.
    #[error("`milestones[{index}].key` must be ASCII letters, digits and `_`, and not empty")]
    InvalidKey {
        /// Position in `milestones`.
        index: usize,
    },
    /// Two milestones share an event name.
    #[error("`milestones[{index}].event` repeats the event of `milestones[{first}]`")]
    DuplicateEvent {
        /// Position of the repeat.
        index: usize,
        /// Position of the first.
        first: usize,
    },
    /// Two milestones share a key.
    #[error("`milestones[{index}].key` repeats the key of `milestones[{first}]`")]
    DuplicateKey {
        /// Position of the repeat.
        index: usize,
        /// Position of the first.
        first: usize,
    },
    /// The step attribute name is blank.
    #[error("`step_attribute` is blank")]
    BlankStepAttribute,
    /// An attribute name (`<attribute_prefix><key>_at`, or `step_attribute`) is longer than
    /// Customer.io's limit on attribute names.
    #[error("`{field}`: the attribute name is {bytes} bytes, over Customer.io's {limit}")]
    AttributeNameTooLong {
        /// `step_attribute`, or `milestones[i].key` for a milestone's time attribute.
        field: String,
        /// Its length in bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// A validated milestone list: event name → 1-based step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Milestones {
    list: Vec<Milestone>,
    steps: HashMap<String, u32>,
}

impl Milestones {
    /// The 1-based step the event `event` reaches, if it is a milestone.
    pub fn step_of(&self, event: &str) -> Option<u32> {
        self.steps.get(event).copied()
    }

    /// The milestone at the 1-based `step`.
    pub fn get(&self, step: u32) -> Option<&Milestone> {
        let index = usize::try_from(step).ok()?.checked_sub(1)?;
        self.list.get(index)
    }

    /// The milestones, in order.
    pub fn as_slice(&self) -> &[Milestone] {
        &self.list
    }
}

impl OnboardingConfig {
    /// Checks the milestones: at least one, event names not blank and unique, keys of ASCII
    /// letters, digits and `_` and unique, and every attribute name within Customer.io's
    /// limit.
    pub fn validate(&self) -> Result<Milestones, OnboardingConfigError> {
        if self.milestones.is_empty() {
            return Err(OnboardingConfigError::NoMilestones);
        }
        if self.step_attribute.trim().is_empty() {
            return Err(OnboardingConfigError::BlankStepAttribute);
        }
        if self.step_attribute.len() > MAX_ATTRIBUTE_NAME_BYTES {
            return Err(OnboardingConfigError::AttributeNameTooLong {
                field: "step_attribute".to_owned(),
                bytes: self.step_attribute.len(),
                limit: MAX_ATTRIBUTE_NAME_BYTES,
            });
        }
        let mut steps = HashMap::new();
        let mut keys: HashMap<&str, usize> = HashMap::new();
        for (index, milestone) in self.milestones.iter().enumerate() {
            if milestone.event.trim().is_empty() {
                return Err(OnboardingConfigError::BlankEvent { index });
            }
            if milestone.key.is_empty()
                || !milestone
                    .key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(OnboardingConfigError::InvalidKey { index });
            }
            let bytes = self.attribute_prefix.len() + milestone.key.len() + "_at".len();
            if bytes > MAX_ATTRIBUTE_NAME_BYTES {
                return Err(OnboardingConfigError::AttributeNameTooLong {
                    field: format!("milestones[{index}].key"),
                    bytes,
                    limit: MAX_ATTRIBUTE_NAME_BYTES,
                });
            }
            if let Some(&first) = keys.get(milestone.key.as_str()) {
                return Err(OnboardingConfigError::DuplicateKey { index, first });
            }
            keys.insert(&milestone.key, index);
            // 1-based; the list is far shorter than u32::MAX in any real configuration, and
            // a longer one saturates rather than wraps.
            let step = u32::try_from(index + 1).unwrap_or(u32::MAX);
            if let Some(first_step) = steps.insert(milestone.event.clone(), step) {
                return Err(OnboardingConfigError::DuplicateEvent {
                    index,
                    first: first_step as usize - 1,
                });
            }
        }
        Ok(Milestones {
            list: self.milestones.clone(),
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(milestones: &[(&str, &str)]) -> OnboardingConfig {
        OnboardingConfig {
            milestones: milestones
                .iter()
                .map(|(event, key)| Milestone::new(*event, *key))
                .collect(),
            ..OnboardingConfig::default()
        }
    }

    #[test]
    fn validation_names_the_bad_milestone() {
        assert_eq!(
            config(&[]).validate().unwrap_err(),
            OnboardingConfigError::NoMilestones
        );
        assert_eq!(
            config(&[("A", "a"), (" ", "b")]).validate().unwrap_err(),
            OnboardingConfigError::BlankEvent { index: 1 }
        );
        assert_eq!(
            config(&[("A", "a-b")]).validate().unwrap_err(),
            OnboardingConfigError::InvalidKey { index: 0 }
        );
        assert_eq!(
            config(&[("A", "a"), ("B", "b"), ("A", "c")])
                .validate()
                .unwrap_err(),
            OnboardingConfigError::DuplicateEvent { index: 2, first: 0 }
        );
        assert_eq!(
            config(&[("A", "a"), ("B", "a")]).validate().unwrap_err(),
            OnboardingConfigError::DuplicateKey { index: 1, first: 0 }
        );
        let mut long = config(&[("A", &"k".repeat(140))]);
        assert_eq!(
            long.validate().unwrap_err(),
            OnboardingConfigError::AttributeNameTooLong {
                field: "milestones[0].key".into(),
                bytes: 11 + 140 + 3,
                limit: 150
            }
        );
        long.milestones[0].key = "k".repeat(136);
        assert!(long.validate().is_ok());
        let error = config(&[("A", "a"), ("B", "a")]).validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "`milestones[1].key` repeats the key of `milestones[0]`"
        );
    }

    #[test]
    fn steps_are_one_based_in_list_order() {
        let milestones = config(&[("A", "a"), ("B", "b")]).validate().unwrap();
        assert_eq!(milestones.step_of("A"), Some(1));
        assert_eq!(milestones.step_of("B"), Some(2));
        assert_eq!(milestones.step_of("C"), None);
        assert_eq!(milestones.get(2).map(|m| m.key.as_str()), Some("b"));
        assert_eq!(milestones.get(0), None);
        assert_eq!(milestones.get(3), None);
    }

    #[test]
    fn config_loads_from_toml_and_refuses_unknown_keys() {
        let loaded: OnboardingConfig = toml::from_str(
            r#"
            step_value = "index"
            forward_event = false
            milestones = [{ event = "A", key = "a" }]
            "#,
        )
        .unwrap();
        assert_eq!(loaded.step_value, StepValue::Index);
        assert!(!loaded.forward_event);
        assert_eq!(loaded.attribute_prefix, "onboarding_");
        assert_eq!(loaded.milestones, vec![Milestone::new("A", "a")]);
        assert!(toml::from_str::<OnboardingConfig>("steps = []").is_err());
    }
}
