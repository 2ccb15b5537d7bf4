//! The pipeline: one inbound Segment message in, one [`Outcome`] out.
//!
//! [`SyncPipeline`] composes five replaceable steps, in this order:
//!
//! 1. **dedupe** — [`Deduper::claim`](crate::dedupe::Deduper::claim) the messageId;
//! 2. **loop guard** — drop what this library wrote into Segment itself
//!    ([`LoopGuard`](crate::loop_guard::LoopGuard));
//! 3. **identity** — who the message is about
//!    ([`IdentityResolver`](crate::identity::IdentityResolver));
//! 4. **mapping** — the Customer.io operations ([`Mapper`]; by default [`ConfigMapper`], the
//!    [`mapping`](crate::mapping) rules under a [`MappingConfig`](crate::mapping::MappingConfig));
//! 5. **delivery** — hand them over and wait until Customer.io accepted them or they were
//!    dead-lettered ([`Deliver`]). [`DispatchDeliver`] is the implementation over the
//!    [dispatcher](crate::dispatch) (with a
//!    [`CustomerIoBatchSink`](crate::dispatch::sinks::CustomerIoBatchSink)); hand-written ones
//!    serve tests.
//!
//! # Acking the source
//!
//! `Ok(outcome)` — whatever the outcome — means the message is finished: ack its source
//! (answer the webhook with `2xx`, commit the queue offset). `Err(error)` means it is not:
//! when [`PipelineError::is_retryable`] do not ack, so the source delivers it again; otherwise
//! (the message can never be mapped) ack it and keep it somewhere for a human.
//!
//! | what happened | claim | result |
//! |---|---|---|
//! | another worker holds the messageId | — | `Err(InFlight)` |
//! | the messageId was finished before | — | `Ok(Skipped(Duplicate))` |
//! | the loop guard recognises an echo | commit | `Ok(Skipped(OwnEcho))` |
//! | identity or mapping says skip | commit | `Ok(Skipped(reason))` |
//! | Customer.io accepted the operations | commit | `Ok(Delivered)` |
//! | … but the resolver's follow-up ([`delivered`](crate::identity::IdentityResolver::delivered): writing identity links, forgetting a deleted person) failed | release | `Err(Store)` |
//! | the operations were refused for good and dead-lettered | commit | `Ok(DeadLettered(reason))` |
//! | delivery did not finish (the engine stopped retrying an outage, queue closed, item dropped) | release | `Err(Delivery)` |
//! | a store failed | release | `Err(Store)` |
//! | the message cannot be mapped | release | `Err(Mapping)` (not retryable) |
//!
//! A dead-lettered message is committed: the server refused it for good (a `400`, an item of a
//! `207`, too large to send) and the refusal is recorded with its reason, so the source's retry
//! would only repeat it; fix it and replay it from the dead-letter sink instead. A retryable
//! failure is never dead-lettered: when the engine stops retrying, the claim is released and the
//! error says [`Ack::RetryLater`], so the source's retry is delivered, never skipped as a
//! duplicate.
//!
//! Identity links are written only after Customer.io accepted a message, so a message whose
//! delivery failed is resolved exactly the same way when it comes back.
//!
//! # Batches
//!
//! [`Pipeline::process_batch`] runs messages about different people concurrently and each
//! person's messages in input order (an identify is delivered, and its links written, before
//! that person's next event is resolved). After a retryable failure the rest of that person's
//! messages in the batch are not attempted ([`PipelineError::Blocked`]).
//!
//! # Counters
//!
//! [`SyncPipeline::stats`] counts how messages ended ([`PipelineStats`]); with the `metrics`
//! feature the counts are also exported through the `metrics` facade.
//!
//! # Messages without a messageId
//!
//! The dedupe key is then derived from the content: `derived:` followed by a UUID v5 of the
//! message's JSON serialisation (under a namespace fixed by this crate). The same message
//! redelivered gets the same key; two messages with identical content (timestamps included) are
//! treated as one.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use cio_segment_sync::customerio_client::track::v2::Operation;
//! use cio_segment_sync::identity::SkipReason;
//! use cio_segment_sync::pipeline::{Deliver, DeliverError, Delivered, Outcome, Pipeline, SyncPipeline};
//! use cio_segment_sync::segment_model::Message;
//!
//! /// Stands in for the dispatcher (see `DispatchDeliver`).
//! #[derive(Debug)]
//! struct AcceptAll;
//! #[async_trait]
//! impl Deliver for AcceptAll {
//!     async fn deliver(&self, _: Vec<Operation>, _: &str) -> Result<Delivered, DeliverError> {
//!         Ok(Delivered::Accepted)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pipeline = SyncPipeline::builder(Arc::new(AcceptAll)).build();
//! let track = Message::from_str(
//!     r#"{"type":"track","messageId":"m-1","userId":"u-1","event":"Signed Up"}"#,
//! )?;
//! assert_eq!(pipeline.process(&track).await?, Outcome::Delivered);
//! assert_eq!(
//!     pipeline.process(&track).await?,
//!     Outcome::Skipped(SkipReason::Duplicate)
//! );
//! # Ok(())
//! # }
//! ```

mod batch;
pub use batch::in_person_order;
mod dispatch;
mod guards;
mod stats;
mod steps;
mod sync;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use segment_model::Message;

use crate::identity::Target;
pub use crate::outcome::{Ack, AckRule, Outcome, SkipReason};
use crate::store::StoreError;

pub use crate::mapping::Mapped;
pub use dispatch::DispatchDeliver;
pub use guards::Guards;
pub use stats::PipelineStats;
pub use steps::{ConfigMapper, Deliver, DeliverError, Delivered, MapError, Mapper};
pub use sync::{PipelineConfig, SyncPipeline, SyncPipelineBuilder};

/// How many groups of messages [`Pipeline::process_batch`] runs at once by default.
pub const DEFAULT_BATCH_CONCURRENCY: usize = 16;

/// The step of the pipeline that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Claiming the messageId.
    Dedupe,
    /// The loop guard.
    LoopGuard,
    /// Identity resolution.
    Identity,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Dedupe => "dedupe",
            Step::LoopGuard => "loop guard",
            Step::Identity => "identity",
        })
    }
}

/// The message is not finished. See [`PipelineError::is_retryable`] for whether to ack it.
///
/// No variant carries a messageId or identifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Another worker is processing this messageId right now. Do not ack; the source's retry
    /// will find it finished (or free again, if that worker failed).
    #[error("another worker is processing this message")]
    InFlight,
    /// A state store failed. Do not ack.
    #[error("{step} step: store failed")]
    Store {
        /// Which step.
        step: Step,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The operations were neither accepted nor dead-lettered. Do not ack.
    #[error("delivery step failed")]
    Delivery(#[source] DeliverError),
    /// The message cannot be mapped, now or ever. Ack it and keep it for a human.
    #[error("mapping step failed")]
    Mapping(#[source] MapError),
    /// A message without a messageId could not be serialised to derive its dedupe key. Ack it
    /// and keep it for a human.
    #[error("dedupe step: the message could not be serialised to derive its key")]
    Unkeyable(#[source] serde_json::Error),
    /// Not attempted, because an earlier message about the same person in the same batch
    /// failed and will be redelivered: processing this one now would overtake it. Do not ack.
    #[error("not attempted: an earlier message about the same person failed")]
    Blocked,
    /// A flow's own stage failed (e.g. the audience flow's segment look-up); the stage's error
    /// is the source and decided the [`Ack`].
    #[error("{stage} stage failed")]
    Stage {
        /// Which stage, e.g. `audience`.
        stage: &'static str,
        /// What the stage's error asked for.
        ack: Ack,
        /// The stage's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl PipelineError {
    /// Whether the source should redeliver the message (do not ack it). `false` for failures
    /// that would repeat on every retry. The same as `self.ack() == Ack::RetryLater`.
    pub fn is_retryable(&self) -> bool {
        self.ack().is_retry_later()
    }

    /// Wraps the error of a flow's own `stage`, keeping the ack it asks for.
    pub fn stage<E>(stage: &'static str, error: E) -> Self
    where
        E: AckRule + std::error::Error + Send + Sync + 'static,
    {
        PipelineError::Stage {
            stage,
            ack: error.ack(),
            source: Box::new(error),
        }
    }
}

impl AckRule for PipelineError {
    fn ack(&self) -> Ack {
        match self {
            PipelineError::Mapping(_) | PipelineError::Unkeyable(_) => Ack::Refuse,
            PipelineError::InFlight
            | PipelineError::Store { .. }
            | PipelineError::Delivery(_)
            | PipelineError::Blocked => Ack::RetryLater,
            PipelineError::Stage { ack, .. } => *ack,
        }
    }
}

/// One inbound message in, an [`Outcome`] out. Object safe; the futures are `Send`.
///
/// Pipelines compose: a host can wrap one (adding metrics, a filter, a second destination) by
/// implementing this trait around an `Arc<dyn Pipeline>`.
#[async_trait]
pub trait Pipeline: fmt::Debug + Send + Sync + 'static {
    /// Processes one message. See the [module docs](self) for what to do with the answer.
    async fn process(&self, message: &Message) -> Result<Outcome, PipelineError>;

    /// Processes many messages, concurrently across people and in input order for each person:
    /// messages sharing a userId, anonymousId, alias previousId or email (directly or through
    /// other messages of the batch) run one after the other. After a retryable failure, the
    /// rest of that person's messages are not attempted ([`PipelineError::Blocked`]). The
    /// answer has one result per message, in input order.
    async fn process_batch(&self, messages: Vec<Message>) -> Vec<Result<Outcome, PipelineError>> {
        batch::run(self, messages, DEFAULT_BATCH_CONCURRENCY).await
    }
}

#[async_trait]
impl<T: Pipeline + ?Sized> Pipeline for Arc<T> {
    async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
        (**self).process(message).await
    }

    async fn process_batch(&self, messages: Vec<Message>) -> Vec<Result<Outcome, PipelineError>> {
        (**self).process_batch(messages).await
    }
}

/// The ordering key for operations about `target`: the person's identifier kind and value
/// (`id:…`, `email:…`, `cio_id:…`), `anonymous_id:…`, or for a merge the primary's. `None` for
/// [`Target::Skip`].
pub fn ordering_key(target: &Target) -> Option<String> {
    match target {
        Target::Person { identifier, .. }
        | Target::Merge {
            primary: identifier,
            ..
        } => Some(format!("{}:{}", identifier.kind(), identifier.value())),
        Target::Anonymous { anonymous_id } => Some(format!("anonymous_id:{anonymous_id}")),
        _ => None,
    }
}

/// The namespace of derived dedupe keys. Fixed forever: changing it would let every
/// redelivered message without a messageId through once more.
const DERIVED_KEY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x2f6b_93c1_4e0a_5d8e_9a47_c3e1_0b5f_7d21);

/// The key the pipeline claims for `message`: its messageId, or, when it has none (or a blank
/// one), `derived:` + a UUID v5 of its JSON serialisation.
pub fn dedupe_key(message: &Message) -> Result<String, serde_json::Error> {
    match message.message_id() {
        Some(id) if !id.trim().is_empty() => Ok(id.to_owned()),
        _ => {
            let json = serde_json::to_vec(message)?;
            Ok(format!(
                "derived:{}",
                uuid::Uuid::new_v5(&DERIVED_KEY_NAMESPACE, &json)
            ))
        }
    }
}
