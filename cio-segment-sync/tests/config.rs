//! `SyncConfig` loading: every key and value that cannot work is refused with its key and line;
//! nothing is clamped.

use cio_segment_sync::config::{ConfigError, SyncConfig};

fn error(text: &str) -> String {
    SyncConfig::from_toml_str(text, "sync.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn the_example_file_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../cio-sync/sync.example.toml");
    let config = SyncConfig::load(std::path::Path::new(path)).unwrap();
    assert!(config.onboarding.is_some() && config.audience.is_some());
}

#[test]
fn an_unknown_key_is_refused_with_its_name_and_line() {
    let message = error("[triggers]\nlease_seconds = 60\nleese = 1\n");
    assert!(message.contains("leese"), "{message}");
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn zero_where_one_is_needed_is_refused_not_raised() {
    for (text, key, line) in [
        (
            "[triggers]\nbatch_concurrency = 0\n",
            "batch_concurrency",
            "line 2",
        ),
        (
            "[triggers.dispatcher]\n\nconcurrency = 0\n",
            "concurrency",
            "line 3",
        ),
        (
            "[triggers.dispatcher]\nattempt_timeout_ms = 0\n",
            "attempt_timeout_ms",
            "line 2",
        ),
        (
            "[server]\nbody_limit_bytes = 0\n",
            "body_limit_bytes",
            "line 2",
        ),
        (
            "[server]\nconcurrency_limit = 0\n",
            "concurrency_limit",
            "line 2",
        ),
        (
            "[server]\n\nrequests_per_second = 0\n",
            "requests_per_second",
            "line 3",
        ),
    ] {
        let message = error(text);
        assert!(
            message.contains(key) && message.contains(line),
            "{text}: {message}"
        );
        assert!(message.starts_with("sync.toml: "), "{message}");
    }
}

#[test]
fn the_server_limits_and_grace_are_read() {
    let config = SyncConfig::from_toml_str(
        "[server]\nconcurrency_limit = 8\nrequests_per_second = 500\nshutdown_grace_seconds = 0\n",
        "sync.toml",
    )
    .unwrap();
    let server = config.server();
    assert_eq!(server.concurrency_limit.get(), 8);
    assert_eq!(server.requests_per_second.map(|r| r.get()), Some(500));
    assert_eq!(server.shutdown_grace(), std::time::Duration::ZERO);
}

#[test]
fn a_value_that_parses_but_cannot_work_names_its_key_and_line() {
    let text = "[onboarding]\nmilestones = [\n  { event = \"A\", key = \"a\" },\n  { event = \"B\", key = \"a\" },\n]\n";
    match SyncConfig::from_toml_str(text, "sync.toml") {
        Err(ConfigError::Invalid { key, line, .. }) => {
            assert_eq!(
                (key.as_str(), line),
                ("onboarding.milestones[1].key", Some(4))
            );
        }
        other => panic!("expected an invalid value, got {other:?}"),
    }
    assert_eq!(
        error("[churn]\ninactive_days = 0\n"),
        "sync.toml, line 2: `churn.inactive_days` must be at least 1"
    );
    assert_eq!(
        error("[server]\ncustomerio_deadline_ms = 4000\n"),
        "sync.toml, line 2: `server.customerio_deadline_ms` must be under 4000 (Customer.io's window)"
    );
    let message = error("[onboarding]\nmilestones = []\n");
    assert!(
        message.starts_with("sync.toml, line 2: `onboarding.milestones`"),
        "{message}"
    );
}

#[test]
fn an_activity_ttl_shorter_than_the_period_plus_the_scan_interval_is_refused() {
    // 30 days + 15 minutes + the 1-day margin: 32 days is the shortest that works.
    let text = "[churn]\ninactive_days = 30\nactivity_ttl_days = 31\n";
    match SyncConfig::from_toml_str(text, "sync.toml") {
        Err(ConfigError::Invalid { key, line, .. }) => {
            assert_eq!((key.as_str(), line), ("churn.activity_ttl_days", Some(3)));
        }
        other => panic!("expected an invalid value, got {other:?}"),
    }
    assert_eq!(
        error(text),
        "sync.toml, line 3: `churn.activity_ttl_days` must be at least 32 (it is 31): \
         `inactive_days` (30) plus the scan interval (900 s) plus a 1-day margin"
    );
    // The interval counts: a scan every two days needs 33.
    let slow =
        "[churn]\nactivity_ttl_days = 32\n\n[server]\nchurn_scan_interval_seconds = 172800\n";
    assert!(
        error(slow).starts_with("sync.toml, line 2: `churn.activity_ttl_days` must be at least 33"),
        "{}",
        error(slow)
    );
    let config =
        SyncConfig::from_toml_str("[churn]\nactivity_ttl_days = 32\n", "sync.toml").unwrap();
    assert_eq!(
        config.activity_ttl(),
        Some(std::time::Duration::from_secs(32 * 86_400))
    );
    // Absent: derived from the period and the interval.
    let config = SyncConfig::from_toml_str(
        "[churn]\ninactive_days = 7\n[server]\nchurn_scan_interval_seconds = 60\n",
        "sync.toml",
    )
    .unwrap();
    assert_eq!(
        config.activity_ttl(),
        Some(std::time::Duration::from_secs(8 * 86_400 + 60))
    );
    assert_eq!(SyncConfig::default().activity_ttl(), None);
}

#[test]
fn an_unreadable_file_names_it() {
    let error = SyncConfig::load(std::path::Path::new("/nonexistent/sync.toml")).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert_eq!(
        error.to_string(),
        "cannot read config file /nonexistent/sync.toml"
    );
}
