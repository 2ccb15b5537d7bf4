//! Property tests: the mapping never panics, whatever message, target and configuration it
//! gets; what it produces is always a valid operation list; its errors never show personal
//! data. Seeded, so a run is reproducible.

use cio_segment_sync::identity::{SkipReason, Target};
use cio_segment_sync::mapping::{Mapped, MappingConfig, map, map_at};
use customerio_client::Identifier;
use customerio_client::track::v2::Operation;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use segment_model::Message;
use segment_model::spec::LifecycleEvent;
use serde_json::{Map, Value, json};

/// Keys the mapping reads; mixed into generated maps so the interesting paths are hit.
const KEYS: &[&str] = &[
    "email",
    "createdAt",
    "created_at",
    "objectId",
    "object_id",
    "objectTypeId",
    "object_type_id",
    "objectAttributes",
    "relationshipAttributes",
    "url",
    "path",
    "name",
    "device_id",
    "token",
    "platform",
    "phone",
    "id",
];

/// An ISO-8601-ish string: sometimes valid, sometimes a near miss.
fn iso_like() -> impl Strategy<Value = String> {
    (
        0u32..10_000,
        0u32..14,
        0u32..33,
        prop::option::of((0u32..26, 0u32..61, prop::option::of(0u32..62))),
        0usize..11,
        prop::sample::select(vec!["Z", "+02:00", "-0700", "+05", "", "z", "+2:00"]),
    )
        .prop_map(|(y, mo, d, time, frac, offset)| {
            let mut text = format!("{y:04}-{mo:02}-{d:02}");
            if let Some((h, mi, s)) = time {
                text.push_str(&format!("T{h:02}:{mi:02}"));
                if let Some(s) = s {
                    text.push_str(&format!(":{s:02}"));
                    if frac > 0 {
                        text.push('.');
                        text.push_str(&"7".repeat(frac));
                    }
                }
                text.push_str(offset);
            }
            text
        })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[+0-9]{0,14}".prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        iso_like().prop_map(Value::from),
        (0usize..1200).prop_map(|n| Value::from("x".repeat(n))),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KEYS).prop_map(str::to_owned),
        "[a-zA-Z_]{1,8}",
        (0usize..200).prop_map(|n| "k".repeat(n)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(key(), value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// A personal value, recognisable in error texts.
fn personal(prefix: &'static str) -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{6,12}".prop_map(move |s| format!("{prefix}{s}"))
}

fn envelope_time() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        (
            1970u32..2200,
            1u32..13,
            1u32..29,
            0u32..24,
            0u32..60,
            0u32..1000,
        )
            .prop_map(|(y, mo, d, h, mi, ms)| {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:00.{ms:03}Z")
            }),
    )
}

fn event_name() -> impl Strategy<Value = Option<String>> {
    let lifecycle: Vec<String> = LifecycleEvent::ALL
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect();
    prop::option::weighted(
        0.95,
        prop_oneof![
            2 => prop::sample::select(lifecycle),
            2 => "\\PC{0,30}",
            1 => (95usize..110).prop_map(|n| "e".repeat(n)),
        ],
    )
}

#[derive(Debug, Clone)]
struct Input {
    message: Value,
    user_id: String,
    email: String,
    anonymous_id: String,
}

fn message() -> impl Strategy<Value = Input> {
    (
        (
            0usize..7,
            any::<bool>(),
            any::<bool>(),
            personal("uid_"),
            personal("anon_"),
            personal("mail_"),
        ),
        (
            event_name(),
            prop::option::weighted(0.8, "\\PC{0,120}"),
            envelope_time(),
        ),
        (
            prop::option::of(object()),
            prop::option::weighted(
                0.8,
                prop_oneof![
                    "[a-z]{0,8}",
                    Just("iPadOS".to_owned()),
                    Just("android".to_owned()),
                    Just("ios".to_owned()),
                ],
            ),
            prop::option::weighted(0.8, "[a-z0-9]{0,10}"),
            prop::option::weighted(
                0.9,
                prop_oneof![
                    "\\PC{0,10}".prop_map(Value::from),
                    any::<u32>().prop_map(Value::from)
                ],
            ),
            prop::option::of("[a-z0-9-]{0,20}"),
        ),
    )
        .prop_map(
            |(
                (kind, with_user, with_anon, user_id, anonymous_id, email),
                (event, name, timestamp),
                (body, device_type, token, group_id, message_id),
            )| {
                let kind = [
                    "identify", "track", "page", "screen", "group", "alias", "delete",
                ][kind];
                let mut m = Map::new();
                m.insert("type".into(), kind.into());
                if with_user {
                    m.insert("userId".into(), user_id.clone().into());
                }
                if with_anon {
                    m.insert("anonymousId".into(), anonymous_id.clone().into());
                }
                if let Some(id) = message_id {
                    m.insert("messageId".into(), id.into());
                }
                if let Some(ts) = timestamp {
                    m.insert("timestamp".into(), ts.into());
                }
                let mut body = body.unwrap_or_default();
                body.insert("email".into(), email.clone().into());
                match kind {
                    "identify" => {
                        m.insert("traits".into(), body.into());
                    }
                    "group" => {
                        if let Some(g) = group_id.clone() {
                            m.insert("groupId".into(), g);
                        }
                        m.insert("traits".into(), body.into());
                    }
                    "alias" => {
                        m.insert("previousId".into(), anonymous_id.clone().into());
                    }
                    "delete" => {}
                    _ => {
                        if let Some(event) = event {
                            m.insert("event".into(), event.into());
                        }
                        if let Some(name) = name {
                            m.insert("name".into(), name.into());
                        }
                        m.insert("properties".into(), body.into());
                    }
                }
                let mut device = Map::new();
                if let Some(t) = device_type {
                    device.insert("type".into(), t.into());
                }
                if let Some(t) = token {
                    device.insert("token".into(), t.into());
                }
                let mut context = json!({"device": device, "traits": {"email": email.clone()}});
                if let Some(g) = group_id {
                    context["groupId"] = g;
                }
                m.insert("context".into(), context);
                Input {
                    message: Value::Object(m),
                    user_id,
                    email,
                    anonymous_id,
                }
            },
        )
}

fn identifier(seed: u8, user_id: &str, email: &str) -> Identifier {
    match seed % 16 {
        0 => Identifier::id(""),
        1 => Identifier::id(user_id.repeat(20)),
        2..=5 => Identifier::email(email),
        6..=8 => Identifier::cio_id(user_id),
        _ => Identifier::id(user_id),
    }
}

fn target(input: &Input, kind: u8, a: u8, b: u8) -> Target {
    let is_alias = input.message["type"] == "alias";
    let kind = match kind % 10 {
        // An alias mostly resolves to a merge; anything else mostly to a person.
        0..=6 if is_alias => 3,
        0..=5 => 0,
        6 | 7 => 2,
        8 => 3,
        _ => 4,
    };
    match kind {
        0 => Target::Person {
            identifier: identifier(a, &input.user_id, &input.email),
            anonymous_id: b.is_multiple_of(2).then(|| input.anonymous_id.clone()),
        },
        2 => Target::Anonymous {
            anonymous_id: if a.is_multiple_of(16) {
                String::new()
            } else {
                input.anonymous_id.clone()
            },
        },
        3 => Target::Merge {
            primary: identifier(a, &input.user_id, &input.email),
            secondary: identifier(b, &input.anonymous_id, &input.email),
        },
        _ => Target::Skip(SkipReason::NoIdentity),
    }
}

fn mapping_config() -> impl Strategy<Value = MappingConfig> {
    (
        any::<[bool; 4]>(),
        prop::sample::select(vec![false, false, false, true]),
        prop::sample::select(vec!["url", "path", "name"]),
        prop::sample::select(vec!["fallback", "error"]),
        prop::sample::select(vec![
            "object_attributes_or_traits",
            "object_attributes_only",
            "traits",
        ]),
        prop::sample::select(vec!["error", "plain_event"]),
        prop::option::of(prop::sample::select(KEYS)),
    )
        .prop_map(|(flags, clamp, page, long, object, incomplete, renamed)| {
            let mut config = json!({
                "convert_timestamps": flags[0],
                "clamp_future_timestamps": clamp,
                "forward_device_events": flags[2],
                "page_name": page,
                "long_page_name": long,
                "object_attributes": object,
                "incomplete_lifecycle": incomplete,
            });
            if let Some(key) = renamed {
                config["traits"] = json!({"rename": {key: "renamed"}});
                config["properties"] = json!({"deny": [key]});
            }
            if flags[3] {
                config["events"] = json!({"deny": ["Application Opened"]});
            }
            serde_json::from_value(config).expect("generated config is valid")
        })
}

fn seeded(cases: u32) -> Config {
    Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x6d61_7070_696e_6721),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(seeded(2048))]

    #[test]
    fn map_never_panics_and_its_output_is_valid(
        input in message(),
        (kind, a, b) in (any::<u8>(), any::<u8>(), any::<u8>()),
        config in mapping_config(),
        now in prop::option::weighted(
            0.9,
            prop_oneof![any::<i64>(), 0i64..5_000_000_000],
        ),
    ) {
        let Ok(message) = Message::from_value(input.message.clone()) else {
            // Only messages segment-model accepts reach the mapping.
            return Ok(());
        };
        let target = target(&input, kind, a, b);
        let result = match now {
            Some(now) => map_at(&message, &target, &config, now),
            None => map(&message, &target, &config),
        };
        match result {
            Ok(Mapped::Operations(ops)) => {
                prop_assert!(!ops.is_empty());
                prop_assert!(ops.len() <= 2);
                for op in ops {
                    // Every operation is one the client itself would accept back.
                    let json = serde_json::to_value(&op).expect("serialises");
                    let back: Operation = serde_json::from_value(json.clone())
                        .map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
                    prop_assert_eq!(back, op);
                }
            }
            Ok(Mapped::Skip(_)) => {}
            Ok(other) => prop_assert!(false, "unexpected outcome {:?}", other),
            Err(err) => {
                let text = err.to_string();
                for secret in [&input.user_id, &input.email, &input.anonymous_id] {
                    prop_assert!(!text.contains(secret.as_str()), "{}", text);
                }
            }
        }
    }
}
