//! A typed async client for Customer.io.
//!
//! `customerio-client` is the Customer.io half of the `cio-segment-sync` crate family. It knows
//! Customer.io's wire format and nothing about Segment:
//!
//! - [`TrackClient`]: the Track API, v1 calls and the v2 `entity` / `batch` operations, with a
//!   size-aware `BatchPacker` and deterministic event ids;
//! - [`AppClient`]: the App API (transactional sends, broadcasts, segments, people look-ups);
//! - [`webhook`]: reporting-webhook payloads and their signature check;
//! - one [`Error`] type that records the phase a failure happened in, whether it is worth
//!   retrying and how long the server asked us to wait.
//!
//! Secrets (`SiteId`, `TrackApiKey`, `AppApiKey`) never show their value in `Debug` or
//! `Display`.

pub mod app;
pub mod config;
pub mod error;
pub mod event_id;
pub(crate) mod http;
pub mod identifier;
pub mod limits;
pub mod retry;
pub mod secret;
pub mod track;
pub mod webhook;

pub use app::AppClient;
pub use config::{ClientConfig, Region};
pub use error::{Error, ErrorKind, Phase};
pub use identifier::Identifier;
pub use secret::{AppApiKey, SiteId, TrackApiKey};
pub use track::TrackClient;

/// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
