//! Compile-time locks: the public futures are `Send` and the steps are `Send + Sync`, so hosts
//! can spawn them on a multi-threaded runtime and share them behind `Arc<dyn …>`. If one of
//! these stops holding, this file stops compiling.

use std::future::Future;
use std::sync::Arc;

use cio_segment_sync::identity::{IdentityResolver, StoreResolver};
use cio_segment_sync::loop_guard::{LoopGuard, RecentIds, StampingLoopGuard};
use cio_segment_sync::pipeline::{Deliver, Mapper, Pipeline, SyncPipeline, SyncPipelineBuilder};
use cio_segment_sync::segment_model::Message;

/// Takes the future without polling it: only its type matters.
fn assert_send<F: Future + Send>(_future: F) {}

fn send_sync<T: Send + Sync + ?Sized>() {}

#[allow(dead_code)] // Only compiled, never run: the bounds are the test.
fn futures_are_send(
    resolver: Arc<dyn IdentityResolver>,
    guard: Arc<dyn LoopGuard>,
    recent: Arc<dyn RecentIds>,
    pipeline: Arc<dyn Pipeline>,
    concrete: SyncPipeline,
    message: Message,
) {
    assert_send(async move {
        if let Ok(target) = resolver.resolve(&message).await {
            let _ = resolver.delivered(&message, &target).await;
        }
        let mut stamped = message.clone();
        let _ = guard.stamp(&mut stamped).await;
        let _ = guard.check(&message).await;
        let _ = recent.contains("id").await;
        let _ = recent
            .remember("id", std::time::Duration::from_secs(1))
            .await;
        let _ = pipeline.process(&message).await;
        let _ = pipeline.process_batch(vec![message.clone()]).await;
        let _ = concrete.process(&message).await;
        let _ = concrete.process_batch(vec![message]).await;
    });
}

#[test]
fn steps_and_pipelines_are_send_and_sync() {
    send_sync::<SyncPipeline>();
    send_sync::<SyncPipelineBuilder>();
    send_sync::<StoreResolver>();
    send_sync::<StampingLoopGuard>();
    send_sync::<dyn Pipeline>();
    send_sync::<dyn IdentityResolver>();
    send_sync::<dyn LoopGuard>();
    send_sync::<dyn RecentIds>();
    send_sync::<dyn Mapper>();
    send_sync::<dyn Deliver>();
}
