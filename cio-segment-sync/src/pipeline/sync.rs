//! [`SyncPipeline`]: dedupe → loop guard → identity → mapping → delivery.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use segment_model::Message;
use tracing::Instrument;

use super::guards::Guards;
use super::stats::{Counters, PipelineStats};
use super::steps::{ConfigMapper, Deliver, Delivered, Mapper};
use super::{Outcome, Pipeline, PipelineError, Step, batch, ordering_key};
use crate::dedupe::{Deduper, MemoryDeduper};
use crate::identity::{
    IdentityResolver, MemoryIdentityStore, ResolverConfig, SkipReason, StoreResolver, Target,
};
use crate::loop_guard::{LoopGuard, StampingLoopGuard};
use crate::mapping::{Mapped, MappingConfig};

/// Settings of a [`SyncPipeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// How long a claim on a messageId lasts. It must outlast the slowest delivery, retries
    /// and backoff included: when it runs out, another worker may deliver the same message.
    /// Default 10 minutes.
    pub lease: Duration,
    /// How many groups of messages [`Pipeline::process_batch`] runs at once. Default
    /// [`DEFAULT_BATCH_CONCURRENCY`](super::DEFAULT_BATCH_CONCURRENCY).
    pub batch_concurrency: NonZeroUsize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(10 * 60),
            batch_concurrency: NonZeroUsize::new(super::DEFAULT_BATCH_CONCURRENCY)
                .unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// The default [`Pipeline`]. Build it with [`SyncPipeline::builder`]; every step is an
/// `Arc<dyn …>` a host may replace.
pub struct SyncPipeline {
    guards: Guards,
    resolver: Arc<dyn IdentityResolver>,
    mapper: Arc<dyn Mapper>,
    deliver: Arc<dyn Deliver>,
    config: PipelineConfig,
    counters: Counters,
}

impl fmt::Debug for SyncPipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncPipeline")
            .field("guards", &self.guards)
            .field("resolver", &self.resolver)
            .field("mapper", &self.mapper)
            .field("deliver", &self.deliver)
            .field("config", &self.config)
            .field("stats", &self.counters.snapshot())
            .finish()
    }
}

impl SyncPipeline {
    /// A builder around the one step that has no default: the delivery (usually a
    /// [`DispatchDeliver`](super::DispatchDeliver)). The others default to a
    /// [`MemoryDeduper`], a [`StampingLoopGuard`] with an in-memory id list, a
    /// [`StoreResolver`] over a [`MemoryIdentityStore`] — fine for one process; several workers
    /// share Redis-backed stores instead — and a [`ConfigMapper`] with the default
    /// [`MappingConfig`].
    pub fn builder(deliver: Arc<dyn Deliver>) -> SyncPipelineBuilder {
        SyncPipelineBuilder {
            deduper: None,
            loop_guard: None,
            resolver: None,
            mapper: None,
            deliver,
            config: PipelineConfig::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// What the pipeline did so far: one count per way a message ended. With the `metrics`
    /// feature the same counts are exported as `cio_segment_sync_pipeline_*_total` counters
    /// (`delivered`, `dead_lettered`, `deduplicated`, `loop_dropped`, `skipped`, `in_flight`,
    /// `failed`, `rejected`, `blocked`).
    pub fn stats(&self) -> PipelineStats {
        self.counters.snapshot()
    }

    /// Steps 3 to 5, once the message is claimed and is not an echo. `Ok` finishes the message
    /// (commit the claim); `Err` does not (release it).
    async fn run(&self, message: &Message) -> Result<Outcome, PipelineError> {
        let target =
            self.resolver
                .resolve(message)
                .await
                .map_err(|source| PipelineError::Store {
                    step: Step::Identity,
                    source,
                })?;
        let key = match (&target, ordering_key(&target)) {
            (Target::Skip(reason), _) => {
                return Ok(Outcome::Skipped(reason.clone()));
            }
            (_, Some(key)) => key,
            // A target kind added later that names nobody: nothing to write to.
            (_, None) => {
                return Ok(Outcome::Skipped(SkipReason::NoIdentity));
            }
        };

        let operations = match self
            .mapper
            .map(message, &target)
            .map_err(PipelineError::Mapping)?
        {
            Mapped::Operations(operations) if operations.is_empty() => {
                return Ok(Outcome::Skipped(SkipReason::Filtered));
            }
            Mapped::Operations(operations) => operations,
            Mapped::Skip(reason) => return Ok(Outcome::Skipped(reason)),
        };

        match self
            .deliver
            .deliver(operations, &key)
            .await
            .map_err(PipelineError::Delivery)?
        {
            Delivered::Accepted => {
                self.resolver
                    .delivered(message, &target)
                    .await
                    .map_err(|source| PipelineError::Store {
                        step: Step::Identity,
                        source,
                    })?;
                Ok(Outcome::Delivered)
            }
            Delivered::DeadLettered(reason) => Ok(Outcome::DeadLettered(reason)),
        }
    }
}

#[async_trait]
impl Pipeline for SyncPipeline {
    async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
        let span = tracing::debug_span!("pipeline_process", kind = message.kind().as_str());
        let result = self.claim_and_run(message).instrument(span).await;
        self.counters.record(&result);
        result
    }

    async fn process_batch(&self, messages: Vec<Message>) -> Vec<Result<Outcome, PipelineError>> {
        let results = batch::run(self, messages, self.config.batch_concurrency.get()).await;
        // Processed messages were counted by `process`; blocked ones never reached it.
        for result in &results {
            if matches!(result, Err(PipelineError::Blocked)) {
                self.counters.record(result);
            }
        }
        results
    }
}

impl SyncPipeline {
    /// Dedupe and loop guard ([`Guards`]), then the steps.
    async fn claim_and_run(&self, message: &Message) -> Result<Outcome, PipelineError> {
        self.guards.run(message, || self.run(message)).await
    }
}

/// Builds a [`SyncPipeline`]. Every step left unset gets its in-memory default.
pub struct SyncPipelineBuilder {
    deduper: Option<Arc<dyn Deduper>>,
    loop_guard: Option<Arc<dyn LoopGuard>>,
    resolver: Option<Arc<dyn IdentityResolver>>,
    mapper: Option<Arc<dyn Mapper>>,
    deliver: Arc<dyn Deliver>,
    config: PipelineConfig,
}

impl fmt::Debug for SyncPipelineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncPipelineBuilder")
            .field("deduper", &self.deduper)
            .field("loop_guard", &self.loop_guard)
            .field("resolver", &self.resolver)
            .field("mapper", &self.mapper)
            .field("deliver", &self.deliver)
            .field("config", &self.config)
            .finish()
    }
}

impl SyncPipelineBuilder {
    /// The de-duplication store.
    pub fn deduper(mut self, deduper: Arc<dyn Deduper>) -> Self {
        self.deduper = Some(deduper);
        self
    }

    /// The loop guard.
    pub fn loop_guard(mut self, loop_guard: Arc<dyn LoopGuard>) -> Self {
        self.loop_guard = Some(loop_guard);
        self
    }

    /// The identity resolver.
    pub fn resolver(mut self, resolver: Arc<dyn IdentityResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The mapping step.
    pub fn mapper(mut self, mapper: Arc<dyn Mapper>) -> Self {
        self.mapper = Some(mapper);
        self
    }

    /// The delivery step.
    pub fn deliver(mut self, deliver: Arc<dyn Deliver>) -> Self {
        self.deliver = deliver;
        self
    }

    /// How long a claim on a messageId lasts (see [`PipelineConfig::lease`]).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How many groups a batch runs at once.
    pub fn batch_concurrency(mut self, groups: NonZeroUsize) -> Self {
        self.config.batch_concurrency = groups;
        self
    }

    /// The pipeline.
    pub fn build(self) -> SyncPipeline {
        SyncPipeline {
            guards: Guards::new(
                self.deduper
                    .unwrap_or_else(|| Arc::new(MemoryDeduper::default())),
                self.loop_guard
                    .unwrap_or_else(|| Arc::new(StampingLoopGuard::default())),
                self.config.lease,
            ),
            resolver: self.resolver.unwrap_or_else(|| {
                Arc::new(StoreResolver::new(
                    Arc::new(MemoryIdentityStore::default()),
                    ResolverConfig::default(),
                ))
            }),
            mapper: self
                .mapper
                .unwrap_or_else(|| Arc::new(ConfigMapper::new(MappingConfig::default()))),
            deliver: self.deliver,
            config: self.config,
            counters: Counters::default(),
        }
    }
}
