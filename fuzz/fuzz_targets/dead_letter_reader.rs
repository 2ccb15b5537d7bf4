//! The reader of dead-letter files and resume files: one record per line, strict per line.
//!
//! Properties beyond "no panic": each non-blank line is a record or an error naming its line;
//! a record written back reads back the same; a read of a still-growing text is a prefix of the
//! complete read.
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::dead_letter_reader(data));
