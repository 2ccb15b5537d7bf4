//! Events, page views and screen views: [`Event`] and its [`EventType`], and the body of an
//! anonymous event.

use serde::Serialize;
use serde::ser::Serializer;
use serde_json::{Map, Value};
use ulid::Ulid;

use super::common::check_timestamp;
use crate::error::Error;
use crate::limits;
use crate::retry::Idempotency;

/// The `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A custom event. Sent without a `type` key (the server's default).
    #[default]
    Event,
    /// A page view; the event name is the URL or path.
    Page,
    /// A mobile screen view; the event name is the screen's name.
    Screen,
}

impl EventType {
    fn is_event(&self) -> bool {
        matches!(self, EventType::Event)
    }
}

/// An event for [`TrackClient::track`] (a person) or [`TrackClient::track_anonymous`].
///
/// Give it an [`id`](Event::id) (a ULID) whenever the event may be sent more than once:
/// Customer.io ignores an id it has already received, which makes retries safe.
///
/// ```
/// use customerio_client::track::v1::Event;
///
/// let page = Event::page("https://shop.example.com/pricing").property("referrer", "https://google.com");
/// assert_eq!(
///     serde_json::to_value(&page)?,
///     serde_json::json!({"type": "page", "name": "https://shop.example.com/pricing",
///                        "data": {"referrer": "https://google.com"}})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// [`TrackClient::track`]: crate::TrackClient::track
/// [`TrackClient::track_anonymous`]: crate::TrackClient::track_anonymous
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    name: String,
    #[serde(rename = "type", skip_serializing_if = "EventType::is_event")]
    kind: EventType,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_ulid"
    )]
    id: Option<Ulid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<u64>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    data: Map<String, Value>,
}

fn serialize_ulid<S: Serializer>(id: &Option<Ulid>, serializer: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serializer.collect_str(id),
        None => serializer.serialize_none(),
    }
}

impl Event {
    /// A custom event named `name` (at most 100 bytes).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: EventType::Event,
            id: None,
            timestamp: None,
            data: Map::new(),
        }
    }

    /// A page view of `url` (the URL or path is the event name).
    pub fn page(url: impl Into<String>) -> Self {
        Self {
            kind: EventType::Page,
            ..Self::new(url)
        }
    }

    /// A view of the mobile screen `name`.
    pub fn screen(name: impl Into<String>) -> Self {
        Self {
            kind: EventType::Screen,
            ..Self::new(name)
        }
    }

    /// Sets the de-duplication id. Customer.io ignores an event whose id it has already seen.
    pub fn id(mut self, id: Ulid) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets when the event happened (Unix seconds; defaults to the time of receipt). Only
    /// events from the last 72 hours can trigger campaigns.
    pub fn timestamp(mut self, seconds: u64) -> Self {
        self.timestamp = Some(seconds);
        self
    }

    /// Replaces the event's `data` (its properties, at most 100,000 bytes serialised).
    pub fn data(mut self, data: Map<String, Value>) -> Self {
        self.data = data;
        self
    }

    /// Sets one property in `data`. The keys `recipient`, `from_address` and `reply_to`
    /// override the settings of messages the event triggers.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(name.into(), value.into());
        self
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.kind
    }

    /// The de-duplication id, if set.
    pub fn dedupe_id(&self) -> Option<Ulid> {
        self.id
    }

    /// How safe a resend of this event is: [`Idempotency::DedupeId`] with an id,
    /// [`Idempotency::NotIdempotent`] without.
    pub fn idempotency(&self) -> Idempotency {
        if self.id.is_some() {
            Idempotency::DedupeId
        } else {
            Idempotency::NotIdempotent
        }
    }

    pub(super) fn validate(&self, operation: &'static str) -> Result<(), Error> {
        limits::check_event_name(operation, &self.name)?;
        limits::check_event_data(operation, &self.data)?;
        if let Some(seconds) = self.timestamp {
            check_timestamp(operation, "timestamp", seconds)?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
pub(super) struct AnonymousEventBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) anonymous_id: Option<&'a str>,
    #[serde(flatten)]
    pub(super) event: &'a Event,
}

#[cfg(test)]
mod tests {
    use super::super::common::TIMESTAMP_SECONDS_LIMIT;
    use super::super::common::test_support::{OP, invalid_message};
    use super::*;
    use serde_json::json;

    #[test]
    fn event_serialises_type_id_and_timestamp() {
        let id: Ulid = "01J0ZQ4N7S8K3M2B9TVW5XY6AB".parse().unwrap();
        let event = Event::new("order_completed")
            .id(id)
            .timestamp(1_717_172_000)
            .property("total", 129.5);
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"name": "order_completed", "id": "01J0ZQ4N7S8K3M2B9TVW5XY6AB",
                   "timestamp": 1_717_172_000, "data": {"total": 129.5}})
        );
        assert_eq!(event.idempotency(), Idempotency::DedupeId);
        assert_eq!(Event::new("x").idempotency(), Idempotency::NotIdempotent);
        assert_eq!(
            serde_json::to_value(Event::screen("Checkout")).unwrap(),
            json!({"name": "Checkout", "type": "screen"})
        );
        let anonymous = AnonymousEventBody {
            anonymous_id: Some("anon-7f3c"),
            event: &Event::screen("Checkout").timestamp(1_717_172_100),
        };
        assert_eq!(
            serde_json::to_value(&anonymous).unwrap(),
            json!({"anonymous_id": "anon-7f3c", "type": "screen", "name": "Checkout", "timestamp": 1_717_172_100})
        );
    }

    #[test]
    fn event_limits() {
        assert!(Event::new("e".repeat(100)).validate(OP).is_ok());
        assert!(
            invalid_message(Event::new("e".repeat(101)).validate(OP).unwrap_err())
                .contains("101 bytes")
        );
        assert!(Event::new(" ").validate(OP).is_err());
        let big = Event::new("e").property("blob", "x".repeat(100_000));
        assert!(invalid_message(big.validate(OP).unwrap_err()).contains("event data is"));
        let ms = Event::new("e").timestamp(1_717_172_000_000);
        assert!(
            invalid_message(ms.validate(OP).unwrap_err()).contains("timestamp is not Unix seconds")
        );
        assert!(
            Event::new("e")
                .timestamp(TIMESTAMP_SECONDS_LIMIT - 1)
                .validate(OP)
                .is_ok()
        );
    }
}
