//! Generated messages and batches round-trip exactly, whatever ids, extras and payloads hold.

mod common;

use proptest::prelude::*;
use segment_model::{Batch, Message};
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e12f64..1.0e12).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn any_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-zA-Z_]{1,10}", any_json(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn any_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-zA-Z0-9_@.-]{0,24}".prop_map(Value::String),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e9f64..1.0e9).prop_map(Value::from),
    ]
}

/// ISO-8601 texts in every accepted notation.
fn any_timestamp() -> impl Strategy<Value = Value> {
    let date = (1970u32..2100, 1u32..=12, 1u32..=28);
    let time = (
        0u32..24,
        0u32..60,
        0u32..60,
        0usize..=9,
        0u32..1_000_000_000,
    );
    let offset = prop_oneof![
        Just("Z".to_owned()),
        Just("z".to_owned()),
        (0u32..14, 0u32..60, any::<bool>())
            .prop_map(|(h, m, neg)| { format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' }) }),
        (0u32..14, prop_oneof![Just(0u32), Just(30)], any::<bool>())
            .prop_map(|(h, m, neg)| { format!("{}{h:02}{m:02}", if neg { '-' } else { '+' }) }),
    ];
    prop_oneof![
        date.clone()
            .prop_map(|(y, mo, d)| Value::String(format!("{y:04}-{mo:02}-{d:02}"))),
        (date, time, offset).prop_map(|((y, mo, d), (h, mi, s, digits, frac), off)| {
            let fraction = if digits == 0 {
                String::new()
            } else {
                let all = format!("{frac:09}");
                format!(".{}", &all[..digits])
            };
            Value::String(format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}{off}"
            ))
        }),
    ]
}

fn any_integrations() -> impl Strategy<Value = Value> {
    let setting = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any_object(),
        any_json(),
    ];
    prop::collection::btree_map(
        prop_oneof![Just("All".to_owned()), "[A-Za-z. ()]{1,16}"],
        setting,
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A context with standard keys holding either their documented types or anything at all
/// (context decoding is lenient), plus unknown keys.
fn any_context() -> impl Strategy<Value = Value> {
    let standard = prop_oneof![
        (Just("ip"), "[0-9.]{0,15}".prop_map(Value::String)),
        (Just("active"), any::<bool>().prop_map(Value::Bool)),
        (Just("locale"), "[a-z]{2}-[A-Z]{2}".prop_map(Value::String)),
        (
            Just("library"),
            ("[a-z-]{1,12}", "[0-9.]{1,6}").prop_map(|(n, v)| json!({"name": n, "version": v}))
        ),
        (
            Just("app"),
            (any_json(), any_json()).prop_map(|(b, x)| json!({"build": b, "x": x}))
        ),
        (
            Just("device"),
            (any::<bool>(), "[a-z]{0,8}")
                .prop_map(|(t, ty)| json!({"adTrackingEnabled": t, "type": ty}))
        ),
        (
            Just("location"),
            (any_id(), any_id()).prop_map(|(a, b)| json!({"latitude": a, "longitude": b}))
        ),
        (
            Just("screen"),
            (any::<u32>(), any_json()).prop_map(|(w, h)| json!({"width": w, "height": h}))
        ),
        (Just("traits"), any_object()),
        (Just("groupId"), any_id()),
        (
            Just("externalIds"),
            prop::collection::vec(any_object(), 0..3).prop_map(Value::Array)
        ),
        (Just("personas"), any_object()),
        (Just("consent"), any_object()),
        (Just("userAgentData"), any_object()),
        (Just("channel"), any_json()),
        (Just("page"), any_json()),
        (Just("x_custom"), any_json()),
    ];
    prop::collection::vec(standard, 0..8).prop_map(|pairs| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    })
}

/// Optional entry: absent, null, or a value from `strategy`.
fn maybe(strategy: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Value::Null)),
        4 => strategy.prop_map(Some),
    ]
}

const KINDS: [&str; 7] = [
    "identify", "track", "page", "screen", "group", "alias", "delete",
];

fn any_message() -> impl Strategy<Value = Value> {
    let envelope = (
        maybe("[a-zA-Z0-9-]{0,40}".prop_map(Value::String)),
        maybe(any_id()),
        maybe(any_id()),
        (
            maybe(any_timestamp()),
            maybe(any_timestamp()),
            maybe(any_timestamp()),
            maybe(any_timestamp()),
        ),
        maybe(any_context()),
        maybe(any_integrations()),
        maybe(prop_oneof![
            any::<u8>().prop_map(Value::from),
            "[0-9.]{1,4}".prop_map(Value::String)
        ]),
        maybe("[a-z]{1,8}".prop_map(Value::String)),
        maybe(any_object()),
    );
    let call = (
        maybe("\\PC{0,20}".prop_map(Value::String)),
        maybe(any_object()),
        maybe(any_object()),
        maybe(any_id()),
        maybe("\\PC{0,10}".prop_map(Value::String)),
    );
    let extra = prop::collection::btree_map("x_[a-zA-Z0-9_]{1,10}", any_json(), 0..4);
    (0..KINDS.len(), envelope, call, extra).prop_map(|(kind, env, call, extra)| {
        let (
            message_id,
            user_id,
            anonymous_id,
            (ts, ots, sent, recv),
            context,
            integrations,
            version,
            channel,
            metadata,
        ) = env;
        let (text, object_a, object_b, id, short) = call;
        let mut map = Map::new();
        map.insert("type".into(), Value::from(KINDS[kind]));
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.to_owned(), value);
            }
        };
        put("messageId", message_id);
        put("userId", user_id);
        put("anonymousId", anonymous_id);
        put("timestamp", ts);
        put("originalTimestamp", ots);
        put("sentAt", sent);
        put("receivedAt", recv);
        put("context", context);
        put("integrations", integrations);
        put("version", version);
        put("channel", channel);
        put("_metadata", metadata);
        match KINDS[kind] {
            "identify" => put("traits", object_a),
            "track" => {
                put("event", text);
                put("properties", object_a);
            }
            "page" | "screen" => {
                put("name", text);
                put("category", short);
                put("properties", object_a);
            }
            "group" => {
                put("groupId", id);
                put("traits", object_b);
            }
            "alias" => put("previousId", id),
            _ => {}
        }
        for (key, value) in extra {
            map.insert(key, value);
        }
        Value::Object(map)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_messages_round_trip_exactly(input in any_message()) {
        let message = Message::from_value(input.clone())
            .map_err(|err| TestCaseError::fail(format!("{err}")))?;
        let text = serde_json::to_string(&message).expect("serialises");
        common::assert_no_duplicate_keys(&text);
        let output: Value = serde_json::from_str(&text).expect("valid JSON");
        prop_assert_eq!(output, input);
        // Validation never panics, whatever it finds.
        let _ = message.validate();
    }

    #[test]
    fn generated_batches_round_trip_exactly(
        items in prop::collection::vec(any_message(), 0..6),
        context in maybe(any_context()),
        sent_at in maybe(any_timestamp()),
        extra in prop::collection::btree_map("x_[a-z]{1,6}", any_json(), 0..3),
    ) {
        let mut map = Map::new();
        map.insert("batch".into(), Value::Array(items));
        if let Some(context) = context {
            map.insert("context".into(), context);
        }
        if let Some(sent_at) = sent_at {
            map.insert("sentAt".into(), sent_at);
        }
        map.extend(extra);
        let input = Value::Object(map);
        let batch = Batch::from_value(input.clone())
            .map_err(|err| TestCaseError::fail(format!("{err}")))?;
        prop_assert_eq!(serde_json::to_value(&batch).expect("serialises"), input);
        // Applying the envelope never panics and keeps every item.
        let count = batch.len();
        prop_assert_eq!(batch.into_messages().len(), count);
    }
}
