//! The send calls on [`AppClient`] (`POST /v1/send/{channel}`) and their answer,
//! [`TransactionalDelivery`].

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::now_unix;
use super::email::SendEmail;
use super::push::SendPush;
use super::sms::{SendSms, SendWhatsApp};
use super::template::SendTemplate;
use crate::app::AppClient;
use crate::error::Error;
use crate::http::Body;

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

    #[test]
    fn delivery_answer_keeps_unknown_fields_once() {
        let fixture = json!({"delivery_id": "RPIL", "queued_at": 1717172500, "recipient_count": 1});
        let delivery: TransactionalDelivery = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(delivery.queued_at, Some(1_717_172_500));
        assert_eq!(serde_json::to_value(&delivery).unwrap(), fixture);
        let text = serde_json::to_string(&delivery).unwrap();
        assert_eq!(text.matches("recipient_count").count(), 1);
    }
}
