//! People look-ups on the App API: one person's attributes, up to 100 people's attributes,
//! people by email, and the filter search with its cursor paging.
//!
//! The paged shape (`{"identifiers": [...], "ids": [...], "next": "..."}`) is shared with segment
//! membership ([`AppClient::segment_membership`]); [`PeoplePager`] follows its `next` cursor for
//! both.
//!
//! Responses keep fields this crate does not model in an `extra` map, so a Customer.io addition
//! is not lost. In the modelled fields a JSON `null` and a missing key both read as `None`.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::app::AppClient;
use crate::app::filter::Filter;
use crate::error::Error;
use crate::http::Body;
use crate::identifier::{Identifier, encode_path_segment};
use crate::limits::{MAX_ID_BYTES, MAX_PEOPLE_PER_ATTRIBUTES_LOOKUP};

/// Most people one search request may ask for (`limit` of `POST /v1/customers`).
pub const MAX_SEARCH_PAGE_SIZE: u32 = 1000;

/// How a `cio_id` is written in an App API path such as `/v1/customers/{customer_id}/...`.
///
/// Sources disagree: the official Node SDK passes the raw value with `id_type=cio_id`, while
/// some newer spec text asks for the `cio_` prefix. [`CioIdForm::Raw`] (the SDK behaviour) is
/// the default; switch per call with [`PersonRef::with_cio_id_form`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CioIdForm {
    /// The raw value, e.g. `/v1/customers/a3000001/attributes?id_type=cio_id`.
    #[default]
    Raw,
    /// With the prefix, e.g. `/v1/customers/cio_a3000001/attributes?id_type=cio_id`.
    Prefixed,
}

/// A person named in an App API path: an [`Identifier`] (sent as the path segment plus the
/// `id_type` query parameter) and the form a `cio_id` takes there.
///
/// Every look-up that takes a person accepts `impl Into<PersonRef>`, so an [`Identifier`] (or a
/// reference to one) can be passed directly.
///
/// A `phone` is accepted (the App API takes `id_type=phone` when phone is an identifier in the
/// workspace; the `+` is percent-encoded as `%2B`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonRef {
    identifier: Identifier,
    cio_id_form: CioIdForm,
}

impl PersonRef {
    /// A person by `identifier`, a `cio_id` written raw.
    pub fn new(identifier: Identifier) -> Self {
        Self {
            identifier,
            cio_id_form: CioIdForm::default(),
        }
    }

    /// Chooses how a `cio_id` is written in the path (no effect on other kinds).
    pub fn with_cio_id_form(mut self, form: CioIdForm) -> Self {
        self.cio_id_form = form;
        self
    }

    /// The identifier.
    pub fn identifier(&self) -> &Identifier {
        &self.identifier
    }

    /// The percent-encoded path segment and the `id_type` query value, after checking the
    /// value is not empty and within the id length limit.
    pub(crate) fn path_segment(
        &self,
        operation: &'static str,
    ) -> Result<(String, &'static str), Error> {
        let value = self.identifier.value();
        let kind = self.identifier.kind();
        if value.is_empty() {
            return Err(Error::invalid(
                operation,
                format!("person: {kind} is empty"),
            ));
        }
        if value.len() > MAX_ID_BYTES {
            return Err(Error::invalid(
                operation,
                format!(
                    "person: {kind} is {} bytes; the limit is {MAX_ID_BYTES}",
                    value.len()
                ),
            ));
        }
        let segment = match (&self.identifier, self.cio_id_form) {
            (Identifier::CioId(_), CioIdForm::Prefixed) => {
                format!("cio_{}", encode_path_segment(value))
            }
            _ => encode_path_segment(value),
        };
        Ok((segment, kind.as_str()))
    }
}

impl From<Identifier> for PersonRef {
    fn from(identifier: Identifier) -> Self {
        Self::new(identifier)
    }
}

impl From<&Identifier> for PersonRef {
    fn from(identifier: &Identifier) -> Self {
        Self::new(identifier.clone())
    }
}

/// The identifiers of one person as the App API lists them. `id` and `email` can be `null`
/// (a person without an id, a workspace without email identifiers).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PersonIdentifiers {
    /// The workspace's id for the person.
    #[serde(default)]
    pub id: Option<String>,
    /// The person's email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Customer.io's id for the person (raw, no `cio_` prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cio_id: Option<String>,
    /// Fields not modelled here (for example `phone` in workspaces that use it).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One page of people: a segment's members or search results.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PeoplePage {
    /// Each person's identifiers. Prefer these to [`ids`](Self::ids).
    #[serde(default)]
    pub identifiers: Vec<PersonIdentifiers>,
    /// The people's `id` values; in email+id workspaces a person without an id shows as `""`.
    #[serde(default)]
    pub ids: Vec<String>,
    /// The cursor of the next page (pass it as `start`), or `None` on the last page. The App
    /// API types it as a string in some places and an integer in others; it is kept as an
    /// opaque string either way.
    #[serde(
        default,
        deserialize_with = "cursor",
        skip_serializing_if = "Option::is_none"
    )]
    pub next: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Reads a cursor given as a string, an integer or `null`; an empty string means no cursor.
fn cursor<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Cursor {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Option::<Cursor>::deserialize(deserializer)? {
        None => None,
        Some(Cursor::Text(text)) if text.is_empty() => None,
        Some(Cursor::Text(text)) => Some(text),
        Some(Cursor::Number(number)) => Some(number.to_string()),
    })
}

/// Which page to ask for: the cursor from the previous page (`start`) and a page size
/// (`limit`). [`PageRequest::default`] asks for the first page at the server's default size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// The `next` cursor of the previous page; `None` for the first page.
    pub start: Option<String>,
    /// How many people to return; `None` leaves it to the server.
    pub limit: Option<u32>,
}

impl PageRequest {
    /// The first page, `limit` people per page.
    pub fn first(limit: u32) -> Self {
        Self {
            start: None,
            limit: Some(limit),
        }
    }

    /// The page after `cursor` (a previous page's [`PeoplePage::next`]).
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.start = Some(cursor.into());
        self
    }

    /// The query pairs, after checking `limit` is between 1 and `max` (when given).
    pub(crate) fn query(
        &self,
        operation: &'static str,
        max: Option<u32>,
    ) -> Result<Vec<(&'static str, String)>, Error> {
        let mut query = Vec::new();
        if let Some(start) = &self.start {
            query.push(("start", start.clone()));
        }
        if let Some(limit) = self.limit {
            if limit == 0 {
                return Err(Error::invalid(operation, "limit is 0; ask for at least 1"));
            }
            if let Some(max) = max.filter(|&max| limit > max) {
                return Err(Error::invalid(
                    operation,
                    format!("limit is {limit}; the most one request may ask for is {max}"),
                ));
            }
            query.push(("limit", limit.to_string()));
        }
        Ok(query)
    }
}

/// A person's profile as the attributes look-up returns it.
///
/// Every value in [`attributes`](Self::attributes) comes back as a string (numbers and
/// booleans included); [`timestamps`](Self::timestamps) holds when each attribute was set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Customer {
    /// The person's id, if they have one.
    #[serde(default)]
    pub id: Option<String>,
    /// Every identifier of the person.
    #[serde(default)]
    pub identifiers: PersonIdentifiers,
    /// The attributes, values as Customer.io returns them (strings).
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// When each attribute was set, Unix seconds, by attribute name.
    #[serde(default)]
    pub timestamps: Map<String, Value>,
    /// Whether the person is globally unsubscribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribed: Option<bool>,
    /// The person's devices.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Customer {
    /// An attribute's value when it is a string (Customer.io returns attributes as strings).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }

    /// When the attribute `name` was set (Unix seconds).
    pub fn timestamp(&self, name: &str) -> Option<i64> {
        self.timestamps.get(name).and_then(Value::as_i64)
    }
}

/// A device on a person's profile. Its `Debug` shows the token's length, not the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// The device token.
    pub id: String,
    /// `ios` or `android` (others kept as read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DevicePlatform>,
    /// When the device was last used, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<i64>,
    /// Device attributes (`app_version`, `push_enabled`, …); values are strings.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("id", &crate::secret::TokenLength(&self.id))
            .field("platform", &self.platform)
            .field("last_used", &self.last_used)
            .field("attributes", &self.attributes)
            .field("extra", &self.extra)
            .finish()
    }
}

/// A device platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum DevicePlatform {
    /// `ios`
    Ios,
    /// `android`
    Android,
    /// A platform this crate does not know, kept as read.
    Other(String),
}

impl DevicePlatform {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            DevicePlatform::Ios => "ios",
            DevicePlatform::Android => "android",
            DevicePlatform::Other(other) => other,
        }
    }
}

impl From<String> for DevicePlatform {
    fn from(value: String) -> Self {
        match value.as_str() {
            "ios" => DevicePlatform::Ios,
            "android" => DevicePlatform::Android,
            _ => DevicePlatform::Other(value),
        }
    }
}

impl From<DevicePlatform> for String {
    fn from(value: DevicePlatform) -> Self {
        match value {
            DevicePlatform::Other(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for DevicePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Deserialize)]
struct CustomerEnvelope {
    customer: Customer,
}

#[derive(Deserialize)]
struct CustomersEnvelope {
    #[serde(default)]
    customers: Vec<CustomerEnvelope>,
}

#[derive(Deserialize)]
struct EmailResults {
    #[serde(default)]
    results: Vec<PersonIdentifiers>,
}

#[derive(Serialize)]
struct SearchBody<'a> {
    filter: &'a Filter,
}

#[derive(Serialize)]
struct IdsBody<'a, S: AsRef<str>> {
    #[serde(serialize_with = "as_str_list")]
    ids: &'a [S],
}

fn as_str_list<S: AsRef<str>, Z: serde::Serializer>(ids: &&[S], s: Z) -> Result<Z::Ok, Z::Error> {
    s.collect_seq(ids.iter().map(AsRef::as_ref))
}

pub(crate) fn query_refs<'a>(query: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    query.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

impl AppClient {
    /// One person's profile (`GET /v1/customers/{customer_id}/attributes?id_type=…`).
    ///
    /// An unknown person is a `404` error ([`ErrorKind::Client`](crate::ErrorKind::Client)). Use
    /// `email` or `phone` only when they are identifiers in the workspace (otherwise `400`).
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::AppClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::Identifier;
    ///
    /// let customer = client.customer_attributes(Identifier::id("user-42")).await?;
    /// let plan = customer.attribute("plan");
    /// # Ok(()) }
    /// ```
    pub async fn customer_attributes(
        &self,
        person: impl Into<PersonRef>,
    ) -> Result<Customer, Error> {
        const OP: &str = "app.people.attributes";
        let (segment, id_type) = person.into().path_segment(OP)?;
        let response = self
            .transport
            .send(
                OP,
                Method::GET,
                &format!("/v1/customers/{segment}/attributes"),
                &[("id_type", id_type)],
                Body::None,
            )
            .await?;
        Ok(response.json::<CustomerEnvelope>(OP)?.customer)
    }

    /// Several people's profiles by `id` (`POST /v1/customers/attributes`).
    ///
    /// Takes 1 to 100 ids ([`MAX_PEOPLE_PER_ATTRIBUTES_LOOKUP`]); more, none, or an empty or
    /// over-long id is refused before anything is sent. Unknown ids are left out of the answer,
    /// so the result can be shorter than `ids`.
    pub async fn customers_attributes<S: AsRef<str>>(
        &self,
        ids: &[S],
    ) -> Result<Vec<Customer>, Error> {
        const OP: &str = "app.people.attributes_batch";
        if ids.is_empty() {
            return Err(Error::invalid(OP, "ids is empty; give at least one id"));
        }
        if ids.len() > MAX_PEOPLE_PER_ATTRIBUTES_LOOKUP {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} ids; the limit is {MAX_PEOPLE_PER_ATTRIBUTES_LOOKUP} per request",
                    ids.len()
                ),
            ));
        }
        for (index, id) in ids.iter().enumerate() {
            let len = id.as_ref().len();
            if len == 0 {
                return Err(Error::invalid(OP, format!("ids[{index}] is empty")));
            }
            if len > MAX_ID_BYTES {
                return Err(Error::invalid(
                    OP,
                    format!("ids[{index}] is {len} bytes; the limit is {MAX_ID_BYTES}"),
                ));
            }
        }
        let body = Body::json(OP, &IdsBody { ids })?;
        let response = self
            .transport
            .send(OP, Method::POST, "/v1/customers/attributes", &[], body)
            .await?;
        Ok(response
            .json::<CustomersEnvelope>(OP)?
            .customers
            .into_iter()
            .map(|envelope| envelope.customer)
            .collect())
    }

    /// Every person with this email address (`GET /v1/customers?email=…`).
    ///
    /// Nobody matching is an empty list, not an error.
    pub async fn customers_by_email(&self, email: &str) -> Result<Vec<PersonIdentifiers>, Error> {
        const OP: &str = "app.people.by_email";
        if email.trim().is_empty() {
            return Err(Error::invalid(OP, "email is empty"));
        }
        let response = self
            .transport
            .send(
                OP,
                Method::GET,
                "/v1/customers",
                &[("email", email)],
                Body::None,
            )
            .await?;
        Ok(response.json::<EmailResults>(OP)?.results)
    }

    /// One page of the people matching `filter` (`POST /v1/customers?start=…&limit=…`, body
    /// `{"filter": …}`).
    ///
    /// The filter is validated first ([`Filter::validate`]); `limit` must be 1 to
    /// [`MAX_SEARCH_PAGE_SIZE`]. To walk every page use [`AppClient::search_customers_pages`].
    /// For very large audiences Customer.io recommends exports instead.
    pub async fn search_customers(
        &self,
        filter: &Filter,
        page: &PageRequest,
    ) -> Result<PeoplePage, Error> {
        const OP: &str = "app.people.search";
        filter.validate_for(OP)?;
        let query = page.query(OP, Some(MAX_SEARCH_PAGE_SIZE))?;
        let body = Body::json(OP, &SearchBody { filter })?;
        let response = self
            .transport
            .send(OP, Method::POST, "/v1/customers", &query_refs(&query), body)
            .await?;
        response.json(OP)
    }

    /// A [`PeoplePager`] over every person matching `filter`, `limit` per page.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::AppClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::app::filter::Filter;
    ///
    /// let mut pages = client.search_customers_pages(Filter::segment(12), Some(500));
    /// while let Some(page) = pages.next_page().await? {
    ///     for person in &page.identifiers {
    ///         // …
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn search_customers_pages(&self, filter: Filter, limit: Option<u32>) -> PeoplePager {
        PeoplePager::new(self.clone(), PagerSource::Search(filter), limit)
    }
}

/// Walks a paged list of people (a search or a segment's members) by following each page's
/// `next` cursor.
///
/// [`next_page`](Self::next_page) returns `Ok(None)` after the last page. After an error the
/// pager stays where it was: calling `next_page` again asks for the same page, so a caller can
/// retry a throttled page. [`cursor`](Self::cursor) gives the position to resume from later.
#[derive(Debug, Clone)]
pub struct PeoplePager {
    client: AppClient,
    source: PagerSource,
    limit: Option<u32>,
    cursor: Option<String>,
    done: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum PagerSource {
    Search(Filter),
    Segment(u64),
}

impl PeoplePager {
    pub(crate) fn new(client: AppClient, source: PagerSource, limit: Option<u32>) -> Self {
        Self {
            client,
            source,
            limit,
            cursor: None,
            done: false,
        }
    }

    /// Starts from `cursor` (a [`PeoplePage::next`] kept from earlier) instead of the first page.
    pub fn starting_at(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The cursor the next request will send (`None` before the first page).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Whether the last page has been returned.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Fetches the next page, or `Ok(None)` when there is none left.
    ///
    /// The walk ends on a page without a `next` cursor (or an empty one). A server answer that
    /// repeats the cursor just sent would loop forever; the pager ends there too and logs a
    /// warning.
    pub async fn next_page(&mut self) -> Result<Option<PeoplePage>, Error> {
        if self.done {
            return Ok(None);
        }
        let request = PageRequest {
            start: self.cursor.clone(),
            limit: self.limit,
        };
        let page = match &self.source {
            PagerSource::Search(filter) => self.client.search_customers(filter, &request).await?,
            PagerSource::Segment(id) => self.client.segment_membership(*id, &request).await?,
        };
        match &page.next {
            None => self.done = true,
            Some(next) if Some(next) == self.cursor.as_ref() => {
                tracing::warn!(
                    source = ?self.source_name(),
                    "customer.io returned the same page cursor again; ending the walk"
                );
                self.done = true;
            }
            Some(next) => self.cursor = Some(next.clone()),
        }
        Ok(Some(page))
    }

    fn source_name(&self) -> &'static str {
        match self.source {
            PagerSource::Search(_) => "search",
            PagerSource::Segment(_) => "segment_membership",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_device_token_is_not_shown_in_debug() {
        let device: Device = serde_json::from_value(
            serde_json::json!({"id": "fcm-secret-token", "platform": "android"}),
        )
        .unwrap();
        let shown = format!("{device:?}");
        assert!(!shown.contains("fcm-secret-token"), "{shown}");
        assert!(shown.contains("<token, 16 bytes>"), "{shown}");
    }

    #[test]
    fn cursor_is_read_from_string_number_null_or_empty() {
        let cases = [
            (json!({"next": "abc"}), Some("abc")),
            (json!({"next": 25}), Some("25")),
            (json!({"next": null}), None),
            (json!({"next": ""}), None),
            (json!({}), None),
        ];
        for (body, expected) in cases {
            let page: PeoplePage = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(page.next.as_deref(), expected, "{body}");
        }
    }

    #[test]
    fn customer_fixture_round_trips_exactly() {
        let fixture = json!({
            "id": "user-42",
            "identifiers": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c106000001"},
            "attributes": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c106000001",
                           "plan": "pro", "created_at": "1717171717"},
            "timestamps": {"id": 1717171717, "email": 1717171717, "cio_id": 1717171717,
                           "plan": 1717171800, "_last_emailed": 1717172500},
            "unsubscribed": false,
            "devices": [{"id": "fcm-token", "platform": "android", "last_used": 1717172300,
                         "attributes": {"push_enabled": "true"}, "new_device_field": 1}],
            "new_field": {"nested": true}
        });
        let customer: Customer = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(customer.attribute("plan"), Some("pro"));
        assert_eq!(customer.timestamp("plan"), Some(1_717_171_800));
        assert_eq!(customer.devices[0].platform, Some(DevicePlatform::Android));
        assert_eq!(customer.extra.len(), 1);
        let back = serde_json::to_value(&customer).unwrap();
        assert_eq!(back, fixture);
        // Flattened keys are written once: serialising to text has one `new_field`.
        let text = serde_json::to_string(&customer).unwrap();
        assert_eq!(text.matches("\"new_field\"").count(), 1);
    }

    #[test]
    fn page_fixture_round_trips_and_keeps_unknown_fields() {
        let fixture = json!({
            "identifiers": [{"id": "u1", "email": null, "cio_id": "c1", "phone": "+1415"}],
            "ids": ["u1"],
            "next": "n2",
            "total": 10
        });
        let page: PeoplePage = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(page.extra.get("total"), Some(&json!(10)));
        assert_eq!(
            page.identifiers[0].extra.get("phone"),
            Some(&json!("+1415"))
        );
        assert_eq!(serde_json::to_value(&page).unwrap(), fixture);
        let text = serde_json::to_string(&page).unwrap();
        assert_eq!(text.matches("\"total\"").count(), 1);
        assert_eq!(text.matches("\"phone\"").count(), 1);
    }

    #[test]
    fn page_request_checks_limit() {
        let op = "test";
        assert!(PageRequest::first(0).query(op, None).is_err());
        assert!(PageRequest::first(1001).query(op, Some(1000)).is_err());
        assert_eq!(
            PageRequest::first(1000)
                .after("c1")
                .query(op, Some(1000))
                .unwrap(),
            vec![("start", "c1".to_owned()), ("limit", "1000".to_owned())]
        );
        assert!(
            PageRequest::default()
                .query(op, Some(1))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn person_ref_paths() {
        let op = "test";
        let cases = [
            (PersonRef::from(Identifier::id("a/b c")), "a%2Fb%20c", "id"),
            (
                Identifier::email("ada+x@example.com").into(),
                "ada%2Bx%40example.com",
                "email",
            ),
            (
                Identifier::phone("+14155550100").into(),
                "%2B14155550100",
                "phone",
            ),
            (
                Identifier::cio_id("cio_a3000001").into(),
                "a3000001",
                "cio_id",
            ),
            (
                PersonRef::new(Identifier::cio_id("a3000001"))
                    .with_cio_id_form(CioIdForm::Prefixed),
                "cio_a3000001",
                "cio_id",
            ),
        ];
        for (person, segment, id_type) in cases {
            assert_eq!(
                person.path_segment(op).unwrap(),
                (segment.to_owned(), id_type),
                "{person:?}"
            );
        }
        let err = PersonRef::from(Identifier::id(""))
            .path_segment(op)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "customer.io test: invalid input: person: id is empty"
        );
    }
}
