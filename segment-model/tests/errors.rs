//! Decode errors: the exact variant, the path they name, and no customer data in `Display`.

use segment_model::{Batch, Error, JsonType, Message, MessageKind};
use serde_json::json;

fn decode_err(value: serde_json::Value) -> Error {
    Message::from_value(value).expect_err("must not decode")
}

fn assert_wrong_type(err: &Error, want_path: &str, want_expected: &str, want_found: JsonType) {
    match err {
        Error::WrongType {
            path,
            expected,
            found,
        } => {
            assert_eq!(path, want_path);
            assert_eq!(*expected, want_expected);
            assert_eq!(*found, want_found);
        }
        other => panic!("expected WrongType at {want_path}, got {other:?}"),
    }
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = Message::from_slice(b"{\"type\": \"track\",\n \"event\": }").expect_err("malformed");
    match &err {
        Error::Json { line, column, .. } => {
            assert_eq!(*line, 2);
            assert_eq!(*column, 11);
        }
        other => panic!("expected Json, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "malformed JSON at line 2, column 11 (syntax error)"
    );
    assert!(matches!(
        Message::from_slice(b"{\"type\":\"track\""),
        Err(Error::Json { .. })
    ));
    assert!(matches!(Message::from_slice(b""), Err(Error::Json { .. })));
}

#[test]
fn traits_as_a_string() {
    let err = decode_err(json!({"type": "identify", "userId": "u", "traits": "vip"}));
    assert_wrong_type(&err, "traits", "an object", JsonType::String);
    assert_eq!(
        err.to_string(),
        "`traits`: expected an object, found a string"
    );
    assert_eq!(err.path(), Some("traits"));
}

#[test]
fn properties_as_an_array() {
    let err = decode_err(json!({"type": "track", "userId": "u", "event": "E", "properties": [1]}));
    assert_wrong_type(&err, "properties", "an object", JsonType::Array);
}

#[test]
fn event_as_a_number() {
    let err = decode_err(json!({"type": "track", "userId": "u", "event": 42}));
    assert_wrong_type(&err, "event", "a string", JsonType::Number);
    assert_eq!(
        err.to_string(),
        "`event`: expected a string, found a number"
    );
}

#[test]
fn envelope_fields_with_wrong_types() {
    let cases = [
        (
            json!({"type": "track", "userId": {"email": "x@example.org"}}),
            "userId",
            "a string or a number",
            JsonType::Object,
        ),
        (
            json!({"type": "track", "anonymousId": true}),
            "anonymousId",
            "a string or a number",
            JsonType::Bool,
        ),
        (
            json!({"type": "track", "messageId": 7}),
            "messageId",
            "a string",
            JsonType::Number,
        ),
        (
            json!({"type": "track", "context": "web"}),
            "context",
            "an object",
            JsonType::String,
        ),
        (
            json!({"type": "track", "integrations": ["All"]}),
            "integrations",
            "an object",
            JsonType::Array,
        ),
        (
            json!({"type": "track", "version": [2]}),
            "version",
            "a number or a string",
            JsonType::Array,
        ),
        (
            json!({"type": "track", "_metadata": 1}),
            "_metadata",
            "an object",
            JsonType::Number,
        ),
        (
            json!({"type": "track", "writeKey": 1}),
            "writeKey",
            "a string",
            JsonType::Number,
        ),
        (
            json!({"type": "group", "groupId": [1]}),
            "groupId",
            "a string or a number",
            JsonType::Array,
        ),
        (
            json!({"type": "alias", "previousId": false}),
            "previousId",
            "a string or a number",
            JsonType::Bool,
        ),
        (
            json!({"type": "page", "name": 1}),
            "name",
            "a string",
            JsonType::Number,
        ),
        (
            json!({"type": "screen", "category": {}}),
            "category",
            "a string",
            JsonType::Object,
        ),
        (
            json!({"type": "track", "timestamp": 1714558530}),
            "timestamp",
            "an ISO-8601 timestamp string",
            JsonType::Number,
        ),
    ];
    for (input, path, expected, found) in cases {
        let err = decode_err(input);
        assert_wrong_type(&err, path, expected, found);
    }
}

#[test]
fn unknown_type() {
    let err = decode_err(json!({"type": "launch", "userId": "u"}));
    assert!(
        matches!(&err, Error::UnknownType { found } if found == "launch"),
        "{err:?}"
    );
    // The value is not shown, even when it looks like a tag: a short word may be a name.
    assert_eq!(
        err.to_string(),
        "`type`: unknown message type (6 characters, not shown)"
    );
    // An absurdly long tag is cut, so one payload cannot flood a log line.
    let long = "x".repeat(10_000);
    let err = decode_err(json!({"type": long}));
    assert!(
        matches!(&err, Error::UnknownType { found } if found.len() == 64),
        "{err:?}"
    );
    // Tags are case-sensitive: no guessing.
    assert!(matches!(
        decode_err(json!({"type": "Track", "event": "E"})),
        Error::UnknownType { .. }
    ));
}

#[test]
fn missing_and_non_string_type() {
    assert!(matches!(
        decode_err(json!({"userId": "u", "event": "E", "properties": {}})),
        Error::MissingType
    ));
    assert!(matches!(
        decode_err(json!({"type": 1, "userId": "u"})),
        Error::TypeNotString {
            found: JsonType::Number
        }
    ));
    assert!(matches!(
        decode_err(json!({"type": null, "userId": "u"})),
        Error::TypeNotString {
            found: JsonType::Null
        }
    ));
    assert_eq!(Error::MissingType.to_string(), "`type` is missing");
}

#[test]
fn implied_type_must_agree_with_a_present_type() {
    let err = Message::from_value_implied(
        json!({"type": "identify", "userId": "u"}),
        MessageKind::Track,
    )
    .expect_err("mismatch");
    assert!(matches!(
        err,
        Error::TypeMismatch {
            expected: MessageKind::Track,
            found: MessageKind::Identify
        }
    ));
    assert_eq!(
        err.to_string(),
        "`type`: expected `track`, found `identify`"
    );
}

#[test]
fn message_that_is_not_an_object() {
    let err = decode_err(json!([{"type": "track"}]));
    assert_wrong_type(&err, "message", "an object", JsonType::Array);
}

#[test]
fn bad_timestamps_name_their_field() {
    for (field, text) in [
        ("timestamp", "yesterday"),
        ("sentAt", "2024-05-01T10:15:30"),
        ("receivedAt", "2015-2-02T00:30:08.276Z"),
        ("originalTimestamp", "2024-13-01T00:00:00Z"),
    ] {
        let mut input = json!({"type": "track", "userId": "u", "event": "E"});
        input[field] = json!(text);
        let err = decode_err(input);
        assert!(
            matches!(&err, Error::InvalidTimestamp { path } if path == field),
            "{field}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("`{field}`: not an ISO-8601 timestamp")
        );
    }
}

#[test]
fn errors_never_echo_customer_values() {
    let secretish = "lena.fischer@example.org";
    let inputs = [
        json!({"type": "track", "userId": {"email": secretish}}),
        json!({"type": "track", "userId": "u", "timestamp": secretish}),
        json!({"type": "identify", "userId": secretish, "traits": secretish}),
        json!({"type": "track", "userId": secretish, "event": [secretish]}),
    ];
    for input in inputs {
        let err = decode_err(input);
        assert!(!err.to_string().contains(secretish), "{err}");
        assert!(!format!("{err:?}").contains(secretish), "{err:?}");
    }
}

#[test]
fn strict_batch_names_the_bad_item() {
    let input = json!({"batch": [
        {"type": "track", "userId": "u", "event": "A"},
        {"type": "track", "userId": "u", "event": "B"},
        {"type": "track", "userId": "u", "event": "C"},
        {"type": "identify", "userId": "u", "traits": "bad"},
        {"type": "track", "userId": "u", "event": "E"}
    ]});
    let err = Batch::from_value(input).expect_err("item 3 is bad");
    match &err {
        Error::BatchItem { index, source } => {
            assert_eq!(*index, 3);
            assert!(matches!(**source, Error::WrongType { ref path, .. } if path == "traits"));
        }
        other => panic!("expected BatchItem, got {other:?}"),
    }
    assert_eq!(err.to_string(), "`batch[3]` does not decode");
    assert_eq!(
        std::error::Error::source(&err).map(ToString::to_string),
        Some("`traits`: expected an object, found a string".to_owned())
    );
    assert_eq!(err.path(), Some("traits"));
}

#[test]
fn broken_batch_envelopes() {
    assert!(matches!(
        Batch::from_value(json!({"messages": []})),
        Err(Error::MissingField { ref path }) if path == "batch"
    ));
    let err = Batch::from_value(json!({"batch": {"type": "track"}})).expect_err("not an array");
    assert!(
        matches!(err, Error::WrongType { ref path, found: JsonType::Object, .. } if path == "batch")
    );
    let err = Batch::from_value(json!({"batch": [], "sentAt": "soon"})).expect_err("bad sentAt");
    assert!(matches!(err, Error::InvalidTimestamp { ref path } if path == "sentAt"));
    let err = Batch::from_value(json!([])).expect_err("not an object");
    assert!(matches!(
        err,
        Error::WrongType {
            found: JsonType::Array,
            ..
        }
    ));
    assert!(matches!(
        Batch::from_slice(b"{\"batch\": ["),
        Err(Error::Json { .. })
    ));
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

#[test]
fn no_error_path_shows_a_personal_value() {
    const EMAIL: &str = "lena.fischer@example.org";
    const NAME: &str = "Lena";
    let mut errors: Vec<Box<dyn std::error::Error>> = Vec::new();
    let mut decode = |text: String| match Message::from_str(&text) {
        Ok(_) => panic!("{text}: must not decode"),
        Err(error) => errors.push(Box::new(error)),
    };
    // Wrong JSON types, at the top level and nested.
    decode(format!(
        r#"{{"type":"identify","userId":"u","traits":"{EMAIL}"}}"#
    ));
    decode(format!(
        r#"{{"type":"track","userId":"u","event":["{NAME}"]}}"#
    ));
    decode(format!(
        r#"{{"type":"track","userId":{{"email":"{EMAIL}"}},"event":"A"}}"#
    ));
    decode(format!(
        r#"{{"type":"track","userId":"u","event":"A","context":"{EMAIL}"}}"#
    ));
    decode(format!(
        r#"{{"type":"track","userId":"u","event":"A","integrations":"{NAME}"}}"#
    ));
    decode(format!(r#"["{EMAIL}"]"#));
    // An unknown type tag that is an email, a name, a word.
    decode(format!(r#"{{"type":"{EMAIL}","userId":"u"}}"#));
    decode(format!(r#"{{"type":"{NAME}","userId":"u"}}"#));
    decode(format!(r#"{{"type":{{"name":"{NAME}"}},"userId":"u"}}"#));
    // Bad timestamps.
    for field in ["timestamp", "sentAt", "receivedAt", "originalTimestamp"] {
        decode(format!(
            r#"{{"type":"track","userId":"u","event":"A","{field}":"{EMAIL}"}}"#
        ));
    }
    // Bad JSON next to personal values: a syntax error, a truncated body, trailing text.
    decode(format!(r#"{{"type":"track","userId":"{EMAIL}" "{NAME}"}}"#));
    decode(format!(r#"{{"type":"track","userId":"{EMAIL}"#));
    decode(format!(r#"{{"type":"track"}} "{NAME}""#));
    decode(format!("{{\"type\":\"track\",\"userId\":\"{NAME}\u{1}\"}}"));

    // A type that contradicts the endpoint, and one that is not a kind.
    errors.push(Box::new(
        Message::from_value_implied(
            json!({"type": "identify", "userId": EMAIL}),
            MessageKind::Track,
        )
        .expect_err("mismatch"),
    ));
    errors.push(Box::new(
        EMAIL.parse::<MessageKind>().expect_err("not a kind"),
    ));
    // Strict and lenient batches.
    errors.push(Box::new(
        Batch::from_value(json!({"batch": [{"type": NAME, "userId": EMAIL}]})).expect_err("bad"),
    ));
    errors.push(Box::new(
        Batch::from_value(json!({"batch": [], "sentAt": EMAIL})).expect_err("bad"),
    ));
    let lenient = Batch::from_value_lenient(json!({"batch": [
        {"type": "track", "userId": "u", "event": EMAIL, "timestamp": NAME}
    ]}))
    .expect("the envelope is fine");
    for error in lenient.errors {
        errors.push(Box::new(error));
    }
    // Validation, semantic event names.
    let long_id = EMAIL.repeat(5);
    let message = Message::from_value(json!({
        "type": "track", "userId": EMAIL, "event": "A", "messageId": long_id
    }))
    .expect("decodes");
    errors.push(Box::new(
        message.validate().expect_err("messageId too long"),
    ));
    errors.push(Box::new(
        EMAIL
            .parse::<segment_model::LifecycleEvent>()
            .expect_err("not a name"),
    ));
    errors.push(Box::new(
        NAME.parse::<segment_model::EmailEvent>()
            .expect_err("not a name"),
    ));

    assert!(errors.len() >= 25, "{} errors", errors.len());
    for error in &errors {
        let shown = everything_shown(error.as_ref());
        assert!(!shown.contains(EMAIL), "{shown}");
        assert!(!shown.contains("lena"), "{shown}");
        assert!(!shown.contains(NAME), "{shown}");
    }
}

#[test]
fn json_errors_keep_only_their_category_and_position() {
    let error = Message::from_slice(b"{\"type\":\"track\",\n\"userId\":\"u\" x}").expect_err("bad");
    assert!(matches!(
        error,
        Error::Json {
            category: segment_model::JsonErrorCategory::Syntax,
            line: 2,
            column: 14
        }
    ));
    assert!(std::error::Error::source(&error).is_none());
    let error = Message::from_slice(b"{\"type\":\"track\"").expect_err("bad");
    assert!(matches!(
        error,
        Error::Json {
            category: segment_model::JsonErrorCategory::Eof,
            ..
        }
    ));
    assert!(
        error.to_string().ends_with("(unexpected end of input)"),
        "{error}"
    );
}
