//! Embedding: the library inside a host's own tokio runtime and queue consumer.
//!
//! ```text
//! cargo run -p examples --example embed_in_worker
//! ```
//!
//! The host builds its runtime, creates the flow, runs the dispatcher's worker as one of its
//! own tasks, and consumes its queue (here a simulated in-memory one,
//! `examples::worker::MemoryQueue`) from a consumer task. A message is acked only when the
//! sync answered `Delivered` or a skip; a dead-lettered or unreadable one is parked, a
//! retryable failure redelivered (see `examples::worker::decide`). Customer.io is the local
//! dry-run sink unless `CIO_SITE_ID` / `CIO_API_KEY` are set.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;

use cio_segment_sync::flows::triggers::SegmentToCustomerIo;
use customerio_client::{SiteId, TrackApiKey, TrackClient};
use examples::config::{EnvConfig, SyncConfig};
use examples::dry_run::DrySink;
use examples::quickstart::{EXAMPLE_CONFIG, SAMPLE_EVENTS};
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
    let env = EnvConfig::from_process()?;
    let mut config = SyncConfig::from_toml_str(EXAMPLE_CONFIG, "cio-sync/sync.example.toml")?;
    config.triggers.dispatcher.linger_ms = Some(20);

    let sink;
    let client = match &env.customerio {
        Some(credentials) => TrackClient::new(
            credentials.site_id.clone(),
            credentials.api_key.clone(),
            env.client_config()?,
        )?,
        None => {
            sink = DrySink::start().await?;
            println!(
                "DRY RUN: Customer.io is a local sink at {}",
                sink.base_url()
            );
            TrackClient::new(
                SiteId::new("dry-run-site"),
                TrackApiKey::new("dry-run-key"),
                env.client_config()?.with_track_base_url(sink.base_url())?,
            )?
        }
    };

    // The library does not spawn anything itself: the host runs the dispatcher's worker.
    let (flow, worker) = SegmentToCustomerIo::new(client, config.triggers);
    let worker = tokio::spawn(worker);
    let flow = Arc::new(flow);

    let queue = Arc::new(MemoryQueue::new(3));
    for (index, line) in SAMPLE_EVENTS.lines().enumerate() {
        queue.publish(format!("q-{}", index + 1), line.as_bytes().to_vec());
    }

    // One consumer per queue (or partition keyed by person) keeps each person's messages in
    // order; run one such task per partition to scale out.
    let consumer = {
        let (queue, flow) = (queue.clone(), flow.clone());
        tokio::spawn(async move { consume(&queue, &flow).await })
    };
    consumer.await?;
    flow.shutdown().await;
    worker.await?;

    println!("acked:  {}", queue.acked().join(", "));
    for (id, reason) in queue.parked() {
        println!("parked: {id} ({reason})");
    }
    println!("redelivered: {}", queue.redelivered());
    Ok(())
}
