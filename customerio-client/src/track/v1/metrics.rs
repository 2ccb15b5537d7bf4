//! Delivery metrics for `POST /api/v1/metrics`: one enum per channel, [`DeliveryMetric`] over
//! them, and the [`DeliveryMetricReport`].

use serde::Serialize;
use serde::ser::Serializer;

use super::common::check_timestamp;
use crate::error::Error;

macro_rules! channel_metrics {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The wire value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }
    };
}

channel_metrics! {
    /// Metrics that can be reported for an email.
    EmailMetric {
        /// `bounced`
        Bounced => "bounced",
        /// `clicked`
        Clicked => "clicked",
        /// `converted`
        Converted => "converted",
        /// `deferred`
        Deferred => "deferred",
        /// `delivered`
        Delivered => "delivered",
        /// `dropped`
        Dropped => "dropped",
        /// `opened`
        Opened => "opened",
        /// `spammed`
        Spammed => "spammed",
    }
}

channel_metrics! {
    /// Metrics that can be reported for a push notification.
    PushMetric {
        /// `converted`
        Converted => "converted",
        /// `delivered`
        Delivered => "delivered",
        /// `opened`
        Opened => "opened",
    }
}

channel_metrics! {
    /// Metrics that can be reported for an in-app message.
    InAppMetric {
        /// `clicked`
        Clicked => "clicked",
        /// `converted`
        Converted => "converted",
        /// `opened`
        Opened => "opened",
    }
}

channel_metrics! {
    /// Metrics that can be reported for an SMS.
    SmsMetric {
        /// `bounced`
        Bounced => "bounced",
        /// `clicked`
        Clicked => "clicked",
        /// `delivered`
        Delivered => "delivered",
        /// `opened`
        Opened => "opened",
    }
}

channel_metrics! {
    /// Metrics that can be reported for a Slack message.
    SlackMetric {
        /// `clicked`
        Clicked => "clicked",
        /// `converted`
        Converted => "converted",
        /// `delivered`
        Delivered => "delivered",
        /// `opened`
        Opened => "opened",
    }
}

/// A delivery metric, typed per channel so only documented combinations can be built. The
/// channel itself is not sent: the delivery id already names the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryMetric {
    /// An email metric.
    Email(EmailMetric),
    /// A push metric.
    Push(PushMetric),
    /// An in-app message metric.
    InApp(InAppMetric),
    /// An SMS metric.
    Sms(SmsMetric),
    /// A Slack metric.
    Slack(SlackMetric),
    /// A metric this crate does not know yet, sent as written.
    Other(String),
}

impl DeliveryMetric {
    /// The wire value of `metric`.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryMetric::Email(m) => m.as_str(),
            DeliveryMetric::Push(m) => m.as_str(),
            DeliveryMetric::InApp(m) => m.as_str(),
            DeliveryMetric::Sms(m) => m.as_str(),
            DeliveryMetric::Slack(m) => m.as_str(),
            DeliveryMetric::Other(other) => other,
        }
    }
}

impl Serialize for DeliveryMetric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl From<EmailMetric> for DeliveryMetric {
    fn from(metric: EmailMetric) -> Self {
        DeliveryMetric::Email(metric)
    }
}

impl From<PushMetric> for DeliveryMetric {
    fn from(metric: PushMetric) -> Self {
        DeliveryMetric::Push(metric)
    }
}

impl From<InAppMetric> for DeliveryMetric {
    fn from(metric: InAppMetric) -> Self {
        DeliveryMetric::InApp(metric)
    }
}

impl From<SmsMetric> for DeliveryMetric {
    fn from(metric: SmsMetric) -> Self {
        DeliveryMetric::Sms(metric)
    }
}

impl From<SlackMetric> for DeliveryMetric {
    fn from(metric: SlackMetric) -> Self {
        DeliveryMetric::Slack(metric)
    }
}

/// A delivery metric report for [`TrackClient::report_metric`] (`POST /api/v1/metrics`).
///
/// ```
/// use customerio_client::track::v1::{DeliveryMetricReport, EmailMetric};
///
/// let report = DeliveryMetricReport::new("RPILAgUBcRhIBqSfeiIwdIYJKxTY", EmailMetric::Clicked, 1717173000)
///     .href("https://example.com/upgrade");
/// assert_eq!(
///     serde_json::to_value(&report)?,
///     serde_json::json!({"delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "metric": "clicked",
///                        "timestamp": 1717173000, "href": "https://example.com/upgrade"})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// [`TrackClient::report_metric`]: crate::TrackClient::report_metric
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryMetricReport {
    delivery_id: String,
    metric: DeliveryMetric,
    timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    href: Option<String>,
}

impl DeliveryMetricReport {
    /// A report that `metric` happened to the message `delivery_id` (the `CIO-Delivery-ID`
    /// Customer.io puts on messages) at `timestamp` (Unix seconds).
    pub fn new(
        delivery_id: impl Into<String>,
        metric: impl Into<DeliveryMetric>,
        timestamp: u64,
    ) -> Self {
        Self {
            delivery_id: delivery_id.into(),
            metric: metric.into(),
            timestamp,
            recipient: None,
            reason: None,
            href: None,
        }
    }

    /// Sets the recipient (address or number) the metric is about.
    pub fn recipient(mut self, recipient: impl Into<String>) -> Self {
        self.recipient = Some(recipient.into());
        self
    }

    /// Sets the reason (e.g. for a bounce or a drop).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the clicked link.
    pub fn href(mut self, href: impl Into<String>) -> Self {
        self.href = Some(href.into());
        self
    }

    pub(super) fn validate(&self, operation: &'static str) -> Result<(), Error> {
        if self.delivery_id.is_empty() {
            return Err(Error::invalid(operation, "delivery_id is empty"));
        }
        if self.metric.as_str().is_empty() {
            return Err(Error::invalid(operation, "metric is empty"));
        }
        check_timestamp(operation, "timestamp", self.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{OP, invalid_message};
    use super::*;
    use serde_json::json;

    #[test]
    fn metric_wire_values() {
        let cases: Vec<(DeliveryMetric, &str)> = vec![
            (EmailMetric::Bounced.into(), "bounced"),
            (EmailMetric::Deferred.into(), "deferred"),
            (EmailMetric::Spammed.into(), "spammed"),
            (EmailMetric::Dropped.into(), "dropped"),
            (PushMetric::Delivered.into(), "delivered"),
            (InAppMetric::Clicked.into(), "clicked"),
            (SmsMetric::Opened.into(), "opened"),
            (SlackMetric::Converted.into(), "converted"),
            (DeliveryMetric::Other("replied".into()), "replied"),
        ];
        for (metric, wire) in cases {
            assert_eq!(serde_json::to_value(&metric).unwrap(), json!(wire));
        }
        let no_id = DeliveryMetricReport::new("", EmailMetric::Opened, 1);
        assert!(invalid_message(no_id.validate(OP).unwrap_err()).contains("delivery_id is empty"));
    }
}
