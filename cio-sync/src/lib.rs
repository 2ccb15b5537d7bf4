//! `cio-sync`: the command line over the `cio-segment-sync` library.
//!
//! The binary's commands are documented by `cio-sync --help`; this library exposes their
//! pieces so they can be tested and reused:
//!
//! - [`cli`]: the clap command line and what each command does, with [`cli::EXIT_CODES`];
//! - [`env`](mod@env): the environment contract (secrets and endpoints), every problem reported at once;
//! - [`demo`]: the dry run over the bundled sample;
//! - [`replay`]: Segment archives into Customer.io, outlasting outages, with resume files;
//! - [`dead_letters`]: where dead letters go, and the `dead-letters list | replay` commands;
//! - [`duration`]: durations on the command line (`90s`, `2h`).
//!
//! Dry runs send to the library's
//! [`RecordingServer`](cio_segment_sync::testing::RecordingServer).
#![forbid(unsafe_code)]

pub mod cli;
pub mod dead_letters;
pub mod demo;
pub mod duration;
pub mod env;
pub mod replay;
pub mod serve;

/// `error` and its sources, each written once (see [`cio_segment_sync::outcome::describe`]).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    cio_segment_sync::outcome::describe(error)
}
