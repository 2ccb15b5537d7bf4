//! Segment's tracking spec as lossless, validated Rust types.
//!
//! `segment-model` is the Segment half of the `cio-segment-sync` crate family. It knows
//! Segment's wire format and nothing about Customer.io:
//!
//! - [`Message`]: the six calls (identify, track, page, screen, group, alias) plus the `delete`
//!   notification, tagged by `type`, with the common envelope fields in one shared struct;
//! - [`Batch`]: the `{"batch": [...]}` envelope of the Tracking API;
//! - lossless round-trips: fields this crate does not model are kept and written back once;
//! - lenient timestamp parsing and strict validation on demand;
//! - the semantic specs the sync uses (Email spec, push, lifecycle names, Engage audiences);
//! - [`webhook`]: what Segment's Webhooks destinations send (the `X-Signature` check, and the
//!   body in its three shapes decoded item by item);
//! - behind the `client` feature, the Tracking API writer and the Profile API reader.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audience;
pub mod batch;
pub mod builder;
pub mod context;
pub mod error;
pub mod integrations;
pub mod message;
pub mod reserved;
pub mod spec;
pub mod timestamp;
pub mod validate;
pub mod webhook;

/// The Webhooks destination signature check, at its v0.1 path; it lives in
/// [`webhook::signature`].
pub use webhook::signature;

#[cfg(feature = "client")]
pub mod client;

pub use batch::{Batch, BatchItemError, LenientBatch};
pub use builder::{
    AliasBuilder, DeleteBuilder, GroupBuilder, IdentifyBuilder, PageBuilder, ScreenBuilder,
    TrackBuilder,
};
pub use context::Context;
pub use error::{Error, JsonErrorCategory, JsonType};
pub use integrations::{IntegrationSetting, Integrations};
pub use message::{
    Alias, Common, Delete, Group, Id, Identify, Message, MessageKind, NumberOrString, Page, Screen,
    Track, WriteKey,
};
pub use reserved::{Properties, Traits};
pub use timestamp::Timestamp;
pub use validate::{Limits, Violation, ViolationKind, Violations};

// webhooks, specs, audiences, clients
pub use audience::{AudienceChange, AudienceError, ComputationClass, Membership};
pub use spec::{EmailEvent, EmailProperties, EmailSpecEvent, LifecycleEvent, PushEvent};
pub use webhook::{
    BodyShape, SharedSecret, SignatureError, WebhookBody, WebhookBodyError, WebhookItemError,
    WebhookLimits, WebhookVerifier,
};

/// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
