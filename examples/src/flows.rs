//! The Segment → Customer.io flows a [`SyncConfig`] turns on, composed once and shared by the
//! quickstart and the webhook server.
//!
//! [`SegmentFlows::route`] sends each message to exactly one flow:
//!
//! 1. with an `[audience]` section, an Engage audience enter/exit goes to [`AudienceSync`]
//!    (manual segment add/remove);
//! 2. with an `[onboarding]` section, a milestone event goes to [`OnboardingFlow`] (which also
//!    forwards the event itself unless `forward_event = false`);
//! 3. everything else goes to [`SegmentToCustomerIo`], deletions included: a `delete`, a
//!    `User Deleted` or a `User Suppressed` reaches Customer.io as a person delete/suppress,
//!    and once accepted the person is forgotten in every store of [`Stores`].
//!
//! The flows share one [`Stores`] (in memory, or on Redis for several workers), one dead-letter
//! sink and one Track API rate limiter. [`SegmentFlowsBuilder::build`] returns the dispatchers'
//! workers for the host to run.
//!
//! ```
//! use customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
//! use examples::config::SyncConfig;
//! use examples::dry_run::DrySink;
//! use examples::flows::{FlowName, FlowResult, SegmentFlows, Stores};
//! use segment_model::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = DrySink::start().await?;
//! let client = TrackClient::new(
//!     SiteId::new("site"),
//!     TrackApiKey::new("key"),
//!     ClientConfig::new(Region::Us).with_track_base_url(sink.base_url())?,
//! )?;
//! let mut config = SyncConfig::from_toml_str(
//!     "[onboarding]\nmilestones = [{ event = \"Signed Up\", key = \"signed_up\" }]",
//!     "inline",
//! )?;
//! config.triggers.dispatcher.linger_ms = Some(1);
//! let built = SegmentFlows::builder(client, &config)
//!     .stores(Stores::memory())
//!     .build()?;
//! for worker in built.workers {
//!     tokio::spawn(worker);
//! }
//! let flows = built.flows;
//! let milestone = Message::from_str(
//!     r#"{"type":"track","messageId":"m-1","userId":"u-1","event":"Signed Up"}"#,
//! )?;
//! assert_eq!(flows.route(&milestone), FlowName::Onboarding);
//! assert_eq!(flows.process(&milestone).await, (FlowName::Onboarding, FlowResult::Delivered));
//! flows.shutdown().await;
//! assert_eq!(sink.take()[0].path, "/api/v2/batch");
//! # Ok(()) }
//! ```

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use cio_segment_sync::StoreError;
use cio_segment_sync::activity::{ActivityStore, MemoryActivityStore};
use cio_segment_sync::customerio_client::limits::TRACK_REQUESTS_PER_SECOND_FAIR_USE;
use cio_segment_sync::customerio_client::{AppClient, TrackClient};
use cio_segment_sync::dead_letter::DeadLetterSink;
use cio_segment_sync::dedupe::{Deduper, MemoryDeduper};
use cio_segment_sync::dispatch::sinks::{CustomerIoBatchSink, ManualSegmentSink};
use cio_segment_sync::dispatch::{Dispatcher, DispatcherHandle, Worker};
use cio_segment_sync::flows::audience::{
    AudienceSync, AudienceSyncError, MembershipStore, MemoryMembershipStore,
};
use cio_segment_sync::flows::forget::{ForgetActivity, ForgetMemberships, ForgetProgress};
use cio_segment_sync::flows::onboarding::{
    MemoryProgressStore, OnboardingConfigError, OnboardingFlow, ProgressStore,
};
use cio_segment_sync::flows::triggers::SegmentToCustomerIo;
use cio_segment_sync::identity::{
    IdentityResolver, IdentityStore, MemoryIdentityStore, StoreResolver,
};
use cio_segment_sync::loop_guard::{
    LoopGuard, LoopGuardConfig, MemoryRecentIds, RecentIds, RedisRecentIds, StampingLoopGuard,
};
use cio_segment_sync::pipeline::{
    DispatchDeliver, Outcome, Pipeline, PipelineError, in_person_order,
};
use cio_segment_sync::rate_limit::{GovernorLimiter, RateLimiter};
use cio_segment_sync::redis::{
    RedisActivityStore, RedisConfig, RedisDeduper, RedisIdentityStore, RedisMembershipStore,
    RedisProgressStore, RedisRateLimiter,
};
use segment_model::Message;

use crate::config::SyncConfig;

/// The stores every flow shares: in memory for one process, or on Redis so several workers
/// behave as one.
#[derive(Clone)]
#[non_exhaustive]
pub struct Stores {
    /// Claims on messageIds and event ids.
    pub deduper: Arc<dyn Deduper>,
    /// Identity links (anonymousId / userId / email → person).
    pub identity: Arc<dyn IdentityStore>,
    /// Last activity per person (churn).
    pub activity: Arc<dyn ActivityStore>,
    /// The loop guard's recently written ids.
    pub recent_ids: Arc<dyn RecentIds>,
    /// Onboarding progress.
    pub progress: Arc<dyn ProgressStore>,
    /// Audience memberships.
    pub memberships: Arc<dyn MembershipStore>,
    /// Every Track API request takes a token here (Customer.io's fair-use rate, 100/s).
    pub track_limiter: Arc<dyn RateLimiter>,
    /// Every Segment Tracking API request of the back-sync takes a token here (Segment's
    /// recommended ceiling, 1000/s).
    pub segment_limiter: Arc<dyn RateLimiter>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only trait objects inside; their contents are personal data.
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

fn track_rate() -> NonZeroU32 {
    NonZeroU32::new(TRACK_REQUESTS_PER_SECOND_FAIR_USE).unwrap_or(NonZeroU32::MIN)
}

fn segment_rate() -> NonZeroU32 {
    NonZeroU32::new(segment_model::client::tracking::REQUESTS_PER_SECOND_RECOMMENDED)
        .unwrap_or(NonZeroU32::MIN)
}

impl Stores {
    /// Bounded in-memory stores with the library's defaults.
    pub fn memory() -> Self {
        Self {
            deduper: Arc::new(MemoryDeduper::default()),
            identity: Arc::new(MemoryIdentityStore::default()),
            activity: Arc::new(MemoryActivityStore::default()),
            recent_ids: Arc::new(MemoryRecentIds::default()),
            progress: Arc::new(MemoryProgressStore::default()),
            memberships: Arc::new(MemoryMembershipStore::default()),
            track_limiter: Arc::new(GovernorLimiter::per_second(track_rate())),
            segment_limiter: Arc::new(GovernorLimiter::per_second(segment_rate())),
        }
    }

    /// Every store on the Redis `config` points at, and the Track and Segment API limits shared
    /// through it (so the rates hold for all workers together).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn redis(config: &RedisConfig) -> Result<Self, StoreError> {
        let conn = config.connect().await?;
        Ok(Self {
            deduper: Arc::new(RedisDeduper::new(conn.clone())),
            identity: Arc::new(RedisIdentityStore::new(conn.clone())),
            activity: Arc::new(RedisActivityStore::new(conn.clone())),
            recent_ids: Arc::new(RedisRecentIds::new(conn.clone())),
            progress: Arc::new(RedisProgressStore::new(conn.clone())),
            memberships: Arc::new(RedisMembershipStore::new(conn.clone())),
            track_limiter: Arc::new(RedisRateLimiter::new(
                conn.clone(),
                "track-api",
                track_rate(),
                Duration::from_secs(1),
            )),
            segment_limiter: Arc::new(RedisRateLimiter::new(
                conn,
                "segment-tracking-api",
                segment_rate(),
                Duration::from_secs(1),
            )),
        })
    }
}

/// Which flow a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowName {
    /// [`SegmentToCustomerIo`]: triggers, profile enrichment and deletions.
    Triggers,
    /// [`OnboardingFlow`].
    Onboarding,
    /// [`AudienceSync`].
    Audience,
}

impl FlowName {
    /// `triggers`, `onboarding` or `audience`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowName::Triggers => "triggers",
            FlowName::Onboarding => "onboarding",
            FlowName::Audience => "audience",
        }
    }
}

impl fmt::Display for FlowName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a flow finished one message, the same shape for every flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowResult {
    /// Customer.io accepted everything: ack the source.
    Delivered,
    /// Nothing had to be sent, and why: ack the source.
    Skipped(String),
    /// Given up and recorded as a dead letter, and why: ack the source.
    DeadLettered(String),
    /// Not finished. `retryable`: the source should redeliver it (do not ack); otherwise it
    /// would fail the same way every time.
    Failed {
        /// Whether a redelivery can succeed.
        retryable: bool,
        /// The error and its sources (this workspace's errors name no customer data).
        message: String,
    },
}

impl FlowResult {
    /// Whether the source may forget the message (everything but a retryable failure).
    pub fn is_finished(&self) -> bool {
        !matches!(
            self,
            FlowResult::Failed {
                retryable: true,
                ..
            }
        )
    }

    fn from_pipeline(result: Result<Outcome, PipelineError>) -> Self {
        match result {
            Ok(Outcome::Delivered) => FlowResult::Delivered,
            Ok(Outcome::Skipped(reason)) => FlowResult::Skipped(reason.to_string()),
            Ok(Outcome::DeadLettered(reason)) => {
                FlowResult::DeadLettered(reason.label().to_owned())
            }
            Ok(other) => FlowResult::Skipped(format!("{other:?}")),
            Err(error) => FlowResult::Failed {
                retryable: error.is_retryable(),
                message: with_sources(&error),
            },
        }
    }

    fn from_audience(result: Result<Outcome, AudienceSyncError>) -> Self {
        match result {
            Err(error) => FlowResult::Failed {
                retryable: error.is_retryable(),
                message: with_sources(&error),
            },
            Ok(outcome) => Self::from_pipeline(Ok(outcome)),
        }
    }
}

/// `error` and its sources, joined by `: ` (errors of this workspace name no customer data).
pub fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A flow section of the configuration cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowsError {
    /// `[onboarding]` is not usable.
    #[error("section `[onboarding]`")]
    Onboarding(#[from] OnboardingConfigError),
    /// `[audience]` sets `create_missing` but no App API client was given (`CIO_APP_API_KEY`).
    #[error("section `[audience]`: `create_missing = true` needs CIO_APP_API_KEY")]
    AudienceNeedsAppApi,
}

/// The Segment → Customer.io flows. See the [module docs](self).
pub struct SegmentFlows {
    triggers: Arc<SegmentToCustomerIo>,
    onboarding: Option<Arc<OnboardingFlow>>,
    audience: Option<Arc<AudienceSync>>,
    segments: Option<DispatcherHandle<ManualSegmentSink>>,
}

impl fmt::Debug for SegmentFlows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentFlows")
            .field("triggers", &self.triggers)
            .field("onboarding", &self.onboarding.is_some())
            .field("audience", &self.audience.is_some())
            .finish_non_exhaustive()
    }
}

impl From<Arc<SegmentToCustomerIo>> for SegmentFlows {
    /// Only the triggers flow.
    fn from(triggers: Arc<SegmentToCustomerIo>) -> Self {
        Self {
            triggers,
            onboarding: None,
            audience: None,
            segments: None,
        }
    }
}

impl SegmentFlows {
    /// A builder writing through `client` with the flows `config` turns on.
    pub fn builder(client: TrackClient, config: &SyncConfig) -> SegmentFlowsBuilder {
        SegmentFlowsBuilder {
            client,
            config: config.clone(),
            stores: None,
            dead_letters: None,
            resolver: None,
            app: None,
        }
    }

    /// The flow `message` goes to.
    pub fn route(&self, message: &Message) -> FlowName {
        if let Some(audience) = &self.audience
            && audience.is_audience_change(message)
        {
            return FlowName::Audience;
        }
        if let Some(onboarding) = &self.onboarding
            && message
                .event()
                .is_some_and(|event| onboarding.milestones().step_of(event).is_some())
        {
            return FlowName::Onboarding;
        }
        FlowName::Triggers
    }

    /// Runs `message` through its flow and waits until it is finished.
    pub async fn process(&self, message: &Message) -> (FlowName, FlowResult) {
        let flow = self.route(message);
        (flow, self.process_in(flow, message).await)
    }

    async fn process_in(&self, flow: FlowName, message: &Message) -> FlowResult {
        match (flow, &self.audience, &self.onboarding) {
            (FlowName::Audience, Some(audience), _) => {
                FlowResult::from_audience(audience.handle(message).await)
            }
            (FlowName::Onboarding, _, Some(onboarding)) => {
                FlowResult::from_pipeline(onboarding.process(message).await)
            }
            _ => FlowResult::from_pipeline(self.triggers.process(message).await),
        }
    }

    /// Runs a batch. Each person's messages (tied by userId, anonymousId, alias previousId or
    /// email) go one after the other in input order whatever flow each is routed to, and
    /// different people run concurrently (`[triggers] batch_concurrency` at once). After a
    /// retryable failure the rest of that person's messages are not attempted (a retryable
    /// `Failed` saying so), so nothing overtakes a message the source will redeliver. One result
    /// per message, in order.
    pub async fn process_batch(&self, messages: Vec<Message>) -> Vec<(FlowName, FlowResult)> {
        let results = in_person_order(
            &messages,
            self.triggers.pipeline().config().batch_concurrency.get(),
            |message| self.process(message),
            |(_, result)| !result.is_finished(),
        )
        .await;
        messages
            .iter()
            .zip(results)
            .map(|(message, result)| {
                result.unwrap_or_else(|| {
                    (
                        self.route(message),
                        FlowResult::Failed {
                            retryable: true,
                            message: "not attempted: an earlier message of the same person \
                                      must be retried first"
                                .to_owned(),
                        },
                    )
                })
            })
            .collect()
    }

    /// The flows that are on, e.g. `triggers, onboarding, audience`.
    pub fn describe(&self) -> String {
        let mut names = vec![FlowName::Triggers.as_str()];
        if self.onboarding.is_some() {
            names.push(FlowName::Onboarding.as_str());
        }
        if self.audience.is_some() {
            names.push(FlowName::Audience.as_str());
        }
        names.join(", ")
    }

    /// The triggers flow (its pipeline stats and Customer.io dispatcher).
    pub fn triggers(&self) -> &SegmentToCustomerIo {
        &self.triggers
    }

    /// The onboarding flow, when configured.
    pub fn onboarding(&self) -> Option<&OnboardingFlow> {
        self.onboarding.as_deref()
    }

    /// The manual-segment dispatcher of the audience flow, when configured.
    pub fn segments(&self) -> Option<&DispatcherHandle<ManualSegmentSink>> {
        self.segments.as_ref()
    }

    /// Sends everything the dispatchers hold and stops them.
    pub async fn shutdown(&self) {
        self.triggers.shutdown().await;
        if let Some(segments) = &self.segments {
            segments.shutdown().await;
        }
    }
}

/// Builds [`SegmentFlows`].
pub struct SegmentFlowsBuilder {
    client: TrackClient,
    config: SyncConfig,
    stores: Option<Stores>,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    resolver: Option<Arc<dyn IdentityResolver>>,
    app: Option<AppClient>,
}

impl fmt::Debug for SegmentFlowsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentFlowsBuilder")
            .field("client", &self.client)
            .field("stores", &self.stores)
            .finish_non_exhaustive()
    }
}

/// What [`SegmentFlowsBuilder::build`] hands back.
#[derive(Debug)]
#[non_exhaustive]
pub struct BuiltFlows {
    /// The flows.
    pub flows: SegmentFlows,
    /// The identity resolver the flows use (the churn monitor needs it to find whose activity a
    /// message is).
    pub resolver: Arc<dyn IdentityResolver>,
    /// The loop guard the triggers flow uses (share it with the back-sync).
    pub loop_guard: Arc<dyn LoopGuard>,
    /// The dispatchers' workers: the host runs each (`tokio::spawn`).
    pub workers: Vec<Worker>,
}

impl SegmentFlowsBuilder {
    /// The stores (default [`Stores::memory`]).
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Where given-up operations go (default: the library's in-memory list).
    pub fn dead_letters(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// Replaces the default identity resolver (a [`StoreResolver`] over the identity store
    /// with `[triggers.resolver]`) of the triggers and onboarding flows.
    pub fn resolver(mut self, resolver: Arc<dyn IdentityResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The App API client the audience flow creates missing segments with
    /// (`create_missing = true`).
    pub fn app_client(mut self, client: AppClient) -> Self {
        self.app = Some(client);
        self
    }

    /// The flows and the workers the host must run.
    ///
    /// # Errors
    ///
    /// [`FlowsError`] naming the section that cannot be built.
    pub fn build(self) -> Result<BuiltFlows, FlowsError> {
        let Self {
            client,
            config,
            stores,
            dead_letters,
            resolver,
            app,
        } = self;
        let stores = stores.unwrap_or_else(Stores::memory);
        let dead_letters: Arc<dyn DeadLetterSink> = dead_letters.unwrap_or_else(|| {
            Arc::new(cio_segment_sync::dead_letter::MemoryDeadLetters::new(
                10_000,
            ))
        });
        let resolver: Arc<dyn IdentityResolver> = resolver.unwrap_or_else(|| {
            Arc::new(StoreResolver::new(
                stores.identity.clone(),
                config.triggers.resolver.into(),
            ))
        });
        let loop_guard: Arc<dyn LoopGuard> = Arc::new(StampingLoopGuard::new(
            stores.recent_ids.clone(),
            LoopGuardConfig::default(),
        ));
        let (triggers, triggers_worker) =
            SegmentToCustomerIo::builder(client.clone(), config.triggers.clone())
                .deduper(stores.deduper.clone())
                .loop_guard(loop_guard.clone())
                .resolver(resolver.clone())
                .rate_limiter(stores.track_limiter.clone())
                .dead_letters(dead_letters.clone())
                .forget_in(Arc::new(ForgetActivity(stores.activity.clone())))
                .forget_in(Arc::new(ForgetProgress(stores.progress.clone())))
                .forget_in(Arc::new(ForgetMemberships(stores.memberships.clone())))
                .build();
        let mut workers = vec![triggers_worker];
        let onboarding = match &config.onboarding {
            None => None,
            Some(onboarding) => {
                let deliver = Arc::new(DispatchDeliver::<CustomerIoBatchSink>::new(
                    triggers.dispatcher().clone(),
                    dead_letters.clone(),
                ));
                let flow = OnboardingFlow::builder(deliver, onboarding.clone())
                    .deduper(stores.deduper.clone())
                    .loop_guard(loop_guard.clone())
                    .resolver(resolver.clone())
                    .progress_store(stores.progress.clone())
                    .build()?;
                Some(Arc::new(flow))
            }
        };
        let (audience, segments) = match &config.audience {
            None => (None, None),
            Some(audience) => {
                let (segments, worker) = Dispatcher::new(
                    ManualSegmentSink::new(client),
                    config.triggers.dispatcher.to_config(),
                    stores.track_limiter.clone(),
                    dead_letters.clone(),
                );
                workers.push(worker);
                let mut sync = AudienceSync::new(
                    audience.clone(),
                    stores.memberships.clone(),
                    segments.clone(),
                )
                .with_attribute_dispatcher(triggers.dispatcher().clone());
                match app {
                    Some(app) => sync = sync.with_app_client_default_limit(app),
                    None if audience.create_missing => {
                        return Err(FlowsError::AudienceNeedsAppApi);
                    }
                    None => {}
                }
                (Some(Arc::new(sync)), Some(segments))
            }
        };
        Ok(BuiltFlows {
            flows: SegmentFlows {
                triggers: Arc::new(triggers),
                onboarding,
                audience,
                segments,
            },
            resolver,
            loop_guard,
            workers,
        })
    }
}
