//! The `properties` and `context` of a back-synced event.

use customerio_client::webhook::{
    EventData, Field, IdValue, MessageSource, ObjectType, ReportingEvent,
};
use segment_model::spec::{EmailProperties, PushCampaign, PushProperties};
use segment_model::{Context, Properties, Traits};
use serde_json::{Map, Value};

/// The event's `properties`: the Email spec's for email and customer events, the Native Mobile
/// spec's for push events, and the common set for every other channel. The rules are in the
/// [module docs](super).
pub fn properties(event: &ReportingEvent) -> Properties {
    match event.object_type {
        ObjectType::Email | ObjectType::Customer => email_properties(event),
        ObjectType::Push => push_properties(event),
        _ => Properties(common_properties(event)),
    }
}

/// The event's `context`: `traits.email` is the recipient of an email or customer event
/// (`data.recipient`, else the person's email) and the person's email on other channels (a
/// phone number or device token is not an email). `None` when there is no email.
pub fn context(event: &ReportingEvent) -> Option<Context> {
    let person = event.person_identifiers().email;
    let email = match event.object_type {
        ObjectType::Email | ObjectType::Customer => event.data.recipient.non_empty().or(person),
        _ => person,
    }?;
    let mut context = Context::default();
    context.traits = Some(Traits::new().with("email", email));
    Some(context)
}

fn text(field: &Field<String>) -> Option<String> {
    field.non_empty().map(str::to_owned)
}

fn id_text(field: &Field<IdValue>) -> Option<String> {
    field.get().map(IdValue::to_string)
}

/// The campaign, broadcast, newsletter or transactional message id, as text.
fn source_id(event: &ReportingEvent) -> Option<String> {
    event
        .message_source()
        .and_then(|source: MessageSource<'_>| source.id())
        .map(IdValue::to_string)
}

/// The campaign, broadcast or newsletter name.
fn source_name(data: &EventData) -> Option<String> {
    text(&data.campaign_name)
        .or_else(|| text(&data.broadcast_name))
        .or_else(|| text(&data.newsletter_name))
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), Value::String(value));
    }
}

fn email_properties(event: &ReportingEvent) -> Properties {
    let data = &event.data;
    let mut extra = Map::new();
    insert(&mut extra, "reason", text(&data.failure_message));
    EmailProperties {
        email_id: text(&data.delivery_id),
        email_subject: text(&data.subject),
        campaign_id: source_id(event),
        campaign_name: source_name(data),
        link_id: id_text(&data.link_id),
        link_url: text(&data.href),
        list_id: None,
        list_name: None,
        extra,
    }
    .into()
}

fn common_properties(event: &ReportingEvent) -> Map<String, Value> {
    let data = &event.data;
    let mut map = Map::new();
    insert(&mut map, "delivery_id", text(&data.delivery_id));
    insert(&mut map, "campaign_id", source_id(event));
    insert(&mut map, "campaign_name", source_name(data));
    insert(&mut map, "link_id", id_text(&data.link_id));
    insert(&mut map, "link_url", text(&data.href));
    insert(&mut map, "reason", text(&data.failure_message));
    map
}

fn push_properties(event: &ReportingEvent) -> Properties {
    PushProperties {
        campaign: Some(PushCampaign {
            name: source_name(&event.data),
            medium: Some("Push".to_owned()),
            ..PushCampaign::default()
        }),
        action: None,
        extra: common_properties(event),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(object_type: &str, metric: &str, data: Value) -> ReportingEvent {
        ReportingEvent::from_value(json!({
            "event_id": "E1", "object_type": object_type, "metric": metric,
            "timestamp": 1_717_173_000, "data": data
        }))
        .unwrap()
    }

    fn properties_json(event: &ReportingEvent) -> Value {
        serde_json::to_value(properties(event)).unwrap()
    }

    fn context_json(event: &ReportingEvent) -> Option<Value> {
        context(event).map(|context| serde_json::to_value(context).unwrap())
    }

    #[test]
    fn email_events_follow_the_email_spec() {
        let clicked = event(
            "email",
            "clicked",
            json!({
                "identifiers": {"id": "u-1", "email": "ada@example.com"},
                "delivery_id": "RPIL", "campaign_id": 5, "campaign_name": "Trial ending",
                "subject": "Your trial ends soon", "href": "https://example.com/upgrade",
                "link_id": 3, "recipient": "ada+news@example.com", "machine": false
            }),
        );
        assert_eq!(
            properties_json(&clicked),
            json!({
                "email_id": "RPIL", "email_subject": "Your trial ends soon",
                "campaign_id": "5", "campaign_name": "Trial ending",
                "link_id": "3", "link_url": "https://example.com/upgrade"
            })
        );
        assert_eq!(
            context_json(&clicked),
            Some(json!({"traits": {"email": "ada+news@example.com"}}))
        );
    }

    #[test]
    fn a_bounce_names_the_broadcast_and_the_reason() {
        let bounced = event(
            "email",
            "bounced",
            json!({
                "identifiers": {"id": "u-1"}, "delivery_id": "D1", "broadcast_id": 12,
                "broadcast_name": "Launch", "failure_message": "mailbox full"
            }),
        );
        assert_eq!(
            properties_json(&bounced),
            json!({
                "email_id": "D1", "campaign_id": "12", "campaign_name": "Launch",
                "reason": "mailbox full"
            })
        );
        assert_eq!(context_json(&bounced), None);
    }

    #[test]
    fn customer_events_use_the_email_spec_and_the_person_email() {
        let unsubscribed = event(
            "customer",
            "unsubscribed",
            json!({"identifiers": {"id": "u-1", "email": "ada@example.com"}}),
        );
        assert_eq!(properties_json(&unsubscribed), json!({}));
        assert_eq!(
            context_json(&unsubscribed),
            Some(json!({"traits": {"email": "ada@example.com"}}))
        );
    }

    #[test]
    fn push_events_carry_a_campaign_object_and_the_common_keys() {
        let opened = event(
            "push",
            "opened",
            json!({"identifiers": {"id": "u-1", "email": "a@b.co"}, "delivery_id": "P1",
                   "campaign_id": 7, "campaign_name": "Welcome",
                   "recipients": [{"device_id": "tok", "device_platform": "ios"}]}),
        );
        assert_eq!(
            properties_json(&opened),
            json!({
                "campaign": {"name": "Welcome", "medium": "Push"},
                "delivery_id": "P1", "campaign_id": "7", "campaign_name": "Welcome"
            })
        );
        assert_eq!(
            context_json(&opened),
            Some(json!({"traits": {"email": "a@b.co"}}))
        );
        // Without a name the campaign object still says the medium.
        let bounced = event(
            "push",
            "bounced",
            json!({"identifiers": {"id": "u-1"}, "failure_message": "token expired"}),
        );
        assert_eq!(
            properties_json(&bounced),
            json!({"campaign": {"medium": "Push"}, "reason": "token expired"})
        );
    }

    #[test]
    fn other_channels_carry_the_common_keys_and_never_a_phone_as_email() {
        let clicked = event(
            "sms",
            "clicked",
            json!({"identifiers": {"id": "u-1"}, "delivery_id": "S1", "newsletter_id": 4,
                   "newsletter_name": "Weekly", "recipient": "+15550100",
                   "href": "https://x.example", "link_id": 1}),
        );
        assert_eq!(
            properties_json(&clicked),
            json!({"delivery_id": "S1", "campaign_id": "4", "campaign_name": "Weekly",
                   "link_id": "1", "link_url": "https://x.example"})
        );
        assert_eq!(context_json(&clicked), None);

        let with_email = event(
            "sms",
            "failed",
            json!({"identifiers": {"id": "u-1", "email": "ada@example.com"},
                   "recipient": "+15550100", "failure_message": "carrier refused"}),
        );
        assert_eq!(
            properties_json(&with_email),
            json!({"reason": "carrier refused"})
        );
        assert_eq!(
            context_json(&with_email),
            Some(json!({"traits": {"email": "ada@example.com"}}))
        );
    }

    #[test]
    fn transactional_messages_are_the_campaign_and_blank_texts_are_absent() {
        let delivered = event(
            "email",
            "delivered",
            json!({"identifiers": {"id": "u-1"}, "transactional_message_id": 31,
                   "delivery_id": "", "subject": "", "recipient": ""}),
        );
        assert_eq!(properties_json(&delivered), json!({"campaign_id": "31"}));
        assert_eq!(context_json(&delivered), None);
    }
}
