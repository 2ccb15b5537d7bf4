//! Segment batch envelope (`{"batch": [...], ...}`), strict and lenient.
//!
//! Properties: strict success implies lenient success with no item errors and the same
//! messages; a parsed envelope serialises and parses back to the same JSON.
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::segment_batch(data));
