//! New-subscriber backfill: a person subscribes in Customer.io → their traits are read from
//! Segment's Profile API → written back into Customer.io.
//!
//! [`BackfillFlow`] starts from a reporting-webhook event whose metric is `subscribed`
//! ([`BackfillFlow::on_event`]; Customer.io sends it with `object_type` `customer`, or a
//! channel when a message caused the change, so only the metric is looked at), or from a direct
//! call with the person ([`BackfillFlow::backfill`]).
//!
//! # Steps
//!
//! 1. **Dedupe** (webhook events only) — the key `backfill:` + `event_id` is claimed in the
//!    [`Deduper`]; committed once the backfill ended with an outcome, released after any error
//!    so Customer.io's retry runs again (the pipeline's rule). The prefix keeps these keys apart from the engagement
//!    flow's, which sees the same event ids.
//! 2. **Profile lookup** — by `user_id` (the person's Customer.io `id`), else, when
//!    [`BackfillConfig::lookup_by_email`] allows it, by `email`. Each Profile API request
//!    (every page of a paged answer included) first takes a token from the [`RateLimiter`]; the
//!    default is a [`GovernorLimiter`] at [`BackfillConfig::profile_requests_per_second`]
//!    (default 100, Segment's documented default limit per space). A profile found by neither
//!    is a skip ([`SkipReason::NotFound`]).
//! 3. **Mapping** — the traits, minus [`BackfillConfig::protected_traits`], become an
//!    `identify` [`Message`] that runs through the same [`Mapper`] as the pipeline (by default
//!    a [`ConfigMapper`] with [`BackfillConfig::mapping`]), written to the person as
//!    Customer.io knows them: by `id`, else `cio_id`, else `email`. Identity resolution is not
//!    consulted: the webhook already says who the person is in Customer.io.
//! 4. **Delivery** — the operations go to the [`Deliver`] step (a
//!    [`DispatchDeliver`](crate::pipeline::DispatchDeliver) over a
//!    [`CustomerIoBatchSink`](crate::dispatch::sinks::CustomerIoBatchSink)); the call returns
//!    once Customer.io accepted them or they were dead-lettered.
//!
//! # One webhook endpoint for both flows
//!
//! Customer.io sends every reporting event to one endpoint. A host running this flow and the
//! [engagement back-sync](super::engagement) verifies the request once
//! ([`SignatureVerifier::verify_and_parse`](customerio_client::webhook::SignatureVerifier::verify_and_parse)),
//! then hands the event to both: [`EngagementFlow::process`](super::engagement::EngagementFlow::process)
//! skips `subscribed` events (not in its default name table) and [`BackfillFlow::on_event`]
//! skips everything else. Their dedupe keys carry different prefixes, so one [`Deduper`] can
//! serve both. Answer "retry later" if either asks for it; both flows are idempotent, so the
//! retry repeats nothing the finished one already did.
//!
//! # Lookup values
//!
//! Segment's docs ask for lower-case external ids without saying whether the type, the value or
//! both (unconfirmed). Ids and emails are sent as Customer.io has them; build the
//! [`ProfileClient`] with `lowercase_lookup_values(true)` to lower-case them.
//!
//! # Why `unsubscribed` is protected
//!
//! The person has just subscribed in Customer.io. A Segment profile still carrying an older
//! `unsubscribed: true` trait would undo that if it were written back, so
//! [`BackfillConfig::protected_traits`] defaults to `["unsubscribed"]`.
//!
//! # Answers
//!
//! `Ok(outcome)` is finished (answer 2xx). An error's [`ack`](crate::outcome::AckRule::ack)
//! says whether Customer.io (or the host's queue) should retry: Profile API failures follow the
//! client's classification
//! ([`ClientError::is_retryable`](segment_model::client::ClientError::is_retryable), with
//! [`BackfillError::retry_after`] when Segment asked for a delay), store and delivery failures
//! are retried, and inputs that can never work are acked.
//!
//! # Metrics
//!
//! [`BackfillFlow::stats`] counts answers. With the `metrics` feature every answer of
//! [`on_event`](BackfillFlow::on_event) and [`backfill`](BackfillFlow::backfill) is also
//! reported as `flow="backfill"` under the crate's [answer metrics](super::metrics); an event
//! that is not a subscription counts as `skipped`.
//!
//! The module's files: `config.rs` ([`BackfillConfig`]), `person.rs` ([`BackfillPerson`]),
//! `error.rs` ([`BackfillError`]), `stats.rs` ([`BackfillStats`]) and this one, the flow.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use cio_segment_sync::customerio_client::track::v2::Operation;
//! use cio_segment_sync::dedupe::MemoryDeduper;
//! use cio_segment_sync::flows::backfill::{BackfillConfig, BackfillFlow};
//! use cio_segment_sync::pipeline::{Deliver, DeliverError, Delivered};
//! use cio_segment_sync::segment_model::client::profile::{AccessToken, ProfileClient};
//!
//! /// Stands in for a `DispatchDeliver` over the Customer.io dispatcher.
//! #[derive(Debug)]
//! struct AcceptAll;
//! #[async_trait]
//! impl Deliver for AcceptAll {
//!     async fn deliver(&self, _: Vec<Operation>, _: &str) -> Result<Delivered, DeliverError> {
//!         Ok(Delivered::Accepted)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: BackfillConfig = toml::from_str(r#"
//!     lookup_by_email = false
//!     profile_requests_per_second = 20
//!     [mapping.traits]
//!     deny = ["internal_score"]
//! "#)?;
//! let profiles = ProfileClient::builder(AccessToken::new("profile-token"), "spa_9zYxWvUtS").build()?;
//! let flow = BackfillFlow::new(
//!     config,
//!     profiles,
//!     Arc::new(MemoryDeduper::default()),
//!     Arc::new(AcceptAll),
//! )?;
//! # let _ = flow;
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod person;
mod stats;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use customerio_client::webhook::{Metric, ReportingEvent};
use segment_model::Message;
use segment_model::client::profile::{
    Collection, ExternalId, InvalidLimit, MAX_PAGES, ProfileClient, TraitsQuery,
};
use serde_json::{Map, Value};
use tracing::Instrument;

use super::metrics::record_answer;
use crate::dedupe::{Deduper, DeduperExt, Once};
use crate::identity::Target;
use crate::mapping::Mapped;
use crate::outcome::{Outcome, SkipReason};
use crate::pipeline::{ConfigMapper, Deliver, Delivered, Mapper, ordering_key};
use crate::rate_limit::{GovernorLimiter, RateLimiter, RateLimiterExt};

pub use self::config::{BackfillConfig, BackfillConfigError, DEFAULT_PROFILE_REQUESTS_PER_SECOND};
pub use self::error::BackfillError;
pub use self::person::BackfillPerson;
pub use self::stats::BackfillStats;
use self::stats::Counters;

/// The prefix of this flow's dedupe keys (`backfill:` + `event_id`).
pub const DEDUPE_KEY_PREFIX: &str = "backfill:";

/// The `flow` label of this flow's metrics.
const FLOW: &str = "backfill";

/// The new-subscriber backfill. See the [module docs](self).
pub struct BackfillFlow {
    config: BackfillConfig,
    query: TraitsQuery,
    profiles: ProfileClient,
    limiter: Arc<dyn RateLimiter>,
    deduper: Arc<dyn Deduper>,
    mapper: Arc<dyn Mapper>,
    deliver: Arc<dyn Deliver>,
    counters: Counters,
}

impl fmt::Debug for BackfillFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackfillFlow")
            .field("config", &self.config)
            .field("profiles", &self.profiles)
            .field("limiter", &self.limiter)
            .field("deduper", &self.deduper)
            .field("mapper", &self.mapper)
            .field("deliver", &self.deliver)
            .field("stats", &self.counters.snapshot())
            .finish()
    }
}

impl BackfillFlow {
    /// A flow reading profiles through `profiles`, de-duplicating webhook events on `deduper`
    /// and writing through `deliver`. The rate limiter is a [`GovernorLimiter`] at the
    /// configured rate and the mapper a [`ConfigMapper`] over [`BackfillConfig::mapping`];
    /// replace them with [`with_rate_limiter`](Self::with_rate_limiter) and
    /// [`with_mapper`](Self::with_mapper).
    ///
    /// # Errors
    ///
    /// [`BackfillConfigError`] for a page size outside 1–200 or a zero lease.
    pub fn new(
        config: BackfillConfig,
        profiles: ProfileClient,
        deduper: Arc<dyn Deduper>,
        deliver: Arc<dyn Deliver>,
    ) -> Result<Self, BackfillConfigError> {
        config.validate()?;
        let query = TraitsQuery::new()
            .limit(config.page_size)
            .map_err(|InvalidLimit(value)| BackfillConfigError::PageSize { value })?
            .include(config.include.iter().cloned());
        Ok(Self {
            limiter: Arc::new(GovernorLimiter::per_second(
                config.profile_requests_per_second,
            )),
            mapper: Arc::new(ConfigMapper::new(config.mapping.clone())),
            config,
            query,
            profiles,
            deduper,
            deliver,
            counters: Counters::default(),
        })
    }

    /// Takes a token from `limiter` before every Profile API request (share one limiter
    /// between every reader of the space).
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Maps the identify message with `mapper` instead of the configured [`ConfigMapper`].
    pub fn with_mapper(mut self, mapper: Arc<dyn Mapper>) -> Self {
        self.mapper = mapper;
        self
    }

    /// The settings.
    pub fn config(&self) -> &BackfillConfig {
        &self.config
    }

    /// What the flow did so far.
    pub fn stats(&self) -> BackfillStats {
        self.counters.snapshot()
    }

    /// Handles a (verified) reporting-webhook event: a `subscribed` metric is backfilled once
    /// per `event_id`; anything else is skipped with [`SkipReason::Filtered`].
    pub async fn on_event(&self, event: &ReportingEvent) -> Result<Outcome, BackfillError> {
        let started = Instant::now();
        let span = tracing::debug_span!("backfill_event", metric = event.metric.as_str());
        let result = self.on_event_inner(event).instrument(span).await;
        self.answered(&result, started);
        result
    }

    async fn on_event_inner(&self, event: &ReportingEvent) -> Result<Outcome, BackfillError> {
        if event.metric != Metric::Subscribed {
            return Ok(Outcome::Skipped(SkipReason::Filtered));
        }
        let key = format!("{DEDUPE_KEY_PREFIX}{}", event.event_id);
        let lease = Duration::from_secs(self.config.lease_seconds);
        let person = BackfillPerson::from_event(event);
        let answer = self
            .deduper
            .once(&key, lease, || self.backfill_inner(&person))
            .await
            .map_err(BackfillError::Dedupe)?;
        match answer {
            Once::Ran(result) => result,
            Once::InFlight => Err(BackfillError::InFlight),
            Once::Done => Ok(Outcome::Skipped(SkipReason::Duplicate)),
        }
    }

    /// Reads `person`'s traits from the Profile API and writes them to Customer.io.
    pub async fn backfill(&self, person: &BackfillPerson) -> Result<Outcome, BackfillError> {
        let started = Instant::now();
        let span = tracing::debug_span!("backfill");
        let result = self.backfill_inner(person).instrument(span).await;
        self.answered(&result, started);
        result
    }

    /// Counts one answer in the stats and the metrics.
    fn answered(&self, result: &Result<Outcome, BackfillError>, started: Instant) {
        self.counters.record(result);
        record_answer(FLOW, result, started);
    }

    async fn backfill_inner(&self, person: &BackfillPerson) -> Result<Outcome, BackfillError> {
        let skip = |reason| Ok(Outcome::Skipped(reason));
        let Some(identifier) = person.identifier() else {
            return skip(SkipReason::NoIdentity);
        };
        let mut lookups = Vec::with_capacity(2);
        if let Some(id) = &person.id {
            lookups.push(ExternalId::user_id(id.as_str()).map_err(BackfillError::Lookup)?);
        }
        if self.config.lookup_by_email
            && let Some(email) = &person.email
        {
            lookups.push(ExternalId::email(email.as_str()).map_err(BackfillError::Lookup)?);
        }
        if lookups.is_empty() {
            return skip(SkipReason::NoIdentity);
        }
        let mut found = None;
        for lookup in &lookups {
            if let Some(traits) = self.read_traits(lookup).await? {
                found = Some(traits);
                break;
            }
        }
        let Some(mut traits) = found else {
            tracing::debug!("No Segment profile for a new subscriber.");
            return skip(SkipReason::NotFound);
        };
        traits.retain(|key, _| !self.config.protected_traits.contains(key));
        if traits.is_empty() {
            return skip(SkipReason::NothingToWrite);
        }

        let target = Target::Person {
            identifier,
            anonymous_id: None,
        };
        let message = identify_message(person, traits)?;
        let operations = match self
            .mapper
            .map(&message, &target)
            .map_err(BackfillError::Mapping)?
        {
            Mapped::Operations(operations) if !operations.is_empty() => operations,
            Mapped::Operations(_) => return skip(SkipReason::Filtered),
            Mapped::Skip(reason) => return skip(reason),
        };
        // A person target always has an ordering key.
        let key = ordering_key(&target).unwrap_or_default();
        match self
            .deliver
            .deliver(operations, &key)
            .await
            .map_err(BackfillError::Delivery)?
        {
            Delivered::Accepted => Ok(Outcome::Delivered),
            Delivered::DeadLettered(reason) => Ok(Outcome::DeadLettered(reason)),
        }
    }

    /// Every page of a profile's traits, a rate-limit token taken before each request.
    /// `Ok(None)` when the profile does not exist.
    async fn read_traits(
        &self,
        id: &ExternalId,
    ) -> Result<Option<Map<String, Value>>, BackfillError> {
        let mut traits = Map::new();
        let mut next: Option<String> = None;
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            self.limiter
                .acquire()
                .await
                .map_err(BackfillError::RateLimiter)?;
            let page = self
                .profiles
                .traits_page(Collection::Users, id, &self.query, next.as_deref())
                .await
                .map_err(BackfillError::Profile)?;
            let Some(page) = page else {
                // The client answers `None` only for the first page (a later 404 is an error).
                return Ok(None);
            };
            pages += 1;
            let cursor = page.next_cursor().map(str::to_owned);
            traits.extend(page.traits);
            match cursor {
                None => return Ok(Some(traits)),
                Some(cursor) => {
                    if !seen.insert(cursor.clone()) {
                        return Err(BackfillError::Paging(
                            "the paging cursor repeated an earlier value",
                        ));
                    }
                    if pages >= MAX_PAGES {
                        return Err(BackfillError::Paging("the profile has too many pages"));
                    }
                    next = Some(cursor);
                }
            }
        }
    }
}

/// The identify message carrying `traits`. Its ids are informative only: the mapping writes to
/// the target it is given.
fn identify_message(
    person: &BackfillPerson,
    traits: Map<String, Value>,
) -> Result<Message, BackfillError> {
    let mut value = Map::new();
    value.insert("type".to_owned(), Value::from("identify"));
    if let Some(id) = &person.id {
        value.insert("userId".to_owned(), Value::from(id.as_str()));
    }
    value.insert("traits".to_owned(), Value::Object(traits));
    Message::from_value(Value::Object(value)).map_err(BackfillError::Message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DeliverError;

    #[derive(Debug)]
    struct NoDeliver;

    #[async_trait::async_trait]
    impl Deliver for NoDeliver {
        async fn deliver(
            &self,
            _: Vec<customerio_client::track::v2::Operation>,
            _: &str,
        ) -> Result<Delivered, DeliverError> {
            Err(DeliverError::new("not in this test"))
        }
    }

    #[test]
    fn the_flow_refuses_a_configuration_that_cannot_work() {
        let client =
            ProfileClient::builder(segment_model::client::profile::AccessToken::new("t"), "spa")
                .build()
                .unwrap();
        let deliver: Arc<dyn Deliver> = Arc::new(NoDeliver);
        let deduper = Arc::new(crate::dedupe::MemoryDeduper::default());
        let too_big = BackfillConfig {
            page_size: 201,
            ..BackfillConfig::default()
        };
        assert_eq!(
            BackfillFlow::new(too_big, client.clone(), deduper.clone(), deliver.clone())
                .unwrap_err(),
            BackfillConfigError::PageSize { value: 201 }
        );
        let zero = BackfillConfig {
            lease_seconds: 0,
            ..BackfillConfig::default()
        };
        assert_eq!(
            BackfillFlow::new(zero, client, deduper, deliver).unwrap_err(),
            BackfillConfigError::ZeroLease
        );
    }

    /// Compile-time lock: the flow's futures are `Send`, so hosts can spawn them.
    fn futures_are_send(flow: &BackfillFlow, event: &ReportingEvent, person: &BackfillPerson) {
        fn send<T: Send>(_: T) {}
        send(flow.on_event(event));
        send(flow.backfill(person));
    }

    #[test]
    fn flow_futures_are_send() {
        let _ = futures_are_send;
    }
}
