//! The delivery engine: one dispatcher, generic over a [`Sink`].
//!
//! Many callers [`submit`](DispatcherHandle::submit) items; each gets a [`Completion`] that
//! resolves only once the server accepted that item ([`Delivery::Delivered`]) or the
//! dispatcher gave it up to the dead-letter sink ([`Delivery::DeadLettered`]). A completion
//! whose item was dropped unresolved yields [`Dropped`]: *not* delivered. Hosts ack their source
//! (HTTP response, queue offset) on `Delivered` only.
//!
//! # What the dispatcher does
//!
//! - **Batching** by count, bytes (each item encoded and measured once, at submit; the sink's
//!   wrapper and separators counted) and linger (from a batch's first item). Items of different
//!   [partitions](Sink::Partition) never share a request. An item too large on its own is
//!   refused at submit and handed back ([`SubmitError::TooLarge`]).
//! - **A bounded queue**: at most [`queue_capacity`](DispatcherConfig::with_queue_capacity)
//!   items are held (queued, batching, sending or backing off). `submit` waits for room;
//!   `try_submit` fails with [`SubmitError::QueueFull`].
//! - **Requests in flight** up to [`concurrency`](DispatcherConfig::with_concurrency).
//! - **The attempt order**, written once: retry (outermost) → rate-limit token → concurrency
//!   permit → per-attempt timeout → transport. Every attempt, retries included, takes a token
//!   from the [`RateLimiter`]; a request backing off holds no concurrency permit.
//! - **Retries** with backon's jittered exponential backoff, an attempt cap and a total
//!   deadline, honouring `Retry-After`, decided by one pure function ([`decide`]). A throttled
//!   answer (`429`) pauses every send of the dispatcher until its delay passes. An attempt that
//!   may have reached the server (timeout, reset) is retried only if the sink declares its
//!   items [de-duplicated by the server](Sink::server_deduplicates).
//! - **Partial failure**: a `207` dead-letters only the refused items (with the server's
//!   reason) and resolves the rest delivered; a refused request (`400`) of several items is
//!   split in halves, sent one after the other, until the bad items are isolated.
//! - **Per-key order**: items with the same [`OrderingKey`] are never reordered and never in
//!   two requests at once, whatever the concurrency; a later item waits until the earlier one
//!   is resolved (delivered *or* dead-lettered).
//! - **Shutdown within a grace**: [`DispatcherHandle::shutdown_within`] drains the same way
//!   for at most the grace period; then every item not yet sent (backing off, paused, waiting
//!   for a token) goes back to its caller as [`Delivery::RetryLater`] (a request already sent
//!   still gets its answer), so callers release their claims and nothing held is stuck.
//! - **Shutdown**: [`DispatcherHandle::shutdown`], or dropping every handle, stops accepting,
//!   sends partial batches at once and waits for everything in flight; then the worker future
//!   completes.
//!
//! The sinks for Customer.io and Segment are in [`sinks`].
//!
//! # Choices where the vendors' documentation is silent
//!
//! - Customer.io documents no operation count per v2 batch: the v2 sink sends at most
//!   [`sinks::DEFAULT_MAX_OPERATIONS`] (configurable), as Segment's own destination does.
//! - Customer.io documents only a count limit (1000 ids) for manual-segment calls: the sink
//!   also caps the body at [`sinks::DEFAULT_SEGMENT_REQUEST_BYTES`] (configurable).
//! - Whether the Track API sends `Retry-After` on `429` is unconfirmed: when it is absent the
//!   dispatcher pauses for the next backoff delay instead.
//! - Retry defaults ([`RetryPolicy::default`]) are sized for outages, not for blips (the
//!   Customer.io SDKs give up after 3 retries and 30 s, which turned every longer outage into
//!   lost events in v0.1): 200 ms doubling to 30 s with jitter, no attempt cap, for up to 1 hour,
//!   `Retry-After` honoured up to 1 hour. Then the items go back to their callers as
//!   [`Delivery::RetryLater`], never to the dead letters.
//!
//! The worker drives every request itself (it spawns no task), so running it is the whole
//! footprint. [`JsonlDeadLetters`](crate::dead_letter::JsonlDeadLetters) writes on tokio's
//! blocking pool.
//!
//! # Running it
//!
//! [`Dispatcher::new`] returns the handle and the [`Worker`] future; the host decides where the
//! worker runs. [`Dispatcher::spawn`] is the convenience that spawns it on the current tokio
//! runtime.
//!
//! ```
//! use std::num::NonZeroUsize;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use cio_segment_sync::dead_letter::MemoryDeadLetters;
//! use cio_segment_sync::dispatch::{
//!     BatchLimits, BatchResponse, Classification, Dispatcher, DispatcherConfig, Delivery,
//!     EncodeError, Encoded, FailureKind, OrderingKey, SendPhase, Sink, SinkError,
//! };
//! use cio_segment_sync::rate_limit::Unlimited;
//!
//! /// A sink that accepts everything (a real one sends an HTTP request).
//! struct Accepting;
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("credentials refused")]
//! struct Refused;
//! impl SinkError for Refused {
//!     fn classify(&self) -> Classification {
//!         Classification::new(FailureKind::Permanent, SendPhase::ResponseReceived)
//!     }
//! }
//!
//! impl Sink for Accepting {
//!     type Item = String;
//!     type Partition = ();
//!     type Error = Refused;
//!     fn name(&self) -> &'static str { "example" }
//!     fn limits(&self) -> BatchLimits {
//!         BatchLimits {
//!             max_items: NonZeroUsize::new(100).unwrap(),
//!             max_request_bytes: 10_000,
//!             max_item_bytes: 1_000,
//!             wrapper_bytes: 2,
//!             separator_bytes: 1,
//!             linger: Duration::from_millis(5),
//!         }
//!     }
//!     fn server_deduplicates(&self) -> bool { true }
//!     fn partition(&self, _: &String) {}
//!     fn encode(&self, item: &String) -> Result<Bytes, EncodeError> {
//!         serde_json::to_vec(item).map(Bytes::from).map_err(EncodeError::json)
//!     }
//!     async fn send(&self, _: &(), _: &[Encoded<String>]) -> Result<BatchResponse, Refused> {
//!         Ok(BatchResponse::Accepted)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (handle, worker) = Dispatcher::spawn(
//!     Accepting,
//!     DispatcherConfig::default(),
//!     Arc::new(Unlimited),
//!     Arc::new(MemoryDeadLetters::new(1_000)),
//! );
//! let completion = handle
//!     .submit("signed_up".to_owned(), Some(OrderingKey::new("user-42")))
//!     .await
//!     .expect("queue open");
//! assert_eq!(completion.await, Ok(Delivery::Delivered { attempts: 1 }));
//! handle.shutdown().await;
//! worker.await.expect("worker did not panic");
//! # }
//! ```

mod classify;
mod config;
mod handle;
mod retry;
mod sink;
pub mod sinks;
mod stats;
mod worker;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

pub use config::{DispatcherConfig, OrderingKey};
pub use handle::{Completion, Delivery, DispatcherHandle, Dropped, ResubmitError, SubmitError};
pub use retry::{AttemptFacts, Decision, GiveUp, RetryPolicy, decide};
pub use sink::{
    BatchLimits, BatchResponse, Classification, EncodeError, Encoded, FailureKind, Rejection,
    SendPhase, Sink, SinkError,
};
pub use stats::{LATENCY_BUCKETS, LatencyHistogram, Stats};

use crate::dead_letter::DeadLetterSink;
use crate::rate_limit::RateLimiter;

/// Builds dispatchers. See the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct Dispatcher;

impl Dispatcher {
    /// A dispatcher for `sink`: the handle to submit through, and the worker future the host
    /// must run (e.g. `tokio::spawn(worker)`). Nothing is sent until the worker runs.
    ///
    /// `config`'s max items and linger override the sink's when set (max items only
    /// downwards).
    #[allow(clippy::new_ret_no_self)] // Like tower's `Buffer::pair`: a handle and its worker.
    pub fn new<S: Sink>(
        sink: S,
        config: DispatcherConfig,
        rate_limiter: Arc<dyn RateLimiter>,
        dead_letters: Arc<dyn DeadLetterSink>,
    ) -> (DispatcherHandle<S>, Worker) {
        let sink = Arc::new(sink);
        let name = sink.name();
        let mut limits = sink.limits();
        if let Some(max) = config.max_items {
            limits.max_items = limits.max_items.min(max);
        }
        let shared = Arc::new(worker::Shared {
            queue: Arc::new(Semaphore::new(config.queue_capacity)),
            capacity: config.queue_capacity,
            counters: stats::Counters::new(name),
            shutdown: AtomicBool::new(false),
            wake: Notify::new(),
            abandon: watch::channel(false).0,
            paused_until: Mutex::new(None),
        });
        let ctx = Arc::new(worker::Ctx {
            sink: Arc::clone(&sink),
            name,
            limits,
            server_deduplicates: sink.server_deduplicates(),
            limiter: rate_limiter,
            dead_letters,
            concurrency: Semaphore::new(config.concurrency),
            shared: Arc::clone(&shared),
            config,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = watch::channel(false);
        let handle = DispatcherHandle {
            sink,
            tx,
            shared,
            done: done_rx,
        };
        let worker = Worker {
            name,
            inner: Box::pin(worker::Worker::new(ctx, rx, done_tx).run()),
        };
        (handle, worker)
    }

    /// [`new`](Self::new), then spawns the worker on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn<S: Sink>(
        sink: S,
        config: DispatcherConfig,
        rate_limiter: Arc<dyn RateLimiter>,
        dead_letters: Arc<dyn DeadLetterSink>,
    ) -> (DispatcherHandle<S>, tokio::task::JoinHandle<()>) {
        let (handle, worker) = Self::new(sink, config, rate_limiter, dead_letters);
        (handle, tokio::spawn(worker))
    }
}

/// The dispatcher's worker: batches, sends, retries and resolves. Completes after shutdown
/// (or once every handle is dropped) when everything held is resolved. Dropping it unfinished
/// resolves every held item's completion with [`Dropped`].
#[must_use = "the dispatcher sends nothing unless its worker runs"]
pub struct Worker {
    name: &'static str,
    inner: BoxFuture<'static, ()>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("sink", &self.name)
            .finish_non_exhaustive()
    }
}

impl Future for Worker {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}
