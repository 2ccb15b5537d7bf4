//! Runnable examples live in `examples/examples/`. This library holds code they share.

pub mod server;
