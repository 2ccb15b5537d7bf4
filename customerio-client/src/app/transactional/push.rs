//! Transactional push: [`SendPush`] and its platform payloads ([`CustomPushPayload`]).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::common::{
    MessageCommon, TransactionalMessageId, check_message_id, check_payload_size, to_wire,
};
use crate::error::Error;
use crate::identifier::Identifier;

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

    pub(super) fn wire(&self, op: &'static str, now: i64) -> Result<Map<String, Value>, Error> {
        self.common.check(op, now)?;
        check_message_id(op, &self.transactional_message_id)?;
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
    fn push_body_has_every_field() {
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
    }
}
