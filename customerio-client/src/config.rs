//! Region, base URLs, timeouts and the shared HTTP client.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

use crate::error::Error;

/// The user agent sent with every request: this crate's name and version.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Default per-attempt timeout (the official SDKs use 10 s; Go uses 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The data-center region of a Customer.io workspace. It chooses every host.
///
/// An EU workspace must call the EU hosts; a US workspace calling EU hosts fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Region {
    /// `track.customer.io` and `api.customer.io`.
    #[default]
    Us,
    /// `track-eu.customer.io` and `api-eu.customer.io`.
    Eu,
}

impl Region {
    /// Base URL of the Track API (v1 and v2) in this region.
    pub fn track_base_url(self) -> Url {
        let text = match self {
            Region::Us => "https://track.customer.io",
            Region::Eu => "https://track-eu.customer.io",
        };
        // The literals above are valid absolute URLs.
        Url::parse(text).expect("static Track URL parses")
    }

    /// Base URL of the App API in this region.
    pub fn app_base_url(self) -> Url {
        let text = match self {
            Region::Us => "https://api.customer.io",
            Region::Eu => "https://api-eu.customer.io",
        };
        // The literals above are valid absolute URLs.
        Url::parse(text).expect("static App URL parses")
    }

    /// `"us"` or `"eu"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = Error;

    /// Accepts `us` or `eu` in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "us" => Ok(Region::Us),
            "eu" => Ok(Region::Eu),
            _ => Err(Error::config("region must be `us` or `eu`")),
        }
    }
}

/// Settings shared by [`TrackClient`](crate::TrackClient) and [`AppClient`](crate::AppClient).
///
/// ```
/// use std::time::Duration;
/// use customerio_client::{ClientConfig, Region};
///
/// let config = ClientConfig::new(Region::Eu)
///     .with_track_base_url("http://127.0.0.1:8080")?
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(config.track_base_url().as_str(), "http://127.0.0.1:8080/");
/// assert_eq!(config.app_base_url().as_str(), "https://api-eu.customer.io/");
/// # Ok::<(), customerio_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    region: Region,
    track_base_url: Option<Url>,
    app_base_url: Option<Url>,
    timeout: Duration,
    user_agent: String,
    http: Option<reqwest::Client>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self::new(Region::Us)
    }
}

impl ClientConfig {
    /// Settings for a workspace in `region`, with the default timeout and user agent.
    pub fn new(region: Region) -> Self {
        Self {
            region,
            track_base_url: None,
            app_base_url: None,
            timeout: DEFAULT_TIMEOUT,
            user_agent: USER_AGENT.to_owned(),
            http: None,
        }
    }

    /// Sends Track API calls to `url` instead of the region's host (tests, proxies).
    ///
    /// The URL is a scheme, host and port, optionally with a path prefix; the client appends
    /// the API paths (`/api/v1/...`, `/api/v2/...`) itself.
    pub fn with_track_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.track_base_url = Some(parse_base_url(url)?);
        Ok(self)
    }

    /// Sends App API calls to `url` instead of the region's host (tests, proxies).
    ///
    /// The client appends `/v1/...` itself.
    pub fn with_app_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.app_base_url = Some(parse_base_url(url)?);
        Ok(self)
    }

    /// Sets the timeout of each attempt (connect, send and read the whole response).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Appends `suffix` to the user agent, e.g. your application's name and version.
    pub fn with_user_agent_suffix(mut self, suffix: &str) -> Self {
        self.user_agent = format!("{USER_AGENT} {suffix}");
        self
    }

    /// Uses an existing `reqwest::Client` (its own timeout and TLS settings apply; the
    /// per-attempt timeout of this config is still set on each request).
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The region.
    pub fn region(&self) -> Region {
        self.region
    }

    /// The Track API base URL in effect (override or region host).
    pub fn track_base_url(&self) -> Url {
        self.track_base_url
            .clone()
            .unwrap_or_else(|| self.region.track_base_url())
    }

    /// The App API base URL in effect (override or region host).
    pub fn app_base_url(&self) -> Url {
        self.app_base_url
            .clone()
            .unwrap_or_else(|| self.region.app_base_url())
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The user agent sent with every request.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The HTTP client to use: the one given, or a new rustls client. Build it once and share
    /// the resulting API clients; `reqwest::Client` pools connections internally.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, Error> {
        if let Some(client) = &self.http {
            return Ok(client.clone());
        }
        reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .timeout(self.timeout)
            .build()
            .map_err(|err| Error::config("could not build the HTTP client").with_source(err))
    }
}

fn parse_base_url(text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|_| Error::config("base URL is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config("base URL scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(Error::config("base URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config("base URL must not carry a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_choose_hosts() {
        assert_eq!(
            Region::Us.track_base_url().as_str(),
            "https://track.customer.io/"
        );
        assert_eq!(
            Region::Eu.track_base_url().as_str(),
            "https://track-eu.customer.io/"
        );
        assert_eq!(
            Region::Us.app_base_url().as_str(),
            "https://api.customer.io/"
        );
        assert_eq!(
            Region::Eu.app_base_url().as_str(),
            "https://api-eu.customer.io/"
        );
    }

    #[test]
    fn region_parses_case_insensitively() {
        assert_eq!("EU".parse::<Region>().unwrap(), Region::Eu);
        assert_eq!(" us ".parse::<Region>().unwrap(), Region::Us);
        assert!("apac".parse::<Region>().is_err());
    }

    #[test]
    fn base_url_override_is_validated() {
        assert!(
            ClientConfig::default()
                .with_track_base_url("ftp://x")
                .is_err()
        );
        assert!(
            ClientConfig::default()
                .with_track_base_url("not a url")
                .is_err()
        );
        assert!(
            ClientConfig::default()
                .with_app_base_url("http://h/?q=1")
                .is_err()
        );
        let c = ClientConfig::default()
            .with_app_base_url("http://127.0.0.1:9/proxy")
            .unwrap();
        assert_eq!(c.app_base_url().as_str(), "http://127.0.0.1:9/proxy");
        assert_eq!(c.track_base_url().as_str(), "https://track.customer.io/");
    }

    #[test]
    fn user_agent_names_crate_and_version() {
        let c = ClientConfig::default().with_user_agent_suffix("my-app/2");
        assert!(c.user_agent().starts_with("customerio-client/"));
        assert!(c.user_agent().ends_with(" my-app/2"));
    }
}
