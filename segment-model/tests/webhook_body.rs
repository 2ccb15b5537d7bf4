//! The Webhooks-destination body decoder: the three shapes, item-by-item decoding, whole-body
//! failures with their position, the item limit, and errors that never show a value.

mod common;

use std::error::Error as _;
use std::num::NonZeroUsize;

use segment_model::webhook::{BodyShape, WebhookBody, WebhookBodyError, WebhookLimits};
use segment_model::{Batch, Error, JsonErrorCategory, JsonType, Message};
use serde_json::{Value, json};

fn decode(body: &[u8]) -> WebhookBody {
    WebhookBody::from_slice(body)
        .unwrap_or_else(|error| panic!("the body must decode, got {error:?}"))
}

fn refuse(body: &[u8]) -> WebhookBodyError {
    WebhookBody::from_slice(body).expect_err("the body must be refused")
}

fn json_of(message: &Message) -> Value {
    serde_json::to_value(message).expect("a message serialises")
}

/// `Display` of the error and of every error in its `source()` chain, then its `Debug`.
fn everything_shown(error: &dyn std::error::Error) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}

fn limit(max_items: usize) -> WebhookLimits {
    WebhookLimits::default().with_max_items(NonZeroUsize::new(max_items).expect("not zero"))
}

#[test]
fn one_event_object() {
    let body = br#"{"type":"track","userId":"u1","event":"Signed Up","properties":{"plan":"pro"}}"#;
    let decoded = decode(body);
    assert_eq!(decoded.shape, BodyShape::Event);
    assert!(decoded.envelope.is_none());
    assert!(decoded.is_complete());
    assert_eq!((decoded.len(), decoded.item_count()), (1, 1));
    let (index, message) = decoded.iter().next().expect("one message");
    assert_eq!(index, 0);
    assert_eq!(
        json_of(message),
        serde_json::from_slice::<Value>(body).expect("JSON")
    );
}

#[test]
fn a_bare_array_of_events() {
    let body = br#"[
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "u1", "event": "A"},
        {"type": "page", "anonymousId": "a1", "name": "Home"}
    ]"#;
    let decoded = decode(body);
    assert_eq!(decoded.shape, BodyShape::Array);
    assert!(decoded.envelope.is_none());
    assert!(decoded.is_complete());
    assert!(!decoded.is_empty());
    let kinds: Vec<(usize, &str)> = decoded
        .iter()
        .map(|(index, message)| (index, message.kind().as_str()))
        .collect();
    assert_eq!(kinds, [(0, "identify"), (1, "track"), (2, "page")]);
}

#[test]
fn whitespace_before_the_array_and_around_the_body_is_fine() {
    let decoded = decode(b" \r\n\t [{\"type\":\"track\",\"userId\":\"u\",\"event\":\"A\"}] \n");
    assert_eq!(decoded.shape, BodyShape::Array);
    assert_eq!(decoded.len(), 1);
    let decoded = decode(b"\n\n  {\"type\":\"track\",\"userId\":\"u\",\"event\":\"A\"}\n");
    assert_eq!(decoded.shape, BodyShape::Event);
}

#[test]
fn a_bad_item_in_the_middle_costs_only_itself() {
    let body = br#"[{"type":"track","userId":"u1","event":"A"},{"type":"track","userId":"u1","event":{"name":"B"}},{"type":"track","userId":"u1","event":"C"}]"#;
    let decoded = decode(body);
    assert_eq!(decoded.shape, BodyShape::Array);
    assert_eq!((decoded.len(), decoded.item_count()), (2, 3));
    assert!(!decoded.is_complete());

    let events: Vec<(usize, Option<&str>)> = decoded
        .iter()
        .map(|(index, message)| (index, message.event()))
        .collect();
    assert_eq!(events, [(0, Some("A")), (2, Some("C"))]);

    let [bad] = decoded.errors.as_slice() else {
        panic!("one item error expected: {:?}", decoded.errors);
    };
    assert_eq!(bad.index, 1);
    assert!(
        matches!(
            &bad.error,
            Error::WrongType { path, expected: "a string", found: JsonType::Object } if path == "event"
        ),
        "{:?}",
        bad.error
    );
    // What failed once in `Display`; the cause through `source()`, not repeated.
    assert_eq!(bad.to_string(), "item 1 does not decode");
    assert_eq!(
        std::error::Error::source(bad).map(ToString::to_string),
        Some("`event`: expected a string, found an object".to_owned())
    );
    // The item's exact text, as Segment sent it, is kept for parking or a retry.
    assert_eq!(
        bad.raw.get(),
        r#"{"type":"track","userId":"u1","event":{"name":"B"}}"#
    );

    // `items` walks everything in body order.
    let order: Vec<(usize, bool)> = decoded
        .items()
        .map(|(index, item)| (index, item.is_ok()))
        .collect();
    assert_eq!(order, [(0, true), (1, false), (2, true)]);
    assert_eq!(decoded.items().len(), 3);

    // Into an iterator: the decoded messages with their indexes.
    let indexes: Vec<usize> = decoded.into_iter().map(|(index, _)| index).collect();
    assert_eq!(indexes, [0, 2]);
}

#[test]
fn an_array_whose_items_all_fail_is_decoded_and_empty() {
    let decoded = decode(br#"[{"type":"nope"}, 7, "x"]"#);
    assert!(decoded.is_empty());
    assert_eq!(decoded.item_count(), 3);
    let indexes: Vec<usize> = decoded.errors.iter().map(|error| error.index).collect();
    assert_eq!(indexes, [0, 1, 2]);
    assert!(matches!(
        decoded.errors[1].error,
        Error::WrongType {
            found: JsonType::Number,
            ..
        }
    ));
    assert!(decoded.into_messages().is_empty());
}

#[test]
fn the_envelope_applies_its_context_integrations_and_sent_at_to_each_item() {
    let body = json!({
        "batch": [
            {"type": "track", "userId": "u1", "event": "A"},
            {"type": "track", "userId": "u1", "event": "B",
             "context": {"ip": "203.0.113.9", "library": {"name": "own"}},
             "integrations": {"Amplitude": false},
             "sentAt": "2024-05-01T10:00:00.000Z"},
            {"type": "track", "userId": "u1", "event": 3}
        ],
        "context": {"library": {"name": "analytics-go", "version": "3.3.0"}, "locale": "de-DE"},
        "integrations": {"All": true, "Amplitude": true},
        "sentAt": "2024-05-01T10:00:06.250Z",
        "writeKey": "wk",
        "messageId": "batch-1"
    });
    let bytes = serde_json::to_vec(&body).expect("JSON");
    let decoded = decode(&bytes);
    assert_eq!(decoded.shape, BodyShape::Envelope);
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded.errors.len(), 1);
    assert_eq!(decoded.errors[0].index, 2);

    let first = json_of(&decoded.messages[0].1);
    assert_eq!(decoded.messages[0].0, 0);
    assert_eq!(first["context"], body["context"]);
    assert_eq!(first["integrations"], body["integrations"]);
    assert_eq!(first["sentAt"], body["sentAt"]);

    // The item's own keys win; missing top-level context keys are filled in.
    let second = json_of(&decoded.messages[1].1);
    assert_eq!(decoded.messages[1].0, 1);
    assert_eq!(
        second["context"],
        json!({"ip": "203.0.113.9", "library": {"name": "own"}, "locale": "de-DE"})
    );
    assert_eq!(
        second["integrations"],
        json!({"All": true, "Amplitude": false})
    );
    assert_eq!(second["sentAt"], "2024-05-01T10:00:00.000Z");

    // The envelope's own fields are kept, with no items in it.
    let envelope = decoded.envelope.as_ref().expect("an envelope");
    assert!(envelope.is_empty());
    assert_eq!(envelope.message_id.as_deref(), Some("batch-1"));
    assert!(envelope.write_key.is_some());
}

#[test]
fn envelope_fixtures_decode_like_batch_into_messages() {
    let mut seen = 0;
    for (name, bytes) in common::fixtures() {
        if !common::is_batch(&name) {
            continue;
        }
        seen += 1;
        let batch = Batch::from_slice(&bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        if batch.is_empty() {
            assert!(
                matches!(
                    WebhookBody::from_slice(&bytes),
                    Err(WebhookBodyError::EmptyArray {
                        shape: BodyShape::Envelope
                    })
                ),
                "{name}"
            );
            continue;
        }
        let expected: Vec<Value> = Batch::from_slice(&bytes)
            .unwrap_or_else(|error| panic!("{name}: {error}"))
            .into_messages()
            .iter()
            .map(json_of)
            .collect();
        let decoded = decode(&bytes);
        assert_eq!(decoded.shape, BodyShape::Envelope, "{name}");
        assert!(decoded.is_complete(), "{name}: {:?}", decoded.errors);
        let got: Vec<Value> = decoded.into_messages().iter().map(json_of).collect();
        assert_eq!(got, expected, "{name}");
    }
    assert!(seen >= 3, "expected batch fixtures, found {seen}");
}

#[test]
fn an_object_with_both_type_and_batch_is_one_event_that_keeps_its_batch_key() {
    let body = br#"{"type":"track","userId":"u","event":"A","batch":[1,2]}"#;
    let decoded = decode(body);
    assert_eq!(decoded.shape, BodyShape::Event);
    assert_eq!(
        json_of(&decoded.messages[0].1),
        serde_json::from_slice::<Value>(body).expect("JSON")
    );
}

#[test]
fn empty_arrays_are_refused() {
    assert!(matches!(
        refuse(b"[]"),
        WebhookBodyError::EmptyArray {
            shape: BodyShape::Array
        }
    ));
    assert!(matches!(
        refuse(b"  [ \n ]"),
        WebhookBodyError::EmptyArray {
            shape: BodyShape::Array
        }
    ));
    let error = refuse(br#"{"batch": [], "sentAt": "2024-05-01T10:00:06.250Z"}"#);
    assert!(matches!(
        error,
        WebhookBodyError::EmptyArray {
            shape: BodyShape::Envelope
        }
    ));
    assert_eq!(
        error.to_string(),
        "the body holds no events: `batch` is an empty array"
    );
    assert_eq!(
        refuse(b"[]").to_string(),
        "the body holds no events: it is an empty array"
    );
}

#[test]
fn an_envelope_whose_batch_is_not_an_array() {
    let error = refuse(br#"{"batch": 5}"#);
    assert!(matches!(
        error,
        WebhookBodyError::BatchNotArray {
            found: JsonType::Number
        }
    ));
    assert_eq!(
        error.to_string(),
        "`batch`: expected an array, found a number"
    );
    assert_eq!(error.path(), Some("batch"));
    for (body, found) in [
        (&br#"{"batch": {"type": "track"}}"#[..], JsonType::Object),
        (br#"{"batch": "[]"}"#, JsonType::String),
        (br#"{"batch": null}"#, JsonType::Null),
        (br#"{"batch": true}"#, JsonType::Bool),
    ] {
        assert!(
            matches!(refuse(body), WebhookBodyError::BatchNotArray { found: f } if f == found),
            "{found:?}"
        );
    }
}

#[test]
fn an_envelope_with_a_bad_field_of_its_own_is_refused_whole() {
    let error =
        refuse(br#"{"batch": [{"type":"track","userId":"u","event":"A"}], "context": "web"}"#);
    let WebhookBodyError::Envelope { source } = &error else {
        panic!("expected Envelope, got {error:?}");
    };
    assert!(matches!(
        source,
        Error::WrongType { path, found: JsonType::String, .. } if path == "context"
    ));
    assert_eq!(error.path(), Some("context"));
    assert_eq!(error.to_string(), "the batch envelope does not decode");
    assert_eq!(
        std::error::Error::source(&error).map(ToString::to_string),
        Some("`context`: expected an object, found a string".to_owned())
    );
}

#[test]
fn bodies_that_are_not_json_name_the_position() {
    let error = refuse(b"[{\"type\": \"track\"},\n {\"type\": }]");
    assert!(
        matches!(
            error,
            WebhookBodyError::NotJson {
                category: JsonErrorCategory::Syntax,
                line: 2,
                column: 11
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the body is not JSON: syntax error at line 2, column 11"
    );
    let error = refuse(b"type=track&userId=u1");
    assert!(
        matches!(
            error,
            WebhookBodyError::NotJson {
                category: JsonErrorCategory::Syntax,
                line: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(matches!(
        refuse(b"[{\"type\":\"track\"}"),
        WebhookBodyError::NotJson {
            category: JsonErrorCategory::Eof,
            ..
        }
    ));
    // Trailing characters after a whole value.
    assert!(matches!(
        refuse(b"{\"type\":\"track\",\"userId\":\"u\",\"event\":\"A\"} {}"),
        WebhookBodyError::NotJson {
            category: JsonErrorCategory::Syntax,
            line: 1,
            ..
        }
    ));
    // Not UTF-8 inside a string.
    assert!(matches!(
        refuse(b"[{\"type\":\"track\",\"event\":\"\xff\"}]"),
        WebhookBodyError::NotJson { .. }
    ));
}

#[test]
fn empty_bodies_and_other_json_values_are_refused() {
    for body in [&b""[..], b"   ", b"\r\n\t "] {
        assert!(matches!(refuse(body), WebhookBodyError::Empty), "{body:?}");
    }
    assert_eq!(refuse(b"").to_string(), "the body is empty");
    for (body, found) in [
        (&b"\"track\""[..], JsonType::String),
        (b"42", JsonType::Number),
        (b"-1.5", JsonType::Number),
        (b"true", JsonType::Bool),
        (b"null", JsonType::Null),
    ] {
        assert!(
            matches!(refuse(body), WebhookBodyError::UnexpectedShape { found: f } if f == found),
            "{found:?}"
        );
    }
    assert_eq!(
        refuse(b"\"ada@example.com\"").to_string(),
        "the body is a string, not an event object, an array of events or a batch envelope"
    );
}

#[test]
fn more_items_than_the_limit_are_refused_with_the_count() {
    let item = json!({"type": "track", "userId": "u", "event": "A"});
    let body = |count: usize| serde_json::to_vec(&vec![item.clone(); count]).expect("JSON");

    let error = WebhookBody::from_slice_with(&body(3), limit(2)).expect_err("3 > 2");
    assert!(matches!(
        error,
        WebhookBodyError::TooManyItems { count: 3, limit: 2 }
    ));
    assert_eq!(error.to_string(), "the body holds 3 items; the limit is 2");
    // At the limit is fine.
    let decoded = WebhookBody::from_slice_with(&body(2), limit(2)).expect("2 <= 2");
    assert_eq!(decoded.len(), 2);
    // The envelope counts its `batch`.
    let envelope = serde_json::to_vec(&json!({"batch": vec![item.clone(); 5]})).expect("JSON");
    assert!(matches!(
        WebhookBody::from_slice_with(&envelope, limit(4)),
        Err(WebhookBodyError::TooManyItems { count: 5, limit: 4 })
    ));
    // A lone event is one item.
    let one = serde_json::to_vec(&item).expect("JSON");
    assert!(WebhookBody::from_slice_with(&one, limit(1)).is_ok());

    // The default limit is Segment's largest Webhooks (Actions) batch.
    assert_eq!(WebhookLimits::DEFAULT_MAX_ITEMS.get(), 4000);
    assert_eq!(decode(&body(4000)).len(), 4000);
    assert!(matches!(
        refuse(&body(4001)),
        WebhookBodyError::TooManyItems {
            count: 4001,
            limit: 4000
        }
    ));
    // Past the limit items are only counted; the count is exact even for cheap items.
    let numbers = format!("[{}]", vec!["0"; 10_000].join(","));
    assert!(matches!(
        refuse(numbers.as_bytes()),
        WebhookBodyError::TooManyItems {
            count: 10_000,
            limit: 4000
        }
    ));
}

#[test]
fn a_lone_event_with_a_bad_field_fails_the_body() {
    let error = refuse(br#"{"type":"identify","userId":"u1","traits":"vip"}"#);
    let WebhookBodyError::Event { source } = &error else {
        panic!("expected Event, got {error:?}");
    };
    assert!(matches!(
        source,
        Error::WrongType { path, expected: "an object", found: JsonType::String } if path == "traits"
    ));
    assert_eq!(error.path(), Some("traits"));
    assert_eq!(error.to_string(), "the event does not decode");
    assert_eq!(
        std::error::Error::source(&error).map(ToString::to_string),
        Some("`traits`: expected an object, found a string".to_owned())
    );
    assert!(error.source().is_some());
    // An object that is neither an event nor an envelope.
    assert!(matches!(
        refuse(br#"{"userId": "u1"}"#),
        WebhookBodyError::Event {
            source: Error::MissingType
        }
    ));
}

#[test]
fn an_unenveloped_array_round_trips_every_item_exactly() {
    let items: Vec<Value> = common::fixtures()
        .into_iter()
        .filter(|(name, _)| !common::is_batch(name))
        .map(|(_, bytes)| serde_json::from_slice(&bytes).expect("fixture is JSON"))
        .collect();
    assert!(items.len() >= 30, "{} fixtures", items.len());
    let body = serde_json::to_vec_pretty(&items).expect("JSON");
    let decoded = decode(&body);
    assert!(decoded.is_complete(), "{:?}", decoded.errors);
    assert_eq!(decoded.len(), items.len());
    for (index, message) in decoded.iter() {
        assert_eq!(json_of(message), items[index], "item {index}");
    }
}

#[test]
fn no_error_shows_a_value_from_the_body() {
    const EMAIL: &str = "lena.fischer@example.org";
    const NAME: &str = "Lena";
    let bodies: Vec<String> = vec![
        // Item errors: wrong type, unknown type tag (an email, a name), bad timestamp, an id
        // of the wrong type, an item that is not an object.
        format!(r#"[{{"type":"identify","userId":"u","traits":"{EMAIL}"}}]"#),
        format!(r#"[{{"type":"{EMAIL}","userId":"u"}}]"#),
        format!(r#"[{{"type":"{NAME}","userId":"u"}}]"#),
        format!(r#"[{{"type":"track","userId":"u","event":"A","timestamp":"{EMAIL}"}}]"#),
        format!(r#"[{{"type":"track","userId":["{EMAIL}"],"event":"A"}}]"#),
        format!(r#"["{EMAIL}", "{NAME}"]"#),
        // Whole-body errors: the same inside a lone event or an envelope, bad JSON right after
        // a value, a string body.
        format!(r#"{{"type":"{NAME}","userId":"{EMAIL}"}}"#),
        format!(r#"{{"type":"track","userId":"{EMAIL}","event":"A","sentAt":"{NAME}"}}"#),
        format!(r#"{{"batch":[],"context":"{EMAIL}"}}"#),
        format!(r#"{{"batch":"{EMAIL}"}}"#),
        format!(r#"{{"batch":[],"sentAt":"{NAME}"}}"#),
        format!(r#"[{{"type":"track","userId":"{EMAIL}" "{NAME}"}}]"#),
        format!(r#"{{"userId":"{EMAIL}"#),
        format!(r#""{EMAIL}""#),
    ];
    for body in &bodies {
        let shown = match WebhookBody::from_slice(body.as_bytes()) {
            Ok(decoded) => {
                assert!(!decoded.errors.is_empty(), "{body}: no error to check");
                decoded
                    .errors
                    .iter()
                    .map(|error| everything_shown(error))
                    .collect::<Vec<_>>()
                    .join(" | ")
            }
            Err(error) => everything_shown(&error),
        };
        assert!(!shown.contains(EMAIL), "{body}: {shown}");
        assert!(!shown.contains("lena"), "{body}: {shown}");
        assert!(!shown.contains(NAME), "{body}: {shown}");
    }
}
