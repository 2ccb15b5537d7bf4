//! [`SyncConfig`]: every setting of the sync that is not a secret, one section per flow.
//!
//! ```toml
//! [triggers]                 # flow 1, always on: mapping, identity rules, dispatcher
//! lease_seconds = 600
//! [triggers.dispatcher]
//! concurrency = 4
//!
//! [onboarding]               # on when present
//! milestones = [{ event = "Signed Up", key = "signed_up" }]
//!
//! [audience]                 # on when present
//! segments = { vip = 7 }
//!
//! [churn]                    # on when present
//! inactive_days = 30
//!
//! [engagement]               # settings of the Customer.io → Segment back-sync
//! [backfill]                 # settings of the new-subscriber backfill
//! [server]                   # the webhook endpoints, the worker loop, where dead letters go
//! ```
//!
//! Secrets (API keys, signing keys) and endpoints (base URLs, `REDIS_URL`) are not here: they
//! stay in the environment, read by the program that embeds the library (the `cio-sync`
//! binary reads them). A [`SyncConfig`] goes to a [`SyncBuilder`](crate::builder::SyncBuilder)
//! with the clients built from those secrets.
//!
//! # Loading (feature `config`)
//!
//! [`SyncConfig::from_toml_str`] and [`SyncConfig::load`] refuse what cannot work and say where:
//! an unknown key, a value of the wrong type or an impossible value (a zero where at least one is
//! needed, an onboarding section without milestones, a Customer.io deadline outside its 4-second
//! window) is an error naming the key and its line. Nothing is silently raised, lowered or
//! dropped.
//!
#![cfg_attr(feature = "config", doc = "```")]
#![cfg_attr(not(feature = "config"), doc = "```ignore")]
//! use cio_segment_sync::config::{ConfigError, SyncConfig};
//!
//! let config = SyncConfig::from_toml_str("[triggers]\nlease_seconds = 60\n", "inline")?;
//! assert_eq!(config.triggers.lease_seconds, 60);
//!
//! let error = SyncConfig::from_toml_str("[churn]\ninactive_days = 0\n", "sync.toml").unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "sync.toml, line 2: `churn.inactive_days` must be at least 1"
//! );
//! # Ok::<(), ConfigError>(())
//! ```

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flows::audience::AudienceConfig;
use crate::flows::backfill::BackfillConfig;
use crate::flows::churn::ChurnConfig;
use crate::flows::engagement::EngagementConfig;
use crate::flows::onboarding::OnboardingConfig;
use crate::flows::triggers::{DispatcherSettings, TriggersConfig};

/// Customer.io waits 4 seconds for a reporting webhook's answer; the endpoint must answer
/// before that.
pub const CUSTOMERIO_WEBHOOK_WINDOW: Duration = Duration::from_secs(4);

/// The configuration file: one section per flow, every section optional. See the
/// [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncConfig {
    /// Flow 1: triggers, profile enrichment and deletions (always on). Its `mapping`,
    /// `resolver` and `dispatcher` tables are shared by the other Segment → Customer.io flows.
    pub triggers: TriggersConfig,
    /// Onboarding milestones, when present.
    pub onboarding: Option<OnboardingConfig>,
    /// Engage audiences → Customer.io manual segments, when present.
    pub audience: Option<AudienceConfig>,
    /// Churn prevention, when present.
    pub churn: Option<ChurnConfig>,
    /// The engagement back-sync's settings (the flow runs whenever its credentials are given;
    /// the defaults apply when the section is absent).
    pub engagement: Option<EngagementConfig>,
    /// The new-subscriber backfill's settings (likewise).
    pub backfill: Option<BackfillConfig>,
    /// The webhook endpoints and the worker loop.
    pub server: Option<ServerConfig>,
}

/// `[server]`: the webhook endpoints' and the worker loop's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// How often the churn scan runs, in seconds (default 900), when `[churn]` is present.
    /// With Redis, one replica scans per interval (it holds the scan lease for that long); the
    /// others skip.
    pub churn_scan_interval_seconds: NonZeroU64,
    /// How long `POST /segment` waits for delivery before answering 503 (default 4000 ms).
    pub segment_deadline_ms: NonZeroU64,
    /// How long `POST /customerio` waits before answering 503 (default 3000 ms; must be under
    /// Customer.io's 4-second window).
    pub customerio_deadline_ms: NonZeroU64,
    /// The largest request body, in bytes (default 8 MiB); larger bodies are answered 413.
    pub body_limit_bytes: NonZeroUsize,
    /// Requests at once per webhook route whose work has not ended (default 256); more are
    /// answered 503 at once (load shedding, never a queue).
    pub concurrency_limit: NonZeroUsize,
    /// At most this many requests a second per webhook route, in bursts of as many; more are
    /// answered 503 at once. Default: no rate limit (the concurrency limit already bounds
    /// memory, and a fixed rate would shed legitimate bursts).
    pub requests_per_second: Option<NonZeroU32>,
    /// On SIGTERM or Ctrl-C: how long requests in flight may take to be answered, in seconds
    /// (default 25, under the 30 s Kubernetes gives a pod); new ones are answered 503 at once,
    /// the ones still running at the end 503, then the dispatchers shut down. 0 answers what is
    /// in flight 503 at once.
    pub shutdown_grace_seconds: u64,
    /// The Redis key prefix when Redis is used (default: the library's). Workers of one
    /// deployment share it; deployments sharing a Redis use different ones.
    pub redis_prefix: Option<String>,
    /// Append dead letters to this one JSON-lines file, never rotated (the v0.1 layout). Wins
    /// over the Redis stream and the data directory.
    pub dead_letter_file: Option<PathBuf>,
    /// The data directory: dead letters (`dead-letters-*.jsonl`, when Redis is not used) and
    /// replay resume files. `cio-sync` defaults it (see its README); the variable
    /// `CIO_SYNC_DATA_DIR` and the `--data-dir` flag win over it.
    pub data_dir: Option<PathBuf>,
    /// A dead-letter file of the data directory is sealed and the next one started at this
    /// size (default 64 MiB).
    pub dead_letter_rotate_bytes: NonZeroU64,
    /// The Redis dead-letter stream keeps about this many entries, trimming the oldest
    /// (default 100 000).
    pub dead_letter_stream_max_len: NonZeroU64,
    /// The back-sync's Segment dispatcher (batching, concurrency, retries).
    pub segment_dispatcher: DispatcherSettings,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            churn_scan_interval_seconds: NonZeroU64::new(15 * 60).unwrap_or(NonZeroU64::MIN),
            segment_deadline_ms: NonZeroU64::new(4_000).unwrap_or(NonZeroU64::MIN),
            customerio_deadline_ms: NonZeroU64::new(3_000).unwrap_or(NonZeroU64::MIN),
            body_limit_bytes: NonZeroUsize::new(8 * 1024 * 1024).unwrap_or(NonZeroUsize::MIN),
            concurrency_limit: NonZeroUsize::new(256).unwrap_or(NonZeroUsize::MIN),
            requests_per_second: None,
            shutdown_grace_seconds: 25,
            redis_prefix: None,
            dead_letter_file: None,
            data_dir: None,
            dead_letter_rotate_bytes: crate::dead_letter::DEFAULT_ROTATE_BYTES,
            dead_letter_stream_max_len: crate::dead_letter::DEFAULT_STREAM_MAX_LEN,
            segment_dispatcher: DispatcherSettings::default(),
        }
    }
}

impl ServerConfig {
    /// How long `POST /segment` waits.
    pub fn segment_deadline(&self) -> Duration {
        Duration::from_millis(self.segment_deadline_ms.get())
    }

    /// How long `POST /customerio` waits.
    pub fn customerio_deadline(&self) -> Duration {
        Duration::from_millis(self.customerio_deadline_ms.get())
    }

    /// How often the churn scan runs.
    pub fn churn_scan_interval(&self) -> Duration {
        Duration::from_secs(self.churn_scan_interval_seconds.get())
    }

    /// How long requests in flight may take to be answered once shutdown starts.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    /// Checks the values no type can hold: the Customer.io deadline must stay under
    /// [`CUSTOMERIO_WEBHOOK_WINDOW`]. The message names the key in backticks.
    ///
    /// # Errors
    ///
    /// What is wrong, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.customerio_deadline() >= CUSTOMERIO_WEBHOOK_WINDOW {
            return Err(format!(
                "`customerio_deadline_ms` must be under {} (Customer.io's window)",
                CUSTOMERIO_WEBHOOK_WINDOW.as_millis()
            ));
        }
        Ok(())
    }
}

/// A configuration that cannot be used. Names the file, the key and its line; never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML for [`SyncConfig`]: a syntax error, an unknown key, a value
    /// of the wrong type or out of range (e.g. a zero where at least 1 is needed). The message
    /// is the parser's and names the key, line and column.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or the name given to [`SyncConfig::from_toml_str`].
        origin: String,
        /// The parser's description.
        message: String,
    },
    /// A value parses but cannot work (e.g. onboarding without milestones).
    #[error("{origin}{}: `{key}` {problem}", .line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        /// The file, or the name given to [`SyncConfig::from_toml_str`].
        origin: String,
        /// The key, as a dotted path (`onboarding.milestones[1].key`).
        key: String,
        /// Its line (1-based), when it is in the text.
        line: Option<usize>,
        /// What is wrong.
        problem: String,
    },
}

impl SyncConfig {
    /// Checks what the types cannot: each present section's own rules. Errors name the key as
    /// a dotted path; [`from_toml_str`](Self::from_toml_str) adds its line.
    ///
    /// # Errors
    ///
    /// `(key, problem)` of the first value that cannot work.
    pub fn validate(&self) -> Result<(), (String, String)> {
        fn check<E: ToString>(
            section: &str,
            result: Result<(), E>,
        ) -> Result<(), (String, String)> {
            result.map_err(|error| split_key(section, &error.to_string()))
        }
        if let Some(onboarding) = &self.onboarding {
            check("onboarding", onboarding.validate().map(drop))?;
        }
        if let Some(churn) = &self.churn {
            check("churn", churn.validate())?;
            check(
                "churn",
                churn.validate_activity_ttl(self.server().churn_scan_interval()),
            )?;
        }
        if let Some(engagement) = &self.engagement {
            check("engagement", engagement.validate())?;
        }
        if let Some(backfill) = &self.backfill {
            check("backfill", backfill.validate())?;
        }
        if let Some(server) = &self.server {
            check("server", server.validate())?;
        }
        Ok(())
    }

    /// The `[server]` settings, or their defaults.
    pub fn server(&self) -> ServerConfig {
        self.server.clone().unwrap_or_default()
    }

    /// How long the Redis activity store keeps a person nobody wrote about, when `[churn]` is
    /// present: `churn.activity_ttl_days`, or the shortest that works with
    /// `[server] churn_scan_interval_seconds`
    /// ([`ChurnConfig::activity_ttl`]). `None` without `[churn]` (nothing records activity).
    pub fn activity_ttl(&self) -> Option<Duration> {
        let interval = self.server().churn_scan_interval();
        self.churn
            .as_ref()
            .map(|churn| churn.activity_ttl(interval))
    }
}

/// `section` plus the first backticked key of `message` (this crate's errors name their key
/// that way), and the rest of the message as the problem.
fn split_key(section: &str, message: &str) -> (String, String) {
    let mut parts = message.splitn(3, '`');
    let before = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (Some(key), Some(after)) if !key.is_empty() => {
            let problem = format!("{}{}", before.trim(), after);
            (format!("{section}.{key}"), problem.trim().to_owned())
        }
        _ => (section.to_owned(), message.to_owned()),
    }
}

#[cfg(feature = "config")]
mod load {
    use std::path::Path;

    use toml::de::{DeTable, DeValue};

    use super::{ConfigError, SyncConfig};

    impl SyncConfig {
        /// Reads and checks the TOML file at `path`.
        ///
        /// # Errors
        ///
        /// [`ConfigError`] naming the file, and for a bad value its key and line.
        pub fn load(path: &Path) -> Result<Self, ConfigError> {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            Self::from_toml_str(&text, &path.display().to_string())
        }

        /// Parses and checks `text`; `origin` names it in errors.
        ///
        /// # Errors
        ///
        /// [`ConfigError::Parse`] for what the parser refuses (with key, line and column),
        /// [`ConfigError::Invalid`] for a value that parses but cannot work (with key and
        /// line).
        pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
            let config: SyncConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
                origin: origin.to_owned(),
                message: error.to_string().trim_end().to_owned(),
            })?;
            config
                .validate()
                .map_err(|(key, problem)| ConfigError::Invalid {
                    origin: origin.to_owned(),
                    line: line_of(text, &key),
                    key,
                    problem,
                })?;
            Ok(config)
        }
    }

    /// The 1-based line of the dotted `key` (`a.b[2].c`) in `text`, or of the deepest part of
    /// it that is there (the section header when the key itself is absent).
    fn line_of(text: &str, key: &str) -> Option<usize> {
        let root = DeTable::parse(text).ok()?;
        let mut table = root.get_ref();
        let mut offset = None;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Some((found_key, value)) = table.get_key_value(name) else {
                break;
            };
            offset = Some(found_key.span().start);
            let mut value = value;
            if let Some(index) = index {
                match value.get_ref() {
                    DeValue::Array(items) => match items.get(index) {
                        Some(item) => {
                            offset = Some(item.span().start);
                            value = item;
                        }
                        None => break,
                    },
                    _ => break,
                }
            }
            match value.get_ref() {
                DeValue::Table(inner) if parts.peek().is_some() => table = inner,
                _ => break,
            }
        }
        let offset = offset?;
        Some(text.get(..offset)?.matches('\n').count() + 1)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn lines_are_found_for_nested_and_indexed_keys() {
            let text = "[triggers]\nlease_seconds = 5\n\n[onboarding]\nmilestones = [\n  { event = \"A\", key = \"a\" },\n  { event = \"B\", key = \"a\" },\n]\n";
            assert_eq!(line_of(text, "triggers.lease_seconds"), Some(2));
            assert_eq!(line_of(text, "onboarding.milestones[1].key"), Some(7));
            assert_eq!(line_of(text, "onboarding.step_attribute"), Some(4));
            assert_eq!(line_of(text, "churn.inactive_days"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_from_the_backticks() {
        assert_eq!(
            split_key("churn", "`inactive_days` must be at least 1"),
            ("churn.inactive_days".into(), "must be at least 1".into())
        );
        assert_eq!(
            split_key(
                "onboarding",
                "`milestones[1].key` repeats the key of `milestones[0]`"
            ),
            (
                "onboarding.milestones[1].key".into(),
                "repeats the key of `milestones[0]`".into()
            )
        );
        assert_eq!(
            split_key("engagement", "`names.email_sent` is a blank event name"),
            (
                "engagement.names.email_sent".into(),
                "is a blank event name".into()
            )
        );
        assert_eq!(
            split_key("x", "no key here"),
            ("x".into(), "no key here".into())
        );
    }

    #[test]
    fn server_defaults_are_the_documented_ones() {
        let server = ServerConfig::default();
        assert_eq!(server.segment_deadline(), Duration::from_secs(4));
        assert_eq!(server.customerio_deadline(), Duration::from_secs(3));
        assert_eq!(server.body_limit_bytes.get(), 8 * 1024 * 1024);
        assert_eq!(server.churn_scan_interval(), Duration::from_secs(900));
        assert_eq!(server.concurrency_limit.get(), 256);
        assert_eq!(server.requests_per_second, None);
        assert_eq!(server.shutdown_grace(), Duration::from_secs(25));
        assert_eq!(server.dead_letter_rotate_bytes.get(), 64 * 1024 * 1024);
        assert_eq!(server.dead_letter_stream_max_len.get(), 100_000);
        assert_eq!(server.data_dir, None);
        assert!(server.validate().is_ok());
    }

    #[cfg(feature = "config")]
    #[test]
    fn dead_letter_settings_are_read_and_a_zero_is_refused() {
        let config = SyncConfig::from_toml_str(
            "[server]\ndata_dir = \"/var/lib/cio-sync\"\ndead_letter_rotate_bytes = 1048576\ndead_letter_stream_max_len = 5000\n",
            "sync.toml",
        )
        .unwrap();
        let server = config.server();
        assert_eq!(server.data_dir, Some(PathBuf::from("/var/lib/cio-sync")));
        assert_eq!(server.dead_letter_rotate_bytes.get(), 1_048_576);
        assert_eq!(server.dead_letter_stream_max_len.get(), 5_000);
        let error =
            SyncConfig::from_toml_str("[server]\ndead_letter_rotate_bytes = 0\n", "sync.toml")
                .unwrap_err()
                .to_string();
        assert!(error.contains("dead_letter_rotate_bytes"), "{error}");
        assert!(error.contains("line 2"), "{error}");
    }
}
