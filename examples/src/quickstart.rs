//! The quickstart's engine: every Segment → Customer.io flow the configuration turns on
//! ([`SegmentFlows`]), behind one [`Quickstart::handle_line`].
//!
//! Each line of JSON goes to exactly one flow ([`SegmentFlows::route`]): an Engage audience
//! change to the audience sync when `[audience]` is set, a milestone event to the onboarding
//! flow when `[onboarding]` is set, everything else to the triggers flow.
//!
//! The flows share in-memory stores (so an identify seen by one is known to the others) and
//! one dead-letter list. [`Quickstart::start`] spawns the dispatchers' workers on the current
//! tokio runtime; [`Quickstart::shutdown`] sends what is queued and stops them.
//!
//! ```
//! use customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
//! use examples::config::SyncConfig;
//! use examples::dry_run::DrySink;
//! use examples::quickstart::{EXAMPLE_CONFIG, LineReport, Quickstart};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = DrySink::start().await?;
//! let client = TrackClient::new(
//!     SiteId::new("site"),
//!     TrackApiKey::new("key"),
//!     ClientConfig::new(Region::Us).with_track_base_url(sink.base_url())?,
//! )?;
//! let mut config = SyncConfig::from_toml_str(EXAMPLE_CONFIG, "example")?;
//! config.triggers.dispatcher.linger_ms = Some(1);
//! let quickstart = Quickstart::start(client, &config, None)?;
//! let report = quickstart
//!     .handle_line(r#"{"type":"track","messageId":"m-1","userId":"u-1","event":"Clicked"}"#)
//!     .await;
//! assert!(matches!(report, LineReport::Handled { flow: "triggers", .. }));
//! quickstart.shutdown().await;
//! let requests = sink.take();
//! assert_eq!(requests.len(), 1);
//! assert_eq!(requests[0].path, "/api/v2/batch");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::identity::IdentityResolver;
use customerio_client::TrackClient;
use segment_model::Message;

use crate::config::SyncConfig;
use crate::flows::{FlowResult, FlowsError, SegmentFlows};

/// The bundled sample events (`examples/data/sample-events.jsonl`).
pub const SAMPLE_EVENTS: &str = include_str!("../../cio-sync/data/sample-events.jsonl");

/// The bundled example configuration (`examples/sync.example.toml`), used when the quickstart
/// gets no `--config`.
pub const EXAMPLE_CONFIG: &str = include_str!("../../cio-sync/sync.example.toml");

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineReport {
    /// An empty line.
    Blank,
    /// The line is not a Segment message; the error names the JSON path.
    Malformed(String),
    /// A flow handled the message.
    Handled {
        /// The flow: `triggers`, `onboarding` or `audience`.
        flow: &'static str,
        /// The call type (`identify`, `track`, ...).
        kind: String,
        /// What happened.
        result: LineResult,
    },
}

/// How a flow finished a message: the shared [`FlowResult`].
pub type LineResult = FlowResult;

impl fmt::Display for LineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineReport::Blank => f.write_str("blank"),
            LineReport::Malformed(error) => write!(f, "malformed: {error}"),
            LineReport::Handled { flow, kind, result } => {
                write!(f, "{kind:<8} → {flow:<10} ")?;
                match result {
                    LineResult::Delivered => f.write_str("delivered"),
                    LineResult::Skipped(why) => write!(f, "skipped ({why})"),
                    LineResult::DeadLettered(why) => write!(f, "dead-lettered ({why})"),
                    LineResult::Failed { message, .. } => write!(f, "failed ({message})"),
                }
            }
        }
    }
}

/// Counts of what became of the lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines that were not blank.
    pub lines: usize,
    /// Lines that were not Segment messages.
    pub malformed: usize,
    /// Messages Customer.io accepted.
    pub delivered: usize,
    /// Skipped messages, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Dead-lettered messages, by reason.
    pub dead_lettered: BTreeMap<String, usize>,
    /// Messages not finished, by reason.
    pub failed: BTreeMap<String, usize>,
}

impl Summary {
    /// Counts `report`.
    pub fn record(&mut self, report: &LineReport) {
        match report {
            LineReport::Blank => return,
            LineReport::Malformed(_) => self.malformed += 1,
            LineReport::Handled { result, .. } => match result {
                LineResult::Delivered => self.delivered += 1,
                LineResult::Skipped(why) => *self.skipped.entry(why.clone()).or_default() += 1,
                LineResult::DeadLettered(why) => {
                    *self.dead_lettered.entry(why.clone()).or_default() += 1;
                }
                LineResult::Failed { message, .. } => {
                    *self.failed.entry(message.clone()).or_default() += 1;
                }
            },
        }
        self.lines += 1;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
        writeln!(
            f,
            "{} lines: {} delivered, {} skipped, {} dead-lettered, {} failed, {} malformed",
            self.lines,
            self.delivered,
            total(&self.skipped),
            total(&self.dead_lettered),
            total(&self.failed),
            self.malformed
        )?;
        for (label, map) in [
            ("skipped", &self.skipped),
            ("dead-lettered", &self.dead_lettered),
            ("failed", &self.failed),
        ] {
            for (why, n) in map {
                writeln!(f, "  {label}: {n} × {why}")?;
            }
        }
        Ok(())
    }
}

/// A flow section of the configuration cannot be built.
pub type QuickstartError = FlowsError;

/// The flows the configuration turns on. See the [module docs](self).
pub struct Quickstart {
    flows: SegmentFlows,
    dead_letters: Arc<MemoryDeadLetters>,
}

impl fmt::Debug for Quickstart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quickstart")
            .field("flows", &self.flows)
            .finish_non_exhaustive()
    }
}

impl Quickstart {
    /// Builds the flows writing through `client`, on in-memory stores, and spawns their
    /// workers on the current tokio runtime. `resolver` replaces the default identity resolver
    /// of the triggers and onboarding flows when given.
    ///
    /// # Errors
    ///
    /// [`FlowsError`] naming the section that cannot be built.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn start(
        client: TrackClient,
        config: &SyncConfig,
        resolver: Option<Arc<dyn IdentityResolver>>,
    ) -> Result<Self, QuickstartError> {
        let dead_letters = Arc::new(MemoryDeadLetters::new(10_000));
        let mut builder = SegmentFlows::builder(client, config).dead_letters(dead_letters.clone());
        if let Some(resolver) = resolver {
            builder = builder.resolver(resolver);
        }
        let built = builder.build()?;
        for worker in built.workers {
            tokio::spawn(worker);
        }
        Ok(Self {
            flows: built.flows,
            dead_letters,
        })
    }

    /// Routes one line of JSON to its flow and waits until it is finished.
    pub async fn handle_line(&self, line: &str) -> LineReport {
        if line.trim().is_empty() {
            return LineReport::Blank;
        }
        match Message::from_str(line) {
            Ok(message) => self.handle(&message).await,
            Err(error) => LineReport::Malformed(error.to_string()),
        }
    }

    /// Routes one message to its flow and waits until it is finished.
    pub async fn handle(&self, message: &Message) -> LineReport {
        let (flow, result) = self.flows.process(message).await;
        LineReport::Handled {
            flow: flow.as_str(),
            kind: message.kind().to_string(),
            result,
        }
    }

    /// The dead letters recorded so far.
    pub fn dead_letters(&self) -> &MemoryDeadLetters {
        &self.dead_letters
    }

    /// Sends everything queued and stops the dispatchers.
    pub async fn shutdown(&self) {
        self.flows.shutdown().await;
    }
}

pub use crate::flows::with_sources;
