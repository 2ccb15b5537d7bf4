//! A webhook server keeping Segment and Customer.io in sync.
//!
//! ```text
//! CIO_SITE_ID=… CIO_API_KEY=… SEGMENT_WEBHOOK_SECRET=… \
//! CIO_WEBHOOK_SIGNING_KEY=… SEGMENT_WRITE_KEY=… \
//!     cargo run --example webhook_server -- [--config FILE.toml] [--dead-letter FILE]
//! ```
//!
//! - `POST /segment`: point a Segment Webhooks destination here (batching on or off);
//! - `POST /customerio`: point a Customer.io reporting webhook here (needs
//!   `CIO_WEBHOOK_SIGNING_KEY`; the back-sync needs `SEGMENT_WRITE_KEY`, the backfill
//!   `SEGMENT_PROFILE_TOKEN` and `SEGMENT_SPACE_ID`);
//! - `GET /healthz`, `GET /metrics` (Prometheus text), `GET /` (status page).
//!
//! Every variable is described in `examples::server::settings`. `--config FILE.toml` (format:
//! `examples/sync.example.toml`) turns flows on and sets them up: `[onboarding]` milestones
//! and `[audience]` segments join the triggers flow on `POST /segment`, `[churn]` runs the churn
//! scan every `[server] churn_scan_interval_seconds` (15 minutes by default), and `[server]`
//! holds the deadlines, body limit, Redis prefix and dead-letter file. `--dead-letter FILE`
//! appends dead letters to a JSON-lines file (each line holds the operation and why it was
//! given up; `cio_segment_sync::dead_letter::read_all` reads them back for a resubmit). Ctrl-C stops
//! accepting requests, then sends what the dispatchers still hold before exiting.

#![allow(clippy::print_stderr)] // A command-line program reports to its terminal.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use examples::server::router;
use examples::server::settings::Settings;

const USAGE: &str = "usage: webhook_server [--config FILE.toml] [--dead-letter FILE]
Secrets and endpoints come from the environment (CIO_SITE_ID, CIO_API_KEY, BIND, ...: see the
README); everything else from the --config file (see cio-sync/sync.example.toml).";

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        eprintln!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("could not start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webhook_server: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_args(std::env::args().skip(1), |name| std::env::var(name).ok())?;
    let bind = settings.bind;
    let redis = settings.uses_redis();
    let churn_every = settings.churn_scan_every;
    let churn_on = settings.flows.churn.is_some();
    let dead_letter_file = settings.dead_letter_file.clone();
    let (state, workers) = settings.build().await?;
    let state = Arc::new(state);
    let workers: Vec<_> = workers.into_iter().map(tokio::spawn).collect();

    let churn_state = state.clone();
    let churn = churn_on.then(|| {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(churn_every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| {
                        i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
                    });
                // Failures are recorded on the status page by `churn_scan` itself.
                let _ = churn_state.churn_scan(now).await;
            }
        })
    });

    let listener = tokio::net::TcpListener::bind(bind).await?;
    eprintln!(
        "webhook_server listening on http://{} ({} stores; flows: {}; dead letters {})",
        listener.local_addr()?,
        if redis { "Redis" } else { "in-memory" },
        state.flows().describe(),
        dead_letter_file.map_or_else(
            || "kept in memory".to_owned(),
            |path| format!("appended to {}", path.display())
        ),
    );
    if churn_on {
        eprintln!("churn scan every {} s", churn_every.as_secs());
    }
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;

    if let Some(churn) = churn {
        churn.abort();
    }
    eprintln!("webhook_server: sending what is queued before exiting");
    state.shutdown().await;
    for worker in workers {
        worker.await?;
    }
    Ok(())
}
