//! Semantic spec names and property structs.

use segment_model::Message;
use segment_model::spec::{
    DeviceAction, EmailEvent, EmailProperties, EmailSpecEvent, LifecycleEvent, PushCampaign,
    PushEvent, PushProperties, UnknownEventName, recipient_context,
};
use serde_json::{Map, Value, json};

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("fixture is not an object: {other}"),
    }
}

#[test]
fn email_spec_names_are_exactly_the_six_of_the_spec() {
    let names: Vec<_> = EmailEvent::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "Email Bounced",
            "Email Delivered",
            "Email Link Clicked",
            "Email Marked as Spam",
            "Email Opened",
            "Unsubscribed",
        ]
    );
    for event in EmailEvent::ALL {
        assert_eq!(event.as_str().parse::<EmailEvent>(), Ok(*event));
        assert_eq!(event.to_string(), event.as_str());
    }
}

#[test]
fn the_customerio_unsubscribe_name_is_accepted_but_never_emitted() {
    assert_eq!(
        "Email Unsubscribed".parse::<EmailEvent>(),
        Ok(EmailEvent::Unsubscribed)
    );
    assert_eq!(EmailEvent::Unsubscribed.as_str(), "Unsubscribed");
}

#[test]
fn names_are_case_sensitive_and_unknown_names_are_errors() {
    assert_eq!(
        "email opened".parse::<EmailEvent>(),
        Err(UnknownEventName {
            family: "Email spec",
            name: "email opened".into()
        })
    );
    assert_eq!(EmailEvent::from_name("Email Clicked"), None);
    assert!("Push Notification Opened".parse::<PushEvent>().is_err());
    assert!(
        "Application Backgrounded"
            .parse::<LifecycleEvent>()
            .is_err()
    );
    let err = "Order Completed".parse::<LifecycleEvent>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a known lifecycle event name (15 characters, not shown)"
    );
}

#[test]
fn push_and_lifecycle_names() {
    let push: Vec<_> = PushEvent::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(
        push,
        [
            "Install Attributed",
            "Push Notification Received",
            "Push Notification Tapped",
            "Push Notification Bounced",
            "Deep Link Opened",
            "Deep Link Clicked",
        ]
    );
    let lifecycle: Vec<_> = LifecycleEvent::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(
        lifecycle,
        [
            "Application Installed",
            "Application Opened",
            "Application Uninstalled",
            "Device Created or Updated",
            "Device Deleted",
            "User Deleted",
            "User Suppressed",
            "User Unsuppressed",
            "Object Deleted",
            "Relationship Deleted",
            "Report Delivery Event",
            "Report Content Event",
        ]
    );
    for event in PushEvent::ALL {
        assert_eq!(event.as_str().parse::<PushEvent>(), Ok(*event));
    }
    for event in LifecycleEvent::ALL {
        assert_eq!(event.as_str().parse::<LifecycleEvent>(), Ok(*event));
    }
}

#[test]
fn device_actions() {
    use LifecycleEvent as L;
    let table = [
        (L::ApplicationInstalled, Some(DeviceAction::Upsert)),
        (L::ApplicationOpened, Some(DeviceAction::Upsert)),
        (L::DeviceCreatedOrUpdated, Some(DeviceAction::Upsert)),
        (L::ApplicationUninstalled, Some(DeviceAction::Delete)),
        (L::DeviceDeleted, Some(DeviceAction::Delete)),
        (L::UserDeleted, None),
        (L::UserSuppressed, None),
        (L::UserUnsuppressed, None),
        (L::ObjectDeleted, None),
        (L::RelationshipDeleted, None),
        (L::ReportDeliveryEvent, None),
        (L::ReportContentEvent, None),
    ];
    assert_eq!(table.len(), LifecycleEvent::ALL.len());
    for (event, action) in table {
        assert_eq!(event.device_action(), action, "{event}");
    }
}

#[test]
fn lifecycle_events_are_recognised_only_on_track_messages() {
    let track = Message::from_value(json!({
        "type": "track", "userId": "usr_1", "event": "Device Deleted",
        "context": {"device": {"token": "tok", "type": "ios"}}
    }))
    .expect("track");
    assert_eq!(
        LifecycleEvent::from_message(&track),
        Some(LifecycleEvent::DeviceDeleted)
    );
    let plain =
        Message::from_value(json!({"type": "track", "userId": "u", "event": "Invoice Paid"}))
            .expect("track");
    assert_eq!(LifecycleEvent::from_message(&plain), None);
    let screen =
        Message::from_value(json!({"type": "screen", "userId": "u", "name": "Application Opened"}))
            .expect("screen");
    assert_eq!(LifecycleEvent::from_message(&screen), None);
}

#[test]
fn enums_serialise_as_their_names() {
    assert_eq!(
        serde_json::to_value(EmailEvent::MarkedAsSpam).expect("json"),
        json!("Email Marked as Spam")
    );
    let parsed: Vec<LifecycleEvent> =
        serde_json::from_value(json!(["User Deleted", "Object Deleted"])).expect("names");
    assert_eq!(
        parsed,
        [LifecycleEvent::UserDeleted, LifecycleEvent::ObjectDeleted]
    );
    assert!(serde_json::from_value::<PushEvent>(json!("Nope")).is_err());
}

#[test]
fn email_properties_are_typed_and_lossless() {
    let raw = json!({
        "email_id": "dlv_7Hq2",
        "email_subject": null,
        "campaign_id": 311,
        "campaign_name": "Monthly Report",
        "link_url": "https://app.example.com/reports/may",
        "utm_source": "newsletter",
        "nested": {"a": [1, 2]}
    });
    let props: EmailProperties = serde_json::from_value(raw.clone()).expect("decode");
    assert_eq!(props.email_id.as_deref(), Some("dlv_7Hq2"));
    assert_eq!(props.campaign_name.as_deref(), Some("Monthly Report"));
    assert_eq!(props.email_subject, None, "null is not a string");
    assert_eq!(props.campaign_id, None, "a number is not a string");
    assert_eq!(props.extra["campaign_id"], json!(311));
    assert_eq!(props.extra["email_subject"], Value::Null);
    assert!(!props.extra.contains_key("email_id"));
    assert_eq!(serde_json::to_value(&props).expect("encode"), raw);
}

#[test]
fn a_set_field_wins_over_extra_and_is_written_once() {
    let props = EmailProperties {
        link_id: Some("4".into()),
        extra: obj(json!({"link_id": "stale"})),
        ..EmailProperties::default()
    };
    let text = serde_json::to_string(&props).expect("encode");
    assert_eq!(text, r#"{"link_id":"4"}"#);
}

#[test]
fn building_an_email_spec_track_gives_the_modern_form() {
    let message = EmailEvent::LinkClicked
        .track(EmailProperties {
            email_id: Some("dlv_7Hq2".into()),
            email_subject: Some("Your May report is ready".into()),
            campaign_id: Some("311".into()),
            campaign_name: Some("Monthly Report".into()),
            link_id: Some("4".into()),
            link_url: Some("https://app.example.com/reports/may".into()),
            ..EmailProperties::default()
        })
        .user_id("usr_48151623")
        .message_id("m-1")
        .context(recipient_context("lena.fischer@example.org"))
        .build()
        .expect("valid");
    assert_eq!(
        serde_json::to_value(&message).expect("encode"),
        json!({
            "type": "track",
            "messageId": "m-1",
            "userId": "usr_48151623",
            "event": "Email Link Clicked",
            "properties": {
                "email_id": "dlv_7Hq2",
                "email_subject": "Your May report is ready",
                "campaign_id": "311",
                "campaign_name": "Monthly Report",
                "link_id": "4",
                "link_url": "https://app.example.com/reports/may"
            },
            "context": {"traits": {"email": "lena.fischer@example.org"}}
        })
    );
}

#[test]
fn reading_email_spec_events_from_messages() {
    let message = Message::from_value(json!({
        "type": "track",
        "anonymousId": "lena.fischer@example.org",
        "event": "Email Unsubscribed",
        "properties": {"email_id": "dlv_1", "list_id": "news", "list_name": "News"},
        "context": {"traits": {"email": "lena.fischer@example.org"}}
    }))
    .expect("track");
    let parsed = EmailSpecEvent::from_message(&message).expect("email event");
    assert_eq!(parsed.event, EmailEvent::Unsubscribed);
    assert_eq!(parsed.properties.list_id.as_deref(), Some("news"));
    assert_eq!(parsed.properties.list_name.as_deref(), Some("News"));
    assert_eq!(
        parsed.recipient.as_deref(),
        Some("lena.fischer@example.org")
    );

    let bare =
        Message::from_value(json!({"type": "track", "userId": "u", "event": "Email Opened"}))
            .expect("track");
    let parsed = EmailSpecEvent::from_message(&bare).expect("email event");
    assert_eq!(parsed.properties, EmailProperties::default());
    assert_eq!(parsed.recipient, None);

    let other =
        Message::from_value(json!({"type": "track", "userId": "u", "event": "Order Completed"}))
            .expect("track");
    assert_eq!(EmailSpecEvent::from_message(&other), None);
    let identify =
        Message::from_value(json!({"type": "identify", "userId": "u"})).expect("identify");
    assert_eq!(EmailSpecEvent::from_message(&identify), None);
    assert_eq!(EmailEvent::from_message(&identify), None);
}

#[test]
fn push_properties_are_typed_and_lossless() {
    let raw = json!({
        "campaign": {"name": "Spring", "medium": "Push", "content": "20% off", "id": 7},
        "action": "Open",
        "badge": 3
    });
    let props: PushProperties = serde_json::from_value(raw.clone()).expect("decode");
    let campaign = props.campaign.clone().expect("campaign");
    assert_eq!(campaign.name.as_deref(), Some("Spring"));
    assert_eq!(campaign.medium.as_deref(), Some("Push"));
    assert_eq!(campaign.content.as_deref(), Some("20% off"));
    assert_eq!(campaign.source, None);
    assert_eq!(campaign.extra, obj(json!({"id": 7})));
    assert_eq!(props.action.as_deref(), Some("Open"));
    assert_eq!(serde_json::to_value(&props).expect("encode"), raw);

    let odd = json!({"campaign": "Spring", "action": 1});
    let props: PushProperties = serde_json::from_value(odd.clone()).expect("decode");
    assert_eq!(props.campaign, None);
    assert_eq!(props.action, None);
    assert_eq!(serde_json::to_value(&props).expect("encode"), odd);
}

#[test]
fn building_a_push_track() {
    let props = PushProperties {
        campaign: Some(PushCampaign {
            name: Some("Spring".into()),
            medium: Some("Push".into()),
            ..PushCampaign::default()
        }),
        action: Some("Open".into()),
        ..PushProperties::default()
    };
    let message = PushEvent::PushNotificationTapped
        .track(props)
        .user_id("u")
        .message_id("m")
        .build()
        .expect("valid");
    assert_eq!(
        serde_json::to_value(&message).expect("encode"),
        json!({
            "type": "track", "messageId": "m", "userId": "u",
            "event": "Push Notification Tapped",
            "properties": {"campaign": {"name": "Spring", "medium": "Push"}, "action": "Open"}
        })
    );
}

fn fixture(name: &str) -> Message {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    Message::from_str(&text).expect("fixture decodes")
}

#[test]
fn shared_email_fixtures_are_read() {
    let table = [
        (
            "track-email-link-clicked.json",
            EmailEvent::LinkClicked,
            "dlv_7Hq2",
            "lena.fischer@example.org",
        ),
        (
            "track-email-opened.json",
            EmailEvent::Opened,
            "dlv_7Hq2",
            "lena.fischer@example.org",
        ),
        (
            "track-email-unsubscribed-cio-source.json",
            EmailEvent::Unsubscribed,
            "dlv_99",
            "no-id-person@example.net",
        ),
        (
            "track-legacy-email-spec.json",
            EmailEvent::Bounced,
            "e1",
            "bounce@example.org",
        ),
    ];
    for (name, event, email_id, recipient) in table {
        let message = fixture(name);
        let parsed = EmailSpecEvent::from_message(&message).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(parsed.event, event, "{name}");
        assert_eq!(
            parsed.properties.email_id.as_deref(),
            Some(email_id),
            "{name}"
        );
        assert_eq!(parsed.recipient.as_deref(), Some(recipient), "{name}");
        assert!(parsed.properties.extra.is_empty(), "{name}");
        // The typed properties give back exactly the message's properties.
        let back: segment_model::Properties = parsed.properties.into();
        assert_eq!(Some(&back), message.properties(), "{name}");
    }
    assert_eq!(
        EmailSpecEvent::from_message(&fixture("track-basic.json")),
        None
    );
    assert_eq!(
        LifecycleEvent::from_message(&fixture("track-basic.json")),
        None
    );
}
