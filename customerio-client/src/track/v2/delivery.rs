//! Delivery operations (`"type": "delivery"`): device-side metrics ([`DeliveryMetric`]) reported
//! with a [`DeliveryEvent`], and the [`DeliveryOperation`] enum.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{check_not_empty, check_timestamp};
use crate::error::Error;

string_enum! {
    /// A device-side delivery metric reported with a delivery `event`.
    pub enum DeliveryMetric {
        /// The message was opened.
        Opened => "opened",
        /// The person converted.
        Converted => "converted",
        /// The message reached the device.
        Delivered => "delivered",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeliveryIdentifiers {
    id: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeliveryAttributes {
    device_token: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeliveryEventFields {
    identifiers: DeliveryIdentifiers,
    name: DeliveryMetric,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    attributes: DeliveryAttributes,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Delivery `event`: report a device-side metric (`opened`, `converted`, `delivered`) for
    /// a delivery, as `{"identifiers": {"id": <delivery id>}, "name": <metric>,
    /// "attributes": {"device_token": …}}`.
    ///
    /// `timestamp` is not documented for delivery operations; it is sent only when set.
    pub struct DeliveryEvent(DeliveryEventFields);
}

impl DeliveryEvent {
    const OP: &'static str = "track.v2.delivery.event";

    /// Reports `metric` for the delivery `delivery_id` on the device `device_token`.
    pub fn new(
        delivery_id: impl Into<String>,
        metric: DeliveryMetric,
        device_token: impl Into<String>,
    ) -> Result<Self, Error> {
        let value = Self(DeliveryEventFields {
            identifiers: DeliveryIdentifiers {
                id: delivery_id.into(),
                extra: Map::new(),
            },
            name: metric,
            timestamp: None,
            attributes: DeliveryAttributes {
                device_token: device_token.into(),
                extra: Map::new(),
            },
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// When the metric happened (Unix seconds).
    pub fn with_timestamp(mut self, seconds: i64) -> Result<Self, Error> {
        check_timestamp(Self::OP, "timestamp", Some(seconds))?;
        self.0.timestamp = Some(seconds);
        Ok(self)
    }

    /// The delivery id (`CIO-Delivery-ID`).
    pub fn delivery_id(&self) -> &str {
        &self.0.identifiers.id
    }

    /// The metric.
    pub fn metric(&self) -> &DeliveryMetric {
        &self.0.name
    }

    /// The device token.
    pub fn device_token(&self) -> &str {
        &self.0.attributes.device_token
    }

    /// When the metric happened (Unix seconds).
    pub fn timestamp(&self) -> Option<i64> {
        self.0.timestamp
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        let f = &self.0;
        check_not_empty(Self::OP, "identifiers.id", &f.identifiers.id)?;
        check_not_empty(Self::OP, "name", f.name.as_str())?;
        check_not_empty(
            Self::OP,
            "attributes.device_token",
            &f.attributes.device_token,
        )?;
        check_timestamp(Self::OP, "timestamp", f.timestamp)
    }
}

/// The actions on a delivery (`"type": "delivery"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryOperation {
    /// Report a device-side metric.
    Event(DeliveryEvent),
}
