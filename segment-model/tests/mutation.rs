//! Seeded mutation fuzzing over every fixture: decoding never panics, and whatever decodes
//! still round-trips exactly.

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use segment_model::{Batch, Message};
use serde_json::{Map, Value, json};

const SEED: u64 = 0x5EC_0DE1;
const BYTE_MUTATIONS_PER_FIXTURE: usize = 150;
const VALUE_MUTATIONS_PER_FIXTURE: usize = 150;

/// Exercises everything a consumer might call on a decoded message.
fn poke_message(message: &Message, input: &Value) {
    assert_eq!(
        &serde_json::to_value(message).expect("serialises"),
        input,
        "a decoded mutant must round-trip"
    );
    let _ = message.validate();
    let _ = message.encoded_len();
    let _ = (
        message.kind(),
        message.message_id(),
        message.user_id().map(|id| id.as_str()),
    );
    let _ = message.anonymous_id().map(|id| id.char_len());
    if let Some(traits) = message.traits() {
        let _ = (
            traits.email(),
            traits.name(),
            traits.phone(),
            traits.id(),
            traits.age(),
        );
        let _ = (
            traits.try_created_at(),
            traits.try_birthday(),
            traits.try_address(),
        );
        let _ = (
            traits.try_company(),
            traits.try_employees(),
            traits.try_name(),
        );
    }
    if let Some(properties) = message.properties() {
        let _ = (
            properties.try_revenue(),
            properties.try_value(),
            properties.try_keywords(),
        );
        let _ = (properties.currency(), properties.keywords());
    }
    if let Some(context) = message.context() {
        let _ = (context.email(), context.nonconforming_paths());
        if let Some(consent) = &context.consent {
            let _ = consent.category_allowed("Advertising");
        }
    }
    if let Some(integrations) = message.integrations() {
        let _ = integrations.is_enabled("Customer.io (Actions)");
        let _ = integrations.is_enabled_any(segment_model::integrations::CUSTOMERIO_ACTIONS_NAMES);
    }
    if let Some(ts) = message.timestamp() {
        let _ = (
            ts.as_unix_seconds(),
            ts.as_unix_millis(),
            ts.to_canonical_string(),
        );
    }
}

fn poke_batch(batch: Batch, input: &Value) {
    assert_eq!(&serde_json::to_value(&batch).expect("serialises"), input);
    let _ = batch.validate();
    let _ = batch.into_messages();
}

fn decode_bytes(name: &str, bytes: &[u8]) {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    if common::is_batch(name) {
        if let Ok(batch) = Batch::from_slice(bytes) {
            poke_batch(batch, parsed.as_ref().expect("decoded bytes are JSON"));
        }
        if let Ok(lenient) = Batch::from_slice_lenient(bytes) {
            let _ = lenient.batch.validate();
            for error in &lenient.errors {
                let _ = (error.to_string(), format!("{error:?}"), error.error.path());
            }
        }
    }
    // Every fixture is also fed to the message decoder: batches must be rejected cleanly.
    match Message::from_slice(bytes) {
        Ok(message) => poke_message(&message, parsed.as_ref().expect("decoded bytes are JSON")),
        Err(err) => {
            let _ = (err.to_string(), err.path());
        }
    }
}

fn decode_value(name: &str, value: &Value) {
    if common::is_batch(name) {
        if let Ok(batch) = Batch::from_value(value.clone()) {
            poke_batch(batch, value);
        }
        if let Ok(lenient) = Batch::from_value_lenient(value.clone()) {
            let _ = lenient.batch.into_messages();
        }
    }
    match Message::from_value(value.clone()) {
        Ok(message) => poke_message(&message, value),
        Err(err) => {
            let _ = (err.to_string(), err.path());
        }
    }
}

fn mutate_bytes(rng: &mut ChaCha8Rng, original: &[u8]) -> Vec<u8> {
    const STRUCTURAL: &[u8] = b"{}[]\":,0123456789-+.eEtfn\\ \n\xff\x00";
    let mut bytes = original.to_vec();
    let rounds = rng.random_range(1..=3);
    for _ in 0..rounds {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..5) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = STRUCTURAL[rng.random_range(0..STRUCTURAL.len())],
            2 => bytes.truncate(at),
            3 => {
                let end = rng.random_range(at..=bytes.len().min(at + 16));
                bytes.drain(at..end);
            }
            _ => {
                let end = rng.random_range(at..=bytes.len().min(at + 16));
                let chunk = bytes[at..end].to_vec();
                let to = rng.random_range(0..=bytes.len());
                bytes.splice(to..to, chunk);
            }
        }
    }
    bytes
}

/// A random replacement value, biased towards the shapes that break typed fields.
fn random_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..14) {
        0 => Value::Null,
        1 => Value::Bool(rng.random_bool(0.5)),
        2 => Value::from(rng.random::<i64>()),
        3 => Value::from(rng.random::<u64>()),
        4 => Value::from(rng.random::<f64>() * 1e300),
        5 => Value::from(""),
        6 => Value::from("2024-13-45T99:99:99Z"),
        7 => Value::from("2024-05-01T10:15:30.123+02:00"),
        8 => Value::from(["track", "identify", "delete", "batch", "Track"][rng.random_range(0..5)]),
        9 => json!([]),
        10 => json!({}),
        11 => json!([1, "two", null, {"three": 3}]),
        12 => json!({"email": 5, "createdAt": -1e20, "nested": {"deep": [true]}}),
        _ => Value::from("x".repeat(rng.random_range(0..200))),
    }
}

/// Every path (as key/index steps) to a node of `value`.
fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut node = value;
    for step in path {
        node = match step {
            Step::Key(key) => node.as_object_mut()?.get_mut(key)?,
            Step::Index(i) => node.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(node)
}

fn mutate_value(rng: &mut ChaCha8Rng, original: &Value) -> Value {
    let mut value = original.clone();
    let mut all = Vec::new();
    paths(&value, &mut Vec::new(), &mut all);
    let rounds = rng.random_range(1..=3);
    for _ in 0..rounds {
        let path = &all[rng.random_range(0..all.len())];
        let choice = rng.random_range(0..4);
        let Some(node) = node_mut(&mut value, path) else {
            continue; // an earlier round removed this node
        };
        match (choice, node) {
            (0, node) => *node = random_value(rng),
            (1, Value::Object(map)) if !map.is_empty() => {
                let key = map.keys().nth(rng.random_range(0..map.len())).cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
            (2, Value::Object(map)) => {
                let keys = [
                    "type",
                    "userId",
                    "traits",
                    "properties",
                    "event",
                    "context",
                    "timestamp",
                    "batch",
                    "integrations",
                    "groupId",
                ];
                map.insert(
                    keys[rng.random_range(0..keys.len())].to_owned(),
                    random_value(rng),
                );
            }
            (3, Value::Array(items)) if !items.is_empty() => {
                let i = rng.random_range(0..items.len());
                items[i] = random_value(rng);
            }
            (_, node) => *node = Value::Object(Map::new()),
        }
    }
    value
}

#[test]
fn byte_mutations_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut total = 0;
    for (name, bytes) in common::fixtures() {
        decode_bytes(&name, &bytes);
        for _ in 0..BYTE_MUTATIONS_PER_FIXTURE {
            let mutant = mutate_bytes(&mut rng, &bytes);
            decode_bytes(&name, &mutant);
            total += 1;
        }
    }
    assert!(total >= 4_000, "only {total} mutations ran");
}

#[test]
fn value_mutations_never_panic_and_decoded_mutants_round_trip() {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ 0xFFFF);
    let mut total = 0;
    let mut decoded = 0;
    for (name, bytes) in common::fixtures() {
        let original: Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
        for _ in 0..VALUE_MUTATIONS_PER_FIXTURE {
            let mutant = mutate_value(&mut rng, &original);
            if Message::from_value(mutant.clone()).is_ok() {
                decoded += 1;
            }
            decode_value(&name, &mutant);
            total += 1;
        }
    }
    assert!(total >= 4_000, "only {total} mutations ran");
    // The mutations must exercise both outcomes, or the test proves little.
    assert!(
        decoded > total / 10 && decoded < total,
        "{decoded} of {total} decoded"
    );
}
