//! Replays the fuzz inputs kept in the repository — the seed corpora (taken from the
//! fixtures) and any crash input under `fuzz/artifacts/` — through the same property checks
//! the fuzz targets run, so CI re-checks them on every change without a fuzzer.

#[path = "../../fuzz/properties.rs"]
mod properties;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Every file of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/`.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let data = std::fs::read(&path).unwrap();
                inputs.push((path, data));
            }
        }
    }
    inputs.sort();
    inputs
}

/// Runs `check` on every input of `target`; fails naming each input that broke a property.
fn replay(target: &str, at_least: usize, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(
        inputs.len() >= at_least,
        "{target}: {} inputs, expected at least {at_least}",
        inputs.len()
    );
    let failed: Vec<&Path> = inputs
        .iter()
        .filter(|(_, data)| catch_unwind(AssertUnwindSafe(|| check(data))).is_err())
        .map(|(path, _)| path.as_path())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: properties failed on {failed:?}"
    );
}

#[test]
fn segment_message_inputs_keep_their_properties() {
    replay("segment_message", 40, properties::segment_message);
}

#[test]
fn segment_batch_inputs_keep_their_properties() {
    replay("segment_batch", 4, properties::segment_batch);
}

#[test]
fn segment_webhook_body_inputs_keep_their_properties() {
    replay("segment_webhook_body", 7, properties::segment_webhook_body);
    // Single messages and batch envelopes are webhook bodies too.
    replay("segment_message", 40, properties::segment_webhook_body);
    replay("segment_batch", 4, properties::segment_webhook_body);
}

#[test]
fn sync_config_inputs_keep_their_properties() {
    replay("sync_config", 6, properties::sync_config);
}

#[test]
fn dead_letter_reader_inputs_keep_their_properties() {
    replay("dead_letter_reader", 7, properties::dead_letter_reader);
}

#[test]
fn cio_webhook_inputs_keep_their_properties() {
    replay("cio_webhook", 30, properties::cio_webhook);
}
