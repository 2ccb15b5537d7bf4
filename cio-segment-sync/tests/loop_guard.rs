//! The loop guard end to end: stamp what we write, recognise it when it comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cio_segment_sync::StoreError;
use cio_segment_sync::loop_guard::{
    EchoSignal, LoopGuard, LoopGuardConfig, LoopVerdict, MemoryRecentIds, RecentIds, STAMP_KEY,
    STAMP_VERSION, StampingLoopGuard,
};
use cio_segment_sync::segment_model::Message;
use serde_json::{Value, json};

fn message(value: Value) -> Message {
    Message::from_value(value).expect("test message decodes")
}

fn back_sync_event() -> Message {
    message(json!({
        "type": "track",
        "messageId": "bs-1",
        "userId": "u-1",
        "event": "Email Opened",
        "properties": {"email_id": "dlv_1"},
        "context": {"ip": "203.0.113.9"},
        "integrations": {"Amplitude": {"session_id": 7}}
    }))
}

/// Serialise → parse, as the event does on its way through Segment and back.
fn round_trip(message: &Message) -> Message {
    Message::from_slice(&serde_json::to_vec(message).unwrap()).unwrap()
}

#[tokio::test]
async fn stamp_writes_provenance_and_switches_customerio_off() {
    let guard = StampingLoopGuard::new(
        Arc::new(MemoryRecentIds::default()),
        LoopGuardConfig::default()
            .with_origin("cio-workspace-7")
            .also_disable("Webhooks (Actions)"),
    );
    let mut event = back_sync_event();
    guard.stamp(&mut event).await.unwrap();
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(
        json["context"],
        json!({
            "ip": "203.0.113.9",
            STAMP_KEY: {"origin": "cio-workspace-7", "version": STAMP_VERSION}
        })
    );
    assert_eq!(
        json["integrations"],
        json!({
            "Amplitude": {"session_id": 7},
            "Customer.io": false,
            "Customer.io (Actions)": false,
            "Customer.io Actions": false,
            "Actions Customerio": false,
            "Webhooks (Actions)": false
        })
    );
    // Nothing else changed; the messageId was kept.
    assert_eq!(json["messageId"], "bs-1");
    assert_eq!(json["properties"], json!({"email_id": "dlv_1"}));
}

#[tokio::test]
async fn stamp_gives_a_message_without_id_one_and_remembers_it() {
    let recent = Arc::new(MemoryRecentIds::default());
    let guard = StampingLoopGuard::new(recent.clone(), LoopGuardConfig::default());
    let mut event = message(json!({"type": "track", "userId": "u-1", "event": "Email Sent"}));
    guard.stamp(&mut event).await.unwrap();
    let id = event
        .message_id()
        .expect("stamp sets a messageId")
        .to_owned();
    assert!(recent.contains(&id).await.unwrap());
    assert_eq!(recent.len(), 1);
}

#[tokio::test]
async fn stamped_message_that_comes_back_is_an_echo() {
    let guard = StampingLoopGuard::default();
    let mut event = back_sync_event();
    guard.stamp(&mut event).await.unwrap();
    let echoed = round_trip(&event);
    assert_eq!(
        guard.check(&echoed).await.unwrap(),
        LoopVerdict::Echo(EchoSignal::Stamp)
    );
}

#[tokio::test]
async fn stripped_stamp_is_still_caught_by_the_recent_id() {
    let guard = StampingLoopGuard::default();
    let mut event = back_sync_event();
    guard.stamp(&mut event).await.unwrap();
    // Segment (or a destination) dropped our context key and the integrations object.
    let mut stripped = serde_json::to_value(&event).unwrap();
    stripped["context"]
        .as_object_mut()
        .unwrap()
        .remove(STAMP_KEY);
    stripped.as_object_mut().unwrap().remove("integrations");
    let echoed = message(stripped);
    assert_eq!(
        guard.check(&echoed).await.unwrap(),
        LoopVerdict::Echo(EchoSignal::RecentId)
    );
}

#[tokio::test]
async fn foreign_message_is_fresh() {
    let guard = StampingLoopGuard::default();
    let mut ours = back_sync_event();
    guard.stamp(&mut ours).await.unwrap();
    let foreign = message(json!({
        "type": "track",
        "messageId": "app-42",
        "userId": "u-1",
        "event": "Email Opened",
        "context": {"cio_segment_sync_other": {"origin": "customerio"}},
        "integrations": {"Customer.io": false}
    }));
    assert_eq!(guard.check(&foreign).await.unwrap(), LoopVerdict::Fresh);
    // A message without a messageId and without a stamp is fresh too.
    let bare = message(json!({"type": "page", "anonymousId": "a-1"}));
    assert_eq!(guard.check(&bare).await.unwrap(), LoopVerdict::Fresh);
}

#[tokio::test]
async fn other_origins_are_echoes_unless_configured_otherwise() {
    let writer = StampingLoopGuard::new(
        Arc::new(MemoryRecentIds::default()),
        LoopGuardConfig::default().with_origin("eu-workspace"),
    );
    let mut event = back_sync_event();
    writer.stamp(&mut event).await.unwrap();
    let echoed = round_trip(&event);

    let lenient = StampingLoopGuard::default();
    assert_eq!(
        lenient.check(&echoed).await.unwrap(),
        LoopVerdict::Echo(EchoSignal::Stamp)
    );
    let strict = StampingLoopGuard::new(
        Arc::new(MemoryRecentIds::default()),
        LoopGuardConfig::default().with_any_origin_is_echo(false),
    );
    assert_eq!(strict.check(&echoed).await.unwrap(), LoopVerdict::Fresh);
}

#[tokio::test(start_paused = true)]
async fn recent_ids_are_forgotten_after_their_ttl() {
    let guard = StampingLoopGuard::new(
        Arc::new(MemoryRecentIds::default()),
        LoopGuardConfig::default().with_recent_ttl(Duration::from_secs(60)),
    );
    let mut event = back_sync_event();
    guard.stamp(&mut event).await.unwrap();
    let mut stripped = serde_json::to_value(&event).unwrap();
    stripped["context"]
        .as_object_mut()
        .unwrap()
        .remove(STAMP_KEY);
    let echoed = message(stripped);
    assert!(guard.check(&echoed).await.unwrap().is_echo());
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(guard.check(&echoed).await.unwrap(), LoopVerdict::Fresh);
}

/// A store whose every call fails, counting them.
#[derive(Debug, Default)]
struct Down {
    calls: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("connection refused")]
struct Refused;

#[async_trait]
impl RecentIds for Down {
    async fn remember(&self, _: &str, _: Duration) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Unavailable {
            store: "test recent ids",
            source: Box::new(Refused),
        })
    }

    async fn contains(&self, _: &str) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Unavailable {
            store: "test recent ids",
            source: Box::new(Refused),
        })
    }
}

#[tokio::test]
async fn store_failures_are_reported_but_the_stamp_still_protects() {
    let down = Arc::new(Down::default());
    let guard = StampingLoopGuard::new(down.clone(), LoopGuardConfig::default());
    let mut event = back_sync_event();
    assert!(matches!(
        guard.stamp(&mut event).await,
        Err(StoreError::Unavailable { .. })
    ));
    // The stamp alone recognises it, without asking the store.
    assert_eq!(
        guard.check(&round_trip(&event)).await.unwrap(),
        LoopVerdict::Echo(EchoSignal::Stamp)
    );
    assert_eq!(down.calls.load(Ordering::SeqCst), 1);
    // A foreign message needs the store: the failure is reported, not guessed.
    assert!(guard.check(&back_sync_event()).await.is_err());
    assert_eq!(down.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn usable_as_arc_dyn() {
    let guard: Arc<dyn LoopGuard> = Arc::new(StampingLoopGuard::default());
    let mut event = back_sync_event();
    guard.stamp(&mut event).await.unwrap();
    assert!(guard.check(&event).await.unwrap().is_echo());
}
