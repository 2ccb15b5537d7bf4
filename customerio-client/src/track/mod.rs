//! The Track API client: v1 calls ([`v1`]), v2 operations ([`v2`]) and the batch packer
//! ([`packer`]).

use std::fmt;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::http::Transport;
use crate::secret::{SiteId, TrackApiKey};

pub mod packer;
pub mod v1;
pub mod v2;

/// A client for the Track API (v1 and v2), authenticated with a site id and Track API key.
///
/// Cheap to clone: clones share one connection pool. Build one per workspace and reuse it.
///
/// ```
/// use customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
///
/// let client = TrackClient::new(
///     SiteId::new("site"),
///     TrackApiKey::new("key"),
///     ClientConfig::new(Region::Eu),
/// )?;
/// assert_eq!(client.base_url().as_str(), "https://track-eu.customer.io/");
/// assert!(!format!("{client:?}").contains("key\""));
/// # Ok::<(), customerio_client::Error>(())
/// ```
#[derive(Clone)]
pub struct TrackClient {
    pub(crate) transport: Transport,
}

impl TrackClient {
    /// Builds a client from credentials and settings.
    pub fn new(site_id: SiteId, api_key: TrackApiKey, config: ClientConfig) -> Result<Self, Error> {
        let auth = Transport::basic_auth(site_id.expose_secret(), api_key.expose_secret())?;
        let transport = Transport::new(
            config.http_client()?,
            config.track_base_url(),
            auth,
            config.timeout(),
        );
        Ok(Self { transport })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &url::Url {
        self.transport.base()
    }
}

impl fmt::Debug for TrackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackClient")
            .field("transport", &self.transport)
            .finish()
    }
}

/// The answer of the region look-up ([`TrackClient::account_region`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct AccountRegion {
    /// The Track URL the workspace should use.
    pub url: String,
    /// `"us"` or `"eu"`.
    pub region: String,
    /// The workspace (environment) id.
    pub environment_id: u64,
}

impl TrackClient {
    /// Asks which region the credentials belong to (`GET /api/v1/accounts/region`). Works
    /// against either regional host; a `401` means the credentials are wrong.
    pub async fn account_region(&self) -> Result<AccountRegion, Error> {
        const OP: &str = "track.v1.account_region";
        let response = self
            .transport
            .send(
                OP,
                reqwest::Method::GET,
                "/api/v1/accounts/region",
                &[],
                crate::http::Body::None,
            )
            .await?;
        response.json(OP)
    }
}
