//! Track API v2: every operation's exact JSON (typed operation → expected JSON, and back),
//! the validation done by constructors and by deserialisation, and the `entity` / `batch` /
//! `send_packed` calls against a mock server.

use std::time::Duration;

use customerio_client::error::ApiError;
use customerio_client::track::packer::{BatchPacker, PackerLimits};
use customerio_client::track::v2::{
    AddDevice, AnonymousId, BatchOutcome, DeleteDevice, DeliveryEvent, DeliveryMetric, Device,
    EventTarget, Merge, ObjectIdentifiers, ObjectIdentify, ObjectIdentifyAnonymous,
    ObjectRelationships, ObjectTypeId, Operation, PersonEvent, PersonIdentify, PersonRelationships,
    Platform, Relationship,
};
use customerio_client::{
    ClientConfig, Error, ErrorKind, Identifier, Phase, Region, SiteId, TrackApiKey, TrackClient,
};
use serde_json::{Map, Value, json};
use ulid::Ulid;
use wiremock::matchers::{body_bytes, body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Helpers.

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn ulid(text: &str) -> Ulid {
    Ulid::from_string(text).unwrap()
}

fn acme() -> ObjectIdentifiers {
    ObjectIdentifiers::new(ObjectTypeId::FIRST, "acme").unwrap()
}

/// The typed operation serialises to exactly `expected`, and `expected` decodes back to the
/// same typed operation.
#[track_caller]
fn assert_fixture(op: &Operation, expected: Value) {
    assert_eq!(serde_json::to_value(op).unwrap(), expected, "serialise");
    assert_eq!(op.entity_type(), expected["type"], "entity_type()");
    assert_eq!(op.action(), expected["action"], "action()");
    let back: Operation = serde_json::from_value(expected.clone()).unwrap();
    assert_eq!(&back, op, "deserialise");
    // The text form decodes to the same value too (no duplicate keys).
    let text = serde_json::to_string(op).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);
}

// ---------------------------------------------------------------------------------------------
// Fixture pairs: person actions.

#[test]
fn person_identify() {
    let op = PersonIdentify::new(Identifier::id("user-42"))
        .unwrap()
        .with_timestamp(1717172400)
        .unwrap()
        .with_attributes(map(
            json!({"email": "ada@example.com", "plan": "pro", "_update": true}),
        ))
        .unwrap()
        .with_relationships(vec![
            Relationship::new(acme())
                .with_attributes(map(json!({"role": "admin"})))
                .unwrap(),
        ])
        .unwrap();
    assert_fixture(
        &op.into(),
        json!({
            "type": "person", "action": "identify", "identifiers": {"id": "user-42"},
            "timestamp": 1717172400,
            "attributes": {"email": "ada@example.com", "plan": "pro", "_update": true},
            "cio_relationships": [{
                "identifiers": {"object_type_id": "1", "object_id": "acme"},
                "relationship_attributes": {"role": "admin"}
            }]
        }),
    );
}

#[test]
fn person_identify_minimal_and_by_every_identifier_kind() {
    for (who, identifiers) in [
        (Identifier::id("u1"), json!({"id": "u1"})),
        (
            Identifier::email("ada@example.com"),
            json!({"email": "ada@example.com"}),
        ),
        // The cio_ prefix is stripped: v2 takes the raw value.
        (
            Identifier::cio_id("cio_a3000001"),
            json!({"cio_id": "a3000001"}),
        ),
        (
            Identifier::phone("+14155550100"),
            json!({"phone": "+14155550100"}),
        ),
    ] {
        let op: Operation = PersonIdentify::new(who).unwrap().into();
        assert_fixture(
            &op,
            json!({"type": "person", "action": "identify", "identifiers": identifiers}),
        );
    }
}

#[test]
fn person_delete_suppress_unsuppress() {
    for (op, action) in [
        (
            Operation::delete_person(Identifier::id("u1")).unwrap(),
            "delete",
        ),
        (
            Operation::suppress_person(Identifier::id("u1")).unwrap(),
            "suppress",
        ),
        (
            Operation::unsuppress_person(Identifier::id("u1")).unwrap(),
            "unsuppress",
        ),
    ] {
        assert_eq!(op.action(), action);
        assert_fixture(
            &op,
            json!({"type": "person", "action": action, "identifiers": {"id": "u1"}}),
        );
    }
}

#[test]
fn person_event() {
    let op: Operation = PersonEvent::new(Identifier::email("bob@example.com"), "trial_started")
        .unwrap()
        .with_id(ulid("01J0ZQ9W2D4F6H8J0K2M4N6P8R"))
        .with_timestamp(1717172410)
        .unwrap()
        .with_attributes(map(
            json!({"source": "ads", "recipient": "ops@example.com"}),
        ))
        .unwrap()
        .into();
    assert_fixture(
        &op,
        json!({
            "type": "person", "action": "event", "identifiers": {"email": "bob@example.com"},
            "name": "trial_started", "id": "01J0ZQ9W2D4F6H8J0K2M4N6P8R", "timestamp": 1717172410,
            "attributes": {"source": "ads", "recipient": "ops@example.com"}
        }),
    );
}

#[test]
fn person_page_and_screen() {
    let page = Operation::page(
        PersonEvent::new(Identifier::id("user-42"), "/pricing")
            .unwrap()
            .with_attribute("referrer", "https://google.com")
            .unwrap(),
    );
    assert_fixture(
        &page,
        json!({"type": "person", "action": "page", "identifiers": {"id": "user-42"},
               "name": "/pricing", "attributes": {"referrer": "https://google.com"}}),
    );
    let screen = Operation::screen(
        PersonEvent::new(Identifier::id("user-42"), "Checkout")
            .unwrap()
            .with_timestamp(1717172100)
            .unwrap(),
    );
    assert_fixture(
        &screen,
        json!({"type": "person", "action": "screen", "identifiers": {"id": "user-42"},
               "name": "Checkout", "timestamp": 1717172100}),
    );
}

#[test]
fn anonymous_person_event_is_an_explicit_variant() {
    let op: Operation = PersonEvent::new(EventTarget::anonymous("anon-7f3c").unwrap(), "viewed")
        .unwrap()
        .into();
    assert_fixture(
        &op,
        json!({"type": "person", "action": "event",
               "identifiers": {"anonymous_id": "anon-7f3c"}, "name": "viewed"}),
    );
    let Operation::Person(customerio_client::track::v2::PersonOperation::Event(event)) = &op else {
        panic!("{op:?}");
    };
    assert_eq!(
        event.target(),
        &EventTarget::Anonymous(AnonymousId::new("anon-7f3c").unwrap())
    );
    // Anonymous ids are not accepted where a known person is required.
    let err = serde_json::from_value::<Operation>(json!({
        "type": "person", "action": "identify", "identifiers": {"anonymous_id": "anon-7f3c"}
    }))
    .unwrap_err();
    assert!(!err.to_string().contains("anon-7f3c"), "{err}");
}

#[test]
fn person_relationships() {
    let rels = PersonRelationships::new(
        Identifier::id("u1"),
        vec![
            Relationship::new(acme()),
            Relationship::new(ObjectIdentifiers::cio_object_id("obj-9").unwrap())
                .with_attributes(map(json!({"since": 2020})))
                .unwrap(),
        ],
    )
    .unwrap();
    let expected_rels = json!([
        {"identifiers": {"object_type_id": "1", "object_id": "acme"}},
        {"identifiers": {"cio_object_id": "obj-9"}, "relationship_attributes": {"since": 2020}}
    ]);
    assert_fixture(
        &Operation::add_person_relationships(rels.clone()),
        json!({"type": "person", "action": "add_relationships", "identifiers": {"id": "u1"},
               "cio_relationships": expected_rels}),
    );
    assert_fixture(
        &Operation::delete_person_relationships(rels),
        json!({"type": "person", "action": "delete_relationships", "identifiers": {"id": "u1"},
               "cio_relationships": expected_rels}),
    );
}

#[test]
fn person_add_and_delete_device() {
    let device = Device::new("fcm-token-1", Platform::Android)
        .unwrap()
        .with_last_used(1717172300)
        .unwrap()
        .with_attribute("app_version", "3.2.1")
        .with_attribute("push_enabled", "true");
    let add: Operation = AddDevice::new(Identifier::id("u1"), device).unwrap().into();
    assert_fixture(
        &add,
        json!({"type": "person", "action": "add_device", "identifiers": {"id": "u1"},
               "device": {"token": "fcm-token-1", "platform": "android", "last_used": 1717172300,
                          "attributes": {"app_version": "3.2.1", "push_enabled": "true"}}}),
    );
    let ios: Operation = AddDevice::new(
        Identifier::id("u1"),
        Device::new("apns-1", Platform::Ios).unwrap(),
    )
    .unwrap()
    .into();
    assert_fixture(
        &ios,
        json!({"type": "person", "action": "add_device", "identifiers": {"id": "u1"},
               "device": {"token": "apns-1", "platform": "ios"}}),
    );
    let delete: Operation = DeleteDevice::new(Identifier::id("u1"), "fcm-token-1")
        .unwrap()
        .into();
    assert_fixture(
        &delete,
        json!({"type": "person", "action": "delete_device", "identifiers": {"id": "u1"},
               "device": {"token": "fcm-token-1"}}),
    );
}

#[test]
fn person_merge() {
    let op: Operation = Merge::new(Identifier::id("user-42"), Identifier::cio_id("cio_a300"))
        .unwrap()
        .into();
    assert_fixture(
        &op,
        json!({"type": "person", "action": "merge",
               "primary": {"id": "user-42"}, "secondary": {"cio_id": "a300"}}),
    );
}

#[test]
fn merge_refuses_phone_on_either_side_with_a_typed_error() {
    for (primary, secondary, side) in [
        (
            Identifier::phone("+14155550100"),
            Identifier::id("u1"),
            "primary",
        ),
        (
            Identifier::id("u1"),
            Identifier::phone("+14155550100"),
            "secondary",
        ),
    ] {
        let err = Merge::new(primary, secondary).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.phase(), Phase::NotSent);
        let shown = err.to_string();
        assert!(shown.contains(side) && shown.contains("phone"), "{shown}");
        assert!(!shown.contains("4155550100"), "{shown}");
    }
    // Decoding runs the same check.
    let err = serde_json::from_value::<Operation>(json!({
        "type": "person", "action": "merge",
        "primary": {"id": "u1"}, "secondary": {"phone": "+14155550100"}
    }))
    .unwrap_err();
    assert!(err.to_string().contains("phone"), "{err}");
    assert!(Merge::new(Identifier::id("u1"), Identifier::id("u1")).is_err());
}

// ---------------------------------------------------------------------------------------------
// Fixture pairs: object and delivery actions.

#[test]
fn object_identify() {
    let op: Operation = ObjectIdentify::new(acme())
        .unwrap()
        .with_attributes(map(json!({"name": "Acme", "legacy": null})))
        .unwrap()
        .with_relationships(vec![
            Relationship::new(Identifier::id("user-42"))
                .with_attributes(map(json!({"role": "admin"})))
                .unwrap(),
            Relationship::new(Identifier::email("bob@example.com")),
        ])
        .unwrap()
        .into();
    assert_fixture(
        &op,
        json!({"type": "object", "action": "identify",
        "identifiers": {"object_type_id": "1", "object_id": "acme"},
        "attributes": {"name": "Acme", "legacy": null},
        "cio_relationships": [
            {"identifiers": {"id": "user-42"}, "relationship_attributes": {"role": "admin"}},
            {"identifiers": {"email": "bob@example.com"}}
        ]}),
    );
    let by_cio: Operation =
        ObjectIdentify::new(ObjectIdentifiers::cio_object_id("c0ffee").unwrap())
            .unwrap()
            .into();
    assert_fixture(
        &by_cio,
        json!({"type": "object", "action": "identify", "identifiers": {"cio_object_id": "c0ffee"}}),
    );
}

#[test]
fn object_identify_anonymous() {
    let op: Operation = ObjectIdentifyAnonymous::new(
        ObjectIdentifiers::new(ObjectTypeId::new(2).unwrap(), "team-7").unwrap(),
    )
    .unwrap()
    .with_relationships(vec![Relationship::new(AnonymousId::new("anon-1").unwrap())])
    .unwrap()
    .into();
    assert_fixture(
        &op,
        json!({"type": "object", "action": "identify_anonymous",
               "identifiers": {"object_type_id": "2", "object_id": "team-7"},
               "cio_relationships": [{"identifiers": {"anonymous_id": "anon-1"}}]}),
    );
}

#[test]
fn object_delete_and_relationships() {
    assert_fixture(
        &Operation::delete_object(acme()).unwrap(),
        json!({"type": "object", "action": "delete",
               "identifiers": {"object_type_id": "1", "object_id": "acme"}}),
    );
    let rels =
        ObjectRelationships::new(acme(), vec![Relationship::new(Identifier::id("u1"))]).unwrap();
    for (op, action) in [
        (
            Operation::add_object_relationships(rels.clone()),
            "add_relationships",
        ),
        (
            Operation::delete_object_relationships(rels),
            "delete_relationships",
        ),
    ] {
        assert_fixture(
            &op,
            json!({"type": "object", "action": action,
                   "identifiers": {"object_type_id": "1", "object_id": "acme"},
                   "cio_relationships": [{"identifiers": {"id": "u1"}}]}),
        );
    }
}

#[test]
fn delivery_event() {
    let op: Operation = DeliveryEvent::new(
        "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
        DeliveryMetric::Opened,
        "fcm-1",
    )
    .unwrap()
    .into();
    assert_fixture(
        &op,
        json!({"type": "delivery", "action": "event",
               "identifiers": {"id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY"}, "name": "opened",
               "attributes": {"device_token": "fcm-1"}}),
    );
    for (metric, name) in [
        (DeliveryMetric::Converted, "converted"),
        (DeliveryMetric::Delivered, "delivered"),
        (DeliveryMetric::Other("clicked".into()), "clicked"),
    ] {
        let op: Operation = DeliveryEvent::new("d1", metric, "t").unwrap().into();
        assert_eq!(serde_json::to_value(&op).unwrap()["name"], name);
    }
    // An unknown metric decodes into the catch-all and is written back as it was.
    let back: Operation = serde_json::from_value(json!({
        "type": "delivery", "action": "event", "identifiers": {"id": "d1"},
        "name": "bounced", "attributes": {"device_token": "t"}
    }))
    .unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap()["name"], "bounced");
}

#[test]
fn the_reference_batch_example_round_trips() {
    // The batch example of the Customer.io reference, §3.4.
    let ops: Vec<Operation> = vec![
        PersonIdentify::new(Identifier::id("user-42"))
            .unwrap()
            .with_timestamp(1717172400)
            .unwrap()
            .with_attributes(map(json!({"email": "ada@example.com", "plan": "pro"})))
            .unwrap()
            .into(),
        PersonEvent::new(Identifier::email("bob@example.com"), "trial_started")
            .unwrap()
            .with_id(ulid("01J0ZQ9W2D4F6H8J0K2M4N6P8R"))
            .with_timestamp(1717172410)
            .unwrap()
            .with_attribute("source", "ads")
            .unwrap()
            .into(),
        Operation::page(PersonEvent::new(Identifier::id("user-42"), "/pricing").unwrap()),
        Merge::new(Identifier::id("user-42"), Identifier::id("anon-merge-1"))
            .unwrap()
            .into(),
        ObjectIdentify::new(acme())
            .unwrap()
            .with_attributes(map(json!({"name": "Acme"})))
            .unwrap()
            .with_relationships(vec![
                Relationship::new(Identifier::id("user-42"))
                    .with_attributes(map(json!({"role": "admin"})))
                    .unwrap(),
            ])
            .unwrap()
            .into(),
    ];
    let expected = reference_batch_json();
    assert_eq!(json!({"batch": ops}), expected);
    let decoded: Vec<Operation> = serde_json::from_value(expected["batch"].clone()).unwrap();
    assert_eq!(decoded, ops);
}

fn reference_batch_json() -> Value {
    json!({
      "batch": [
        {"type": "person", "action": "identify", "identifiers": {"id": "user-42"},
         "timestamp": 1717172400, "attributes": {"email": "ada@example.com", "plan": "pro"}},
        {"type": "person", "action": "event", "identifiers": {"email": "bob@example.com"},
         "name": "trial_started", "id": "01J0ZQ9W2D4F6H8J0K2M4N6P8R", "timestamp": 1717172410,
         "attributes": {"source": "ads"}},
        {"type": "person", "action": "page", "identifiers": {"id": "user-42"}, "name": "/pricing"},
        {"type": "person", "action": "merge", "primary": {"id": "user-42"}, "secondary": {"id": "anon-merge-1"}},
        {"type": "object", "action": "identify", "identifiers": {"object_type_id": "1", "object_id": "acme"},
         "attributes": {"name": "Acme"}, "cio_relationships": [{"identifiers": {"id": "user-42"}, "relationship_attributes": {"role": "admin"}}]}
      ]
    })
}

#[test]
fn unknown_keys_survive_a_round_trip_once() {
    let input = json!({
        "type": "person", "action": "identify", "identifiers": {"id": "u1"},
        "attributes": {"a": 1}, "new_top_level": [1, 2],
        "cio_relationships": [{"identifiers": {"cio_object_id": "o"}, "new_rel_key": true}]
    });
    let op: Operation = serde_json::from_value(input.clone()).unwrap();
    assert_eq!(serde_json::to_value(&op).unwrap(), input);
    let text = serde_json::to_string(&op).unwrap();
    assert_eq!(text.matches("new_top_level").count(), 1);
    assert_eq!(text.matches("new_rel_key").count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Validation.

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, names: &str, secret: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert_eq!(err.phase(), Phase::NotSent);
    let shown = err.to_string();
    assert!(shown.contains(names), "{shown:?} should name {names:?}");
    assert!(
        secret.is_empty() || !shown.contains(secret),
        "{shown:?} leaks {secret:?}"
    );
}

#[test]
fn constructors_check_the_documented_limits() {
    // Identifiers: empty and over 150 bytes.
    assert_invalid(PersonIdentify::new(Identifier::id("")), "empty", "");
    assert!(PersonIdentify::new(Identifier::id("i".repeat(150))).is_ok());
    assert_invalid(
        PersonIdentify::new(Identifier::email(format!("{}@x.io", "s".repeat(150)))),
        "bytes",
        "sss",
    );
    // Event name: 100 bytes fit, 101 do not.
    assert!(PersonEvent::new(Identifier::id("u"), "e".repeat(100)).is_ok());
    assert_invalid(
        PersonEvent::new(Identifier::id("u"), "e".repeat(101)),
        "event name",
        "",
    );
    assert_invalid(PersonEvent::new(Identifier::id("u"), ""), "event name", "");
    // Event attributes: 100 000 bytes in total. {"k":"…"} is 8 bytes of wrapper.
    let event = || PersonEvent::new(Identifier::id("u"), "e").unwrap();
    assert!(
        event()
            .with_attributes(map(json!({"k": "x".repeat(100_000 - 8)})))
            .is_ok()
    );
    assert_invalid(
        event().with_attributes(map(json!({"k": "x".repeat(100_000 - 7)}))),
        "event data",
        "xxx",
    );
    // Person attributes: value 1000 bytes, name 150 bytes, 300 attributes.
    let person = || PersonIdentify::new(Identifier::id("u")).unwrap();
    assert!(person().with_attribute("plan", "v".repeat(1000)).is_ok());
    assert_invalid(
        person().with_attribute("plan", "v".repeat(1001)),
        "`plan` is 1001 bytes",
        "vvv",
    );
    assert_invalid(person().with_attribute("n".repeat(151), 1), "name", "");
    let many: Map<String, Value> = (0..301).map(|i| (format!("a{i}"), json!(i))).collect();
    assert_invalid(person().with_attributes(many), "301 attributes", "");
    // Timestamps in milliseconds are refused.
    assert!(person().with_timestamp(9_999_999_999).is_ok());
    assert_invalid(
        person().with_timestamp(1_717_172_400_000),
        "milliseconds",
        "",
    );
    // Objects: id ≤ 150 bytes, type id ≥ 1, relationships required where documented.
    assert!(ObjectIdentifiers::new(ObjectTypeId::FIRST, "o".repeat(150)).is_ok());
    assert_invalid(
        ObjectIdentifiers::new(ObjectTypeId::FIRST, "o".repeat(151)),
        "object_id is 151 bytes",
        "ooo",
    );
    assert_invalid(ObjectTypeId::new(0), "object_type_id", "");
    assert_invalid("x1".parse::<ObjectTypeId>(), "object_type_id", "");
    assert_invalid(
        PersonRelationships::new(Identifier::id("u"), vec![]),
        "cio_relationships is empty",
        "",
    );
    assert_invalid(
        ObjectRelationships::new(acme(), vec![Relationship::new(Identifier::id(""))]),
        "cio_relationships[0]",
        "",
    );
    // Object attributes: the person limits plus 100 000 bytes in total.
    let big: Map<String, Value> = (0..101)
        .map(|i| (format!("a{i:03}"), json!("v".repeat(1000))))
        .collect();
    assert_invalid(
        ObjectIdentify::new(acme()).unwrap().with_attributes(big),
        "in total",
        "vvv",
    );
    // Devices, deliveries, anonymous ids: required strings are not empty.
    assert_invalid(Device::new("", Platform::Ios), "device.token", "");
    assert_invalid(
        DeleteDevice::new(Identifier::id("u"), ""),
        "device.token",
        "",
    );
    assert_invalid(
        DeliveryEvent::new("", DeliveryMetric::Opened, "t"),
        "identifiers.id",
        "",
    );
    assert_invalid(
        DeliveryEvent::new("d", DeliveryMetric::Opened, ""),
        "device_token",
        "",
    );
    assert_invalid(EventTarget::anonymous(""), "anonymous_id is empty", "");
}

#[test]
fn decoding_runs_the_same_checks() {
    let cases = [
        (
            json!({"type": "person", "action": "event", "identifiers": {"id": "u"}, "name": "e".repeat(101)}),
            "event name",
        ),
        (
            json!({"type": "person", "action": "event", "identifiers": {"id": "u"}, "name": "e", "id": "not-a-ulid"}),
            "ULID",
        ),
        (
            json!({"type": "person", "action": "identify", "identifiers": {"id": "u", "email": "a@b.c"}}),
            "",
        ),
        (
            json!({"type": "object", "action": "delete",
                   "identifiers": {"object_type_id": "1", "object_id": "a", "cio_object_id": "b"}}),
            "either",
        ),
        (
            json!({"type": "object", "action": "delete", "identifiers": {"object_type_id": "0", "object_id": "a"}}),
            "object_type_id",
        ),
        (
            json!({"type": "person", "action": "add_relationships", "identifiers": {"id": "u"}, "cio_relationships": []}),
            "cio_relationships is empty",
        ),
        (
            json!({"type": "person", "action": "teleport", "identifiers": {"id": "u"}}),
            "teleport",
        ),
        (
            json!({"type": "person", "action": "identify", "identifiers": {"id": "u"}, "timestamp": 1717172400000_i64}),
            "milliseconds",
        ),
    ];
    for (input, names) in cases {
        let err = serde_json::from_value::<Operation>(input.clone()).unwrap_err();
        assert!(err.to_string().contains(names), "{input}: {err}");
    }
}

#[test]
fn event_ids_are_typed_ulids_in_text_form() {
    let id = customerio_client::event_id::event_id("msg-1", 1_717_172_000_000);
    let op: Operation = PersonEvent::new(Identifier::id("u"), "e")
        .unwrap()
        .with_id(id)
        .into();
    let value = serde_json::to_value(&op).unwrap();
    assert_eq!(value["id"], "01HZ7PTN80786Y6Y9JX2RSEHQJ");
}

// ---------------------------------------------------------------------------------------------
// HTTP.

fn client(server: &MockServer) -> TrackClient {
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&server.uri())
        .unwrap();
    TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap()
}

// printf 'site:key' | base64 → c2l0ZTprZXk=
const AUTH: &str = "Basic c2l0ZTprZXk=";

fn event(n: usize) -> Operation {
    PersonEvent::new(Identifier::id(format!("user-{n}")), "ping")
        .unwrap()
        .with_id(customerio_client::event_id::event_id(&format!("m{n}"), 0))
        .into()
}

async fn assert_no_query(server: &MockServer) {
    for request in server.received_requests().await.unwrap_or_default() {
        assert_eq!(request.url.query(), None, "{}", request.url);
    }
}

#[tokio::test]
async fn entity_posts_one_operation() {
    let server = MockServer::start().await;
    let op = event(1);
    Mock::given(method("POST"))
        .and(path("/api/v2/entity"))
        .and(header("authorization", AUTH))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "type": "person", "action": "event", "identifiers": {"id": "user-1"},
            "name": "ping", "id": customerio_client::event_id::event_id("m1", 0).to_string()
        })))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).entity(&op).await.unwrap();
    assert_no_query(&server).await;
}

/// An event whose serialised form is exactly `size` bytes.
fn event_of_size(size: usize) -> Operation {
    let bare = PersonEvent::new(Identifier::id("u"), "e")
        .unwrap()
        .with_attribute("p", "")
        .unwrap();
    let base = serde_json::to_vec(&Operation::from(bare)).unwrap().len();
    let op: Operation = PersonEvent::new(Identifier::id("u"), "e")
        .unwrap()
        .with_attribute("p", "x".repeat(size - base))
        .unwrap()
        .into();
    assert_eq!(serde_json::to_vec(&op).unwrap().len(), size);
    op
}

#[tokio::test]
async fn entity_of_exactly_32000_bytes_is_sent() {
    let server = MockServer::start().await;
    let op = event_of_size(32_000);
    Mock::given(method("POST"))
        .and(path("/api/v2/entity"))
        .and(header("authorization", AUTH))
        .and(body_json(serde_json::to_value(&op).unwrap()))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).entity(&op).await.unwrap();
}

#[tokio::test]
async fn entity_over_32000_bytes_is_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let err = client(&server)
        .entity(&event_of_size(32_001))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(err.phase(), Phase::NotSent);
    assert_eq!(
        err.to_string(),
        "customer.io track.v2.entity: invalid input: person event operation is 32001 bytes; \
         the limit is 32000"
    );
}

#[tokio::test]
async fn batch_posts_the_wrapped_operations_and_200_accepts_all() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", AUTH))
        .and(header("content-type", "application/json"))
        .and(body_json(reference_batch_json()))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let ops: Vec<Operation> =
        serde_json::from_value(reference_batch_json()["batch"].clone()).unwrap();
    let outcome = client(&server).batch(&ops).await.unwrap();
    assert_eq!(outcome, BatchOutcome::all_accepted(5));
    assert!(outcome.is_all_accepted() && !outcome.is_partial());
    assert_no_query(&server).await;
}

#[tokio::test]
async fn batch_207_lists_refused_operations_by_index() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", AUTH))
        .and(body_json(
            json!({"batch": (0..4).map(event).collect::<Vec<_>>()}),
        ))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({"errors": [
            {"batch_index": 3, "reason": "invalid", "field": "name", "message": "too long"},
            {"batch_index": 1, "reason": "invalid", "field": "id", "message": "must be a ULID"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let ops: Vec<Operation> = (0..4).map(event).collect();
    let outcome = client(&server).batch(&ops).await.unwrap();
    assert!(outcome.is_partial());
    assert!(!outcome.is_ambiguous());
    assert_eq!(outcome.operations(), 4);
    assert_eq!(outcome.rejected_indexes(), vec![1, 3]);
    assert_eq!(
        outcome.errors_for(1).collect::<Vec<_>>(),
        vec![&ApiError {
            batch_index: Some(1),
            reason: Some("invalid".into()),
            field: Some("id".into()),
            message: Some("must be a ULID".into()),
            code: None,
        }]
    );
    assert!(!outcome.is_rejected(0) && !outcome.is_rejected(2));
}

#[tokio::test]
async fn batch_400_is_an_error_with_the_server_reasons() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"errors": [
            {"reason": "malformed", "field": "batch", "message": "bad request"},
            {"reason": "required", "field": "identifiers", "message": "missing"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).batch(&[event(0)]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Client);
    assert_eq!(err.status_code().map(|s| s.as_u16()), Some(400));
    assert!(!err.is_retryable());
    let fields: Vec<_> = err
        .api_errors()
        .iter()
        .map(|e| e.field.as_deref())
        .collect();
    assert_eq!(fields, vec![Some("batch"), Some("identifiers")]);
    assert_eq!(err.api_errors()[1].message.as_deref(), Some("missing"));
}

#[tokio::test]
async fn error_statuses_are_classified() {
    for (status, kind, retryable) in [
        (401, ErrorKind::Auth, false),
        (500, ErrorKind::Server, true),
        (502, ErrorKind::Server, true),
        (503, ErrorKind::Server, true),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v2/entity"))
            .respond_with(ResponseTemplate::new(status))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server).entity(&event(0)).await.unwrap_err();
        assert_eq!(err.kind(), kind, "status {status}");
        assert_eq!(err.is_retryable(), retryable, "status {status}");
        assert_eq!(err.phase(), Phase::ResponseReceived);
        assert_eq!(err.status_code().map(|s| s.as_u16()), Some(status));
    }
}

#[tokio::test]
async fn batch_429_carries_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).batch(&[event(0)]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn batch_over_the_limits_is_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server);
    // One operation over 32 000 bytes: the error names its index.
    let err = client
        .batch(&[event(0), event_of_size(32_001)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("operation 1"), "{err}");
    // 16 operations of 32 000 bytes: 12 + 16 × 32 000 + 15 > 500 000.
    let ops: Vec<Operation> = (0..16).map(|_| event_of_size(32_000)).collect();
    let err = client.batch(&ops).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("500000"), "{err}");
    // An empty batch sends nothing.
    assert_eq!(
        client.batch(&[]).await.unwrap(),
        BatchOutcome::all_accepted(0)
    );
}

#[tokio::test]
async fn send_packed_sends_the_packed_bytes_and_maps_207_to_tags() {
    let server = MockServer::start().await;
    let mut packer = BatchPacker::new(PackerLimits::default());
    let (mut batches, rejected) = packer.pack((0..3).map(|n| (event(n), format!("handle-{n}"))));
    assert!(rejected.is_empty());
    let batch = batches.pop().unwrap();
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", AUTH))
        .and(header("content-type", "application/json"))
        .and(body_bytes(batch.body().to_vec()))
        .and(body_json(
            json!({"batch": (0..3).map(event).collect::<Vec<_>>()}),
        ))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({"errors": [
            {"batch_index": 2, "reason": "invalid", "field": "name", "message": "nope"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let outcome = client(&server).send_packed(&batch).await.unwrap();
    let split = batch.partition(&outcome);
    assert_eq!(split.accepted, vec!["handle-0", "handle-1"]);
    assert_eq!(split.rejected.len(), 1);
    let (item, errors) = &split.rejected[0];
    assert_eq!(item.tag(), "handle-2");
    assert_eq!(item.decode().unwrap(), event(2));
    assert_eq!(errors[0].field.as_deref(), Some("name"));
}

#[test]
fn calls_return_send_futures() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Operation>();
    assert_send_sync::<BatchOutcome>();
    assert_send_sync::<customerio_client::track::packer::PackedBatch<String>>();
    let config = ClientConfig::new(Region::Us);
    let client = TrackClient::new(SiteId::new("s"), TrackApiKey::new("k"), config).unwrap();
    let op = event(0);
    let ops = vec![event(1)];
    let (batches, _) = customerio_client::track::packer::pack(ops.clone(), None);
    assert_send(&client.entity(&op));
    assert_send(&client.batch(&ops));
    assert_send(&client.send_packed(&batches[0]));
}
