//! Flow 1: behavioural triggers and profile enrichment (Segment → Customer.io).
//!
//! [`SegmentToCustomerIo`] is the whole composed pipeline as one ready-made object: dedupe →
//! loop guard → identity → mapping → delivery through a dispatcher over
//! [`CustomerIoBatchSink`] (Track v2 `batch`). A Segment `track` becomes a Customer.io event
//! (campaigns trigger on it), an `identify` a person upsert with the current traits, and the
//! other calls what the [`mapping`](crate::mapping) rules say.
//!
//! Every store defaults to its in-memory implementation (fine for one process); several workers
//! pass shared stores to the [builder](SegmentToCustomerIoBuilder). The host owns the runtime:
//! [`SegmentToCustomerIoBuilder::build`] returns the flow and the dispatcher's [`Worker`], which
//! the host runs (`tokio::spawn(worker)`); [`SegmentToCustomerIoBuilder::spawn`] does that for
//! it. [`SegmentToCustomerIo::shutdown`] sends what is queued and waits for it.
//!
//! What to do with each answer is the [pipeline's rule](crate::pipeline#acking-the-source):
//! `Ok(outcome)` → ack the source; `Err(e)` with `e.is_retryable()` → do not ack.
//!
//! # Configuration
//!
//! [`TriggersConfig`] loads from TOML; every key is optional:
//!
//! ```toml
//! lease_seconds = 600          # how long a claimed messageId is held (must outlast delivery)
//! batch_concurrency = 16       # people processed at once in a batch
//!
//! [mapping]                    # see MappingConfig
//! [resolver]
//! allow_anonymous = true
//! email_user_ids_as_email = true
//! link_from_events = false
//! [dispatcher]
//! queue_capacity = 10000
//! concurrency = 4
//! attempt_timeout_ms = 10000
//! # linger_ms = 500            # absent: the sink's default
//! # max_items = 1000           # absent: the sink's limit
//! # max_attempts = 8           # absent: RetryPolicy's default
//! # initial_backoff_ms = 200
//! # max_backoff_ms = 30000
//! ```
//!
//! # Example
//!
//! ```
//! use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
//! use cio_segment_sync::flows::triggers::{SegmentToCustomerIo, TriggersConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = TrackClient::new(
//!     SiteId::new("site-id"),
//!     TrackApiKey::new("track-api-key"),
//!     ClientConfig::new(Region::Us),
//! )?;
//! let config: TriggersConfig = serde_json::from_str(r#"{"lease_seconds": 300}"#)?;
//! let (flow, worker) = SegmentToCustomerIo::new(client, config);
//! // The host runs `worker` (e.g. `tokio::spawn(worker)`), then for each request body:
//! // `flow.process_slice(&body).await`, and `flow.shutdown().await` when it stops.
//! # drop((flow, worker));
//! # Ok(())
//! # }
//! ```

mod config;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use customerio_client::TrackClient;
use segment_model::{Batch, BatchItemError, Message};

pub use config::{DispatcherSettings, ResolverSettings, TriggersConfig};

use super::forget::{Forget, ForgettingResolver};
use crate::dead_letter::{DeadLetterSink, MemoryDeadLetters};
use crate::dedupe::Deduper;
use crate::dispatch::sinks::CustomerIoBatchSink;
use crate::dispatch::{Dispatcher, DispatcherHandle, Worker};
use crate::identity::{IdentityResolver, IdentityStore, MemoryIdentityStore, StoreResolver};
use crate::loop_guard::LoopGuard;
use crate::pipeline::{
    ConfigMapper, DispatchDeliver, Outcome, Pipeline, PipelineError, SyncPipeline,
};
use crate::rate_limit::{GovernorLimiter, RateLimiter};

/// A message handed over as bytes could not be processed. Carries no customer data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TriggersError {
    /// The bytes are not a Segment message; the error names the JSON path. Not retryable.
    #[error("the message could not be decoded")]
    Decode(#[source] segment_model::Error),
    /// An item of a batch could not be decoded (its index and JSON path are in the error; the
    /// raw item is kept in it for a dead-letter store). Not retryable.
    #[error("the batch has an item that could not be decoded")]
    Item(#[source] BatchItemError),
    /// The pipeline did not finish the message.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl TriggersError {
    /// Whether the source should redeliver the message: only for retryable pipeline errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            TriggersError::Pipeline(error) => error.is_retryable(),
            TriggersError::Decode(_) | TriggersError::Item(_) => false,
        }
    }
}

/// Flow 1: Segment messages → Customer.io, through one composed pipeline and dispatcher. See
/// the [module docs](self).
pub struct SegmentToCustomerIo {
    pipeline: SyncPipeline,
    handle: DispatcherHandle<CustomerIoBatchSink>,
}

impl fmt::Debug for SegmentToCustomerIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentToCustomerIo")
            .field("pipeline", &self.pipeline)
            .field("dispatcher", &self.handle)
            .finish()
    }
}

impl SegmentToCustomerIo {
    /// A builder writing through `client` under `config`.
    pub fn builder(client: TrackClient, config: TriggersConfig) -> SegmentToCustomerIoBuilder {
        SegmentToCustomerIoBuilder {
            client,
            config,
            deduper: None,
            loop_guard: None,
            identity_store: None,
            resolver: None,
            rate_limiter: None,
            dead_letters: None,
            forget_in: Vec::new(),
        }
    }

    /// The flow with every store in memory, and the dispatcher's worker the host must run.
    pub fn new(client: TrackClient, config: TriggersConfig) -> (Self, Worker) {
        Self::builder(client, config).build()
    }

    /// Processes one message. See the [pipeline docs](crate::pipeline) for the answer.
    pub async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
        self.pipeline.process(message).await
    }

    /// Decodes one message from JSON bytes (a webhook body) and processes it. Bytes that are
    /// not a Segment message give [`TriggersError::Decode`] naming what was wrong.
    pub async fn process_slice(&self, bytes: &[u8]) -> Result<Outcome, TriggersError> {
        let message = Message::from_slice(bytes).map_err(TriggersError::Decode)?;
        Ok(self.pipeline.process(&message).await?)
    }

    /// Processes a Segment batch (its envelope's `context`, `integrations` and `sentAt` applied
    /// to each item): concurrently across people, in order for each person. One result per
    /// item, in input order.
    pub async fn process_batch(&self, batch: Batch) -> Vec<Result<Outcome, PipelineError>> {
        self.pipeline.process_batch(batch.into_messages()).await
    }

    /// Decodes a `/v1/batch` body leniently and processes every item that decodes: one result
    /// per input item, in input order, a bad item answered with [`TriggersError::Item`] (its
    /// index, the JSON path, the raw item) while the others are delivered. `Err` only when the
    /// body as a whole is unusable (not JSON, no `batch` array); nothing was processed then.
    pub async fn process_batch_slice(
        &self,
        bytes: &[u8],
    ) -> Result<Vec<Result<Outcome, TriggersError>>, segment_model::Error> {
        let parsed = Batch::from_slice_lenient(bytes)?;
        let total = parsed.batch.len() + parsed.errors.len();
        let mut results = self
            .pipeline
            .process_batch(parsed.batch.into_messages())
            .await
            .into_iter();
        let mut errors = parsed.errors.into_iter().peekable();
        let mut out = Vec::with_capacity(total);
        for index in 0..total {
            if errors.peek().is_some_and(|error| error.index == index) {
                if let Some(error) = errors.next() {
                    out.push(Err(TriggersError::Item(error)));
                }
            } else if let Some(result) = results.next() {
                out.push(result.map_err(TriggersError::Pipeline));
            }
        }
        Ok(out)
    }

    /// The pipeline (its [`stats`](SyncPipeline::stats)).
    pub fn pipeline(&self) -> &SyncPipeline {
        &self.pipeline
    }

    /// The dispatcher's handle (its [`stats`](DispatcherHandle::stats)).
    pub fn dispatcher(&self) -> &DispatcherHandle<CustomerIoBatchSink> {
        &self.handle
    }

    /// Stops accepting operations, sends everything queued and waits until each is resolved
    /// and the worker finished.
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }
}

/// Builds a [`SegmentToCustomerIo`]. Unset stores default to in-memory ones.
pub struct SegmentToCustomerIoBuilder {
    client: TrackClient,
    config: TriggersConfig,
    deduper: Option<Arc<dyn Deduper>>,
    loop_guard: Option<Arc<dyn LoopGuard>>,
    identity_store: Option<Arc<dyn IdentityStore>>,
    resolver: Option<Arc<dyn IdentityResolver>>,
    rate_limiter: Option<Arc<dyn RateLimiter>>,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    forget_in: Vec<Arc<dyn Forget>>,
}

impl fmt::Debug for SegmentToCustomerIoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentToCustomerIoBuilder")
            .field("config", &self.config)
            .field("forget_in", &self.forget_in)
            .finish_non_exhaustive()
    }
}

impl SegmentToCustomerIoBuilder {
    /// The deduper (default: in memory).
    pub fn deduper(mut self, deduper: Arc<dyn Deduper>) -> Self {
        self.deduper = Some(deduper);
        self
    }

    /// The loop guard (default: a stamping guard with an in-memory id list).
    pub fn loop_guard(mut self, loop_guard: Arc<dyn LoopGuard>) -> Self {
        self.loop_guard = Some(loop_guard);
        self
    }

    /// The identity store of the default resolver (default: in memory).
    pub fn identity_store(mut self, store: Arc<dyn IdentityStore>) -> Self {
        self.identity_store = Some(store);
        self
    }

    /// A resolver of the host's own, replacing the default one (the identity store and the
    /// resolver settings are then unused).
    pub fn resolver(mut self, resolver: Arc<dyn IdentityResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The rate limiter of the Track API: one token per request attempt. Default: an
    /// in-process GCRA limiter at Customer.io's documented rate
    /// ([`TRACK_REQUESTS_PER_SECOND_DOCUMENTED`](customerio_client::limits::TRACK_REQUESTS_PER_SECOND_DOCUMENTED),
    /// 1000 requests per second); share a `RedisRateLimiter` between workers.
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// Where undeliverable operations go (default: the last 10 000 in memory).
    pub fn dead_letters(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// After a deletion or suppression was accepted, also forget the person in `store` (see
    /// [`forget`](super::forget)).
    pub fn forget_in(mut self, store: Arc<dyn Forget>) -> Self {
        self.forget_in.push(store);
        self
    }

    /// The flow and the dispatcher's worker, which the host must run.
    pub fn build(self) -> (SegmentToCustomerIo, Worker) {
        let dead_letters = self
            .dead_letters
            .unwrap_or_else(|| Arc::new(MemoryDeadLetters::new(10_000)));
        let (handle, worker) = Dispatcher::new(
            CustomerIoBatchSink::new(self.client).with_merge_resend(self.config.merge_resend),
            self.config.dispatcher.to_config(),
            self.rate_limiter.unwrap_or_else(default_track_limiter),
            dead_letters.clone(),
        );
        let resolver: Arc<dyn IdentityResolver> = self.resolver.unwrap_or_else(|| {
            Arc::new(StoreResolver::new(
                self.identity_store
                    .unwrap_or_else(|| Arc::new(MemoryIdentityStore::default())),
                self.config.resolver.into(),
            ))
        });
        let resolver: Arc<dyn IdentityResolver> = if self.forget_in.is_empty() {
            resolver
        } else {
            Arc::new(ForgettingResolver::new(resolver, self.forget_in))
        };
        let mut builder =
            SyncPipeline::builder(Arc::new(DispatchDeliver::new(handle.clone(), dead_letters)))
                .resolver(resolver)
                .mapper(Arc::new(ConfigMapper::new(self.config.mapping)))
                .lease(Duration::from_secs(self.config.lease_seconds))
                .batch_concurrency(self.config.batch_concurrency);
        if let Some(deduper) = self.deduper {
            builder = builder.deduper(deduper);
        }
        if let Some(loop_guard) = self.loop_guard {
            builder = builder.loop_guard(loop_guard);
        }
        let flow = SegmentToCustomerIo {
            pipeline: builder.build(),
            handle,
        };
        (flow, worker)
    }

    /// [`build`](Self::build), then spawns the worker on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn(self) -> (SegmentToCustomerIo, tokio::task::JoinHandle<()>) {
        let (flow, worker) = self.build();
        (flow, tokio::spawn(worker))
    }
}

/// The Track API limiter used when the host gives none: Customer.io's documented rate.
fn default_track_limiter() -> Arc<dyn RateLimiter> {
    let rate =
        std::num::NonZeroU32::new(customerio_client::limits::TRACK_REQUESTS_PER_SECOND_DOCUMENTED)
            .unwrap_or(std::num::NonZeroU32::MIN);
    Arc::new(GovernorLimiter::per_second(rate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::Admission;

    #[tokio::test]
    async fn the_default_track_limiter_admits_the_documented_1000_per_second() {
        let limiter = default_track_limiter();
        let mut granted = 0;
        for _ in 0..1_100 {
            if limiter.try_acquire().await.unwrap() == Admission::Granted {
                granted += 1;
            }
        }
        // The burst is one second's worth; a slow machine may have earned a few more tokens.
        assert!((1_000..1_050).contains(&granted), "{granted}");
    }
}
