//! The TOML configuration loader (`SyncConfig::from_toml_str`).
//!
//! Properties beyond "no panic": a loaded configuration passes its own checks and survives a
//! serialise / deserialise round trip unchanged.
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::sync_config(data));
