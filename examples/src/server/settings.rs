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
//! | `REDIS_URL` | shared stores (dedupe, identity, churn activity, the loop guard's recent ids) for several workers | in memory |
//!
//! Empty values count as unset. Everything else (mapping, churn, …) is in [`FlowConfigs`],
//! which a host fills from its TOML configuration.
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
use std::sync::Arc;

use cio_segment_sync::activity::{ActivityStore, MemoryActivityStore};
use cio_segment_sync::customerio_client::webhook::{
    InvalidSigningKey, SignatureVerifier, WebhookSigningKey,
};
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dedupe::{Deduper, MemoryDeduper};
use cio_segment_sync::dispatch::sinks::SegmentTrackingSink;
use cio_segment_sync::dispatch::{Dispatcher, Worker};
use cio_segment_sync::flows::backfill::{BackfillConfig, BackfillConfigError, BackfillFlow};
use cio_segment_sync::flows::churn::{ChurnConfig, ChurnError, ChurnMonitor};
use cio_segment_sync::flows::engagement::{
    EngagementConfig, EngagementConfigError, EngagementFlow,
};
use cio_segment_sync::flows::triggers::{DispatcherSettings, SegmentToCustomerIo, TriggersConfig};
use cio_segment_sync::identity::{
    IdentityResolver, IdentityStore, MemoryIdentityStore, StoreResolver,
};
use cio_segment_sync::loop_guard::{
    LoopGuardConfig, MemoryRecentIds, RecentIds, RedisRecentIds, StampingLoopGuard,
};
use cio_segment_sync::pipeline::DispatchDeliver;
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::WriteKey;
use cio_segment_sync::segment_model::client::profile::{AccessToken, ProfileClient};
use cio_segment_sync::segment_model::client::tracking::TrackingClient;
use cio_segment_sync::segment_model::client::{BaseUrl, BaseUrlError};
use cio_segment_sync::segment_model::signature::{SharedSecret, WebhookVerifier};

use super::{Deadlines, ServerState};
use crate::config::{ConfigError, EnvConfig};

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
}

/// Every flow's settings (defaults unless the host loads them from its configuration file).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FlowConfigs {
    /// Segment → Customer.io.
    pub triggers: TriggersConfig,
    /// Customer.io → Segment back-sync.
    pub engagement: EngagementConfig,
    /// New-subscriber backfill.
    pub backfill: BackfillConfig,
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
        let stores = Stores::open(self.redis_url.as_deref(), self.redis_prefix.as_deref()).await?;
        let mut cio_config = ClientConfig::new(self.cio_region);
        if let Some(url) = &self.cio_track_url {
            cio_config =
                cio_config
                    .with_track_base_url(url)
                    .map_err(|error| BuildError::Client {
                        client: "Customer.io Track",
                        reason: error.to_string(),
                    })?;
        }
        let track =
            TrackClient::new(self.cio_site_id, self.cio_api_key, cio_config).map_err(|error| {
                BuildError::Client {
                    client: "Customer.io Track",
                    reason: error.to_string(),
                }
            })?;
        let dead_letters = Arc::new(MemoryDeadLetters::new(10_000));
        let loop_guard = Arc::new(StampingLoopGuard::new(
            stores.recent_ids.clone(),
            LoopGuardConfig::default(),
        ));
        let resolver: Arc<dyn IdentityResolver> = Arc::new(StoreResolver::new(
            stores.identity.clone(),
            self.flows.triggers.resolver.into(),
        ));
        let (triggers, triggers_worker) =
            SegmentToCustomerIo::builder(track, self.flows.triggers.clone())
                .deduper(stores.deduper.clone())
                .loop_guard(loop_guard.clone())
                .resolver(resolver.clone())
                .dead_letters(dead_letters.clone())
                .build();
        let mut workers = vec![triggers_worker];
        let cio_deliver = Arc::new(DispatchDeliver::new(
            triggers.dispatcher().clone(),
            dead_letters.clone(),
        ));
        let churn = match self.flows.churn {
            Some(config) => Some(Arc::new(
                ChurnMonitor::new(
                    config,
                    stores.activity.clone(),
                    Arc::new(triggers.dispatcher().clone()),
                )
                .map_err(BuildError::Churn)?,
            )),
            None => None,
        };
        let mut builder = ServerState::builder(Arc::new(triggers))
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
                    Arc::new(Unlimited),
                    dead_letters.clone(),
                );
                workers.push(worker);
                let flow = EngagementFlow::new(
                    self.flows.engagement,
                    SignatureVerifier::new(key),
                    stores.deduper.clone(),
                    loop_guard,
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
                    self.flows.backfill,
                    profiles,
                    stores.deduper.clone(),
                    cio_deliver,
                )
                .map_err(BuildError::Backfill)?;
                builder = builder.backfill(Arc::new(flow));
            }
        }
        if let Some(monitor) = churn {
            builder = builder.churn(monitor, resolver);
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
    /// `REDIS_URL` is set but Redis could not be reached.
    #[error("Redis could not be reached")]
    Redis(#[source] cio_segment_sync::StoreError),
}

/// The stores the flows share: Redis when `REDIS_URL` is set, memory otherwise.
struct Stores {
    deduper: Arc<dyn Deduper>,
    identity: Arc<dyn IdentityStore>,
    activity: Arc<dyn ActivityStore>,
    recent_ids: Arc<dyn RecentIds>,
}

impl Stores {
    async fn open(redis_url: Option<&str>, prefix: Option<&str>) -> Result<Self, BuildError> {
        use cio_segment_sync::redis::{
            RedisActivityStore, RedisConfig, RedisDeduper, RedisIdentityStore,
        };
        let Some(url) = redis_url else {
            return Ok(Self {
                deduper: Arc::new(MemoryDeduper::default()),
                identity: Arc::new(MemoryIdentityStore::default()),
                activity: Arc::new(MemoryActivityStore::default()),
                recent_ids: Arc::new(MemoryRecentIds::default()),
            });
        };
        let mut config = RedisConfig::new(url);
        if let Some(prefix) = prefix {
            config = config.with_prefix(prefix);
        }
        let conn = config.connect().await.map_err(BuildError::Redis)?;
        Ok(Self {
            deduper: Arc::new(RedisDeduper::new(conn.clone())),
            identity: Arc::new(RedisIdentityStore::new(conn.clone())),
            activity: Arc::new(RedisActivityStore::new(conn.clone())),
            recent_ids: Arc::new(RedisRecentIds::new(conn)),
        })
    }
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
