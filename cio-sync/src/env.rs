//! The environment contract: secrets and endpoints, read once, every problem reported at once.
//!
//! | variable | meaning |
//! |---|---|
//! | `CIO_SITE_ID`, `CIO_API_KEY` | Customer.io Track API credentials (both or neither) |
//! | `CIO_APP_API_KEY` | Customer.io App API key (creating missing segments) |
//! | `CIO_REGION` | `us` (default) or `eu` |
//! | `CIO_TRACK_URL`, `CIO_APP_URL` | base-URL overrides: scheme, host and port only |
//! | `SEGMENT_WRITE_KEY` | Segment Tracking API write key (engagement back-sync) |
//! | `SEGMENT_API_URL` | Tracking API base-URL override |
//! | `SEGMENT_PROFILE_TOKEN`, `SEGMENT_SPACE_ID` | Segment Profile API access (backfill; both or neither) |
//! | `SEGMENT_PROFILE_URL` | Profile API base-URL override |
//! | `SEGMENT_WEBHOOK_SECRET` | shared secret of Segment's webhook signatures |
//! | `SEGMENT_WEBHOOK_TOKEN` | a token `POST /segment` requires (`Authorization: Bearer …` or `X-Webhook-Token`; at least 16 visible ASCII characters) |
//! | `CIO_WEBHOOK_SIGNING_KEY` | signing key of Customer.io's reporting webhooks |
//! | `REDIS_URL` | shared stores in Redis instead of memory |
//! | `BIND` | listen address of `serve` (default `127.0.0.1:3000`) |
//!
//! An empty variable counts as unset. Values are never shown in errors or logs.

use std::fmt;
use std::net::SocketAddr;

use cio_segment_sync::http::WebhookToken;
use customerio_client::webhook::WebhookSigningKey;
use customerio_client::{AppApiKey, ClientConfig, Region, SiteId, TrackApiKey};
use url::Url;

/// The default listen address of `serve`.
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";

/// Every variable read, in the order of the table above.
pub const VARS: [&str; 16] = [
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
    "SEGMENT_WEBHOOK_TOKEN",
    "CIO_WEBHOOK_SIGNING_KEY",
    "REDIS_URL",
    "BIND",
];

/// A secret string: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
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

/// One variable that cannot be used. Names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable.
    pub var: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.var, self.problem)
    }
}

/// Every problem of the environment, reported together so one run shows all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the environment cannot be used: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct EnvError(pub Vec<Problem>);

/// The Customer.io Track credentials.
#[derive(Clone)]
pub struct TrackCredentials {
    /// `CIO_SITE_ID`.
    pub site_id: SiteId,
    /// `CIO_API_KEY`.
    pub api_key: TrackApiKey,
}

impl fmt::Debug for TrackCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrackCredentials { site_id: <redacted>, api_key: <redacted> }")
    }
}

/// Everything read from the environment. Secrets are typed so `{:?}` never shows them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Env {
    /// `CIO_SITE_ID` + `CIO_API_KEY`.
    pub track: Option<TrackCredentials>,
    /// `CIO_APP_API_KEY`.
    pub app_api_key: Option<AppApiKey>,
    /// `CIO_REGION`.
    pub region: Region,
    /// `CIO_TRACK_URL`.
    pub track_url: Option<Url>,
    /// `CIO_APP_URL`.
    pub app_url: Option<Url>,
    /// `SEGMENT_WRITE_KEY`.
    pub segment_write_key: Option<Secret>,
    /// `SEGMENT_API_URL`.
    pub segment_api_url: Option<Url>,
    /// `SEGMENT_PROFILE_TOKEN` + `SEGMENT_SPACE_ID`.
    pub segment_profile: Option<(Secret, String)>,
    /// `SEGMENT_PROFILE_URL`.
    pub segment_profile_url: Option<Url>,
    /// `SEGMENT_WEBHOOK_SECRET`.
    pub segment_webhook_secret: Option<Secret>,
    /// `SEGMENT_WEBHOOK_TOKEN`.
    pub segment_webhook_token: Option<WebhookToken>,
    /// `CIO_WEBHOOK_SIGNING_KEY`.
    pub cio_signing_key: Option<WebhookSigningKey>,
    /// `REDIS_URL` (may hold a password).
    pub redis_url: Option<Secret>,
    /// `BIND`.
    pub bind: SocketAddr,
}

impl Env {
    /// Reads the process environment.
    ///
    /// # Errors
    ///
    /// [`EnvError`] listing every variable that cannot be used (not Unicode, a bad value, one
    /// of a pair missing).
    pub fn from_process() -> Result<Self, EnvError> {
        let mut unicode = Vec::new();
        let env = Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                unicode.push(name.to_owned());
                None
            }
        });
        let mut problems: Vec<Problem> = VARS
            .iter()
            .filter(|var| unicode.iter().any(|name| name == *var))
            .map(|var| Problem {
                var,
                problem: "is not valid Unicode".to_owned(),
            })
            .collect();
        match env {
            Ok(env) if problems.is_empty() => Ok(env),
            Ok(_) => Err(EnvError(problems)),
            Err(EnvError(more)) => {
                problems.extend(more);
                Err(EnvError(problems))
            }
        }
    }

    /// Reads the variables through `lookup` (name → value; `None` or blank for unset), so
    /// tests pass a map instead of touching the process environment.
    ///
    /// # Errors
    ///
    /// [`EnvError`] listing every variable that cannot be used.
    pub fn from_lookup(mut lookup: impl FnMut(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut problems = Vec::new();
        let mut get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty());
        let mut bad = |var: &'static str, problem: &str| {
            problems.push(Problem {
                var,
                problem: problem.to_owned(),
            });
        };
        let pair = |a: Option<String>,
                    b: Option<String>,
                    names: (&'static str, &'static str),
                    bad: &mut dyn FnMut(&'static str, &str)| match (a, b) {
            (Some(a), Some(b)) => Some((a, b)),
            (Some(_), None) => {
                bad(names.1, &format!("must be set when `{}` is set", names.0));
                None
            }
            (None, Some(_)) => {
                bad(names.0, &format!("must be set when `{}` is set", names.1));
                None
            }
            (None, None) => None,
        };
        let track = pair(
            get("CIO_SITE_ID"),
            get("CIO_API_KEY"),
            ("CIO_SITE_ID", "CIO_API_KEY"),
            &mut bad,
        )
        .map(|(site, key)| TrackCredentials {
            site_id: SiteId::new(site),
            api_key: TrackApiKey::new(key),
        });
        let region = match get("CIO_REGION") {
            None => Region::Us,
            Some(value) => value.trim().parse().unwrap_or_else(|_| {
                bad("CIO_REGION", "must be `us` or `eu`");
                Region::Us
            }),
        };
        let mut url = |var: &'static str, value: Option<String>| match base_url(value) {
            Ok(url) => url,
            Err(problem) => {
                bad(var, problem);
                None
            }
        };
        let track_url = url("CIO_TRACK_URL", get("CIO_TRACK_URL"));
        let app_url = url("CIO_APP_URL", get("CIO_APP_URL"));
        let segment_api_url = url("SEGMENT_API_URL", get("SEGMENT_API_URL"));
        let segment_profile_url = url("SEGMENT_PROFILE_URL", get("SEGMENT_PROFILE_URL"));
        let segment_profile = pair(
            get("SEGMENT_PROFILE_TOKEN"),
            get("SEGMENT_SPACE_ID"),
            ("SEGMENT_PROFILE_TOKEN", "SEGMENT_SPACE_ID"),
            &mut bad,
        )
        .map(|(token, space)| (Secret::new(token), space));
        let cio_signing_key =
            get("CIO_WEBHOOK_SIGNING_KEY").and_then(|key| match WebhookSigningKey::new(key) {
                Ok(key) => Some(key),
                Err(_) => {
                    bad("CIO_WEBHOOK_SIGNING_KEY", "is not a usable signing key");
                    None
                }
            });
        let segment_webhook_token =
            get("SEGMENT_WEBHOOK_TOKEN").and_then(|token| match WebhookToken::new(token) {
                Ok(token) => Some(token),
                Err(error) => {
                    bad(
                        "SEGMENT_WEBHOOK_TOKEN",
                        &format!("is not a usable token: {error}"),
                    );
                    None
                }
            });
        let bind = match get("BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(value) => value.trim().parse().unwrap_or_else(|_| {
                bad(
                    "BIND",
                    "must be an IP address and port, e.g. 127.0.0.1:3000",
                );
                SocketAddr::from(([127, 0, 0, 1], 3000))
            }),
        };
        let env = Self {
            track,
            app_api_key: get("CIO_APP_API_KEY").map(AppApiKey::new),
            region,
            track_url,
            app_url,
            segment_write_key: get("SEGMENT_WRITE_KEY").map(Secret::new),
            segment_api_url,
            segment_profile,
            segment_profile_url,
            segment_webhook_secret: get("SEGMENT_WEBHOOK_SECRET").map(Secret::new),
            segment_webhook_token,
            cio_signing_key,
            redis_url: get("REDIS_URL").map(Secret::new),
            bind,
        };
        if problems.is_empty() {
            Ok(env)
        } else {
            Err(EnvError(problems))
        }
    }

    /// The Customer.io client settings: the region, and the URL overrides when set.
    ///
    /// # Errors
    ///
    /// The client refused an override (it names the variable).
    pub fn client_config(&self) -> Result<ClientConfig, EnvError> {
        let mut config = ClientConfig::new(self.region);
        let refused = |var: &'static str| {
            move |_| {
                EnvError(vec![Problem {
                    var,
                    problem: "is refused by the Customer.io client".to_owned(),
                }])
            }
        };
        if let Some(url) = &self.track_url {
            config = config
                .with_track_base_url(url.as_str())
                .map_err(refused("CIO_TRACK_URL"))?;
        }
        if let Some(url) = &self.app_url {
            config = config
                .with_app_base_url(url.as_str())
                .map_err(refused("CIO_APP_URL"))?;
        }
        Ok(config)
    }
}

/// A base-URL override: `http` or `https`, a host, an optional port, and nothing else.
fn base_url(value: Option<String>) -> Result<Option<Url>, &'static str> {
    let Some(value) = value else {
        return Ok(None);
    };
    let url = Url::parse(value.trim()).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must use http or https");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("needs a host");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("takes scheme, host and port only: the clients append the API paths");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials: they have their own variables");
    }
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Env, EnvError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        Env::from_lookup(|name| map.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn defaults_with_nothing_set() {
        let env = env(&[]).unwrap();
        assert!(env.track.is_none() && env.redis_url.is_none());
        assert_eq!(env.bind.to_string(), DEFAULT_BIND);
        assert_eq!(env.region, Region::Us);
    }

    #[test]
    fn every_problem_is_reported_at_once_without_values() {
        let error = env(&[
            ("CIO_SITE_ID", "site-secret"),
            ("CIO_REGION", "mars"),
            ("SEGMENT_API_URL", "ftp://host-secret"),
            ("SEGMENT_SPACE_ID", "space-secret"),
            ("BIND", "nowhere"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = error.0.iter().map(|p| p.var).collect();
        assert_eq!(
            vars,
            [
                "CIO_API_KEY",
                "CIO_REGION",
                "SEGMENT_API_URL",
                "SEGMENT_PROFILE_TOKEN",
                "BIND"
            ]
        );
        let text = error.to_string();
        for secret in [
            "site-secret",
            "mars",
            "host-secret",
            "space-secret",
            "nowhere",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let env = env(&[
            ("CIO_SITE_ID", "site-value"),
            ("CIO_API_KEY", "track-key-value"),
            ("CIO_APP_API_KEY", "app-key-value"),
            ("SEGMENT_WRITE_KEY", "write-key-value"),
            ("SEGMENT_PROFILE_TOKEN", "profile-token-value"),
            ("SEGMENT_SPACE_ID", "spa_1"),
            ("SEGMENT_WEBHOOK_SECRET", "webhook-secret-value"),
            ("SEGMENT_WEBHOOK_TOKEN", "webhook-token-value-0123456789"),
            ("CIO_WEBHOOK_SIGNING_KEY", "signing-key-value"),
            ("REDIS_URL", "redis://:password-value@localhost"),
        ])
        .unwrap();
        let debug = format!("{env:?}");
        for secret in [
            "site-value",
            "track-key-value",
            "app-key-value",
            "write-key-value",
            "profile-token-value",
            "webhook-secret-value",
            "webhook-token-value",
            "signing-key-value",
            "password-value",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn a_short_webhook_token_is_refused_without_showing_it() {
        let error = env(&[("SEGMENT_WEBHOOK_TOKEN", "tiny-token")]).unwrap_err();
        assert_eq!(error.0.len(), 1);
        assert_eq!(error.0[0].var, "SEGMENT_WEBHOOK_TOKEN");
        let text = error.to_string();
        assert!(!text.contains("tiny-token"), "{text}");
        assert!(text.contains("at least 16 characters"), "{text}");
        let ok = env(&[("SEGMENT_WEBHOOK_TOKEN", "a-long-enough-token-value")]).unwrap();
        assert!(ok.segment_webhook_token.is_some());
    }

    #[test]
    fn base_urls_take_scheme_host_and_port_only() {
        assert!(
            base_url(Some("http://127.0.0.1:8080".into()))
                .unwrap()
                .is_some()
        );
        assert!(base_url(Some("http://127.0.0.1:8080/api".into())).is_err());
        assert!(base_url(Some("http://user:pw@host".into())).is_err());
        assert!(base_url(Some("ftp://host".into())).is_err());
    }
}
