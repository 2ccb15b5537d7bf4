//! The examples' configuration: environment variables through an injected lookup, and the
//! example TOML file.

use std::collections::HashMap;
use std::path::PathBuf;

use cio_segment_sync::flows::audience::AudienceIdType;
use customerio_client::Region;
use examples::config::{ConfigError, EnvConfig, ServerConfig, SyncConfig};

fn env(vars: &[(&str, &str)]) -> Result<EnvConfig, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    EnvConfig::from_lookup(|name| map.get(name).cloned())
}

fn example_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cio-sync/sync.example.toml")
}

#[test]
fn every_variable_is_read_under_its_exact_name() {
    let config = env(&[
        ("CIO_SITE_ID", "site-123"),
        ("CIO_API_KEY", "track-key-456"),
        ("CIO_APP_API_KEY", "app-key-789"),
        ("CIO_REGION", "EU"),
        ("CIO_TRACK_URL", "http://127.0.0.1:8080"),
        ("CIO_APP_URL", "https://api-eu.customer.io"),
        ("SEGMENT_WRITE_KEY", "write-key"),
        ("SEGMENT_API_URL", "http://127.0.0.1:9090/"),
        ("SEGMENT_PROFILE_TOKEN", "profile-token"),
        ("SEGMENT_SPACE_ID", "spa_1"),
        ("SEGMENT_PROFILE_URL", "https://profiles.segment.com"),
        ("SEGMENT_WEBHOOK_SECRET", "seg-secret"),
        ("CIO_WEBHOOK_SIGNING_KEY", "cio-signing"),
        ("REDIS_URL", "redis://:pw@127.0.0.1:6379"),
        ("BIND", "0.0.0.0:8000"),
    ])
    .unwrap();
    let cio = config.customerio.as_ref().unwrap();
    assert_eq!(cio.site_id.expose_secret(), "site-123");
    assert_eq!(cio.api_key.expose_secret(), "track-key-456");
    assert_eq!(
        config.app_api_key.as_ref().unwrap().expose_secret(),
        "app-key-789"
    );
    assert_eq!(config.region, Region::Eu);
    assert_eq!(
        config.track_url.as_ref().unwrap().as_str(),
        "http://127.0.0.1:8080/"
    );
    assert_eq!(
        config.segment_api_url.as_ref().unwrap().as_str(),
        "http://127.0.0.1:9090/"
    );
    assert_eq!(
        config.segment_write_key.as_ref().unwrap().expose_secret(),
        "write-key"
    );
    assert_eq!(
        config
            .segment_profile_token
            .as_ref()
            .unwrap()
            .expose_secret(),
        "profile-token"
    );
    assert_eq!(config.segment_space_id.as_deref(), Some("spa_1"));
    assert_eq!(
        config.segment_profile_url.as_ref().unwrap().as_str(),
        "https://profiles.segment.com/"
    );
    assert_eq!(
        config
            .segment_webhook_secret
            .as_ref()
            .unwrap()
            .expose_secret(),
        "seg-secret"
    );
    assert_eq!(
        config
            .cio_webhook_signing_key
            .as_ref()
            .unwrap()
            .expose_secret(),
        "cio-signing"
    );
    assert_eq!(
        config.redis_url.as_ref().unwrap().expose_secret(),
        "redis://:pw@127.0.0.1:6379"
    );
    assert_eq!(config.bind.to_string(), "0.0.0.0:8000");

    // The overrides reach the client configuration; the region picks the rest.
    let client = config.client_config().unwrap();
    assert_eq!(client.track_base_url().as_str(), "http://127.0.0.1:8080/");
    assert_eq!(
        client.app_base_url().as_str(),
        "https://api-eu.customer.io/"
    );
}

#[test]
fn nothing_set_gives_the_defaults() {
    let config = env(&[]).unwrap();
    assert!(config.customerio.is_none());
    assert_eq!(config.region, Region::Us);
    assert_eq!(config.bind.to_string(), "127.0.0.1:3000");
    assert!(config.track_url.is_none() && config.redis_url.is_none());
    assert_eq!(
        config.client_config().unwrap().track_base_url().as_str(),
        "https://track.customer.io/"
    );
    // An empty variable is unset.
    assert!(
        env(&[("CIO_SITE_ID", ""), ("CIO_API_KEY", " ")])
            .unwrap()
            .customerio
            .is_none()
    );
}

#[test]
fn debug_output_never_shows_a_secret() {
    let config = env(&[
        ("CIO_SITE_ID", "site-sekrit-1"),
        ("CIO_API_KEY", "sekrit-2"),
        ("CIO_APP_API_KEY", "sekrit-3"),
        ("SEGMENT_WRITE_KEY", "sekrit-4"),
        ("SEGMENT_PROFILE_TOKEN", "sekrit-5"),
        ("SEGMENT_SPACE_ID", "spa"),
        ("SEGMENT_WEBHOOK_SECRET", "sekrit-6"),
        ("CIO_WEBHOOK_SIGNING_KEY", "sekrit-7"),
        ("REDIS_URL", "redis://:sekrit-8@host"),
    ])
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("sekrit"), "{debug}");
    let credentials = config
        .customerio
        .as_ref()
        .expect("both Track credentials set");
    assert_eq!(
        format!("{credentials:?}"),
        "CustomerIoCredentials { site_id: <redacted>, api_key: <redacted> }"
    );
}

/// Each bad value gives an error naming the variable, and never the value.
#[test]
fn bad_values_name_the_variable_and_not_the_value() {
    let cases: [(&[(&str, &str)], &str); 9] = [
        (&[("CIO_REGION", "mars-zone")], "CIO_REGION"),
        (&[("BIND", "mars-zone")], "BIND"),
        (&[("CIO_TRACK_URL", "mars-zone")], "CIO_TRACK_URL"),
        (
            &[("CIO_APP_URL", "https://mars-zone.example/v1")],
            "CIO_APP_URL",
        ),
        (
            &[("SEGMENT_API_URL", "ftp://mars-zone.example")],
            "SEGMENT_API_URL",
        ),
        (
            &[("SEGMENT_PROFILE_URL", "https://mars-zone.example/?q=1")],
            "SEGMENT_PROFILE_URL",
        ),
        (&[("CIO_SITE_ID", "mars-zone")], "CIO_API_KEY"),
        (&[("CIO_API_KEY", "mars-zone")], "CIO_SITE_ID"),
        (
            &[("SEGMENT_PROFILE_TOKEN", "mars-zone")],
            "SEGMENT_SPACE_ID",
        ),
    ];
    for (vars, named) in cases {
        let error = env(vars).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(named), "{vars:?}: {text}");
        assert!(
            !text.contains("mars-zone"),
            "{vars:?} leaks the value: {text}"
        );
    }
    assert!(matches!(
        env(&[("CIO_SITE_ID", "s")]).unwrap_err(),
        ConfigError::Incomplete {
            set: "CIO_SITE_ID",
            missing: "CIO_API_KEY"
        }
    ));
    assert!(matches!(
        env(&[("CIO_REGION", "mars")]).unwrap_err(),
        ConfigError::Invalid {
            var: "CIO_REGION",
            ..
        }
    ));
}

#[test]
fn the_example_file_loads_with_every_flow_configured() {
    let config = SyncConfig::load(&example_file()).unwrap();
    assert_eq!(config.triggers.lease_seconds, 600);
    assert_eq!(config.triggers.dispatcher.concurrency.get(), 4);
    assert!(config.triggers.mapping.forward_device_events);
    assert!(!config.triggers.mapping.events.allows("Debug Ping"));
    assert!(config.triggers.resolver.allow_anonymous);

    let onboarding = config.onboarding.as_ref().unwrap();
    let milestones = onboarding.validate().unwrap();
    assert_eq!(milestones.step_of("Signed Up"), Some(1));
    assert_eq!(milestones.step_of("Project Created"), Some(2));
    assert_eq!(milestones.step_of("Teammate Invited"), Some(3));

    let audience = config.audience.as_ref().unwrap();
    assert_eq!(audience.segments.get("high_value_users"), Some(&7));
    assert_eq!(audience.segments.get("trial_users"), Some(&8));
    assert_eq!(audience.id_type, AudienceIdType::UserId);

    assert_eq!(config.churn.as_ref().unwrap().inactive_days, 30);
    assert!(config.engagement.is_some());
    assert_eq!(config.backfill.as_ref().unwrap().page_size, 200);
    // The server section shows the defaults.
    assert_eq!(config.server, Some(ServerConfig::default()));

    // `--config FILE` on a command line loads the same file and leaves the other arguments.
    let (from_args, rest) = SyncConfig::from_args([
        "--config".to_owned(),
        example_file().display().to_string(),
        "events.jsonl".to_owned(),
    ])
    .unwrap();
    assert_eq!(from_args, config);
    assert_eq!(rest, ["events.jsonl"]);
}

#[test]
fn no_config_file_means_the_defaults_and_only_flow_one() {
    let (config, rest) = SyncConfig::from_args(Vec::<String>::new()).unwrap();
    assert_eq!(config, SyncConfig::default());
    assert!(rest.is_empty());
    assert!(config.onboarding.is_none() && config.audience.is_none());
}

#[test]
fn file_errors_name_the_file_and_the_key() {
    let error = SyncConfig::from_toml_str("[triggers]\nlease = 3\n", "my.toml").unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ConfigError::Toml { .. }));
    assert!(text.contains("my.toml") && text.contains("lease"), "{text}");

    let error =
        SyncConfig::from_toml_str("[triggers.mapping]\npage_name = 7\n", "x.toml").unwrap_err();
    assert!(error.to_string().contains("page_name"), "{error}");

    let error = SyncConfig::from_toml_str("[onboarding]\nmilestones = []\n", "x.toml").unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Section {
                section: "onboarding",
                ..
            }
        ),
        "{error:?}"
    );

    let missing = PathBuf::from("/definitely/not/here.toml");
    let error = SyncConfig::load(&missing).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("/definitely/not/here.toml"));

    let error = SyncConfig::from_args(["--config".to_owned()]).unwrap_err();
    assert!(error.to_string().contains("--config"), "{error}");
}
