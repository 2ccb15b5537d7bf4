//! The settings of the new-subscriber backfill.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use segment_model::client::profile::{InvalidLimit, MAX_TRAITS_LIMIT, TraitsQuery};
use serde::{Deserialize, Serialize};

use crate::mapping::MappingConfig;

/// Profile API requests per second by default: Segment's documented default limit per space.
pub const DEFAULT_PROFILE_REQUESTS_PER_SECOND: u32 = 100;

/// Settings of a [`BackfillFlow`](super::BackfillFlow), loadable from TOML or JSON. Every key has a default;
/// unknown keys are refused.
///
/// ```toml
/// lookup_by_email = true               # when the person has no id (or no profile by id)
/// include = []                         # trait names to read; empty: all
/// page_size = 200                      # traits per Profile API page (1-200)
/// profile_requests_per_second = 100    # the default GovernorLimiter's rate
/// protected_traits = ["unsubscribed"]  # never written back
/// lease_seconds = 600
///
/// [mapping]                            # a MappingConfig (see cio_segment_sync::mapping)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackfillConfig {
    /// Whether a person is looked up by email when the lookup by `user_id` is impossible (no
    /// id) or finds nothing. Default `true`. Segment's docs discourage email lookups because
    /// the address lands in request logs; switch this off to look up by id only.
    pub lookup_by_email: bool,
    /// The traits to read (the Profile API's `include`); empty reads them all. Default empty.
    pub include: Vec<String>,
    /// Traits per Profile API page, 1 to 200. Default 200 (fewest requests).
    pub page_size: u16,
    /// Rate of the default in-process limiter on Profile API requests. Default
    /// [`DEFAULT_PROFILE_REQUESTS_PER_SECOND`]. Lower it when other readers share the space's
    /// budget, or pass a shared limiter with
    /// [`BackfillFlow::with_rate_limiter`](super::BackfillFlow::with_rate_limiter).
    pub profile_requests_per_second: NonZeroU32,
    /// Trait keys never written back. Default `["unsubscribed"]` (see the module docs).
    pub protected_traits: BTreeSet<String>,
    /// How long, in seconds, a claim on a webhook `event_id` lasts. Default 600.
    pub lease_seconds: u64,
    /// How the traits become Customer.io attributes (trait renames, denials, timestamp
    /// conversion). Default [`MappingConfig::default`].
    pub mapping: MappingConfig,
}

impl BackfillConfig {
    /// Checks the settings: a page size of 1–200 and a lease of at least one second.
    ///
    /// # Errors
    ///
    /// [`BackfillConfigError`] naming the setting.
    pub fn validate(&self) -> Result<(), BackfillConfigError> {
        if self.lease_seconds == 0 {
            return Err(BackfillConfigError::ZeroLease);
        }
        TraitsQuery::new()
            .limit(self.page_size)
            .map_err(|InvalidLimit(value)| BackfillConfigError::PageSize { value })?;
        Ok(())
    }
}

impl Default for BackfillConfig {
    fn default() -> Self {
        Self {
            lookup_by_email: true,
            include: Vec::new(),
            page_size: MAX_TRAITS_LIMIT,
            profile_requests_per_second: NonZeroU32::new(DEFAULT_PROFILE_REQUESTS_PER_SECOND)
                .unwrap_or(NonZeroU32::MIN),
            protected_traits: BTreeSet::from(["unsubscribed".to_owned()]),
            lease_seconds: 600,
            mapping: MappingConfig::default(),
        }
    }
}

/// A [`BackfillConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillConfigError {
    /// `page_size` is outside 1–200.
    #[error("`page_size` must be between 1 and {max}, not {value}", max = MAX_TRAITS_LIMIT)]
    PageSize {
        /// The configured value.
        value: u16,
    },
    /// `lease_seconds` is 0.
    #[error("`lease_seconds` must be at least 1")]
    ZeroLease,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_refused_keys() {
        let config: BackfillConfig = toml::from_str("").unwrap();
        assert_eq!(config, BackfillConfig::default());
        assert!(config.lookup_by_email);
        assert_eq!(config.page_size, 200);
        assert_eq!(config.profile_requests_per_second.get(), 100);
        assert!(config.protected_traits.contains("unsubscribed"));
        assert_eq!(config.validate(), Ok(()));
        assert!(toml::from_str::<BackfillConfig>("profile_requests_per_second = 0").is_err());
        assert!(toml::from_str::<BackfillConfig>("lookup_email = true").is_err());
    }

    #[test]
    fn impossible_values_are_named() {
        for page_size in [0, 201] {
            let config = BackfillConfig {
                page_size,
                ..BackfillConfig::default()
            };
            assert_eq!(
                config.validate(),
                Err(BackfillConfigError::PageSize { value: page_size })
            );
        }
        let zero = BackfillConfig {
            lease_seconds: 0,
            ..BackfillConfig::default()
        };
        assert_eq!(zero.validate(), Err(BackfillConfigError::ZeroLease));
        assert_eq!(
            BackfillConfigError::PageSize { value: 201 }.to_string(),
            "`page_size` must be between 1 and 200, not 201"
        );
    }
}
