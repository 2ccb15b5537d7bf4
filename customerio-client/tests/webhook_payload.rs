//! Reporting-webhook payload decoding: fixtures, round trips, accessors and typed errors.
//!
//! Fixtures live in `tests/fixtures/webhook/`, named `<object_type>.<metric>[.<note>].json`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use customerio_client::webhook::{
    EventData, Field, IdValue, Identifiers, JsonType, MessageSource, Metric, ObjectType,
    PayloadError, PersonIdentifiers, ReportingEvent,
};
use serde_json::{Value, json};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook")
}

/// Every fixture as (file stem, raw bytes), sorted by name.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let entries = match fs::read_dir(fixture_dir()) {
        Ok(entries) => entries,
        Err(err) => panic!("cannot read fixture dir: {err}"),
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|entry| match entry {
            Ok(entry) => entry.path(),
            Err(err) => panic!("cannot list fixture dir: {err}"),
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            match fs::read(&path) {
                Ok(bytes) => (stem, bytes),
                Err(err) => panic!("cannot read {}: {err}", path.display()),
            }
        })
        .collect();
    out.sort();
    out
}

fn fixture(stem: &str) -> ReportingEvent {
    let path = fixture_dir().join(format!("{stem}.json"));
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot read {}: {err}", path.display()),
    };
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> ReportingEvent {
    match ReportingEvent::from_slice(bytes) {
        Ok(event) => event,
        Err(err) => panic!("fixture did not parse: {err}"),
    }
}

fn to_value(event: &ReportingEvent) -> Value {
    match serde_json::to_value(event) {
        Ok(value) => value,
        Err(err) => panic!("serialisation failed: {err}"),
    }
}

fn parse_err(value: &Value) -> PayloadError {
    match ReportingEvent::from_slice(value.to_string().as_bytes()) {
        Ok(_) => panic!("expected an error for {value}"),
        Err(err) => err,
    }
}

/// A minimal valid event to mutate in error tests.
fn base() -> Value {
    json!({
        "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
        "object_type": "email",
        "metric": "opened",
        "timestamp": 1717173000,
        "data": {
            "identifiers": {"id": "user-42", "email": "ada@example.com"},
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "recipients": [
                {"device_id": "t1", "device_platform": "ios"},
                {"device_id": "t2", "device_platform": "android"}
            ],
            "campaign_tags": ["a", "b"]
        }
    })
}

// ------------------------------------------------------------------------------------------------
// Fixtures and round trips
// ------------------------------------------------------------------------------------------------

#[test]
fn fixture_set_covers_every_object_type_and_the_main_metrics() {
    let stems: Vec<String> = fixtures().into_iter().map(|(stem, _)| stem).collect();
    assert!(stems.len() >= 12, "only {} fixtures", stems.len());
    let has = |prefix: &str| stems.iter().any(|s| s.starts_with(prefix));
    for object_type in [
        "customer.",
        "email.",
        "push.",
        "in_app.",
        "sms.",
        "slack.",
        "webhook.",
        "whatsapp.",
    ] {
        assert!(has(object_type), "no fixture for {object_type}");
    }
    for metric in [
        "sent",
        "delivered",
        "opened",
        "clicked",
        "converted",
        "bounced",
        "spammed",
        "unsubscribed",
        "dropped",
        "failed",
        "undeliverable",
        "subscribed",
        "attempted",
        "drafted",
        "replied",
        "cio_subscription_preferences_changed",
    ] {
        assert!(
            stems.iter().any(|s| s.split('.').nth(1) == Some(metric)),
            "no fixture for metric {metric}"
        );
    }
}

#[test]
fn every_fixture_round_trips_exactly() {
    for (stem, bytes) in fixtures() {
        let original: Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(err) => panic!("{stem}: fixture is not JSON: {err}"),
        };
        let event = parse(&bytes);
        assert_eq!(
            to_value(&event),
            original,
            "{stem}: value changed in round trip"
        );

        // Serialising to bytes and decoding again gives the same typed event.
        let again = match serde_json::to_vec(&event) {
            Ok(bytes) => parse(&bytes),
            Err(err) => panic!("{stem}: {err}"),
        };
        assert_eq!(again, event, "{stem}: typed event changed in round trip");

        // serde's Deserialize agrees with from_slice.
        match serde_json::from_slice::<ReportingEvent>(&bytes) {
            Ok(via_serde) => assert_eq!(via_serde, event, "{stem}"),
            Err(err) => panic!("{stem}: serde path failed: {err}"),
        }
    }
}

#[test]
fn fixture_names_match_object_type_and_metric() {
    for (stem, bytes) in fixtures() {
        let event = parse(&bytes);
        let mut parts = stem.split('.');
        assert_eq!(parts.next(), Some(event.object_type.as_str()), "{stem}");
        assert_eq!(parts.next(), Some(event.metric.as_str()), "{stem}");
    }
}

#[test]
fn documented_keys_are_all_typed() {
    // Fixtures without "unknown" in their name use only keys from the reference, so nothing
    // may be left in any `extra` map: a typo in a field name would land there.
    for (stem, bytes) in fixtures() {
        if stem.contains("unknown") {
            continue;
        }
        let event = parse(&bytes);
        assert!(
            event.extra.is_empty(),
            "{stem}: top-level extra {:?}",
            event.extra
        );
        assert!(
            event.data.extra.is_empty(),
            "{stem}: data extra {:?}",
            event.data.extra
        );
        if let Some(ids) = event.data.identifiers.get() {
            assert!(
                ids.extra.is_empty(),
                "{stem}: identifiers extra {:?}",
                ids.extra
            );
        }
        for recipient in event.data.recipients.get().into_iter().flatten() {
            assert!(recipient.extra.is_empty(), "{stem}: recipient extra");
        }
        assert!(
            !matches!(event.object_type, ObjectType::Other(_)),
            "{stem}: object_type not recognised"
        );
        assert!(
            !matches!(event.metric, Metric::Other(_)),
            "{stem}: metric not recognised"
        );
    }
}

#[test]
fn unknown_keys_are_kept_at_every_level() {
    let event = fixture("email.opened.unknown_fields");
    assert_eq!(event.extra.get("schema_version"), Some(&json!(2)));
    assert_eq!(
        event.extra.get("delivered_via"),
        Some(&json!({"region": "eu", "pool": [1, 2.5, null]}))
    );
    assert_eq!(
        event.data.extra.get("open_source"),
        Some(&json!("apple_mpp"))
    );
    assert_eq!(event.data.extra.get("score"), Some(&json!(0.75)));
    assert_eq!(
        event.data.extra.get("nested"),
        Some(&json!({"a": [{"b": null}]}))
    );
    let ids = event.data.identifiers.get();
    assert_eq!(
        ids.and_then(|i| i.extra.get("external_ref")),
        Some(&json!({"crm": "A-1"}))
    );
    assert_eq!(ids.map(|i| &i.phone), Some(&Field::Null));
    // Known keys did not leak into `extra`.
    assert!(!event.data.extra.contains_key("subject"));
    assert!(!event.extra.contains_key("data"));

    let push = fixture("push.delivered.unknown_recipient_fields");
    let recipient = push.data.recipients.get().and_then(|r| r.first());
    assert_eq!(
        recipient.and_then(|r| r.extra.get("app_version")),
        Some(&json!("3.2.1"))
    );
    assert_eq!(recipient.map(|r| &r.failure_message), Some(&Field::Null));
}

#[test]
fn string_ids_stay_strings() {
    let event = fixture("email.opened.unknown_fields");
    assert_eq!(
        event.data.campaign_id,
        Field::Present(IdValue::Text("5".into()))
    );
    assert_eq!(
        event.data.campaign_id.get().and_then(IdValue::as_i64),
        Some(5)
    );
    let out = to_value(&event);
    assert_eq!(out["data"]["campaign_id"], json!("5"));
    assert_eq!(out["data"]["action_id"], json!("96"));

    let clicked = fixture("webhook.clicked");
    assert_eq!(
        clicked.data.link_id,
        Field::Present(IdValue::Text("4".into()))
    );
    let numeric = fixture("email.clicked");
    assert_eq!(numeric.data.link_id, Field::Present(IdValue::Int(3)));
    assert_eq!(to_value(&numeric)["data"]["link_id"], json!(3));
}

#[test]
fn unknown_object_type_and_metric_land_in_other_and_serialise_unchanged() {
    let event = fixture("carrier_pigeon.landed.unknown_type_and_metric");
    assert_eq!(
        event.object_type,
        ObjectType::Other("carrier_pigeon".into())
    );
    assert_eq!(event.metric, Metric::Other("landed".into()));
    let out = to_value(&event);
    assert_eq!(out["object_type"], json!("carrier_pigeon"));
    assert_eq!(out["metric"], json!("landed"));

    // Case matters: "Opened" is not "opened", and comes back as sent.
    let mut value = base();
    value["metric"] = json!("Opened");
    value["object_type"] = json!("EMAIL");
    let event = parse(value.to_string().as_bytes());
    assert_eq!(event.metric, Metric::Other("Opened".into()));
    assert_eq!(event.object_type, ObjectType::Other("EMAIL".into()));
    assert_eq!(to_value(&event), value);

    // A config-only name seen in older Customer.io settings.
    value["metric"] = json!("deferred");
    assert_eq!(
        parse(value.to_string().as_bytes()).metric,
        Metric::Other("deferred".into())
    );
}

#[test]
fn every_reference_value_has_a_variant_and_round_trips() {
    let object_types = [
        ("customer", ObjectType::Customer),
        ("email", ObjectType::Email),
        ("push", ObjectType::Push),
        ("in_app", ObjectType::InApp),
        ("sms", ObjectType::Sms),
        ("slack", ObjectType::Slack),
        ("webhook", ObjectType::Webhook),
        ("whatsapp", ObjectType::Whatsapp),
    ];
    for (wire, variant) in object_types {
        assert_eq!(ObjectType::from(wire), variant);
        assert_eq!(ObjectType::from(wire.to_owned()), variant);
        assert_eq!(variant.as_str(), wire);
        assert_eq!(variant.to_string(), wire);
        assert_eq!(serde_json::to_value(&variant).ok(), Some(json!(wire)));
    }
    let metrics = [
        ("drafted", Metric::Drafted),
        ("attempted", Metric::Attempted),
        ("sent", Metric::Sent),
        ("delivered", Metric::Delivered),
        ("opened", Metric::Opened),
        ("clicked", Metric::Clicked),
        ("converted", Metric::Converted),
        ("unsubscribed", Metric::Unsubscribed),
        ("subscribed", Metric::Subscribed),
        (
            "cio_subscription_preferences_changed",
            Metric::SubscriptionPreferencesChanged,
        ),
        ("bounced", Metric::Bounced),
        ("dropped", Metric::Dropped),
        ("spammed", Metric::Spammed),
        ("failed", Metric::Failed),
        ("undeliverable", Metric::Undeliverable),
        ("replied", Metric::Replied),
    ];
    for (wire, variant) in metrics {
        assert_eq!(Metric::from(wire), variant);
        assert_eq!(Metric::from(wire.to_owned()), variant);
        assert_eq!(variant.as_str(), wire);
        assert_eq!(
            serde_json::from_value::<Metric>(json!(wire)).ok(),
            Some(variant)
        );
    }
    assert_eq!(
        serde_json::to_value(Metric::Other("landed".into())).ok(),
        Some(json!("landed"))
    );
}

#[test]
fn absent_and_null_are_kept_apart() {
    let failed = fixture("email.failed");
    assert_eq!(failed.data.subject, Field::Null);
    assert!(failed.data.subject.is_null());
    assert_eq!(failed.data.subject.get(), None);
    assert!(failed.data.href.is_absent());
    let out = to_value(&failed);
    assert_eq!(out["data"]["subject"], Value::Null);
    assert!(out["data"].get("subject").is_some());
    assert!(out["data"].get("href").is_none());

    let spammed = fixture("email.spammed");
    assert!(spammed.data.campaign_id.is_null());
}

#[test]
fn keys_are_never_written_twice() {
    // Extra maps holding a modelled key name (only possible when built by hand) must not
    // produce a second copy of that key: the typed field wins.
    let mut data = EventData::default();
    data.subject = Field::Present("typed".into());
    data.extra.insert("subject".into(), json!("from extra"));
    data.extra.insert("identifiers".into(), json!({}));
    data.extra.insert("kept".into(), json!(1));
    let mut event = ReportingEvent::new("01AB", ObjectType::Email, Metric::Sent, 1, data);
    event.extra.insert("event_id".into(), json!("other"));
    event.extra.insert("data".into(), json!(null));
    event.extra.insert("top".into(), json!(true));

    let text = match serde_json::to_string(&event) {
        Ok(text) => text,
        Err(err) => panic!("{err}"),
    };
    for key in [
        "\"subject\"",
        "\"event_id\"",
        "\"data\"",
        "\"kept\"",
        "\"top\"",
    ] {
        assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
    }
    assert!(!text.contains("identifiers"), "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).ok(),
        Some(json!({
            "event_id": "01AB",
            "object_type": "email",
            "metric": "sent",
            "timestamp": 1,
            "data": {"subject": "typed", "kept": 1},
            "top": true
        }))
    );
}

#[test]
fn built_events_serialise_to_the_documented_shape() {
    let mut ids = Identifiers::default();
    ids.id = Field::Present("user-42".into());
    ids.email = Field::Null;
    let mut data = EventData::default();
    data.identifiers = Field::Present(ids);
    data.delivery_id = Field::Present("RPIL".into());
    data.campaign_id = Field::Present(IdValue::from(5));
    data.link_id = Field::from(IdValue::from("3"));
    data.machine = Field::Present(false);
    let event = ReportingEvent::new(
        "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
        ObjectType::Email,
        Metric::Clicked,
        1717173000,
        data,
    );
    assert_eq!(
        to_value(&event),
        json!({
            "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
            "object_type": "email",
            "metric": "clicked",
            "timestamp": 1717173000,
            "data": {
                "identifiers": {"id": "user-42", "email": null},
                "delivery_id": "RPIL",
                "campaign_id": 5,
                "link_id": "3",
                "machine": false
            }
        })
    );
}

// ------------------------------------------------------------------------------------------------
// Accessors
// ------------------------------------------------------------------------------------------------

#[test]
fn fields_of_each_channel_are_typed() {
    let sent = fixture("email.sent");
    assert_eq!(
        sent.data.subject.get().map(String::as_str),
        Some("Your trial ends soon")
    );
    assert_eq!(sent.data.parent_action_id.get(), Some(&IdValue::Int(95)));
    assert_eq!(sent.data.template_id.get(), Some(&IdValue::Int(310)));
    assert_eq!(
        sent.data.campaign_tags.get().map(Vec::as_slice),
        Some(["lifecycle".to_owned(), "trial".to_owned()].as_slice())
    );
    assert_eq!(
        sent.data.headers.get().and_then(|h| h.get("X-Mailer")),
        Some(&json!("Customer.io"))
    );

    let opened = fixture("email.opened");
    assert_eq!(opened.data.proxied.get(), Some(&true));
    assert_eq!(opened.data.prefetched.get(), Some(&false));
    assert_eq!(opened.data.content_id.get(), Some(&IdValue::Int(2)));

    let bounced = fixture("email.bounced");
    assert_eq!(
        bounced.data.failure_message.non_empty(),
        Some("550 5.1.1 mailbox does not exist")
    );

    let push = fixture("push.bounced");
    let recipients = push
        .data
        .recipients
        .get()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(recipients.len(), 1);
    assert_eq!(recipients[0].device_platform.non_empty(), Some("ios"));
    assert_eq!(
        recipients[0].failure_message.non_empty(),
        Some("BadDeviceToken")
    );

    let delivered = fixture("push.delivered");
    assert_eq!(
        delivered.data.app_id.get(),
        Some(&IdValue::Text("app-7".into()))
    );
    assert_eq!(
        delivered.data.related_delivery_ids.get().map(Vec::len),
        Some(1)
    );

    let in_app = fixture("in_app.clicked");
    assert_eq!(
        in_app.data.tracked_response.non_empty(),
        Some("Take the tour")
    );

    let replied = fixture("sms.replied");
    assert_eq!(replied.data.to.non_empty(), Some("+15555550100"));
    assert_eq!(
        replied.data.inbound_event_id.non_empty(),
        Some("01HX0A1B2C3D4E5F6G7H8J9KZZ")
    );
    assert_eq!(replied.person_identifiers().phone, Some("+15555550142"));

    let prefs = fixture("customer.cio_subscription_preferences_changed");
    let content: Option<Value> = prefs
        .data
        .content
        .get()
        .and_then(|c| serde_json::from_str(c).ok());
    assert_eq!(
        content,
        Some(json!({"topics": {"topic_1": true, "topic_3": false}}))
    );
}

#[test]
fn person_identifiers_prefer_identifiers_and_fall_back() {
    let clicked = fixture("email.clicked");
    let ids = clicked.person_identifiers();
    assert_eq!(ids.id, Some("user-42"));
    assert_eq!(ids.email, Some("ada@example.com"));
    assert_eq!(ids.cio_id, Some("d9c106000001"));
    assert_eq!(ids.phone, None);

    // id is null in identifiers and customer_id is blank: no id, but the email remains.
    let dropped = fixture("email.dropped");
    let ids = dropped.person_identifiers();
    assert_eq!(ids.id, None);
    assert_eq!(ids.email, Some("suppressed@example.com"));

    // No identifiers object at all: the deprecated keys are used.
    let legacy = fixture("customer.subscribed.legacy_no_identifiers");
    let ids = legacy.person_identifiers();
    assert_eq!(ids.id, Some("legacy-9"));
    assert_eq!(ids.email, Some("old@example.com"));

    // Deleted person: nothing to go on.
    let deleted = fixture("customer.unsubscribed.deleted_person");
    assert!(deleted.person_identifiers().is_empty());
    assert_eq!(deleted.person_identifiers(), PersonIdentifiers::default());

    // The message recipient is never taken for the person's email.
    let mut value = base();
    value["data"] =
        json!({"identifiers": {"id": "u1", "email": ""}, "recipient": "other@example.com"});
    let event = parse(value.to_string().as_bytes());
    assert_eq!(event.person_identifiers().id, Some("u1"));
    assert_eq!(event.person_identifiers().email, None);
}

#[test]
fn engagement_is_a_recipient_action_on_a_message() {
    let cases = [
        ("email.opened", true),
        ("email.clicked", true),
        ("email.converted", true),
        ("email.spammed", true),
        ("email.unsubscribed", true),
        ("sms.replied", true),
        ("push.clicked", true),
        ("whatsapp.opened", true),
        ("email.sent", false),
        ("email.delivered", false),
        ("email.bounced", false),
        ("email.dropped", false),
        ("email.failed", false),
        ("email.undeliverable", false),
        ("push.delivered", false),
        ("customer.subscribed", false),
        ("customer.unsubscribed", false),
        ("customer.cio_subscription_preferences_changed", false),
        ("carrier_pigeon.landed.unknown_type_and_metric", false),
    ];
    for (stem, expected) in cases {
        assert_eq!(fixture(stem).is_engagement(), expected, "{stem}");
    }
    // An unknown channel with a known engagement metric counts.
    let mut value = base();
    value["object_type"] = json!("carrier_pigeon");
    value["metric"] = json!("clicked");
    assert!(parse(value.to_string().as_bytes()).is_engagement());
}

#[test]
fn delivery_id_and_occurred_at() {
    let clicked = fixture("email.clicked");
    assert_eq!(clicked.delivery_id(), Some("RPILAgUBcRhIBqSfeiIwdIYJKxTY"));
    assert_eq!(
        clicked.occurred_at(),
        Some(UNIX_EPOCH + Duration::from_secs(1_717_173_000))
    );
    assert_eq!(fixture("customer.subscribed").delivery_id(), None);

    let mut value = base();
    value["timestamp"] = json!(-86_400);
    value["data"]["delivery_id"] = json!("");
    let event = parse(value.to_string().as_bytes());
    assert_eq!(event.delivery_id(), None);
    // Platforms whose SystemTime cannot go before 1970 give None instead of panicking.
    if let Some(at) = event.occurred_at() {
        assert_eq!(at, UNIX_EPOCH - Duration::from_secs(86_400));
    }
    value["timestamp"] = json!(i64::MIN);
    let _ = parse(value.to_string().as_bytes()).occurred_at();
    value["timestamp"] = json!(i64::MAX);
    let _ = parse(value.to_string().as_bytes()).occurred_at();
}

#[test]
fn message_source_follows_the_send_kind() {
    let int = |n| Some(IdValue::Int(n));
    let source_id = |stem: &str| fixture(stem).message_source().and_then(|s| s.id().cloned());

    assert!(matches!(
        fixture("email.clicked").message_source(),
        Some(MessageSource::Campaign(Some(IdValue::Int(5))))
    ));
    assert!(matches!(
        fixture("email.delivered").message_source(),
        Some(MessageSource::Broadcast(Some(IdValue::Int(12))))
    ));
    assert!(matches!(
        fixture("email.opened").message_source(),
        Some(MessageSource::Newsletter(Some(IdValue::Int(7))))
    ));
    assert!(matches!(
        fixture("email.converted").message_source(),
        Some(MessageSource::Transactional(Some(IdValue::Int(44))))
    ));
    assert_eq!(source_id("push.bounced"), int(45));
    // Present but null still tells the kind.
    assert_eq!(
        fixture("email.spammed").message_source(),
        Some(MessageSource::Campaign(None))
    );
    assert_eq!(
        fixture("email.undeliverable").message_source(),
        Some(MessageSource::Newsletter(None))
    );
    assert_eq!(fixture("customer.subscribed").message_source(), None);
    assert_eq!(
        fixture("email.opened.unknown_fields")
            .message_source()
            .and_then(|s| s.id())
            .map(ToString::to_string),
        Some("5".to_owned())
    );
}

// ------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------

fn assert_wrong_type(err: &PayloadError, path: &str, expected: &str, found: JsonType) {
    match err {
        PayloadError::WrongType {
            path: p,
            expected: e,
            found: f,
        } => {
            assert_eq!(p, path);
            assert_eq!(*e, expected);
            assert_eq!(*f, found);
        }
        other => panic!("expected WrongType at {path}, got {other:?}"),
    }
    assert_eq!(err.path(), Some(path));
    let text = err.to_string();
    assert!(text.contains(path), "{text}");
}

#[test]
fn missing_required_keys_are_named() {
    for key in ["event_id", "object_type", "metric", "timestamp", "data"] {
        let mut value = base();
        if let Some(map) = value.as_object_mut() {
            map.remove(key);
        }
        let err = parse_err(&value);
        let path = format!("$.{key}");
        assert!(
            matches!(&err, PayloadError::MissingField { path: p } if *p == path),
            "{key}: {err:?}"
        );
        assert_eq!(err.to_string(), format!("`{path}` is required but missing"));
    }
}

#[test]
fn empty_identifying_strings_are_rejected() {
    for key in ["event_id", "object_type", "metric"] {
        let mut value = base();
        value[key] = json!("");
        let err = parse_err(&value);
        let path = format!("$.{key}");
        assert!(
            matches!(&err, PayloadError::EmptyField { path: p } if *p == path),
            "{key}: {err:?}"
        );
    }
}

#[test]
fn wrong_types_are_named_by_path() {
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, &str, JsonType, Mutation)> = vec![
        (
            "$.event_id",
            "a string",
            JsonType::Integer,
            Box::new(|v| v["event_id"] = json!(42)),
        ),
        (
            "$.event_id",
            "a string",
            JsonType::Null,
            Box::new(|v| v["event_id"] = json!(null)),
        ),
        (
            "$.metric",
            "a string",
            JsonType::Bool,
            Box::new(|v| v["metric"] = json!(true)),
        ),
        (
            "$.timestamp",
            "an integer",
            JsonType::String,
            Box::new(|v| v["timestamp"] = json!("1717173000")),
        ),
        (
            "$.timestamp",
            "an integer",
            JsonType::Number,
            Box::new(|v| v["timestamp"] = json!(1717173000.5)),
        ),
        (
            "$.timestamp",
            "an integer",
            JsonType::Number,
            Box::new(|v| v["timestamp"] = json!(u64::MAX)),
        ),
        (
            "$.data",
            "an object",
            JsonType::Array,
            Box::new(|v| v["data"] = json!([])),
        ),
        (
            "$.data",
            "an object",
            JsonType::Null,
            Box::new(|v| v["data"] = json!(null)),
        ),
        (
            "$.data.identifiers",
            "an object",
            JsonType::String,
            Box::new(|v| v["data"]["identifiers"] = json!("x")),
        ),
        (
            "$.data.identifiers.email",
            "a string",
            JsonType::Integer,
            Box::new(|v| v["data"]["identifiers"]["email"] = json!(7)),
        ),
        (
            "$.data.campaign_id",
            "an integer or a string",
            JsonType::Bool,
            Box::new(|v| v["data"]["campaign_id"] = json!(true)),
        ),
        (
            "$.data.campaign_id",
            "an integer or a string",
            JsonType::Number,
            Box::new(|v| v["data"]["campaign_id"] = json!(5.5)),
        ),
        (
            "$.data.machine",
            "a boolean",
            JsonType::String,
            Box::new(|v| v["data"]["machine"] = json!("false")),
        ),
        (
            "$.data.recipients",
            "an array",
            JsonType::Object,
            Box::new(|v| v["data"]["recipients"] = json!({})),
        ),
        (
            "$.data.recipients[1]",
            "an object",
            JsonType::Integer,
            Box::new(|v| v["data"]["recipients"][1] = json!(3)),
        ),
        (
            "$.data.recipients[1].device_id",
            "a string",
            JsonType::Bool,
            Box::new(|v| v["data"]["recipients"][1]["device_id"] = json!(false)),
        ),
        (
            "$.data.campaign_tags[1]",
            "a string",
            JsonType::Integer,
            Box::new(|v| v["data"]["campaign_tags"][1] = json!(2)),
        ),
        (
            "$.data.subject",
            "a string",
            JsonType::Object,
            Box::new(|v| v["data"]["subject"] = json!({"a": 1})),
        ),
    ];
    for (path, expected, found, mutate) in cases {
        let mut value = base();
        mutate(&mut value);
        let err = parse_err(&value);
        assert_wrong_type(&err, path, expected, found);
    }
}

#[test]
fn top_level_must_be_one_object() {
    // One event per request: an array of events is not accepted.
    let array = json!([base()]);
    assert_wrong_type(&parse_err(&array), "$", "an object", JsonType::Array);
    assert_wrong_type(
        &parse_err(&json!("event")),
        "$",
        "an object",
        JsonType::String,
    );
}

#[test]
fn syntax_errors_report_position() {
    for (body, line, column) in [
        (b"".as_slice(), 1, 0),
        (b"{\"event_id\": }", 1, 14),
        (b"{\n  \"a\": 1,\n}", 3, 1),
        (b"{} trailing", 1, 4),
    ] {
        match ReportingEvent::from_slice(body) {
            Err(PayloadError::Syntax {
                line: l, column: c, ..
            }) => assert_eq!(
                (l, c),
                (line, column),
                "{:?}",
                String::from_utf8_lossy(body)
            ),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
    let err = ReportingEvent::from_slice(b"not json").err();
    assert_eq!(err.as_ref().and_then(PayloadError::path), None);
    assert!(err.is_some_and(|e| std::error::Error::source(&e).is_some()));
}

#[test]
fn errors_never_echo_values() {
    let mut value = base();
    value["data"]["identifiers"]["email"] = json!(["ada@example.com"]);
    let err = parse_err(&value);
    let text = format!("{err} {err:?}");
    assert!(!text.contains("ada@example.com"), "{text}");
    assert!(text.contains("$.data.identifiers.email"), "{text}");

    let mut value = base();
    value["timestamp"] = json!("user-42-secret-ish");
    let text = parse_err(&value).to_string();
    assert!(!text.contains("user-42"), "{text}");
}

#[test]
fn serde_deserialize_reports_the_path_too() {
    let mut value = base();
    value["data"]["recipients"][0]["device_platform"] = json!(1);
    match serde_json::from_value::<ReportingEvent>(value) {
        Ok(_) => panic!("accepted a numeric device_platform"),
        Err(err) => assert!(
            err.to_string()
                .contains("$.data.recipients[0].device_platform"),
            "{err}"
        ),
    }
}
