//! Helpers shared by the flow_triggers, flow_onboarding and flow_forget end-to-end tests.

#![allow(dead_code, unreachable_pub)] // Each test crate uses a different part.

use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dispatch::sinks::CustomerIoBatchSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle, RetryPolicy};
use cio_segment_sync::flows::triggers::{DispatcherSettings, TriggersConfig};
use cio_segment_sync::pipeline::DispatchDeliver;
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::Message;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `Basic base64("site:key")`.
pub const AUTH: &str = "Basic c2l0ZTprZXk=";

/// 2024-05-01T10:15:30.123Z.
pub const AT: &str = "2024-05-01T10:15:30.123Z";
/// [`AT`] in Unix milliseconds.
pub const AT_MS: i64 = 1_714_558_530_123;
/// [`AT`] in Unix seconds.
pub const AT_S: i64 = AT_MS / 1000;

/// A Track client writing to `server`.
pub fn client(server: &MockServer) -> TrackClient {
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&server.uri())
        .unwrap();
    TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap()
}

/// Short linger, one attempt per request (a failure is dead-lettered at once).
pub fn dispatcher_settings() -> DispatcherSettings {
    let mut settings = DispatcherSettings::default();
    settings.linger_ms = Some(10);
    settings.attempt_timeout_ms = std::num::NonZeroU64::new(5_000).unwrap();
    settings.max_attempts = std::num::NonZeroU32::new(1);
    settings
}

/// The triggers flow's configuration for tests.
pub fn triggers_config() -> TriggersConfig {
    let mut config = TriggersConfig::default();
    config.dispatcher = dispatcher_settings();
    config
}

/// A running dispatcher to `server` and the [`DispatchDeliver`] over it.
pub fn deliver(
    server: &MockServer,
) -> (
    Arc<DispatchDeliver<CustomerIoBatchSink>>,
    DispatcherHandle<CustomerIoBatchSink>,
    Arc<MemoryDeadLetters>,
) {
    let dead = Arc::new(MemoryDeadLetters::new(100));
    let config = DispatcherConfig::default()
        .with_linger(Duration::from_millis(10))
        .with_attempt_timeout(Duration::from_secs(5))
        .with_retry(RetryPolicy::default().with_max_attempts(1));
    let (handle, _worker) = Dispatcher::spawn(
        CustomerIoBatchSink::new(client(server)),
        config,
        Arc::new(Unlimited),
        dead.clone(),
    );
    let deliver = Arc::new(DispatchDeliver::new(handle.clone(), dead.clone()));
    (deliver, handle, dead)
}

/// A mock of `POST /api/v2/batch` with the test credentials and exactly `operations` as the
/// batch, answered 200 and expected `times` times.
pub async fn expect_batch(server: &MockServer, operations: Value, times: u64) {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", AUTH))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({ "batch": operations })))
        .respond_with(ResponseTemplate::new(200))
        .expect(times)
        .mount(server)
        .await;
}

/// The event id the mapping gives `message_id` at [`AT`].
pub fn id_at(message_id: &str) -> String {
    event_id(message_id, AT_MS).to_string()
}

/// A message from JSON.
pub fn message(value: Value) -> Message {
    Message::from_value(value).unwrap()
}

/// Every request `server` received, as (path, JSON body), for failure messages.
pub async fn received(server: &MockServer) -> Vec<(String, Value)> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r.url.path().to_owned(),
                serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            )
        })
        .collect()
}
