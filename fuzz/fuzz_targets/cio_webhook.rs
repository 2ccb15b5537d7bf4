//! Customer.io reporting webhook: signature check and payload parse.
//!
//! The input is split into a timestamp header, a signature header and a body. Properties:
//! arbitrary headers never verify against a body unless they are its signature; a body
//! signed with the key always verifies; a parsed payload serialises and parses back to the
//! same JSON.
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::cio_webhook(data));
