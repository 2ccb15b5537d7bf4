//! The App API client: transactional sends, broadcasts, segments and people look-ups.

use std::fmt;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::http::Transport;
use crate::secret::AppApiKey;

pub mod broadcast;
pub mod filter;
pub mod people;
pub mod segments;
pub mod transactional;

/// A client for the App API, authenticated with an App API key (Bearer).
///
/// Cheap to clone: clones share one connection pool.
///
/// ```
/// use customerio_client::{AppApiKey, AppClient, ClientConfig, Region};
///
/// let client = AppClient::new(AppApiKey::new("app-key"), ClientConfig::new(Region::Us))?;
/// assert_eq!(client.base_url().as_str(), "https://api.customer.io/");
/// assert!(!format!("{client:?}").contains("app-key"));
/// # Ok::<(), customerio_client::Error>(())
/// ```
#[derive(Clone)]
pub struct AppClient {
    pub(crate) transport: Transport,
}

impl AppClient {
    /// Builds a client from an App API key and settings.
    pub fn new(api_key: AppApiKey, config: ClientConfig) -> Result<Self, Error> {
        let auth = Transport::bearer_auth(api_key.expose_secret())?;
        let transport = Transport::new(
            config.http_client()?,
            config.app_base_url(),
            auth,
            config.timeout(),
        );
        Ok(Self { transport })
    }

    /// Names the workspace for a service-account token (`sa_live_…`), which spans workspaces:
    /// sends `X-Workspace-Id` with every request. Not needed with a workspace's own App key.
    pub fn with_workspace_id(mut self, workspace_id: u64) -> Self {
        self.transport.set_header(
            reqwest::header::HeaderName::from_static("x-workspace-id"),
            reqwest::header::HeaderValue::from(workspace_id),
        );
        self
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &url::Url {
        self.transport.base()
    }
}

impl fmt::Debug for AppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppClient")
            .field("transport", &self.transport)
            .finish()
    }
}
