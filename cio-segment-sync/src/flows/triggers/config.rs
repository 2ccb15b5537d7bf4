//! The settings of the triggers flow: [`TriggersConfig`] and the tables it shares with the
//! other Segment → Customer.io flows ([`ResolverSettings`], [`DispatcherSettings`]).

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dispatch::sinks::MergeResend;
use crate::dispatch::{DispatcherConfig, RetryPolicy};
use crate::identity::ResolverConfig;
use crate::mapping::MappingConfig;

/// Settings of the default identity resolver, loadable from TOML (see [`ResolverConfig`] for
/// what each does; the defaults are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ResolverSettings {
    /// [`ResolverConfig::allow_anonymous`]. Default `true`.
    pub allow_anonymous: bool,
    /// [`ResolverConfig::email_user_ids_as_email`]. Default `true`.
    pub email_user_ids_as_email: bool,
    /// [`ResolverConfig::link_from_events`]. Default `false`.
    pub link_from_events: bool,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self::from(ResolverConfig::default())
    }
}

impl From<ResolverConfig> for ResolverSettings {
    fn from(config: ResolverConfig) -> Self {
        Self {
            allow_anonymous: config.allow_anonymous,
            email_user_ids_as_email: config.email_user_ids_as_email,
            link_from_events: config.link_from_events,
        }
    }
}

impl From<ResolverSettings> for ResolverConfig {
    fn from(settings: ResolverSettings) -> Self {
        ResolverConfig::default()
            .with_allow_anonymous(settings.allow_anonymous)
            .with_email_user_ids_as_email(settings.email_user_ids_as_email)
            .with_link_from_events(settings.link_from_events)
    }
}

/// Dispatcher settings, loadable from TOML. Absent optional values keep the dispatcher's (or
/// the sink's) defaults; see [`DispatcherConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DispatcherSettings {
    /// Items accepted and not yet resolved before `submit` waits. Default 10 000; 0 is refused.
    pub queue_capacity: NonZeroUsize,
    /// Requests in flight at once. Default 4; 0 is refused.
    pub concurrency: NonZeroUsize,
    /// Timeout of one attempt, in milliseconds. Default 10 000; 0 is refused.
    pub attempt_timeout_ms: NonZeroU64,
    /// How long a partial batch waits for more items, in milliseconds. Default: the sink's.
    pub linger_ms: Option<u64>,
    /// Most operations per request (never above the sink's limit). Default: the sink's; 0 is
    /// refused.
    pub max_items: Option<NonZeroUsize>,
    /// Most attempts per request, the first included. Default: [`RetryPolicy::default`]'s; 0
    /// is refused.
    pub max_attempts: Option<NonZeroU32>,
    /// First retry delay, in milliseconds. Default: [`RetryPolicy::default`]'s.
    pub initial_backoff_ms: Option<u64>,
    /// Longest retry delay, in milliseconds. Default: [`RetryPolicy::default`]'s.
    pub max_backoff_ms: Option<u64>,
    /// How long a batch is retried before its items go back to their callers as retry-later,
    /// in seconds. Default: [`RetryPolicy::default`]'s (3600); 0 is refused.
    pub total_deadline_seconds: Option<NonZeroU64>,
    /// The longest `Retry-After` waited as asked, in seconds (a longer one is waited this
    /// long). Default: [`RetryPolicy::default`]'s (3600); 0 is refused.
    pub max_retry_after_seconds: Option<NonZeroU64>,
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        Self {
            queue_capacity: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
            concurrency: NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN),
            attempt_timeout_ms: NonZeroU64::new(10_000).unwrap_or(NonZeroU64::MIN),
            linger_ms: None,
            max_items: None,
            max_attempts: None,
            initial_backoff_ms: None,
            max_backoff_ms: None,
            total_deadline_seconds: None,
            max_retry_after_seconds: None,
        }
    }
}

impl DispatcherSettings {
    /// The [`DispatcherConfig`] these settings describe.
    pub fn to_config(&self) -> DispatcherConfig {
        let mut retry = RetryPolicy::default();
        if let Some(attempts) = self.max_attempts {
            retry = retry.with_max_attempts(attempts.get());
        }
        if let Some(ms) = self.initial_backoff_ms {
            retry = retry.with_initial_backoff(Duration::from_millis(ms));
        }
        if let Some(ms) = self.max_backoff_ms {
            retry = retry.with_max_backoff(Duration::from_millis(ms));
        }
        if let Some(seconds) = self.total_deadline_seconds {
            retry = retry.with_total_deadline(Duration::from_secs(seconds.get()));
        }
        if let Some(seconds) = self.max_retry_after_seconds {
            retry = retry.with_max_retry_after(Duration::from_secs(seconds.get()));
        }
        let mut config = DispatcherConfig::default()
            .with_queue_capacity(self.queue_capacity)
            .with_concurrency(self.concurrency)
            .with_attempt_timeout(Duration::from_millis(self.attempt_timeout_ms.get()))
            .with_retry(retry);
        if let Some(ms) = self.linger_ms {
            config = config.with_linger(Duration::from_millis(ms));
        }
        if let Some(max) = self.max_items {
            config = config.with_max_items(max);
        }
        config
    }
}

/// Settings of [`SegmentToCustomerIo`](super::SegmentToCustomerIo), loadable from TOML or JSON.
/// Every key has a default (see the [flow's docs](super)); unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TriggersConfig {
    /// How messages become Customer.io operations.
    pub mapping: MappingConfig,
    /// The default identity resolver's rules (unused when a resolver is given to the builder).
    pub resolver: ResolverSettings,
    /// The dispatcher.
    pub dispatcher: DispatcherSettings,
    /// The lease of a claimed messageId, in seconds. It is renewed every third of it while the
    /// delivery goes on (however long an outage makes that), so it only bounds how long a
    /// crashed worker's claim keeps a redelivery out. Default 60.
    pub lease_seconds: u64,
    /// Whether a merge (from an alias) that may have reached Customer.io is sent again after a
    /// lost answer: `"allow"` (default; a repeated merge does nothing) or `"refuse"`.
    pub merge_resend: MergeResend,
    /// People processed at once in a batch. Default 16; 0 is refused.
    pub batch_concurrency: NonZeroUsize,
}

impl Default for TriggersConfig {
    fn default() -> Self {
        Self {
            mapping: MappingConfig::default(),
            resolver: ResolverSettings::default(),
            dispatcher: DispatcherSettings::default(),
            lease_seconds: 60,
            merge_resend: MergeResend::Allow,
            batch_concurrency: NonZeroUsize::new(crate::pipeline::DEFAULT_BATCH_CONCURRENCY)
                .unwrap_or(NonZeroUsize::MIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_settings_reach_the_retry_policy_and_the_merge_rule_loads() {
        let config: TriggersConfig = toml::from_str(
            r#"
            merge_resend = "refuse"
            [dispatcher]
            total_deadline_seconds = 7200
            max_retry_after_seconds = 900
            "#,
        )
        .unwrap();
        assert_eq!(config.merge_resend, MergeResend::Refuse);
        let retry = config.dispatcher.to_config().retry;
        assert_eq!(retry.total_deadline(), Duration::from_secs(7_200));
        assert_eq!(retry.max_retry_after(), Duration::from_secs(900));
        let defaults = TriggersConfig::default();
        assert_eq!(defaults.merge_resend, MergeResend::Allow);
        assert_eq!(
            defaults.dispatcher.to_config().retry,
            RetryPolicy::default()
        );
        for zero in ["total_deadline_seconds = 0", "max_retry_after_seconds = 0"] {
            let text = format!("[dispatcher]\n{zero}\n");
            assert!(toml::from_str::<TriggersConfig>(&text).is_err(), "{zero}");
        }
    }

    #[test]
    fn config_loads_from_toml_with_defaults_for_missing_keys() {
        let config: TriggersConfig = toml::from_str(
            r#"
            lease_seconds = 30
            [resolver]
            allow_anonymous = false
            [dispatcher]
            linger_ms = 5
            max_attempts = 2
            [mapping.events]
            deny = ["Debug"]
            "#,
        )
        .unwrap();
        assert_eq!(config.lease_seconds, 30);
        assert_eq!(
            config.batch_concurrency.get(),
            crate::pipeline::DEFAULT_BATCH_CONCURRENCY
        );
        assert!(!config.resolver.allow_anonymous);
        assert!(config.resolver.email_user_ids_as_email);
        assert!(!config.mapping.events.allows("Debug"));
        let dispatcher = config.dispatcher.to_config();
        assert_eq!(
            dispatcher,
            DispatcherConfig::default()
                .with_linger(Duration::from_millis(5))
                .with_retry(RetryPolicy::default().with_max_attempts(2))
        );
        assert_eq!(
            ResolverConfig::from(config.resolver),
            ResolverConfig::default().with_allow_anonymous(false)
        );
    }

    #[test]
    fn empty_config_is_the_default_and_unknown_keys_are_refused() {
        assert_eq!(
            toml::from_str::<TriggersConfig>("").unwrap(),
            TriggersConfig::default()
        );
        let error = toml::from_str::<TriggersConfig>("lease = 3").unwrap_err();
        assert!(error.to_string().contains("lease"), "{error}");
    }
}
