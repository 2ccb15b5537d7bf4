//! Code the runnable examples in `examples/examples/` share, kept in a library so the tests in
//! `tests/` can import it: configuration loading, the dry-run HTTP sink, the quickstart's
//! routing of messages to flows, the replay of Segment archives, a custom identity rule, an
//! in-memory queue consumer and the webhook server's router.

pub mod config;
pub mod custom_identity;
pub use cio_sync::dry_run;
pub mod flows;
pub mod quickstart;
pub mod server;
pub mod worker;
