//! The reverse mapping: a Customer.io reporting-webhook event → the Segment `track` message
//! that reports it, following Segment's semantic specs.
//!
//! Like the [forward mapping](super::to_customerio), everything here is pure: no I/O, no
//! clock, no state. The [engagement back-sync](crate::flows::engagement) chooses the event name
//! from its configured table, calls [`track`], then stamps the message with the loop guard and
//! delivers it.
//!
//! # Event names
//!
//! Names are looked up by [`event_key`], Customer.io's `<object_type>_<metric>`. The default
//! table ([`default_event_name`]):
//!
//! | key | Segment event | source of the name |
//! |---|---|---|
//! | `email_delivered` | `Email Delivered` | Email spec |
//! | `email_opened` | `Email Opened` | Email spec |
//! | `email_clicked` | `Email Link Clicked` | Email spec |
//! | `email_bounced` | `Email Bounced` | Email spec |
//! | `email_spammed` | `Email Marked as Spam` | Email spec |
//! | `email_unsubscribed`, `customer_unsubscribed` | configurable (the engagement flow's default is `Unsubscribed`) | Email spec; Customer.io's own Segment integration says `Email Unsubscribed` |
//! | `push_delivered` | `Push Notification Received` | Native Mobile spec |
//! | `push_opened` | `Push Notification Tapped` | Native Mobile spec |
//! | `push_bounced` | `Push Notification Bounced` | Native Mobile spec |
//! | `sms_sent` | `SMS Sent` | this crate (Segment has no SMS spec; Engage's names where one fits) |
//! | `sms_delivered` | `SMS Delivered` | this crate |
//! | `sms_bounced` | `SMS Undelivered` | this crate |
//! | `sms_failed` | `SMS Failed` | this crate |
//! | `sms_clicked` | `SMS Link Clicked` | this crate |
//! | `sms_replied` | `SMS Received` | this crate |
//!
//! Any other pair (email `sent`, push `clicked`, in-app, Slack, …) has no default name.
//!
//! # Identity
//!
//! `userId` is the person's Customer.io `id` (`data.identifiers.id`, else the deprecated
//! `data.customer_id`). Without one, [`WithoutUserId`] decides: the person's email as
//! `anonymousId` (default; what Customer.io's own Segment integration does) or a skip with
//! [`SkipReason::AnonymousNotAllowed`]. With neither an id nor an email the event is skipped
//! with [`SkipReason::NoIdentity`].
//!
//! # Properties and context
//!
//! See [`properties`] and [`context`]:
//!
//! - Email and customer events follow the Email spec ([`EmailProperties`](segment_model::spec::EmailProperties)):
//!   `email_id` = `delivery_id`; `email_subject` = `subject`; `campaign_id` = the campaign,
//!   broadcast, newsletter or transactional message id (as text); `campaign_name` = the
//!   campaign, broadcast or newsletter name when the payload has one; `link_id` and `link_url`
//!   (= `href`) on clicks. `context.traits.email` is the recipient (`data.recipient`, else the
//!   person's email).
//! - Push events follow the Native Mobile spec: a `campaign` object with `name` (when known)
//!   and `medium` = `Push`.
//! - Every channel other than email also carries `delivery_id`, `campaign_id`, `campaign_name`,
//!   `link_id` and `link_url` when known (there is no spec key for them), and
//!   `context.traits.email` is the person's email when known.
//! - A failure message (`data.failure_message`: bounces, failures) is `reason`, on every channel.
//!
//! # Timestamp and messageId
//!
//! `timestamp` is the webhook's `timestamp` (when the event happened). `messageId` is
//! [`message_id_for`]`(event_id)`, the UUID v5 of `event_id` under [`MESSAGE_ID_NAMESPACE`],
//! so a webhook that Customer.io retries becomes the same Segment message, which Segment
//! de-duplicates.
//!
//! # Example
//!
//! ```
//! use cio_segment_sync::customerio_client::webhook::ReportingEvent;
//! use cio_segment_sync::mapping::to_segment::{
//!     default_event_name, event_key, message_id_for, track, Translated, WithoutUserId,
//! };
//! use serde_json::json;
//!
//! let event = ReportingEvent::from_value(json!({
//!     "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": "email", "metric": "opened",
//!     "timestamp": 1717173000,
//!     "data": {"identifiers": {"id": "user-42"}, "delivery_id": "RPIL", "campaign_id": 5}
//! }))?;
//! let key = event_key(&event.object_type, &event.metric);
//! let name = default_event_name(&key, "Unsubscribed").expect("in the default table");
//! let Translated::Message(message) = track(&event, name, WithoutUserId::AnonymousEmail)? else {
//!     panic!("the event has a user id");
//! };
//! assert_eq!(serde_json::to_value(&message)?, json!({
//!     "type": "track", "event": "Email Opened", "userId": "user-42",
//!     "messageId": message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ"),
//!     "timestamp": "2024-05-31T16:30:00.000Z",
//!     "properties": {"email_id": "RPIL", "campaign_id": "5"}
//! }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ids;
mod names;
mod properties;

use customerio_client::webhook::ReportingEvent;
use segment_model::{Message, Timestamp};
use serde::{Deserialize, Serialize};

use crate::outcome::SkipReason;

pub use ids::{MESSAGE_ID_NAMESPACE, message_id_for};
pub use names::{default_event_name, event_key};
pub use properties::{context, properties};

/// What to do with an event about a person who has no Customer.io `id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WithoutUserId {
    /// Send it with the person's email as `anonymousId` (Customer.io's own Segment integration
    /// does this); skip it when there is no email either. The default.
    #[default]
    AnonymousEmail,
    /// Skip it ([`SkipReason::AnonymousNotAllowed`]).
    Skip,
}

/// What a reporting event maps to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Translated {
    /// Send this message (not stamped by the loop guard yet). Boxed: a message is large next
    /// to a skip.
    Message(Box<Message>),
    /// Send nothing.
    Skip(SkipReason),
}

/// A reporting event that cannot become a Segment event. Permanent: the same event fails the
/// same way every time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// `timestamp` is outside the range of instants Segment can carry.
    #[error("`timestamp` is out of range")]
    Timestamp,
    /// The Segment message was refused by its builder (e.g. a name or id over a limit).
    #[error("the Segment event could not be built")]
    Message(#[source] segment_model::Error),
}

/// The Segment `track` message named `name` that reports `event`, or why there is none
/// ([`Translated::Skip`] when the person cannot be identified under `without_user_id`). Pure.
/// See the [module docs](self) for the rules.
///
/// # Errors
///
/// [`TranslateError`] when the event's timestamp is out of range or the message cannot be
/// built.
pub fn track(
    event: &ReportingEvent,
    name: &str,
    without_user_id: WithoutUserId,
) -> Result<Translated, TranslateError> {
    let person = event.person_identifiers();
    let instant =
        jiff::Timestamp::from_second(event.timestamp).map_err(|_| TranslateError::Timestamp)?;
    let mut builder = Message::track(name)
        .message_id(message_id_for(&event.event_id))
        .timestamp(Timestamp::from_instant(instant));
    builder = match (person.id, person.email, without_user_id) {
        (Some(id), _, _) => builder.user_id(id),
        (None, Some(email), WithoutUserId::AnonymousEmail) => builder.anonymous_id(email),
        (None, Some(_), WithoutUserId::Skip) => {
            return Ok(Translated::Skip(SkipReason::AnonymousNotAllowed));
        }
        (None, None, _) => return Ok(Translated::Skip(SkipReason::NoIdentity)),
    };
    if let Some(context) = context(event) {
        builder = builder.context(context);
    }
    builder
        .properties(properties(event))
        .build()
        .map(|message| Translated::Message(Box::new(message)))
        .map_err(TranslateError::Message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const EVENT_ID: &str = "01E4C4CT6YDC7Y5M7FE1GWWPQJ";

    fn event(object_type: &str, metric: &str, data: Value) -> ReportingEvent {
        ReportingEvent::from_value(json!({
            "event_id": EVENT_ID, "object_type": object_type, "metric": metric,
            "timestamp": 1_717_173_000, "data": data
        }))
        .unwrap()
    }

    fn message_json(translated: Translated) -> Value {
        match translated {
            Translated::Message(message) => serde_json::to_value(&message).unwrap(),
            Translated::Skip(reason) => panic!("expected a message, got a skip: {reason}"),
        }
    }

    #[test]
    fn an_email_click_becomes_the_exact_email_spec_event() {
        let clicked = event(
            "email",
            "clicked",
            json!({
                "identifiers": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c1"},
                "customer_id": "user-42", "delivery_id": "RPIL", "campaign_id": 5,
                "campaign_name": "Trial ending", "action_id": 96,
                "recipient": "ada+news@example.com", "subject": "Your trial ends soon",
                "href": "https://example.com/upgrade", "link_id": 3, "machine": false
            }),
        );
        let out = track(&clicked, "Email Link Clicked", WithoutUserId::default()).unwrap();
        assert_eq!(
            message_json(out),
            json!({
                "type": "track", "event": "Email Link Clicked",
                "messageId": message_id_for(EVENT_ID), "userId": "user-42",
                "timestamp": "2024-05-31T16:30:00.000Z",
                "context": {"traits": {"email": "ada+news@example.com"}},
                "properties": {
                    "email_id": "RPIL", "email_subject": "Your trial ends soon",
                    "campaign_id": "5", "campaign_name": "Trial ending",
                    "link_id": "3", "link_url": "https://example.com/upgrade"
                }
            })
        );
    }

    #[test]
    fn an_sms_event_has_no_context_without_an_email() {
        let sms = event(
            "sms",
            "delivered",
            json!({"identifiers": {"id": "u-1"}, "delivery_id": "S1", "recipient": "+15550100"}),
        );
        assert_eq!(
            message_json(track(&sms, "SMS Delivered", WithoutUserId::default()).unwrap()),
            json!({
                "type": "track", "event": "SMS Delivered", "userId": "u-1",
                "messageId": message_id_for(EVENT_ID),
                "timestamp": "2024-05-31T16:30:00.000Z",
                "properties": {"delivery_id": "S1"}
            })
        );
    }

    #[test]
    fn the_deprecated_customer_id_is_the_user_id() {
        let opened = event("email", "opened", json!({"customer_id": "legacy-7"}));
        let out = message_json(track(&opened, "Email Opened", WithoutUserId::Skip).unwrap());
        assert_eq!(out["userId"], "legacy-7");
    }

    #[test]
    fn without_an_id_the_email_is_the_anonymous_id_or_the_event_is_skipped() {
        let data = json!({"identifiers": {"id": null, "email": "ada@example.com"}});
        let opened = event("email", "opened", data);
        let out =
            message_json(track(&opened, "Email Opened", WithoutUserId::AnonymousEmail).unwrap());
        assert_eq!(
            out,
            json!({
                "type": "track", "event": "Email Opened", "anonymousId": "ada@example.com",
                "messageId": message_id_for(EVENT_ID),
                "timestamp": "2024-05-31T16:30:00.000Z",
                "context": {"traits": {"email": "ada@example.com"}},
                "properties": {}
            })
        );
        assert_eq!(
            track(&opened, "Email Opened", WithoutUserId::Skip).unwrap(),
            Translated::Skip(SkipReason::AnonymousNotAllowed)
        );
        let nobody = event(
            "email",
            "opened",
            json!({"identifiers": {"id": "", "email": null}}),
        );
        assert_eq!(
            track(&nobody, "Email Opened", WithoutUserId::AnonymousEmail).unwrap(),
            Translated::Skip(SkipReason::NoIdentity)
        );
    }

    #[test]
    fn an_out_of_range_timestamp_is_a_typed_error() {
        let mut value = serde_json::to_value(event(
            "email",
            "opened",
            json!({"identifiers": {"id": "u"}}),
        ))
        .unwrap();
        value["timestamp"] = json!(i64::MAX);
        let event = ReportingEvent::from_value(value).unwrap();
        assert!(matches!(
            track(&event, "Email Opened", WithoutUserId::default()),
            Err(TranslateError::Timestamp)
        ));
    }

    #[test]
    fn a_name_the_message_builder_refuses_is_a_typed_error() {
        let opened = event("email", "opened", json!({"identifiers": {"id": "u"}}));
        assert!(matches!(
            track(&opened, "", WithoutUserId::default()),
            Err(TranslateError::Message(_))
        ));
    }
}
