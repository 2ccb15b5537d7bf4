//! A webhook server keeping Segment and Customer.io in sync.
//!
//! ```text
//! CIO_SITE_ID=… CIO_API_KEY=… SEGMENT_WEBHOOK_SECRET=… \
//! CIO_WEBHOOK_SIGNING_KEY=… SEGMENT_WRITE_KEY=… \
//!     cargo run --example webhook_server
//! ```
//!
//! - `POST /segment`: point a Segment Webhooks destination here (batching on or off);
//! - `POST /customerio`: point a Customer.io reporting webhook here (needs
//!   `CIO_WEBHOOK_SIGNING_KEY`; the back-sync needs `SEGMENT_WRITE_KEY`, the backfill
//!   `SEGMENT_PROFILE_TOKEN` and `SEGMENT_SPACE_ID`);
//! - `GET /healthz`, `GET /metrics` (Prometheus text), `GET /` (status page).
//!
//! Every variable is described in `examples::server::settings`. The churn scan runs every
//! [`CHURN_SCAN_EVERY`] with the default churn settings. Ctrl-C stops accepting requests, then
//! sends what the dispatchers still hold before exiting.

#![allow(clippy::print_stderr)] // A command-line program reports to its terminal.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cio_segment_sync::flows::churn::ChurnConfig;
use examples::server::router;
use examples::server::settings::Settings;

/// How often the churn scan runs.
const CHURN_SCAN_EVERY: Duration = Duration::from_secs(15 * 60);

fn main() -> ExitCode {
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
    let mut settings = Settings::from_env()?;
    settings.flows.churn = Some(ChurnConfig::default());
    let bind = settings.bind;
    let redis = settings.uses_redis();
    let (state, workers) = settings.build().await?;
    let state = Arc::new(state);
    let workers: Vec<_> = workers.into_iter().map(tokio::spawn).collect();

    let churn_state = state.clone();
    let churn = tokio::spawn(async move {
        let mut interval = tokio::time::interval(CHURN_SCAN_EVERY);
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
    });

    let listener = tokio::net::TcpListener::bind(bind).await?;
    eprintln!(
        "webhook_server listening on http://{} ({} stores)",
        listener.local_addr()?,
        if redis { "Redis" } else { "in-memory" }
    );
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;

    churn.abort();
    eprintln!("webhook_server: sending what is queued before exiting");
    state.shutdown().await;
    for worker in workers {
        worker.await?;
    }
    Ok(())
}
