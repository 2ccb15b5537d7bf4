//! Golden fixture pairs for the mapping: `tests/fixtures/mapping/<name>.in.json` holds a
//! Segment message, the resolved target, optional config overrides and an optional `now`;
//! `<name>.out.json` holds exactly what the mapping must produce: the v2 operations as a JSON
//! array, `{"skip": "<reason>"}`, or `{"error": "<text>"}` with the `MappingError` and its
//! sources as `describe` joins them.
//!
//! Input format:
//!
//! ```json
//! {
//!   "message": { ...a Segment message... },
//!   "target": {"person": {"id": "u1"}, "anonymous_id": "a1"}
//!           | {"anonymous": "a1"}
//!           | {"merge": {"primary": {"id": "u1"}, "secondary": {"email": "e"}}}
//!           | {"skip": "no_identity"},
//!   "config": { ...MappingConfig overrides... },
//!   "now": 1714558530
//! }
//! ```
//!
//! With `now` the fixture is mapped with `map_at`, otherwise with `map`. Set
//! `UPDATE_MAPPING_FIXTURES=1` to (re)write the `.out.json` files; review every change.

use std::fs;
use std::path::{Path, PathBuf};

use cio_segment_sync::identity::{SkipReason, Target};
use cio_segment_sync::mapping::{Mapped, MappingConfig, map, map_at};
use cio_segment_sync::outcome::describe;
use customerio_client::Identifier;
use segment_model::Message;
use serde_json::{Value, json};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mapping")
}

fn skip_code(reason: &SkipReason) -> String {
    match reason {
        SkipReason::NoIdentity => "no_identity".to_owned(),
        SkipReason::AnonymousNotAllowed => "anonymous_not_allowed".to_owned(),
        SkipReason::AlreadyMerged => "already_merged".to_owned(),
        SkipReason::Filtered => "filtered".to_owned(),
        SkipReason::OwnEcho => "own_echo".to_owned(),
        SkipReason::Duplicate => "duplicate".to_owned(),
        SkipReason::Custom(text) => format!("custom:{text}"),
        other => format!("{other:?}"),
    }
}

fn parse_skip(code: &str) -> SkipReason {
    match code {
        "no_identity" => SkipReason::NoIdentity,
        "anonymous_not_allowed" => SkipReason::AnonymousNotAllowed,
        "already_merged" => SkipReason::AlreadyMerged,
        "filtered" => SkipReason::Filtered,
        "own_echo" => SkipReason::OwnEcho,
        "duplicate" => SkipReason::Duplicate,
        other => SkipReason::Custom(other.to_owned()),
    }
}

fn identifier(value: &Value, what: &str) -> Identifier {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{what}: bad identifier: {e}"))
}

fn parse_target(value: &Value, name: &str) -> Target {
    if let Some(person) = value.get("person") {
        return Target::Person {
            identifier: identifier(person, name),
            anonymous_id: value
                .get("anonymous_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
    }
    if let Some(anonymous_id) = value.get("anonymous").and_then(Value::as_str) {
        return Target::Anonymous {
            anonymous_id: anonymous_id.to_owned(),
        };
    }
    if let Some(merge) = value.get("merge") {
        return Target::Merge {
            primary: identifier(&merge["primary"], name),
            secondary: identifier(&merge["secondary"], name),
        };
    }
    if let Some(code) = value.get("skip").and_then(Value::as_str) {
        return Target::Skip(parse_skip(code));
    }
    panic!("{name}: unknown target {value}");
}

/// Every string in the message's identity fields and traits: none may appear in an error.
fn personal_strings(message: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["userId", "anonymousId", "previousId"] {
        if let Some(text) = message.get(key).and_then(Value::as_str) {
            out.push(text.to_owned());
        }
    }
    for path in [
        &["traits", "email"][..],
        &["context", "traits", "email"][..],
    ] {
        let mut value = message;
        for key in path {
            value = &value[*key];
        }
        if let Some(text) = value.as_str() {
            out.push(text.to_owned());
        }
    }
    out.retain(|s| s.len() > 2);
    out
}

fn run(input: &Value, name: &str) -> Value {
    let message = Message::from_value(input["message"].clone())
        .unwrap_or_else(|e| panic!("{name}: the message does not decode: {e}"));
    let target = parse_target(&input["target"], name);
    let config: MappingConfig =
        serde_json::from_value(input.get("config").cloned().unwrap_or_else(|| json!({})))
            .unwrap_or_else(|e| panic!("{name}: bad config: {e}"));
    let result = match input.get("now").and_then(Value::as_i64) {
        Some(now) => map_at(&message, &target, &config, now),
        None => map(&message, &target, &config),
    };
    match result {
        Ok(Mapped::Operations(ops)) => {
            assert!(!ops.is_empty(), "{name}: Operations must not be empty");
            serde_json::to_value(&ops).expect("operations serialise")
        }
        Ok(Mapped::Skip(reason)) => json!({ "skip": skip_code(&reason) }),
        Ok(other) => panic!("{name}: unexpected outcome {other:?}"),
        Err(err) => {
            let text = describe(&err);
            for personal in personal_strings(&input["message"]) {
                assert!(
                    !text.contains(&personal),
                    "{name}: the error text shows personal data: {text}"
                );
            }
            json!({ "error": text })
        }
    }
}

#[test]
fn golden_fixtures() {
    let update = std::env::var_os("UPDATE_MAPPING_FIXTURES").is_some();
    let mut inputs: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .expect("fixtures folder exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".in.json"))
        .collect();
    inputs.sort();

    let mut failures = Vec::new();
    for input_path in &inputs {
        let file = input_path.file_name().unwrap().to_string_lossy();
        let name = file.trim_end_matches(".in.json").to_owned();
        let input: Value = serde_json::from_slice(&fs::read(input_path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: input is not JSON: {e}"));
        let actual = run(&input, &name);
        let out_path = input_path.with_file_name(format!("{name}.out.json"));
        if update {
            let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            fs::write(&out_path, text).unwrap();
            continue;
        }
        let expected: Value = match fs::read(&out_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{name}: output is not JSON: {e}")),
            Err(e) => panic!("{name}: no {}: {e}", out_path.display()),
        };
        if actual != expected {
            failures.push(format!(
                "{name}:\n  expected {}\n  actual   {}",
                serde_json::to_string(&expected).unwrap(),
                serde_json::to_string(&actual).unwrap()
            ));
        }
    }
    assert!(
        !update,
        "UPDATE_MAPPING_FIXTURES: {} outputs rewritten; review them and rerun without it",
        inputs.len()
    );
    assert!(
        inputs.len() >= 40,
        "expected at least 40 fixture pairs, found {}",
        inputs.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

#[test]
fn every_output_has_an_input() {
    for entry in fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(name) = file.strip_suffix(".out.json") {
            assert!(
                path.with_file_name(format!("{name}.in.json")).exists(),
                "{file} has no input"
            );
        } else {
            assert!(file.ends_with(".in.json"), "stray file {file}");
        }
    }
}
