//! What every channel shares: the template id ([`TransactionalMessageId`]), the shared fields
//! ([`MessageCommon`]) and their builder methods (`common_setters!`), and the helpers that turn
//! a request into its checked JSON body.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{MAX_PAYLOAD_BYTES, MAX_SEND_AT_AHEAD_SECS};
use crate::error::Error;
use crate::identifier::Identifier;
use crate::limits::MAX_ID_BYTES;

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

    pub(super) fn check(&self, op: &'static str, now: i64) -> Result<(), Error> {
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
            pub fn with_message_data(mut self, data: ::serde_json::Value) -> Self {
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
            pub fn with_extra(
                mut self,
                key: impl Into<String>,
                value: ::serde_json::Value,
            ) -> Self {
                self.extra.insert(key.into(), value);
                self
            }
        }
    };
}

/// Serialises `typed`, adds `additions` and the caller's `extra` fields, refusing any key that
/// would be written twice.
pub(super) fn to_wire(
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

pub(super) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Checks the payload without its attachments against [`MAX_PAYLOAD_BYTES`].
pub(super) fn check_payload_size(op: &'static str, map: &Map<String, Value>) -> Result<(), Error> {
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

pub(super) fn check_message_id(op: &'static str, id: &TransactionalMessageId) -> Result<(), Error> {
    match id {
        TransactionalMessageId::TriggerName(name) if name.trim().is_empty() => Err(Error::invalid(
            op,
            "transactional_message_id is an empty name",
        )),
        _ => Ok(()),
    }
}

/// Constants the unit tests of the transactional files share.
#[cfg(test)]
pub(super) mod test_support {
    pub(in crate::app::transactional) const NOW: i64 = 1_717_171_717;
    pub(in crate::app::transactional) const OP: &str = "test";
}
