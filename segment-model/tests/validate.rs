//! `validate()`: every rule, every violation collected, each naming its field or batch index.

mod common;

use segment_model::validate::{
    Limits, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, MAX_MESSAGE_ID_CHARS,
    ViolationKind,
};
use segment_model::{Batch, Message};
use serde_json::json;

fn kinds(message: &Message) -> Vec<ViolationKind> {
    match message.validate() {
        Ok(()) => Vec::new(),
        Err(violations) => violations.iter().map(|v| v.kind().clone()).collect(),
    }
}

fn message(value: serde_json::Value) -> Message {
    Message::from_value(value).expect("decodes")
}

#[test]
fn every_non_batch_fixture_except_the_nonconforming_one_is_valid() {
    for (name, bytes) in common::fixtures() {
        if common::is_batch(&name) {
            let batch = Batch::from_slice(&bytes).expect("decodes");
            assert_eq!(batch.validate(), Ok(()), "{name}");
            continue;
        }
        let message = Message::from_slice(&bytes).expect("decodes");
        let result = message.validate();
        if name == "track-context-nonconforming.json" {
            assert!(result.is_err(), "{name}");
        } else {
            assert_eq!(result, Ok(()), "{name}");
        }
    }
}

#[test]
fn identity_is_required() {
    assert_eq!(
        kinds(&message(json!({"type": "identify", "traits": {}}))),
        [ViolationKind::MissingIdentity]
    );
    // Empty ids and nulls do not count.
    assert_eq!(
        kinds(&message(
            json!({"type": "page", "userId": "", "anonymousId": null})
        )),
        [ViolationKind::MissingIdentity]
    );
    assert_eq!(
        kinds(&message(json!({"type": "page", "anonymousId": "a"}))),
        []
    );
    assert_eq!(kinds(&message(json!({"type": "screen", "userId": 0}))), []);
}

#[test]
fn track_needs_a_non_blank_event() {
    assert_eq!(
        kinds(&message(json!({"type": "track", "userId": "u"}))),
        [ViolationKind::MissingField { field: "event" }]
    );
    assert_eq!(
        kinds(&message(
            json!({"type": "track", "userId": "u", "event": "  "})
        )),
        [ViolationKind::EmptyField { field: "event" }]
    );
}

#[test]
fn group_alias_and_delete_rules() {
    assert_eq!(
        kinds(&message(json!({"type": "group", "userId": "u"}))),
        [ViolationKind::MissingField { field: "groupId" }]
    );
    assert_eq!(
        kinds(&message(
            json!({"type": "group", "userId": "u", "groupId": ""})
        )),
        [ViolationKind::EmptyField { field: "groupId" }]
    );
    // Alias: an anonymousId does not replace userId, and previousId is required.
    assert_eq!(
        kinds(&message(json!({"type": "alias", "anonymousId": "a"}))),
        [
            ViolationKind::MissingField { field: "userId" },
            ViolationKind::MissingField {
                field: "previousId"
            }
        ]
    );
    assert_eq!(
        kinds(&message(json!({"type": "delete", "anonymousId": "a"}))),
        [ViolationKind::MissingField { field: "userId" }]
    );
}

#[test]
fn all_problems_are_collected_not_just_the_first() {
    let long_id = "m".repeat(MAX_MESSAGE_ID_CHARS + 1);
    let msg = message(json!({
        "type": "track", "messageId": long_id,
        "context": {"app": {"build": 42}}
    }));
    let violations = msg.validate().expect_err("invalid");
    let got: Vec<_> = violations.iter().map(|v| v.kind().clone()).collect();
    assert_eq!(
        got,
        [
            ViolationKind::MissingIdentity,
            ViolationKind::MissingField { field: "event" },
            ViolationKind::TooLong {
                field: "messageId",
                chars: MAX_MESSAGE_ID_CHARS + 1,
                max: MAX_MESSAGE_ID_CHARS
            },
            ViolationKind::NonconformingContext {
                path: "context.app.build".into()
            },
        ]
    );
    assert_eq!(
        violations.iter().map(|v| v.field()).collect::<Vec<_>>(),
        [
            Some("userId"),
            Some("event"),
            Some("messageId"),
            Some("context.app.build")
        ]
    );
    assert_eq!(
        violations.to_string(),
        "neither `userId` nor `anonymousId` is set; `event` is missing; \
         `messageId` is 101 characters long, the limit is 100; \
         `context.app.build` does not have its documented JSON type"
    );
}

#[test]
fn message_id_limit_counts_characters_not_bytes() {
    let id = "é".repeat(MAX_MESSAGE_ID_CHARS); // 200 bytes, 100 characters
    assert_eq!(
        kinds(&message(
            json!({"type": "identify", "userId": "u", "messageId": id})
        )),
        []
    );
    assert_eq!(
        kinds(&message(
            json!({"type": "identify", "userId": "u", "messageId": ""})
        )),
        [ViolationKind::EmptyField { field: "messageId" }]
    );
}

/// A track whose serialised size is exactly `size` bytes.
fn track_of_size(size: usize) -> Message {
    let base =
        message(json!({"type": "track", "userId": "u", "event": "E", "properties": {"pad": ""}}));
    let overhead = base.encoded_len();
    let pad = "x".repeat(size - overhead);
    message(json!({"type": "track", "userId": "u", "event": "E", "properties": {"pad": pad}}))
}

#[test]
fn message_size_limit_is_inclusive() {
    let at_limit = track_of_size(MAX_MESSAGE_BYTES);
    assert_eq!(at_limit.encoded_len(), MAX_MESSAGE_BYTES);
    assert_eq!(
        at_limit.encoded_len(),
        serde_json::to_vec(&at_limit).expect("serialises").len()
    );
    assert_eq!(kinds(&at_limit), []);
    let over = track_of_size(MAX_MESSAGE_BYTES + 1);
    assert_eq!(
        kinds(&over),
        [ViolationKind::MessageTooLarge {
            bytes: MAX_MESSAGE_BYTES + 1,
            max: MAX_MESSAGE_BYTES
        }]
    );
    // The binary reading of "32 KB" accepts it.
    assert_eq!(over.validate_with(&Limits::SEGMENT_BINARY_KB), Ok(()));
}

#[test]
fn batch_violations_carry_the_item_index() {
    let batch = Batch::from_value(json!({"batch": [
        {"type": "track", "userId": "u", "event": "A"},
        {"type": "track", "event": "B"},
        {"type": "group", "userId": "u"}
    ]}))
    .expect("decodes");
    let violations = batch.validate().expect_err("invalid");
    let got: Vec<_> = violations
        .iter()
        .map(|v| (v.index(), v.kind().clone()))
        .collect();
    assert_eq!(
        got,
        [
            (Some(1), ViolationKind::MissingIdentity),
            (Some(2), ViolationKind::MissingField { field: "groupId" }),
        ]
    );
    assert_eq!(
        violations.to_string(),
        "`batch[1]`: neither `userId` nor `anonymousId` is set; `batch[2]`: `groupId` is missing"
    );
}

#[test]
fn oversize_items_and_batches_are_reported() {
    let mut items: Vec<Message> = (0..16).map(|_| track_of_size(31_000)).collect();
    items.push(track_of_size(MAX_MESSAGE_BYTES + 10));
    let batch = Batch::new(items);
    let violations = batch.validate().expect_err("too large");
    let got: Vec<_> = violations
        .iter()
        .map(|v| (v.index(), v.kind().clone()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        (
            Some(16),
            ViolationKind::MessageTooLarge {
                bytes: MAX_MESSAGE_BYTES + 10,
                max: MAX_MESSAGE_BYTES
            }
        )
    );
    assert!(
        matches!(got[1], (None, ViolationKind::BatchTooLarge { bytes, max: MAX_BATCH_BYTES }) if bytes == batch.encoded_len() && bytes > MAX_BATCH_BYTES),
        "{got:?}"
    );
}

#[test]
fn too_many_items_are_reported() {
    let item = message(json!({"type": "track", "userId": "u", "event": "E"}));
    let batch = Batch::new(vec![item; MAX_BATCH_MESSAGES + 1]);
    let got: Vec<_> = batch
        .validate()
        .expect_err("too many")
        .into_iter()
        .map(|v| v.kind().clone())
        .collect();
    assert_eq!(
        got,
        [ViolationKind::TooManyMessages {
            count: MAX_BATCH_MESSAGES + 1,
            max: MAX_BATCH_MESSAGES
        }]
    );
    let exactly = Batch::new(vec![
        message(
            json!({"type": "track", "userId": "u", "event": "E"})
        );
        MAX_BATCH_MESSAGES
    ]);
    assert_eq!(exactly.validate(), Ok(()));
    assert!(
        exactly
            .validate_with(&Limits::default().with_max_batch_messages(10))
            .is_err()
    );
}

#[test]
fn nonconforming_context_paths_are_listed() {
    let msg = message(common::fixture("track-context-nonconforming.json"));
    let context = msg.context().expect("context");
    let mut paths = context.nonconforming_paths();
    paths.sort();
    assert_eq!(
        paths,
        [
            "app.build",
            "device.adTrackingEnabled",
            "externalIds[0].id",
            "ip",
            "screen.width"
        ]
    );
}
