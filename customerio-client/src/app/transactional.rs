//! Transactional messages (`POST /v1/send/{channel}`): email, push, SMS, in-app, inbox and
//! WhatsApp.
//!
//! Each channel has a request type with the fields the App API documents. The fields shared by
//! every channel sit in [`MessageCommon`] (flattened into the request JSON); fields Customer.io
//! adds later can be sent through each request's `extra` map.
//!
//! **Sends are not idempotent.** The App API has no idempotency key: if a send times out (the
//! error's [`phase`](crate::Error::phase) is [`MaybeSent`](crate::Phase::MaybeSent)) a retry can
//! deliver the message twice. Retry only what you know was not sent
//! ([`Phase::NotSent`](crate::Phase::NotSent)) or where a duplicate is acceptable, and keep the
//! returned [`TransactionalDelivery::delivery_id`].
//!
//! Checked before sending (each with a typed [`ErrorKind::Invalid`](crate::ErrorKind::Invalid)
//! error naming the field): the recipient is one of `id` / `email` / `cio_id` (a phone is
//! refused), `send_at` is at most 90 days ahead, email recipients across `to`, `cc` and `bcc`
//! are at most [`MAX_EMAIL_RECIPIENTS`], attachments total at most [`MAX_ATTACHMENTS_BYTES`],
//! the rest of the payload at most [`MAX_PAYLOAD_BYTES`], header names are plain ASCII tokens.
//!
//! ```no_run
//! # async fn run(client: customerio_client::AppClient) -> Result<(), customerio_client::Error> {
//! use customerio_client::Identifier;
//! use customerio_client::app::transactional::SendEmail;
//! use serde_json::json;
//!
//! let email = SendEmail::template("password_reset", "ada@example.com", Identifier::id("user-42"))
//!     .with_message_data(json!({"reset_url": "https://example.com/r/abc"}))
//!     .tracked(false);
//! let delivery = client.send_email(&email).await?;
//! println!("queued as {}", delivery.delivery_id);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::AppClient;
use crate::error::Error;
use crate::http::Body;
use crate::identifier::Identifier;
use crate::limits::MAX_ID_BYTES;

/// Most recipients of one email, counted across `to`, `cc` and `bcc`.
pub const MAX_EMAIL_RECIPIENTS: usize = 15;
/// Largest total size of an email's attachments (decoded bytes). The reference says "2 MB";
/// it is read as 2,000,000 bytes, which stays under the limit whichever unit the server uses.
pub const MAX_ATTACHMENTS_BYTES: usize = 2_000_000;
/// Largest request payload, attachments excluded ("1 MB", read as 1,000,000 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 1_000_000;
/// Furthest ahead `send_at` may be.
pub const MAX_SEND_AT_AHEAD_SECS: i64 = 90 * 24 * 60 * 60;

/// The template to send: its numeric id or its trigger name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TransactionalMessageId {
    /// The template's numeric id (sent as a JSON number).
    Id(u64),
    /// The template's trigger name (sent as a JSON string).
    TriggerName(String),
}

impl From<u64> for TransactionalMessageId {
    fn from(id: u64) -> Self {
        TransactionalMessageId::Id(id)
    }
}

impl From<&str> for TransactionalMessageId {
    fn from(name: &str) -> Self {
        TransactionalMessageId::TriggerName(name.to_owned())
    }
}

impl From<String> for TransactionalMessageId {
    fn from(name: String) -> Self {
        TransactionalMessageId::TriggerName(name)
    }
}

/// The fields every channel shares.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MessageCommon {
    /// The person the message is for: `id`, `email` or `cio_id` (a person unknown to the
    /// workspace is created). A phone is refused: the send endpoints do not take it.
    pub identifiers: Identifier,
    /// Data for the template (`{{trigger.…}}` in Liquid). Must be a JSON object (checked
    /// before sending); any `Serialize` type can be turned into one with
    /// `serde_json::to_value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_data: Option<Value>,
    /// When to send, Unix seconds; at most 90 days ahead. A time in the past sends now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_at: Option<i64>,
    /// Do not keep the message body in the delivery history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_message_retention: Option<bool>,
    /// Create a draft in Customer.io instead of sending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_draft: Option<bool>,
    /// The language variant of the template to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl MessageCommon {
    /// Common fields for a message to `identifiers`, everything else unset.
    pub fn new(identifiers: Identifier) -> Self {
        Self {
            identifiers,
            message_data: None,
            send_at: None,
            disable_message_retention: None,
            queue_draft: None,
            language: None,
        }
    }

    fn check(&self, op: &'static str, now: i64) -> Result<(), Error> {
        let kind = self.identifiers.kind();
        if matches!(self.identifiers, Identifier::Phone(_)) {
            return Err(Error::invalid(
                op,
                "identifiers: a phone number cannot identify the recipient of a transactional \
                 message; use id, email or cio_id",
            ));
        }
        let value = self.identifiers.value();
        if value.is_empty() {
            return Err(Error::invalid(op, format!("identifiers.{kind} is empty")));
        }
        if value.len() > MAX_ID_BYTES {
            return Err(Error::invalid(
                op,
                format!(
                    "identifiers.{kind} is {} bytes; the limit is {MAX_ID_BYTES}",
                    value.len()
                ),
            ));
        }
        if self.message_data.as_ref().is_some_and(|d| !d.is_object()) {
            return Err(Error::invalid(op, "message_data is not a JSON object"));
        }
        if let Some(send_at) = self.send_at {
            if send_at < 0 {
                return Err(Error::invalid(op, "send_at is before 1970"));
            }
            if send_at > now.saturating_add(MAX_SEND_AT_AHEAD_SECS) {
                return Err(Error::invalid(
                    op,
                    "send_at is more than 90 days ahead of the local clock",
                ));
            }
        }
        Ok(())
    }
}

/// The builder methods every request type shares.
macro_rules! common_setters {
    ($name:ident) => {
        impl $name {
            /// Sets the template data (`message_data`), a JSON object.
            pub fn with_message_data(mut self, data: Value) -> Self {
                self.common.message_data = Some(data);
                self
            }

            /// Sends at `unix_seconds` instead of now (at most 90 days ahead).
            pub fn send_at(mut self, unix_seconds: i64) -> Self {
                self.common.send_at = Some(unix_seconds);
                self
            }

            /// Keeps (`false`) or drops (`true`) the body from the delivery history.
            pub fn disable_message_retention(mut self, disable: bool) -> Self {
                self.common.disable_message_retention = Some(disable);
                self
            }

            /// Creates a draft instead of sending.
            pub fn queue_draft(mut self, draft: bool) -> Self {
                self.common.queue_draft = Some(draft);
                self
            }

            /// Picks a language variant of the template.
            pub fn language(mut self, language: impl Into<String>) -> Self {
                self.common.language = Some(language.into());
                self
            }

            /// Adds a field this crate does not model. Sending fails with a typed error if the
            /// request already sets a field of that name, so no key is written twice.
            pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
                self.extra.insert(key.into(), value);
                self
            }
        }
    };
}

/// Serialises `typed`, adds `additions` and the caller's `extra` fields, refusing any key that
/// would be written twice.
fn to_wire(
    op: &'static str,
    typed: &impl Serialize,
    additions: Vec<(&'static str, Value)>,
    extra: &Map<String, Value>,
) -> Result<Map<String, Value>, Error> {
    let mut map = match serde_json::to_value(typed) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Error::invalid(op, "request is not a JSON object")),
        Err(err) => {
            return Err(Error::invalid(op, "request body could not be serialised").with_source(err));
        }
    };
    for (key, value) in additions {
        map.insert(key.to_owned(), value);
    }
    for (key, value) in extra {
        if map.contains_key(key) {
            return Err(Error::invalid(
                op,
                format!("extra field `{key}` is already set by the request"),
            ));
        }
        map.insert(key.clone(), value.clone());
    }
    Ok(map)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The name the plain-text body is sent under.
///
/// The official SDKs send `body_plain`; the 2022 App API spec calls the field
/// `plaintext_body`. The sources conflict, so the name is a choice; `body_plain` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlainBodyField {
    /// `body_plain` (official SDKs).
    #[default]
    BodyPlain,
    /// `plaintext_body` (2022 spec).
    PlaintextBody,
}

impl PlainBodyField {
    /// The JSON key.
    pub fn as_str(self) -> &'static str {
        match self {
            PlainBodyField::BodyPlain => "body_plain",
            PlainBodyField::PlaintextBody => "plaintext_body",
        }
    }
}

/// Email attachments: file name → base64 content, as the App API takes them.
///
/// `Debug` lists file names and sizes, not content.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attachments(BTreeMap<String, String>);

impl Attachments {
    /// Adds a file from its raw bytes (base64-encoded here, standard alphabet with padding).
    /// A file of the same name is replaced.
    pub fn insert_bytes(&mut self, filename: impl Into<String>, content: &[u8]) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        self.0.insert(filename.into(), encoded);
    }

    /// Adds a file whose content is already base64 (standard alphabet, padded). Refuses text
    /// that is not valid base64.
    pub fn insert_base64(
        &mut self,
        filename: impl Into<String>,
        encoded: impl Into<String>,
    ) -> Result<(), Error> {
        let encoded = encoded.into();
        if base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .is_err()
        {
            return Err(Error::invalid(
                "app.transactional.attachments",
                "attachment content is not valid standard base64",
            ));
        }
        self.0.insert(filename.into(), encoded);
        Ok(())
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// File names and their base64 content.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The decoded size of all files together, in bytes.
    pub fn total_bytes(&self) -> usize {
        self.0.values().map(|v| decoded_len(v)).sum()
    }
}

/// Decoded length of padded standard base64 (content was checked when it was added).
fn decoded_len(encoded: &str) -> usize {
    let padding = encoded.bytes().rev().take_while(|&b| b == b'=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
}

impl fmt::Debug for Attachments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(name, content)| (name, format!("<{} bytes>", decoded_len(content)))),
            )
            .finish()
    }
}

/// A transactional email (`POST /v1/send/email`).
///
/// Build it from a template ([`SendEmail::template`]) or from content given here
/// ([`SendEmail::content`], which needs `from`, `subject` and `body`; Customer.io then files
/// the metrics under message id 1). Set optional fields through the builder methods or the
/// public fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SendEmail {
    /// The template; optional when `from`, `subject` and `body` are given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional_message_id: Option<TransactionalMessageId>,
    /// Shared fields (recipient, data, scheduling, …).
    #[serde(flatten)]
    pub common: MessageCommon,
    /// Recipient address(es); several may be given comma-separated, `Name <addr>` allowed.
    pub to: String,
    /// Sender (a verified address; `Name <addr>` allowed). Overrides the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Subject. Overrides the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// HTML body. Overrides the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Plain-text body, sent under [`plain_body_field`](Self::plain_body_field).
    #[serde(skip)]
    pub body_plain: Option<String>,
    /// The JSON key of the plain-text body (see [`PlainBodyField`]).
    #[serde(skip)]
    pub plain_body_field: PlainBodyField,
    /// AMP body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_amp: Option<String>,
    /// Preheader text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    /// Reply-to address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Carbon-copy address(es), comma-separated (documented by the Ruby SDK).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cc: Option<String>,
    /// Blind-copy address(es), comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcc: Option<String>,
    /// Send copies as separate messages instead of a real `Bcc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fake_bcc: Option<bool>,
    /// Extra headers, name → value (the SDKs' object form; the 2022 spec's list form is not
    /// used). Names must be printable ASCII without spaces or `:`; reserved headers cannot be
    /// overridden (the server decides which).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Attachments, file name → base64.
    #[serde(skip_serializing_if = "Attachments::is_empty")]
    pub attachments: Attachments,
    /// Send even if the person is unsubscribed (server default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_to_unsubscribed: Option<bool>,
    /// Track opens and clicks (server default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracked: Option<bool>,
    /// Skip CSS pre-processing of the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_css_preprocessing: Option<bool>,
    /// Fields this crate does not model (see `with_extra`).
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

common_setters!(SendEmail);

impl SendEmail {
    fn blank(to: String, identifiers: Identifier) -> Self {
        Self {
            transactional_message_id: None,
            common: MessageCommon::new(identifiers),
            to,
            from: None,
            subject: None,
            body: None,
            body_plain: None,
            plain_body_field: PlainBodyField::default(),
            body_amp: None,
            preheader: None,
            reply_to: None,
            cc: None,
            bcc: None,
            fake_bcc: None,
            headers: BTreeMap::new(),
            attachments: Attachments::default(),
            send_to_unsubscribed: None,
            tracked: None,
            disable_css_preprocessing: None,
            extra: Map::new(),
        }
    }

    /// An email from the template `message_id` (numeric id or trigger name) to `to`, for the
    /// person `identifiers`.
    pub fn template(
        message_id: impl Into<TransactionalMessageId>,
        to: impl Into<String>,
        identifiers: Identifier,
    ) -> Self {
        let mut email = Self::blank(to.into(), identifiers);
        email.transactional_message_id = Some(message_id.into());
        email
    }

    /// An email without a template: sender, subject and HTML body given here.
    pub fn content(
        to: impl Into<String>,
        identifiers: Identifier,
        from: impl Into<String>,
        subject: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        let mut email = Self::blank(to.into(), identifiers);
        email.from = Some(from.into());
        email.subject = Some(subject.into());
        email.body = Some(body.into());
        email
    }

    /// Sets the plain-text body.
    pub fn plain_body(mut self, text: impl Into<String>) -> Self {
        self.body_plain = Some(text.into());
        self
    }

    /// Chooses the JSON key of the plain-text body.
    pub fn plain_body_field(mut self, field: PlainBodyField) -> Self {
        self.plain_body_field = field;
        self
    }

    /// Adds an attachment from raw bytes.
    pub fn attach(mut self, filename: impl Into<String>, content: &[u8]) -> Self {
        self.attachments.insert_bytes(filename, content);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets `send_to_unsubscribed`.
    pub fn send_to_unsubscribed(mut self, send: bool) -> Self {
        self.send_to_unsubscribed = Some(send);
        self
    }

    /// Sets `tracked` (open and click tracking).
    pub fn tracked(mut self, tracked: bool) -> Self {
        self.tracked = Some(tracked);
        self
    }

    /// The request body, after every local check. `now` is the local clock in Unix seconds.
    fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
        self.common.check(op, now)?;
        if self.to.trim().is_empty() {
            return Err(Error::invalid(op, "to is empty"));
        }
        if self.transactional_message_id.is_none() {
            for (name, value) in [
                ("from", &self.from),
                ("subject", &self.subject),
                ("body", &self.body),
            ] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err(Error::invalid(
                        op,
                        format!("{name} is required when transactional_message_id is not set"),
                    ));
                }
            }
        }
        let recipients = count_addresses(&self.to)
            + self.cc.as_deref().map_or(0, count_addresses)
            + self.bcc.as_deref().map_or(0, count_addresses);
        if recipients > MAX_EMAIL_RECIPIENTS {
            return Err(Error::invalid(
                op,
                format!(
                    "{recipients} recipients across to, cc and bcc; the limit is {MAX_EMAIL_RECIPIENTS}"
                ),
            ));
        }
        for (name, value) in &self.headers {
            let valid_name =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !valid_name {
                return Err(Error::invalid(
                    op,
                    "headers: a header name is empty or has a space, `:` or a non-ASCII character",
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(Error::invalid(
                    op,
                    format!("headers.{name}: the value has a control character"),
                ));
            }
        }
        let attachment_bytes = self.attachments.total_bytes();
        if attachment_bytes > MAX_ATTACHMENTS_BYTES {
            return Err(Error::invalid(
                op,
                format!(
                    "attachments total {attachment_bytes} bytes; the limit is {MAX_ATTACHMENTS_BYTES}"
                ),
            ));
        }
        let mut additions = Vec::new();
        if let Some(text) = &self.body_plain {
            additions.push((self.plain_body_field.as_str(), Value::String(text.clone())));
        }
        let map = to_wire(op, self, additions, &self.extra)?;
        check_payload_size(op, &map)?;
        Ok(map)
    }
}

/// Checks the payload without its attachments against [`MAX_PAYLOAD_BYTES`].
fn check_payload_size(op: &'static str, map: &Map<String, Value>) -> Result<(), Error> {
    let total = serde_json::to_vec(map).map_or(usize::MAX, |v| v.len());
    let attachments = map
        .get("attachments")
        .map_or(0, |a| serde_json::to_vec(a).map_or(0, |v| v.len()));
    let size = total.saturating_sub(attachments);
    if size > MAX_PAYLOAD_BYTES {
        return Err(Error::invalid(
            op,
            format!(
                "the request is {size} bytes without attachments; the limit is {MAX_PAYLOAD_BYTES}"
            ),
        ));
    }
    Ok(())
}

/// Counts the addresses in a comma-separated list, ignoring commas inside quotes (`"Doe, J"`)
/// and angle brackets.
fn count_addresses(list: &str) -> usize {
    let mut count = 0;
    let mut current_has_text = false;
    let mut in_quotes = false;
    let mut in_angle = false;
    for c in list.chars() {
        match c {
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => {
                if current_has_text {
                    count += 1;
                }
                current_has_text = false;
                continue;
            }
            _ => {}
        }
        if !c.is_whitespace() {
            current_has_text = true;
        }
    }
    if current_has_text {
        count += 1;
    }
    count
}

/// iOS and Android specific payloads of a push (`custom_payload`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct CustomPushPayload {
    /// The iOS payload object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ios: Option<Map<String, Value>>,
    /// The Android payload object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub android: Option<Map<String, Value>>,
}

impl CustomPushPayload {
    /// Payloads for either platform (`None` leaves one out).
    pub fn new(ios: Option<Map<String, Value>>, android: Option<Map<String, Value>>) -> Self {
        Self { ios, android }
    }
}

/// A transactional push notification (`POST /v1/send/push`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SendPush {
    /// The template.
    pub transactional_message_id: TransactionalMessageId,
    /// Shared fields.
    #[serde(flatten)]
    pub common: MessageCommon,
    /// Which of the person's devices to send to (a device token, or as the template sets it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Title. Overrides the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Message text. Overrides the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Image URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Deep link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Sound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// Custom key/value data, strings only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<BTreeMap<String, String>>,
    /// Platform-specific payloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_payload: Option<CustomPushPayload>,
    /// A device object to send to instead of the person's stored devices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_device: Option<Map<String, Value>>,
    /// Send even if the person is unsubscribed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_to_unsubscribed: Option<bool>,
    /// Fields this crate does not model (see `with_extra`).
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

common_setters!(SendPush);

impl SendPush {
    /// A push from template `message_id` for the person `identifiers`.
    pub fn new(message_id: impl Into<TransactionalMessageId>, identifiers: Identifier) -> Self {
        Self {
            transactional_message_id: message_id.into(),
            common: MessageCommon::new(identifiers),
            to: None,
            title: None,
            message: None,
            image_url: None,
            link: None,
            sound: None,
            custom_data: None,
            custom_payload: None,
            custom_device: None,
            send_to_unsubscribed: None,
            extra: Map::new(),
        }
    }

    /// Sets title and message text.
    pub fn text(mut self, title: impl Into<String>, message: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self.message = Some(message.into());
        self
    }

    fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
        self.common.check(op, now)?;
        check_message_id(op, &self.transactional_message_id)?;
        let map = to_wire(op, self, Vec::new(), &self.extra)?;
        check_payload_size(op, &map)?;
        Ok(map)
    }
}

fn check_message_id(op: &'static str, id: &TransactionalMessageId) -> Result<(), Error> {
    match id {
        TransactionalMessageId::TriggerName(name) if name.trim().is_empty() => Err(Error::invalid(
            op,
            "transactional_message_id is an empty name",
        )),
        _ => Ok(()),
    }
}

/// A transactional SMS (`POST /v1/send/sms`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SendSms {
    /// The template.
    pub transactional_message_id: TransactionalMessageId,
    /// Shared fields.
    #[serde(flatten)]
    pub common: MessageCommon,
    /// The phone number to send to; the person's phone attribute when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Send even if the person is unsubscribed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_to_unsubscribed: Option<bool>,
    /// Fields this crate does not model (see `with_extra`).
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

common_setters!(SendSms);

impl SendSms {
    /// An SMS from template `message_id` for the person `identifiers`.
    pub fn new(message_id: impl Into<TransactionalMessageId>, identifiers: Identifier) -> Self {
        Self {
            transactional_message_id: message_id.into(),
            common: MessageCommon::new(identifiers),
            to: None,
            send_to_unsubscribed: None,
            extra: Map::new(),
        }
    }

    /// Sets the number to send to.
    pub fn to(mut self, phone: impl Into<String>) -> Self {
        self.to = Some(phone.into());
        self
    }

    fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
        self.common.check(op, now)?;
        check_message_id(op, &self.transactional_message_id)?;
        let map = to_wire(op, self, Vec::new(), &self.extra)?;
        check_payload_size(op, &map)?;
        Ok(map)
    }
}

/// A transactional WhatsApp message (`POST /v1/send/whatsapp`, documented by the Ruby SDK).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SendWhatsApp {
    /// The template.
    pub transactional_message_id: TransactionalMessageId,
    /// Shared fields.
    #[serde(flatten)]
    pub common: MessageCommon,
    /// The number to send to, E.164 (`+` and 1 to 15 digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Fields this crate does not model (see `with_extra`).
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

common_setters!(SendWhatsApp);

impl SendWhatsApp {
    /// A WhatsApp message from template `message_id` for the person `identifiers`.
    pub fn new(message_id: impl Into<TransactionalMessageId>, identifiers: Identifier) -> Self {
        Self {
            transactional_message_id: message_id.into(),
            common: MessageCommon::new(identifiers),
            to: None,
            extra: Map::new(),
        }
    }

    /// Sets the number to send to (E.164).
    pub fn to(mut self, phone: impl Into<String>) -> Self {
        self.to = Some(phone.into());
        self
    }

    fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
        self.common.check(op, now)?;
        check_message_id(op, &self.transactional_message_id)?;
        if let Some(to) = &self.to {
            let digits = to.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Error::invalid(
                    op,
                    "to is not an E.164 number (`+` and 1 to 15 digits)",
                ));
            }
        }
        let map = to_wire(op, self, Vec::new(), &self.extra)?;
        check_payload_size(op, &map)?;
        Ok(map)
    }
}

/// A transactional message with only the shared fields: in-app (`POST /v1/send/in_app`) and
/// inbox (`POST /v1/send/inbox_message`) messages, whose channel-specific fields the reference
/// does not list (use `with_extra` for them).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SendTemplate {
    /// The template.
    pub transactional_message_id: TransactionalMessageId,
    /// Shared fields.
    #[serde(flatten)]
    pub common: MessageCommon,
    /// Fields this crate does not model (see `with_extra`).
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

common_setters!(SendTemplate);

impl SendTemplate {
    /// A message from template `message_id` for the person `identifiers`.
    pub fn new(message_id: impl Into<TransactionalMessageId>, identifiers: Identifier) -> Self {
        Self {
            transactional_message_id: message_id.into(),
            common: MessageCommon::new(identifiers),
            extra: Map::new(),
        }
    }

    fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
        self.common.check(op, now)?;
        check_message_id(op, &self.transactional_message_id)?;
        let map = to_wire(op, self, Vec::new(), &self.extra)?;
        check_payload_size(op, &map)?;
        Ok(map)
    }
}

/// The answer to a transactional send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionalDelivery {
    /// The delivery's id; reporting webhooks and metrics refer to it.
    pub delivery_id: String,
    /// When Customer.io queued the message, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<i64>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AppClient {
    async fn send_transactional(
        &self,
        op: &'static str,
        path: &str,
        body: Map<String, Value>,
    ) -> Result<TransactionalDelivery, Error> {
        let body = Body::json(op, &body)?;
        let response = self
            .transport
            .send(op, Method::POST, path, &[], body)
            .await?;
        response.json(op)
    }

    /// Sends a transactional email (`POST /v1/send/email`). **Not idempotent**: see the
    /// [module docs](crate::app::transactional).
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::AppClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::Identifier;
    /// use customerio_client::app::transactional::SendEmail;
    ///
    /// let email = SendEmail::content(
    ///     "ada@example.com",
    ///     Identifier::email("ada@example.com"),
    ///     "Billing <billing@example.com>",
    ///     "Your invoice",
    ///     "<p>Attached.</p>",
    /// )
    /// .plain_body("Attached.")
    /// .attach("invoice.pdf", b"%PDF-1.7 ...");
    /// let delivery = client.send_email(&email).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_email(&self, email: &SendEmail) -> Result<TransactionalDelivery, Error> {
        const OP: &str = "app.transactional.email";
        let body = email.wire(OP, now_unix())?;
        self.send_transactional(OP, "/v1/send/email", body).await
    }

    /// Sends a transactional push (`POST /v1/send/push`). **Not idempotent.**
    pub async fn send_push(&self, push: &SendPush) -> Result<TransactionalDelivery, Error> {
        const OP: &str = "app.transactional.push";
        let body = push.wire(OP, now_unix())?;
        self.send_transactional(OP, "/v1/send/push", body).await
    }

    /// Sends a transactional SMS (`POST /v1/send/sms`). **Not idempotent.**
    pub async fn send_sms(&self, sms: &SendSms) -> Result<TransactionalDelivery, Error> {
        const OP: &str = "app.transactional.sms";
        let body = sms.wire(OP, now_unix())?;
        self.send_transactional(OP, "/v1/send/sms", body).await
    }

    /// Sends a transactional WhatsApp message (`POST /v1/send/whatsapp`). **Not idempotent.**
    pub async fn send_whatsapp(
        &self,
        message: &SendWhatsApp,
    ) -> Result<TransactionalDelivery, Error> {
        const OP: &str = "app.transactional.whatsapp";
        let body = message.wire(OP, now_unix())?;
        self.send_transactional(OP, "/v1/send/whatsapp", body).await
    }

    /// Sends a transactional in-app message (`POST /v1/send/in_app`). **Not idempotent.**
    pub async fn send_in_app(
        &self,
        message: &SendTemplate,
    ) -> Result<TransactionalDelivery, Error> {
        const OP: &str = "app.transactional.in_app";
        let body = message.wire(OP, now_unix())?;
        self.send_transactional(OP, "/v1/send/in_app", body).await
    }

    /// Sends a transactional inbox message (`POST /v1/send/inbox_message`). **Not idempotent.**
    pub async fn send_inbox_message(
        &self,
        message: &SendTemplate,
    ) -> Result<TransactionalDelivery, Error> {
        const OP: &str = "app.transactional.inbox_message";
        let body = message.wire(OP, now_unix())?;
        self.send_transactional(OP, "/v1/send/inbox_message", body)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_717_171_717;
    const OP: &str = "test";

    fn wire_value(email: &SendEmail) -> Value {
        Value::Object(email.wire(OP, NOW).unwrap())
    }

    #[test]
    fn template_email_matches_the_reference_example() {
        let email = SendEmail::template(
            "password_reset",
            "ada@example.com",
            Identifier::id("user-42"),
        )
        .with_message_data(json!({"reset_url": "https://example.com/r/abc"}))
        .send_to_unsubscribed(true)
        .tracked(false);
        assert_eq!(
            wire_value(&email),
            json!({
                "transactional_message_id": "password_reset",
                "to": "ada@example.com",
                "identifiers": {"id": "user-42"},
                "message_data": {"reset_url": "https://example.com/r/abc"},
                "send_to_unsubscribed": true,
                "tracked": false
            })
        );
    }

    #[test]
    fn every_email_field_is_written_once() {
        let mut email = SendEmail::template(
            7,
            "a@example.com, \"Doe, J\" <j@example.com>",
            Identifier::cio_id("cio_a3"),
        )
        .send_at(NOW + 60)
        .disable_message_retention(true)
        .queue_draft(false)
        .language("fr")
        .plain_body("hi")
        .attach("a.txt", b"hello")
        .header("X-Campaign", "spring")
        .with_extra("new_field", json!(1));
        email.from = Some("Shop <shop@example.com>".into());
        email.subject = Some("Hi".into());
        email.body = Some("<p>hi</p>".into());
        email.body_amp = Some("<amp/>".into());
        email.preheader = Some("pre".into());
        email.reply_to = Some("help@example.com".into());
        email.cc = Some("c@example.com".into());
        email.bcc = Some("b@example.com".into());
        email.fake_bcc = Some(true);
        email.disable_css_preprocessing = Some(true);
        assert_eq!(
            wire_value(&email),
            json!({
                "transactional_message_id": 7,
                "identifiers": {"cio_id": "a3"},
                "send_at": NOW + 60,
                "disable_message_retention": true,
                "queue_draft": false,
                "language": "fr",
                "to": "a@example.com, \"Doe, J\" <j@example.com>",
                "from": "Shop <shop@example.com>",
                "subject": "Hi",
                "body": "<p>hi</p>",
                "body_plain": "hi",
                "body_amp": "<amp/>",
                "preheader": "pre",
                "reply_to": "help@example.com",
                "cc": "c@example.com",
                "bcc": "b@example.com",
                "fake_bcc": true,
                "headers": {"X-Campaign": "spring"},
                "attachments": {"a.txt": "aGVsbG8="},
                "disable_css_preprocessing": true,
                "new_field": 1
            })
        );
        let switched = email.plain_body_field(PlainBodyField::PlaintextBody);
        let wire = wire_value(&switched);
        assert_eq!(wire["plaintext_body"], "hi");
        assert!(wire.get("body_plain").is_none());
    }

    #[test]
    fn extra_fields_cannot_repeat_a_typed_field() {
        let email = SendEmail::template(1, "a@example.com", Identifier::id("u"))
            .with_extra("to", json!("b@example.com"));
        let err = email.wire(OP, NOW).unwrap_err();
        assert!(
            err.to_string().contains("extra field `to` is already set"),
            "{err}"
        );
        let plain = SendEmail::template(1, "a@example.com", Identifier::id("u"))
            .plain_body("x")
            .with_extra("body_plain", json!("y"));
        assert!(plain.wire(OP, NOW).is_err());
    }

    #[test]
    fn delivery_answer_keeps_unknown_fields_once() {
        let fixture = json!({"delivery_id": "RPIL", "queued_at": 1717172500, "recipient_count": 1});
        let delivery: TransactionalDelivery = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(delivery.queued_at, Some(1_717_172_500));
        assert_eq!(serde_json::to_value(&delivery).unwrap(), fixture);
        let text = serde_json::to_string(&delivery).unwrap();
        assert_eq!(text.matches("recipient_count").count(), 1);
    }

    #[test]
    fn phone_recipient_is_refused_without_leaking_it() {
        let sms = SendSms::new(3, Identifier::phone("+14155550100"));
        let err = sms.wire(OP, NOW).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        assert!(err.to_string().contains("phone number cannot identify"));
        assert!(!err.to_string().contains("4155550100"));
    }

    #[test]
    fn recipients_are_counted_across_to_cc_and_bcc() {
        assert_eq!(count_addresses("a@x.com"), 1);
        assert_eq!(count_addresses(" a@x.com , b@x.com ,"), 2);
        assert_eq!(count_addresses("\"Doe, Jane\" <j@x.com>, <k@x, y>"), 2);
        assert_eq!(count_addresses(""), 0);

        let list = |n: usize| {
            (0..n)
                .map(|i| format!("p{i}@example.com"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut email = SendEmail::template(1, list(10), Identifier::id("u"));
        email.cc = Some(list(3));
        email.bcc = Some(list(2));
        assert!(email.wire(OP, NOW).is_ok());
        email.bcc = Some(list(3));
        let err = email.wire(OP, NOW).unwrap_err();
        assert!(err.to_string().contains("16 recipients"), "{err}");
    }

    #[test]
    fn attachments_are_limited_by_decoded_size() {
        let fits = SendEmail::template(1, "a@example.com", Identifier::id("u"))
            .attach("a.bin", &vec![0u8; MAX_ATTACHMENTS_BYTES - 1])
            .attach("b.bin", &[1u8]);
        assert_eq!(fits.attachments.total_bytes(), MAX_ATTACHMENTS_BYTES);
        assert!(fits.wire(OP, NOW).is_ok());
        let over = fits.attach("c.bin", &[2u8]);
        let err = over.wire(OP, NOW).unwrap_err();
        assert!(
            err.to_string().contains("attachments total 2000001 bytes"),
            "{err}"
        );

        let mut a = Attachments::default();
        assert!(a.insert_base64("x", "not base64!").is_err());
        a.insert_base64("x", "aGk=").unwrap();
        assert_eq!(a.total_bytes(), 2);
        assert_eq!(format!("{a:?}"), r#"{"x": "<2 bytes>"}"#);
    }

    #[test]
    fn local_checks_name_the_field() {
        let cases: Vec<(SendEmail, &str)> = vec![
            (
                SendEmail::template(1, " ", Identifier::id("u")),
                "to is empty",
            ),
            (
                SendEmail::content("a@x.com", Identifier::id("u"), "f@x.com", "s", ""),
                "body is required",
            ),
            (
                SendEmail::template(1, "a@x.com", Identifier::id("u"))
                    .send_at(NOW + MAX_SEND_AT_AHEAD_SECS + 1),
                "send_at is more than 90 days ahead",
            ),
            (
                SendEmail::template(1, "a@x.com", Identifier::id("u")).header("Bad Name", "v"),
                "header name",
            ),
            (
                SendEmail::template(1, "a@x.com", Identifier::id("u")).header("X-A", "v\r\nBcc: x"),
                "headers.X-A: the value has a control character",
            ),
            (
                SendEmail::template(1, "a@x.com", Identifier::email("")),
                "identifiers.email is empty",
            ),
            (
                SendEmail::template(1, "a@x.com", Identifier::id("u"))
                    .with_message_data(json!({"big": "x".repeat(MAX_PAYLOAD_BYTES)})),
                "without attachments; the limit is 1000000",
            ),
            (
                SendEmail::template(1, "a@x.com", Identifier::id("u"))
                    .with_message_data(json!(["not", "an", "object"])),
                "message_data is not a JSON object",
            ),
        ];
        for (email, expected) in cases {
            let err = email.wire(OP, NOW).unwrap_err();
            assert!(err.to_string().contains(expected), "{err} / {expected}");
        }
        let at_limit = SendEmail::template(1, "a@x.com", Identifier::id("u"))
            .send_at(NOW + MAX_SEND_AT_AHEAD_SECS);
        assert!(at_limit.wire(OP, NOW).is_ok());
    }

    #[test]
    fn push_sms_whatsapp_and_template_bodies() {
        let mut push =
            SendPush::new(5, Identifier::email("ada@example.com")).text("Hi", "Your order shipped");
        push.image_url = Some("https://example.com/i.png".into());
        push.link = Some("app://orders/1".into());
        push.sound = Some("default".into());
        push.custom_data = Some(BTreeMap::from([("order".into(), "1".into())]));
        push.custom_payload = Some(CustomPushPayload::new(
            Some(json!({"aps": {"badge": 1}}).as_object().cloned().unwrap()),
            None,
        ));
        push.custom_device = Some(
            json!({"token": "t", "platform": "ios"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        push.to = Some("all".into());
        push.send_to_unsubscribed = Some(false);
        assert_eq!(
            Value::Object(push.wire(OP, NOW).unwrap()),
            json!({
                "transactional_message_id": 5,
                "identifiers": {"email": "ada@example.com"},
                "to": "all",
                "title": "Hi",
                "message": "Your order shipped",
                "image_url": "https://example.com/i.png",
                "link": "app://orders/1",
                "sound": "default",
                "custom_data": {"order": "1"},
                "custom_payload": {"ios": {"aps": {"badge": 1}}},
                "custom_device": {"token": "t", "platform": "ios"},
                "send_to_unsubscribed": false
            })
        );

        let sms = SendSms::new("otp", Identifier::id("u")).to("+14155550100");
        assert_eq!(
            Value::Object(sms.wire(OP, NOW).unwrap()),
            json!({"transactional_message_id": "otp", "identifiers": {"id": "u"}, "to": "+14155550100"})
        );
        assert!(SendSms::new("", Identifier::id("u")).wire(OP, NOW).is_err());

        assert!(
            SendWhatsApp::new(1, Identifier::id("u"))
                .to("4155550100")
                .wire(OP, NOW)
                .is_err()
        );
        assert!(
            SendWhatsApp::new(1, Identifier::id("u"))
                .to("+4155550100")
                .wire(OP, NOW)
                .is_ok()
        );

        let in_app = SendTemplate::new(9, Identifier::id("u")).language("de");
        assert_eq!(
            Value::Object(in_app.wire(OP, NOW).unwrap()),
            json!({"transactional_message_id": 9, "identifiers": {"id": "u"}, "language": "de"})
        );
    }
}
