//! The command line (clap derive) and what each command does.

use std::io::{IsTerminal, Write};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::rate_limit::GovernorLimiter;
use cio_segment_sync::store::Stores;
use clap::{Args, Parser, Subcommand};
use customerio_client::{AppClient, SiteId, TrackApiKey, TrackClient};
use indicatif::{ProgressBar, ProgressStyle};

use crate::env::Env;
use crate::serve::{ServeOptions, Server};
use crate::{demo, error_chain, replay};
use cio_segment_sync::testing::RecordingServer;

/// The exit status of a command.
///
/// | code | meaning |
/// |---|---|
/// | 0 | done: everything was delivered, skipped or (for a permanent refusal) dead-lettered |
/// | 1 | the command ran, but something was not finished (replay or demo items not delivered, a file unreadable, the server failed) |
/// | 2 | usage, configuration or environment error: nothing was sent |
pub const EXIT_CODES: &str = "Exit status: 0 done; 1 ran, but something was not finished \
(see the summary); 2 usage, configuration or environment error (nothing was sent).";

/// Keeps Segment and Customer.io in sync.
///
/// Secrets and endpoints come from the environment (CIO_SITE_ID, CIO_API_KEY, CIO_REGION,
/// SEGMENT_WRITE_KEY, REDIS_URL, …; see the README); everything else from `--config FILE.toml`.
#[derive(Debug, Parser)]
#[command(name = "cio-sync", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the webhooks: POST /segment and POST /customerio, with GET /metrics, /healthz and a
    /// status page at /. Logs go to stderr, filtered by RUST_LOG (default info).
    #[command(after_help = EXIT_CODES)]
    Serve(ServeArgs),
    /// Replay Segment archives (JSON lines, plain or gzip) into Customer.io.
    #[command(after_help = EXIT_CODES)]
    Replay(ReplayArgs),
    /// Check a configuration file: every key, value and section, with the line of a problem.
    #[command(name = "check-config", after_help = EXIT_CODES)]
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Run the whole sync over a bundled sample as a dry run (no credentials needed).
    #[command(after_help = EXIT_CODES)]
    Demo(DemoArgs),
}

/// `cio-sync serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The flows' and the server's settings (default: every default, triggers only).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Send every Customer.io request to a local recording server (no credentials needed).
    #[arg(long)]
    pub dry_run: bool,
    /// Append dead letters to FILE (JSON lines; wins over `[server] dead_letter_file`).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C, give the requests in flight SECONDS to be answered (new ones get
    /// 503 at once; the rest 503 at the end); wins over `[server] shutdown_grace_seconds`
    /// (default 25).
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_grace: Option<u64>,
}

/// `cio-sync replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The flows' settings (default: every default, triggers only).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Send to a local recording server instead of Customer.io (no credentials needed).
    #[arg(long)]
    pub dry_run: bool,
    /// Append every item that was not finished or could not be read to FILE (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// People processed at once (default: `[triggers] batch_concurrency`).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<NonZeroUsize>,
    /// At most R Track API requests per second, retries included (default: Customer.io's
    /// documented 1000).
    #[arg(long, value_name = "R")]
    pub rate: Option<NonZeroU32>,
    /// The archives.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `cio-sync demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The flows' settings (default: the bundled example configuration).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Events to run instead of the bundled sample (JSON lines).
    #[arg(value_name = "FILE.jsonl")]
    pub events: Option<PathBuf>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failure that means "nothing was sent": exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn usage(error: impl std::fmt::Display) -> BoxError {
    Box::new(Usage(error.to_string()))
}

fn load_config(path: Option<&PathBuf>) -> Result<SyncConfig, BoxError> {
    match path {
        Some(path) => SyncConfig::load(path).map_err(|e| usage(error_chain(&e))),
        None => Ok(SyncConfig::default()),
    }
}

/// Runs `cli` on the current tokio runtime and returns the exit status.
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> ExitCode {
    let result = match cli.command {
        Command::CheckConfig { file } => check_config(&file, out),
        Command::Demo(args) => demo_command(args, out).await,
        Command::Replay(args) => replay_command(args, out).await,
        Command::Serve(args) => serve_command(args).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            let code = if error.is::<Usage>() { 2 } else { 1 };
            let _ = writeln!(out, "error: {}", error_chain(error.as_ref()));
            ExitCode::from(code)
        }
    }
}

async fn serve_command(args: ServeArgs) -> Result<bool, BoxError> {
    let env = Env::from_process().map_err(usage)?;
    let config = load_config(args.config.as_ref())?;
    let metrics = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(handle) => {
            let render: crate::serve::RenderMetrics = Arc::new(move || handle.render());
            Some(render)
        }
        Err(error) => {
            tracing::warn!(error = %error, "No metrics recorder could be installed; /metrics is off.");
            None
        }
    };
    let bind = env.bind;
    let options = ServeOptions {
        dry_run: args.dry_run,
        dead_letter: args.dead_letter,
        metrics,
        shutdown_grace: args.shutdown_grace.map(std::time::Duration::from_secs),
    };
    let server = Server::build(env, config, options)
        .await
        .map_err(|error| usage(error_chain(&error)))?;
    if let Some(sink) = server.dry_run() {
        tracing::info!(
            recorder = sink.base_url(),
            "Dry run: Customer.io requests go to a local recording server."
        );
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| usage(format!("cannot listen on {bind}: {e}")))?;
    server
        .run(listener, crate::serve::shutdown_signal())
        .await?;
    Ok(true)
}

fn check_config(file: &PathBuf, out: &mut dyn Write) -> Result<bool, BoxError> {
    let config = load_config(Some(file))?;
    let mut flows = vec!["triggers"];
    for (on, name) in [
        (config.onboarding.is_some(), "onboarding"),
        (config.audience.is_some(), "audience"),
        (config.churn.is_some(), "churn"),
    ] {
        if on {
            flows.push(name);
        }
    }
    writeln!(
        out,
        "{}: valid; Segment → Customer.io flows on: {}",
        file.display(),
        flows.join(", ")
    )?;
    Ok(true)
}

async fn demo_command(args: DemoArgs, out: &mut dyn Write) -> Result<bool, BoxError> {
    let config = match &args.config {
        Some(_) => load_config(args.config.as_ref())?,
        None => {
            SyncConfig::from_toml_str(demo::EXAMPLE_CONFIG, "the bundled example configuration")
                .map_err(|e| usage(error_chain(&e)))?
        }
    };
    let events = match &args.events {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?,
        None => demo::SAMPLE_EVENTS.to_owned(),
    };
    let summary = demo::run(config, &events, out).await?;
    Ok(summary.is_finished())
}

async fn replay_command(args: ReplayArgs, out: &mut dyn Write) -> Result<bool, BoxError> {
    let env = Env::from_process().map_err(usage)?;
    let mut config = load_config(args.config.as_ref())?;
    if let Some(concurrency) = args.concurrency {
        config.triggers.batch_concurrency = concurrency;
    }
    let client_config = env.client_config().map_err(usage)?;
    let sink = if args.dry_run {
        Some(RecordingServer::start().await?)
    } else {
        None
    };
    let client = match (&sink, &env.track) {
        (Some(sink), _) => TrackClient::new(
            SiteId::new("dry-run-site"),
            TrackApiKey::new("dry-run-key"),
            client_config.clone().with_track_base_url(sink.base_url())?,
        )?,
        (None, Some(track)) => TrackClient::new(
            track.site_id.clone(),
            track.api_key.clone(),
            client_config.clone(),
        )?,
        (None, None) => {
            return Err(usage(
                "`CIO_SITE_ID` and `CIO_API_KEY` must be set (or pass --dry-run)",
            ));
        }
    };
    let mut stores = Stores::memory();
    if let Some(rate) = args.rate {
        stores.track_limiter = Arc::new(GovernorLimiter::per_second(rate));
    }
    let mut builder = SyncBuilder::new(client, config).stores(stores);
    if let Some(key) = env.app_api_key.clone() {
        builder = builder.app_client(AppClient::new(key, client_config)?);
    }
    let (engine, workers) = builder.build().map_err(|e| usage(error_chain(&e)))?;
    for worker in workers {
        tokio::spawn(worker);
    }

    let mut dead_file = match &args.dead_letter {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| usage(format!("cannot open {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let progress = progress_bar(&args.files);
    let started = Instant::now();
    let summary = replay::replay_files(
        &engine.router,
        &args.files,
        dead_file.as_mut().map(|f| f as &mut dyn Write),
        Some(&progress),
    )
    .await?;
    engine.shutdown().await;
    progress.finish_and_clear();
    if let Some(file) = dead_file.as_mut() {
        file.flush()?;
    }
    write!(out, "{}", summary.report(started.elapsed().as_secs_f64()))?;
    if let Some(sink) = &sink {
        writeln!(out, "dry run: {} requests recorded", sink.take().len())?;
    }
    Ok(summary.is_clean())
}

/// A bar over the files' total size with count, rate and ETA when stderr is a terminal;
/// hidden otherwise.
fn progress_bar(files: &[PathBuf]) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total = files
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
