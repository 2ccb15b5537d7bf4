//! Cross-crate end-to-end tests live in `tests/tests/`. This library holds shared helpers.
