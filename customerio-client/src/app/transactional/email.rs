//! Transactional email: [`SendEmail`] (template or inline content), the [`PlainBodyField`]
//! choice, and the email-only checks (recipient count, headers, attachment size).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::attachments::Attachments;
use super::common::{MessageCommon, TransactionalMessageId, check_payload_size, to_wire};
use super::{MAX_ATTACHMENTS_BYTES, MAX_EMAIL_RECIPIENTS};
use crate::error::Error;
use crate::identifier::Identifier;

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
    pub(super) fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
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

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{NOW, OP};
    use super::*;
    use crate::app::transactional::{MAX_PAYLOAD_BYTES, MAX_SEND_AT_AHEAD_SECS};
    use serde_json::json;

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
}
