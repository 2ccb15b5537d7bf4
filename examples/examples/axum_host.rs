//! Hosting: the library's webhook routes mounted in a host's own axum app.
//!
//! ```text
//! cargo run -p examples --example axum_host
//! curl http://127.0.0.1:3000/                      # the host's own route
//! curl -X POST http://127.0.0.1:3000/webhooks/segment -H 'content-type: application/json' \
//!   -d '{"type":"track","userId":"u-1","event":"Paid","messageId":"m-1"}'
//! ```
//!
//! The host keeps its router, its state and its own routes; the engine is built from a
//! `SyncBuilder` and its `SegmentRouter` becomes a `SegmentEndpoint`, which
//! `cio_segment_sync::axum::routes` turns into `POST /segment` for the host to nest under
//! `/webhooks` (or merge). Customer.io is a local dry-run recording server unless
//! `CIO_SITE_ID` / `CIO_API_KEY` are set; the address is `BIND` (default `127.0.0.1:3000`).
//! Ctrl-C stops serving, then the dispatchers are flushed.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use cio_segment_sync::axum::{Endpoints, routes};
use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::http::SegmentEndpoint;
use cio_segment_sync::testing::RecordingServer;
use cio_sync::env::Env;
use customerio_client::{SiteId, TrackApiKey, TrackClient};

/// The host's own state, served by its own route.
#[derive(Clone)]
struct AppState {
    name: &'static str,
    segment: Arc<SegmentEndpoint>,
}

async fn home(State(state): State<AppState>) -> String {
    let stats = state.segment.stats().snapshot();
    format!(
        "{}: {} Segment webhook request(s), {} answered 200\n",
        state.name,
        stats.requests(),
        stats.ok
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::from_process()?;
    let mut dry_run = None;
    let client = match &env.track {
        Some(credentials) => TrackClient::new(
            credentials.site_id.clone(),
            credentials.api_key.clone(),
            env.client_config()?,
        )?,
        None => {
            let sink = RecordingServer::start().await?;
            let client = TrackClient::new(
                SiteId::new("dry-run-site"),
                TrackApiKey::new("dry-run-key"),
                env.client_config()?.with_track_base_url(sink.base_url())?,
            )?;
            dry_run = Some(sink);
            client
        }
    };

    // The engine: every flow the configuration turns on (here only the default triggers).
    let (engine, workers) = SyncBuilder::new(client, SyncConfig::default()).build()?;
    for worker in workers {
        tokio::spawn(worker);
    }
    let segment = Arc::new(SegmentEndpoint::builder(engine.router.clone()).build()?);

    let state = AppState {
        name: "my-app",
        segment: segment.clone(),
    };
    let app = Router::new()
        .route("/", get(home))
        .nest("/webhooks", routes(Endpoints::new().with_segment(segment)))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(env.bind).await?;
    println!(
        "Serving on http://{}/ (POST /webhooks/segment)",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    engine.shutdown().await;
    if let Some(sink) = dry_run {
        for request in sink.take() {
            println!("{request}");
        }
    }
    Ok(())
}
