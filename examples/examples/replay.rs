//! Replay Segment archives into Customer.io.
//!
//! ```text
//! cargo run --release -p examples --example replay -- \
//!     [--config FILE.toml] [--dry-run] [--dead-letter FILE] [--concurrency N] [--rate R] FILE...
//! ```
//!
//! Each FILE holds JSON lines, plain or gzip-compressed: single Segment messages or batch
//! envelopes. Every message goes to the flow the config routes it to, as in the webhook
//! server: Engage audience changes to `[audience]`, milestones to `[onboarding]`, everything
//! else to the triggers and profile flow (`[triggers]`). A message without a `messageId` gets one derived from the SHA-256 of its content,
//! so replaying the same file twice sends the same Customer.io event ids (see
//! `examples::replay`).
//!
//! - `--dry-run`: send to a local recording server instead of Customer.io (no credentials
//!   needed); the summary counts the requests the client made.
//! - `--dead-letter FILE`: append every dead-lettered or unreadable item there (JSON lines with
//!   `file`, `line`, `reason`, `message`).
//! - `--concurrency N`: people processed at once (default 16).
//! - `--rate R`: at most R Track API requests per second, retries included (default: 100,
//!   Customer.io's fair-use rate).
//! - `CIO_APP_API_KEY`: needed when `[audience] create_missing = true`.
//!
//! Unless the config sets `[triggers.dispatcher] linger_ms`, a batch waits at most 20 ms for
//! more operations (the sink's default suits live traffic, not a replay).
//!
//! A progress line is drawn on stderr when it is a terminal; the summary (read, delivered,
//! skipped by reason, dead-lettered by reason, unreadable, rate) goes to stdout. The exit status
//! is 1 when anything was dead-lettered or unreadable, 2 on a usage or configuration error.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cio_segment_sync::rate_limit::GovernorLimiter;
use customerio_client::{AppClient, SiteId, TrackApiKey, TrackClient};
use examples::config::{EnvConfig, SyncConfig};
use examples::dry_run::DrySink;
use examples::flows::{SegmentFlows, Stores};
use examples::replay::{ReplayArgs, replay_files};
use indicatif::ProgressBar;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            eprintln!(
                "usage: replay [--config FILE.toml] [--dry-run] [--dead-letter FILE] \
                 [--concurrency N] [--rate R] FILE..."
            );
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let env = EnvConfig::from_process()?;
    let (mut config, rest) = SyncConfig::from_args(std::env::args().skip(1))?;
    let args = ReplayArgs::parse(rest)?;
    config.triggers.batch_concurrency = args.concurrency;
    // Each person's messages go one after the other, each waiting for its batch to fill or
    // linger out; a short linger keeps a replay fast. An explicit `linger_ms` in the config wins.
    config.triggers.dispatcher.linger_ms.get_or_insert(20);

    let sink = if args.dry_run {
        Some(DrySink::start().await?)
    } else {
        None
    };
    let client = match (&sink, &env.customerio) {
        (Some(sink), _) => TrackClient::new(
            SiteId::new("dry-run-site"),
            TrackApiKey::new("dry-run-key"),
            env.client_config()?.with_track_base_url(sink.base_url())?,
        )?,
        (None, Some(credentials)) => TrackClient::new(
            credentials.site_id.clone(),
            credentials.api_key.clone(),
            env.client_config()?,
        )?,
        (None, None) => {
            return Err("CIO_SITE_ID and CIO_API_KEY must be set (or pass --dry-run)".into());
        }
    };
    let mut stores = Stores::memory();
    if let Some(rate) = args.rate {
        stores.track_limiter = Arc::new(GovernorLimiter::per_second(rate));
    }
    let mut builder = SegmentFlows::builder(client, &config).stores(stores);
    if let Some(key) = env.app_api_key.clone() {
        builder = builder.app_client(AppClient::new(key, env.client_config()?)?);
    }
    let built = builder.build()?;
    for worker in built.workers {
        tokio::spawn(worker);
    }
    let flows = built.flows;

    let mut dead_file = match &args.dead_letter {
        Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
        None => None,
    };
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };

    let started = Instant::now();
    let summary = replay_files(
        &flows,
        &args.files,
        dead_file.as_mut().map(|f| f as &mut dyn Write),
        Some(&progress),
    )
    .await?;
    flows.shutdown().await;
    progress.finish_and_clear();
    if let Some(file) = dead_file.as_mut() {
        file.flush()?;
    }

    print!("{}", summary.report(started.elapsed().as_secs_f64()));
    if let Some(sink) = &sink {
        println!("dry run: {} requests recorded", sink.take().len());
    }
    Ok(summary.is_clean())
}
