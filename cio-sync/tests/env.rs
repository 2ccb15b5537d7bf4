//! The environment contract of `cio-sync`: every variable is read under its exact name (the
//! problems and redaction are tested beside `Env` in `src/env.rs`).

use std::collections::HashMap;

use cio_segment_sync::customerio_client::Region;
use cio_sync::env::{Env, VARS};

#[test]
fn every_variable_is_read_under_its_exact_name() {
    let vars = HashMap::from([
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
        ("SEGMENT_WEBHOOK_TOKEN", "seg-token-0123456789"),
        ("CIO_WEBHOOK_SIGNING_KEY", "cio-signing"),
        ("REDIS_URL", "redis://:pw@127.0.0.1:6379"),
        ("BIND", "0.0.0.0:8000"),
    ]);
    let mut asked = Vec::new();
    let env = Env::from_lookup(|name| {
        asked.push(name.to_owned());
        vars.get(name).map(|v| (*v).to_owned())
    })
    .unwrap();
    asked.sort();
    asked.dedup();
    let mut documented: Vec<String> = VARS.iter().map(|v| (*v).to_owned()).collect();
    documented.sort();
    assert_eq!(asked, documented);

    let track = env.track.as_ref().unwrap();
    assert_eq!(track.site_id.expose_secret(), "site-123");
    assert_eq!(track.api_key.expose_secret(), "track-key-456");
    assert_eq!(
        env.app_api_key.as_ref().unwrap().expose_secret(),
        "app-key-789"
    );
    assert_eq!(env.region, Region::Eu);
    assert_eq!(env.track_url.unwrap().as_str(), "http://127.0.0.1:8080/");
    assert_eq!(env.app_url.unwrap().as_str(), "https://api-eu.customer.io/");
    assert_eq!(env.segment_write_key.unwrap().expose(), "write-key");
    assert_eq!(
        env.segment_api_url.unwrap().as_str(),
        "http://127.0.0.1:9090/"
    );
    let (token, space) = env.segment_profile.unwrap();
    assert_eq!((token.expose(), space.as_str()), ("profile-token", "spa_1"));
    assert_eq!(
        env.segment_profile_url.unwrap().as_str(),
        "https://profiles.segment.com/"
    );
    assert_eq!(env.segment_webhook_secret.unwrap().expose(), "seg-secret");
    assert!(env.segment_webhook_token.is_some());
    assert!(env.cio_signing_key.is_some());
    assert_eq!(
        env.redis_url.unwrap().expose(),
        "redis://:pw@127.0.0.1:6379"
    );
    assert_eq!(env.bind.to_string(), "0.0.0.0:8000");
}
