//! Segment webhook body (one event, a bare array, or a `{"batch": [...]}` envelope), decoded
//! item by item.
//!
//! Properties beyond "no panic": indexes are unique and below the item count; each decoded
//! message serialises and decodes back to an equal message; the result agrees with the
//! single-message and lenient batch parses.
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::segment_webhook_body(data));
