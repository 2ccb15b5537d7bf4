//! The properties each fuzz target checks, shared with the regression test that replays the
//! committed corpus and crash inputs in CI (`tests/tests/fault_fuzz_regressions.rs`).
//! Each function panics when a property fails.

// Each includer uses some of the functions.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use cio_segment_sync::customerio_client::Identifier;
use cio_segment_sync::identity::Target;
use cio_segment_sync::mapping::{MappingConfig, map};
use customerio_client::webhook::{ReportingEvent, SignatureVerifier, WebhookSigningKey};
use segment_model::webhook::{BodyShape, WebhookBody};
use segment_model::{Batch, Message};

const KEY: &[u8] = b"fuzzing-signing-key";

fn split(data: &[u8], max: u8) -> (&[u8], &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at(usize::from(len % max).min(rest.len()))
}

/// Segment message: parse, validate, map to Customer.io operations.
///
/// Properties beyond "no panic": a parsed message serialises, the serialisation parses back to
/// the same JSON (one round trip is a fixed point), and mapping never panics whatever the
/// target.
pub(crate) fn segment_message(data: &[u8]) {
    let Ok(message) = Message::from_slice(data) else {
        return;
    };
    let _ = message.validate();
    let value = serde_json::to_value(&message).expect("a parsed message serialises");
    let again = Message::from_value(value.clone()).expect("a serialised message parses");
    assert_eq!(
        serde_json::to_value(&again).expect("a parsed message serialises"),
        value,
        "the round trip is not a fixed point"
    );

    let config = MappingConfig::default();
    let user = message.user_id().map(|id| id.to_string());
    let anonymous = message.anonymous_id().map(|id| id.to_string());
    let mut targets = vec![];
    if let Some(user) = &user {
        targets.push(Target::Person {
            identifier: Identifier::id(user.clone()),
            anonymous_id: anonymous.clone(),
        });
        targets.push(Target::Merge {
            primary: Identifier::id(user.clone()),
            secondary: Identifier::email("secondary@example.com"),
        });
    }
    if let Some(anonymous) = anonymous {
        targets.push(Target::Anonymous {
            anonymous_id: anonymous,
        });
    }
    for target in &targets {
        if let Ok(cio_segment_sync::mapping::Mapped::Operations(ops)) =
            map(&message, target, &config)
        {
            for op in ops {
                let _ = serde_json::to_vec(&op).expect("an operation serialises");
            }
        }
    }
}

/// Segment batch envelope (`{"batch": [...], ...}`), strict and lenient.
///
/// Properties: strict success implies lenient success with no item errors and the same
/// messages; a parsed envelope serialises and parses back to the same JSON.
pub(crate) fn segment_batch(data: &[u8]) {
    let strict = Batch::from_slice(data);
    let lenient = Batch::from_slice_lenient(data);
    if let Ok(batch) = &strict {
        let lenient = lenient
            .as_ref()
            .expect("what parses strictly parses leniently");
        assert!(
            lenient.is_complete(),
            "a strict parse had item errors leniently"
        );
        assert_eq!(&lenient.batch, batch);
        let value = serde_json::to_value(batch).expect("a parsed batch serialises");
        let bytes = serde_json::to_vec(&value).expect("a JSON value serialises");
        let again = Batch::from_slice(&bytes).expect("a serialised batch parses");
        assert_eq!(
            serde_json::to_value(&again).expect("a parsed batch serialises"),
            value,
            "the round trip is not a fixed point"
        );
    }
    if let Ok(lenient) = lenient {
        let _ = serde_json::to_vec(&lenient.batch).expect("a parsed batch serialises");
    }
}

/// Segment webhook body (one event, a bare array, or a `{"batch": [...]}` envelope), decoded
/// item by item.
///
/// Properties beyond "no panic": the indexes in messages and errors are unique and below the
/// item count; each decoded message serialises and decodes back to an equal message; the
/// result agrees with `Message::from_slice` (one event) and with the lenient `Batch` parses
/// (arrays and envelopes) whenever those accept the body too.
pub(crate) fn segment_webhook_body(data: &[u8]) {
    let Ok(body) = WebhookBody::from_slice(data) else {
        return;
    };
    let count = body.item_count();
    assert!(count > 0, "a decoded body holds at least one item");
    let mut seen = vec![false; count];
    let indexes = body
        .messages
        .iter()
        .map(|(index, _)| *index)
        .chain(body.errors.iter().map(|error| error.index));
    for index in indexes {
        assert!(
            index < count,
            "index {index} is not below the item count {count}"
        );
        assert!(!seen[index], "index {index} appears twice");
        seen[index] = true;
    }

    for (index, message) in body.iter() {
        let bytes = serde_json::to_vec(message).expect("a decoded message serialises");
        let again = Message::from_slice(&bytes).expect("a serialised message decodes");
        assert_eq!(
            &again, message,
            "item {index}: the round trip changed the message"
        );
    }
    for error in &body.errors {
        let _ = (error.to_string(), format!("{error:?}"));
    }

    let error_indexes: Vec<usize> = body.errors.iter().map(|error| error.index).collect();
    match body.shape {
        BodyShape::Event => {
            let message = Message::from_slice(data).expect("a decoded event decodes alone");
            assert_eq!(body.into_messages(), [message]);
        }
        BodyShape::Array => {
            // The batch parse reads the whole body as one JSON tree, so its nesting limit
            // can refuse a body whose items are fine on their own.
            if let Ok(lenient) = Batch::from_array_slice_lenient(data) {
                let lenient_indexes: Vec<usize> =
                    lenient.errors.iter().map(|error| error.index).collect();
                assert_eq!(error_indexes, lenient_indexes, "the bad items differ");
                assert_eq!(body.into_messages(), lenient.batch.batch);
            }
        }
        BodyShape::Envelope => {
            if let Ok(lenient) = Batch::from_slice_lenient(data) {
                let lenient_indexes: Vec<usize> =
                    lenient.errors.iter().map(|error| error.index).collect();
                assert_eq!(error_indexes, lenient_indexes, "the bad items differ");
                assert_eq!(body.into_messages(), lenient.batch.into_messages());
            }
        }
        _ => {}
    }
}

/// Customer.io reporting webhook: signature check and payload parse.
///
/// The input is split into a timestamp header, a signature header and a body. Properties:
/// arbitrary headers never verify against a body unless they are its signature; a body
/// signed with the key always verifies; a parsed payload serialises and parses back to the
/// same JSON.
pub(crate) fn cio_webhook(data: &[u8]) {
    let (timestamp, rest) = split(data, 24);
    let (signature, body) = split(rest, 80);
    let key = WebhookSigningKey::new(KEY.to_vec()).expect("a non-empty key is valid");
    let verifier = SignatureVerifier::new(key.clone());
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_558_530);

    if verifier
        .verify(Some(timestamp), Some(signature), body, now)
        .is_ok()
    {
        // Only the real signature of (timestamp, body) may pass. `sign` takes the timestamp
        // as a number, so the check applies when the header is its canonical decimal form.
        let ts: u64 = std::str::from_utf8(timestamp)
            .ok()
            .and_then(|t| t.parse().ok())
            .expect("a verified timestamp is a number");
        if ts.to_string().as_bytes() == timestamp {
            assert!(
                key.sign(ts, body)
                    .as_bytes()
                    .eq_ignore_ascii_case(signature),
                "a forged signature verified"
            );
        }
    }

    // The body signed now verifies.
    let ts = 1_714_558_530_u64;
    let good = key.sign(ts, body);
    let ts_text = ts.to_string();
    verifier
        .verify(Some(ts_text.as_bytes()), Some(good.as_bytes()), body, now)
        .expect("a correctly signed body verifies");

    if let Ok(event) = ReportingEvent::from_slice(body) {
        let value = serde_json::to_value(&event).expect("a parsed event serialises");
        let bytes = serde_json::to_vec(&value).expect("a JSON value serialises");
        let again = ReportingEvent::from_slice(&bytes).expect("a serialised event parses");
        assert_eq!(
            serde_json::to_value(&again).expect("a parsed event serialises"),
            value,
            "the round trip is not a fixed point"
        );
        let _ = format!("{event:?}");
    }
}

/// The configuration loader: any text is a `SyncConfig` or a typed error, never a panic; a
/// loaded configuration passes its own checks and loads again, equal, from its serialised form.
pub(crate) fn sync_config(data: &[u8]) {
    use cio_segment_sync::config::SyncConfig;

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SyncConfig::from_toml_str(text, "fuzz") {
        Ok(config) => {
            assert!(
                config.validate().is_ok(),
                "a loaded config fails its checks"
            );
            // Through JSON (serde's other format here): the same settings come back.
            let json = serde_json::to_value(&config).expect("a config serialises");
            let again: SyncConfig = serde_json::from_value(json).expect("and deserialises");
            assert_eq!(again, config, "the config changed on a round trip");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

/// The dead-letter and resume-file reader (`dead_letter::parse_lines`, `parse_record`).
///
/// Properties beyond "no panic": every complete non-blank line is either a record or an error
/// naming its line, in increasing line order; a record written back as a line reads back to
/// the same record (one round trip is a fixed point); reading the text as still growing gives
/// a prefix of reading it as complete (only an unterminated last line may be left out); no
/// error's text quotes the input beyond what the location names.
pub(crate) fn dead_letter_reader(data: &[u8]) {
    use cio_segment_sync::dead_letter::{Location, parse_lines, parse_record};

    let complete = parse_lines(data, "fuzz.jsonl", true);
    assert_eq!(
        complete.records.len() + complete.errors.len(),
        complete.lines,
        "every non-blank line is a record or an error"
    );
    let total_lines = data.split(|&b| b == b'\n').count();
    let mut line_numbers: Vec<usize> = complete.records.iter().map(|(line, _)| *line).collect();
    for error in &complete.errors {
        let _ = (error.to_string(), format!("{error:?}"));
        match &error.location {
            Location::Line { file, line } => {
                assert_eq!(file, "fuzz.jsonl");
                line_numbers.push(*line);
            }
            other => panic!("a file error located as {other:?}"),
        }
    }
    line_numbers.sort_unstable();
    let before = line_numbers.len();
    line_numbers.dedup();
    assert_eq!(before, line_numbers.len(), "a line reported twice");
    assert!(line_numbers.iter().all(|&l| l >= 1 && l <= total_lines));
    assert!(
        complete.records.windows(2).all(|w| w[0].0 < w[1].0),
        "records out of line order"
    );

    for (line, record) in &complete.records {
        let text = record.to_line().expect("a read record serialises");
        assert_eq!(text.last(), Some(&b'\n'));
        assert_eq!(
            text.iter().filter(|&&b| b == b'\n').count(),
            1,
            "line {line}: a record is one line"
        );
        let again = parse_record(&text[..text.len() - 1]).expect("a written record reads back");
        assert_eq!(
            serde_json::to_value(&again).expect("serialises"),
            serde_json::to_value(record).expect("serialises"),
            "line {line}: the round trip changed the record"
        );
        let _ = (
            record.reason.label(),
            record.reason.detail(),
            record.message(),
        );
    }

    let growing = parse_lines(data, "fuzz.jsonl", false);
    assert!(growing.complete_bytes <= data.len());
    assert!(growing.records.len() <= complete.records.len());
    for ((a, ra), (b, rb)) in growing.records.iter().zip(&complete.records) {
        assert_eq!(a, b, "a growing read is a prefix of the complete one");
        assert_eq!(ra, rb);
    }
    if data.ends_with(b"\n") || data.is_empty() {
        assert_eq!(growing.complete_bytes, data.len());
        assert_eq!(growing.records.len(), complete.records.len());
        assert_eq!(growing.errors.len(), complete.errors.len());
    }

    let _ = parse_record(data).map(|record| record.to_line());
}
