//! The server's settings from environment variables, through an injectable lookup, and the
//! construction of every flow and store from them.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BIND` | listen address | `127.0.0.1:3000` |
//! | `CIO_SITE_ID`, `CIO_API_KEY` | Customer.io Track API credentials | required |
//! | `CIO_REGION` | `us` or `eu` | `us` |
//! | `CIO_TRACK_URL` | Track API base URL (scheme, host, port) | the region's |
//! | `SEGMENT_WEBHOOK_SECRET` | checks `X-Signature` on `POST /segment` | unchecked |
//! | `CIO_WEBHOOK_SIGNING_KEY` | checks reporting webhooks; mounts `POST /customerio` | route off |
//! | `SEGMENT_WRITE_KEY` | engagement back-sync to Segment | back-sync off |
//! | `SEGMENT_API_URL` | Segment tracking API base URL | Segment's |
//! | `SEGMENT_PROFILE_TOKEN`, `SEGMENT_SPACE_ID` | new-subscriber backfill (both needed) | backfill off |
//! | `SEGMENT_PROFILE_URL` | Profile API base URL | Segment's |
//! | `CIO_APP_API_KEY`, `CIO_APP_URL` | App API, for `[audience] create_missing = true` | off |
//! | `REDIS_URL` | shared stores (dedupe, identity, churn activity, onboarding progress, audience memberships, the loop guard's recent ids) and the Track API rate limit, for several workers | in memory |
//!
//! Empty values count as unset. Everything else (mapping, milestones, audiences, churn, the
//! server's deadlines, the dead-letter file) comes from the `--config FILE.toml` file
//! ([`SyncConfig`], applied by [`Settings::apply_config`]); [`Settings::from_args`] reads both,
//! as the binary does.
//!
//! ```
//! use examples::server::settings::Settings;
//!
//! let env = |name: &str| match name {
//!     "CIO_SITE_ID" => Some("site".to_owned()),
//!     "CIO_API_KEY" => Some("key".to_owned()),
//!     "CIO_REGION" => Some("eu".to_owned()),
//!     _ => None,
//! };
//! let settings = Settings::from_lookup(env)?;
//! assert_eq!(settings.bind.to_string(), "127.0.0.1:3000");
//! assert!(!format!("{settings:?}").contains("key\""));
//! # Ok::<(), examples::server::settings::SettingsError>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::customerio_client::webhook::{
    InvalidSigningKey, SignatureVerifier, WebhookSigningKey,
};
use cio_segment_sync::customerio_client::{
    AppApiKey, AppClient, ClientConfig, Region, SiteId, TrackApiKey, TrackClient,
};
use cio_segment_sync::dead_letter::{DeadLetterSink, JsonlDeadLetters, MemoryDeadLetters};
use cio_segment_sync::dispatch::Dispatcher;
use cio_segment_sync::dispatch::Worker;
use cio_segment_sync::dispatch::sinks::SegmentTrackingSink;
use cio_segment_sync::flows::audience::AudienceConfig;
use cio_segment_sync::flows::backfill::{BackfillConfig, BackfillConfigError, BackfillFlow};
use cio_segment_sync::flows::churn::{ChurnConfig, ChurnError, ChurnMonitor};
use cio_segment_sync::flows::engagement::{
    EngagementConfig, EngagementConfigError, EngagementFlow,
};
use cio_segment_sync::flows::onboarding::OnboardingConfig;
use cio_segment_sync::flows::triggers::{DispatcherSettings, TriggersConfig};
use cio_segment_sync::pipeline::DispatchDeliver;
use cio_segment_sync::redis::RedisConfig;
use cio_segment_sync::segment_model::WriteKey;
use cio_segment_sync::segment_model::client::profile::{AccessToken, ProfileClient};
use cio_segment_sync::segment_model::client::tracking::TrackingClient;
use cio_segment_sync::segment_model::client::{BaseUrl, BaseUrlError};
use cio_segment_sync::segment_model::signature::{SharedSecret, WebhookVerifier};

use super::{Deadlines, ServerState};
use crate::config::{ConfigError, EnvConfig, ServerConfig, SyncConfig};
use crate::flows::{FlowsError, SegmentFlows, Stores};

/// The default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";

/// A setting could not be read. Names the variable, never its value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A required variable is unset or empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A variable could not be read (see [`ConfigError`]: it names the variable, never the
    /// value).
    #[error(transparent)]
    Env(#[from] ConfigError),
    /// A `*_URL` override is not a usable base URL for a Segment client.
    #[error("{name} is not a usable base URL: {reason}")]
    Url {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// `CIO_WEBHOOK_SIGNING_KEY` is not usable.
    #[error("CIO_WEBHOOK_SIGNING_KEY is not usable")]
    SigningKey(#[source] InvalidSigningKey),
    /// The `--config` file or another argument is not usable (see [`ConfigError`]).
    #[error(transparent)]
    Config(ConfigError),
    /// A section of the configuration file needs a variable that is not set.
    #[error(
        "section `[{section}]` needs {variable}, which is not set (set it, or remove the section)"
    )]
    SectionNeeds {
        /// The section.
        section: &'static str,
        /// The variable.
        variable: &'static str,
    },
}

/// Every flow's settings: defaults, or a [`SyncConfig`] file's sections
/// ([`Settings::apply_config`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FlowConfigs {
    /// Segment → Customer.io triggers, profiles and deletions (always on).
    pub triggers: TriggersConfig,
    /// Onboarding milestones; `None` switches the flow off.
    pub onboarding: Option<OnboardingConfig>,
    /// Engage audiences → manual segments; `None` switches the flow off.
    pub audience: Option<AudienceConfig>,
    /// Customer.io → Segment back-sync. It runs whenever `CIO_WEBHOOK_SIGNING_KEY` and
    /// `SEGMENT_WRITE_KEY` are set, with these settings or the defaults; setting them without
    /// those variables is an error.
    pub engagement: Option<EngagementConfig>,
    /// New-subscriber backfill. It runs whenever `CIO_WEBHOOK_SIGNING_KEY`,
    /// `SEGMENT_PROFILE_TOKEN` and `SEGMENT_SPACE_ID` are set, with these settings or the
    /// defaults; setting them without those variables is an error.
    pub backfill: Option<BackfillConfig>,
    /// The back-sync's Segment dispatcher.
    pub engagement_dispatcher: DispatcherSettings,
    /// Churn monitor; `None` switches the churn scan off.
    pub churn: Option<ChurnConfig>,
}

/// The server's settings. Secrets are kept in redacting types; see [`Settings::from_lookup`].
pub struct Settings {
    /// Where to listen.
    pub bind: SocketAddr,
    /// Customer.io site id.
    pub cio_site_id: SiteId,
    /// Customer.io Track API key.
    pub cio_api_key: TrackApiKey,
    /// Customer.io region.
    pub cio_region: Region,
    /// Track API base URL override (scheme, host, port).
    pub cio_track_url: Option<String>,
    /// Segment webhook shared secret.
    pub segment_webhook_secret: Option<SharedSecret>,
    /// Customer.io reporting-webhook signing key.
    pub cio_webhook_signing_key: Option<WebhookSigningKey>,
    /// Segment write key for the back-sync.
    pub segment_write_key: Option<WriteKey>,
    /// Segment tracking API base URL override.
    pub segment_api_url: Option<BaseUrl>,
    /// Profile API token and space id, for the backfill.
    pub segment_profile: Option<(AccessToken, String)>,
    /// Profile API base URL override.
    pub segment_profile_url: Option<BaseUrl>,
    /// App API key, for audience segments created on demand.
    pub cio_app_api_key: Option<AppApiKey>,
    /// App API base URL override (scheme, host, port).
    pub cio_app_url: Option<String>,
    /// Append dead letters to this JSON-lines file (`None`: keep the last 10 000 in memory).
    pub dead_letter_file: Option<PathBuf>,
    /// How often the binary runs the churn scan (when [`FlowConfigs::churn`] is set).
    pub churn_scan_every: Duration,
    /// Redis URL (may hold a password).
    redis_url: Option<String>,
    /// The Redis key prefix (`None`: the library's default). Workers sharing state use the
    /// same prefix; separate deployments on one Redis use different ones.
    pub redis_prefix: Option<String>,
    /// The webhook routes' deadlines.
    pub deadlines: Deadlines,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// The flows' settings.
    pub flows: FlowConfigs,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("cio_site_id", &self.cio_site_id)
            .field("cio_api_key", &self.cio_api_key)
            .field("cio_region", &self.cio_region)
            .field("cio_track_url", &self.cio_track_url)
            .field(
                "segment_webhook_secret",
                &self.segment_webhook_secret.is_some(),
            )
            .field(
                "cio_webhook_signing_key",
                &self.cio_webhook_signing_key.is_some(),
            )
            .field("segment_write_key", &self.segment_write_key.is_some())
            .field("segment_api_url", &self.segment_api_url)
            .field("segment_profile", &self.segment_profile.is_some())
            .field("segment_profile_url", &self.segment_profile_url)
            .field("cio_app_api_key", &self.cio_app_api_key)
            .field("cio_app_url", &self.cio_app_url)
            .field("dead_letter_file", &self.dead_letter_file)
            .field("churn_scan_every", &self.churn_scan_every)
            .field("redis", &self.redis_url.is_some())
            .field("redis_prefix", &self.redis_prefix)
            .field("deadlines", &self.deadlines)
            .field("body_limit", &self.body_limit)
            .field("flows", &self.flows)
            .finish()
    }
}

fn base_url(name: &'static str, value: &str) -> Result<BaseUrl, SettingsError> {
    BaseUrl::parse(value).map_err(|error: BaseUrlError| SettingsError::Url {
        name,
        reason: error.to_string(),
    })
}

impl Settings {
    /// Reads the variables through `lookup` (`|name| std::env::var(name).ok()` in the binary, a
    /// map in tests). Empty values count as unset.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the first variable that is missing or unusable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        Self::from_env_config(EnvConfig::from_lookup(lookup)?)
    }

    /// The server's settings from the variables the examples share ([`EnvConfig`]): the Track
    /// credentials are required here, everything else is optional.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the first variable that is missing or unusable.
    pub fn from_env_config(env: EnvConfig) -> Result<Self, SettingsError> {
        let credentials = env
            .customerio
            .clone()
            .ok_or(SettingsError::Missing("CIO_SITE_ID"))?;
        let segment_url = |name: &'static str, url: &Option<url::Url>| {
            url.as_ref()
                .map(|url| base_url(name, url.as_str()))
                .transpose()
        };
        let segment_profile = match (&env.segment_profile_token, &env.segment_space_id) {
            (Some(token), Some(space)) => {
                Some((AccessToken::new(token.expose_secret()), space.clone()))
            }
            _ => None,
        };
        Ok(Self {
            bind: env.bind,
            cio_site_id: credentials.site_id,
            cio_api_key: credentials.api_key,
            cio_region: env.region,
            cio_track_url: env.track_url.as_ref().map(|url| url.as_str().to_owned()),
            segment_webhook_secret: env
                .segment_webhook_secret
                .as_ref()
                .map(|secret| SharedSecret::new(secret.expose_secret())),
            cio_webhook_signing_key: env
                .cio_webhook_signing_key
                .as_ref()
                .map(|key| WebhookSigningKey::new(key.expose_secret()))
                .transpose()
                .map_err(SettingsError::SigningKey)?,
            segment_write_key: env
                .segment_write_key
                .as_ref()
                .map(|key| WriteKey::new(key.expose_secret())),
            segment_api_url: segment_url("SEGMENT_API_URL", &env.segment_api_url)?,
            segment_profile,
            segment_profile_url: segment_url("SEGMENT_PROFILE_URL", &env.segment_profile_url)?,
            cio_app_api_key: env.app_api_key.clone(),
            cio_app_url: env.app_url.as_ref().map(|url| url.as_str().to_owned()),
            dead_letter_file: None,
            churn_scan_every: Duration::from_secs(
                ServerConfig::default().churn_scan_interval_seconds,
            ),
            redis_url: env
                .redis_url
                .as_ref()
                .map(|url| url.expose_secret().to_owned()),
            redis_prefix: None,
            deadlines: Deadlines::default(),
            body_limit: super::DEFAULT_BODY_LIMIT,
            flows: FlowConfigs::default(),
        })
    }

    /// [`from_lookup`](Self::from_lookup) over the process environment.
    ///
    /// # Errors
    ///
    /// As [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The binary's settings: the variables through `lookup`, then the command line `args`
    /// (without the program name): `--config FILE.toml` (see [`SyncConfig`]) and
    /// `--dead-letter FILE` (append dead letters to a JSON-lines file; wins over the file's
    /// `[server] dead_letter_file`).
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the variable, file, section or argument that is wrong.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let (config, rest) = SyncConfig::from_args(args).map_err(SettingsError::Config)?;
        let mut dead_letter_file = None;
        let mut rest = rest.into_iter();
        while let Some(arg) = rest.next() {
            if arg == "--dead-letter" {
                let file = rest.next().ok_or_else(|| {
                    SettingsError::Config(ConfigError::Argument {
                        arg: arg.clone(),
                        problem: "needs a file name".to_owned(),
                    })
                })?;
                dead_letter_file = Some(PathBuf::from(file));
            } else if let Some(file) = arg.strip_prefix("--dead-letter=") {
                dead_letter_file = Some(PathBuf::from(file));
            } else {
                return Err(SettingsError::Config(ConfigError::Argument {
                    arg,
                    problem: "unknown; the server takes --config FILE.toml and \
                              --dead-letter FILE"
                        .to_owned(),
                }));
            }
        }
        let mut settings = Self::from_lookup(lookup)?;
        settings.apply_config(config)?;
        if dead_letter_file.is_some() {
            settings.dead_letter_file = dead_letter_file;
        }
        Ok(settings)
    }

    /// Takes every flow's settings from `config` (sections absent there switch their flow off,
    /// or leave the Customer.io → Segment flows on their defaults) and the server's own from
    /// its `[server]` section.
    ///
    /// # Errors
    ///
    /// [`SettingsError::SectionNeeds`] when `[engagement]` or `[backfill]` is set but a
    /// variable its flow needs is not; [`SettingsError::Config`] for a `[server]` deadline
    /// that cannot work.
    pub fn apply_config(&mut self, config: SyncConfig) -> Result<(), SettingsError> {
        let needs = |section, variable| SettingsError::SectionNeeds { section, variable };
        if config.engagement.is_some() || config.backfill.is_some() {
            if self.cio_webhook_signing_key.is_none() {
                let section = if config.engagement.is_some() {
                    "engagement"
                } else {
                    "backfill"
                };
                return Err(needs(section, "CIO_WEBHOOK_SIGNING_KEY"));
            }
            if config.engagement.is_some() && self.segment_write_key.is_none() {
                return Err(needs("engagement", "SEGMENT_WRITE_KEY"));
            }
            if config.backfill.is_some() && self.segment_profile.is_none() {
                return Err(needs("backfill", "SEGMENT_PROFILE_TOKEN"));
            }
        }
        let server = config.server.unwrap_or_default();
        self.deadlines = server.validate().map_err(|error| {
            SettingsError::Config(ConfigError::Section {
                origin: "the configuration".to_owned(),
                section: "server",
                problem: error.to_string(),
            })
        })?;
        self.body_limit = server.body_limit_bytes;
        self.churn_scan_every = Duration::from_secs(server.churn_scan_interval_seconds);
        self.redis_prefix = server.redis_prefix;
        self.dead_letter_file = server.dead_letter_file;
        self.flows = FlowConfigs {
            triggers: config.triggers,
            onboarding: config.onboarding,
            audience: config.audience,
            engagement: config.engagement,
            backfill: config.backfill,
            engagement_dispatcher: server.segment_dispatcher,
            churn: config.churn,
        };
        Ok(())
    }

    /// Whether `REDIS_URL` is set.
    pub fn uses_redis(&self) -> bool {
        self.redis_url.is_some()
    }

    /// Builds every flow and store: the server state, and the dispatchers' workers the host
    /// must run (`tokio::spawn` each).
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the part that could not be built (a client, a flow's settings,
    /// Redis).
    pub async fn build(self) -> Result<(ServerState, Vec<Worker>), BuildError> {
        let stores = match &self.redis_url {
            None => Stores::memory(),
            Some(url) => {
                let mut config = RedisConfig::new(url.as_str());
                if let Some(prefix) = &self.redis_prefix {
                    config = config.with_prefix(prefix.as_str());
                }
                Stores::redis(&config).await.map_err(BuildError::Redis)?
            }
        };
        let client_error = |client: &'static str| {
            move |error: customerio_client::Error| BuildError::Client {
                client,
                reason: error.to_string(),
            }
        };
        let mut cio_config = ClientConfig::new(self.cio_region);
        if let Some(url) = &self.cio_track_url {
            cio_config = cio_config
                .with_track_base_url(url)
                .map_err(client_error("Customer.io Track"))?;
        }
        if let Some(url) = &self.cio_app_url {
            cio_config = cio_config
                .with_app_base_url(url)
                .map_err(client_error("Customer.io App"))?;
        }
        let track = TrackClient::new(self.cio_site_id, self.cio_api_key, cio_config.clone())
            .map_err(client_error("Customer.io Track"))?;
        let dead_letters: Arc<dyn DeadLetterSink> = match &self.dead_letter_file {
            None => Arc::new(MemoryDeadLetters::new(10_000)),
            Some(path) => Arc::new(JsonlDeadLetters::open(path).map_err(|source| {
                BuildError::DeadLetterFile {
                    path: path.clone(),
                    source,
                }
            })?),
        };
        let flows_config = SyncConfig {
            triggers: self.flows.triggers.clone(),
            onboarding: self.flows.onboarding.clone(),
            audience: self.flows.audience.clone(),
            ..SyncConfig::default()
        };
        let mut flows = SegmentFlows::builder(track, &flows_config)
            .stores(stores.clone())
            .dead_letters(dead_letters.clone());
        if let Some(key) = self.cio_app_api_key {
            flows = flows.app_client(
                AppClient::new(key, cio_config).map_err(client_error("Customer.io App"))?,
            );
        }
        let built = flows.build().map_err(BuildError::Flows)?;
        let mut workers = built.workers;
        let flows = built.flows;
        let cio_deliver = Arc::new(DispatchDeliver::new(
            flows.triggers().dispatcher().clone(),
            dead_letters.clone(),
        ));
        let churn = match self.flows.churn {
            Some(config) => Some(Arc::new(
                ChurnMonitor::new(
                    config,
                    stores.activity.clone(),
                    Arc::new(flows.triggers().dispatcher().clone()),
                )
                .map_err(BuildError::Churn)?,
            )),
            None => None,
        };
        let mut builder = ServerState::builder(flows)
            .deadlines(self.deadlines)
            .body_limit(self.body_limit);
        if let Some(secret) = self.segment_webhook_secret {
            builder = builder.segment_verifier(WebhookVerifier::new(secret));
        }
        if let Some(key) = self.cio_webhook_signing_key {
            builder = builder.customerio_verifier(SignatureVerifier::new(key.clone()));
            if let Some(write_key) = self.segment_write_key {
                let mut tracking = TrackingClient::builder(write_key);
                if let Some(url) = self.segment_api_url {
                    tracking = tracking.base_url(url);
                }
                let tracking = tracking.build().map_err(|error| BuildError::Client {
                    client: "Segment tracking",
                    reason: error.to_string(),
                })?;
                let (handle, worker) = Dispatcher::new(
                    SegmentTrackingSink::new(tracking),
                    self.flows.engagement_dispatcher.to_config(),
                    stores.segment_limiter.clone(),
                    dead_letters.clone(),
                );
                workers.push(worker);
                let flow = EngagementFlow::new(
                    self.flows.engagement.unwrap_or_default(),
                    SignatureVerifier::new(key),
                    stores.deduper.clone(),
                    built.loop_guard,
                    handle.clone(),
                    dead_letters.clone(),
                )
                .map_err(BuildError::Engagement)?;
                builder = builder.engagement(Arc::new(flow), handle);
            }
            if let Some((token, space)) = self.segment_profile {
                let mut profiles = ProfileClient::builder(token, space);
                if let Some(url) = self.segment_profile_url {
                    profiles = profiles.base_url(url);
                }
                let profiles = profiles.build().map_err(|error| BuildError::Client {
                    client: "Segment Profile",
                    reason: error.to_string(),
                })?;
                let flow = BackfillFlow::new(
                    self.flows.backfill.unwrap_or_default(),
                    profiles,
                    stores.deduper.clone(),
                    cio_deliver,
                )
                .map_err(BuildError::Backfill)?;
                builder = builder.backfill(Arc::new(flow));
            }
        }
        if let Some(monitor) = churn {
            builder = builder.churn(monitor, built.resolver);
        }
        Ok((builder.build(), workers))
    }
}

/// The server could not be built from its settings. Carries no secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A vendor client refused its settings.
    #[error("the {client} client could not be built: {reason}")]
    Client {
        /// Which client.
        client: &'static str,
        /// Why.
        reason: String,
    },
    /// The engagement settings are invalid.
    #[error("the engagement settings are invalid")]
    Engagement(#[source] EngagementConfigError),
    /// The backfill settings are invalid.
    #[error("the backfill settings are invalid")]
    Backfill(#[source] BackfillConfigError),
    /// The churn settings are invalid.
    #[error("the churn settings are invalid")]
    Churn(#[source] ChurnError),
    /// A Segment → Customer.io flow section cannot be built.
    #[error("the Segment → Customer.io flows cannot be built")]
    Flows(#[source] FlowsError),
    /// The dead-letter file cannot be opened for appending.
    #[error("the dead-letter file {} cannot be opened", .path.display())]
    DeadLetterFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `REDIS_URL` is set but Redis could not be reached.
    #[error("Redis could not be reached")]
    Redis(#[source] cio_segment_sync::StoreError),
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: &[(&str, &str)] = &[("CIO_SITE_ID", "site"), ("CIO_API_KEY", "track-key-value")];

    #[test]
    fn defaults_and_missing_credentials() {
        let settings = Settings::from_lookup(lookup(BASE)).unwrap();
        assert_eq!(settings.bind.to_string(), DEFAULT_BIND);
        assert_eq!(settings.cio_region, Region::Us);
        assert!(settings.cio_webhook_signing_key.is_none() && !settings.uses_redis());
        let error = Settings::from_lookup(lookup(&[("CIO_SITE_ID", "site")])).err();
        assert!(matches!(
            error,
            Some(SettingsError::Env(ConfigError::Incomplete {
                set: "CIO_SITE_ID",
                missing: "CIO_API_KEY"
            }))
        ));
        let error = Settings::from_lookup(lookup(&[])).err();
        assert!(matches!(error, Some(SettingsError::Missing("CIO_SITE_ID"))));
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_the_value() {
        let mut pairs = BASE.to_vec();
        pairs.push(("SEGMENT_API_URL", "ftp://secret-host"));
        let error = Settings::from_lookup(lookup(&pairs))
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("SEGMENT_API_URL") && !error.contains("secret-host"),
            "{error}"
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("CIO_REGION", "mars"));
        assert!(matches!(
            Settings::from_lookup(lookup(&pairs)),
            Err(SettingsError::Env(ConfigError::Invalid {
                var: "CIO_REGION",
                ..
            }))
        ));
        let mut pairs = BASE.to_vec();
        pairs.push(("SEGMENT_SPACE_ID", "spa_1"));
        assert!(matches!(
            Settings::from_lookup(lookup(&pairs)),
            Err(SettingsError::Env(ConfigError::Incomplete {
                set: "SEGMENT_SPACE_ID",
                missing: "SEGMENT_PROFILE_TOKEN"
            }))
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_built_state_shows_no_secret_either() {
        let mut pairs = vec![
            ("CIO_SITE_ID", "site-id-value"),
            ("CIO_API_KEY", "track-key-value"),
        ];
        pairs.extend([
            ("SEGMENT_WEBHOOK_SECRET", "segment-secret-value"),
            ("CIO_WEBHOOK_SIGNING_KEY", "signing-key-value"),
            ("SEGMENT_WRITE_KEY", "write-key-value"),
            ("SEGMENT_PROFILE_TOKEN", "profile-token-value"),
            ("SEGMENT_SPACE_ID", "spa_1"),
        ]);
        let (state, workers) = Settings::from_lookup(lookup(&pairs))
            .unwrap()
            .build()
            .await
            .unwrap();
        assert_eq!(workers.len(), 2, "Customer.io and Segment dispatchers");
        let debug = format!("{state:?}");
        for secret in [
            "track-key-value",
            "segment-secret-value",
            "signing-key-value",
            "write-key-value",
            "profile-token-value",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    fn config_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        (dir, path)
    }

    #[test]
    fn without_arguments_only_the_triggers_flow_is_on() {
        let settings = Settings::from_args(args(&[]), lookup(BASE)).unwrap();
        assert!(settings.flows.onboarding.is_none() && settings.flows.audience.is_none());
        assert!(settings.flows.churn.is_none() && settings.dead_letter_file.is_none());
        assert_eq!(settings.churn_scan_every, Duration::from_secs(900));
        assert_eq!(settings.deadlines, Deadlines::default());
    }

    #[test]
    fn the_config_file_fills_every_flow_and_the_server_section() {
        let (_dir, path) = config_file(
            r#"
            [triggers]
            lease_seconds = 30
            [onboarding]
            milestones = [{ event = "Signed Up", key = "signed_up" }]
            [audience.segments]
            vip = 7
            [churn]
            inactive_days = 14
            [server]
            churn_scan_interval_seconds = 120
            segment_deadline_ms = 2500
            customerio_deadline_ms = 1500
            body_limit_bytes = 1000
            redis_prefix = "staging:"
            dead_letter_file = "from-file.jsonl"
            [server.segment_dispatcher]
            concurrency = 2
            "#,
        );
        let settings = Settings::from_args(args(&["--config", &path]), lookup(BASE)).unwrap();
        assert_eq!(settings.flows.triggers.lease_seconds, 30);
        assert_eq!(
            settings.flows.onboarding.as_ref().unwrap().milestones.len(),
            1
        );
        assert_eq!(settings.flows.audience.as_ref().unwrap().segments["vip"], 7);
        assert_eq!(settings.flows.churn.as_ref().unwrap().inactive_days, 14);
        assert_eq!(settings.flows.engagement_dispatcher.concurrency.get(), 2);
        assert_eq!(settings.churn_scan_every, Duration::from_secs(120));
        assert_eq!(settings.deadlines.segment(), Duration::from_millis(2500));
        assert_eq!(settings.deadlines.customerio(), Duration::from_millis(1500));
        assert_eq!(settings.body_limit, 1000);
        assert_eq!(settings.redis_prefix.as_deref(), Some("staging:"));
        assert_eq!(
            settings.dead_letter_file.as_deref(),
            Some(std::path::Path::new("from-file.jsonl"))
        );
        // The command line wins over the file.
        let settings = Settings::from_args(
            args(&["--config", &path, "--dead-letter=cli.jsonl"]),
            lookup(BASE),
        )
        .unwrap();
        assert_eq!(
            settings.dead_letter_file.as_deref(),
            Some(std::path::Path::new("cli.jsonl"))
        );
    }

    #[test]
    fn wrong_arguments_and_sections_are_named() {
        let error = Settings::from_args(args(&["--bogus"]), lookup(BASE))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("`--bogus`"), "{error}");
        let error = Settings::from_args(args(&["--dead-letter"]), lookup(BASE))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("needs a file name"), "{error}");

        let (_dir, path) = config_file("[server]\ncustomerio_deadline_ms = 4000\n");
        let error = Settings::from_args(args(&["--config", &path]), lookup(BASE))
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("[server]") && error.contains("4 seconds"),
            "{error}"
        );
        let (_dir, path) = config_file("[server]\nwhatever = 1\n");
        let error = Settings::from_args(args(&["--config", &path]), lookup(BASE))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("whatever"), "{error}");

        // A Customer.io → Segment section without the credentials its flow needs.
        let (_dir, path) = config_file("[engagement]\nunsubscribed_event = \"Unsubscribed\"\n");
        let error = Settings::from_args(args(&["--config", &path]), lookup(BASE)).err();
        assert!(matches!(
            error,
            Some(SettingsError::SectionNeeds {
                section: "engagement",
                variable: "CIO_WEBHOOK_SIGNING_KEY"
            })
        ));
        let mut pairs = BASE.to_vec();
        pairs.push(("CIO_WEBHOOK_SIGNING_KEY", "signing-key"));
        let error = Settings::from_args(args(&["--config", &path]), lookup(&pairs)).err();
        assert!(matches!(
            error,
            Some(SettingsError::SectionNeeds {
                section: "engagement",
                variable: "SEGMENT_WRITE_KEY"
            })
        ));
        let (_dir, path) = config_file("[backfill]\npage_size = 50\n");
        let error = Settings::from_args(args(&["--config", &path]), lookup(&pairs)).err();
        assert!(matches!(
            error,
            Some(SettingsError::SectionNeeds {
                section: "backfill",
                variable: "SEGMENT_PROFILE_TOKEN"
            })
        ));
    }

    #[test]
    fn a_config_built_in_code_is_checked_like_a_file() {
        let mut settings = Settings::from_lookup(lookup(BASE)).unwrap();
        let config = SyncConfig {
            server: Some(ServerConfig {
                body_limit_bytes: 0,
                ..ServerConfig::default()
            }),
            ..SyncConfig::default()
        };
        let error = settings.apply_config(config).err().unwrap().to_string();
        assert!(
            error.contains("[server]") && error.contains("`body_limit_bytes` must be at least 1"),
            "{error}"
        );
        assert_eq!(
            settings.body_limit,
            super::super::DEFAULT_BODY_LIMIT,
            "left unchanged"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn audience_segments_created_on_demand_need_the_app_api_key() {
        let (_dir, path) = config_file("[audience]\ncreate_missing = true\n");
        let settings = Settings::from_args(args(&["--config", &path]), lookup(BASE)).unwrap();
        let error = settings.build().await.err().unwrap();
        assert!(
            matches!(
                error,
                BuildError::Flows(crate::flows::FlowsError::AudienceNeedsAppApi)
            ),
            "{error}"
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("CIO_APP_API_KEY", "app-key"));
        let settings = Settings::from_args(args(&["--config", &path]), lookup(&pairs)).unwrap();
        assert!(settings.build().await.is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_unwritable_dead_letter_file_is_a_build_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("dead.jsonl");
        let mut settings = Settings::from_lookup(lookup(BASE)).unwrap();
        settings.dead_letter_file = Some(path);
        let error = settings.build().await.err().unwrap().to_string();
        assert!(
            error.contains("dead-letter file") && error.contains("missing-dir"),
            "{error}"
        );
    }

    #[test]
    fn debug_redacts_every_secret() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("SEGMENT_WEBHOOK_SECRET", "segment-secret-value"),
            ("CIO_WEBHOOK_SIGNING_KEY", "signing-key-value"),
            ("SEGMENT_WRITE_KEY", "write-key-value"),
            ("SEGMENT_PROFILE_TOKEN", "profile-token-value"),
            ("SEGMENT_SPACE_ID", "spa_1"),
            ("REDIS_URL", "redis://:redis-password-value@localhost"),
        ]);
        let debug = format!("{:?}", Settings::from_lookup(lookup(&pairs)).unwrap());
        for secret in [
            "track-key-value",
            "segment-secret-value",
            "signing-key-value",
            "write-key-value",
            "profile-token-value",
            "redis-password-value",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
    }
}
