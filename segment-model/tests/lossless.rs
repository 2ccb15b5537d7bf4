//! Lossless decoding rules: unknown keys kept once, nulls kept, absent stays absent, no guessing.

mod common;

use segment_model::{Batch, Id, Message, MessageKind, NumberOrString};
use serde_json::{Value, json};

fn round_trip(value: &Value) -> Value {
    let message = Message::from_value(value.clone()).expect("decodes");
    serde_json::to_value(&message).expect("serialises")
}

#[test]
fn a_typed_field_wins_over_an_extra_entry_of_the_same_name_and_is_written_once() {
    let mut message = Message::from_value(json!({
        "type": "track", "userId": null, "event": "E", "properties": {}
    }))
    .expect("decodes");
    // The null sits in extra; setting the typed field must replace it on output, not duplicate.
    assert_eq!(message.common().extra.get("userId"), Some(&Value::Null));
    message.common_mut().user_id = Some(Id::from("usr_9"));
    message
        .common_mut()
        .extra
        .insert("event".into(), json!("shadowed"));
    message
        .common_mut()
        .extra
        .insert("type".into(), json!("identify"));
    let text = serde_json::to_string(&message).expect("serialises");
    common::assert_no_duplicate_keys(&text);
    let out: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(
        out,
        json!({"type": "track", "userId": "usr_9", "event": "E", "properties": {}})
    );
}

#[test]
fn extra_keys_are_written_exactly_once() {
    let input =
        r#"{"type":"identify","userId":"u","traits":{},"vendorKey":{"a":1},"another":[1,2]}"#;
    let message = Message::from_str(input).expect("decodes");
    let text = serde_json::to_string(&message).expect("serialises");
    common::assert_no_duplicate_keys(&text);
    assert_eq!(text.matches("\"vendorKey\"").count(), 1);
    assert_eq!(text.matches("\"userId\"").count(), 1);
    assert_eq!(message.common().extra.len(), 2);
}

#[test]
fn nulls_stay_null_and_absent_stays_absent() {
    let input = json!({
        "type": "identify", "userId": null, "anonymousId": "a", "traits": null,
        "context": {"ip": null, "library": {"name": null}}, "timestamp": null
    });
    let message = Message::from_value(input.clone()).expect("decodes");
    assert_eq!(message.user_id(), None);
    assert_eq!(message.traits(), None);
    assert_eq!(message.timestamp(), None);
    let context = message.context().expect("context present");
    assert_eq!(context.ip, None);
    assert_eq!(context.extra.get("ip"), Some(&Value::Null));
    assert_eq!(round_trip(&input), input);

    let absent = json!({"type": "identify", "anonymousId": "a"});
    let out = round_trip(&absent);
    assert_eq!(out, absent);
    assert!(out.get("traits").is_none());
    assert!(out.get("userId").is_none());
}

#[test]
fn both_ids_survive() {
    let message = Message::from_value(common::fixture("track-both-ids.json")).expect("decodes");
    assert_eq!(message.user_id(), Some(&Id::from("usr_1")));
    assert_eq!(
        message.anonymous_id().map(|id| id.as_str().into_owned()),
        Some("7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f".to_owned())
    );
    assert!(message.common().extra.is_empty());
}

#[test]
fn a_track_with_a_traits_key_stays_a_track() {
    let message =
        Message::from_value(common::fixture("track-traits-key-stays-track.json")).expect("decodes");
    assert_eq!(message.kind(), MessageKind::Track);
    assert_eq!(message.event(), Some("Has Traits Key"));
    assert!(message.common().extra.contains_key("traits"));
}

#[test]
fn numeric_ids_keep_their_representation() {
    let message =
        Message::from_value(common::fixture("identify-numeric-user-id.json")).expect("decodes");
    let id = message.user_id().expect("userId");
    assert!(matches!(id, Id::Number(_)));
    assert_eq!(id.as_str(), "48151623");
    assert_ne!(id, &Id::from("48151623"));

    let group =
        Message::from_value(common::fixture("group-numeric-group-id.json")).expect("decodes");
    let Message::Group(group) = group else {
        panic!("expected a group");
    };
    assert_eq!(
        group.group_id.as_ref().map(Id::as_str).as_deref(),
        Some("2718")
    );
}

#[test]
fn version_keeps_number_or_string() {
    let number =
        Message::from_value(common::fixture("track-version-number.json")).expect("decodes");
    assert!(matches!(
        number.common().version,
        Some(NumberOrString::Number(_))
    ));
    let string =
        Message::from_value(common::fixture("track-version-string.json")).expect("decodes");
    assert_eq!(
        string.common().version,
        Some(NumberOrString::String("1.1".into()))
    );
}

#[test]
fn channel_is_read_from_both_places() {
    let both = Message::from_value(common::fixture("track-channel-both.json")).expect("decodes");
    assert_eq!(both.common().channel.as_deref(), Some("server"));
    assert_eq!(
        both.context().and_then(|c| c.channel.as_deref()),
        Some("server")
    );
    let only_context = Message::from_value(json!({
        "type": "track", "userId": "u", "event": "E", "context": {"channel": "mobile"}
    }))
    .expect("decodes");
    assert_eq!(only_context.common().channel, None);
    assert_eq!(only_context.common().effective_channel(), Some("mobile"));
}

#[test]
fn metadata_and_delivered_fields_are_typed() {
    let message = Message::from_value(common::fixture("track-metadata.json")).expect("decodes");
    let metadata = message.common().metadata.as_ref().expect("_metadata");
    assert_eq!(metadata["retryCount"], 2);

    let page =
        Message::from_value(common::fixture("page-delivered-webhook.json")).expect("decodes");
    let common = page.common();
    assert_eq!(common.project_id.as_deref(), Some("src_Ab12Cd34"));
    assert!(common.received_at.is_some());
    assert!(common.original_timestamp.is_some());
    assert!(common.sent_at.is_some());
    assert_eq!(
        common.write_key.as_ref().map(|k| k.expose()),
        Some("wk_test_not_real")
    );
    assert!(
        common.extra.is_empty(),
        "unexpected extra: {:?}",
        common.extra.keys()
    );
}

#[test]
fn delete_notifications_decode() {
    let message = Message::from_value(common::fixture("delete-basic.json")).expect("decodes");
    assert_eq!(message.kind(), MessageKind::Delete);
    assert_eq!(message.user_id(), Some(&Id::from("usr_1234")));
    assert!(message.validate().is_ok());
}

#[test]
fn legacy_keys_are_kept_but_not_interpreted() {
    let message =
        Message::from_value(common::fixture("track-legacy-email-spec.json")).expect("decodes");
    assert_eq!(message.user_id(), Some(&Id::from("usr_legacy")));
    assert_eq!(message.common().extra["user_id"], "legacy-1");
    assert_eq!(message.common().extra["action"], "track");
    let context = message.context().expect("context");
    assert_eq!(context.user_agent, None);
    assert_eq!(context.extra["user_agent"], "Mozilla/5.0");
}

#[test]
fn batch_envelope_nulls_and_unknown_keys_round_trip() {
    let input = common::fixture("batch-unknown-envelope-keys.json");
    let batch = Batch::from_value(input.clone()).expect("decodes");
    assert!(batch.context.is_none());
    assert_eq!(batch.extra.get("context"), Some(&Value::Null));
    assert_eq!(serde_json::to_value(&batch).expect("serialises"), input);
}

#[test]
fn implied_type_is_used_only_when_type_is_absent() {
    let message =
        Message::from_value_implied(json!({"userId": "u", "event": "E"}), MessageKind::Track)
            .expect("decodes");
    assert_eq!(message.kind(), MessageKind::Track);
    assert_eq!(
        serde_json::to_value(&message).expect("serialises"),
        json!({"type": "track", "userId": "u", "event": "E"})
    );
    let identify =
        Message::from_slice_implied(br#"{"userId":"u","traits":{}}"#, MessageKind::Identify)
            .expect("decodes");
    assert_eq!(identify.kind(), MessageKind::Identify);
    let explicit = Message::from_slice_implied(
        br#"{"type":"identify","userId":"u"}"#,
        MessageKind::Identify,
    )
    .expect("agreeing type");
    assert_eq!(explicit.kind(), MessageKind::Identify);
}
