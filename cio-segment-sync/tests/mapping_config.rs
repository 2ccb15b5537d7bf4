//! Unit tests for the mapping configuration, the ISO-8601 detection table and error cases.
//! The end-to-end rules are covered by the golden fixtures (`mapping_golden.rs`).

use std::error::Error as _;

use cio_segment_sync::identity::{SkipReason, Target};
use cio_segment_sync::mapping::{
    IncompleteLifecycle, KeyRules, LongPageName, Mapped, MappingConfig, MappingError, NameFilter,
    ObjectAttributes, PageName, iso8601_unix_seconds, map, map_at,
};
use cio_segment_sync::outcome::describe;
use customerio_client::track::v2::ObjectTypeId;
use customerio_client::{ErrorKind, Identifier};
use segment_model::Message;
use serde_json::{Value, json};

fn config(value: Value) -> MappingConfig {
    serde_json::from_value(value).expect("valid config")
}

fn person(id: &str) -> Target {
    Target::Person {
        identifier: Identifier::id(id),
        anonymous_id: None,
    }
}

fn message(value: Value) -> Message {
    Message::from_value(value).expect("valid message")
}

fn ops(mapped: Mapped) -> Value {
    match mapped {
        Mapped::Operations(ops) => serde_json::to_value(ops).unwrap(),
        other => panic!("expected operations, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn defaults() {
    let default = MappingConfig::default();
    assert_eq!(config(json!({})), default);
    assert!(default.convert_timestamps);
    assert!(!default.clamp_future_timestamps);
    assert!(!default.forward_device_events);
    assert_eq!(default.page_name, PageName::Url);
    assert_eq!(default.long_page_name, LongPageName::Fallback);
    assert_eq!(default.default_object_type_id, ObjectTypeId::FIRST);
    assert_eq!(
        default.object_attributes,
        ObjectAttributes::ObjectAttributesOrTraits
    );
    assert_eq!(default.incomplete_lifecycle, IncompleteLifecycle::Error);
    assert_eq!(default.events, NameFilter::default());
    assert!(default.events.allows("Anything"));
}

#[test]
fn every_field_and_enum_spelling_parses() {
    let parsed = config(json!({
        "events": {"allow": ["A", "B"], "deny": ["B"], "rename": {"A": "a"}},
        "traits": {"allow": ["x"], "deny": ["y"], "rename": {"x": "z"}},
        "properties": {"deny": ["secret"]},
        "convert_timestamps": false,
        "clamp_future_timestamps": true,
        "page_name": "name",
        "long_page_name": "error",
        "default_object_type_id": "4",
        "object_attributes": "object_attributes_only",
        "forward_device_events": true,
        "incomplete_lifecycle": "plain_event"
    }));
    assert!(!parsed.convert_timestamps);
    assert!(parsed.clamp_future_timestamps);
    assert!(parsed.forward_device_events);
    assert_eq!(parsed.page_name, PageName::Name);
    assert_eq!(parsed.long_page_name, LongPageName::Error);
    assert_eq!(parsed.default_object_type_id.get(), 4);
    assert_eq!(
        parsed.object_attributes,
        ObjectAttributes::ObjectAttributesOnly
    );
    assert_eq!(parsed.incomplete_lifecycle, IncompleteLifecycle::PlainEvent);
    assert!(parsed.properties.deny.contains("secret"));

    for (value, expected) in [
        ("url", PageName::Url),
        ("path", PageName::Path),
        ("name", PageName::Name),
    ] {
        assert_eq!(config(json!({ "page_name": value })).page_name, expected);
    }
    assert_eq!(
        config(json!({"object_attributes": "traits"})).object_attributes,
        ObjectAttributes::Traits
    );
}

#[test]
fn mistakes_in_the_config_are_refused_and_named() {
    let cases = [
        (json!({"convert_timestamp": true}), "convert_timestamp"),
        (json!({"page_name": "title"}), "title"),
        (json!({"events": {"denied": ["x"]}}), "denied"),
        (json!({"default_object_type_id": "0"}), "object_type_id"),
        (json!({"default_object_type_id": "one"}), "object_type_id"),
        (json!({"incomplete_lifecycle": "ignore"}), "ignore"),
    ];
    for (value, named) in cases {
        let err = serde_json::from_value::<MappingConfig>(value.clone())
            .expect_err("must be refused")
            .to_string();
        assert!(err.contains(named), "{value}: {err}");
    }
}

#[test]
fn object_type_id_as_text_or_number() {
    for value in [json!("2"), json!(2)] {
        let parsed = config(json!({ "default_object_type_id": value }));
        assert_eq!(parsed.default_object_type_id.get(), 2, "{value}");
    }
    for value in [
        json!(0),
        json!("0"),
        json!(-1),
        json!("one"),
        json!(true),
        json!(4_294_967_296u64),
    ] {
        let err =
            serde_json::from_value::<MappingConfig>(json!({ "default_object_type_id": value }))
                .expect_err("refused");
        assert!(
            err.to_string().contains("default_object_type_id"),
            "{value}: {err}"
        );
    }
}

#[test]
fn a_config_serialises_to_what_it_parses_from() {
    let original = config(json!({
        "events": {"allow": ["A"], "rename": {"A": "a"}},
        "traits": {"deny": ["x"]},
        "page_name": "path",
        "default_object_type_id": 3,
        "incomplete_lifecycle": "plain_event"
    }));
    let text = serde_json::to_value(&original).unwrap();
    assert_eq!(text["default_object_type_id"], "3");
    assert_eq!(text["page_name"], "path");
    assert_eq!(config(text), original);
    let default = serde_json::to_value(MappingConfig::default()).unwrap();
    assert_eq!(config(default), MappingConfig::default());
}

#[test]
fn event_filter_allow_deny_and_rename() {
    let filter: NameFilter = serde_json::from_value(json!({
        "allow": ["Order Completed", "Signed Up"],
        "deny": ["Signed Up"],
        "rename": {"Order Completed": "order_completed"}
    }))
    .unwrap();
    assert!(filter.allows("Order Completed"));
    assert!(!filter.allows("Signed Up"), "deny wins over allow");
    assert!(!filter.allows("Page Scrolled"), "not on the allow list");
    assert!(!filter.allows("order completed"), "case-sensitive");
    assert_eq!(filter.rename("Order Completed"), "order_completed");
    assert_eq!(filter.rename("Signed Up"), "Signed Up");

    let deny_only: NameFilter = serde_json::from_value(json!({"deny": ["Debug"]})).unwrap();
    assert!(deny_only.allows("Anything else"));
    assert!(!deny_only.allows("Debug"));
}

#[test]
fn key_rules_keep_drop_rename() {
    let rules: KeyRules = serde_json::from_value(json!({
        "deny": ["password"],
        "rename": {"firstName": "first_name", "mail": "email"}
    }))
    .unwrap();
    let input = json!({
        "firstName": "Ada", "password": "x", "plan": "pro", "createdAt": "2024-01-01",
        "nested": {"password": "kept: only top-level keys are filtered"}
    });
    let out = rules.apply(input.as_object().unwrap(), &["createdAt"]);
    assert_eq!(
        Value::Object(out),
        json!({"first_name": "Ada", "plan": "pro",
               "nested": {"password": "kept: only top-level keys are filtered"}})
    );

    // A renamed key replaces a key of the same name, whichever comes first in the input.
    for input in [
        json!({"email": "sent@example.org", "mail": "renamed@example.org"}),
        json!({"mail": "renamed@example.org", "email": "sent@example.org"}),
    ] {
        let out = rules.apply(input.as_object().unwrap(), &[]);
        assert_eq!(Value::Object(out), json!({"email": "renamed@example.org"}));
    }

    let allow: KeyRules = serde_json::from_value(json!({"allow": ["plan", "password"],
                                                       "deny": ["password"]}))
    .unwrap();
    let out = allow.apply(
        json!({"plan": "pro", "password": "x", "other": 1})
            .as_object()
            .unwrap(),
        &[],
    );
    assert_eq!(Value::Object(out), json!({"plan": "pro"}));
}

#[test]
fn trait_and_property_rules_apply_to_their_own_calls_only() {
    let cfg = config(json!({
        "traits": {"deny": ["plan"]},
        "properties": {"rename": {"plan": "tier"}}
    }));
    let identify = message(json!({"type": "identify", "userId": "u", "traits": {"plan": "pro"}}));
    let track = message(json!({"type": "track", "userId": "u", "event": "E",
                               "properties": {"plan": "pro"}}));
    assert_eq!(
        ops(map(&identify, &person("u"), &cfg).unwrap()),
        json!([{"type": "person", "action": "identify", "identifiers": {"id": "u"}}])
    );
    assert_eq!(
        ops(map(&track, &person("u"), &cfg).unwrap())[0]["attributes"],
        json!({"tier": "pro"})
    );
}

// ---------------------------------------------------------------------------------------------
// ISO-8601 detection

#[test]
fn iso_detection_table() {
    let table: [(&str, Option<i64>); 12] = [
        ("2024-05-01", Some(1_714_521_600)),
        ("2024-05-01T10:15:30Z", Some(1_714_558_530)),
        ("2024-05-01T10:15:30.123456789+02:00", Some(1_714_551_330)),
        ("2024-05-01T12:15:30.123+0200", Some(1_714_558_530)),
        ("2024-05-01T10:15:30.123Z", Some(1_714_558_530)),
        ("+14155550100", None),
        ("12345", None),
        ("2024-13-01", None),
        ("May 1", None),
        ("2024-05-01T10:15:30", None),
        ("1714558530", None),
        ("2024-05-01T10:15:30.1234567891Z", None),
    ];
    for (text, expected) in table {
        assert_eq!(iso8601_unix_seconds(text), expected, "{text}");
    }
}

#[test]
fn iso_conversion_follows_the_toggle_but_created_at_and_timestamp_always_convert() {
    let msg = message(json!({
        "type": "identify", "userId": "u", "timestamp": "2024-05-01T10:15:30Z",
        "traits": {"createdAt": "2024-05-01", "birthday": "1990-04-17", "phone": "+14155550100"}
    }));
    let on = ops(map(&msg, &person("u"), &MappingConfig::default()).unwrap());
    assert_eq!(
        on[0]["attributes"],
        json!({"created_at": 1_714_521_600, "birthday": 640_310_400, "phone": "+14155550100"})
    );
    let off = ops(map(
        &msg,
        &person("u"),
        &config(json!({"convert_timestamps": false})),
    )
    .unwrap());
    assert_eq!(
        off[0]["attributes"],
        json!({"created_at": 1_714_521_600, "birthday": "1990-04-17", "phone": "+14155550100"})
    );
    assert_eq!(off[0]["timestamp"], 1_714_558_530);
}

// ---------------------------------------------------------------------------------------------
// Clock, skips and errors

#[test]
fn clamping_needs_a_clock_and_only_clamps_the_future() {
    let cfg = config(json!({"clamp_future_timestamps": true}));
    let msg = message(
        json!({"type": "track", "userId": "u", "event": "E", "messageId": "m",
                             "timestamp": "2030-01-01T00:00:00Z"}),
    );
    assert!(matches!(
        map(&msg, &person("u"), &cfg),
        Err(MappingError::ClockRequired)
    ));
    let clamped = ops(map_at(&msg, &person("u"), &cfg, 1_714_558_530).unwrap());
    let unclamped =
        ops(map_at(&msg, &person("u"), &MappingConfig::default(), 1_714_558_530).unwrap());
    assert_eq!(clamped[0]["timestamp"], 1_714_558_530);
    assert_eq!(unclamped[0]["timestamp"], 1_893_456_000);
    // The event id depends on the message, not on the clock.
    assert_eq!(clamped[0]["id"], unclamped[0]["id"]);
    let later = ops(map_at(&msg, &person("u"), &cfg, 1_800_000_000).unwrap());
    assert_eq!(later[0]["id"], clamped[0]["id"]);
}

#[test]
fn the_same_message_always_gets_the_same_event_id() {
    let msg = message(
        json!({"type": "track", "userId": "u", "event": "E", "messageId": "m-1",
                             "timestamp": "2024-05-01T10:15:30.123Z"}),
    );
    let first = ops(map(&msg, &person("u"), &MappingConfig::default()).unwrap());
    let again = ops(map(&msg, &person("u"), &MappingConfig::default()).unwrap());
    assert_eq!(first, again);
    assert_eq!(
        first[0]["id"],
        customerio_client::event_id::event_id("m-1", 1_714_558_530_123).to_string()
    );
    let other = message(
        json!({"type": "track", "userId": "u", "event": "E", "messageId": "m-2",
                               "timestamp": "2024-05-01T10:15:30.123Z"}),
    );
    let other = ops(map(&other, &person("u"), &MappingConfig::default()).unwrap());
    assert_ne!(first[0]["id"], other[0]["id"]);
}

#[test]
fn a_skip_target_passes_its_reason_through() {
    let msg = message(json!({"type": "identify", "userId": "u", "traits": {}}));
    for reason in [
        SkipReason::NoIdentity,
        SkipReason::OwnEcho,
        SkipReason::Duplicate,
        SkipReason::Custom("host says no".to_owned()),
    ] {
        assert_eq!(
            map(
                &msg,
                &Target::Skip(reason.clone()),
                &MappingConfig::default()
            )
            .unwrap(),
            Mapped::Skip(reason)
        );
    }
}

#[test]
fn a_denied_event_is_filtered_whatever_the_target() {
    let cfg = config(json!({"events": {"deny": ["E"]}}));
    let msg = message(json!({"type": "track", "userId": "u", "event": "E"}));
    for target in [
        person("u"),
        Target::Anonymous {
            anonymous_id: "a".to_owned(),
        },
        Target::Skip(SkipReason::NoIdentity),
    ] {
        assert_eq!(
            map(&msg, &target, &cfg).unwrap(),
            Mapped::Skip(SkipReason::Filtered)
        );
    }
}

#[test]
fn errors_name_the_field_and_never_the_value() {
    let secret_id = "usr_SECRET_7781";
    let secret_email = "private.person@example.org";
    let target = Target::Person {
        identifier: Identifier::email(secret_email),
        anonymous_id: Some("anon_SECRET_1".to_owned()),
    };
    let cases = [
        (
            json!({"type": "track", "userId": secret_id, "event": "Application Opened",
                   "context": {"device": {"type": "ios"}, "traits": {"email": secret_email}}}),
            "`context.device.token` is missing",
        ),
        (
            json!({"type": "track", "userId": secret_id, "event": "Application Opened",
                   "context": {"device": {"type": secret_id, "token": "t"}}}),
            "`context.device.type` is not an iOS or Android device type",
        ),
        (
            json!({"type": "group", "userId": secret_id, "groupId": secret_id,
                   "traits": {"objectTypeId": secret_email}}),
            "`traits.objectTypeId` is not a positive integer",
        ),
        (
            json!({"type": "identify", "userId": secret_id,
                   "traits": {"email": secret_email, "bio": secret_id.repeat(80)}}),
            "attribute `bio` is 1200 bytes",
        ),
        (
            json!({"type": "page", "userId": secret_id,
                   "properties": {"url": format!("https://example.com/{}", secret_email.repeat(5))}}),
            "`properties.url` is 150 bytes",
        ),
        (
            json!({"type": "track", "userId": secret_id, "event": "Object Deleted",
                   "properties": {"objectId": {"id": secret_id}}}),
            "`properties.objectId` is not a string or a number",
        ),
    ];
    for (value, expected) in cases {
        let err = map(&message(value.clone()), &target, &MappingConfig::default())
            .expect_err("must fail");
        // The whole chain (what a log or an answer shows) names the field, never the value.
        let text = describe(&err);
        assert!(text.contains(expected), "{value}: {text}");
        for secret in [secret_id, secret_email, "SECRET"] {
            assert!(!text.contains(secret), "{text}");
            assert!(!format!("{err:?}").contains(secret_email), "{err:?}");
        }
    }
}

#[test]
fn client_refusals_keep_their_source() {
    let msg = message(json!({"type": "alias", "userId": "u", "previousId": "u"}));
    let target = Target::Merge {
        primary: Identifier::id("u"),
        secondary: Identifier::id("u"),
    };
    let err = map(&msg, &target, &MappingConfig::default()).unwrap_err();
    let MappingError::Operation { call, source } = &err else {
        panic!("expected a client refusal, got {err:?}");
    };
    assert_eq!(*call, "alias");
    assert_eq!(source.kind(), ErrorKind::Invalid);
    assert!(err.source().is_some());
}

#[test]
fn report_events_are_unsupported_even_when_plain_events_are_allowed() {
    let cfg = config(json!({"incomplete_lifecycle": "plain_event"}));
    for event in ["Report Delivery Event", "Report Content Event"] {
        let msg = message(json!({"type": "track", "userId": "u", "event": event}));
        let err = map(&msg, &person("u"), &cfg).unwrap_err();
        assert!(
            matches!(err, MappingError::Unsupported { event: e } if e == event),
            "{err:?}"
        );
    }
}

#[test]
fn target_mismatches_point_at_the_resolver() {
    let merge = Target::Merge {
        primary: Identifier::id("a"),
        secondary: Identifier::id("b"),
    };
    let anonymous = Target::Anonymous {
        anonymous_id: "x".to_owned(),
    };
    let cases = [
        (
            json!({"type": "identify", "userId": "u"}),
            &merge,
            "identify",
            "merge",
        ),
        (
            json!({"type": "page", "userId": "u", "name": "P"}),
            &merge,
            "page",
            "merge",
        ),
        (
            json!({"type": "group", "userId": "u", "groupId": "g"}),
            &merge,
            "group",
            "merge",
        ),
        (
            json!({"type": "delete", "userId": "u"}),
            &merge,
            "delete",
            "merge",
        ),
        (
            json!({"type": "alias", "userId": "u", "previousId": "p"}),
            &anonymous,
            "alias",
            "anonymous",
        ),
    ];
    for (value, target, call, kind) in cases {
        let err = map(&message(value), target, &MappingConfig::default()).unwrap_err();
        assert!(
            matches!(err, MappingError::TargetMismatch { call: c, target: t } if c == call && t == kind),
            "{err:?}"
        );
    }
}

/// The TOML listing in `MappingConfig`'s docs is what a host writes; it must load, and give
/// the defaults it claims.
#[test]
fn documented_toml_listing_loads_as_the_defaults() {
    let source = include_str!("../src/mapping/to_customerio/config.rs");
    let start = source
        .find("/// ```toml\n")
        .expect("a TOML listing in the docs")
        + "/// ```toml\n".len();
    let end = start + source[start..].find("/// ```\n").expect("the listing ends");
    let listing: String = source[start..end]
        .lines()
        .map(|line| {
            line.trim_start()
                .strip_prefix("///")
                .unwrap_or(line)
                .strip_prefix(' ')
                .unwrap_or("")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config: cio_segment_sync::mapping::MappingConfig =
        toml::from_str(&listing).expect("the listing parses");
    assert_eq!(config, cio_segment_sync::mapping::MappingConfig::default());

    let custom: cio_segment_sync::mapping::MappingConfig = toml::from_str(
        "page_name = \"path\"\n[events]\ndeny = [\"Debug Ping\"]\nrename = { \"Order Completed\" = \"order_completed\" }\n",
    )
    .unwrap();
    assert!(!custom.events.allows("Debug Ping"));
    assert_eq!(custom.events.rename("Order Completed"), "order_completed");
    assert!(
        toml::from_str::<cio_segment_sync::mapping::MappingConfig>("page_nmae = \"path\"").is_err()
    );
}

#[test]
fn a_person_identified_by_a_rewritten_email_gets_that_form_as_the_email_attribute() {
    let identify = message(json!({
        "type": "identify", "anonymousId": "a-1", "traits": {"email": "Ada@Example.COM", "plan": "pro"}
    }));
    let target = Target::Person {
        identifier: Identifier::email("ada@example.com"),
        anonymous_id: None,
    };
    let mapped = ops(map(&identify, &target, &MappingConfig::default()).unwrap());
    assert_eq!(
        mapped[0]["identifiers"],
        json!({"email": "ada@example.com"})
    );
    assert_eq!(mapped[0]["attributes"]["email"], "ada@example.com");
    // Identified by id, the trait is sent as Segment had it.
    let mapped = ops(map(&identify, &person("u-1"), &MappingConfig::default()).unwrap());
    assert_eq!(mapped[0]["attributes"]["email"], "Ada@Example.COM");
}
