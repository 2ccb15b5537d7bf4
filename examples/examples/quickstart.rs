//! Quickstart: read the sample Segment events and show how `segment-model` understands them.
//!
//! ```text
//! cargo run -p examples --example quickstart [FILE.jsonl]
//! ```
//!
//! Each line of `examples/data/sample-events.jsonl` (or `FILE.jsonl`) is parsed into a typed
//! [`Message`]. A good line prints its call type, message id and what the sync would see in it
//! (an Engage audience change, a lifecycle event, a validation problem); a repeated message id is
//! reported as a duplicate; a bad line prints its typed error. No credentials are needed. The
//! full Segment → Customer.io dry run replaces this program once the sync crate's flows exist.
#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::path::PathBuf;

use segment_model::Message;
use segment_model::audience::AudienceChange;
use segment_model::spec::LifecycleEvent;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sample-events.jsonl")
        });
    let text = std::fs::read_to_string(&path)?;
    let mut seen = HashSet::new();
    let (mut parsed, mut duplicates, mut rejected) = (0usize, 0usize, 0usize);
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = n + 1;
        let message = match Message::from_str(line) {
            Ok(message) => message,
            Err(err) => {
                rejected += 1;
                println!("line {line_no:>3}: rejected: {err}");
                continue;
            }
        };
        let id = message.message_id().unwrap_or("-").to_owned();
        if !seen.insert(id.clone()) {
            duplicates += 1;
            println!(
                "line {line_no:>3}: {:<8} {id}  (duplicate message id: skipped)",
                message.kind().to_string()
            );
            continue;
        }
        parsed += 1;
        let mut notes = Vec::new();
        if let Some(event) = message.event() {
            notes.push(format!("event {event:?}"));
        }
        match AudienceChange::from_message(&message) {
            Ok(Some(change)) => {
                notes.push(format!("audience {} {:?}", change.key, change.membership))
            }
            Ok(None) => {}
            Err(err) => notes.push(format!("audience error: {err}")),
        }
        if let Some(lifecycle) = LifecycleEvent::from_message(&message) {
            notes.push(format!("lifecycle {}", lifecycle.as_str()));
        }
        if let Err(violations) = message.validate() {
            notes.push(format!("invalid: {violations}"));
        }
        println!(
            "line {line_no:>3}: {:<8} {id}  {}",
            message.kind().to_string(),
            notes.join(", ")
        );
    }
    println!("\n{parsed} messages parsed, {duplicates} duplicates, {rejected} rejected");
    Ok(())
}
