//! Custom identity: a house rule wired into the pipeline.
//!
//! ```text
//! cargo run -p examples --example custom_identity
//! ```
//!
//! [`TenantResolver`](examples::custom_identity::TenantResolver) prefixes every person id with
//! the tenant (`acme:user-1001`) and lower-cases emails, delegating everything else to the
//! default `StoreResolver`. The sample events then run through the quickstart's flows with it,
//! as a dry run: each request the Customer.io client would send is printed, and every
//! `identifiers` object shows the rule applied.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;

use cio_segment_sync::identity::{MemoryIdentityStore, StoreResolver};
use customerio_client::{SiteId, TrackApiKey, TrackClient};
use examples::config::{EnvConfig, SyncConfig};
use examples::custom_identity::TenantResolver;
use examples::dry_run::DrySink;
use examples::quickstart::{EXAMPLE_CONFIG, Quickstart, SAMPLE_EVENTS};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = EnvConfig::from_process()?;
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

    let sink = DrySink::start().await?;
    let client = TrackClient::new(
        SiteId::new("dry-run-site"),
        TrackApiKey::new("dry-run-key"),
        env.client_config()?.with_track_base_url(sink.base_url())?,
    )?;
    println!(
        "DRY RUN with tenant `acme`: requests go to {}",
        sink.base_url()
    );
    let quickstart = Quickstart::start(client, &config, Some(resolver))?;
    for (index, line) in SAMPLE_EVENTS.lines().enumerate() {
        let report = quickstart.handle_line(line).await;
        println!("line {:>3}: {report}", index + 1);
        for request in sink.take() {
            println!("           {request}");
        }
    }
    quickstart.shutdown().await;
    Ok(())
}
