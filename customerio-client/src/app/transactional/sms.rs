//! The phone-number channels: [`SendSms`] and [`SendWhatsApp`] (whose `to` must be E.164).

use serde::Serialize;
use serde_json::{Map, Value};

use super::common::{
    MessageCommon, TransactionalMessageId, check_message_id, check_payload_size, to_wire,
};
use crate::error::Error;
use crate::identifier::Identifier;

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

    pub(super) fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
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

    pub(super) fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
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

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{NOW, OP};
    use super::*;
    use serde_json::json;

    #[test]
    fn phone_recipient_is_refused_without_leaking_it() {
        let sms = SendSms::new(3, Identifier::phone("+14155550100"));
        let err = sms.wire(OP, NOW).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        assert!(err.to_string().contains("phone number cannot identify"));
        assert!(!err.to_string().contains("4155550100"));
    }

    #[test]
    fn sms_and_whatsapp_bodies() {
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
    }
}
