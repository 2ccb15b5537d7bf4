//! API-triggered broadcasts (`POST /v1/campaigns/{broadcast_id}/triggers`).
//!
//! A trigger carries optional `data` for the message templates and at most one audience. The
//! [`Audience`] enum holds exactly one audience and only the flags that fit it, so a request
//! mixing two audiences, or a flag the chosen audience does not take (which the App API
//! rejects), cannot be built.
//!
//! Broadcasts only reach people already in the workspace; they never create people. By default
//! a person who cannot be found fails the whole trigger, and an email shared by several people
//! is an error; the `*_ignore_missing` and `email_add_duplicates` flags change that.
//!
//! **Triggers are not idempotent** (a retry after a timeout can send the broadcast twice), and
//! the App API accepts one trigger per 10 seconds
//! ([`BROADCAST_TRIGGER_INTERVAL`](crate::limits::BROADCAST_TRIGGER_INTERVAL)); more answer `429`.
//!
//! A `422` answer lists what was wrong in the JSON:API error shape; read it with
//! [`error_details`].
//!
//! ```no_run
//! # async fn run(client: customerio_client::AppClient) -> Result<(), customerio_client::Error> {
//! use customerio_client::app::broadcast::{Audience, TriggerBroadcast};
//! use serde_json::json;
//!
//! let trigger = TriggerBroadcast::new(Audience::ids(["user-42", "user-43"]).ignore_missing())
//!     .with_data(json!({"headline": "Spring sale"}));
//! let triggered = client.trigger_broadcast(17, &trigger).await?;
//! println!("trigger {}", triggered.id);
//! # Ok(()) }
//! ```

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::AppClient;
use crate::app::filter::Filter;
use crate::app::people::{PageRequest, query_refs};
use crate::error::Error;
use crate::http::Body;

/// Largest `data` object of a trigger, serialised.
pub const MAX_BROADCAST_DATA_BYTES: usize = 50_000;
/// Most ids, emails or `per_user_data` entries in one trigger.
pub const MAX_BROADCAST_RECIPIENTS: usize = 10_000;
/// Largest trigger request body ("25 MB", read as 25,000,000 bytes).
pub const MAX_BROADCAST_PAYLOAD_BYTES: usize = 25_000_000;

/// A request to trigger an API-triggered broadcast.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TriggerBroadcast {
    /// Data for the templates (`{{trigger.…}}` in Liquid); a JSON object of at most
    /// [`MAX_BROADCAST_DATA_BYTES`] serialised.
    pub data: Option<Value>,
    /// Who receives the broadcast.
    pub audience: Audience,
}

impl TriggerBroadcast {
    /// A trigger for `audience`, without data.
    pub fn new(audience: Audience) -> Self {
        Self {
            data: None,
            audience,
        }
    }

    /// Sets the trigger data (a JSON object).
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The request body after every local check.
    fn wire(&self, op: &'static str) -> Result<Vec<u8>, Error> {
        let mut body = Map::new();
        if let Some(data) = &self.data {
            if !data.is_object() {
                return Err(Error::invalid(op, "data is not a JSON object"));
            }
            let size = serde_json::to_vec(data).map_or(usize::MAX, |v| v.len());
            if size > MAX_BROADCAST_DATA_BYTES {
                return Err(Error::invalid(
                    op,
                    format!("data is {size} bytes; the limit is {MAX_BROADCAST_DATA_BYTES}"),
                ));
            }
            body.insert("data".to_owned(), data.clone());
        }
        self.audience.write(op, &mut body)?;
        let bytes = serde_json::to_vec(&body).map_err(|err| {
            Error::invalid(op, "request body could not be serialised").with_source(err)
        })?;
        if bytes.len() > MAX_BROADCAST_PAYLOAD_BYTES {
            return Err(Error::invalid(
                op,
                format!(
                    "the request is {} bytes; the limit is {MAX_BROADCAST_PAYLOAD_BYTES}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }
}

/// Who receives a broadcast: exactly one of the audiences the App API offers, with the flags
/// that audience accepts. Flags left `false` (the server's default) are not sent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Audience {
    /// The audience set on the broadcast in Customer.io (no audience key is sent).
    Default,
    /// People matching a filter (`recipients`).
    Recipients(Filter),
    /// People by email address (`emails`).
    Emails {
        /// The addresses, 1 to [`MAX_BROADCAST_RECIPIENTS`].
        emails: Vec<String>,
        /// `email_ignore_missing`: skip addresses nobody has instead of failing.
        ignore_missing: bool,
        /// `email_add_duplicates`: send to every person sharing an address instead of failing.
        add_duplicates: bool,
    },
    /// People by id (`ids`).
    Ids {
        /// The ids, 1 to [`MAX_BROADCAST_RECIPIENTS`].
        ids: Vec<String>,
        /// `id_ignore_missing`: skip unknown ids instead of failing.
        ignore_missing: bool,
    },
    /// People each with their own data (`per_user_data`).
    PerUserData {
        /// The entries, 1 to [`MAX_BROADCAST_RECIPIENTS`].
        entries: Vec<UserData>,
        /// How missing people and shared emails are handled.
        flags: MissingPeople,
    },
    /// People listed in a JSON-lines file Customer.io downloads (`data_file_url`); each line is
    /// `{"id"|"email": …, "data": {…}}`, gzip allowed when served with
    /// `Content-Encoding: gzip`, at most 2 MB per line and 10 GB in all.
    DataFileUrl {
        /// An `http` or `https` URL.
        url: String,
        /// How missing people and shared emails are handled.
        flags: MissingPeople,
    },
}

/// The three flags `per_user_data` and `data_file_url` audiences accept. All default to
/// `false`: a missing person or a shared email fails the trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MissingPeople {
    /// `id_ignore_missing`: skip unknown ids.
    pub id_ignore_missing: bool,
    /// `email_ignore_missing`: skip unknown emails.
    pub email_ignore_missing: bool,
    /// `email_add_duplicates`: send to every person sharing an email.
    pub email_add_duplicates: bool,
}

impl MissingPeople {
    fn write(self, body: &mut Map<String, Value>) {
        for (key, on) in [
            ("id_ignore_missing", self.id_ignore_missing),
            ("email_ignore_missing", self.email_ignore_missing),
            ("email_add_duplicates", self.email_add_duplicates),
        ] {
            if on {
                body.insert(key.to_owned(), Value::Bool(true));
            }
        }
    }
}

/// A person in a `per_user_data` audience, by id or email.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BroadcastRecipient {
    /// By the workspace's id.
    Id(String),
    /// By email address.
    Email(String),
}

/// One `per_user_data` entry: a person and the data their message uses.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UserData {
    /// The person.
    pub recipient: BroadcastRecipient,
    /// Their data (`{{trigger.…}}` in Liquid).
    pub data: Map<String, Value>,
}

impl UserData {
    /// An entry for the person with this id.
    pub fn id(id: impl Into<String>, data: Map<String, Value>) -> Self {
        Self {
            recipient: BroadcastRecipient::Id(id.into()),
            data,
        }
    }

    /// An entry for the person with this email address.
    pub fn email(email: impl Into<String>, data: Map<String, Value>) -> Self {
        Self {
            recipient: BroadcastRecipient::Email(email.into()),
            data,
        }
    }
}

impl Serialize for UserData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        match &self.recipient {
            BroadcastRecipient::Id(id) => map.serialize_entry("id", id)?,
            BroadcastRecipient::Email(email) => map.serialize_entry("email", email)?,
        }
        map.serialize_entry("data", &self.data)?;
        map.end()
    }
}

impl Audience {
    /// People matching `filter`.
    pub fn recipients(filter: Filter) -> Self {
        Audience::Recipients(filter)
    }

    /// People by id; flags off.
    pub fn ids<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        Audience::Ids {
            ids: ids.into_iter().map(Into::into).collect(),
            ignore_missing: false,
        }
    }

    /// People by email; flags off.
    pub fn emails<I: IntoIterator<Item = S>, S: Into<String>>(emails: I) -> Self {
        Audience::Emails {
            emails: emails.into_iter().map(Into::into).collect(),
            ignore_missing: false,
            add_duplicates: false,
        }
    }

    /// People each with their own data; flags off.
    pub fn per_user_data(entries: impl IntoIterator<Item = UserData>) -> Self {
        Audience::PerUserData {
            entries: entries.into_iter().collect(),
            flags: MissingPeople::default(),
        }
    }

    /// People listed in the JSON-lines file at `url`; flags off.
    pub fn data_file_url(url: impl Into<String>) -> Self {
        Audience::DataFileUrl {
            url: url.into(),
            flags: MissingPeople::default(),
        }
    }

    /// Skips people who cannot be found instead of failing the trigger: `id_ignore_missing`
    /// for ids, `email_ignore_missing` for emails, both for per-user data and data files. No
    /// effect on [`Audience::Default`] and [`Audience::Recipients`], which take no flags.
    pub fn ignore_missing(mut self) -> Self {
        match &mut self {
            Audience::Ids { ignore_missing, .. } | Audience::Emails { ignore_missing, .. } => {
                *ignore_missing = true;
            }
            Audience::PerUserData { flags, .. } | Audience::DataFileUrl { flags, .. } => {
                flags.id_ignore_missing = true;
                flags.email_ignore_missing = true;
            }
            Audience::Default | Audience::Recipients(_) => {}
        }
        self
    }

    /// Sends to every person sharing an email address instead of failing
    /// (`email_add_duplicates`). Only email-based audiences take it; no effect on the others.
    pub fn add_duplicates(mut self) -> Self {
        match &mut self {
            Audience::Emails { add_duplicates, .. } => *add_duplicates = true,
            Audience::PerUserData { flags, .. } | Audience::DataFileUrl { flags, .. } => {
                flags.email_add_duplicates = true;
            }
            Audience::Default | Audience::Recipients(_) | Audience::Ids { .. } => {}
        }
        self
    }

    fn write(&self, op: &'static str, body: &mut Map<String, Value>) -> Result<(), Error> {
        match self {
            Audience::Default => {}
            Audience::Recipients(filter) => {
                filter.validate_at(op, "recipients")?;
                body.insert("recipients".to_owned(), to_value(op, filter)?);
            }
            Audience::Emails {
                emails,
                ignore_missing,
                add_duplicates,
            } => {
                check_list(op, "emails", emails.iter().map(String::as_str))?;
                body.insert("emails".to_owned(), to_value(op, emails)?);
                if *ignore_missing {
                    body.insert("email_ignore_missing".to_owned(), Value::Bool(true));
                }
                if *add_duplicates {
                    body.insert("email_add_duplicates".to_owned(), Value::Bool(true));
                }
            }
            Audience::Ids {
                ids,
                ignore_missing,
            } => {
                check_list(op, "ids", ids.iter().map(String::as_str))?;
                body.insert("ids".to_owned(), to_value(op, ids)?);
                if *ignore_missing {
                    body.insert("id_ignore_missing".to_owned(), Value::Bool(true));
                }
            }
            Audience::PerUserData { entries, flags } => {
                check_list(
                    op,
                    "per_user_data",
                    entries.iter().map(|e| match &e.recipient {
                        BroadcastRecipient::Id(v) | BroadcastRecipient::Email(v) => v.as_str(),
                    }),
                )?;
                body.insert("per_user_data".to_owned(), to_value(op, entries)?);
                flags.write(body);
            }
            Audience::DataFileUrl { url, flags } => {
                let parsed = url::Url::parse(url)
                    .map_err(|_| Error::invalid(op, "data_file_url is not an absolute URL"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(Error::invalid(op, "data_file_url must be http or https"));
                }
                body.insert("data_file_url".to_owned(), Value::String(url.clone()));
                flags.write(body);
            }
        }
        Ok(())
    }
}

fn to_value(op: &'static str, value: &impl Serialize) -> Result<Value, Error> {
    serde_json::to_value(value)
        .map_err(|err| Error::invalid(op, "request body could not be serialised").with_source(err))
}

/// Checks a recipient list: 1 to [`MAX_BROADCAST_RECIPIENTS`] entries, none empty. Errors name
/// the index, never the value.
fn check_list<'a>(
    op: &'static str,
    key: &str,
    values: impl ExactSizeIterator<Item = &'a str>,
) -> Result<(), Error> {
    let len = values.len();
    if len == 0 {
        return Err(Error::invalid(op, format!("{key} is an empty list")));
    }
    if len > MAX_BROADCAST_RECIPIENTS {
        return Err(Error::invalid(
            op,
            format!("{key} has {len} entries; the limit is {MAX_BROADCAST_RECIPIENTS}"),
        ));
    }
    for (index, value) in values.enumerate() {
        if value.trim().is_empty() {
            return Err(Error::invalid(op, format!("{key}[{index}] is empty")));
        }
    }
    Ok(())
}

/// The answer to a trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastTriggered {
    /// The trigger id (for the status and error follow-up calls).
    pub id: u64,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of the App API's JSON:API error list
/// (`{"errors": [{"detail", "status", "code"?, "meta"?, "source": {"pointer"}?}]}`), the shape
/// of a broadcast trigger's `422` and of most other App API errors.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The HTTP status, as a string (`"422"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// A machine-readable code, present on some errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Where in the request the problem is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
    /// Extra information, shape not documented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorDetail {
    /// The JSON pointer of the offending request part, e.g. `/data/attributes/per_user_data`.
    pub fn pointer(&self) -> Option<&str> {
        self.source.as_ref().and_then(|s| s.pointer.as_deref())
    }
}

/// The `source` of an [`ErrorDetail`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorSource {
    /// A JSON pointer into the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The JSON:API error entries in an error's response body, with their `source.pointer`,
/// `status` and `meta` (which [`Error::api_errors`] does not keep).
///
/// Empty when the error has no body, the body has another shape, or it was cut at
/// [`MAX_ERROR_BODY_BYTES`](crate::error::MAX_ERROR_BODY_BYTES) and no longer parses.
///
/// ```
/// use customerio_client::app::broadcast::error_details;
/// # let err = customerio_client::Error::invalid("x", "y");
/// for detail in error_details(&err) {
///     eprintln!("{:?} at {:?}", detail.detail, detail.pointer());
/// }
/// ```
pub fn error_details(err: &Error) -> Vec<ErrorDetail> {
    #[derive(Deserialize)]
    struct Envelope {
        errors: Vec<ErrorDetail>,
    }
    err.body()
        .and_then(|body| serde_json::from_str::<Envelope>(body).ok())
        .map(|envelope| envelope.errors)
        .unwrap_or_default()
}

impl AppClient {
    /// Triggers an API-triggered broadcast (`POST /v1/campaigns/{broadcast_id}/triggers`).
    ///
    /// Everything checkable is checked before sending: the audience's list sizes and entries,
    /// the filter, the data size, the data-file URL and the whole payload size. **Not
    /// idempotent**; one trigger per 10 s per workspace.
    pub async fn trigger_broadcast(
        &self,
        broadcast_id: u64,
        trigger: &TriggerBroadcast,
    ) -> Result<BroadcastTriggered, Error> {
        const OP: &str = "app.broadcast.trigger";
        let body = Body::Json(trigger.wire(OP)?);
        let response = self
            .transport
            .send(
                OP,
                Method::POST,
                &format!("/v1/campaigns/{broadcast_id}/triggers"),
                &[],
                body,
            )
            .await?;
        response.json(OP)
    }

    /// The status of a trigger (`GET /v1/campaigns/{broadcast_id}/triggers/{trigger_id}`).
    ///
    /// The reference does not document the answer's fields, so it is returned as JSON.
    pub async fn broadcast_trigger_status(
        &self,
        broadcast_id: u64,
        trigger_id: u64,
    ) -> Result<Value, Error> {
        const OP: &str = "app.broadcast.trigger_status";
        let response = self
            .transport
            .send(
                OP,
                Method::GET,
                &format!("/v1/campaigns/{broadcast_id}/triggers/{trigger_id}"),
                &[],
                Body::None,
            )
            .await?;
        response.json(OP)
    }

    /// One page of a trigger's per-person errors
    /// (`GET /v1/campaigns/{broadcast_id}/triggers/{trigger_id}/errors?start=…&limit=…`).
    ///
    /// The reference does not document the answer's fields, so it is returned as JSON.
    pub async fn broadcast_trigger_errors(
        &self,
        broadcast_id: u64,
        trigger_id: u64,
        page: &PageRequest,
    ) -> Result<Value, Error> {
        const OP: &str = "app.broadcast.trigger_errors";
        let query = page.query(OP, None)?;
        let response = self
            .transport
            .send(
                OP,
                Method::GET,
                &format!("/v1/campaigns/{broadcast_id}/triggers/{trigger_id}/errors"),
                &query_refs(&query),
                Body::None,
            )
            .await?;
        response.json(OP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(trigger: &TriggerBroadcast) -> Value {
        serde_json::from_slice(&trigger.wire("test").unwrap()).unwrap()
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn each_audience_writes_its_key_and_only_its_flags() {
        let cases = [
            (TriggerBroadcast::new(Audience::Default), json!({})),
            (
                TriggerBroadcast::new(Audience::ids(["user-42", "user-43"]).ignore_missing())
                    .with_data(json!({"headline": "Spring sale"})),
                json!({"data": {"headline": "Spring sale"}, "ids": ["user-42", "user-43"], "id_ignore_missing": true}),
            ),
            (
                TriggerBroadcast::new(Audience::ids(["u"]).add_duplicates()),
                json!({"ids": ["u"]}),
            ),
            (
                TriggerBroadcast::new(
                    Audience::emails(["a@x.com"])
                        .ignore_missing()
                        .add_duplicates(),
                ),
                json!({"emails": ["a@x.com"], "email_ignore_missing": true, "email_add_duplicates": true}),
            ),
            (
                TriggerBroadcast::new(Audience::emails(["a@x.com"])),
                json!({"emails": ["a@x.com"]}),
            ),
            (
                TriggerBroadcast::new(
                    Audience::per_user_data([
                        UserData::id("u1", map(json!({"n": 1}))),
                        UserData::email("b@x.com", Map::new()),
                    ])
                    .ignore_missing()
                    .add_duplicates(),
                ),
                json!({"per_user_data": [{"id": "u1", "data": {"n": 1}}, {"email": "b@x.com", "data": {}}],
                       "id_ignore_missing": true, "email_ignore_missing": true, "email_add_duplicates": true}),
            ),
            (
                TriggerBroadcast::new(Audience::data_file_url(
                    "https://files.example.com/a.jsonl.gz",
                )),
                json!({"data_file_url": "https://files.example.com/a.jsonl.gz"}),
            ),
            (
                TriggerBroadcast::new(
                    Audience::recipients(Filter::segment(3) & Filter::attribute("plan").eq("pro"))
                        .ignore_missing(),
                ),
                json!({"recipients": {"and": [{"segment": {"id": 3}},
                        {"attribute": {"field": "plan", "operator": "eq", "value": "pro"}}]}}),
            ),
        ];
        for (trigger, expected) in cases {
            assert_eq!(body(&trigger), expected, "{trigger:?}");
        }
    }

    #[test]
    fn local_checks_name_what_is_wrong() {
        let too_many: Vec<String> = (0..=MAX_BROADCAST_RECIPIENTS)
            .map(|i| format!("u{i}"))
            .collect();
        let cases = [
            (
                TriggerBroadcast::new(Audience::ids(Vec::<String>::new())),
                "ids is an empty list",
            ),
            (
                TriggerBroadcast::new(Audience::ids(too_many)),
                "ids has 10001 entries; the limit is 10000",
            ),
            (
                TriggerBroadcast::new(Audience::emails(["a@x.com", " "])),
                "emails[1] is empty",
            ),
            (
                TriggerBroadcast::new(Audience::per_user_data([UserData::id("", Map::new())])),
                "per_user_data[0] is empty",
            ),
            (
                TriggerBroadcast::new(Audience::data_file_url("files/a.jsonl")),
                "data_file_url is not an absolute URL",
            ),
            (
                TriggerBroadcast::new(Audience::data_file_url("ftp://x/a")),
                "data_file_url must be http or https",
            ),
            (
                TriggerBroadcast::new(Audience::recipients(Filter::not(Filter::or([])))),
                "recipients.not.or is an empty list",
            ),
            (
                TriggerBroadcast::new(Audience::Default).with_data(json!([1])),
                "data is not a JSON object",
            ),
            (
                TriggerBroadcast::new(Audience::Default)
                    .with_data(json!({"k": "x".repeat(MAX_BROADCAST_DATA_BYTES)})),
                "the limit is 50000",
            ),
        ];
        for (trigger, expected) in cases {
            let err = trigger.wire("test").unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Invalid);
            assert!(err.to_string().contains(expected), "{err} / {expected}");
        }
        let at_limit: Vec<String> = (0..MAX_BROADCAST_RECIPIENTS)
            .map(|i| format!("u{i}"))
            .collect();
        assert!(
            TriggerBroadcast::new(Audience::ids(at_limit))
                .wire("test")
                .is_ok()
        );
    }
}
