//! [`SyncBuilder`]: a [`SyncConfig`] and the vendor clients in, every flow wired out.
//!
//! The builder is the one place that knows how the flows fit together: they share one
//! [`Stores`] (one dedupe store, so a message is claimed once whichever flow it reaches; one
//! identity store; one Track API limiter), one dead-letter sink, one loop guard (what the
//! back-sync writes into Segment is recognised when it comes back) and one Customer.io
//! dispatcher for Track v2 operations. It starts nothing: [`SyncBuilder::build`] hands back the
//! dispatchers' worker futures beside the engine; the host runs them on its runtime
//! (`tokio::spawn` each) and stops them with [`SyncEngine::shutdown`]. With Redis, build the
//! stores with `Stores::redis_for(&redis, &config)` so activity records get the time-to-live
//! the churn settings call for.
//!
//! | flow | on when | built from |
//! |---|---|---|
//! | triggers, enrichment, deletions | always | `[triggers]` |
//! | onboarding | `[onboarding]` is present | `[onboarding]` |
//! | audience → manual segments | `[audience]` is present | `[audience]`; `create_missing` needs [`SyncBuilder::app_client`] |
//! | churn monitor (activity recorded on delivery) and its scan | `[churn]` is present | `[churn]`, `[server].churn_scan_interval_seconds`; the host runs [`SyncEngine::churn_scanner`]'s [`run`](ChurnScanner::run), which scans on one replica per interval (the lease in [`Stores::leases`]) |
//! | engagement back-sync | [`SyncBuilder::back_sync`] | `[engagement]` (defaults when absent), `[server].segment_dispatcher` |
//! | new-subscriber backfill | [`SyncBuilder::backfill`] | `[backfill]` (defaults when absent) |
//!
//! ```
//! use cio_segment_sync::builder::SyncBuilder;
//! use cio_segment_sync::config::SyncConfig;
//! use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
//! use cio_segment_sync::store::Stores;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let track = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), ClientConfig::new(Region::Us))?;
//! let (engine, workers) = SyncBuilder::new(track, SyncConfig::default())
//!     .stores(Stores::memory())
//!     .build()?;
//! assert_eq!(engine.router.routes().len(), 1); // triggers only
//! // In a tokio runtime: for worker in workers { tokio::spawn(worker); }
//! # drop(workers);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use customerio_client::webhook::{SignatureVerifier, WebhookSigningKey};
use customerio_client::{AppClient, TrackClient};
use segment_model::client::profile::ProfileClient;
use segment_model::client::tracking::TrackingClient;

use crate::config::SyncConfig;
use crate::dead_letter::{DeadLetterSink, MemoryDeadLetters};
use crate::dispatch::sinks::{CustomerIoBatchSink, ManualSegmentSink, SegmentTrackingSink};
use crate::dispatch::{Dispatcher, DispatcherHandle, Worker};
use crate::flows::audience::AudienceSync;
use crate::flows::backfill::{BackfillConfigError, BackfillFlow};
use crate::flows::churn::{ChurnError, ChurnMonitor, ChurnScanner};
use crate::flows::engagement::{EngagementConfigError, EngagementFlow};
use crate::flows::forget::{ForgetActivity, ForgetMemberships, ForgetProgress};
use crate::flows::onboarding::{OnboardingConfigError, OnboardingFlow};
use crate::flows::router::SegmentRouter;
use crate::flows::triggers::SegmentToCustomerIo;
use crate::identity::{IdentityResolver, StoreResolver};
use crate::loop_guard::{LoopGuard, LoopGuardConfig, StampingLoopGuard};
use crate::pipeline::{DispatchDeliver, Guards};
use crate::store::Stores;

/// How many dead letters the default in-memory sink keeps (the newest; the oldest are dropped
/// and counted once full). Configure a durable sink for production: a
/// [`DeadLetterDir`](crate::dead_letter::DeadLetterDir) or, with Redis, a
/// `RedisDeadLetters` stream.
pub const DEFAULT_MEMORY_DEAD_LETTERS: usize = 10_000;

/// A flow cannot be built from its settings. Names the section; carries no secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `[onboarding]` cannot work.
    #[error("section `[onboarding]` cannot be built")]
    Onboarding(#[source] OnboardingConfigError),
    /// `[audience]` sets `create_missing` but no App API client was given.
    #[error("section `[audience]`: `create_missing = true` needs an App API client")]
    AudienceNeedsAppApi,
    /// `[churn]` cannot work.
    #[error("section `[churn]` cannot be built")]
    Churn(#[source] ChurnError),
    /// `[engagement]` cannot work.
    #[error("section `[engagement]` cannot be built")]
    Engagement(#[source] EngagementConfigError),
    /// `[backfill]` cannot work.
    #[error("section `[backfill]` cannot be built")]
    Backfill(#[source] BackfillConfigError),
}

struct BackSync {
    tracking: TrackingClient,
    signing_key: WebhookSigningKey,
}

/// Builds a [`SyncEngine`]. See the [module docs](self).
pub struct SyncBuilder {
    track: TrackClient,
    config: SyncConfig,
    stores: Option<Stores>,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    resolver: Option<Arc<dyn IdentityResolver>>,
    app: Option<AppClient>,
    back_sync: Option<BackSync>,
    profiles: Option<ProfileClient>,
}

impl fmt::Debug for SyncBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The clients redact their own secrets; the signing key is not shown at all.
        f.debug_struct("SyncBuilder")
            .field("track", &self.track)
            .field("config", &self.config)
            .field("stores", &self.stores)
            .field("app", &self.app)
            .field("back_sync", &self.back_sync.is_some())
            .field("backfill", &self.profiles.is_some())
            .finish_non_exhaustive()
    }
}

impl SyncBuilder {
    /// A builder writing to Customer.io through `track`, with the flows `config` turns on.
    pub fn new(track: TrackClient, config: SyncConfig) -> Self {
        Self {
            track,
            config,
            stores: None,
            dead_letters: None,
            resolver: None,
            app: None,
            back_sync: None,
            profiles: None,
        }
    }

    /// The stores and limiters every flow shares (default [`Stores::memory`]).
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Where permanently refused items go (default: an in-memory list of
    /// [`DEFAULT_MEMORY_DEAD_LETTERS`]).
    pub fn dead_letters(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// Replaces the default identity resolver (a [`StoreResolver`] over the identity store with
    /// `[triggers.resolver]`) of the triggers and onboarding flows and the churn monitor.
    pub fn resolver(mut self, resolver: Arc<dyn IdentityResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The App API client (the audience flow creates missing segments with it; every call
    /// takes a token from [`Stores::app_limiter`]).
    pub fn app_client(mut self, client: AppClient) -> Self {
        self.app = Some(client);
        self
    }

    /// Turns the engagement back-sync on: reporting webhooks signed with `signing_key` become
    /// Segment events sent through `tracking`.
    pub fn back_sync(mut self, tracking: TrackingClient, signing_key: WebhookSigningKey) -> Self {
        self.back_sync = Some(BackSync {
            tracking,
            signing_key,
        });
        self
    }

    /// Turns the new-subscriber backfill on: traits read through `profiles`.
    pub fn backfill(mut self, profiles: ProfileClient) -> Self {
        self.profiles = Some(profiles);
        self
    }

    /// Wires every flow: the engine, and the dispatchers' workers the host must run (e.g.
    /// `tokio::spawn` each). The two are apart, like tower's `Buffer::pair`, so the engine is
    /// `Send + Sync` and can be shared behind an `Arc`.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the section that cannot be built.
    pub fn build(self) -> Result<(SyncEngine, Vec<Worker>), BuildError> {
        let Self {
            track,
            config,
            stores,
            dead_letters,
            resolver,
            app,
            back_sync,
            profiles,
        } = self;
        let stores = stores.unwrap_or_else(Stores::memory);
        let dead_letters: Arc<dyn DeadLetterSink> = dead_letters
            .unwrap_or_else(|| Arc::new(MemoryDeadLetters::new(DEFAULT_MEMORY_DEAD_LETTERS)));
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
            SegmentToCustomerIo::builder(track.clone(), config.triggers.clone())
                .deduper(stores.deduper.clone())
                .loop_guard(loop_guard.clone())
                .resolver(resolver.clone())
                .rate_limiter(stores.track_limiter.clone())
                .dead_letters(dead_letters.clone())
                .forget_in(Arc::new(ForgetActivity(stores.activity.clone())))
                .forget_in(Arc::new(ForgetProgress(stores.progress.clone())))
                .forget_in(Arc::new(ForgetMemberships(stores.memberships.clone())))
                .build();
        let customerio = triggers.dispatcher().clone();
        let mut workers = vec![triggers_worker];
        let mut router = SegmentRouter::new(Arc::new(triggers))
            .with_batch_concurrency(config.triggers.batch_concurrency);

        if let Some(onboarding) = &config.onboarding {
            let deliver = Arc::new(DispatchDeliver::<CustomerIoBatchSink>::new(
                customerio.clone(),
                dead_letters.clone(),
            ));
            let flow = OnboardingFlow::builder(deliver, onboarding.clone())
                .deduper(stores.deduper.clone())
                .loop_guard(loop_guard.clone())
                .resolver(resolver.clone())
                .progress_store(stores.progress.clone())
                .build()
                .map_err(BuildError::Onboarding)?;
            router = router.with_onboarding(Arc::new(flow));
        }

        let mut segments = None;
        if let Some(audience) = &config.audience {
            let (handle, worker) = Dispatcher::new(
                ManualSegmentSink::new(track),
                config.triggers.dispatcher.to_config(),
                stores.track_limiter.clone(),
                dead_letters.clone(),
            );
            workers.push(worker);
            let guards = Guards::new(
                stores.deduper.clone(),
                loop_guard.clone(),
                std::time::Duration::from_secs(config.triggers.lease_seconds),
            );
            let mut flow =
                AudienceSync::new(audience.clone(), stores.memberships.clone(), handle.clone())
                    .with_attribute_dispatcher(customerio.clone())
                    .with_guards(guards);
            match &app {
                Some(app) => {
                    flow = flow.with_app_client(app.clone(), stores.app_limiter.clone());
                }
                None if audience.create_missing => return Err(BuildError::AudienceNeedsAppApi),
                None => {}
            }
            router = router.with_audience(Arc::new(flow));
            segments = Some(handle);
        }

        let churn = match &config.churn {
            None => None,
            Some(churn) => {
                let monitor = Arc::new(
                    ChurnMonitor::new(
                        churn.clone(),
                        stores.activity.clone(),
                        Arc::new(customerio.clone()),
                    )
                    .map_err(BuildError::Churn)?,
                );
                router = router.with_churn(monitor.clone(), resolver.clone());
                Some(monitor)
            }
        };
        let churn_scanner = churn.as_ref().map(|monitor| {
            Arc::new(ChurnScanner::new(
                monitor.clone(),
                stores.leases.clone(),
                config.server().churn_scan_interval(),
            ))
        });

        let mut segment = None;
        let engagement = match back_sync {
            None => None,
            Some(BackSync {
                tracking,
                signing_key,
            }) => {
                let (handle, worker) = Dispatcher::new(
                    SegmentTrackingSink::new(tracking),
                    config.server().segment_dispatcher.to_config(),
                    stores.segment_limiter.clone(),
                    dead_letters.clone(),
                );
                workers.push(worker);
                let flow = EngagementFlow::new(
                    config.engagement.clone().unwrap_or_default(),
                    SignatureVerifier::new(signing_key),
                    stores.customerio_deduper.clone(),
                    loop_guard.clone(),
                    handle.clone(),
                    dead_letters.clone(),
                )
                .map_err(BuildError::Engagement)?;
                segment = Some(handle);
                Some(Arc::new(flow))
            }
        };

        let backfill = match profiles {
            None => None,
            Some(profiles) => Some(Arc::new(
                BackfillFlow::new(
                    config.backfill.clone().unwrap_or_default(),
                    profiles,
                    stores.customerio_deduper.clone(),
                    Arc::new(DispatchDeliver::new(
                        customerio.clone(),
                        dead_letters.clone(),
                    )),
                )
                .map_err(BuildError::Backfill)?,
            )),
        };

        let engine = SyncEngine {
            router: Arc::new(router),
            engagement,
            backfill,
            churn,
            churn_scanner,
            resolver,
            loop_guard,
            stores,
            dead_letters,
            customerio,
            segments,
            segment,
        };
        Ok((engine, workers))
    }
}

/// Every flow, wired. See the [module docs](crate::builder).
#[non_exhaustive]
pub struct SyncEngine {
    /// Every Segment → Customer.io flow behind one [`Pipeline`](crate::pipeline::Pipeline).
    pub router: Arc<SegmentRouter>,
    /// The engagement back-sync, when turned on.
    pub engagement: Option<Arc<EngagementFlow>>,
    /// The new-subscriber backfill, when turned on.
    pub backfill: Option<Arc<BackfillFlow>>,
    /// The churn monitor, when `[churn]` is present (activity is recorded on delivery).
    pub churn: Option<Arc<ChurnMonitor>>,
    /// The churn scan every `[server] churn_scan_interval_seconds`, when `[churn]` is present:
    /// the host runs [`ChurnScanner::run`] (e.g. in a task). It takes the scan lease from
    /// [`Stores::leases`] each interval, so with Redis one replica scans per interval.
    pub churn_scanner: Option<Arc<ChurnScanner>>,
    /// The identity resolver every flow shares.
    pub resolver: Arc<dyn IdentityResolver>,
    /// The loop guard every flow shares.
    pub loop_guard: Arc<dyn LoopGuard>,
    /// The stores every flow shares.
    pub stores: Stores,
    /// Where permanently refused items go.
    pub dead_letters: Arc<dyn DeadLetterSink>,
    /// The Customer.io Track v2 dispatcher (for its stats).
    pub customerio: DispatcherHandle<CustomerIoBatchSink>,
    /// The manual-segment dispatcher, when the audience flow is on.
    pub segments: Option<DispatcherHandle<ManualSegmentSink>>,
    /// The Segment Tracking API dispatcher, when the back-sync is on.
    pub segment: Option<DispatcherHandle<SegmentTrackingSink>>,
}

impl fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncEngine")
            .field("router", &self.router)
            .field("engagement", &self.engagement.is_some())
            .field("backfill", &self.backfill.is_some())
            .field("churn", &self.churn.is_some())
            .finish_non_exhaustive()
    }
}

impl SyncEngine {
    /// The grace [`shutdown_within`](Self::shutdown_within) is usually given: 25 s, under the
    /// 30 s a container orchestrator commonly waits between `SIGTERM` and `SIGKILL`.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

    /// Stops accepting, sends everything the dispatchers hold and waits until they are done,
    /// however long an outage makes that.
    pub async fn shutdown(&self) {
        self.customerio.shutdown().await;
        if let Some(segments) = &self.segments {
            segments.shutdown().await;
        }
        if let Some(segment) = &self.segment {
            segment.shutdown().await;
        }
    }

    /// Stops accepting and delivers what the dispatchers hold for at most `grace` (all of them
    /// at once); then every item not yet sent goes back to its caller as retry-later, so the
    /// flows release its claim and the source redelivers it to the next process. Nothing acked
    /// is lost, nothing held stays stuck.
    pub async fn shutdown_within(&self, grace: Duration) {
        let segments = async {
            if let Some(segments) = &self.segments {
                segments.shutdown_within(grace).await;
            }
        };
        let segment = async {
            if let Some(segment) = &self.segment {
                segment.shutdown_within(grace).await;
            }
        };
        tokio::join!(self.customerio.shutdown_within(grace), segments, segment);
    }
}
