//! The command line's errors say what failed once: `Display` never repeats the text of its
//! `source()`, and `error_chain` (what the CLI prints) still writes every cause.

use std::error::Error as StdError;

use cio_segment_sync::StoreError;
use cio_segment_sync::builder::BuildError;
use cio_segment_sync::flows::churn::ChurnError;
use cio_sync::env::{Env, EnvError};
use cio_sync::error_chain;
use cio_sync::serve::ServeError;

/// Walks `error` and its sources; fails when one of them writes its cause's text.
fn displays_once(error: &(dyn StdError + 'static)) {
    let mut current = Some(error);
    while let Some(outer) = current {
        let text = outer.to_string();
        assert!(
            !text.is_empty(),
            "an error of the chain has no text: {outer:?}"
        );
        if let Some(cause) = outer.source() {
            let cause_text = cause.to_string();
            assert!(
                !text.contains(&cause_text),
                "`{text}` repeats its source `{cause_text}`"
            );
        }
        current = outer.source();
    }
}

/// `error` displays once, and the CLI's rendering holds every cause of its chain.
fn check(error: &(dyn StdError + 'static)) -> String {
    displays_once(error);
    let printed = error_chain(error);
    let mut current = Some(error);
    while let Some(e) = current {
        assert!(printed.contains(&e.to_string()), "`{printed}` lost `{e}`");
        current = e.source();
    }
    printed
}

fn io_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied")
}

fn env_error() -> EnvError {
    Env::from_lookup(|var| (var == "CIO_REGION").then(|| "mars".to_owned()))
        .expect_err("no credentials, an unknown region")
}

#[test]
fn serve_errors_display_once() {
    let printed = check(&ServeError::DeadLetterFile(
        cio_sync::dead_letters::OpenError::Files {
            path: "/var/lib/cio-sync".into(),
            source: io_error(),
        },
    ));
    assert!(
        printed.ends_with("cannot be opened: permission denied"),
        "{printed}"
    );
    check(&ServeError::DryRun(io_error()));
    check(&ServeError::Redis(StoreError::Unavailable {
        store: "redis deduper",
        source: Box::new(io_error()),
    }));
    check(&ServeError::Client {
        client: "Customer.io Track",
        source: Box::new(io_error()),
    });
    check(&ServeError::Build(BuildError::Churn(ChurnError::Config {
        field: "inactive_days",
        problem: "must be at least 1",
    })));
    check(&ServeError::Env(env_error()));
}

#[test]
fn environment_errors_display_once() {
    let error = env_error();
    assert!(!error.0.is_empty());
    check(&error);
}
