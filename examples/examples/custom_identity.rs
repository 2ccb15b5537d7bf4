//! Custom identity: a house rule plugged into the library's router.
//!
//! ```text
//! cargo run -p examples --example custom_identity
//! ```
//!
//! [`TenantResolver`](examples::custom_identity::TenantResolver) prefixes every person id with
//! the tenant (`acme:user-1001`) and lower-cases emails, delegating everything else to the
//! default `StoreResolver`. `SyncBuilder::resolver` hands it to every flow of the engine; the
//! bundled sample events then run through the engine's `SegmentRouter` as a dry run: each
//! request the Customer.io client would send is printed, and every `identifiers` object shows
//! the rule applied. No credentials are needed and nothing leaves the machine.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::identity::{MemoryIdentityStore, StoreResolver};
use cio_segment_sync::testing::RecordingServer;
use cio_sync::demo::{EXAMPLE_CONFIG, handle_line};
use customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use examples::custom_identity::TenantResolver;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = SyncConfig::from_toml_str(EXAMPLE_CONFIG, "cio-sync/sync.example.toml")?;
    config.triggers.dispatcher.linger_ms = Some(5);
    // Audience sync names people by `userId` or email as Segment sent them (its `id_type`),
    // not through a resolver, so it would not see the tenant prefix: leave it out here.
    config.audience = None;

    // The house rule over the default resolver and its identity store.
    let inner = StoreResolver::new(
        Arc::new(MemoryIdentityStore::default()),
        config.triggers.resolver.into(),
    );
    let resolver = Arc::new(TenantResolver::new("acme", Arc::new(inner)));

    let sink = RecordingServer::start().await?;
    let client = TrackClient::new(
        SiteId::new("dry-run-site"),
        TrackApiKey::new("dry-run-key"),
        ClientConfig::new(Region::Us).with_track_base_url(sink.base_url())?,
    )?;
    let (engine, workers) = SyncBuilder::new(client, config)
        .resolver(resolver)
        .build()?;
    for worker in workers {
        tokio::spawn(worker);
    }

    println!(
        "DRY RUN with tenant `acme`: requests go to {}",
        sink.base_url()
    );
    for (index, line) in cio_sync::demo::SAMPLE_EVENTS.lines().enumerate() {
        let report = handle_line(&engine.router, line).await;
        println!("line {:>3}: {report}", index + 1);
        for request in sink.take() {
            println!("           {request}");
        }
    }
    engine.shutdown().await;
    Ok(())
}
