//! Configuration of the example programs: secrets and endpoints from the environment, the rest
//! from an optional TOML file.
//!
//! # Environment
//!
//! | variable | meaning |
//! |---|---|
//! | `CIO_SITE_ID`, `CIO_API_KEY` | Customer.io Track API credentials (both or neither) |
//! | `CIO_APP_API_KEY` | Customer.io App API key (bearer) |
//! | `CIO_REGION` | `us` (default) or `eu` |
//! | `CIO_TRACK_URL`, `CIO_APP_URL` | base-URL overrides: scheme, host and port only |
//! | `SEGMENT_WRITE_KEY` | Segment Tracking API write key (back-sync) |
//! | `SEGMENT_API_URL` | Tracking API base-URL override |
//! | `SEGMENT_PROFILE_TOKEN`, `SEGMENT_SPACE_ID` | Segment Profile API access (backfill) |
//! | `SEGMENT_PROFILE_URL` | Profile API base-URL override |
//! | `SEGMENT_WEBHOOK_SECRET` | shared secret of Segment's webhook signatures |
//! | `CIO_WEBHOOK_SIGNING_KEY` | signing key of Customer.io's reporting webhooks |
//! | `REDIS_URL` | shared stores in Redis instead of memory |
//! | `BIND` | listen address of the webhook server (default `127.0.0.1:3000`) |
//!
//! An empty variable counts as unset. The `*_URL` overrides take no path: the clients append
//! the API paths themselves. Variables are read through a lookup function
//! ([`EnvConfig::from_lookup`]), so tests pass a map instead of touching the process
//! environment.
//!
//! # File
//!
//! `--config FILE.toml` holds everything that is not a secret, as one [`SyncConfig`]; see
//! `examples/sync.example.toml` for every key with its default.
//!
//! ```
//! use std::collections::HashMap;
//! use examples::config::{EnvConfig, SyncConfig};
//!
//! let vars = HashMap::from([("CIO_SITE_ID", "site"), ("CIO_API_KEY", "key"), ("CIO_REGION", "eu")]);
//! let env = EnvConfig::from_lookup(|name| vars.get(name).map(|v| v.to_string()))?;
//! assert!(env.customerio.is_some());
//! let sync: SyncConfig = SyncConfig::from_toml_str("[triggers]\nlease_seconds = 60", "inline")?;
//! assert_eq!(sync.triggers.lease_seconds, 60);
//! # Ok::<(), examples::config::ConfigError>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cio_segment_sync::flows::audience::AudienceConfig;
use cio_segment_sync::flows::backfill::BackfillConfig;
use cio_segment_sync::flows::churn::ChurnConfig;
use cio_segment_sync::flows::engagement::EngagementConfig;
use cio_segment_sync::flows::onboarding::OnboardingConfig;
use cio_segment_sync::flows::triggers::{DispatcherSettings, TriggersConfig};
use customerio_client::{AppApiKey, ClientConfig, Region, SiteId, TrackApiKey};
use serde::{Deserialize, Serialize};
use url::Url;

/// The default listen address of the webhook server.
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";

/// What is wrong with the configuration. Names the variable, key or file; never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable is set but its value is not usable.
    #[error("environment variable `{var}`: {problem}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong, without the value.
        problem: String,
    },
    /// A variable is set but another one it needs is not.
    #[error("environment variable `{missing}` must be set when `{set}` is set")]
    Incomplete {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        missing: &'static str,
    },
    /// The configuration file could not be read.
    #[error("cannot read config file {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for [`SyncConfig`]; the message names the key
    /// and line.
    #[error("config file {origin}: {message}")]
    Toml {
        /// The file (or the name given to [`SyncConfig::from_toml_str`]).
        origin: String,
        /// The parser's description (key, line, column).
        message: String,
    },
    /// A section parses but cannot work (e.g. onboarding without milestones).
    #[error("config file {origin}: section `[{section}]`: {problem}")]
    Section {
        /// The file.
        origin: String,
        /// The section.
        section: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A command-line argument is wrong.
    #[error("argument `{arg}`: {problem}")]
    Argument {
        /// The argument.
        arg: String,
        /// What is wrong.
        problem: String,
    },
}

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Customer.io Track API credentials (`CIO_SITE_ID` and `CIO_API_KEY`).
#[derive(Clone)]
pub struct CustomerIoCredentials {
    /// The workspace's site id.
    pub site_id: SiteId,
    /// The Track API key.
    pub api_key: TrackApiKey,
}

impl fmt::Debug for CustomerIoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so a field added later must be considered here before it compiles.
        let Self {
            site_id: _,
            api_key: _,
        } = self;
        f.write_str("CustomerIoCredentials { site_id: <redacted>, api_key: <redacted> }")
    }
}

/// Everything the examples read from the environment. Secrets are typed so `{:?}` never shows
/// them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EnvConfig {
    /// `CIO_SITE_ID` + `CIO_API_KEY`, when both are set.
    pub customerio: Option<CustomerIoCredentials>,
    /// `CIO_APP_API_KEY`.
    pub app_api_key: Option<AppApiKey>,
    /// `CIO_REGION` (default US).
    pub region: Region,
    /// `CIO_TRACK_URL`.
    pub track_url: Option<Url>,
    /// `CIO_APP_URL`.
    pub app_url: Option<Url>,
    /// `SEGMENT_WRITE_KEY`.
    pub segment_write_key: Option<Secret>,
    /// `SEGMENT_API_URL`.
    pub segment_api_url: Option<Url>,
    /// `SEGMENT_PROFILE_TOKEN`.
    pub segment_profile_token: Option<Secret>,
    /// `SEGMENT_SPACE_ID`.
    pub segment_space_id: Option<String>,
    /// `SEGMENT_PROFILE_URL`.
    pub segment_profile_url: Option<Url>,
    /// `SEGMENT_WEBHOOK_SECRET`.
    pub segment_webhook_secret: Option<Secret>,
    /// `CIO_WEBHOOK_SIGNING_KEY`.
    pub cio_webhook_signing_key: Option<Secret>,
    /// `REDIS_URL` (may hold a password, so it is a secret).
    pub redis_url: Option<Secret>,
    /// `BIND` (default [`DEFAULT_BIND`]).
    pub bind: SocketAddr,
}

impl EnvConfig {
    /// Reads the process environment. A variable that is not valid Unicode is an error naming
    /// it.
    pub fn from_process() -> Result<Self, ConfigError> {
        let mut bad = None;
        let config = Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                bad.get_or_insert(name.to_owned());
                None
            }
        });
        if let Some(name) = bad {
            let var = ENV_VARS.iter().copied().find(|v| *v == name).unwrap_or("?");
            return Err(invalid(var, "not valid Unicode"));
        }
        config
    }

    /// Reads the variables through `lookup` (name → value; `None` or empty for unset).
    pub fn from_lookup(
        mut lookup: impl FnMut(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty());
        let site_id = get("CIO_SITE_ID");
        let api_key = get("CIO_API_KEY");
        let customerio = match (site_id, api_key) {
            (Some(site), Some(key)) => Some(CustomerIoCredentials {
                site_id: SiteId::new(site),
                api_key: TrackApiKey::new(key),
            }),
            (Some(_), None) => return Err(incomplete("CIO_SITE_ID", "CIO_API_KEY")),
            (None, Some(_)) => return Err(incomplete("CIO_API_KEY", "CIO_SITE_ID")),
            (None, None) => None,
        };
        let region = match get("CIO_REGION") {
            None => Region::Us,
            Some(value) => value
                .parse()
                .map_err(|_| invalid("CIO_REGION", "must be `us` or `eu`"))?,
        };
        let bind = match get("BIND") {
            None => DEFAULT_BIND
                .parse()
                .map_err(|_| invalid("BIND", "bad default"))?,
            Some(value) => value.trim().parse().map_err(|_| {
                invalid(
                    "BIND",
                    "must be an IP address and port, e.g. 127.0.0.1:3000",
                )
            })?,
        };
        let profile_token = get("SEGMENT_PROFILE_TOKEN").map(Secret::new);
        let space_id = get("SEGMENT_SPACE_ID");
        match (&profile_token, &space_id) {
            (Some(_), None) => return Err(incomplete("SEGMENT_PROFILE_TOKEN", "SEGMENT_SPACE_ID")),
            (None, Some(_)) => return Err(incomplete("SEGMENT_SPACE_ID", "SEGMENT_PROFILE_TOKEN")),
            _ => {}
        }
        Ok(Self {
            customerio,
            app_api_key: get("CIO_APP_API_KEY").map(AppApiKey::new),
            region,
            track_url: base_url("CIO_TRACK_URL", get("CIO_TRACK_URL"))?,
            app_url: base_url("CIO_APP_URL", get("CIO_APP_URL"))?,
            segment_write_key: get("SEGMENT_WRITE_KEY").map(Secret::new),
            segment_api_url: base_url("SEGMENT_API_URL", get("SEGMENT_API_URL"))?,
            segment_profile_token: profile_token,
            segment_space_id: space_id,
            segment_profile_url: base_url("SEGMENT_PROFILE_URL", get("SEGMENT_PROFILE_URL"))?,
            segment_webhook_secret: get("SEGMENT_WEBHOOK_SECRET").map(Secret::new),
            cio_webhook_signing_key: get("CIO_WEBHOOK_SIGNING_KEY").map(Secret::new),
            redis_url: get("REDIS_URL").map(Secret::new),
            bind,
        })
    }

    /// The Customer.io client settings: the region, and the URL overrides when set.
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        let mut config = ClientConfig::new(self.region);
        if let Some(url) = &self.track_url {
            config = config
                .with_track_base_url(url.as_str())
                .map_err(|e| invalid("CIO_TRACK_URL", e.to_string()))?;
        }
        if let Some(url) = &self.app_url {
            config = config
                .with_app_base_url(url.as_str())
                .map_err(|e| invalid("CIO_APP_URL", e.to_string()))?;
        }
        Ok(config)
    }
}

/// Every variable the examples read, in the order of the README's table.
pub const ENV_VARS: [&str; 15] = [
    "CIO_SITE_ID",
    "CIO_API_KEY",
    "CIO_APP_API_KEY",
    "CIO_REGION",
    "CIO_TRACK_URL",
    "CIO_APP_URL",
    "SEGMENT_WRITE_KEY",
    "SEGMENT_API_URL",
    "SEGMENT_PROFILE_TOKEN",
    "SEGMENT_SPACE_ID",
    "SEGMENT_PROFILE_URL",
    "SEGMENT_WEBHOOK_SECRET",
    "CIO_WEBHOOK_SIGNING_KEY",
    "REDIS_URL",
    "BIND",
];

fn invalid(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        problem: problem.into(),
    }
}

fn incomplete(set: &'static str, missing: &'static str) -> ConfigError {
    ConfigError::Incomplete { set, missing }
}

/// A base-URL override: `http` or `https`, a host, an optional port, and nothing else.
fn base_url(var: &'static str, value: Option<String>) -> Result<Option<Url>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let url = Url::parse(value.trim()).map_err(|e| invalid(var, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(var, "the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(var, "a host is required"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            var,
            "give scheme, host and port only: the clients append the API paths",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(var, "credentials belong in their own variables"));
    }
    Ok(Some(url))
}

/// The `--config FILE.toml` format: one section per flow, every section optional.
///
/// `[triggers]` is [`TriggersConfig`] (its `mapping`, `resolver` and `dispatcher` tables are
/// shared by the Segment → Customer.io flows); `[onboarding]`, `[audience]` and `[churn]` turn
/// those flows on. `[engagement]` and `[backfill]` hold the settings of the two Customer.io →
/// Segment flows: the webhook server runs them whenever their credentials are set, with the
/// defaults when the section is absent. `[server]` is read by the webhook server only. Unknown
/// keys are refused, naming the key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncConfig {
    /// Flow 1: triggers and profile enrichment (always on).
    pub triggers: TriggersConfig,
    /// Onboarding milestones, when configured.
    pub onboarding: Option<OnboardingConfig>,
    /// Engage audience → manual segments, when configured.
    pub audience: Option<AudienceConfig>,
    /// Churn prevention, when configured.
    pub churn: Option<ChurnConfig>,
    /// Engagement back-sync (reporting webhooks → Segment), when configured.
    pub engagement: Option<EngagementConfig>,
    /// New-subscriber backfill, when configured.
    pub backfill: Option<BackfillConfig>,
    /// The webhook server's own settings.
    pub server: Option<ServerConfig>,
}

/// `[server]`: the webhook server's settings that are not secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// How often the churn scan runs, in seconds (default 900), when `[churn]` is set.
    pub churn_scan_interval_seconds: u64,
    /// How long `POST /segment` waits for delivery before answering 503 (default 4000 ms).
    pub segment_deadline_ms: u64,
    /// How long `POST /customerio` waits before answering 503 (default 3000 ms; must stay
    /// under Customer.io's 4-second window).
    pub customerio_deadline_ms: u64,
    /// The largest request body, in bytes (default 8 MiB; larger bodies are answered 413).
    pub body_limit_bytes: usize,
    /// The Redis key prefix when `REDIS_URL` is set (default: the library's, `cio-sync:`).
    /// Workers of one deployment share it; deployments sharing a Redis use different ones.
    pub redis_prefix: Option<String>,
    /// Append dead letters to this JSON-lines file instead of keeping them in memory (the
    /// command line's `--dead-letter FILE` wins over it).
    pub dead_letter_file: Option<PathBuf>,
    /// The back-sync's Segment dispatcher (batching, concurrency, retries).
    pub segment_dispatcher: DispatcherSettings,
}

/// A `[server]` value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerConfigError {
    /// `churn_scan_interval_seconds = 0`.
    #[error("`churn_scan_interval_seconds` must be at least 1")]
    ZeroChurnInterval,
    /// `body_limit_bytes = 0`.
    #[error("`body_limit_bytes` must be at least 1")]
    ZeroBodyLimit,
    /// A deadline is zero, or the `/customerio` one is not under 4 s.
    #[error(transparent)]
    Deadline(#[from] crate::server::DeadlineError),
}

impl ServerConfig {
    /// Checks every value and returns the route deadlines they make.
    ///
    /// # Errors
    ///
    /// [`ServerConfigError`] naming the value that cannot work.
    pub fn validate(&self) -> Result<crate::server::Deadlines, ServerConfigError> {
        if self.churn_scan_interval_seconds == 0 {
            return Err(ServerConfigError::ZeroChurnInterval);
        }
        if self.body_limit_bytes == 0 {
            return Err(ServerConfigError::ZeroBodyLimit);
        }
        Ok(crate::server::Deadlines::new(
            std::time::Duration::from_millis(self.segment_deadline_ms),
            std::time::Duration::from_millis(self.customerio_deadline_ms),
        )?)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            churn_scan_interval_seconds: 15 * 60,
            segment_deadline_ms: 4_000,
            customerio_deadline_ms: 3_000,
            body_limit_bytes: 8 * 1024 * 1024,
            redis_prefix: None,
            dead_letter_file: None,
            segment_dispatcher: DispatcherSettings::default(),
        }
    }
}

impl SyncConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and checks `text`; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: SyncConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        config.check(origin)?;
        Ok(config)
    }

    /// The `--config FILE` among `args` (also `--config=FILE`), loaded; the default when absent.
    /// Returns the other arguments too.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut rest = Vec::new();
        let mut path = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--config" {
                let value = args.next().ok_or_else(|| ConfigError::Argument {
                    arg: arg.clone(),
                    problem: "needs a file name".to_owned(),
                })?;
                path = Some(PathBuf::from(value));
            } else if let Some(value) = arg.strip_prefix("--config=") {
                path = Some(PathBuf::from(value));
            } else {
                rest.push(arg);
            }
        }
        let config = match path {
            Some(path) => Self::load(&path)?,
            None => Self::default(),
        };
        Ok((config, rest))
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let section = |section, problem: String| ConfigError::Section {
            origin: origin.to_owned(),
            section,
            problem,
        };
        if let Some(onboarding) = &self.onboarding {
            onboarding
                .validate()
                .map_err(|e| section("onboarding", e.to_string()))?;
        }
        if let Some(churn) = &self.churn {
            churn
                .validate()
                .map_err(|e| section("churn", e.to_string()))?;
        }
        if let Some(server) = &self.server {
            server
                .validate()
                .map_err(|e| section("server", e.to_string()))?;
        }
        Ok(())
    }
}
