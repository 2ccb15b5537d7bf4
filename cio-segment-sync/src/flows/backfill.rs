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
//! `Ok(outcome)` is finished (answer 2xx). An error's [`ack`](AckRule::ack) says
//! whether Customer.io (or the host's queue) should retry: Profile API failures follow the
//! client's classification ([`ClientError::is_retryable`], with [`BackfillError::retry_after`]
//! when Segment asked for a delay), store and delivery failures are retried, and inputs that
//! can never work are acked.
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

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use customerio_client::Identifier;
use customerio_client::webhook::{Metric, ReportingEvent};
use segment_model::Message;
use segment_model::client::ClientError;
use segment_model::client::profile::{
    Collection, ExternalId, ExternalIdError, InvalidLimit, MAX_PAGES, MAX_TRAITS_LIMIT,
    ProfileClient, TraitsQuery,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::dedupe::{Deduper, DeduperExt, Once};
use crate::identity::Target;
use crate::mapping::{Mapped, MappingConfig};
use crate::outcome::{Ack, AckRule, Outcome, SkipReason};
use crate::pipeline::{
    ConfigMapper, Deliver, DeliverError, Delivered, MapError, Mapper, ordering_key,
};
use crate::rate_limit::{GovernorLimiter, RateLimiter, RateLimiterExt};
use crate::store::StoreError;

/// The prefix of this flow's dedupe keys (`backfill:` + `event_id`).
pub const DEDUPE_KEY_PREFIX: &str = "backfill:";

/// Profile API requests per second by default: Segment's documented default limit per space.
pub const DEFAULT_PROFILE_REQUESTS_PER_SECOND: u32 = 100;

/// Settings of a [`BackfillFlow`], loadable from TOML or JSON. Every key has a default;
/// unknown keys are refused.
///
/// ```toml
/// lookup_by_email = true               # when the person has no id (or no profile by id)
/// include = []                         # trait names to read; empty: all
/// page_size = 200                      # traits per Profile API page (1-200)
/// profile_requests_per_second = 100    # the default GovernorLimiter's rate
/// protected_traits = ["unsubscribed"]  # never written back
/// lease_seconds = 600
///
/// [mapping]                            # a MappingConfig (see cio_segment_sync::mapping)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackfillConfig {
    /// Whether a person is looked up by email when the lookup by `user_id` is impossible (no
    /// id) or finds nothing. Default `true`. Segment's docs discourage email lookups because
    /// the address lands in request logs; switch this off to look up by id only.
    pub lookup_by_email: bool,
    /// The traits to read (the Profile API's `include`); empty reads them all. Default empty.
    pub include: Vec<String>,
    /// Traits per Profile API page, 1 to 200. Default 200 (fewest requests).
    pub page_size: u16,
    /// Rate of the default in-process limiter on Profile API requests. Default
    /// [`DEFAULT_PROFILE_REQUESTS_PER_SECOND`]. Lower it when other readers share the space's
    /// budget, or pass a shared limiter with [`BackfillFlow::with_rate_limiter`].
    pub profile_requests_per_second: NonZeroU32,
    /// Trait keys never written back. Default `["unsubscribed"]` (see the module docs).
    pub protected_traits: BTreeSet<String>,
    /// How long, in seconds, a claim on a webhook `event_id` lasts. Default 600.
    pub lease_seconds: u64,
    /// How the traits become Customer.io attributes (trait renames, denials, timestamp
    /// conversion). Default [`MappingConfig::default`].
    pub mapping: MappingConfig,
}

impl BackfillConfig {
    /// Checks the settings: a page size of 1–200 and a lease of at least one second.
    ///
    /// # Errors
    ///
    /// [`BackfillConfigError`] naming the setting.
    pub fn validate(&self) -> Result<(), BackfillConfigError> {
        if self.lease_seconds == 0 {
            return Err(BackfillConfigError::ZeroLease);
        }
        TraitsQuery::new()
            .limit(self.page_size)
            .map_err(|InvalidLimit(value)| BackfillConfigError::PageSize { value })?;
        Ok(())
    }
}

impl Default for BackfillConfig {
    fn default() -> Self {
        Self {
            lookup_by_email: true,
            include: Vec::new(),
            page_size: MAX_TRAITS_LIMIT,
            profile_requests_per_second: NonZeroU32::new(DEFAULT_PROFILE_REQUESTS_PER_SECOND)
                .unwrap_or(NonZeroU32::MIN),
            protected_traits: BTreeSet::from(["unsubscribed".to_owned()]),
            lease_seconds: 600,
            mapping: MappingConfig::default(),
        }
    }
}

/// A [`BackfillConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillConfigError {
    /// `page_size` is outside 1–200.
    #[error("`page_size` must be between 1 and {max}, not {value}", max = MAX_TRAITS_LIMIT)]
    PageSize {
        /// The configured value.
        value: u16,
    },
    /// `lease_seconds` is 0.
    #[error("`lease_seconds` must be at least 1")]
    ZeroLease,
}

/// The person to backfill, as Customer.io knows them. Blank values count as absent.
///
/// Its `Debug` output says which identifiers are present, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BackfillPerson {
    id: Option<String>,
    email: Option<String>,
    cio_id: Option<String>,
}

impl fmt::Debug for BackfillPerson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackfillPerson")
            .field("has_id", &self.id.is_some())
            .field("has_email", &self.email.is_some())
            .field("has_cio_id", &self.cio_id.is_some())
            .finish()
    }
}

fn non_blank(value: impl Into<String>) -> Option<String> {
    let value = value.into();
    (!value.trim().is_empty()).then_some(value)
}

impl BackfillPerson {
    /// Nobody yet; add identifiers with the `with_` methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// The person's Customer.io `id` (also their Segment `user_id`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = non_blank(id);
        self
    }

    /// The person's email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = non_blank(email);
        self
    }

    /// The person's Customer.io `cio_id`.
    pub fn with_cio_id(mut self, cio_id: impl Into<String>) -> Self {
        self.cio_id = non_blank(cio_id);
        self
    }

    /// The person a webhook event is about (`data.identifiers`, with its fallbacks).
    pub fn from_event(event: &ReportingEvent) -> Self {
        let ids = event.person_identifiers();
        let mut person = Self::new();
        if let Some(id) = ids.id {
            person = person.with_id(id);
        }
        if let Some(email) = ids.email {
            person = person.with_email(email);
        }
        if let Some(cio_id) = ids.cio_id {
            person = person.with_cio_id(cio_id);
        }
        person
    }

    /// How the backfill writes to the person in Customer.io: by `id`, else `cio_id`, else
    /// `email`.
    pub fn identifier(&self) -> Option<Identifier> {
        if let Some(id) = &self.id {
            Some(Identifier::id(id.as_str()))
        } else if let Some(cio_id) = &self.cio_id {
            Some(Identifier::cio_id(cio_id.as_str()))
        } else {
            self.email.as_deref().map(Identifier::email)
        }
    }
}

/// The backfill did not finish. See [`AckRule::ack`].
///
/// No variant shows a customer id or email.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// The Profile API request failed.
    #[error("the Profile API lookup failed")]
    Profile(#[source] ClientError),
    /// The Profile API's paging went wrong (a cursor that repeats, too many pages).
    #[error("the Profile API lookup failed: {0}")]
    Paging(&'static str),
    /// The lookup id was refused by the Profile client.
    #[error("the profile lookup id is invalid")]
    Lookup(#[source] ExternalIdError),
    /// The rate limiter's store failed.
    #[error("the Profile API rate limiter failed")]
    RateLimiter(#[source] StoreError),
    /// The dedupe store failed.
    #[error("dedupe step: store failed")]
    Dedupe(#[source] StoreError),
    /// Another worker is handling this webhook event.
    #[error("another worker is handling this webhook event")]
    InFlight,
    /// The identify message could not be built from the traits.
    #[error("the identify message could not be built from the profile")]
    Message(#[source] segment_model::Error),
    /// The traits cannot be mapped to Customer.io operations.
    #[error("the profile could not be mapped to Customer.io operations")]
    Mapping(#[source] MapError),
    /// The operations were neither accepted nor dead-lettered.
    #[error("the Customer.io delivery failed")]
    Delivery(#[source] DeliverError),
}

impl AckRule for BackfillError {
    /// [`Ack::Refuse`] for inputs that can never work and Profile API refusals no retry fixes;
    /// [`Ack::RetryLater`] for everything that may pass.
    fn ack(&self) -> Ack {
        match self {
            BackfillError::Profile(error) if !error.is_retryable() => Ack::Refuse,
            BackfillError::Lookup(_) | BackfillError::Message(_) | BackfillError::Mapping(_) => {
                Ack::Refuse
            }
            _ => Ack::RetryLater,
        }
    }
}

impl BackfillError {
    /// The delay Segment asked for (a `429`'s `Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BackfillError::Profile(error) => error.retry_after(),
            _ => None,
        }
    }
}

/// What a [`BackfillFlow`] did so far: one count per way a backfill ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillStats {
    /// Backfills Customer.io accepted.
    pub delivered: u64,
    /// Webhook events skipped as duplicates.
    pub duplicates: u64,
    /// Lookups that found no Segment profile.
    pub not_found: u64,
    /// Backfills skipped for another reason.
    pub skipped: u64,
    /// Backfills given up to the dead-letter sink.
    pub dead_lettered: u64,
    /// Backfills to retry later (Profile API, store or delivery failures).
    pub retry_later: u64,
    /// Backfills that can never work (invalid lookup id, unmappable traits).
    pub unusable: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    duplicates: AtomicU64,
    not_found: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    retry_later: AtomicU64,
    unusable: AtomicU64,
}

impl Counters {
    fn record(&self, result: &Result<Outcome, BackfillError>) {
        let counter = match result {
            Ok(Outcome::Delivered) => &self.delivered,
            Ok(Outcome::Skipped(SkipReason::Duplicate)) => &self.duplicates,
            Ok(Outcome::Skipped(SkipReason::NotFound)) => &self.not_found,
            Ok(Outcome::Skipped(_)) => &self.skipped,
            Ok(Outcome::DeadLettered(_)) => &self.dead_lettered,
            Err(error) if error.ack() == Ack::RetryLater => &self.retry_later,
            Err(_) => &self.unusable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> BackfillStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BackfillStats {
            delivered: get(&self.delivered),
            duplicates: get(&self.duplicates),
            not_found: get(&self.not_found),
            skipped: get(&self.skipped),
            dead_lettered: get(&self.dead_lettered),
            retry_later: get(&self.retry_later),
            unusable: get(&self.unusable),
        }
    }
}

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
        let span = tracing::debug_span!("backfill_event", metric = event.metric.as_str());
        let result = self.on_event_inner(event).instrument(span).await;
        self.counters.record(&result);
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
        let span = tracing::debug_span!("backfill");
        let result = self.backfill_inner(person).instrument(span).await;
        self.counters.record(&result);
        result
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
    use serde_json::json;

    #[test]
    fn config_defaults_and_errors() {
        let config: BackfillConfig = toml::from_str("").unwrap();
        assert_eq!(config, BackfillConfig::default());
        assert!(config.lookup_by_email);
        assert_eq!(config.page_size, 200);
        assert_eq!(config.profile_requests_per_second.get(), 100);
        assert!(config.protected_traits.contains("unsubscribed"));
        assert!(toml::from_str::<BackfillConfig>("profile_requests_per_second = 0").is_err());
        assert!(toml::from_str::<BackfillConfig>("lookup_email = true").is_err());

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
    fn person_from_event_prefers_id_then_cio_id_then_email_and_hides_values() {
        let event = ReportingEvent::from_value(json!({
            "event_id": "E1", "object_type": "customer", "metric": "subscribed",
            "timestamp": 1, "data": {"identifiers": {"id": "", "email": "ada@example.com",
            "cio_id": "c1"}}
        }))
        .unwrap();
        let person = BackfillPerson::from_event(&event);
        assert_eq!(person.identifier(), Some(Identifier::cio_id("c1")));
        assert_eq!(
            BackfillPerson::new().with_email("a@b.co").identifier(),
            Some(Identifier::email("a@b.co"))
        );
        assert_eq!(
            BackfillPerson::new()
                .with_id("u1")
                .with_cio_id("c1")
                .identifier(),
            Some(Identifier::id("u1"))
        );
        assert_eq!(BackfillPerson::new().with_id("  ").identifier(), None);
        let debug = format!("{person:?}");
        assert!(
            !debug.contains("ada@example.com") && !debug.contains("c1"),
            "{debug}"
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

    #[test]
    fn errors_follow_the_one_ack_rule() {
        assert_eq!(BackfillError::InFlight.ack(), Ack::RetryLater);
        assert_eq!(BackfillError::Paging("x").ack(), Ack::RetryLater);
        assert_eq!(
            BackfillError::Lookup(ExternalIdError::EmptyValue).ack(),
            Ack::Refuse
        );
        assert_eq!(BackfillError::InFlight.retry_after(), None);
    }
}
