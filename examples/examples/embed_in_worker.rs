//! Embedding: the library inside a host's own tokio runtime and queue consumer.
//!
//! ```text
//! cargo run -p examples --example embed_in_worker
//! ```
//!
//! The host builds its runtime, builds the engine with `SyncBuilder`, runs the dispatchers'
//! workers as its own tasks, and consumes its queue (here a simulated in-memory one,
//! `examples::worker::MemoryQueue`) from a consumer task that calls the engine's
//! `SegmentRouter` (`Pipeline::process`). Each answer is acked or not by the library's one ack
//! rule (`cio_segment_sync::outcome::AckRule`, see `examples::worker::decide`): an outcome is
//! acked, a retry-later error redelivered, a refusal or an unreadable body parked. Customer.io
//! is a local dry-run recording server unless `CIO_SITE_ID` / `CIO_API_KEY` are set.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::testing::RecordingServer;
use cio_sync::demo::{EXAMPLE_CONFIG, SAMPLE_EVENTS};
use cio_sync::env::Env;
use customerio_client::{SiteId, TrackApiKey, TrackClient};
use examples::worker::{MemoryQueue, consume};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The host's runtime, built the way the host wants it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(host())
}

async fn host() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::from_process()?;
    let mut config = SyncConfig::from_toml_str(EXAMPLE_CONFIG, "cio-sync/sync.example.toml")?;
    config.triggers.dispatcher.linger_ms = Some(20);

    let mut sink = None;
    let client = match &env.track {
        Some(credentials) => TrackClient::new(
            credentials.site_id.clone(),
            credentials.api_key.clone(),
            env.client_config()?,
        )?,
        None => {
            let dry = RecordingServer::start().await?;
            println!(
                "DRY RUN: Customer.io is a local recording server at {}",
                dry.base_url()
            );
            let client = TrackClient::new(
                SiteId::new("dry-run-site"),
                TrackApiKey::new("dry-run-key"),
                env.client_config()?.with_track_base_url(dry.base_url())?,
            )?;
            sink = Some(dry);
            client
        }
    };

    // The library spawns nothing itself: the host runs the dispatchers' workers.
    let (engine, workers) = SyncBuilder::new(client, config).build()?;
    let workers: Vec<_> = workers.into_iter().map(tokio::spawn).collect();

    let queue = Arc::new(MemoryQueue::new(3));
    for (index, line) in SAMPLE_EVENTS.lines().enumerate() {
        queue.publish(format!("q-{}", index + 1), line.as_bytes().to_vec());
    }

    // One consumer per queue (or per partition keyed by person) keeps each person's messages
    // in order; run one such task per partition to scale out.
    let consumer = {
        let (queue, router) = (queue.clone(), engine.router.clone());
        tokio::spawn(async move { consume(&queue, router.as_ref()).await })
    };
    consumer.await?;
    engine.shutdown().await;
    for worker in workers {
        worker.await?;
    }

    println!("acked:  {}", queue.acked().join(", "));
    for (id, reason) in queue.parked() {
        println!("parked: {id} ({reason})");
    }
    println!("redelivered: {}", queue.redelivered());
    if let Some(sink) = sink {
        println!(
            "Customer.io would have received {} request(s).",
            sink.take().len()
        );
    }
    Ok(())
}
