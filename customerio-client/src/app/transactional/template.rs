//! [`SendTemplate`]: a message with only the shared fields, for the in-app and inbox channels.

use serde::Serialize;
use serde_json::{Map, Value};

use super::common::{
    MessageCommon, TransactionalMessageId, check_message_id, check_payload_size, to_wire,
};
use crate::error::Error;
use crate::identifier::Identifier;

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
    fn template_body() {
        let in_app = SendTemplate::new(9, Identifier::id("u")).language("de");
        assert_eq!(
            Value::Object(in_app.wire(OP, NOW).unwrap()),
            json!({"transactional_message_id": 9, "identifiers": {"id": "u"}, "language": "de"})
        );
    }
}
