//! The `cio-sync` commands as a user meets them: the binary's help and exit codes, the demo over
//! the bundled sample, and check-config.

use std::process::{Command, ExitCode};

use cio_sync::cli::{Cli, run};
use clap::Parser;

const BIN: &str = env!("CARGO_BIN_EXE_cio-sync");

async fn run_cli(args: &[&str]) -> (ExitCode, String) {
    let cli = Cli::try_parse_from(std::iter::once("cio-sync").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    let code = run(cli, &mut out).await;
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn help_is_there_for_every_command_and_names_the_exit_codes() {
    for args in [
        &["--help"][..],
        &["demo", "--help"],
        &["replay", "--help"],
        &["check-config", "--help"],
        &["dead-letters", "list", "--help"],
        &["dead-letters", "replay", "--help"],
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains("Exit status: 0 done"), "{args:?}: {text}");
    }
}

#[test]
fn a_usage_error_exits_2() {
    let output = Command::new(BIN).args(["replay"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(BIN).args(["bogus"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_bundled_sample_without_credentials() {
    let (code, out) = run_cli(&["demo"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.starts_with("DRY RUN"), "{out}");
    // Every call type reaches Customer.io; the duplicate is skipped; the bad line is named.
    assert!(
        out.contains(
            "14 lines: 12 delivered, 1 skipped, 0 dead-lettered, 0 to retry, 0 refused, 1 malformed"
        ),
        "{out}"
    );
    assert!(
        out.contains("POST /api/v1/segments/7/add_customers?id_type=id"),
        "{out}"
    );
    assert!(out.contains("\"action\":\"merge\""), "{out}");
    assert!(
        out.contains("line  14: malformed: malformed JSON at line 1"),
        "{out}"
    );
}

#[tokio::test]
async fn check_config_accepts_the_example_and_names_the_line_of_a_problem() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/sync.example.toml");
    let (code, out) = run_cli(&["check-config", example]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(
        out.contains("valid; Segment → Customer.io flows on: triggers, onboarding, audience"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[triggers]\nlease_seconds = 60\n\n[churn]\ninactive_days = 0\n",
    )
    .unwrap();
    let (code, out) = run_cli(&["check-config", bad.to_str().unwrap()]).await;
    assert_eq!(code, ExitCode::from(2), "{out}");
    assert!(
        out.contains("line 5: `churn.inactive_days` must be at least 1"),
        "{out}"
    );
}

#[tokio::test]
async fn a_replay_without_credentials_says_what_is_missing_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.jsonl");
    std::fs::write(&file, "{}\n").unwrap();
    let output = Command::new(BIN)
        .args(["replay", file.to_str().unwrap()])
        .env_remove("CIO_SITE_ID")
        .env_remove("CIO_API_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("`CIO_SITE_ID` and `CIO_API_KEY` must be set"),
        "{text}"
    );
}
