//! Every fixture decodes and serialises back to the same JSON value, with no key written twice.

mod common;

use segment_model::{Batch, Message};
use serde_json::Value;

#[test]
fn every_fixture_round_trips_exactly() {
    let fixtures = common::fixtures();
    assert!(
        fixtures.len() >= 30,
        "expected at least 30 fixtures, found {}",
        fixtures.len()
    );
    let mut batches = 0;
    for (name, bytes) in &fixtures {
        let original: Value = serde_json::from_slice(bytes)
            .unwrap_or_else(|err| panic!("{name}: fixture is not JSON: {err}"));
        let (reserialised, text) = if common::is_batch(name) {
            batches += 1;
            let batch = Batch::from_slice(bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
            (
                serde_json::to_value(&batch).expect("batch serialises"),
                serde_json::to_string(&batch).expect("batch serialises"),
            )
        } else {
            let message = Message::from_slice(bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
            (
                serde_json::to_value(&message).expect("message serialises"),
                serde_json::to_string(&message).expect("message serialises"),
            )
        };
        assert_eq!(
            reserialised, original,
            "{name}: round-trip changed the JSON"
        );
        common::assert_no_duplicate_keys(&text);
    }
    assert!(batches >= 3, "expected batch fixtures, found {batches}");
}

#[test]
fn every_fixture_round_trips_through_serde_deserialize_too() {
    for (name, bytes) in common::fixtures() {
        let original: Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
        let reserialised = if common::is_batch(&name) {
            let batch: Batch = serde_json::from_slice(&bytes).expect("batch decodes via serde");
            serde_json::to_value(batch).expect("batch serialises")
        } else {
            let message: Message =
                serde_json::from_slice(&bytes).expect("message decodes via serde");
            serde_json::to_value(message).expect("message serialises")
        };
        assert_eq!(reserialised, original, "{name}");
    }
}

#[test]
fn lenient_batch_parse_of_fixtures_matches_strict() {
    for (name, bytes) in common::fixtures() {
        if !common::is_batch(&name) {
            continue;
        }
        let strict = Batch::from_slice(&bytes).expect("strict parse");
        let lenient = Batch::from_slice_lenient(&bytes).expect("lenient parse");
        assert!(lenient.errors.is_empty(), "{name}: {:?}", lenient.errors);
        assert_eq!(lenient.batch, strict, "{name}");
    }
}
