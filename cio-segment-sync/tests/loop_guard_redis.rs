//! The loop guard's recent-id memory on a real `redis-server` (features `redis` + `testing`).

use std::sync::Arc;

use cio_segment_sync::loop_guard::{
    EchoSignal, LoopGuard, LoopGuardConfig, LoopVerdict, RedisRecentIds, STAMP_KEY,
    StampingLoopGuard,
};
use cio_segment_sync::segment_model::Message;
use cio_segment_sync::testing::Guarded;
use cio_segment_sync::testing::redis_server::TestRedis;
use serde_json::json;

async fn recent_ids() -> Guarded<RedisRecentIds, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisRecentIds::new(guard.connect().await),
        guard,
    }
}

cio_segment_sync::recent_ids_conformance!(redis_recent_ids, recent_ids());

#[tokio::test]
async fn an_echo_is_recognised_by_another_worker() {
    let server = TestRedis::start().await;
    let writer = StampingLoopGuard::new(
        Arc::new(RedisRecentIds::new(server.connect().await)),
        LoopGuardConfig::default(),
    );
    let receiver = StampingLoopGuard::new(
        Arc::new(RedisRecentIds::new(server.connect().await)),
        LoopGuardConfig::default(),
    );
    let mut event = Message::from_value(json!({
        "type": "track", "messageId": "bs-redis-1", "userId": "u-1", "event": "Email Clicked"
    }))
    .unwrap();
    writer.stamp(&mut event).await.unwrap();

    // The stamp was stripped on the way: the id alone, remembered in Redis, gives it away.
    let mut stripped = serde_json::to_value(&event).unwrap();
    stripped["context"]
        .as_object_mut()
        .unwrap()
        .remove(STAMP_KEY);
    let echoed = Message::from_value(stripped).unwrap();
    assert_eq!(
        receiver.check(&echoed).await.unwrap(),
        LoopVerdict::Echo(EchoSignal::RecentId)
    );
    let foreign = Message::from_value(json!({
        "type": "track", "messageId": "app-1", "userId": "u-1", "event": "Email Clicked"
    }))
    .unwrap();
    assert_eq!(receiver.check(&foreign).await.unwrap(), LoopVerdict::Fresh);
}
