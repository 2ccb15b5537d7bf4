//! No public type that holds a credential shows it in `Debug` or `Display`.

use customerio_client::webhook::signature::{SignatureVerifier, WebhookSigningKey};
use customerio_client::{
    AppApiKey, AppClient, ClientConfig, Region, SiteId, TrackApiKey, TrackClient,
};

const SITE: &str = "site-id-4f1e9c";
const TRACK_KEY: &str = "track-key-9b2d77";
const APP_KEY: &str = "app-key-c3a8e1";
const SIGNING_KEY: &str = "signing-key-5e6f0a";

fn assert_redacted(shown: &str) {
    for secret in [SITE, TRACK_KEY, APP_KEY, SIGNING_KEY] {
        assert!(!shown.contains(secret), "a secret leaked into {shown:?}");
    }
}

#[test]
fn every_public_type_holding_a_secret_is_redacted() {
    let config = ClientConfig::new(Region::Eu);
    let track = TrackClient::new(
        SiteId::new(SITE),
        TrackApiKey::new(TRACK_KEY),
        config.clone(),
    )
    .unwrap();
    let app = AppClient::new(AppApiKey::new(APP_KEY), config)
        .unwrap()
        .with_workspace_id(7);
    let key = WebhookSigningKey::new(SIGNING_KEY).unwrap();
    let verifier = SignatureVerifier::new(key.clone());

    let shown = [
        format!("{:?} {:#?}", SiteId::new(SITE), SiteId::new(SITE)),
        format!("{} {}", SiteId::new(SITE), TrackApiKey::new(TRACK_KEY)),
        format!(
            "{:?} {}",
            TrackApiKey::new(TRACK_KEY),
            AppApiKey::new(APP_KEY)
        ),
        format!("{:?}", AppApiKey::new(APP_KEY)),
        format!("{track:?} {track:#?}"),
        format!("{app:?} {app:#?}"),
        format!("{key:?} {key}"),
        format!("{verifier:?} {verifier:#?}"),
    ];
    for text in &shown {
        assert_redacted(text);
    }
    // The Basic credentials are base64 on the wire; make sure that form does not leak either.
    let basic = base64_of(&format!("{SITE}:{TRACK_KEY}"));
    assert!(!format!("{track:?}").contains(&basic));
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
