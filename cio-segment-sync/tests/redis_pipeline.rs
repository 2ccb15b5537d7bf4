//! Many workers sharing Redis (features `redis` + `testing`): the whole pipeline against a
//! mock Customer.io, with real `redis-server` processes.
//!
//! A "source" here is a shared queue that redelivers every message the pipeline did not let us
//! ack (in flight elsewhere, store down, delivery failed), as Segment or a queue would.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dispatch::sinks::CustomerIoBatchSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle, RetryPolicy};
use cio_segment_sync::identity::{ResolverConfig, StoreResolver};
use cio_segment_sync::loop_guard::{LoopGuardConfig, RedisRecentIds, StampingLoopGuard};
use cio_segment_sync::pipeline::{DispatchDeliver, Outcome, Pipeline, PipelineError, SyncPipeline};
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::redis::{RedisDeduper, RedisIdentityStore};
use cio_segment_sync::segment_model::Message;
use cio_segment_sync::testing::redis_server::TestRedis;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// One worker: its own Redis connection, stores, dispatcher and pipeline.
struct Worker {
    pipeline: SyncPipeline,
    handle: DispatcherHandle<CustomerIoBatchSink>,
}

async fn worker(redis: &TestRedis, customerio: &MockServer) -> Worker {
    let conn = redis.connect().await;
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&customerio.uri())
        .unwrap();
    let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap();
    let dead = Arc::new(MemoryDeadLetters::new(1000));
    let dispatcher_config = DispatcherConfig::default()
        .with_linger(Duration::from_millis(5))
        .with_retry(
            RetryPolicy::default()
                .with_initial_backoff(Duration::from_millis(5))
                .with_jitter_seed(1),
        );
    let (handle, _join) = Dispatcher::spawn(
        CustomerIoBatchSink::new(client),
        dispatcher_config,
        Arc::new(Unlimited),
        dead.clone(),
    );
    let pipeline = SyncPipeline::builder(Arc::new(DispatchDeliver::new(handle.clone(), dead)))
        .deduper(Arc::new(RedisDeduper::new(conn.clone())))
        .resolver(Arc::new(StoreResolver::new(
            Arc::new(RedisIdentityStore::new(conn.clone())),
            ResolverConfig::default(),
        )))
        .loop_guard(Arc::new(StampingLoopGuard::new(
            Arc::new(RedisRecentIds::new(conn)),
            LoopGuardConfig::default(),
        )))
        .build();
    Worker { pipeline, handle }
}

fn track(n: usize) -> Message {
    Message::from_value(json!({
        "type": "track",
        "messageId": format!("msg-{n}"),
        "userId": format!("user-{}", n % 997),
        "event": "Step Done",
        "properties": {"n": n},
        "timestamp": "2024-05-01T10:15:30.123Z"
    }))
    .unwrap()
}

/// How many times each `properties.n` reached the mock Customer.io.
async fn deliveries(server: &MockServer) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        for op in body["batch"].as_array().unwrap() {
            let n = op["attributes"]["n"].as_u64().unwrap();
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// The shared source: pops up to `max` messages; `pending` counts messages not yet acked.
struct Source {
    queue: Mutex<VecDeque<usize>>,
    pending: AtomicUsize,
    acked_delivered: Mutex<Vec<usize>>,
    failures: AtomicUsize,
}

impl Source {
    fn new(items: Vec<usize>) -> Arc<Self> {
        Arc::new(Self {
            pending: AtomicUsize::new(items.len()),
            queue: Mutex::new(items.into()),
            acked_delivered: Mutex::new(Vec::new()),
            failures: AtomicUsize::new(0),
        })
    }

    async fn take(&self, max: usize) -> Vec<usize> {
        let mut queue = self.queue.lock().await;
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }

    async fn settle(&self, items: Vec<usize>, results: Vec<Result<Outcome, PipelineError>>) {
        let mut redeliver = Vec::new();
        for (n, result) in items.into_iter().zip(results) {
            match result {
                Ok(Outcome::Delivered) => {
                    self.acked_delivered.lock().await.push(n);
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                }
                Ok(Outcome::Skipped(_)) => {
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                }
                Ok(other) => panic!("message {n}: unexpected outcome {other:?}"),
                Err(err) if err.is_retryable() => {
                    self.failures.fetch_add(1, Ordering::SeqCst);
                    redeliver.push(n);
                }
                Err(err) => panic!("message {n}: unexpected error {err}"),
            }
        }
        if !redeliver.is_empty() {
            self.queue.lock().await.extend(redeliver);
        }
    }
}

/// Runs one worker against the source until every message is acked.
async fn drain(worker: Arc<Worker>, source: Arc<Source>) {
    while source.pending.load(Ordering::SeqCst) > 0 {
        let items = source.take(250).await;
        if items.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let messages = items.iter().map(|n| track(*n)).collect();
        let results = worker.pipeline.process_batch(messages).await;
        let failed = results.iter().any(|r| r.is_err());
        source.settle(items, results).await;
        if failed {
            // Redelivery after a failure is not immediate at a real source either.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_deliver_each_of_10_000_messages_exactly_once() {
    const MESSAGES: usize = 10_000;
    let redis = TestRedis::start().await;
    let customerio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&customerio)
        .await;

    // Every message twice, shuffled with a fixed seed so copies interleave across workers.
    let mut items: Vec<usize> = (0..MESSAGES).chain(0..MESSAGES).collect();
    items.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(42));
    let source = Source::new(items);

    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(Arc::new(worker(&redis, &customerio).await));
    }
    let runs: Vec<_> = workers
        .iter()
        .map(|w| tokio::spawn(drain(w.clone(), source.clone())))
        .collect();
    for run in runs {
        run.await.unwrap();
    }
    for w in &workers {
        w.handle.shutdown().await;
    }

    let seen = deliveries(&customerio).await;
    assert_eq!(seen.len(), MESSAGES, "every message reached Customer.io");
    let repeated: Vec<_> = seen.iter().filter(|(_, count)| **count != 1).collect();
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
    assert_eq!(
        source.acked_delivered.lock().await.len(),
        MESSAGES,
        "one Delivered ack per message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_acks_nothing_undelivered_and_delivers_everything_after_restart() {
    const MESSAGES: usize = 2_000;
    let redis = Arc::new(Mutex::new(TestRedis::start().await));
    let customerio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&customerio)
        .await;
    let source = Source::new((0..MESSAGES).collect());
    let mut workers = Vec::new();
    for _ in 0..2 {
        workers.push(Arc::new(worker(&*redis.lock().await, &customerio).await));
    }
    let runs: Vec<_> = workers
        .iter()
        .map(|w| tokio::spawn(drain(w.clone(), source.clone())))
        .collect();

    // Kill Redis once some messages are acked, keep it down until the workers have seen
    // failures, then bring it back. Each wait is on an outcome, bounded only to fail loudly.
    let wait_until = |cond: &dyn Fn() -> bool| {
        let ok = (0..2_000).any(|_| {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
            false
        });
        assert!(ok, "condition never met");
    };
    let s = source.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(&|| s.pending.load(Ordering::SeqCst) < MESSAGES - 200)
    })
    .await
    .unwrap();
    redis.lock().await.kill();
    let before = source.failures.load(Ordering::SeqCst);
    let s = source.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(&|| s.failures.load(Ordering::SeqCst) >= before + 20)
    })
    .await
    .unwrap();
    assert!(
        source.pending.load(Ordering::SeqCst) > 0,
        "Redis went down before the run ended"
    );
    redis.lock().await.restart().await;

    for run in runs {
        run.await.unwrap();
    }
    for w in &workers {
        w.handle.shutdown().await;
    }

    let seen = deliveries(&customerio).await;
    // Every message was delivered once Redis was back...
    assert_eq!(seen.len(), MESSAGES, "every message reached Customer.io");
    // ...and every message acked as delivered is really at Customer.io. (Redis restarted
    // empty, so a message may have reached Customer.io twice; its event id lets Customer.io
    // drop the copy.)
    for n in source.acked_delivered.lock().await.iter() {
        assert!(
            seen.contains_key(&(*n as u64)),
            "message {n} acked but never delivered"
        );
    }
    assert!(source.failures.load(Ordering::SeqCst) > 0);
}
