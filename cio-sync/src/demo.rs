//! `cio-sync demo`: the whole Segment → Customer.io sync over a bundled sample, as a dry run.
//!
//! Each line of the sample (or of the given file) goes through the flows the configuration
//! turns on (the bundled example configuration unless `--config` is given) and the real
//! Customer.io client sends every request to a local recording server on `127.0.0.1:0`. Under
//! each line the demo prints the requests Customer.io would have received (method, path with
//! query, JSON body). No credentials are needed and nothing leaves the machine.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::flows::router::{Route, SegmentRouter};
use cio_segment_sync::outcome::{AckRule, Outcome};
use cio_segment_sync::pipeline::PipelineError;
use customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use segment_model::Message;

use crate::error_chain;
use cio_segment_sync::testing::RecordingServer;

/// The bundled sample events: every call type, an Engage audience enter and exit, onboarding
/// milestones, a device event, an alias, a duplicate and a malformed line.
pub const SAMPLE_EVENTS: &str = include_str!("../data/sample-events.jsonl");

/// The bundled example configuration (every key with its default).
pub const EXAMPLE_CONFIG: &str = include_str!("../sync.example.toml");

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineReport {
    /// An empty line.
    Blank,
    /// The line is not a Segment message; the error names the JSON path.
    Malformed(String),
    /// A flow answered.
    Handled {
        /// The route it took.
        route: Route,
        /// The call type (`identify`, `track`, ...).
        kind: String,
        /// `delivered`, `skipped`, `dead_lettered`, `retry_later` or `refused`.
        answer: &'static str,
        /// Why, for anything but a delivery (no customer data).
        detail: Option<String>,
    },
}

impl LineReport {
    fn handled(route: Route, kind: String, result: &Result<Outcome, PipelineError>) -> Self {
        let (answer, detail) = match result {
            Ok(Outcome::Delivered) => ("delivered", None),
            Ok(Outcome::Skipped(reason)) => ("skipped", Some(reason.to_string())),
            Ok(Outcome::DeadLettered(reason)) => ("dead_lettered", Some(reason.label().to_owned())),
            Ok(other) => (other.label(), None),
            Err(error) if error.ack().is_retry_later() => ("retry_later", Some(error_chain(error))),
            Err(error) => ("refused", Some(error_chain(error))),
        };
        LineReport::Handled {
            route,
            kind,
            answer,
            detail,
        }
    }
}

impl fmt::Display for LineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineReport::Blank => f.write_str("blank"),
            LineReport::Malformed(error) => write!(f, "malformed: {error}"),
            LineReport::Handled {
                route,
                kind,
                answer,
                detail,
            } => {
                write!(f, "{kind:<8} → {:<10} {answer}", route.as_str())?;
                if let Some(detail) = detail {
                    write!(f, " ({detail})")?;
                }
                Ok(())
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
    /// Answers by kind (`delivered`, `skipped`, …).
    pub answers: BTreeMap<&'static str, usize>,
    /// Lines that must be retried or were refused, by reason.
    pub unfinished: BTreeMap<String, usize>,
}

impl Summary {
    /// Counts `report`.
    pub fn record(&mut self, report: &LineReport) {
        match report {
            LineReport::Blank => return,
            LineReport::Malformed(_) => self.malformed += 1,
            LineReport::Handled { answer, detail, .. } => {
                *self.answers.entry(answer).or_default() += 1;
                if matches!(*answer, "retry_later" | "refused") {
                    let why = detail.clone().unwrap_or_default();
                    *self.unfinished.entry(why).or_default() += 1;
                }
            }
        }
        self.lines += 1;
    }

    /// Whether every line was finished (delivered, skipped or dead-lettered) or malformed.
    pub fn is_finished(&self) -> bool {
        self.unfinished.is_empty()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |key| self.answers.get(key).copied().unwrap_or(0);
        writeln!(
            f,
            "{} lines: {} delivered, {} skipped, {} dead-lettered, {} to retry, {} refused, {} malformed",
            self.lines,
            count("delivered"),
            count("skipped"),
            count("dead_lettered"),
            count("retry_later"),
            count("refused"),
            self.malformed
        )?;
        for (why, n) in &self.unfinished {
            writeln!(f, "  not finished: {n} × {why}")?;
        }
        Ok(())
    }
}

/// Routes `line` through `router`.
pub async fn handle_line(router: &SegmentRouter, line: &str) -> LineReport {
    if line.trim().is_empty() {
        return LineReport::Blank;
    }
    match Message::from_str(line) {
        Err(error) => LineReport::Malformed(error_chain(&error)),
        Ok(message) => {
            let (route, result) = router.process_routed(&message).await;
            LineReport::handled(route, message.kind().to_string(), &result)
        }
    }
}

/// Runs the demo over `events` with `config`, writing the report to `out`.
///
/// # Errors
///
/// The recording server could not start, the flows could not be built, or `out` failed.
pub async fn run(
    mut config: SyncConfig,
    events: &str,
    out: &mut dyn Write,
) -> Result<Summary, Box<dyn std::error::Error + Send + Sync>> {
    let sink = RecordingServer::start().await?;
    writeln!(
        out,
        "DRY RUN: every request goes to a local recording server ({}) and is printed below \
         instead of reaching Customer.io.",
        sink.base_url()
    )?;
    let client = TrackClient::new(
        SiteId::new("dry-run-site"),
        TrackApiKey::new("dry-run-key"),
        ClientConfig::new(Region::Us).with_track_base_url(sink.base_url())?,
    )?;
    // The demo hands over one message at a time and waits for it: a batch waiting for more
    // operations would only slow it down (an explicit `linger_ms` in the config wins).
    config.triggers.dispatcher.linger_ms.get_or_insert(5);
    let (engine, workers) = SyncBuilder::new(client, config).build()?;
    for worker in workers {
        tokio::spawn(worker);
    }
    let mut summary = Summary::default();
    for (index, line) in events.lines().enumerate() {
        let report = handle_line(&engine.router, line).await;
        summary.record(&report);
        if report != LineReport::Blank {
            writeln!(out, "line {:>3}: {report}", index + 1)?;
        }
        for request in sink.take() {
            writeln!(out, "           {request}")?;
        }
    }
    engine.shutdown().await;
    for request in sink.take() {
        writeln!(out, "           {request}")?;
    }
    writeln!(out, "\n{summary}")?;
    Ok(summary)
}
