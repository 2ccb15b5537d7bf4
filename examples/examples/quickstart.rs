//! Quickstart: the whole Segment → Customer.io sync over the bundled sample events.
//!
//! ```text
//! cargo run -p examples --example quickstart [-- [--config FILE.toml] [FILE.jsonl]]
//! ```
//!
//! Each line of `examples/data/sample-events.jsonl` (or `FILE.jsonl`) goes through the flows
//! the configuration turns on (`--config`, else `examples/sync.example.toml`): triggers and
//! profile enrichment, onboarding milestones, Engage audiences. See `examples::quickstart`.
//!
//! Without `CIO_SITE_ID` / `CIO_API_KEY` this is a **dry run**: the real Customer.io client
//! writes to a local recording server on `127.0.0.1:0`, and every request it would have sent to
//! Customer.io is printed (method, path, JSON body). With both set, it sends for real, to the
//! region in `CIO_REGION` or to `CIO_TRACK_URL`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use customerio_client::{SiteId, TrackApiKey, TrackClient};
use examples::config::{EnvConfig, SyncConfig};
use examples::dry_run::DrySink;
use examples::quickstart::{EXAMPLE_CONFIG, Quickstart, SAMPLE_EVENTS, Summary};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(summary) if summary.failed.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<Summary, Box<dyn std::error::Error>> {
    let env = EnvConfig::from_process()?;
    let has_config = std::env::args().any(|a| a == "--config" || a.starts_with("--config="));
    let (mut config, rest) = SyncConfig::from_args(std::env::args().skip(1))?;
    if !has_config {
        config = SyncConfig::from_toml_str(EXAMPLE_CONFIG, "cio-sync/sync.example.toml")?;
    }
    let text = match rest.first() {
        Some(path) => std::fs::read_to_string(PathBuf::from(path))?,
        None => SAMPLE_EVENTS.to_owned(),
    };

    let (client, sink) = match &env.customerio {
        Some(credentials) => {
            println!("Sending to Customer.io ({}).", describe_target(&env));
            let client = TrackClient::new(
                credentials.site_id.clone(),
                credentials.api_key.clone(),
                env.client_config()?,
            )?;
            (client, None)
        }
        None => {
            let sink = DrySink::start().await?;
            println!(
                "DRY RUN: CIO_SITE_ID / CIO_API_KEY are not set, so every request goes to a local \
                 recording server ({}) and is printed below instead of reaching Customer.io.",
                sink.base_url()
            );
            let client_config = env.client_config()?.with_track_base_url(sink.base_url())?;
            let client = TrackClient::new(
                SiteId::new("dry-run-site"),
                TrackApiKey::new("dry-run-key"),
                client_config,
            )?;
            // One message at a time: waiting for more to fill a batch only slows the dry run.
            config.triggers.dispatcher.linger_ms.get_or_insert(5);
            (client, Some(sink))
        }
    };

    let quickstart = Quickstart::start(client, &config, None)?;
    let mut summary = Summary::default();
    for (index, line) in text.lines().enumerate() {
        let report = quickstart.handle_line(line).await;
        summary.record(&report);
        if !matches!(report, examples::quickstart::LineReport::Blank) {
            println!("line {:>3}: {report}", index + 1);
        }
        if let Some(sink) = &sink {
            for request in sink.take() {
                println!("           {request}");
            }
        }
    }
    quickstart.shutdown().await;
    if let Some(sink) = &sink {
        for request in sink.take() {
            println!("           {request}");
        }
    }
    println!("\n{summary}");
    Ok(summary)
}

fn describe_target(env: &EnvConfig) -> String {
    match &env.track_url {
        Some(url) => format!("Track API at {url}"),
        None => format!("region {}", env.region),
    }
}
