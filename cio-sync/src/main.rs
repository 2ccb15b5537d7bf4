//! `cio-sync`: see `cio-sync --help`.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cio_sync::cli::Cli::parse();
    // Logs on stderr, filtered by RUST_LOG (default: info); stdout carries the reports.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let mut out = std::io::stdout();
    cio_sync::cli::run(cli, &mut out).await
}
