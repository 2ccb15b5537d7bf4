//! Profile API reader: a profile's traits, looked up by an external id.
//!
//! Requests go to
//! `GET {base}/v1/spaces/{space_id}/collections/{users|accounts}/profiles/{id_type}:{value}/traits`
//! with HTTP Basic auth (the access token as user name, empty password). The external id's value
//! is percent-encoded (every byte except ASCII letters, digits, `-`, `.`, `_` and `~`), so a `+`
//! in a phone number becomes `%2B` as the API requires.
//!
//! Paging: a response carries `cursor: {has_more, next, ...}`; the next page is requested with
//! `next=<cursor.next>` until `has_more` is false. [`ProfileClient::traits`] follows the cursor
//! and merges the pages; [`ProfileClient::traits_page`] fetches one page.
//!
//! A `404` answer (Segment's `not_found`, "Profile was not found.") on the first page is
//! reported as `Ok(None)`: a missing profile is an expected outcome of a lookup, not a failure.
//! A `404` on a later page is an error (the profile disappeared while it was being read).
//!
//! Lookup-value case: Segment's docs say to query with a lower-case external id, without saying
//! whether that means the type, the value or both (unconfirmed). Types must be lower case here
//! ([`ExternalId::new`] rejects others); values are sent as given unless
//! [`ProfileClientBuilder::lowercase_lookup_values`] is switched on.
//!
//! `verbose=true` (which changes every trait into an object) is not offered: the typed response
//! is the plain traits map.
//!
//! ```no_run
//! use segment_model::client::Region;
//! use segment_model::client::profile::{AccessToken, ExternalId, ProfileClient, TraitsQuery};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ProfileClient::builder(AccessToken::new("my-token"), "spa_9zYxWvUtS")
//!     .region(Region::Us)
//!     .build()?;
//! let id = ExternalId::user_id("usr_48151623")?;
//! let query = TraitsQuery::new().limit(200)?.include(["email", "plan"]);
//! match client.traits(&id, &query).await? {
//!     Some(traits) => println!("{} traits", traits.len()),
//!     None => println!("no such profile"),
//! }
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::{Map, Value};
use url::Url;

use super::{Api, BaseUrl, ClientError, DEFAULT_TIMEOUT, Region, http_client, status_error};

/// Largest `limit` the traits endpoint accepts.
pub const MAX_TRAITS_LIMIT: u16 = 200;

/// Most pages [`ProfileClient::traits`] reads for one profile before giving up with
/// [`ClientError::Protocol`] (a guard against a server that never ends the cursor).
pub const MAX_PAGES: usize = 1_000;

/// Bytes left as-is in path segments: RFC 3986 unreserved characters.
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A Profile API access token. Its `Debug` and `Display` never show the value.
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps an access token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which collection of profiles to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Collection {
    /// User profiles.
    #[default]
    Users,
    /// Account (group) profiles.
    Accounts,
}

impl Collection {
    /// The path segment: `users` or `accounts`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Accounts => "accounts",
        }
    }
}

/// An invalid [`ExternalId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalIdError {
    /// The id type is empty or has a character other than `a-z`, `0-9`, `.`, `_`, `-`.
    #[error(
        "external id types must be non-empty and use only a-z, 0-9, '.', '_' and '-' (lower case)"
    )]
    InvalidType,
    /// The value is empty.
    #[error("the external id value is empty")]
    EmptyValue,
}

/// An external id to look a profile up by: a type (`user_id`, `email`, `ios.idfa`, a custom
/// type, ...) and a value.
///
/// Values are personal data: `Debug` shows the type and hides the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ExternalId {
    id_type: String,
    value: String,
}

impl ExternalId {
    /// An external id of any type.
    ///
    /// # Errors
    ///
    /// [`ExternalIdError`] for an empty value, or a type that is empty or not lower case.
    pub fn new(
        id_type: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ExternalIdError> {
        let id_type = id_type.into();
        let value = value.into();
        let type_ok = !id_type.is_empty()
            && id_type.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !type_ok {
            return Err(ExternalIdError::InvalidType);
        }
        if value.is_empty() {
            return Err(ExternalIdError::EmptyValue);
        }
        Ok(Self { id_type, value })
    }

    /// `user_id:<value>`.
    ///
    /// # Errors
    ///
    /// [`ExternalIdError::EmptyValue`] for an empty value.
    pub fn user_id(value: impl Into<String>) -> Result<Self, ExternalIdError> {
        Self::new("user_id", value)
    }

    /// `anonymous_id:<value>`.
    ///
    /// # Errors
    ///
    /// [`ExternalIdError::EmptyValue`] for an empty value.
    pub fn anonymous_id(value: impl Into<String>) -> Result<Self, ExternalIdError> {
        Self::new("anonymous_id", value)
    }

    /// `email:<value>`. Segment discourages email lookups because the address lands in request
    /// logs; prefer `user_id` when you have it.
    ///
    /// # Errors
    ///
    /// [`ExternalIdError::EmptyValue`] for an empty value.
    pub fn email(value: impl Into<String>) -> Result<Self, ExternalIdError> {
        Self::new("email", value)
    }

    /// `group_id:<value>` (for the accounts collection).
    ///
    /// # Errors
    ///
    /// [`ExternalIdError::EmptyValue`] for an empty value.
    pub fn group_id(value: impl Into<String>) -> Result<Self, ExternalIdError> {
        Self::new("group_id", value)
    }

    /// The id type.
    pub fn id_type(&self) -> &str {
        &self.id_type
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalId")
            .field("id_type", &self.id_type)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// Filter on the class of traits returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TraitClass {
    /// Audience memberships only (`class=audience`).
    Audience,
    /// Computed traits only (`class=computed_trait`).
    ComputedTrait,
}

impl TraitClass {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audience => "audience",
            Self::ComputedTrait => "computed_trait",
        }
    }
}

/// A `limit` outside `1..=`[`MAX_TRAITS_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be between 1 and {MAX_TRAITS_LIMIT}, got {0}")]
pub struct InvalidLimit(pub u16);

/// Options of a traits request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraitsQuery {
    limit: Option<u16>,
    include: Vec<String>,
    class: Option<TraitClass>,
}

impl TraitsQuery {
    /// No options: the server's defaults (10 traits per page, all traits).
    pub fn new() -> Self {
        Self::default()
    }

    /// Traits per page, `1..=200`.
    ///
    /// # Errors
    ///
    /// [`InvalidLimit`] outside that range.
    pub fn limit(mut self, limit: u16) -> Result<Self, InvalidLimit> {
        if limit == 0 || limit > MAX_TRAITS_LIMIT {
            return Err(InvalidLimit(limit));
        }
        self.limit = Some(limit);
        Ok(self)
    }

    /// Returns only the named traits (`include=a,b`).
    #[must_use]
    pub fn include<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.include = names.into_iter().map(Into::into).collect();
        self
    }

    /// Returns only one class of traits.
    #[must_use]
    pub fn class(mut self, class: TraitClass) -> Self {
        self.class = Some(class);
        self
    }
}

/// The paging cursor of a Profile API response.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cursor {
    /// The path of the request this page answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Whether more pages follow.
    pub has_more: bool,
    /// The cursor to pass as `next` for the following page (`None` when absent or empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The page size, when echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One page of a profile's traits.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TraitsPage {
    /// Trait name to value.
    pub traits: Map<String, Value>,
    /// The paging cursor, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TraitsPage {
    /// The `next` value for the following page, when there is one.
    pub fn next_cursor(&self) -> Option<&str> {
        self.cursor
            .as_ref()
            .filter(|c| c.has_more)
            .and_then(|c| c.next.as_deref())
    }
}

/// An invalid [`ProfileClientBuilder`] setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileConfigError {
    /// The space id is empty.
    #[error("the space id is empty")]
    EmptySpaceId,
    /// The timeout is zero.
    #[error("the per-attempt timeout must be greater than zero")]
    ZeroTimeout,
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    Http(#[source] reqwest::Error),
}

/// Builds a [`ProfileClient`]. Its `Debug` output redacts the token.
pub struct ProfileClientBuilder {
    token: AccessToken,
    space_id: String,
    base_url: BaseUrl,
    timeout: Duration,
    lowercase_values: bool,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for ProfileClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileClientBuilder")
            .field("token", &self.token)
            .field("space_id", &self.space_id)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("lowercase_values", &self.lowercase_values)
            .field("custom_http_client", &self.http.is_some())
            .finish()
    }
}

impl ProfileClientBuilder {
    /// Reads from the Profile API host of `region` (replaces any base URL set before).
    #[must_use]
    pub fn region(mut self, region: Region) -> Self {
        self.base_url = region.profile_base_url();
        self
    }

    /// Reads from `base_url` instead of a region's host (tests, proxies).
    #[must_use]
    pub fn base_url(mut self, base_url: BaseUrl) -> Self {
        self.base_url = base_url;
        self
    }

    /// Per-attempt timeout. Default [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lower-cases external id values before the lookup (default off; see the module docs on
    /// why this is a choice).
    #[must_use]
    pub fn lowercase_lookup_values(mut self, on: bool) -> Self {
        self.lowercase_values = on;
        self
    }

    /// Uses `client` instead of building one (timeout and `User-Agent` are set per request).
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    ///
    /// [`ProfileConfigError`] for an empty space id, a zero timeout or an HTTP client that cannot
    /// be built.
    pub fn build(self) -> Result<ProfileClient, ProfileConfigError> {
        if self.space_id.is_empty() {
            return Err(ProfileConfigError::EmptySpaceId);
        }
        if self.timeout.is_zero() {
            return Err(ProfileConfigError::ZeroTimeout);
        }
        let http = match self.http {
            Some(http) => http,
            None => http_client().map_err(ProfileConfigError::Http)?,
        };
        Ok(ProfileClient {
            http,
            token: self.token,
            space_id: self.space_id,
            base_url: self.base_url,
            timeout: self.timeout,
            lowercase_values: self.lowercase_values,
        })
    }
}

/// The Segment Profile API reader. See the [module docs](self).
///
/// Cheap to clone (the connection pool is shared). Its `Debug` output redacts the token.
#[derive(Clone)]
pub struct ProfileClient {
    http: reqwest::Client,
    token: AccessToken,
    space_id: String,
    base_url: BaseUrl,
    timeout: Duration,
    lowercase_values: bool,
}

impl fmt::Debug for ProfileClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileClient")
            .field("token", &self.token)
            .field("space_id", &self.space_id)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("lowercase_values", &self.lowercase_values)
            .finish_non_exhaustive()
    }
}

impl ProfileClient {
    /// Starts a builder for the US region.
    pub fn builder(token: AccessToken, space_id: impl Into<String>) -> ProfileClientBuilder {
        ProfileClientBuilder {
            token,
            space_id: space_id.into(),
            base_url: Region::Us.profile_base_url(),
            timeout: DEFAULT_TIMEOUT,
            lowercase_values: false,
            http: None,
        }
    }

    /// All traits of a user profile, following the cursor across pages. `Ok(None)` when the
    /// profile does not exist.
    ///
    /// # Errors
    ///
    /// A [`ClientError`] for a failed request, an undecodable page, or a cursor that repeats or
    /// runs past [`MAX_PAGES`].
    pub async fn traits(
        &self,
        id: &ExternalId,
        query: &TraitsQuery,
    ) -> Result<Option<Map<String, Value>>, ClientError> {
        self.collection_traits(Collection::Users, id, query).await
    }

    /// All traits of a profile in `collection`, following the cursor. See [`Self::traits`].
    ///
    /// # Errors
    ///
    /// As [`Self::traits`].
    pub async fn collection_traits(
        &self,
        collection: Collection,
        id: &ExternalId,
        query: &TraitsQuery,
    ) -> Result<Option<Map<String, Value>>, ClientError> {
        let Some(first) = self.traits_page(collection, id, query, None).await? else {
            return Ok(None);
        };
        let mut traits = first.traits;
        let mut next = next_of(first.cursor.as_ref())?;
        let mut seen = HashSet::new();
        let mut pages = 1;
        while let Some(cursor) = next {
            if !seen.insert(cursor.clone()) {
                return Err(protocol("the paging cursor repeated an earlier value"));
            }
            if pages >= MAX_PAGES {
                return Err(protocol("the profile has more pages than MAX_PAGES"));
            }
            // With a cursor, a 404 is reported as an error by `fetch_page`, never as `None`.
            let Some(page) = self
                .fetch_page(collection, id, query, Some(&cursor))
                .await?
            else {
                return Err(protocol("a later page of the profile was not found"));
            };
            pages += 1;
            traits.extend(page.traits);
            next = next_of(page.cursor.as_ref())?;
        }
        Ok(Some(traits))
    }

    /// One page of traits. Pass the previous page's [`TraitsPage::next_cursor`] as `next` for
    /// the following one. `Ok(None)` when the profile does not exist.
    ///
    /// # Errors
    ///
    /// A [`ClientError`] for a failed request or an undecodable body.
    pub async fn traits_page(
        &self,
        collection: Collection,
        id: &ExternalId,
        query: &TraitsQuery,
        next: Option<&str>,
    ) -> Result<Option<TraitsPage>, ClientError> {
        self.fetch_page(collection, id, query, next).await
    }

    /// The URL of a traits request (no secrets; it does contain the external id).
    pub fn traits_url(
        &self,
        collection: Collection,
        id: &ExternalId,
        query: &TraitsQuery,
        next: Option<&str>,
    ) -> Url {
        let value = if self.lowercase_values {
            id.value.to_lowercase()
        } else {
            id.value.clone()
        };
        let relative = format!(
            "v1/spaces/{}/collections/{}/profiles/{}:{}/traits",
            utf8_percent_encode(&self.space_id, PATH_VALUE),
            collection.as_str(),
            utf8_percent_encode(&id.id_type, PATH_VALUE),
            utf8_percent_encode(&value, PATH_VALUE),
        );
        let mut url = self.base_url.join_encoded(&relative);
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if !query.include.is_empty() {
                pairs.append_pair("include", &query.include.join(","));
            }
            if let Some(class) = query.class {
                pairs.append_pair("class", class.as_str());
            }
            if let Some(next) = next {
                pairs.append_pair("next", next);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }

    async fn fetch_page(
        &self,
        collection: Collection,
        id: &ExternalId,
        query: &TraitsQuery,
        next: Option<&str>,
    ) -> Result<Option<TraitsPage>, ClientError> {
        let url = self.traits_url(collection, id, query, next);
        tracing::debug!(
            collection = collection.as_str(),
            id_type = id.id_type(),
            paged = next.is_some(),
            "Reading profile traits from the Segment Profile API."
        );
        let response = self
            .http
            .get(url)
            .basic_auth(&self.token.0, Some(""))
            .header(reqwest::header::USER_AGENT, super::USER_AGENT)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| ClientError::transport(Api::Profile, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && next.is_none() {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(Api::Profile, response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::transport(Api::Profile, e))?;
        decode_page(&bytes)
            .map(Some)
            .map_err(|(path, reason)| ClientError::Decode {
                api: Api::Profile,
                status: status.as_u16(),
                path,
                reason,
            })
    }
}

fn protocol(reason: &str) -> ClientError {
    ClientError::Protocol {
        api: Api::Profile,
        reason: reason.to_owned(),
    }
}

fn next_of(cursor: Option<&Cursor>) -> Result<Option<String>, ClientError> {
    match cursor {
        Some(c) if c.has_more => match &c.next {
            Some(next) => Ok(Some(next.clone())),
            None => Err(protocol("the cursor says has_more but gives no next value")),
        },
        _ => Ok(None),
    }
}

type DecodeError = (String, String);

fn decode_page(bytes: &[u8]) -> Result<TraitsPage, DecodeError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        (
            "$".to_owned(),
            format!("invalid JSON at line {} column {}", e.line(), e.column()),
        )
    })?;
    let Value::Object(mut root) = value else {
        return Err(("$".to_owned(), "expected an object".to_owned()));
    };
    let traits = match root.remove("traits") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(traits)) => traits,
        Some(_) => return Err(("traits".to_owned(), "expected an object".to_owned())),
    };
    let cursor = match root.remove("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::Object(cursor)) => Some(decode_cursor(cursor)?),
        Some(_) => return Err(("cursor".to_owned(), "expected an object".to_owned())),
    };
    Ok(TraitsPage {
        traits,
        cursor,
        extra: root,
    })
}

fn decode_cursor(mut c: Map<String, Value>) -> Result<Cursor, DecodeError> {
    let err =
        |field: &str, expected: &str| (format!("cursor.{field}"), format!("expected {expected}"));
    let url = match c.remove("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(err("url", "a string")),
    };
    let has_more = match c.remove("has_more") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(err("has_more", "a boolean")),
    };
    let next = match c.remove("next") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(err("next", "a string")),
    };
    let limit = match c.remove("limit") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| err("limit", "a non-negative integer"))?,
        ),
        Some(_) => return Err(err("limit", "a non-negative integer")),
    };
    Ok(Cursor {
        url,
        has_more,
        next,
        limit,
        extra: c,
    })
}
