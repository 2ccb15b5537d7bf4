//! Engage audience membership, from both the identify and the track form.

use segment_model::audience::{
    AudienceChange, AudienceError, AudienceForm, AudienceOptions, ComputationClass, Membership,
};
use segment_model::error::JsonType;
use segment_model::{Id, Message, Timestamp};
use serde_json::{Value, json};

fn msg(value: Value) -> Message {
    Message::from_value(value).expect("fixture decodes")
}

fn change(value: Value) -> AudienceChange {
    AudienceChange::from_message(&msg(value))
        .expect("no error")
        .expect("an audience change")
}

fn error(value: Value) -> AudienceError {
    AudienceChange::from_message(&msg(value)).expect_err("an error")
}

fn none(value: Value) {
    assert_eq!(AudienceChange::from_message(&msg(value)), Ok(None));
}

fn personas(class: &str, key: &str) -> Value {
    json!({
        "computation_class": class,
        "computation_id": "aud_2aBcDeFgHiJkLmN",
        "computation_key": key,
        "namespace": "spa_9zYxWvUtS",
        "space_id": "spa_9zYxWvUtS"
    })
}

fn identify(class: &str, value: Value) -> Value {
    json!({
        "type": "identify",
        "userId": "usr_48151623",
        "traits": {"email": "lena.fischer@example.org", "churn_risk_high": value},
        "context": {"personas": personas(class, "churn_risk_high")}
    })
}

/// The reference's identify example, entered.
#[test]
fn identify_form_entered_with_every_field() {
    let c = change(json!({
        "type": "identify",
        "messageId": "m-1",
        "userId": "usr_48151623",
        "anonymousId": "a9e4c0b2-55f1-4d7e-8c33-1e2f3a4b5c6d",
        "traits": {"email": "lena.fischer@example.org", "churn_risk_high": true},
        "context": {"personas": personas("audience", "churn_risk_high")},
        "integrations": {"All": false, "Customer.io (Actions)": true},
        "timestamp": "2024-05-01T10:15:30.123Z"
    }));
    assert_eq!(c.key, "churn_risk_high");
    assert_eq!(c.membership, Membership::Entered);
    assert_eq!(c.class, ComputationClass::Audience);
    assert_eq!(c.computation_id.as_deref(), Some("aud_2aBcDeFgHiJkLmN"));
    assert_eq!(c.space_id.as_deref(), Some("spa_9zYxWvUtS"));
    assert_eq!(c.user_id, Some(Id::from("usr_48151623")));
    assert_eq!(
        c.anonymous_id,
        Some(Id::from("a9e4c0b2-55f1-4d7e-8c33-1e2f3a4b5c6d"))
    );
    assert_eq!(c.email.as_deref(), Some("lena.fischer@example.org"));
    assert_eq!(
        c.timestamp,
        Some(Timestamp::parse("2024-05-01T10:15:30.123Z").expect("ts"))
    );
    assert_eq!(c.message_id.as_deref(), Some("m-1"));
    assert_eq!(c.form, AudienceForm::Identify);
}

#[test]
fn identify_form_exited() {
    assert_eq!(
        change(identify("audience", json!(false))).membership,
        Membership::Exited
    );
}

#[test]
fn journey_strings_are_boolean_like() {
    for (value, expected) in [
        (json!("true"), Membership::Entered),
        (json!("false"), Membership::Exited),
        (json!("TRUE"), Membership::Entered),
        (json!(" False "), Membership::Exited),
    ] {
        assert_eq!(
            change(identify("audience", value.clone())).membership,
            expected,
            "{value}"
        );
    }
    let c = change(json!({
        "type": "identify", "userId": "u",
        "traits": {"j_o_onboarding": "true"},
        "context": {"personas": personas("journey_step", "j_o_onboarding")}
    }));
    assert_eq!(c.class, ComputationClass::JourneyStep);
    assert_eq!(c.key, "j_o_onboarding");
    assert_eq!(c.membership, Membership::Entered);
}

#[test]
fn a_non_boolean_journey_step_value_means_entered() {
    let c = change(identify("journey_step", json!({"step": 2})));
    assert_eq!(c.membership, Membership::Entered);
    assert_eq!(c.class, ComputationClass::JourneyStep);
}

/// The reference's track example, exited.
#[test]
fn track_form_exited() {
    let c = change(json!({
        "type": "track",
        "userId": "usr_48151623",
        "event": "Audience Exited",
        "properties": {"audience_key": "churn_risk_high", "churn_risk_high": false},
        "context": {
            "traits": {"email": "lena.fischer@example.org"},
            "personas": personas("audience", "churn_risk_high")
        },
        "originalTimestamp": "2024-05-01T10:15:30.000Z"
    }));
    assert_eq!(c.key, "churn_risk_high");
    assert_eq!(c.membership, Membership::Exited);
    assert_eq!(c.class, ComputationClass::Audience);
    assert_eq!(c.email.as_deref(), Some("lena.fischer@example.org"));
    assert_eq!(c.form, AudienceForm::Track);
    assert_eq!(
        c.timestamp,
        Some(Timestamp::parse("2024-05-01T10:15:30.000Z").expect("ts")),
        "falls back to originalTimestamp"
    );
}

#[test]
fn track_form_key_from_personas_or_properties() {
    let from_personas = change(json!({
        "type": "track", "userId": "u", "event": "Audience Entered", "properties": {},
        "context": {"personas": personas("audience", "vip")}
    }));
    assert_eq!(from_personas.key, "vip");
    assert_eq!(from_personas.membership, Membership::Entered);

    let from_properties = change(json!({
        "type": "track", "userId": "u", "event": "Audience Entered",
        "properties": {"audience_key": "vip", "vip": "true"}
    }));
    assert_eq!(from_properties.key, "vip");
    assert_eq!(from_properties.class, ComputationClass::Audience);
    assert_eq!(from_properties.computation_id, None);
    assert_eq!(from_properties.space_id, None);
}

#[test]
fn track_form_errors() {
    assert_eq!(
        error(
            json!({"type": "track", "userId": "u", "event": "Audience Entered", "properties": {}})
        ),
        AudienceError::MissingKey
    );
    assert_eq!(
        error(json!({
            "type": "track", "userId": "u", "event": "Audience Entered",
            "properties": {"audience_key": "vip", "vip": true},
            "context": {"personas": personas("audience", "churn_risk_high")}
        })),
        AudienceError::KeyMismatch
    );
    assert_eq!(
        error(json!({
            "type": "track", "userId": "u", "event": "Audience Entered",
            "properties": {"audience_key": "vip", "vip": false}
        })),
        AudienceError::Contradiction {
            path: "properties.vip".into(),
            event_says: Membership::Entered
        }
    );
    assert_eq!(
        error(json!({
            "type": "track", "userId": "u", "event": "Audience Exited",
            "properties": {"audience_key": "vip", "vip": "yes"}
        })),
        AudienceError::NotBooleanLike {
            path: "properties.vip".into(),
            found: JsonType::String
        }
    );
}

#[test]
fn identify_form_errors() {
    assert_eq!(
        error(json!({
            "type": "identify", "userId": "u", "traits": {"email": "x@example.org"},
            "context": {"personas": personas("audience", "churn_risk_high")}
        })),
        AudienceError::MissingValue {
            path: "traits.churn_risk_high".into()
        }
    );
    assert_eq!(
        error(identify("audience", json!(1))),
        AudienceError::NotBooleanLike {
            path: "traits.churn_risk_high".into(),
            found: JsonType::Number
        }
    );
    assert_eq!(
        error(identify("audience", Value::Null)),
        AudienceError::NotBooleanLike {
            path: "traits.churn_risk_high".into(),
            found: JsonType::Null
        }
    );
}

#[test]
fn computed_traits_and_non_audience_messages_are_not_changes() {
    none(identify("trait", json!(3)));
    none(identify("computed_trait", json!(true)));
    none(json!({
        "type": "track", "userId": "u", "event": "Trait Computed",
        "properties": {"trait_key": "orders_90d", "orders_90d": 3},
        "context": {"personas": personas("trait", "orders_90d")}
    }));
    none(json!({"type": "identify", "userId": "u", "traits": {"vip": true}}));
    none(
        json!({"type": "track", "userId": "u", "event": "Order Completed", "properties": {"vip": true}}),
    );
    none(json!({"type": "page", "userId": "u", "name": "Audience Entered"}));
    none(json!({"type": "group", "userId": "u", "groupId": "g"}));
    none(json!({"type": "alias", "userId": "u", "previousId": "p"}));
    // Personas without a key (or an empty one) carries no membership.
    none(json!({
        "type": "identify", "userId": "u", "traits": {},
        "context": {"personas": {"computation_class": "audience", "computation_key": ""}}
    }));
}

#[test]
fn unknown_classes_count_only_with_a_boolean_like_value() {
    let c = change(identify("account_audience", json!(true)));
    assert_eq!(c.class, ComputationClass::Other("account_audience".into()));
    assert_eq!(c.class.as_str(), "account_audience");
    none(identify("account_audience", json!(12)));
}

#[test]
fn a_missing_class_is_read_as_audience() {
    let c = change(json!({
        "type": "identify", "userId": "u", "traits": {"vip": false},
        "context": {"personas": {"computation_key": "vip", "namespace": "spa_1"}}
    }));
    assert_eq!(c.class, ComputationClass::Audience);
    assert_eq!(c.membership, Membership::Exited);
    assert_eq!(c.space_id.as_deref(), Some("spa_1"), "namespace fallback");
}

#[test]
fn track_events_of_an_audience_computation_with_other_names() {
    // A renamed event still carries the personas context and the value under the key.
    let c = change(json!({
        "type": "track", "userId": "u", "event": "VIP Membership Changed",
        "properties": {"vip": true},
        "context": {"personas": personas("audience", "vip")}
    }));
    assert_eq!(c.membership, Membership::Entered);
    assert_eq!(c.form, AudienceForm::Track);
}

#[test]
fn configured_event_names() {
    let options = AudienceOptions {
        entered_event: "Joined Segment".into(),
        exited_event: "Left Segment".into(),
    };
    let left = msg(json!({
        "type": "track", "userId": "u", "event": "Left Segment",
        "properties": {"audience_key": "vip"}
    }));
    let c = AudienceChange::from_message_with(&left, &options)
        .expect("ok")
        .expect("change");
    assert_eq!(c.membership, Membership::Exited);
    // The default names are no longer special with these options.
    let default_name = msg(json!({
        "type": "track", "userId": "u", "event": "Audience Entered",
        "properties": {"audience_key": "vip"}
    }));
    assert_eq!(
        AudienceChange::from_message_with(&default_name, &options),
        Ok(None)
    );
}

#[test]
fn errors_never_show_customer_data() {
    let err = error(json!({
        "type": "identify", "userId": "usr_48151623",
        "traits": {"email": "lena.fischer@example.org", "churn_risk_high": "lena.fischer@example.org"},
        "context": {"personas": personas("audience", "churn_risk_high")}
    }));
    let text = format!("{err}");
    assert!(!text.contains("lena"), "{text}");
    assert!(!text.contains("usr_48151623"), "{text}");
    assert!(text.contains("traits.churn_risk_high"), "{text}");
}

fn fixture(name: &str) -> Message {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    Message::from_str(&text).expect("fixture decodes")
}

#[test]
fn shared_fixtures_are_classified() {
    let expected: &[(&str, &str, Membership, ComputationClass, AudienceForm)] = &[
        (
            "identify-engage-audience.json",
            "churn_risk_high",
            Membership::Entered,
            ComputationClass::Audience,
            AudienceForm::Identify,
        ),
        (
            "track-audience-entered.json",
            "churn_risk_high",
            Membership::Entered,
            ComputationClass::Audience,
            AudienceForm::Track,
        ),
        (
            "track-audience-exited.json",
            "churn_risk_high",
            Membership::Exited,
            ComputationClass::Audience,
            AudienceForm::Track,
        ),
        (
            "track-journey-step-string-membership.json",
            "j_o_welcome_flow",
            Membership::Entered,
            ComputationClass::JourneyStep,
            AudienceForm::Track,
        ),
    ];
    for (name, key, membership, class, form) in expected {
        let c = AudienceChange::from_message(&fixture(name))
            .expect("no error")
            .unwrap_or_else(|| panic!("{name} is an audience change"));
        assert_eq!(&c.key, key, "{name}");
        assert_eq!(&c.membership, membership, "{name}");
        assert_eq!(&c.class, class, "{name}");
        assert_eq!(&c.form, form, "{name}");
    }

    // Every other single-message fixture (plain calls, email events, computed traits) is not an
    // audience change and not an error.
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if !name.ends_with(".json")
            || name.starts_with("batch-")
            || expected.iter().any(|(n, ..)| *n == name)
        {
            continue;
        }
        assert_eq!(
            AudienceChange::from_message(&fixture(&name)),
            Ok(None),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures checked");
}

#[test]
fn other_track_events_with_a_copied_personas_context_are_left_alone() {
    none(json!({
        "type": "track", "userId": "u", "event": "Application Opened",
        "properties": {"from_background": false},
        "context": {"personas": personas("audience", "k")}
    }));
    none(json!({
        "type": "track", "userId": "u", "event": "Report Exported",
        "properties": {"k": 7},
        "context": {"personas": personas("audience", "k")}
    }));
}
