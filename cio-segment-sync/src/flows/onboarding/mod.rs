//! Flow 2: onboarding milestones.
//!
//! The host configures an ordered list of milestones, each a Segment `track` event name and a
//! key. When a person's milestone event arrives, [`OnboardingFlow`] writes to Customer.io, in
//! one delivery and in this order:
//!
//! 1. a person `identify` with `onboarding_<key>_at` = the event's time (Unix seconds: the
//!    message's `timestamp`, else `originalTimestamp`, else `receivedAt`, else the clock) and
//!    `onboarding_step` = the furthest milestone the person reached (its key, or its 1-based
//!    position with [`StepValue::Index`]);
//! 2. the event itself, mapped as the triggers flow maps it (same event id), so campaigns can
//!    branch on it — unless [`OnboardingConfig::forward_event`] is off.
//!
//! # Never backwards
//!
//! The furthest step of each person is kept in a [`ProgressStore`]. A milestone that arrives
//! late (an earlier milestone after a later one) or again still records its own
//! `onboarding_<key>_at`, but `onboarding_step` stays at the furthest milestone. A repeated
//! milestone sends its `_at` again with the repeated event's time (Customer.io keeps the last
//! value written).
//!
//! # The store follows Customer.io, never leads it
//!
//! The store is advanced only **after Customer.io accepted** the operations. A failed delivery
//! leaves it untouched and the message is released (not acked), so the retry computes the same
//! step again; a dead-lettered delivery leaves it untouched too. So the store never holds a
//! step Customer.io was not told.
//!
//! Reading the store, delivering and advancing is one critical section per person within a
//! process (a striped lock), so two milestones of one person processed at once cannot send
//! steps out of order. Across processes, route each person's messages to one worker at a time
//! (what per-person ordering needs anyway, e.g. a queue partitioned by userId); otherwise two
//! workers may each send a step computed before the other's advance.
//!
//! # Together with the triggers flow
//!
//! When the same stream also feeds [`SegmentToCustomerIo`](super::triggers::SegmentToCustomerIo),
//! give each flow its own deduper (the defaults are separate), and either deny the milestone
//! events in the triggers flow's mapping or turn [`OnboardingConfig::forward_event`] off here.
//! Sending the event from both is harmless (the same event id, which Customer.io counts once)
//! but wasteful.
//!
//! ```
//! use cio_segment_sync::flows::onboarding::OnboardingConfig;
//!
//! let config: OnboardingConfig = toml::from_str(r#"
//!     milestones = [
//!         { event = "Account Created", key = "account" },
//!         { event = "Project Created", key = "project" },
//!         { event = "Teammate Invited", key = "team" },
//!     ]
//! "#)?;
//! let milestones = config.validate()?;
//! assert_eq!(milestones.step_of("Project Created"), Some(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod store;

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use customerio_client::track::v2::{Operation, PersonIdentify, PersonOperation};
use segment_model::Message;
use serde_json::Value;

pub use config::{Milestone, Milestones, OnboardingConfig, OnboardingConfigError, StepValue};
pub use store::{Advance, MemoryProgressConfig, MemoryProgressStore, ProgressStore};

use super::forget::person_key;
use crate::dedupe::{Deduper, MemoryDeduper};
use crate::identity::{
    IdentityResolver, IdentityStore, MemoryIdentityStore, SkipReason, StoreResolver, Target,
};
use crate::loop_guard::{LoopGuard, StampingLoopGuard};
use crate::mapping::Mapped;
use crate::pipeline::{
    ConfigMapper, Deliver, Delivered, Guards, MapError, Mapper, Outcome, Pipeline, PipelineError,
    Step, ordering_key,
};

/// Number of per-person lock stripes of one flow.
const LOCK_STRIPES: usize = 64;

/// Flow 2: milestone events → attributes that never move backwards, plus the event. See the
/// [module docs](self). A [`Pipeline`]: every answer follows the
/// [pipeline's acking rule](crate::pipeline#acking-the-source).
///
/// Steps, as in [`SyncPipeline`](crate::pipeline::SyncPipeline): dedupe → loop guard →
/// identity → (progress read) → operations → delivery → progress advance and identity links.
///
/// Messages that are not milestone events are skipped with [`SkipReason::Filtered`] without
/// touching any store. An anonymous person has no profile to hold the attributes: skipped with
/// [`SkipReason::AnonymousNotAllowed`].
pub struct OnboardingFlow {
    config: OnboardingConfig,
    milestones: Milestones,
    guards: Guards,
    resolver: Arc<dyn IdentityResolver>,
    progress: Arc<dyn ProgressStore>,
    deliver: Arc<dyn Deliver>,
    mapper: ConfigMapper,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for OnboardingFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnboardingFlow")
            .field("config", &self.config)
            .field("guards", &self.guards)
            .field("resolver", &self.resolver)
            .field("progress", &self.progress)
            .field("deliver", &self.deliver)
            .finish_non_exhaustive()
    }
}

impl OnboardingFlow {
    /// A builder delivering through `deliver` (usually a
    /// [`DispatchDeliver`](crate::pipeline::DispatchDeliver)).
    pub fn builder(deliver: Arc<dyn Deliver>, config: OnboardingConfig) -> OnboardingFlowBuilder {
        OnboardingFlowBuilder {
            deliver,
            config,
            deduper: None,
            loop_guard: None,
            resolver: None,
            identity_store: None,
            progress: None,
        }
    }

    /// The validated milestones.
    pub fn milestones(&self) -> &Milestones {
        &self.milestones
    }

    /// The progress store.
    pub fn progress_store(&self) -> &Arc<dyn ProgressStore> {
        &self.progress
    }

    fn lock_for(&self, person: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        person.hash(&mut hasher);
        // `locks` has LOCK_STRIPES > 0 entries and the modulo keeps the index below that.
        let index = (hasher.finish() % LOCK_STRIPES as u64) as usize;
        &self.locks[index]
    }

    /// The step attribute's value for the 1-based `step`.
    fn step_value(&self, step: u32) -> Value {
        match (self.config.step_value, self.milestones.get(step)) {
            (StepValue::Key, Some(milestone)) => Value::from(milestone.key.clone()),
            _ => Value::from(step),
        }
    }

    /// The operations of milestone `step` for `identifier`, given the furthest step reached.
    fn operations(
        &self,
        message: &Message,
        target: &Target,
        step: u32,
        furthest: u32,
    ) -> Result<Vec<Operation>, MapError> {
        let Target::Person { identifier, .. } = target else {
            return Ok(Vec::new());
        };
        let key = self.milestones.get(step).map_or("", |m| m.key.as_str());
        let common = message.common();
        let at = common
            .timestamp
            .as_ref()
            .or(common.original_timestamp.as_ref())
            .or(common.received_at.as_ref())
            .map_or_else(
                || jiff::Timestamp::now().as_second(),
                |t| t.as_unix_seconds(),
            );
        let identify = PersonIdentify::new(identifier.clone())
            .and_then(|op| {
                op.with_attribute(format!("{}{key}_at", self.config.attribute_prefix), at)
            })
            .and_then(|op| {
                op.with_attribute(
                    self.config.step_attribute.clone(),
                    self.step_value(furthest),
                )
            })
            .map_err(MapError::new)?;
        let mut operations = vec![Operation::Person(PersonOperation::Identify(identify))];
        if self.config.forward_event {
            // The plain person target: the event is about the person, no stitching.
            let person = Target::Person {
                identifier: identifier.clone(),
                anonymous_id: None,
            };
            if let Mapped::Operations(event) = self.mapper.map(message, &person)? {
                operations.extend(event);
            }
        }
        Ok(operations)
    }

    /// The flow's stages, once the message is claimed and is not an echo.
    async fn run(&self, message: &Message, step: u32) -> Result<Outcome, PipelineError> {
        let target =
            self.resolver
                .resolve(message)
                .await
                .map_err(|source| PipelineError::Store {
                    step: Step::Identity,
                    source,
                })?;
        let identifier = match &target {
            Target::Person { identifier, .. } => identifier.clone(),
            Target::Skip(reason) => {
                return Ok(Outcome::Skipped(reason.clone()));
            }
            Target::Anonymous { .. } => {
                return Ok(Outcome::Skipped(SkipReason::AnonymousNotAllowed));
            }
            _ => {
                return Ok(Outcome::Skipped(SkipReason::NoIdentity));
            }
        };
        let person = person_key(&identifier);
        let ordering = ordering_key(&target).unwrap_or_default();
        let _guard = self.lock_for(person).lock().await;
        let stored = self.progress.get(person).await.map_err(progress_error)?;
        let furthest = stored.map_or(step, |stored| stored.max(step));
        let operations = self
            .operations(message, &target, step, furthest)
            .map_err(PipelineError::Mapping)?;
        match self
            .deliver
            .deliver(operations, &ordering)
            .await
            .map_err(PipelineError::Delivery)?
        {
            Delivered::Accepted => {
                self.progress
                    .advance(person, step)
                    .await
                    .map_err(progress_error)?;
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

/// A progress store failure, reported under the identity step (the per-person state step).
fn progress_error(source: crate::StoreError) -> PipelineError {
    PipelineError::Store {
        step: Step::Identity,
        source,
    }
}

#[async_trait]
impl Pipeline for OnboardingFlow {
    async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
        let step = match message {
            Message::Track(_) => message.event().and_then(|e| self.milestones.step_of(e)),
            _ => None,
        };
        let Some(step) = step else {
            return Ok(Outcome::Skipped(SkipReason::Filtered));
        };
        self.guards.run(message, || self.run(message, step)).await
    }
}

/// Builds an [`OnboardingFlow`]. Unset stores default to in-memory ones.
pub struct OnboardingFlowBuilder {
    deliver: Arc<dyn Deliver>,
    config: OnboardingConfig,
    deduper: Option<Arc<dyn Deduper>>,
    loop_guard: Option<Arc<dyn LoopGuard>>,
    resolver: Option<Arc<dyn IdentityResolver>>,
    identity_store: Option<Arc<dyn IdentityStore>>,
    progress: Option<Arc<dyn ProgressStore>>,
}

impl fmt::Debug for OnboardingFlowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnboardingFlowBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OnboardingFlowBuilder {
    /// The deduper (default: an in-memory one of this flow's own).
    pub fn deduper(mut self, deduper: Arc<dyn Deduper>) -> Self {
        self.deduper = Some(deduper);
        self
    }

    /// The loop guard (default: a stamping guard with an in-memory id list); share the
    /// back-sync's so milestone events this library wrote into Segment are not sent back.
    pub fn loop_guard(mut self, loop_guard: Arc<dyn LoopGuard>) -> Self {
        self.loop_guard = Some(loop_guard);
        self
    }

    /// The identity store of the default resolver (default: in memory); share the triggers
    /// flow's so anonymous activity resolves the same way.
    pub fn identity_store(mut self, store: Arc<dyn IdentityStore>) -> Self {
        self.identity_store = Some(store);
        self
    }

    /// A resolver of the host's own, replacing the default one.
    pub fn resolver(mut self, resolver: Arc<dyn IdentityResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The progress store (default: [`MemoryProgressStore::default`]).
    pub fn progress_store(mut self, store: Arc<dyn ProgressStore>) -> Self {
        self.progress = Some(store);
        self
    }

    /// The flow, or why the configuration cannot work.
    pub fn build(self) -> Result<OnboardingFlow, OnboardingConfigError> {
        let milestones = self.config.validate()?;
        let resolver = self.resolver.unwrap_or_else(|| {
            Arc::new(StoreResolver::new(
                self.identity_store
                    .unwrap_or_else(|| Arc::new(MemoryIdentityStore::default())),
                self.config.resolver.into(),
            ))
        });
        let lease = Duration::from_secs(self.config.lease_seconds);
        Ok(OnboardingFlow {
            mapper: ConfigMapper::new(self.config.mapping.clone()),
            config: self.config,
            milestones,
            guards: Guards::new(
                self.deduper
                    .unwrap_or_else(|| Arc::new(MemoryDeduper::default())),
                self.loop_guard
                    .unwrap_or_else(|| Arc::new(StampingLoopGuard::default())),
                lease,
            ),
            resolver,
            progress: self
                .progress
                .unwrap_or_else(|| Arc::new(MemoryProgressStore::default())),
            deliver: self.deliver,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::pipeline::DeliverError;

    /// Accepts everything after yielding once, and records each delivery's step attribute.
    #[derive(Debug, Default)]
    struct Recording(Mutex<Vec<Value>>);

    #[async_trait]
    impl Deliver for Recording {
        async fn deliver(
            &self,
            operations: Vec<Operation>,
            _: &str,
        ) -> Result<Delivered, DeliverError> {
            tokio::task::yield_now().await;
            let json = serde_json::to_value(&operations).map_err(DeliverError::new)?;
            self.0
                .lock()
                .unwrap()
                .push(json[0]["attributes"]["onboarding_step"].clone());
            Ok(Delivered::Accepted)
        }
    }

    fn milestone_message(message_id: &str, event: &str) -> Message {
        Message::from_value(serde_json::json!({
            "type": "track", "messageId": message_id, "userId": "u-1", "event": event,
            "timestamp": "2024-05-01T10:00:00Z"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn concurrent_milestones_of_one_person_never_send_a_lower_step_later() {
        let deliver = Arc::new(Recording::default());
        let flow = OnboardingFlow::builder(deliver.clone(), config(&[("A", "a"), ("B", "b")]))
            .build()
            .unwrap();
        // Polled in this order on one task: without the per-person lock both would read "no
        // progress" before either advanced, and "a" would be sent after "b".
        let (b, a) = (milestone_message("m-b", "B"), milestone_message("m-a", "A"));
        let (later, earlier) = tokio::join!(flow.process(&b), flow.process(&a));
        assert_eq!(later.unwrap(), Outcome::Delivered);
        assert_eq!(earlier.unwrap(), Outcome::Delivered);
        assert_eq!(
            *deliver.0.lock().unwrap(),
            vec![Value::from("b"), Value::from("b")]
        );
    }

    fn config(milestones: &[(&str, &str)]) -> OnboardingConfig {
        OnboardingConfig {
            milestones: milestones
                .iter()
                .map(|(event, key)| Milestone::new(*event, *key))
                .collect(),
            ..OnboardingConfig::default()
        }
    }

    #[tokio::test]
    async fn a_milestone_this_library_wrote_is_an_echo_and_not_sent() {
        let deliver = Arc::new(Recording::default());
        let guard = Arc::new(StampingLoopGuard::default());
        let progress = Arc::new(MemoryProgressStore::default());
        let flow = OnboardingFlow::builder(deliver.clone(), config(&[("A", "a")]))
            .loop_guard(guard.clone())
            .progress_store(progress.clone())
            .build()
            .unwrap();
        // Stamped by a guard of another deployment: recognised by the stamp alone.
        let mut echo = milestone_message("m-echo", "A");
        StampingLoopGuard::default().stamp(&mut echo).await.unwrap();
        assert_eq!(
            flow.process(&echo).await.unwrap(),
            Outcome::Skipped(SkipReason::OwnEcho)
        );
        assert!(deliver.0.lock().unwrap().is_empty());
        assert_eq!(progress.get("u-1").await.unwrap(), None);
    }
}
