//! Segment message: parse, validate, map to Customer.io operations.
//!
//! Properties beyond "no panic": a parsed message serialises, the serialisation parses back to
//! the same JSON (one round trip is a fixed point), and mapping never panics whatever the
//! target.
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::segment_message(data));
