//! Segment event names for Customer.io reporting events.

use customerio_client::webhook::{Metric, ObjectType};

/// The key the name tables use for an event: `<object_type>_<metric>`, e.g. `email_clicked`.
///
/// ```
/// use cio_segment_sync::customerio_client::webhook::{Metric, ObjectType};
/// use cio_segment_sync::mapping::to_segment::event_key;
///
/// assert_eq!(event_key(&ObjectType::Email, &Metric::from("clicked")), "email_clicked");
/// ```
pub fn event_key(object_type: &ObjectType, metric: &Metric) -> String {
    format!("{}_{}", object_type.as_str(), metric.as_str())
}

/// The default Segment name of the event `key` (see [`event_key`]), or `None` when the default
/// table has no entry for it. `unsubscribed` is the name `email_unsubscribed` and
/// `customer_unsubscribed` get (the Email spec says `Unsubscribed`; Customer.io's own Segment
/// integration says `Email Unsubscribed`). The table is in the [module docs](super).
pub fn default_event_name<'a>(key: &str, unsubscribed: &'a str) -> Option<&'a str> {
    Some(match key {
        "email_delivered" => "Email Delivered",
        "email_opened" => "Email Opened",
        "email_clicked" => "Email Link Clicked",
        "email_bounced" => "Email Bounced",
        "email_spammed" => "Email Marked as Spam",
        "email_unsubscribed" | "customer_unsubscribed" => unsubscribed,
        "push_delivered" => "Push Notification Received",
        "push_opened" => "Push Notification Tapped",
        "push_bounced" => "Push Notification Bounced",
        "sms_sent" => "SMS Sent",
        "sms_delivered" => "SMS Delivered",
        "sms_bounced" => "SMS Undelivered",
        "sms_failed" => "SMS Failed",
        "sms_clicked" => "SMS Link Clicked",
        "sms_replied" => "SMS Received",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table() {
        let cases = [
            ("email", "delivered", Some("Email Delivered")),
            ("email", "opened", Some("Email Opened")),
            ("email", "clicked", Some("Email Link Clicked")),
            ("email", "bounced", Some("Email Bounced")),
            ("email", "spammed", Some("Email Marked as Spam")),
            ("email", "unsubscribed", Some("Unsub")),
            ("customer", "unsubscribed", Some("Unsub")),
            ("email", "sent", None),
            ("customer", "subscribed", None),
            ("push", "delivered", Some("Push Notification Received")),
            ("push", "opened", Some("Push Notification Tapped")),
            ("push", "bounced", Some("Push Notification Bounced")),
            ("push", "clicked", None),
            ("sms", "sent", Some("SMS Sent")),
            ("sms", "delivered", Some("SMS Delivered")),
            ("sms", "bounced", Some("SMS Undelivered")),
            ("sms", "failed", Some("SMS Failed")),
            ("sms", "clicked", Some("SMS Link Clicked")),
            ("sms", "replied", Some("SMS Received")),
            ("in_app", "opened", None),
            ("slack", "delivered", None),
            ("email", "brand_new_metric", None),
        ];
        for (object_type, metric, expected) in cases {
            let key = event_key(&ObjectType::from(object_type), &Metric::from(metric));
            assert_eq!(key, format!("{object_type}_{metric}"));
            assert_eq!(default_event_name(&key, "Unsub"), expected, "{key}");
        }
    }
}
