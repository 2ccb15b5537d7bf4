//! Quickstart: read the sample Segment events and show how `segment-model` sees them.
//!
//! ```text
//! cargo run -p examples --example quickstart
//! ```
//!
//! Each line of `examples/data/sample-events.jsonl` is parsed; a good line prints its call type
//! and message id, a bad line prints the typed error. The full Segment → Customer.io dry run
//! replaces this program once the sync crate's flows exist.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sample-events.jsonl")
        });
    let text = std::fs::read_to_string(&path)?;
    let (mut good, mut bad) = (0usize, 0usize);
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(value) => {
                good += 1;
                let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("?");
                let id = value
                    .get("messageId")
                    .and_then(|t| t.as_str())
                    .unwrap_or("-");
                println!("line {:>3}: {kind:<8} {id}", n + 1);
            }
            Err(err) => {
                bad += 1;
                println!("line {:>3}: rejected: {err}", n + 1);
            }
        }
    }
    println!("\n{good} messages parsed, {bad} rejected");
    Ok(())
}
