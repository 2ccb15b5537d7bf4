//! Builders: invariants enforced, messageId generated once, given ids kept.

use segment_model::validate::ViolationKind;
use segment_model::{Error, Id, Message, MessageKind, Timestamp};
use serde_json::{Value, json};

fn violations(err: Error) -> Vec<ViolationKind> {
    match err {
        Error::Invalid(violations) => violations.iter().map(|v| v.kind().clone()).collect(),
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

#[test]
fn message_id_is_generated_once_and_stays_stable() {
    let message = Message::track("Order Completed")
        .user_id("usr_1")
        .build()
        .expect("valid");
    let id = message.message_id().expect("generated").to_owned();
    let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
    assert_eq!(parsed.get_version_num(), 4);

    let clone = message.clone();
    assert_eq!(clone.message_id(), Some(id.as_str()));
    let first = serde_json::to_value(&message).expect("serialises");
    let second = serde_json::to_value(&message).expect("serialises");
    assert_eq!(first["messageId"], Value::String(id.clone()));
    assert_eq!(first, second);
    let reparsed = Message::from_value(first).expect("decodes");
    assert_eq!(reparsed.message_id(), Some(id.as_str()));
}

#[test]
fn each_build_gets_its_own_id() {
    let builder = Message::track("E").anonymous_id("a");
    let one = builder.clone().build().expect("valid");
    let two = builder.build().expect("valid");
    assert_ne!(one.message_id(), two.message_id());
}

#[test]
fn a_given_message_id_is_kept() {
    let message = Message::identify()
        .user_id("u")
        .message_id("node-next-1714558530123-abc")
        .build()
        .expect("valid");
    assert_eq!(message.message_id(), Some("node-next-1714558530123-abc"));
}

#[test]
fn missing_identity_is_rejected() {
    let err = Message::track("E").build().expect_err("no identity");
    assert_eq!(violations(err), [ViolationKind::MissingIdentity]);
    let err = Message::identify()
        .set_trait("email", "x@example.org")
        .build()
        .expect_err("no identity");
    assert_eq!(violations(err), [ViolationKind::MissingIdentity]);
    let err = Message::page().user_id("").build().expect_err("empty id");
    assert_eq!(violations(err), [ViolationKind::MissingIdentity]);
}

#[test]
fn empty_event_and_ids_are_rejected() {
    let err = Message::track(" ")
        .user_id("u")
        .build()
        .expect_err("blank event");
    assert_eq!(
        violations(err),
        [ViolationKind::EmptyField { field: "event" }]
    );
    let err = Message::group("")
        .user_id("u")
        .build()
        .expect_err("empty group");
    assert_eq!(
        violations(err),
        [ViolationKind::EmptyField { field: "groupId" }]
    );
    let err = Message::alias("", "").build().expect_err("empty alias ids");
    assert_eq!(
        violations(err),
        [
            ViolationKind::EmptyField { field: "userId" },
            ViolationKind::EmptyField {
                field: "previousId"
            }
        ]
    );
    let err = Message::track("E")
        .user_id("u")
        .message_id("x".repeat(101))
        .build()
        .expect_err("long id");
    assert!(matches!(
        violations(err)[..],
        [ViolationKind::TooLong {
            field: "messageId",
            chars: 101,
            max: 100
        }]
    ));
}

#[test]
fn builders_produce_the_expected_wire_json() {
    let ts: Timestamp = "2024-05-01T10:15:30.123Z".parse().expect("timestamp");
    let message = Message::track("Order Completed")
        .user_id(42_u64)
        .anonymous_id("anon")
        .message_id("m1")
        .timestamp(ts)
        .property("revenue", 19.99)
        .extra("customKey", json!({"a": 1}))
        .build()
        .expect("valid");
    assert_eq!(
        serde_json::to_value(&message).expect("serialises"),
        json!({
            "type": "track", "event": "Order Completed", "userId": 42, "anonymousId": "anon",
            "messageId": "m1", "timestamp": "2024-05-01T10:15:30.123Z",
            "properties": {"revenue": 19.99}, "customKey": {"a": 1}
        })
    );

    let cases = [
        (
            Message::identify()
                .user_id("u")
                .message_id("m")
                .set_trait("plan", "pro")
                .build(),
            json!({"type": "identify", "userId": "u", "messageId": "m", "traits": {"plan": "pro"}}),
        ),
        (
            Message::page()
                .anonymous_id("a")
                .message_id("m")
                .name("Pricing")
                .category("Docs")
                .build(),
            json!({"type": "page", "anonymousId": "a", "messageId": "m", "name": "Pricing", "category": "Docs", "properties": {}}),
        ),
        (
            Message::screen()
                .user_id("u")
                .message_id("m")
                .name("Home")
                .build(),
            json!({"type": "screen", "userId": "u", "messageId": "m", "name": "Home", "properties": {}}),
        ),
        (
            Message::group("acct_1")
                .user_id("u")
                .message_id("m")
                .set_trait("name", "Acme")
                .build(),
            json!({"type": "group", "groupId": "acct_1", "userId": "u", "messageId": "m", "traits": {"name": "Acme"}}),
        ),
        (
            Message::alias("anon_1", "usr_1").message_id("m").build(),
            json!({"type": "alias", "previousId": "anon_1", "userId": "usr_1", "messageId": "m"}),
        ),
        (
            Message::delete("usr_1").message_id("m").build(),
            json!({"type": "delete", "userId": "usr_1", "messageId": "m"}),
        ),
    ];
    for (built, expected) in cases {
        let built = built.expect("valid");
        assert_eq!(serde_json::to_value(&built).expect("serialises"), expected);
        assert_eq!(built.validate(), Ok(()));
    }
}

#[test]
fn timestamp_now_is_stamped_at_build_in_millisecond_form() {
    let message = Message::identify()
        .user_id("u")
        .timestamp_now()
        .build()
        .expect("valid");
    let ts = message.timestamp().expect("stamped");
    let text = ts.as_str();
    assert_eq!(text.len(), "2024-05-01T10:15:30.123Z".len(), "{text}");
    assert!(text.ends_with('Z'));
    assert_eq!(
        Timestamp::parse(text).expect("parses").instant(),
        ts.instant()
    );
}

#[test]
fn built_messages_have_the_right_kind_and_ids() {
    let message = Message::alias("old", 7_i64).build().expect("valid");
    assert_eq!(message.kind(), MessageKind::Alias);
    assert_eq!(message.user_id(), Some(&Id::from(7_i64)));
}

#[test]
fn ensure_message_id_fills_only_a_missing_id() {
    let mut without = Message::from_value(json!({"type": "track", "userId": "u", "event": "E"}))
        .expect("decodes");
    let generated = without.ensure_message_id().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok());
    assert_eq!(without.message_id(), Some(generated.as_str()));
    assert_eq!(without.ensure_message_id(), generated);

    let mut with = Message::from_value(
        json!({"type": "track", "userId": "u", "event": "E", "messageId": "given"}),
    )
    .expect("decodes");
    assert_eq!(with.ensure_message_id(), "given");
}
