//! Loop guarding: what this library writes into Segment must never flow back into Customer.io.
//!
//! The back-sync turns Customer.io activity (a delivered email, a click) into Segment `track`
//! events. Segment routes events to every enabled destination — possibly to Customer.io itself,
//! or to the webhook that feeds this library. A [`LoopGuard`] breaks that cycle twice over:
//!
//! 1. [`stamp`](LoopGuard::stamp) marks each message before it is written into Segment: a
//!    provenance object in `context` (`context.cio_segment_sync = {"origin": …, "version": …}`)
//!    and `integrations` switches that turn every Customer.io destination off
//!    (`Customer.io`, `Customer.io (Actions)`, `Customer.io Actions`, `Actions Customerio`), so
//!    Segment does not route the event there in the first place.
//! 2. [`check`](LoopGuard::check) recognises such a message when it comes back — by the stamp,
//!    or, when the stamp did not survive the trip, by its messageId, which the guard remembered
//!    in a [`RecentIds`] store when it stamped it.
//!
//! ```
//! use cio_segment_sync::loop_guard::{EchoSignal, LoopGuard, LoopVerdict, StampingLoopGuard};
//! use cio_segment_sync::segment_model::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = StampingLoopGuard::default();
//! let mut opened = Message::from_str(r#"{"type":"track","userId":"u-1","event":"Email Opened"}"#)?;
//! guard.stamp(&mut opened).await?;
//! let routing = opened.integrations().ok_or("stamp sets integrations")?;
//! assert!(!routing.is_enabled("Customer.io (Actions)"));
//!
//! // The event comes back through Segment's webhook.
//! let echoed = Message::from_slice(&serde_json::to_vec(&opened)?)?;
//! assert_eq!(guard.check(&echoed).await?, LoopVerdict::Echo(EchoSignal::Stamp));
//! # Ok(())
//! # }
//! ```

mod recent;
#[cfg(feature = "redis")]
mod redis_ids;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use segment_model::integrations::{CUSTOMERIO_ACTIONS_NAMES, CUSTOMERIO_CLASSIC_NAME};
use segment_model::{Context, Integrations, Message};
use serde_json::{Map, Value};

use crate::store::StoreError;

pub use recent::{MemoryRecentIds, RecentIds};
#[cfg(feature = "redis")]
pub use redis_ids::RedisRecentIds;

/// The `context` key holding the provenance stamp.
pub const STAMP_KEY: &str = "cio_segment_sync";

/// The origin written into stamps unless configured otherwise.
pub const DEFAULT_ORIGIN: &str = "customerio";

/// The version of this library, written into stamps.
pub const STAMP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What [`LoopGuard::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoopVerdict {
    /// Not written by this library: process it.
    Fresh,
    /// Written by this library and come back: drop it (and ack its source).
    Echo(EchoSignal),
}

impl LoopVerdict {
    /// Whether the message is an echo.
    pub fn is_echo(self) -> bool {
        matches!(self, LoopVerdict::Echo(_))
    }
}

/// How an echo was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EchoSignal {
    /// The provenance stamp in `context`.
    Stamp,
    /// The messageId, written recently by this library.
    RecentId,
}

/// Tags what this library writes into Segment and recognises it when it comes back.
///
/// Object safe; the futures are `Send`.
#[async_trait]
pub trait LoopGuard: fmt::Debug + Send + Sync + 'static {
    /// Marks `message`, which this library is about to write into Segment. Gives it a
    /// messageId when it has none (keep it for every retry of the write). An error means the
    /// guard could not record the id; the stamp is in the message all the same.
    async fn stamp(&self, message: &mut Message) -> Result<(), StoreError>;

    /// Whether `message` is one this library wrote. An error means "do not know yet": do not
    /// ack the source.
    async fn check(&self, message: &Message) -> Result<LoopVerdict, StoreError>;
}

#[async_trait]
impl<T: LoopGuard + ?Sized> LoopGuard for Arc<T> {
    async fn stamp(&self, message: &mut Message) -> Result<(), StoreError> {
        (**self).stamp(message).await
    }

    async fn check(&self, message: &Message) -> Result<LoopVerdict, StoreError> {
        (**self).check(message).await
    }
}

#[async_trait]
impl<T: LoopGuard + ?Sized> LoopGuard for Box<T> {
    async fn stamp(&self, message: &mut Message) -> Result<(), StoreError> {
        (**self).stamp(message).await
    }

    async fn check(&self, message: &Message) -> Result<LoopVerdict, StoreError> {
        (**self).check(message).await
    }
}

/// Settings of a [`StampingLoopGuard`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopGuardConfig {
    /// Written as `context.cio_segment_sync.origin`. Default [`DEFAULT_ORIGIN`].
    pub origin: String,
    /// Whether a stamp with another origin (another deployment of this library) is an echo as
    /// well. Default `true`: anything this library wrote stays out of Customer.io.
    pub any_origin_is_echo: bool,
    /// How long a stamped messageId is remembered. Default 6 hours: Segment retries delivery to
    /// a destination for up to about four hours.
    pub recent_ttl: Duration,
    /// Further destinations to switch off in stamped messages (e.g. the Webhooks destination
    /// that feeds this library), besides the Customer.io ones.
    pub also_disable: Vec<String>,
}

impl Default for LoopGuardConfig {
    fn default() -> Self {
        Self {
            origin: DEFAULT_ORIGIN.to_owned(),
            any_origin_is_echo: true,
            recent_ttl: Duration::from_secs(6 * 60 * 60),
            also_disable: Vec::new(),
        }
    }
}

impl LoopGuardConfig {
    /// Sets [`LoopGuardConfig::origin`].
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = origin.into();
        self
    }

    /// Sets [`LoopGuardConfig::any_origin_is_echo`].
    pub fn with_any_origin_is_echo(mut self, on: bool) -> Self {
        self.any_origin_is_echo = on;
        self
    }

    /// Sets [`LoopGuardConfig::recent_ttl`].
    pub fn with_recent_ttl(mut self, ttl: Duration) -> Self {
        self.recent_ttl = ttl;
        self
    }

    /// Adds a destination to [`LoopGuardConfig::also_disable`].
    pub fn also_disable(mut self, destination: impl Into<String>) -> Self {
        self.also_disable.push(destination.into());
        self
    }
}

/// The default [`LoopGuard`]: a `context` stamp, `integrations` switches, and a
/// [`RecentIds`] memory of the messageIds it stamped.
pub struct StampingLoopGuard {
    recent: Arc<dyn RecentIds>,
    config: LoopGuardConfig,
}

impl fmt::Debug for StampingLoopGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StampingLoopGuard")
            .field("recent", &self.recent)
            .field("config", &self.config)
            .finish()
    }
}

impl Default for StampingLoopGuard {
    /// Default settings and an in-memory [`MemoryRecentIds`].
    fn default() -> Self {
        Self::new(
            Arc::new(MemoryRecentIds::default()),
            LoopGuardConfig::default(),
        )
    }
}

impl StampingLoopGuard {
    /// A guard remembering stamped ids in `recent`.
    pub fn new(recent: Arc<dyn RecentIds>, config: LoopGuardConfig) -> Self {
        Self { recent, config }
    }

    /// The settings.
    pub fn config(&self) -> &LoopGuardConfig {
        &self.config
    }

    /// Whether `context` holds a stamp this guard recognises.
    fn stamped(&self, context: &Context) -> bool {
        let Some(Value::Object(stamp)) = context.extra.get(STAMP_KEY) else {
            return false;
        };
        match stamp.get("origin") {
            Some(Value::String(origin)) => {
                self.config.any_origin_is_echo || *origin == self.config.origin
            }
            _ => false,
        }
    }
}

#[async_trait]
impl LoopGuard for StampingLoopGuard {
    async fn stamp(&self, message: &mut Message) -> Result<(), StoreError> {
        let id = message.ensure_message_id().to_owned();
        let common = message.common_mut();

        let mut stamp = Map::new();
        stamp.insert("origin".into(), Value::String(self.config.origin.clone()));
        stamp.insert("version".into(), Value::String(STAMP_VERSION.to_owned()));
        common
            .context
            .get_or_insert_with(Context::default)
            .extra
            .insert(STAMP_KEY.to_owned(), Value::Object(stamp));

        let integrations = common.integrations.get_or_insert_with(Integrations::new);
        integrations.insert(CUSTOMERIO_CLASSIC_NAME, false);
        for name in CUSTOMERIO_ACTIONS_NAMES {
            integrations.insert(*name, false);
        }
        for name in &self.config.also_disable {
            integrations.insert(name.clone(), false);
        }

        self.recent.remember(&id, self.config.recent_ttl).await
    }

    async fn check(&self, message: &Message) -> Result<LoopVerdict, StoreError> {
        if message.context().is_some_and(|c| self.stamped(c)) {
            return Ok(LoopVerdict::Echo(EchoSignal::Stamp));
        }
        if let Some(id) = message.message_id()
            && self.recent.contains(id).await?
        {
            return Ok(LoopVerdict::Echo(EchoSignal::RecentId));
        }
        Ok(LoopVerdict::Fresh)
    }
}
