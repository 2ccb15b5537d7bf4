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

// Where things are:
//   common.rs       TransactionalMessageId, MessageCommon, the shared builder methods
//                   (common_setters!) and the helpers that build and check a request body
//   email.rs        SendEmail, PlainBodyField and the email-only checks
//   attachments.rs  Attachments
//   push.rs         SendPush, CustomPushPayload
//   sms.rs          SendSms, SendWhatsApp
//   template.rs     SendTemplate (in-app and inbox)
//   send.rs         the AppClient::send_* calls and TransactionalDelivery

/// Most recipients of one email, counted across `to`, `cc` and `bcc`.
pub const MAX_EMAIL_RECIPIENTS: usize = 15;
/// Largest total size of an email's attachments (decoded bytes). The reference says "2 MB";
/// it is read as 2,000,000 bytes, which stays under the limit whichever unit the server uses.
pub const MAX_ATTACHMENTS_BYTES: usize = 2_000_000;
/// Largest request payload, attachments excluded ("1 MB", read as 1,000,000 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 1_000_000;
/// Furthest ahead `send_at` may be.
pub const MAX_SEND_AT_AHEAD_SECS: i64 = 90 * 24 * 60 * 60;

#[macro_use]
mod common;

mod attachments;
mod email;
mod push;
mod send;
mod sms;
mod template;

pub use attachments::Attachments;
pub use common::{MessageCommon, TransactionalMessageId};
pub use email::{PlainBodyField, SendEmail};
pub use push::{CustomPushPayload, SendPush};
pub use send::TransactionalDelivery;
pub use sms::{SendSms, SendWhatsApp};
pub use template::SendTemplate;
