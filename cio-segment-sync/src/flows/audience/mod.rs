//! Audience sync: Segment Engage audience enter/exit → Customer.io manual segment add/remove.
//!
//! # How it works
//!
//! [`AudienceSync::handle`] takes one Segment message:
//!
//! 1. It reads an Engage membership change with
//!    [`AudienceChange::from_message_with`](segment_model::audience::AudienceChange) — both the
//!    identify form (`traits.<key>: true|false`) and the `Audience Entered` / `Audience Exited`
//!    track form (event names configurable). Any other message is skipped
//!    ([`SkipReason::Filtered`]); a message that claims to be a change but cannot
//!    be read is an [`AudienceSyncError::Audience`] naming the JSON path.
//! 2. It finds the person by [`AudienceConfig::id_type`]: the message's `userId` (sent to
//!    Customer.io as `id_type=id`) or its email (`id_type=email`). Without one the message is
//!    skipped ([`SkipReason::NoIdentity`]).
//! 3. It finds the manual segment for the audience key: [`AudienceConfig::segments`] first,
//!    then segments this instance created. An unknown key is skipped
//!    ([`SkipReason::UnknownAudience`]) unless [`AudienceConfig::create_missing`] is on; then
//!    the segment is looked up by name in the workspace (`GET /v1/segments`, when
//!    [`AudienceConfig::reuse_existing_by_name`]) and otherwise created through the App API
//!    (`POST /v1/segments`, named by the audience key after
//!    [`segment_name_prefix`](AudienceConfig::segment_name_prefix)). Every App API call first takes a token from the App API limiter (by default
//!    [`APP_REQUESTS_PER_SECOND`]). Created ids are remembered in memory only:
//!    [`AudienceSync::known_segments`] returns them so the host can write them into its
//!    configuration; after a restart the by-name look-up finds them again instead of creating
//!    duplicates.
//! 4. It records the change in the [`MembershipStore`] with
//!    [`record_if_newer`](MembershipStore::record_if_newer): ordered by the message's
//!    `timestamp` (else `originalTimestamp`, else the time of handling), ties broken by
//!    `messageId`. An older change than one already seen is skipped
//!    ([`SkipReason::Stale`]), so for each person and audience the newest change wins even
//!    when messages arrive out of order.
//! 5. It submits the add or remove to the [`ManualSegmentSink`] dispatcher (which coalesces
//!    changes per segment and direction into `add_customers` / `remove_customers` requests of at
//!    most 1000 ids, rate-limited by the dispatcher's limiter), and, with
//!    [`AudienceConfig::write_attribute`], a v2 identify setting `<audience_key>: true|false`
//!    (timestamped with the change) through the Customer.io v2 dispatcher. It waits for the
//!    completions: [`Outcome::Delivered`] means Customer.io accepted everything, so the
//!    host can ack the message.
//!
//! A change whose delivery failed stays recorded as the newest; a redelivery of the same message
//! is applied again (the store accepts a repeat of the newest change). Between recording and
//! submitting, a newer change handled concurrently by another task could be submitted first;
//! per-person ordering in the dispatcher covers changes submitted in order, not that window.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use cio_segment_sync::dead_letter::MemoryDeadLetters;
//! use cio_segment_sync::dispatch::sinks::{CustomerIoBatchSink, ManualSegmentSink};
//! use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig};
//! use cio_segment_sync::flows::audience::{AudienceConfig, AudienceSync, MemoryMembershipStore};
//! use cio_segment_sync::rate_limit::Unlimited;
//! use cio_segment_sync::segment_model::Message;
//! use customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
//!
//! # async fn run(message: Message) -> Result<(), Box<dyn std::error::Error>> {
//! let track = TrackClient::new(
//!     SiteId::new("site"),
//!     TrackApiKey::new("key"),
//!     ClientConfig::new(Region::Us),
//! )?;
//! let (segments, _worker) = Dispatcher::spawn(
//!     ManualSegmentSink::new(track),
//!     DispatcherConfig::default(),
//!     Arc::new(Unlimited),
//!     Arc::new(MemoryDeadLetters::new(1_000)),
//! );
//! let config: AudienceConfig = toml::from_str("[segments]\nchurn_risk_high = 7")?;
//! let sync = AudienceSync::<ManualSegmentSink, CustomerIoBatchSink>::new(
//!     config,
//!     Arc::new(MemoryMembershipStore::default()),
//!     segments,
//! );
//! let outcome = sync.handle(&message).await?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```

mod config;
mod memory;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use customerio_client::AppClient;
use customerio_client::Identifier;
use customerio_client::app::segments::{NewSegment, SegmentType};
use customerio_client::limits::APP_REQUESTS_PER_SECOND;
use customerio_client::track::v1::SegmentIdType;
use customerio_client::track::v2::{Operation, PersonIdentify};
use segment_model::Message;
use segment_model::audience::{AudienceChange, AudienceError, AudienceOptions, Membership};

pub use config::{AudienceConfig, AudienceIdType};
pub use memory::{MemoryMembershipConfig, MemoryMembershipStore};
pub use store::{MembershipChange, MembershipStore};

use crate::dedupe::MemoryDeduper;
use crate::dispatch::sinks::{
    CustomerIoBatchSink, ManualSegmentSink, SegmentDirection, SegmentMembership,
};
use crate::dispatch::{Completion, Delivery, DispatcherHandle, OrderingKey, Sink};
use crate::loop_guard::StampingLoopGuard;
use crate::outcome::describe;
use crate::outcome::{Ack, AckRule, Outcome, SkipReason};
use crate::pipeline::{Guards, Pipeline, PipelineConfig, PipelineError};
use crate::rate_limit::{GovernorLimiter, RateLimiter, RateLimiterExt};
use crate::store::StoreError;

/// What went wrong. Never names a person.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudienceSyncError {
    /// The message claims to be an audience change but cannot be read.
    #[error(transparent)]
    Audience(#[from] AudienceError),
    /// The configuration asks for something this instance was not given.
    #[error("audience config: `{field}` {problem}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is missing.
        problem: &'static str,
    },
    /// The membership store or the App API limiter failed; do not ack, retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An App API call (segment look-up or creation) failed; the error says whether it is
    /// worth retrying.
    #[error("the Customer.io App API call failed")]
    App(#[source] customerio_client::Error),
    /// The attribute operation could not be built.
    #[error("the audience attribute operation could not be built")]
    Build(#[source] customerio_client::Error),
    /// A dispatcher refused the item (closed, too large, not encodable).
    #[error("the dispatcher refused the item: {0}")]
    Submit(String),
    /// A dispatcher dropped the item unresolved (its worker stopped): not delivered.
    #[error("the dispatcher dropped the item without delivering it")]
    Dropped,
    /// A dispatcher stopped retrying a failure that may pass (Customer.io down for longer than
    /// the retry policy), or could not record a dead letter: not delivered.
    #[error("the change was not delivered: {0}")]
    NotDelivered(&'static str),
}

impl AckRule for AudienceSyncError {
    /// [`Ack::RetryLater`] for store and App API outages and a dispatcher that refused, dropped
    /// or stopped retrying the change (it is stopping, its queue is closed, Customer.io is
    /// down). [`Ack::Refuse`] for an unreadable audience message, a configuration mismatch, a
    /// refused App API call and an attribute that cannot be built: those fail the same way on
    /// every retry.
    fn ack(&self) -> Ack {
        match self {
            AudienceSyncError::Store(_)
            | AudienceSyncError::Submit(_)
            | AudienceSyncError::Dropped
            | AudienceSyncError::NotDelivered(_) => Ack::RetryLater,
            // The engine's one classifier decides for the vendor's error.
            AudienceSyncError::App(error) => crate::dispatch::Classification::from(error).ack(),
            AudienceSyncError::Audience(_)
            | AudienceSyncError::Config { .. }
            | AudienceSyncError::Build(_) => Ack::Refuse,
        }
    }
}

impl AudienceSyncError {
    /// Whether the source should redeliver the message (do not ack it); the same as
    /// `self.ack() == Ack::RetryLater`.
    pub fn is_retryable(&self) -> bool {
        self.ack().is_retry_later()
    }
}

struct AppApi {
    client: AppClient,
    limiter: Arc<dyn RateLimiter>,
}

impl AppApi {
    /// A failed App API call. A `429` (or a `503` with `Retry-After`) pauses the workspace's
    /// App API limiter for the server's delay, so every other App call, in this process or
    /// (with Redis) another, waits it out too.
    async fn failed(&self, error: customerio_client::Error) -> AudienceSyncError {
        let class = crate::dispatch::Classification::from(&error);
        let pause = match (class.kind, class.retry_after) {
            (crate::dispatch::FailureKind::Throttled, delay) => {
                Some(delay.unwrap_or(std::time::Duration::from_secs(1)))
            }
            (kind, Some(delay)) if kind.is_retryable() => Some(delay),
            _ => None,
        };
        if let Some(delay) = pause {
            // Capped like the dispatcher's pauses.
            let delay = delay.min(crate::dispatch::RetryPolicy::DEFAULT_MAX_RETRY_AFTER);
            if let Err(error) = self.limiter.pause(delay).await {
                tracing::warn!(error = %describe(&error), "Could not share an App API pause through the limiter.");
            }
        }
        AudienceSyncError::App(error)
    }
}

/// The audience-sync flow. See the [module docs](self).
///
/// `M` is the manual-segment sink (normally [`ManualSegmentSink`]) and `O` the v2 operations
/// sink for the optional attribute (normally [`CustomerIoBatchSink`]); tests substitute fakes.
pub struct AudienceSync<M = ManualSegmentSink, O = CustomerIoBatchSink>
where
    M: Sink<Item = SegmentMembership>,
    O: Sink<Item = Operation>,
{
    config: AudienceConfig,
    options: AudienceOptions,
    store: Arc<dyn MembershipStore>,
    segments: DispatcherHandle<M>,
    attributes: Option<DispatcherHandle<O>>,
    app: Option<AppApi>,
    created: tokio::sync::Mutex<HashMap<String, u64>>,
    guards: Guards,
}

impl<M, O> fmt::Debug for AudienceSync<M, O>
where
    M: Sink<Item = SegmentMembership>,
    O: Sink<Item = Operation>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudienceSync")
            .field("config", &self.config)
            .field("store", &self.store)
            .field("segments", &self.segments)
            .field("attributes", &self.attributes)
            .field("app", &self.app.as_ref().map(|a| &a.client))
            .field("guards", &self.guards)
            .finish_non_exhaustive()
    }
}

impl<M, O> AudienceSync<M, O>
where
    M: Sink<Item = SegmentMembership>,
    O: Sink<Item = Operation>,
{
    /// A flow recording changes in `store` and submitting them to `segments`.
    pub fn new(
        config: AudienceConfig,
        store: Arc<dyn MembershipStore>,
        segments: DispatcherHandle<M>,
    ) -> Self {
        let options = AudienceOptions {
            entered_event: config.entered_event.clone(),
            exited_event: config.exited_event.clone(),
        };
        Self {
            config,
            options,
            store,
            segments,
            attributes: None,
            app: None,
            created: tokio::sync::Mutex::new(HashMap::new()),
            guards: Guards::new(
                Arc::new(MemoryDeduper::default()),
                Arc::new(StampingLoopGuard::default()),
                PipelineConfig::default().lease,
            ),
        }
    }

    /// The dedupe store and loop guard [`Pipeline::process`] applies before
    /// [`handle`](Self::handle) (default: in-memory ones, fine for one process; share the other
    /// flows' so a message is claimed once whichever flow it reaches).
    pub fn with_guards(mut self, guards: Guards) -> Self {
        self.guards = guards;
        self
    }

    /// Sends the `<audience_key>` attribute through this v2 dispatcher (used when
    /// [`AudienceConfig::write_attribute`] is on).
    pub fn with_attribute_dispatcher(mut self, handle: DispatcherHandle<O>) -> Self {
        self.attributes = Some(handle);
        self
    }

    /// Creates missing segments through `client` (used when
    /// [`AudienceConfig::create_missing`] is on), each App API call taking a token from
    /// `limiter` (share one limiter among everything calling the App API of a workspace).
    pub fn with_app_client(mut self, client: AppClient, limiter: Arc<dyn RateLimiter>) -> Self {
        self.app = Some(AppApi { client, limiter });
        self
    }

    /// [`with_app_client`](Self::with_app_client) with a limiter of its own at the documented
    /// App API limit ([`APP_REQUESTS_PER_SECOND`]).
    pub fn with_app_client_default_limit(self, client: AppClient) -> Self {
        let rate = NonZeroU32::new(APP_REQUESTS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        self.with_app_client(client, Arc::new(GovernorLimiter::per_second(rate)))
    }

    /// The settings.
    pub fn config(&self) -> &AudienceConfig {
        &self.config
    }

    /// Every audience key → segment id known: the configured ones and those this instance
    /// found or created. Persist it into the configuration to skip the look-ups after a
    /// restart.
    pub async fn known_segments(&self) -> BTreeMap<String, u64> {
        let mut all = self.config.segments.clone();
        for (key, id) in self.created.lock().await.iter() {
            all.entry(key.clone()).or_insert(*id);
        }
        all
    }

    /// Whether [`handle`](Self::handle) would treat `message` as an audience change (a
    /// well-formed one, or one that claims to be and cannot be read). Everything else belongs
    /// to another flow.
    pub fn is_audience_change(&self, message: &Message) -> bool {
        !matches!(
            AudienceChange::from_message_with(message, &self.options),
            Ok(None)
        )
    }

    /// Applies one Segment message, without dedupe or the loop guard (see
    /// [`Pipeline::process`] for both). See the [module docs](self) for the steps.
    pub async fn handle(&self, message: &Message) -> Result<Outcome, AudienceSyncError> {
        if self.config.write_attribute && self.attributes.is_none() {
            // Checked before anything is recorded.
            return Err(AudienceSyncError::Config {
                field: "write_attribute",
                problem: "is on but no attribute dispatcher was given",
            });
        }
        let Some(change) = AudienceChange::from_message_with(message, &self.options)? else {
            return Ok(Outcome::Skipped(SkipReason::Filtered));
        };
        let (person, id_type, identifier) = match self.config.id_type {
            AudienceIdType::UserId => {
                let id = change.user_id.as_ref().map(|id| id.as_str().into_owned());
                let id = id.filter(|id| !id.is_empty());
                match id {
                    Some(id) => (id.clone(), SegmentIdType::Id, Identifier::id(id)),
                    None => return Ok(Outcome::Skipped(SkipReason::NoIdentity)),
                }
            }
            AudienceIdType::Email => match change.email.clone().filter(|e| !e.is_empty()) {
                Some(email) => (
                    email.clone(),
                    SegmentIdType::Email,
                    Identifier::email(email),
                ),
                None => return Ok(Outcome::Skipped(SkipReason::NoIdentity)),
            },
        };
        let Some(segment_id) = self.segment_for(&change.key).await? else {
            return Ok(Outcome::Skipped(SkipReason::UnknownAudience(change.key)));
        };
        let entered = change.membership == Membership::Entered;
        let at = change.timestamp.as_ref().map_or_else(
            || jiff::Timestamp::now().as_millisecond(),
            |t| t.as_unix_millis(),
        );
        let version = MembershipChange {
            at,
            tiebreak: change.message_id.clone().unwrap_or_default(),
            entered,
        };
        if !self
            .store
            .record_if_newer(&person, &change.key, &version)
            .await?
        {
            return Ok(Outcome::Skipped(SkipReason::Stale));
        }

        let attribute = match (&self.attributes, self.config.write_attribute) {
            (Some(handle), true) => {
                let identify = PersonIdentify::new(identifier)
                    .and_then(|i| i.with_attribute(change.key.as_str(), entered))
                    .and_then(|i| i.with_timestamp(at.div_euclid(1000)))
                    .map_err(AudienceSyncError::Build)?;
                Some((handle, Operation::from(identify)))
            }
            // Without a dispatcher `write_attribute` is off (checked on entry).
            _ => None,
        };

        let direction = if entered {
            SegmentDirection::Add
        } else {
            SegmentDirection::Remove
        };
        let key = OrderingKey::new(&person);
        let membership = SegmentMembership {
            segment_id,
            direction,
            id_type,
            person,
        };
        let mut completions: Vec<Completion> = Vec::with_capacity(2);
        completions.push(
            self.segments
                .submit(membership, Some(key))
                .await
                .map_err(|e| AudienceSyncError::Submit(describe(&e)))?,
        );
        if let Some((handle, op)) = attribute {
            completions.push(
                handle
                    .submit(op, Some(key))
                    .await
                    .map_err(|e| AudienceSyncError::Submit(describe(&e)))?,
            );
        }
        let mut dead = None;
        for completion in completions {
            match completion.await.map_err(|_| AudienceSyncError::Dropped)? {
                Delivery::Delivered { .. } => {}
                Delivery::DeadLettered {
                    reason,
                    recorded: true,
                    ..
                } => {
                    dead.get_or_insert(reason);
                }
                Delivery::DeadLettered {
                    recorded: false, ..
                } => {
                    return Err(AudienceSyncError::NotDelivered(
                        "the change was refused but its dead letter was not recorded",
                    ));
                }
                Delivery::RetryLater { .. } => {
                    return Err(AudienceSyncError::NotDelivered(
                        "the delivery engine stopped retrying a failure that may pass",
                    ));
                }
            }
        }
        tracing::debug!(segment_id, ?direction, "Applied an audience change.");
        Ok(match dead {
            Some(reason) => Outcome::DeadLettered(reason),
            None => Outcome::Delivered,
        })
    }

    async fn segment_for(&self, key: &str) -> Result<Option<u64>, AudienceSyncError> {
        if let Some(id) = self.config.segments.get(key) {
            return Ok(Some(*id));
        }
        if !self.config.create_missing {
            return Ok(None);
        }
        // Held across the App API calls: one look-up or creation per key in this process.
        let mut created = self.created.lock().await;
        if let Some(id) = created.get(key) {
            return Ok(Some(*id));
        }
        let Some(app) = &self.app else {
            return Err(AudienceSyncError::Config {
                field: "create_missing",
                problem: "is on but no App API client was given",
            });
        };
        let name = format!("{}{key}", self.config.segment_name_prefix);
        if self.config.reuse_existing_by_name {
            app.limiter.acquire().await?;
            let existing = match app.client.list_segments().await {
                Ok(existing) => existing,
                Err(error) => return Err(app.failed(error).await),
            };
            if let Some(found) = existing
                .iter()
                .find(|s| s.name == name && s.segment_type == Some(SegmentType::Manual))
            {
                created.insert(key.to_owned(), found.id);
                return Ok(Some(found.id));
            }
        }
        app.limiter.acquire().await?;
        let segment = match app.client.create_segment(&NewSegment::new(name)).await {
            Ok(segment) => segment,
            Err(error) => return Err(app.failed(error).await),
        };
        tracing::info!(
            segment_id = segment.id,
            audience = key,
            "Created a Customer.io manual segment for an Engage audience."
        );
        created.insert(key.to_owned(), segment.id);
        Ok(Some(segment.id))
    }
}

#[async_trait]
impl<M, O> Pipeline for AudienceSync<M, O>
where
    M: Sink<Item = SegmentMembership>,
    O: Sink<Item = Operation>,
{
    /// Dedupe → loop guard ([`Guards`]) → [`handle`](AudienceSync::handle). An error of the
    /// flow's own is a [`PipelineError::Stage`] named `audience` with the flow's [`Ack`].
    async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
        self.guards
            .run(message, || async {
                self.handle(message)
                    .await
                    .map_err(|error| PipelineError::stage("audience", error))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::sync::Mutex;
    use std::time::Duration;

    use bytes::Bytes;
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    use super::*;
    use crate::dead_letter::MemoryDeadLetters;
    use crate::dispatch::{
        BatchLimits, BatchResponse, Classification, Dispatcher, DispatcherConfig, EncodeError,
        Encoded, FailureKind, SendPhase, SinkError,
    };
    use crate::rate_limit::Unlimited;

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;

    impl SinkError for Never {
        fn classify(&self) -> Classification {
            Classification::new(FailureKind::Permanent, SendPhase::NotSent)
        }
    }

    /// Accepts everything, recording each item in send order.
    struct Recording<T> {
        sent: Arc<Mutex<Vec<T>>>,
    }

    impl<T> Recording<T> {
        fn new() -> Self {
            Self {
                sent: Arc::new(Mutex::new(Vec::new())),
            }
        }
    }

    impl<T: serde::Serialize + Clone + Send + Sync + 'static> Sink for Recording<T> {
        type Item = T;
        type Partition = ();
        type Error = Never;

        fn name(&self) -> &'static str {
            "recording"
        }

        fn limits(&self) -> BatchLimits {
            BatchLimits {
                max_items: NonZeroUsize::MIN,
                max_request_bytes: 10_000,
                max_item_bytes: 10_000,
                wrapper_bytes: 0,
                separator_bytes: 0,
                linger: Duration::ZERO,
            }
        }

        fn server_deduplicates(&self) -> bool {
            true
        }

        fn partition(&self, _: &T) {}

        fn encode(&self, item: &T) -> Result<Bytes, EncodeError> {
            serde_json::to_vec(item)
                .map(Bytes::from)
                .map_err(EncodeError::json)
        }

        async fn send(&self, _: &(), items: &[Encoded<T>]) -> Result<BatchResponse, Never> {
            let mut sent = self.sent.lock().unwrap();
            sent.extend(items.iter().map(|e| e.item.clone()));
            Ok(BatchResponse::Accepted)
        }
    }

    type Flow = AudienceSync<Recording<SegmentMembership>, Recording<Operation>>;
    type Sent<T> = Arc<Mutex<Vec<T>>>;

    fn flow(config: AudienceConfig) -> (Flow, Sent<SegmentMembership>, Sent<Operation>) {
        let members = Recording::new();
        let attrs = Recording::new();
        let (m_sent, a_sent) = (members.sent.clone(), attrs.sent.clone());
        let dead = Arc::new(MemoryDeadLetters::new(10));
        let (segments, _) = Dispatcher::spawn(
            members,
            DispatcherConfig::default(),
            Arc::new(Unlimited),
            dead.clone(),
        );
        let (attributes, _) = Dispatcher::spawn(
            attrs,
            DispatcherConfig::default(),
            Arc::new(Unlimited),
            dead,
        );
        let sync = AudienceSync::new(config, Arc::new(MemoryMembershipStore::default()), segments)
            .with_attribute_dispatcher(attributes);
        (sync, m_sent, a_sent)
    }

    fn config() -> AudienceConfig {
        AudienceConfig {
            segments: BTreeMap::from([("vip".to_owned(), 7), ("churny".to_owned(), 8)]),
            ..AudienceConfig::default()
        }
    }

    fn change(user: &str, key: &str, entered: bool, second: u32, id: &str) -> Message {
        let ts = format!("2024-06-01T00:00:{second:02}Z");
        let value = if second.is_multiple_of(2) {
            json!({"type": "identify", "userId": user, "messageId": id, "timestamp": ts,
                   "traits": {key: entered, "email": format!("{user}@example.com")},
                   "context": {"personas": {"computation_class": "audience",
                                            "computation_key": key}}})
        } else {
            json!({"type": "track", "userId": user, "messageId": id, "timestamp": ts,
                   "event": if entered { "Audience Entered" } else { "Audience Exited" },
                   "properties": {"audience_key": key, key: entered},
                   "context": {"traits": {"email": format!("{user}@example.com")},
                               "personas": {"computation_class": "audience",
                                            "computation_key": key}}})
        };
        Message::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn is_audience_change_agrees_with_handle() {
        let (sync, _, _) = flow(config());
        assert!(sync.is_audience_change(&change("u1", "vip", true, 0, "m-1")));
        assert!(sync.is_audience_change(&change("u1", "vip", false, 1, "m-2")));
        let plain = Message::from_value(
            json!({"type": "track", "userId": "u1", "event": "Order Completed"}),
        )
        .unwrap();
        assert!(!sync.is_audience_change(&plain));
        assert_eq!(
            sync.handle(&plain).await.unwrap(),
            Outcome::Skipped(SkipReason::Filtered)
        );
        // Claims to be an audience change but cannot be read: still this flow's (and an error).
        let broken = Message::from_value(json!({
            "type": "track", "userId": "u1", "event": "Audience Entered", "properties": {}
        }))
        .unwrap();
        assert!(sync.is_audience_change(&broken));
        let error = sync.handle(&broken).await.unwrap_err();
        assert!(!error.is_retryable(), "{error}");
    }

    #[test]
    fn outages_are_retryable_and_bad_input_is_not() {
        let unavailable = AudienceSyncError::Store(StoreError::Unavailable {
            store: "membership",
            source: "down".into(),
        });
        assert!(unavailable.is_retryable());
        assert!(AudienceSyncError::Dropped.is_retryable());
        assert!(AudienceSyncError::Submit("closed".to_owned()).is_retryable());
        assert!(
            !AudienceSyncError::Config {
                field: "write_attribute",
                problem: "x"
            }
            .is_retryable()
        );
        assert!(!AudienceSyncError::Audience(AudienceError::MissingKey).is_retryable());
    }

    #[tokio::test]
    async fn newest_change_wins_under_shuffled_order() {
        // 3 people × 2 audiences × 6 changes; seconds are unique per (person, audience).
        let mut messages = Vec::new();
        let mut newest = BTreeMap::new();
        for user in ["u1", "u2", "u3"] {
            for key in ["vip", "churny"] {
                for second in 0..6u32 {
                    let entered =
                        !(second + user.len() as u32 + key.len() as u32).is_multiple_of(3);
                    messages.push((user, key, second, entered));
                    newest.insert((user.to_owned(), key.to_owned()), entered);
                }
            }
        }
        for seed in 0..10u64 {
            let (sync, sent, _) = flow(config());
            let mut order = messages.clone();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            let mut applied: BTreeMap<(String, String), u32> = BTreeMap::new();
            for (user, key, second, entered) in order {
                let id = format!("m-{user}-{key}-{second}");
                let outcome = sync
                    .handle(&change(user, key, entered, second, &id))
                    .await
                    .unwrap();
                let slot = applied
                    .entry((user.to_owned(), key.to_owned()))
                    .or_default();
                match outcome {
                    Outcome::Delivered => {
                        assert!(second >= *slot, "seed {seed}: applied an older change");
                        *slot = second;
                    }
                    Outcome::Skipped(SkipReason::Stale) => {
                        assert!(second < *slot, "seed {seed}: skipped a newer change");
                    }
                    other => panic!("seed {seed}: {other:?}"),
                }
            }
            // The last membership sent per (person, segment) is the newest change.
            let mut last = BTreeMap::new();
            for m in sent.lock().unwrap().iter() {
                last.insert((m.person.clone(), m.segment_id), m.direction);
            }
            for ((user, key), entered) in &newest {
                let segment = config().segments[key];
                let want = if *entered {
                    SegmentDirection::Add
                } else {
                    SegmentDirection::Remove
                };
                assert_eq!(last[&(user.clone(), segment)], want, "seed {seed}");
            }
        }
    }

    #[tokio::test]
    async fn identity_follows_the_configured_id_type() {
        let (sync, sent, _) = flow(AudienceConfig {
            id_type: AudienceIdType::Email,
            ..config()
        });
        let outcome = sync
            .handle(&change("u1", "vip", true, 1, "m1"))
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Delivered);
        let sent = sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].person, "u1@example.com");
        assert_eq!(sent[0].id_type, SegmentIdType::Email);
        let anonymous = Message::from_value(json!({
            "type": "identify", "anonymousId": "a1", "traits": {"vip": true},
            "context": {"personas": {"computation_class": "audience", "computation_key": "vip"}}
        }))
        .unwrap();
        let (sync, _, _) = flow(config());
        assert_eq!(
            sync.handle(&anonymous).await.unwrap(),
            Outcome::Skipped(SkipReason::NoIdentity)
        );
    }

    #[tokio::test]
    async fn unknown_audiences_and_other_messages_are_skipped_with_a_reason() {
        let (sync, sent, _) = flow(config());
        assert_eq!(
            sync.handle(&change("u1", "nobody_configured", true, 1, "m1"))
                .await
                .unwrap(),
            Outcome::Skipped(SkipReason::UnknownAudience("nobody_configured".into()))
        );
        let plain =
            Message::from_value(json!({"type": "track", "userId": "u1", "event": "x"})).unwrap();
        assert_eq!(
            sync.handle(&plain).await.unwrap(),
            Outcome::Skipped(SkipReason::Filtered)
        );
        let broken = Message::from_value(json!({
            "type": "identify", "userId": "u1", "traits": {"vip": 3},
            "context": {"personas": {"computation_class": "audience", "computation_key": "vip"}}
        }))
        .unwrap();
        let err = sync.handle(&broken).await.unwrap_err();
        assert!(err.to_string().contains("traits.vip"), "{err}");
        assert!(sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_attribute_is_written_when_configured() {
        let (sync, _, attrs) = flow(AudienceConfig {
            write_attribute: true,
            ..config()
        });
        sync.handle(&change("u1", "vip", false, 3, "m1"))
            .await
            .unwrap();
        let ops: Vec<serde_json::Value> = attrs
            .lock()
            .unwrap()
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect();
        assert_eq!(
            ops,
            vec![
                json!({"type": "person", "action": "identify", "identifiers": {"id": "u1"},
                        "timestamp": 1_717_200_003, "attributes": {"vip": false}})
            ]
        );
    }

    #[tokio::test]
    async fn an_attribute_without_its_dispatcher_is_a_config_error_and_records_nothing() {
        let members = Recording::<SegmentMembership>::new();
        let (segments, _) = Dispatcher::spawn(
            members,
            DispatcherConfig::default(),
            Arc::new(Unlimited),
            Arc::new(MemoryDeadLetters::new(10)),
        );
        let store = Arc::new(MemoryMembershipStore::default());
        let sync: Flow = AudienceSync::new(
            AudienceConfig {
                write_attribute: true,
                ..config()
            },
            store.clone(),
            segments,
        );
        let err = sync
            .handle(&change("u1", "vip", true, 1, "m1"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AudienceSyncError::Config {
                    field: "write_attribute",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn creation_without_an_app_client_is_a_config_error() {
        let (sync, _, _) = flow(AudienceConfig {
            create_missing: true,
            ..config()
        });
        let err = sync
            .handle(&change("u1", "new_one", true, 1, "m1"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AudienceSyncError::Config {
                    field: "create_missing",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn the_flow_and_its_future_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let (sync, _, _) = flow(config());
        send_sync(&sync);
        let message = change("u1", "vip", true, 1, "m1");
        send(&sync.handle(&message));
        send(&sync.known_segments());
    }
}
