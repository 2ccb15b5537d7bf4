//! [`SegmentRouter`]: every Segment → Customer.io flow behind one [`Pipeline`].
//!
//! The router decides once where a message goes and hands it to that flow:
//!
//! 1. with an audience flow, an Engage audience enter/exit goes to it ([`Route::Audience`]:
//!    manual segment add/remove);
//! 2. with an onboarding flow, a milestone event goes to it ([`Route::Onboarding`], which also
//!    forwards the event itself unless configured not to);
//! 3. everything else goes to the triggers flow ([`Route::Triggers`]: events, profile upserts,
//!    merges, and deletions, which forget the person in every store).
//!
//! Every flow runs behind the same dedupe → loop guard front ([`Guards`](crate::pipeline::Guards))
//! and answers in the crate's one shape ([`Outcome`] or a [`PipelineError`] with its
//! [`Ack`](crate::outcome::Ack)), so the router is itself a [`Pipeline`]: a host hands it to an
//! HTTP endpoint, a queue consumer or a replay the same way as a single flow.
//!
//! [`Pipeline::process_batch`] keeps each person's order across flows: messages tied by userId,
//! anonymousId, alias previousId or email run one after the other in input order whatever flow
//! each is routed to, different people run concurrently, and after a retryable failure the rest
//! of that person's messages are not attempted ([`PipelineError::Blocked`]).
//!
//! With a churn monitor attached ([`SegmentRouter::with_churn`]), every delivered message is
//! also recorded as the person's activity (best effort: a failure is logged and does not change
//! the answer, since the message itself was delivered).
//!
//! # Counters
//!
//! [`SegmentRouter::stats`] counts answers per route. With the `metrics` feature every answer is
//! also counted as `cio_segment_sync_messages_total{flow, outcome}` (outcome: `delivered`,
//! `skipped`, `dead_lettered`, `retry_later`, `refused`) and its duration observed in the
//! histogram `cio_segment_sync_message_duration_seconds{flow}` through the `metrics` facade,
//! `flow` being the [`Route`]; the library installs no recorder. The engagement and backfill
//! flows report under the same names: see [`flows::metrics`](super::metrics).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use segment_model::Message;

use super::audience::AudienceSync;
use super::churn::ChurnMonitor;
use super::metrics::record_answer;
use super::onboarding::OnboardingFlow;
use super::triggers::SegmentToCustomerIo;
use crate::identity::IdentityResolver;
use crate::outcome::{Outcome, answer_label, describe};
use crate::pipeline::{DEFAULT_BATCH_CONCURRENCY, Pipeline, PipelineError, in_person_order};

/// Which flow a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// The triggers flow: events, profile upserts, merges and deletions.
    Triggers,
    /// The onboarding flow: milestone events.
    Onboarding,
    /// The audience flow: Engage audience enter/exit.
    Audience,
}

impl Route {
    /// Every route, in a fixed order.
    pub const ALL: [Route; 3] = [Route::Triggers, Route::Onboarding, Route::Audience];

    /// `triggers`, `onboarding` or `audience` (also the `flow` label of the metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Triggers => "triggers",
            Route::Onboarding => "onboarding",
            Route::Audience => "audience",
        }
    }

    fn index(self) -> usize {
        match self {
            Route::Triggers => 0,
            Route::Onboarding => 1,
            Route::Audience => 2,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How answers ended, for one route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteStats {
    /// [`Outcome::Delivered`].
    pub delivered: u64,
    /// [`Outcome::Skipped`].
    pub skipped: u64,
    /// [`Outcome::DeadLettered`].
    pub dead_lettered: u64,
    /// Errors asking for a redelivery ([`Ack::RetryLater`](crate::outcome::Ack::RetryLater)).
    pub retry_later: u64,
    /// Errors refusing the message ([`Ack::Refuse`](crate::outcome::Ack::Refuse)).
    pub refused: u64,
}

/// A snapshot of a [`SegmentRouter`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouterStats {
    /// The triggers flow.
    pub triggers: RouteStats,
    /// The onboarding flow.
    pub onboarding: RouteStats,
    /// The audience flow.
    pub audience: RouteStats,
}

impl RouterStats {
    /// The counts of `route`.
    pub fn of(&self, route: Route) -> RouteStats {
        match route {
            Route::Triggers => self.triggers,
            Route::Onboarding => self.onboarding,
            Route::Audience => self.audience,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    /// [route][delivered, skipped, dead_lettered, retry_later, refused]
    counts: [[AtomicU64; 5]; 3],
}

impl Counters {
    fn record(&self, route: Route, result: &Result<Outcome, PipelineError>) {
        let column = match answer_label(result) {
            "delivered" => 0,
            "skipped" => 1,
            "dead_lettered" => 2,
            "retry_later" => 3,
            _ => 4,
        };
        self.counts[route.index()][column].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RouterStats {
        let of = |route: Route| {
            let row = &self.counts[route.index()];
            let get = |i: usize| row[i].load(Ordering::Relaxed);
            RouteStats {
                delivered: get(0),
                skipped: get(1),
                dead_lettered: get(2),
                retry_later: get(3),
                refused: get(4),
            }
        };
        RouterStats {
            triggers: of(Route::Triggers),
            onboarding: of(Route::Onboarding),
            audience: of(Route::Audience),
        }
    }
}

#[derive(Clone)]
struct ChurnHook {
    monitor: Arc<ChurnMonitor>,
    resolver: Arc<dyn IdentityResolver>,
}

impl ChurnHook {
    /// Records a delivered message as activity; failures are logged (the message is
    /// delivered either way).
    async fn observe(&self, message: &Message) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let result = match self.resolver.resolve(message).await {
            Ok(target) => self
                .monitor
                .observe(message, &target, now)
                .await
                .map(drop)
                .map_err(|error| describe(&error)),
            Err(error) => Err(describe(&error)),
        };
        if let Err(error) = result {
            tracing::warn!(error = %error, "Could not record a delivered message as activity.");
        }
    }
}

/// Every Segment → Customer.io flow behind one [`Pipeline`]. See the [module docs](self).
///
/// Built by [`SyncBuilder`](crate::builder::SyncBuilder) from a
/// [`SyncConfig`](crate::config::SyncConfig), or by hand:
///
/// ```no_run
/// use std::sync::Arc;
/// use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
/// use cio_segment_sync::flows::router::SegmentRouter;
/// use cio_segment_sync::flows::triggers::{SegmentToCustomerIo, TriggersConfig};
/// use cio_segment_sync::pipeline::Pipeline;
///
/// # async fn run(message: cio_segment_sync::segment_model::Message) -> Result<(), Box<dyn std::error::Error>> {
/// let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), ClientConfig::new(Region::Us))?;
/// let (triggers, worker) = SegmentToCustomerIo::new(client, TriggersConfig::default());
/// tokio::spawn(worker);
/// let router = SegmentRouter::new(Arc::new(triggers));
/// let outcome = router.process(&message).await?;
/// # let _ = outcome; Ok(()) }
/// ```
pub struct SegmentRouter {
    triggers: Arc<SegmentToCustomerIo>,
    onboarding: Option<Arc<OnboardingFlow>>,
    audience: Option<Arc<AudienceSync>>,
    churn: Option<ChurnHook>,
    batch_concurrency: usize,
    counters: Counters,
}

impl fmt::Debug for SegmentRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentRouter")
            .field("routes", &self.routes())
            .field("churn", &self.churn.is_some())
            .field("batch_concurrency", &self.batch_concurrency)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SegmentRouter {
    /// A router with only the triggers flow; every message goes to it. Batches run
    /// [`DEFAULT_BATCH_CONCURRENCY`] people at once.
    pub fn new(triggers: Arc<SegmentToCustomerIo>) -> Self {
        Self {
            triggers,
            onboarding: None,
            audience: None,
            churn: None,
            batch_concurrency: DEFAULT_BATCH_CONCURRENCY,
            counters: Counters::default(),
        }
    }

    /// Routes milestone events to `flow`.
    pub fn with_onboarding(mut self, flow: Arc<OnboardingFlow>) -> Self {
        self.onboarding = Some(flow);
        self
    }

    /// Routes Engage audience changes to `flow`.
    pub fn with_audience(mut self, flow: Arc<AudienceSync>) -> Self {
        self.audience = Some(flow);
        self
    }

    /// Records every delivered message as activity in `monitor`, finding the person with
    /// `resolver` (share the flows' resolver).
    pub fn with_churn(
        mut self,
        monitor: Arc<ChurnMonitor>,
        resolver: Arc<dyn IdentityResolver>,
    ) -> Self {
        self.churn = Some(ChurnHook { monitor, resolver });
        self
    }

    /// How many people a batch runs at once (at least 1: `groups` is a `NonZeroUsize`).
    pub fn with_batch_concurrency(mut self, groups: std::num::NonZeroUsize) -> Self {
        self.batch_concurrency = groups.get();
        self
    }

    /// The route `message` takes.
    pub fn route(&self, message: &Message) -> Route {
        if let Some(audience) = &self.audience
            && audience.is_audience_change(message)
        {
            return Route::Audience;
        }
        if let Some(onboarding) = &self.onboarding
            && message
                .event()
                .is_some_and(|event| onboarding.milestones().step_of(event).is_some())
        {
            return Route::Onboarding;
        }
        Route::Triggers
    }

    /// The routes that are on, triggers first.
    pub fn routes(&self) -> Vec<Route> {
        let mut routes = vec![Route::Triggers];
        if self.onboarding.is_some() {
            routes.push(Route::Onboarding);
        }
        if self.audience.is_some() {
            routes.push(Route::Audience);
        }
        routes
    }

    /// Processes `message` and says which route it took.
    pub async fn process_routed(
        &self,
        message: &Message,
    ) -> (Route, Result<Outcome, PipelineError>) {
        let route = self.route(message);
        let started = Instant::now();
        let result = match (route, &self.onboarding, &self.audience) {
            (Route::Audience, _, Some(audience)) => audience.process(message).await,
            (Route::Onboarding, Some(onboarding), _) => onboarding.process(message).await,
            _ => self.triggers.process(message).await,
        };
        self.counters.record(route, &result);
        record_answer(route.as_str(), &result, started);
        if let (Some(churn), Ok(Outcome::Delivered)) = (&self.churn, &result) {
            churn.observe(message).await;
        }
        (route, result)
    }

    /// A batch, each answer with its route: see [`Pipeline::process_batch`].
    pub async fn process_batch_routed(
        &self,
        messages: &[Message],
    ) -> Vec<(Route, Result<Outcome, PipelineError>)> {
        let results = in_person_order(
            messages,
            self.batch_concurrency,
            |message| self.process_routed(message),
            |(_, result)| result.as_ref().is_err_and(PipelineError::is_retryable),
        )
        .await;
        messages
            .iter()
            .zip(results)
            .map(|(message, result)| {
                result.unwrap_or_else(|| {
                    let route = self.route(message);
                    let blocked = Err(PipelineError::Blocked);
                    self.counters.record(route, &blocked);
                    (route, blocked)
                })
            })
            .collect()
    }

    /// The triggers flow.
    pub fn triggers(&self) -> &SegmentToCustomerIo {
        &self.triggers
    }

    /// The onboarding flow, when routed to.
    pub fn onboarding(&self) -> Option<&OnboardingFlow> {
        self.onboarding.as_deref()
    }

    /// The audience flow, when routed to.
    pub fn audience(&self) -> Option<&AudienceSync> {
        self.audience.as_deref()
    }

    /// Answers per route so far.
    pub fn stats(&self) -> RouterStats {
        self.counters.snapshot()
    }
}

#[async_trait]
impl Pipeline for SegmentRouter {
    async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
        self.process_routed(message).await.1
    }

    async fn process_batch(&self, messages: Vec<Message>) -> Vec<Result<Outcome, PipelineError>> {
        self.process_batch_routed(&messages)
            .await
            .into_iter()
            .map(|(_, result)| result)
            .collect()
    }
}
