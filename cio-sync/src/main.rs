//! `cio-sync`: see `cio-sync --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cio_sync::cli::Cli::parse();
    let mut out = std::io::stdout();
    cio_sync::cli::run(cli, &mut out).await
}
