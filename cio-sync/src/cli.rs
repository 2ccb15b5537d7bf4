//! The command line (clap derive) and what each command does.

use std::io::{IsTerminal, Write};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cio_segment_sync::builder::{SyncBuilder, SyncEngine};
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::dead_letter::{DeadLetterError, DeadLetterSink, Record};
use cio_segment_sync::rate_limit::GovernorLimiter;
use cio_segment_sync::store::Stores;
use clap::{Args, Parser, Subcommand};
use customerio_client::{AppClient, SiteId, TrackApiKey, TrackClient};
use indicatif::{ProgressBar, ProgressStyle};

use crate::dead_letters::{self, Place};
use crate::env::Env;
use crate::replay::{Backoff, Input, ReplayEnd, ReplayOptions};
use crate::serve::{ServeOptions, Server};
use crate::{demo, duration, error_chain, replay};
use cio_segment_sync::testing::RecordingServer;

/// The exit status of a command.
///
/// | code | meaning |
/// |---|---|
/// | 0 | done: everything was delivered or skipped (`dead-letters replay`: and marked replayed) |
/// | 1 | the command ran, but something failed or was not finished (demo items not delivered, a dead-letter store unreadable in part, the server failed) |
/// | 2 | usage, configuration or environment error: nothing was sent |
/// | 3 | some items were refused for good or could not be read: they are in the dead letters (see the summary and `cio-sync dead-letters list`) |
/// | 4 | gave up waiting for Customer.io (`--give-up-after`), or `replay` was stopped by SIGTERM / Ctrl-C: what was not sent is in the resume file (`replay`) or still pending in the dead letters (`dead-letters replay`) |
pub const EXIT_CODES: &str = "Exit status: 0 done; 1 ran, but something failed or was not \
finished (see the summary); 2 usage, configuration or environment error (nothing was sent); 3 \
some items were refused for good or unreadable (kept in the dead letters); 4 gave up waiting \
(--give-up-after) or stopped (SIGTERM, Ctrl-C): what was not sent is in the resume file, or \
still pending.";

/// Exit status 3: some items refused for good or unreadable.
pub const EXIT_REFUSED: u8 = 3;

/// Exit status 4: gave up; the rest is in the resume file (or still pending).
pub const EXIT_GAVE_UP: u8 = 4;

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
    /// Replay Segment archives (JSON lines, plain or gzip) or resume files into Customer.io,
    /// waiting out outages.
    #[command(after_help = EXIT_CODES)]
    Replay(ReplayArgs),
    /// List or replay the dead letters (items refused for good).
    #[command(name = "dead-letters", subcommand)]
    DeadLetters(DeadLettersCommand),
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
    /// Append dead letters to one FILE (JSON lines, never rotated; wins over `[server]
    /// dead_letter_file`, the Redis stream and the data directory).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C, give the requests in flight SECONDS to be answered (new ones get
    /// 503 at once; the rest 503 at the end); wins over `[server] shutdown_grace_seconds`
    /// (default 25).
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_grace: Option<u64>,
    /// The data directory for dead letters when Redis is not used (default: CIO_SYNC_DATA_DIR,
    /// `[server] data_dir`, $XDG_STATE_HOME/cio-sync, ~/.local/state/cio-sync).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The waits of a command that outlasts outages, and when it gives up.
#[derive(Debug, Args)]
pub struct OutageArgs {
    /// Stop waiting for Customer.io after DURATION (e.g. 90s, 2h, 1h30m) and write what was not
    /// sent to a resume file. Default: never give up.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub give_up_after: Option<Duration>,
    /// The first wait when nothing could be delivered.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, default_value = "1s")]
    pub retry_initial: Duration,
    /// The longest wait between tries during an outage (doubling up to it, plus jitter).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, default_value = "60s")]
    pub retry_max: Duration,
    /// Seed the jitter of the waits (reproducible runs).
    #[arg(long, value_name = "N")]
    pub jitter_seed: Option<u64>,
}

impl OutageArgs {
    fn backoff(&self) -> Backoff {
        let backoff = Backoff::new(self.retry_initial, self.retry_max);
        match self.jitter_seed {
            Some(seed) => backoff.with_jitter_seed(seed),
            None => backoff,
        }
    }
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
    /// Record dead letters (refused for good, unreadable) in one FILE (JSON lines) instead of
    /// the dead-letter store (the Redis stream with REDIS_URL, else the data directory).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// The data directory: dead letters (without REDIS_URL) and resume files (default:
    /// CIO_SYNC_DATA_DIR, `[server] data_dir`, $XDG_STATE_HOME/cio-sync,
    /// ~/.local/state/cio-sync).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Send the Segment messages of a resume file (written by a replay that gave up), with
    /// the ids they were written with. Repeatable; sent before the archives.
    #[arg(long, value_name = "FILE")]
    pub resume: Vec<PathBuf>,
    /// Where to write the resume file when giving up or stopped by SIGTERM / Ctrl-C (it must
    /// not exist; default: DATA_DIR/resume-UTCTIME-PID.jsonl).
    #[arg(long, value_name = "FILE")]
    pub resume_to: Option<PathBuf>,
    /// Waits and giving up.
    #[command(flatten)]
    pub outage: OutageArgs,
    /// People processed at once (default: `[triggers] batch_concurrency`).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<NonZeroUsize>,
    /// At most R Track API requests per second, retries included (default: Customer.io's
    /// documented 1000).
    #[arg(long, value_name = "R")]
    pub rate: Option<NonZeroU32>,
    /// The archives.
    #[arg(required_unless_present = "resume", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `cio-sync dead-letters`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Count the pending dead letters by reason and list them, without personal data unless
    /// asked.
    #[command(after_help = EXIT_CODES)]
    List(DeadLettersListArgs),
    /// Send the pending dead letters again with the same ids; mark what was accepted.
    #[command(after_help = EXIT_CODES)]
    Replay(DeadLettersReplayArgs),
}

/// Which dead-letter store (default: the Redis stream with REDIS_URL, else the data
/// directory).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The flows' and the server's settings (`[server]` data_dir, Redis prefix, …).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// A data directory.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["file", "redis"])]
    pub dir: Option<PathBuf>,
    /// One dead-letter file (`--dead-letter FILE` of serve or replay).
    #[arg(long, value_name = "FILE", conflicts_with = "redis")]
    pub file: Option<PathBuf>,
    /// The Redis stream (needs REDIS_URL).
    #[arg(long)]
    pub redis: bool,
}

/// `cio-sync dead-letters list`.
#[derive(Debug, Args)]
pub struct DeadLettersListArgs {
    /// Which store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also show each entry's id, the reason's detail and the item (personal data).
    #[arg(long)]
    pub show_personal_data: bool,
}

/// `cio-sync dead-letters replay`.
#[derive(Debug, Args)]
pub struct DeadLettersReplayArgs {
    /// Which store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Send to a local recording server instead of Customer.io (no credentials needed).
    #[arg(long)]
    pub dry_run: bool,
    /// Waits and giving up.
    #[command(flatten)]
    pub outage: OutageArgs,
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

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Done,
    NotFinished,
    Refused,
    GaveUp,
}

impl From<bool> for Status {
    fn from(finished: bool) -> Self {
        if finished {
            Status::Done
        } else {
            Status::NotFinished
        }
    }
}

impl From<ReplayEnd> for Status {
    fn from(end: ReplayEnd) -> Self {
        match end {
            ReplayEnd::Done => Status::Done,
            ReplayEnd::Refused => Status::Refused,
            _ => Status::GaveUp,
        }
    }
}

/// Runs `cli` on the current tokio runtime and returns the exit status.
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> ExitCode {
    let result = match cli.command {
        Command::CheckConfig { file } => check_config(&file, out).map(Status::from),
        Command::Demo(args) => demo_command(args, out).await.map(Status::from),
        Command::Replay(args) => replay_command(args, out).await,
        Command::DeadLetters(DeadLettersCommand::List(args)) => list_command(args, out).await,
        Command::DeadLetters(DeadLettersCommand::Replay(args)) => {
            dead_letters_replay_command(args, out).await
        }
        Command::Serve(args) => serve_command(args).await.map(Status::from),
    };
    match result {
        Ok(Status::Done) => ExitCode::SUCCESS,
        Ok(Status::NotFinished) => ExitCode::from(1),
        Ok(Status::Refused) => ExitCode::from(EXIT_REFUSED),
        Ok(Status::GaveUp) => ExitCode::from(EXIT_GAVE_UP),
        Err(error) => {
            let code = if error.is::<Usage>() { 2 } else { 1 };
            let _ = writeln!(out, "error: {}", error_chain(error.as_ref()));
            ExitCode::from(code)
        }
    }
}

/// The data directory of a command (see [`dead_letters::data_dir`]).
fn data_dir_of(flag: Option<&PathBuf>, config: &SyncConfig) -> PathBuf {
    dead_letters::data_dir(
        flag.map(PathBuf::as_path),
        config.server().data_dir.as_deref(),
        |name| std::env::var(name).ok(),
    )
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
            tracing::warn!(error = %crate::error_chain(&error), "No metrics recorder could be installed; /metrics is off.");
            None
        }
    };
    let bind = env.bind;
    let options = ServeOptions {
        dry_run: args.dry_run,
        dead_letter: args.dead_letter,
        data_dir: Some(data_dir_of(args.data_dir.as_ref(), &config)),
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

/// The engine's dead-letter sink in a replay: the replay records every refusal itself, as the
/// Segment message it read (with its archive line) or by leaving the record it replays in
/// place, so the dispatcher's copy of the refused operation is not kept a second time.
#[derive(Debug)]
struct RecordedByTheReplay;

#[cio_segment_sync::async_trait]
impl DeadLetterSink for RecordedByTheReplay {
    async fn append(&self, _record: Record) -> Result<(), DeadLetterError> {
        Ok(())
    }
}

/// The engine a replay sends through: memory stores, the Track API limiter at `rate`, the
/// App API when its key is set, and a dead-letter sink that keeps nothing (the replays record
/// what was refused themselves, as Segment messages or as the records they replay).
async fn replay_engine(
    env: &Env,
    config: SyncConfig,
    dry_run: bool,
    rate: Option<NonZeroU32>,
) -> Result<(SyncEngine, Option<RecordingServer>), BoxError> {
    let client_config = env.client_config().map_err(usage)?;
    let sink = if dry_run {
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
    if let Some(rate) = rate {
        stores.track_limiter = Arc::new(GovernorLimiter::per_second(rate));
    }
    let discard: Arc<dyn DeadLetterSink> = Arc::new(RecordedByTheReplay);
    let mut builder = SyncBuilder::new(client, config)
        .stores(stores)
        .dead_letters(discard);
    if let Some(key) = env.app_api_key.clone() {
        builder = builder.app_client(AppClient::new(key, client_config)?);
    }
    let (engine, workers) = builder.build().map_err(|e| usage(error_chain(&e)))?;
    for worker in workers {
        tokio::spawn(worker);
    }
    Ok((engine, sink))
}

/// Flushes the engine; after giving up, for a few seconds at most (what it still holds is in
/// the resume file, or still pending).
async fn stop_engine(engine: &SyncEngine, gave_up: bool) {
    if gave_up {
        // What the dispatchers still hold is in the resume file already: hand it back rather
        // than wait out the outage.
        engine.shutdown_within(Duration::from_secs(5)).await;
    } else {
        engine.shutdown().await;
    }
}

async fn replay_command(args: ReplayArgs, out: &mut dyn Write) -> Result<Status, BoxError> {
    let env = Env::from_process().map_err(usage)?;
    let mut config = load_config(args.config.as_ref())?;
    if let Some(concurrency) = args.concurrency {
        config.triggers.batch_concurrency = concurrency;
    }
    let server = config.server();
    let data_dir = data_dir_of(args.data_dir.as_ref(), &config);
    // The engine first: missing credentials stop the command before anything is created.
    let (engine, sink) = replay_engine(&env, config, args.dry_run, args.rate).await?;
    let place = Place::choose(args.dead_letter.clone(), false, &env, data_dir.clone());
    let store = dead_letters::open(&place, &env, &server)
        .await
        .map_err(|e| usage(error_chain(&e)))?;
    let mut options = ReplayOptions::default().with_backoff(args.outage.backoff());
    // Where what was not sent goes when the replay gives up or is stopped (SIGTERM, Ctrl-C).
    // The file is created only then; its directory now, so a stop can always write it.
    let resume_to = match args.resume_to {
        Some(path) => path,
        None => {
            std::fs::create_dir_all(&data_dir)
                .map_err(|e| usage(format!("cannot create {}: {e}", data_dir.display())))?;
            let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
            data_dir.join(format!("resume-{stamp}-{}.jsonl", std::process::id()))
        }
    };
    if resume_to.exists() {
        return Err(usage(format!(
            "the resume file {} exists already; name a new one with --resume-to",
            resume_to.display()
        )));
    }
    options = options.resume_to(resume_to.clone());
    if let Some(after) = args.outage.give_up_after {
        options = options.give_up_after(after, resume_to);
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(async move {
        crate::serve::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let mut inputs: Vec<Input> = args.resume.iter().cloned().map(Input::Resume).collect();
    inputs.extend(args.files.iter().cloned().map(Input::Archive));
    let all_files: Vec<PathBuf> = args.resume.iter().chain(&args.files).cloned().collect();
    let progress = progress_bar(&all_files);
    let started = Instant::now();
    let result = replay::replay_until(
        &engine.router,
        &inputs,
        &options,
        store.as_ref(),
        Some(&progress),
        stop,
    )
    .await;
    signal.abort();
    let gave_up = result
        .as_ref()
        .is_ok_and(|summary| summary.end() == ReplayEnd::GaveUp);
    stop_engine(&engine, gave_up).await;
    progress.finish_and_clear();
    let summary = result?;
    write!(out, "{}", summary.report(started.elapsed().as_secs_f64()))?;
    let refused =
        summary.dead_lettered.values().sum::<usize>() + summary.unreadable.values().sum::<usize>();
    if refused > 0 {
        writeln!(
            out,
            "dead letters are in {}: `cio-sync dead-letters list` shows them",
            store.location()
        )?;
    }
    if let Some(sink) = &sink {
        writeln!(out, "dry run: {} requests recorded", sink.take().len())?;
    }
    Ok(summary.end().into())
}

/// The store of a `dead-letters` command.
async fn open_store(
    args: &StoreArgs,
    env: &Env,
    config: &SyncConfig,
) -> Result<Arc<dyn cio_segment_sync::dead_letter::DeadLetterLog>, BoxError> {
    let place = match (&args.dir, &args.file) {
        (Some(dir), _) => Place::Dir(dir.clone()),
        (None, file) => Place::choose(file.clone(), args.redis, env, data_dir_of(None, config)),
    };
    dead_letters::open(&place, env, &config.server())
        .await
        .map_err(|e| usage(error_chain(&e)))
}

async fn list_command(args: DeadLettersListArgs, out: &mut dyn Write) -> Result<Status, BoxError> {
    let env = Env::from_process().map_err(usage)?;
    let config = load_config(args.store.config.as_ref())?;
    let store = open_store(&args.store, &env, &config).await?;
    let summary = dead_letters::list(store.as_ref(), args.show_personal_data, out).await?;
    Ok((summary.unreadable == 0).into())
}

async fn dead_letters_replay_command(
    args: DeadLettersReplayArgs,
    out: &mut dyn Write,
) -> Result<Status, BoxError> {
    let env = Env::from_process().map_err(usage)?;
    let config = load_config(args.store.config.as_ref())?;
    let store = open_store(&args.store, &env, &config).await?;
    let (engine, sink) = replay_engine(&env, config, args.dry_run, None).await?;
    // Nothing is written on giving up: what was not sent stays pending in the store.
    let result = dead_letters::replay(
        &engine,
        store.as_ref(),
        &args.outage.backoff(),
        args.outage.give_up_after,
    )
    .await;
    stop_engine(&engine, result.as_ref().is_ok_and(|s| s.gave_up)).await;
    let summary = result?;
    write!(out, "{summary}")?;
    if let Some(sink) = &sink {
        writeln!(out, "dry run: {} requests recorded", sink.take().len())?;
    }
    Ok(summary.end().into())
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
