//! Seeded mutation testing of the payload decoder.
//!
//! Thousands of byte-level and JSON-structure mutations of the fixtures are decoded. Beyond "no
//! panic", every outcome is checked against an independent reading of the same bytes with
//! `serde_json::Value`:
//!
//! - bytes that are not JSON give [`PayloadError::Syntax`];
//! - JSON that decodes serialises back to exactly the same value;
//! - JSON that is refused names a path that really exists (or, for a missing key, whose parent
//!   exists without it) and reports the JSON type actually found there.
//!
//! The generator is a fixed-seed SplitMix64, so every run sees the same inputs.

use std::fs;
use std::path::Path;

use customerio_client::webhook::{JsonType, PayloadError, ReportingEvent};
use serde_json::{Map, Number, Value, json};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n`; `n` must be non-zero.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) => panic!("cannot read {}: {err}", dir.display()),
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            Some((name, fs::read(&path).ok()?))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 12, "fixtures missing: found {}", out.len());
    out
}

/// Follows a path such as `$.data.recipients[0].device_id`.
fn resolve<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut rest = path.strip_prefix('$')?;
    let mut here = root;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            here = here.as_object()?.get(&after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let index: usize = after[..end].parse().ok()?;
            here = here.as_array()?.get(index)?;
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(here)
}

#[derive(Default, Debug)]
struct Tally {
    syntax: usize,
    accepted: usize,
    wrong_type: usize,
    missing: usize,
    empty: usize,
}

/// Decodes `bytes` and checks the outcome against an independent `Value` reading.
fn check(bytes: &[u8], tally: &mut Tally, context: &str) {
    let outcome = ReportingEvent::from_slice(bytes);
    let reference = serde_json::from_slice::<Value>(bytes);
    match (outcome, reference) {
        (Err(PayloadError::Syntax { .. }), Err(_)) => tally.syntax += 1,
        (other, Err(err)) => panic!("{context}: invalid JSON ({err}) gave {other:?}"),
        (Ok(event), Ok(value)) => {
            let back = match serde_json::to_value(&event) {
                Ok(back) => back,
                Err(err) => panic!("{context}: accepted event does not serialise: {err}"),
            };
            assert_eq!(
                back, value,
                "{context}: accepted event changed in round trip"
            );
            tally.accepted += 1;
        }
        (Err(err), Ok(value)) => {
            // Every refusal must render without panicking and name a path.
            let _ = err.to_string();
            match &err {
                PayloadError::WrongType { path, found, .. } => {
                    let at = resolve(&value, path)
                        .unwrap_or_else(|| panic!("{context}: {path} does not exist"));
                    assert_eq!(JsonType::of(at), *found, "{context}: {err}");
                    tally.wrong_type += 1;
                }
                PayloadError::MissingField { path } => {
                    let (parent, key) = path
                        .rsplit_once('.')
                        .unwrap_or_else(|| panic!("{context}: odd path {path}"));
                    let parent = resolve(&value, parent)
                        .and_then(Value::as_object)
                        .unwrap_or_else(|| panic!("{context}: parent of {path} is not an object"));
                    assert!(!parent.contains_key(key), "{context}: {path} is present");
                    tally.missing += 1;
                }
                PayloadError::EmptyField { path } => {
                    assert_eq!(resolve(&value, path), Some(&json!("")), "{context}");
                    tally.empty += 1;
                }
                PayloadError::Syntax { .. } => {
                    panic!("{context}: valid JSON reported as a syntax error: {err}")
                }
                other => panic!("{context}: unexpected error kind {other:?}"),
            }
        }
    }
}

const TOKENS: &[&[u8]] = &[
    b"null",
    b"true",
    b"0",
    b"-1",
    b"1.5",
    b"1e999",
    b"18446744073709551616",
    b"\"\"",
    b"\"x\"",
    b"[]",
    b"{}",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\"event_id\":",
    b"\"data\":",
    b"\"recipients\":",
    b"\xff",
    b"\xc3\xa9",
];

fn mutate_bytes(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = bytes.len();
        match rng.below(6) {
            0 if len > 0 => {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                bytes[at] = *rng.pick(b"{}[]\",:0123456789-+.eE ntfalsu\\\x00\x7f");
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                bytes.drain(start..end);
            }
            3 => {
                let at = rng.below(len + 1);
                let token = rng.pick(TOKENS);
                bytes.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let copy = bytes[start..end].to_vec();
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, copy);
            }
            _ => bytes.truncate(rng.below(len + 1)),
        }
    }
    bytes
}

/// Every path to a node, as a list of steps.
#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn all_paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                all_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(Step::Index(index));
                all_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'v>(root: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    let mut here = root;
    for step in path {
        here = match step {
            Step::Key(key) => here.as_object_mut()?.get_mut(key)?,
            Step::Index(index) => here.as_array_mut()?.get_mut(*index)?,
        };
    }
    Some(here)
}

const KEYS: &[&str] = &[
    "event_id",
    "object_type",
    "metric",
    "timestamp",
    "data",
    "identifiers",
    "id",
    "email",
    "cio_id",
    "customer_id",
    "delivery_id",
    "campaign_id",
    "link_id",
    "href",
    "machine",
    "recipients",
    "device_id",
    "campaign_tags",
    "headers",
    "unknown_key",
    "",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 2 { 9 } else { 11 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 1),
        2 => json!(rng.next_u64() as i64),
        3 => json!(rng.next_u64()),
        4 => Number::from_f64(rng.below(1000) as f64 / 7.0).map_or(Value::Null, Value::Number),
        5 => json!(""),
        6 => json!(*rng.pick(&["email", "opened", "customer", "clicked", "x", "01ABC"])),
        7 => json!(0),
        8 => json!(-1),
        9 => Value::Array(
            (0..rng.below(3))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(3) {
                map.insert((*rng.pick(KEYS)).to_owned(), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

fn mutate_structure(rng: &mut Rng, original: &Value) -> Value {
    let mut value = original.clone();
    for _ in 0..=rng.below(3) {
        let mut paths = Vec::new();
        all_paths(&value, &mut Vec::new(), &mut paths);
        let path = rng.pick(&paths).clone();
        let choice = rng.below(5);
        if choice == 0 {
            // Remove the node from its parent (the root cannot be removed).
            if let Some((last, parent_path)) = path.split_last()
                && let Some(parent) = node_mut(&mut value, parent_path)
            {
                match (last, parent) {
                    (Step::Key(key), Value::Object(map)) => {
                        map.remove(key);
                    }
                    (Step::Index(index), Value::Array(items)) if *index < items.len() => {
                        items.remove(*index);
                    }
                    _ => {}
                }
            }
            continue;
        }
        let replacement = random_value(rng, 0);
        let key = (*rng.pick(KEYS)).to_owned();
        let Some(node) = node_mut(&mut value, &path) else {
            continue;
        };
        match choice {
            1 | 2 => *node = replacement,
            3 => {
                if let Value::Object(map) = node {
                    map.insert(key, replacement);
                } else {
                    *node = Value::Array(vec![node.take()]);
                }
            }
            _ => {
                // Rename one key of an object to another (possibly known) name.
                if let Value::Object(map) = node
                    && let Some(old) = map.keys().next().cloned()
                    && let Some(moved) = map.remove(&old)
                {
                    map.insert(key, moved);
                }
            }
        }
    }
    value
}

#[test]
fn byte_mutations_never_panic_and_are_judged_consistently() {
    let mut rng = Rng(0x5EED_0001_CAFE_F00D);
    let mut tally = Tally::default();
    for (name, bytes) in fixtures() {
        for round in 0..150 {
            let mutated = mutate_bytes(&mut rng, &bytes);
            check(&mutated, &mut tally, &format!("{name} byte round {round}"));
        }
    }
    // The mutations must exercise both outcomes, or the test proves nothing.
    assert!(tally.syntax > 1_000, "{tally:?}");
    assert!(tally.accepted > 100, "{tally:?}");
    assert!(tally.wrong_type + tally.missing > 50, "{tally:?}");
}

#[test]
fn structural_mutations_never_panic_and_are_judged_consistently() {
    let mut rng = Rng(0x5EED_0002_DEAD_BEEF);
    let mut tally = Tally::default();
    for (name, bytes) in fixtures() {
        let original: Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(err) => panic!("{name}: {err}"),
        };
        for round in 0..150 {
            let mutated = mutate_structure(&mut rng, &original);
            let text = mutated.to_string();
            check(
                text.as_bytes(),
                &mut tally,
                &format!("{name} structure round {round}"),
            );
        }
    }
    assert_eq!(tally.syntax, 0, "{tally:?}");
    assert!(tally.accepted > 500, "{tally:?}");
    assert!(tally.wrong_type > 300, "{tally:?}");
    assert!(tally.missing > 50, "{tally:?}");
    assert!(tally.empty > 0, "{tally:?}");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let mut body =
        br#"{"event_id":"01","object_type":"email","metric":"sent","timestamp":1,"data":{"x":"#
            .to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.extend_from_slice(b"}}");
    assert!(matches!(
        ReportingEvent::from_slice(&body),
        Err(PayloadError::Syntax { .. })
    ));

    // Nesting within the parser's limit is kept and written back.
    let mut body =
        br#"{"event_id":"01","object_type":"email","metric":"sent","timestamp":1,"data":{"x":"#
            .to_vec();
    body.extend(std::iter::repeat_n(b'[', 100));
    body.extend(std::iter::repeat_n(b']', 100));
    body.extend_from_slice(b"}}");
    let mut tally = Tally::default();
    check(&body, &mut tally, "nested 100");
    assert_eq!(tally.accepted, 1);
}
