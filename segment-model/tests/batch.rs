//! Batch envelope: lenient parsing keeps good items, envelope fields apply to items.

mod common;

use segment_model::{Batch, Error, Id, IntegrationSetting, Message};
use serde_json::{Value, json};

fn five_items_with_bad_third() -> Value {
    json!({
        "batch": [
            {"type": "track", "userId": "u0", "event": "A"},
            {"type": "track", "userId": "u1", "event": "B"},
            {"type": "track", "userId": "u2", "event": "C"},
            {"type": "track", "userId": "u3", "event": {"not": "a string"}},
            {"type": "launch", "userId": "u4"},
            {"userId": "u5"},
            {"type": "identify", "userId": "u6", "traits": {}}
        ],
        "sentAt": "2024-05-01T10:00:06.250Z"
    })
}

#[test]
fn lenient_parse_keeps_every_good_item_and_reports_each_bad_one() {
    let input = five_items_with_bad_third();
    let parsed = Batch::from_value_lenient(input.clone()).expect("envelope is fine");
    let ids: Vec<_> = parsed
        .batch
        .batch
        .iter()
        .map(|m| m.user_id().map(Id::as_str).map(|s| s.into_owned()))
        .collect();
    assert_eq!(
        ids,
        [
            Some("u0".into()),
            Some("u1".into()),
            Some("u2".into()),
            Some("u6".into())
        ]
    );
    assert!(!parsed.is_complete());
    let errors: Vec<_> = parsed
        .errors
        .iter()
        .map(|e| {
            (
                e.index,
                e.error.path().map(str::to_owned),
                e.error.to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (
                3,
                Some("event".into()),
                "`event`: expected a string, found an object".into()
            ),
            (
                4,
                Some("type".into()),
                "`type`: unknown message type (6 characters, not shown)".into()
            ),
            (5, Some("type".into()), "`type` is missing".into()),
        ]
    );
    assert!(
        matches!(parsed.errors[1].error, Error::UnknownType { ref found } if found == "launch")
    );
    assert!(matches!(parsed.errors[2].error, Error::MissingType));
    // The raw item is kept so nothing is lost.
    assert_eq!(parsed.errors[0].raw, input["batch"][3]);
    assert_eq!(parsed.errors[2].raw, input["batch"][5]);
    // Display names the item once; the reason is the source.
    assert_eq!(parsed.errors[0].to_string(), "`batch[3]` does not decode");
    assert_eq!(
        std::error::Error::source(&parsed.errors[0]).map(ToString::to_string),
        Some("`event`: expected a string, found an object".to_owned())
    );
    // The envelope survived too.
    assert_eq!(
        parsed.batch.sent_at.as_ref().map(|t| t.as_str()),
        Some("2024-05-01T10:00:06.250Z")
    );
}

#[test]
fn lenient_parse_still_rejects_a_broken_envelope() {
    assert!(Batch::from_slice_lenient(b"[1,2]").is_err());
    assert!(Batch::from_slice_lenient(b"{\"batch\": 3}").is_err());
    assert!(Batch::from_slice_lenient(b"{\"batch\": [").is_err());
}

#[test]
fn envelope_context_and_integrations_apply_to_items_with_item_keys_winning() {
    let batch = Batch::from_value(json!({
        "batch": [
            {"type": "track", "userId": "u", "event": "A"},
            {"type": "track", "userId": "u", "event": "B",
             "context": {"ip": "192.0.2.1", "library": {"name": "item-lib"}},
             "integrations": {"Amplitude": false},
             "sentAt": "2024-05-01T09:00:00Z"},
            {"type": "track", "userId": "u", "event": "C", "context": null, "integrations": null, "sentAt": null}
        ],
        "context": {"library": {"name": "analytics-go", "version": "3.3.0"}, "locale": "en-US"},
        "integrations": {"All": false, "Amplitude": true, "Customer.io (Actions)": true},
        "sentAt": "2024-05-01T10:00:06.250Z"
    }))
    .expect("decodes");
    let envelope_before = serde_json::to_value(&batch).expect("serialises");
    let mut applied = batch.clone();
    applied.apply_envelope();
    let items: Vec<Value> = applied
        .batch
        .iter()
        .map(|m| serde_json::to_value(m).expect("serialises"))
        .collect();
    assert_eq!(
        items[0],
        json!({"type": "track", "userId": "u", "event": "A",
               "context": {"library": {"name": "analytics-go", "version": "3.3.0"}, "locale": "en-US"},
               "integrations": {"All": false, "Amplitude": true, "Customer.io (Actions)": true},
               "sentAt": "2024-05-01T10:00:06.250Z"})
    );
    assert_eq!(
        items[1],
        json!({"type": "track", "userId": "u", "event": "B",
               "context": {"ip": "192.0.2.1", "library": {"name": "item-lib"}, "locale": "en-US"},
               "integrations": {"All": false, "Amplitude": false, "Customer.io (Actions)": true},
               "sentAt": "2024-05-01T09:00:00Z"})
    );
    // An item that explicitly sent null keeps its null.
    assert_eq!(
        items[2],
        json!({"type": "track", "userId": "u", "event": "C", "context": null, "integrations": null, "sentAt": null})
    );
    // The envelope itself is unchanged.
    let Value::Object(mut after) = serde_json::to_value(&applied).expect("serialises") else {
        panic!("object");
    };
    let Value::Object(mut before) = envelope_before else {
        panic!("object");
    };
    after.remove("batch");
    before.remove("batch");
    assert_eq!(after, before);

    let messages = batch.into_messages();
    assert_eq!(messages.len(), 3);
    assert!(
        !messages[1]
            .integrations()
            .expect("merged")
            .is_enabled("Amplitude")
    );
    assert!(
        messages[0]
            .integrations()
            .expect("copied")
            .is_enabled("Customer.io (Actions)")
    );
    assert!(matches!(
        messages[0].integrations().and_then(|i| i.get("Amplitude")),
        Some(IntegrationSetting::Enabled(true))
    ));
}

#[test]
fn batch_fixture_fields_are_typed() {
    let batch = Batch::from_value(common::fixture("batch-go-sdk.json")).expect("decodes");
    assert_eq!(
        batch.message_id.as_deref(),
        Some("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a")
    );
    assert_eq!(
        batch.sent_at.as_ref().map(|t| t.instant().to_string()),
        Some("2024-05-01T10:15:31.000000001Z".to_owned())
    );
    assert!(batch.extra.is_empty());
    let basic = Batch::from_value(common::fixture("batch-basic.json")).expect("decodes");
    assert_eq!(
        basic.write_key.as_ref().map(|k| k.expose()),
        Some("WRITE_KEY_HERE")
    );
    assert_eq!(basic.len(), 2);
}

#[test]
fn batches_built_in_code_serialise_to_the_wire_shape() {
    let message = Message::track("E")
        .user_id("u")
        .message_id("m")
        .build()
        .expect("valid");
    let batch: Batch = std::iter::once(message).collect();
    assert_eq!(
        serde_json::to_value(&batch).expect("serialises"),
        json!({"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "m", "properties": {}}]})
    );
}

#[test]
fn bare_arrays_from_batching_webhooks_parse_leniently() {
    let body = serde_json::to_vec(&json!([
        {"type": "track", "userId": "u1", "event": "Audience Entered", "properties": {}},
        {"type": "identify", "userId": "u2", "traits": []},
        {"type": "identify", "userId": "u3", "traits": {}}
    ]))
    .expect("serialises");
    let parsed = Batch::from_array_slice_lenient(&body).expect("an array");
    assert_eq!(parsed.batch.len(), 2);
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(parsed.errors[0].index, 1);
    assert_eq!(parsed.errors[0].error.path(), Some("traits"));
    assert_eq!(parsed.batch.batch[1].user_id(), Some(&Id::from("u3")));
    assert!(matches!(
        Batch::from_array_value_lenient(json!({"batch": []})),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        Batch::from_array_slice_lenient(b"[{"),
        Err(Error::Json { .. })
    ));
}
