//! Engagement back-sync: Customer.io reporting webhooks → Segment `track` events.
//!
//! Customer.io posts one reporting event per request (an email was delivered, opened, clicked,
//! a person unsubscribed, …). [`EngagementFlow`] checks the request's signature, turns the event
//! into a Segment `track` call named by Segment's semantic specs, stamps it with the
//! [`LoopGuard`] so it never flows back into Customer.io, and hands it to a dispatcher with a
//! [`SegmentTrackingSink`] (Segment's `POST /v1/batch`), which batches the events of many
//! concurrent webhooks into one request. The flow answers each webhook only once Segment
//! accepted its event (or the dispatcher gave it up to the dead-letter sink).
//!
//! # Steps, for one webhook
//!
//! 1. **Signature** — `X-CIO-Signature` / `X-CIO-Timestamp` over the raw body
//!    ([`SignatureVerifier`]); a failure is [`EngagementError::Signature`] and nothing is sent.
//!    The body is then decoded ([`ReportingEvent`]). Hosts that verify and queue first call
//!    [`EngagementFlow::process`] with the decoded event instead of
//!    [`EngagementFlow::receive`].
//! 2. **Dedupe** — the key `engagement:` + `event_id` is claimed in the [`Deduper`]
//!    (Customer.io retries re-send the same `event_id`). The prefix keeps this flow's keys apart
//!    from the Segment messageIds of the pipeline and from the backfill flow's keys when they
//!    share one store. Claim → commit after the event was delivered, skipped or dead-lettered;
//!    release after any error, so Customer.io's retry is handled again (the pipeline's rule).
//! 3. **Translation** (pure, [`EngagementFlow::translate`]) — the event name from the name table
//!    (below), the identity, the properties, the timestamp, and a `messageId`.
//! 4. **Loop guard** — [`LoopGuard::stamp`]: a provenance stamp in `context`, every Customer.io
//!    destination switched off in `integrations`, and the messageId remembered, so the event is
//!    recognised if Segment routes it back to this library.
//! 5. **Delivery** — submitted to the dispatcher; the flow waits for its completion.
//!
//! # What the host answers
//!
//! Every answer follows the crate's one ack rule ([`crate::outcome`]); for Customer.io it means:
//!
//! | result | [`Ack`] | status |
//! |---|---|---|
//! | [`Outcome::Delivered`], [`Outcome::Skipped`], [`Outcome::DeadLettered`] | — (finished) | 200 |
//! | [`EngagementError::Payload`], [`EngagementError::Translate`] (authentic but unusable: every retry would fail the same way; keep the body for a human) | [`Ack::Refuse`] | 200 |
//! | [`EngagementError::InFlight`], [`EngagementError::Store`], [`EngagementError::Delivery`] | [`Ack::RetryLater`] | 503 |
//! | [`EngagementError::Signature`] | [`Ack::Refuse`] | 401 |
//!
//! Customer.io holds back later events of a webhook while one is failing, and waits an hour
//! after some statuses (`429`, `500`, `502`, …); `503` is not among them, so a retry-later answer
//! is retried on Customer.io's ordinary backoff.
//!
//! # Event names
//!
//! The table is keyed by Customer.io's reporting-webhook event names, `<object_type>_<metric>`:
//!
//! | key | Segment event | source of the name |
//! |---|---|---|
//! | `email_delivered` | `Email Delivered` | Email spec |
//! | `email_opened` | `Email Opened` | Email spec |
//! | `email_clicked` | `Email Link Clicked` | Email spec |
//! | `email_bounced` | `Email Bounced` | Email spec |
//! | `email_spammed` | `Email Marked as Spam` | Email spec |
//! | `email_unsubscribed`, `customer_unsubscribed` | [`EngagementConfig::unsubscribed_event`] (default `Unsubscribed`) | Email spec; Customer.io's own Segment integration says `Email Unsubscribed` |
//! | `push_delivered` | `Push Notification Received` | Native Mobile spec |
//! | `push_opened` | `Push Notification Tapped` | Native Mobile spec |
//! | `push_bounced` | `Push Notification Bounced` | Native Mobile spec |
//! | `sms_sent` | `SMS Sent` | this crate (Segment has no SMS spec; Engage's names where one fits) |
//! | `sms_delivered` | `SMS Delivered` | this crate |
//! | `sms_bounced` | `SMS Undelivered` | this crate |
//! | `sms_failed` | `SMS Failed` | this crate |
//! | `sms_clicked` | `SMS Link Clicked` | this crate |
//! | `sms_replied` | `SMS Received` | this crate |
//!
//! Any other pair (email `sent`, push `clicked`, in-app, Slack, …) is skipped with
//! [`SkipReason::NotMapped`] unless [`EngagementConfig::names`] gives it a name.
//! [`EngagementConfig::names`] adds and replaces entries, [`EngagementConfig::disable`]
//! removes them, and [`EngagementConfig::replace_default_names`] drops the default table so
//! `names` is the whole table.
//!
//! # Identity
//!
//! `userId` is the person's Customer.io `id` (`data.identifiers.id`, else the deprecated
//! `data.customer_id`). Without one, [`WithoutUserId`] decides: the person's email as
//! `anonymousId` (default; what Customer.io's own Segment integration does) or a skip with
//! [`SkipReason::AnonymousNotAllowed`].
//!
//! # Properties and context
//!
//! - Email and customer events follow the Email spec ([`EmailProperties`]): `email_id` =
//!   `delivery_id`; `email_subject` = `subject`; `campaign_id` = the campaign, broadcast,
//!   newsletter or transactional message id (as text); `campaign_name` = the campaign,
//!   broadcast or newsletter name when the payload has one; `link_id` and `link_url` (= `href`)
//!   on clicks. `context.traits.email` is the recipient (`data.recipient`, else the person's
//!   email).
//! - Push events follow the Native Mobile spec: a `campaign` object with `name` (when known)
//!   and `medium` = `Push`.
//! - Every channel other than email also carries `delivery_id`, `campaign_id`, `campaign_name`,
//!   `link_id` and `link_url` when known (there is no spec key for them), and
//!   `context.traits.email` is the person's email when known.
//! - A failure message (`data.failure_message`: bounces, failures) is `reason`, on every channel.
//!
//! `timestamp` is the webhook's `timestamp` (when the event happened). `messageId` is the UUID v5
//! of `event_id` under [`MESSAGE_ID_NAMESPACE`], so a webhook that Customer.io retries becomes
//! the same Segment message, which Segment de-duplicates.
//!
//! ```
//! use std::sync::Arc;
//! use cio_segment_sync::customerio_client::webhook::{ReportingEvent, SignatureVerifier, WebhookSigningKey};
//! use cio_segment_sync::flows::engagement::{EngagementConfig, EngagementFlow, Translated};
//! use cio_segment_sync::dead_letter::MemoryDeadLetters;
//! use cio_segment_sync::dedupe::MemoryDeduper;
//! use cio_segment_sync::dispatch::sinks::SegmentTrackingSink;
//! use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig};
//! use cio_segment_sync::loop_guard::StampingLoopGuard;
//! use cio_segment_sync::rate_limit::Unlimited;
//! use cio_segment_sync::segment_model::WriteKey;
//! use cio_segment_sync::segment_model::client::tracking::TrackingClient;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: EngagementConfig = toml::from_str(r#"
//!     unsubscribed_event = "Email Unsubscribed"
//!     without_user_id = "skip"
//!     [names]
//!     email_sent = "Email Sent"
//! "#)?;
//! let dead_letters = Arc::new(MemoryDeadLetters::new(1_000));
//! let tracking = TrackingClient::builder(WriteKey::new("segment-write-key")).build()?;
//! let (handle, worker) = Dispatcher::new(
//!     SegmentTrackingSink::new(tracking),
//!     DispatcherConfig::default(),
//!     Arc::new(Unlimited),
//!     dead_letters.clone(),
//! );
//! // The host runs `worker` (e.g. `tokio::spawn(worker)`) and calls `handle.shutdown()` at exit.
//! # drop(worker);
//! let flow = EngagementFlow::new(
//!     config,
//!     SignatureVerifier::new(WebhookSigningKey::new("cio-signing-key")?),
//!     Arc::new(MemoryDeduper::default()),
//!     Arc::new(StampingLoopGuard::default()),
//!     handle,
//!     dead_letters,
//! )?;
//!
//! let event = ReportingEvent::from_slice(br#"{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ",
//!     "object_type":"email","metric":"sent","timestamp":1717173000,
//!     "data":{"identifiers":{"id":"user-42"},"delivery_id":"RPIL","campaign_id":5}}"#)?;
//! let Translated::Message(message) = flow.translate(&event)? else { unreachable!() };
//! assert_eq!(message.event(), Some("Email Sent"));
//! assert_eq!(message.user_id().map(|id| id.to_string()).as_deref(), Some("user-42"));
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use customerio_client::webhook::{
    EventData, Field, IdValue, MessageSource, Metric, ObjectType, PayloadError, ReportingEvent,
    SignatureError, SignatureVerifier,
};
use segment_model::spec::{EmailProperties, PushCampaign, PushProperties};
use segment_model::{Context, Message, Properties, Timestamp, Traits};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterSink};
use crate::dedupe::{Deduper, DeduperExt, Once};
use crate::dispatch::sinks::SegmentTrackingSink;
use crate::dispatch::{Delivery, DispatcherHandle, FailureKind, OrderingKey, Sink, SubmitError};
use crate::loop_guard::LoopGuard;
use crate::outcome::{Ack, AckRule, Outcome, SkipReason};
use crate::store::StoreError;

/// The namespace of the UUID v5 `messageId`s derived from Customer.io `event_id`s. Fixed
/// forever: changing it would make Segment accept a retried webhook's event a second time.
pub const MESSAGE_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1d_2a8e_93f4_5b07_8e2c_4d9a_b1f3_e570);

/// The prefix of this flow's dedupe keys (`engagement:` + `event_id`).
pub const DEDUPE_KEY_PREFIX: &str = "engagement:";

/// The `messageId` the flow gives the Segment event of the webhook event `event_id`: the
/// hyphenated UUID v5 of its bytes under [`MESSAGE_ID_NAMESPACE`].
///
/// ```
/// use cio_segment_sync::flows::engagement::message_id_for;
///
/// let id = message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ");
/// assert_eq!(id, message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ"));
/// assert_eq!(id.len(), 36);
/// ```
pub fn message_id_for(event_id: &str) -> String {
    uuid::Uuid::new_v5(&MESSAGE_ID_NAMESPACE, event_id.as_bytes()).to_string()
}

/// The default name of an (object type, metric) pair, keyed `<object_type>_<metric>`; the
/// unsubscribe name comes from the configuration.
fn default_name<'a>(key: &str, unsubscribed: &'a str) -> Option<&'a str> {
    Some(match key {
        "email_delivered" => "Email Delivered",
        "email_opened" => "Email Opened",
        "email_clicked" => "Email Link Clicked",
        "email_bounced" => "Email Bounced",
        "email_spammed" => "Email Marked as Spam",
        "email_unsubscribed" | "customer_unsubscribed" => unsubscribed,
        "push_delivered" => "Push Notification Received",
        "push_opened" => "Push Notification Tapped",
        "push_bounced" => "Push Notification Bounced",
        "sms_sent" => "SMS Sent",
        "sms_delivered" => "SMS Delivered",
        "sms_bounced" => "SMS Undelivered",
        "sms_failed" => "SMS Failed",
        "sms_clicked" => "SMS Link Clicked",
        "sms_replied" => "SMS Received",
        _ => return None,
    })
}

/// What to do with an event about a person who has no Customer.io `id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WithoutUserId {
    /// Send it with the person's email as `anonymousId` (Customer.io's own Segment integration
    /// does this); skip it when there is no email either. The default.
    #[default]
    AnonymousEmail,
    /// Skip it ([`SkipReason::AnonymousNotAllowed`]).
    Skip,
}

/// Settings of an [`EngagementFlow`], loadable from TOML or JSON. Every key has a default;
/// unknown keys are refused.
///
/// ```toml
/// unsubscribed_event = "Unsubscribed"  # or "Email Unsubscribed"
/// replace_default_names = false        # true: `names` is the whole table
/// without_user_id = "anonymous_email"  # | "skip"
/// lease_seconds = 600
/// disable = []                         # e.g. ["email_bounced"]
///
/// [names]                              # "<object_type>_<metric>" = "Segment event"
/// # email_sent = "Email Sent"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EngagementConfig {
    /// The Segment name of `email_unsubscribed` and `customer_unsubscribed`. Default
    /// `Unsubscribed` (the Email spec's name); Customer.io's own Segment integration uses
    /// `Email Unsubscribed`.
    pub unsubscribed_event: String,
    /// Names by `<object_type>_<metric>`, added to (or replacing entries of) the default table.
    pub names: BTreeMap<String, String>,
    /// Whether the default table is dropped, leaving [`names`](Self::names) as the whole table.
    /// Default `false`.
    pub replace_default_names: bool,
    /// `<object_type>_<metric>` keys never sent, whatever the tables say.
    pub disable: BTreeSet<String>,
    /// What to do when the person has no Customer.io `id`. Default
    /// [`WithoutUserId::AnonymousEmail`].
    pub without_user_id: WithoutUserId,
    /// How long, in seconds, a claim on an `event_id` lasts. It must outlast the slowest
    /// delivery, retries included. Default 600.
    pub lease_seconds: u64,
}

impl Default for EngagementConfig {
    fn default() -> Self {
        Self {
            unsubscribed_event: "Unsubscribed".to_owned(),
            names: BTreeMap::new(),
            replace_default_names: false,
            disable: BTreeSet::new(),
            without_user_id: WithoutUserId::default(),
            lease_seconds: 600,
        }
    }
}

impl EngagementConfig {
    /// The Segment event name for the pair, or `None` when the pair is not sent.
    pub fn event_name(&self, object_type: &ObjectType, metric: &Metric) -> Option<&str> {
        let key = format!("{}_{}", object_type.as_str(), metric.as_str());
        if self.disable.contains(&key) {
            return None;
        }
        if let Some(name) = self.names.get(&key) {
            return Some(name);
        }
        if self.replace_default_names {
            return None;
        }
        default_name(&key, &self.unsubscribed_event)
    }

    /// Checks the settings: no blank event name, a lease of at least one second.
    pub fn validate(&self) -> Result<(), EngagementConfigError> {
        if self.unsubscribed_event.trim().is_empty() {
            return Err(EngagementConfigError::BlankName {
                key: "unsubscribed_event".to_owned(),
            });
        }
        if let Some((key, _)) = self.names.iter().find(|(_, name)| name.trim().is_empty()) {
            return Err(EngagementConfigError::BlankName {
                key: format!("names.{key}"),
            });
        }
        if self.lease_seconds == 0 {
            return Err(EngagementConfigError::ZeroLease);
        }
        Ok(())
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
}

/// An [`EngagementConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngagementConfigError {
    /// An event name is empty or blank.
    #[error("`{key}` is a blank event name")]
    BlankName {
        /// Where: `unsubscribed_event` or `names.<key>`.
        key: String,
    },
    /// `lease_seconds` is 0.
    #[error("`lease_seconds` must be at least 1")]
    ZeroLease,
}

/// What an [`EngagementFlow`] did so far: one count per way a webhook ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngagementStats {
    /// Events Segment accepted.
    pub delivered: u64,
    /// Events skipped as duplicates of handled webhook events.
    pub duplicates: u64,
    /// Events skipped for another reason (not mapped, no identity).
    pub skipped: u64,
    /// Events given up to the dead-letter sink.
    pub dead_lettered: u64,
    /// Requests refused by the signature check.
    pub refused: u64,
    /// Webhooks answered "retry later" (in flight, store or delivery failure).
    pub retry_later: u64,
    /// Authentic webhooks that cannot be used (undecodable, untranslatable).
    pub unusable: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    duplicates: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    refused: AtomicU64,
    retry_later: AtomicU64,
    unusable: AtomicU64,
}

impl Counters {
    fn record(&self, result: &Result<Outcome, EngagementError>) {
        let counter = match result {
            Ok(Outcome::Delivered) => &self.delivered,
            Ok(Outcome::Skipped(SkipReason::Duplicate)) => &self.duplicates,
            Ok(Outcome::Skipped(_)) => &self.skipped,
            Ok(Outcome::DeadLettered(_)) => &self.dead_lettered,
            Err(EngagementError::Signature(_)) => &self.refused,
            Err(error) => match error.ack() {
                Ack::RetryLater => &self.retry_later,
                Ack::Refuse => &self.unusable,
            },
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> EngagementStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EngagementStats {
            delivered: get(&self.delivered),
            duplicates: get(&self.duplicates),
            skipped: get(&self.skipped),
            dead_lettered: get(&self.dead_lettered),
            refused: get(&self.refused),
            retry_later: get(&self.retry_later),
            unusable: get(&self.unusable),
        }
    }
}

/// Which store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowStep {
    /// Claiming the event id.
    Dedupe,
    /// Stamping the Segment event (remembering its messageId).
    LoopGuard,
}

impl fmt::Display for FlowStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlowStep::Dedupe => "dedupe",
            FlowStep::LoopGuard => "loop guard",
        })
    }
}

/// A webhook event that cannot become a Segment event. Permanent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// `timestamp` is outside the range of instants Segment can carry.
    #[error("`timestamp` is out of range")]
    Timestamp,
    /// The Segment message was refused by its builder (e.g. a name or id over a limit).
    #[error("the Segment event could not be built")]
    Message(#[source] segment_model::Error),
}

/// The webhook is not finished, or was refused. See [`AckRule::ack`].
///
/// No variant shows a customer id or email.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngagementError {
    /// The request failed the signature check: answer 401. Nothing was sent.
    #[error("the webhook signature check failed")]
    Signature(#[source] SignatureError),
    /// The body is authentic but does not decode. Keep it for a human and answer 2xx.
    #[error("the webhook payload could not be decoded")]
    Payload(#[source] PayloadError),
    /// The event cannot become a Segment event. Keep it for a human and answer 2xx.
    #[error("the webhook event could not be translated")]
    Translate(#[source] TranslateError),
    /// Another worker is handling this event id: retry later.
    #[error("another worker is handling this webhook event")]
    InFlight,
    /// A store failed: retry later.
    #[error("{step} step: store failed")]
    Store {
        /// Which step.
        step: FlowStep,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The dispatcher closed or dropped the event, or its dead letter was not recorded: retry
    /// later.
    #[error("the Segment event was not delivered: {0}")]
    Delivery(&'static str),
}

impl AckRule for EngagementError {
    /// [`Ack::Refuse`] for a request that is not authentic or an event that can never be used
    /// (every retry would fail the same way), [`Ack::RetryLater`] otherwise. The Customer.io
    /// endpoint answers a refused *authentic* event 200 and keeps it as a dead letter (a `4xx`
    /// pauses Customer.io's webhooks), a failed signature 401.
    fn ack(&self) -> Ack {
        match self {
            EngagementError::Signature(_)
            | EngagementError::Payload(_)
            | EngagementError::Translate(_) => Ack::Refuse,
            EngagementError::InFlight
            | EngagementError::Store { .. }
            | EngagementError::Delivery(_) => Ack::RetryLater,
        }
    }
}

/// What [`EngagementFlow::translate`] makes of an event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Translated {
    /// Send this message (not stamped yet). Boxed: a message is large next to a skip.
    Message(Box<Message>),
    /// Send nothing.
    Skip(SkipReason),
}

/// One webhook request as received: the raw values of the two signature headers (named by
/// [`TIMESTAMP_HEADER`](customerio_client::webhook::TIMESTAMP_HEADER) and
/// [`SIGNATURE_HEADER`](customerio_client::webhook::SIGNATURE_HEADER), matched
/// case-insensitively by HTTP libraries; `None` when absent) and the body bytes exactly as
/// received (never re-serialised).
#[derive(Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The `X-CIO-Timestamp` header value.
    pub timestamp: Option<&'a [u8]>,
    /// The `X-CIO-Signature` header value.
    pub signature: Option<&'a [u8]>,
    /// The raw body.
    pub body: &'a [u8],
}

impl fmt::Debug for SignedRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body holds customer data.
        f.debug_struct("SignedRequest")
            .field("has_timestamp", &self.timestamp.is_some())
            .field("has_signature", &self.signature.is_some())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// The engagement back-sync. See the [module docs](self).
pub struct EngagementFlow<S: Sink<Item = Message> = SegmentTrackingSink> {
    config: EngagementConfig,
    verifier: SignatureVerifier,
    deduper: Arc<dyn Deduper>,
    loop_guard: Arc<dyn LoopGuard>,
    dispatcher: DispatcherHandle<S>,
    dead_letters: Arc<dyn DeadLetterSink>,
    counters: Counters,
}

impl<S: Sink<Item = Message>> fmt::Debug for EngagementFlow<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngagementFlow")
            .field("config", &self.config)
            .field("verifier", &self.verifier)
            .field("deduper", &self.deduper)
            .field("loop_guard", &self.loop_guard)
            .field("dispatcher", &self.dispatcher)
            .field("dead_letters", &self.dead_letters)
            .field("stats", &self.counters.snapshot())
            .finish()
    }
}

impl<S: Sink<Item = Message>> EngagementFlow<S> {
    /// A flow checking signatures with `verifier`, de-duplicating on `deduper`, stamping with
    /// `loop_guard` (share it with the pipeline that reads Segment, so echoes are dropped
    /// there), and sending through `dispatcher`. Events the dispatcher refuses at submit (too
    /// large, not encodable) are recorded in `dead_letters`; pass the dispatcher's own sink.
    ///
    /// # Errors
    ///
    /// [`EngagementConfigError`] when `config` fails [`EngagementConfig::validate`].
    pub fn new(
        config: EngagementConfig,
        verifier: SignatureVerifier,
        deduper: Arc<dyn Deduper>,
        loop_guard: Arc<dyn LoopGuard>,
        dispatcher: DispatcherHandle<S>,
        dead_letters: Arc<dyn DeadLetterSink>,
    ) -> Result<Self, EngagementConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            verifier,
            deduper,
            loop_guard,
            dispatcher,
            dead_letters,
            counters: Counters::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &EngagementConfig {
        &self.config
    }

    /// What the flow did so far.
    pub fn stats(&self) -> EngagementStats {
        self.counters.snapshot()
    }

    /// Verifies, decodes and processes one webhook request; `now` is the current time (for the
    /// signature's timestamp window).
    pub async fn receive(
        &self,
        request: SignedRequest<'_>,
        now: SystemTime,
    ) -> Result<Outcome, EngagementError> {
        let result = match self.verify(request, now) {
            Ok(event) => self.process_inner(&event).await,
            Err(error) => Err(error),
        };
        self.counters.record(&result);
        result
    }

    /// [`receive`](Self::receive) with `now` read from the system clock.
    pub async fn receive_now(
        &self,
        request: SignedRequest<'_>,
    ) -> Result<Outcome, EngagementError> {
        self.receive(request, SystemTime::now()).await
    }

    fn verify(
        &self,
        request: SignedRequest<'_>,
        now: SystemTime,
    ) -> Result<ReportingEvent, EngagementError> {
        self.verifier
            .verify(request.timestamp, request.signature, request.body, now)
            .map_err(EngagementError::Signature)?;
        ReportingEvent::from_slice(request.body).map_err(EngagementError::Payload)
    }

    /// Processes an event that was already verified and decoded: dedupe, translate, stamp,
    /// deliver.
    pub async fn process(&self, event: &ReportingEvent) -> Result<Outcome, EngagementError> {
        let result = self.process_inner(event).await;
        self.counters.record(&result);
        result
    }

    async fn process_inner(&self, event: &ReportingEvent) -> Result<Outcome, EngagementError> {
        let span = tracing::debug_span!(
            "engagement_process",
            object_type = event.object_type.as_str(),
            metric = event.metric.as_str()
        );
        self.claim_and_run(event).instrument(span).await
    }

    async fn claim_and_run(&self, event: &ReportingEvent) -> Result<Outcome, EngagementError> {
        let key = format!("{DEDUPE_KEY_PREFIX}{}", event.event_id);
        // Committed when the event is finished (an outcome), released after any error, as the
        // pipeline does: a retry of an event that failed is tried again (and fails the same way
        // if the failure is permanent, which costs nothing and lets a fixed configuration
        // through).
        let answer = self
            .deduper
            .once(&key, self.config.lease(), || self.run(event))
            .await
            .map_err(|source| EngagementError::Store {
                step: FlowStep::Dedupe,
                source,
            })?;
        match answer {
            Once::Ran(result) => result,
            Once::InFlight => Err(EngagementError::InFlight),
            Once::Done => Ok(Outcome::Skipped(SkipReason::Duplicate)),
        }
    }

    async fn run(&self, event: &ReportingEvent) -> Result<Outcome, EngagementError> {
        let mut message = match self.translate(event).map_err(EngagementError::Translate)? {
            Translated::Message(message) => *message,
            Translated::Skip(reason) => {
                tracing::debug!(%reason, "Skipped a webhook event.");
                return Ok(Outcome::Skipped(reason));
            }
        };
        self.loop_guard
            .stamp(&mut message)
            .await
            .map_err(|source| EngagementError::Store {
                step: FlowStep::LoopGuard,
                source,
            })?;
        let person = message
            .user_id()
            .or_else(|| message.anonymous_id())
            .map(|id| id.as_str().into_owned())
            .unwrap_or_default();
        let key = OrderingKey::new(format!("segment:{person}"));
        let completion = match self.dispatcher.submit(message, Some(key)).await {
            Ok(completion) => completion,
            Err(SubmitError::TooLarge { item, bytes, limit }) => {
                let reason = DeadLetterReason::TooLarge { bytes, limit };
                return self.refuse(&item, reason, key).await;
            }
            Err(SubmitError::Encode { item, source }) => {
                let reason = DeadLetterReason::Failed {
                    kind: FailureKind::Permanent,
                    error: source.to_string(),
                };
                return self.refuse(&item, reason, key).await;
            }
            Err(_) => return Err(EngagementError::Delivery("the dispatcher is closed")),
        };
        match completion.await {
            Ok(Delivery::Delivered { .. }) => Ok(Outcome::Delivered),
            Ok(Delivery::DeadLettered {
                reason,
                recorded: true,
                ..
            }) => Ok(Outcome::DeadLettered(reason)),
            Ok(Delivery::DeadLettered {
                recorded: false, ..
            }) => Err(EngagementError::Delivery(
                "the event was given up but its dead letter was not recorded",
            )),
            Ok(Delivery::RetryLater { .. }) => Err(EngagementError::Delivery(
                "the delivery engine stopped retrying a failure that may pass",
            )),
            Err(_) => Err(EngagementError::Delivery(
                "the dispatcher dropped the event",
            )),
        }
    }

    /// Records an event no request can carry, as the dispatcher does for what it gives up.
    async fn refuse(
        &self,
        message: &Message,
        reason: DeadLetterReason,
        key: OrderingKey,
    ) -> Result<Outcome, EngagementError> {
        let item = serde_json::to_value(message)
            .map_err(|_| EngagementError::Delivery("the refused event could not be serialised"))?;
        let mut entry = DeadLetter::new(self.dispatcher.sink.name(), item, reason.clone(), 0);
        entry.ordering_key = Some(key.get());
        self.dead_letters.record(entry).await.map_err(|_| {
            EngagementError::Delivery("the refused event's dead letter was not recorded")
        })?;
        Ok(Outcome::DeadLettered(reason))
    }

    /// The Segment event for `event`, or why there is none. Pure: no I/O, no clock. The message
    /// is not stamped by the loop guard yet.
    ///
    /// # Errors
    ///
    /// [`TranslateError`] when the event's timestamp is out of range or the message cannot be
    /// built.
    pub fn translate(&self, event: &ReportingEvent) -> Result<Translated, TranslateError> {
        translate_with(&self.config, event)
    }
}

/// [`EngagementFlow::translate`] under `config`.
fn translate_with(
    config: &EngagementConfig,
    event: &ReportingEvent,
) -> Result<Translated, TranslateError> {
    let Some(name) = config.event_name(&event.object_type, &event.metric) else {
        return Ok(Translated::Skip(SkipReason::NotMapped(format!(
            "{}_{}",
            event.object_type, event.metric
        ))));
    };
    let person = event.person_identifiers();
    let instant =
        jiff::Timestamp::from_second(event.timestamp).map_err(|_| TranslateError::Timestamp)?;
    let mut builder = Message::track(name)
        .message_id(message_id_for(&event.event_id))
        .timestamp(Timestamp::from_instant(instant));
    builder = match (person.id, person.email, config.without_user_id) {
        (Some(id), _, _) => builder.user_id(id),
        (None, Some(email), WithoutUserId::AnonymousEmail) => builder.anonymous_id(email),
        (None, Some(_), WithoutUserId::Skip) => {
            return Ok(Translated::Skip(SkipReason::AnonymousNotAllowed));
        }
        (None, None, _) => return Ok(Translated::Skip(SkipReason::NoIdentity)),
    };
    let data = &event.data;
    let is_email = matches!(event.object_type, ObjectType::Email | ObjectType::Customer);
    let properties = match event.object_type {
        ObjectType::Email | ObjectType::Customer => email_properties(event),
        ObjectType::Push => push_properties(event),
        _ => Properties(common_properties(event)),
    };
    let recipient = if is_email {
        data.recipient.non_empty().or(person.email)
    } else {
        person.email
    };
    if let Some(email) = recipient {
        let mut context = Context::default();
        context.traits = Some(Traits::new().with("email", email));
        builder = builder.context(context);
    }
    builder
        .properties(properties)
        .build()
        .map(|message| Translated::Message(Box::new(message)))
        .map_err(TranslateError::Message)
}

fn text(field: &Field<String>) -> Option<String> {
    field.non_empty().map(str::to_owned)
}

fn id_text(field: &Field<IdValue>) -> Option<String> {
    field.get().map(IdValue::to_string)
}

/// The campaign, broadcast, newsletter or transactional message id, as text.
fn source_id(event: &ReportingEvent) -> Option<String> {
    event
        .message_source()
        .and_then(|source: MessageSource<'_>| source.id())
        .map(IdValue::to_string)
}

/// The campaign, broadcast or newsletter name.
fn source_name(data: &EventData) -> Option<String> {
    text(&data.campaign_name)
        .or_else(|| text(&data.broadcast_name))
        .or_else(|| text(&data.newsletter_name))
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), Value::String(value));
    }
}

fn email_properties(event: &ReportingEvent) -> Properties {
    let data = &event.data;
    let mut extra = Map::new();
    insert(&mut extra, "reason", text(&data.failure_message));
    EmailProperties {
        email_id: text(&data.delivery_id),
        email_subject: text(&data.subject),
        campaign_id: source_id(event),
        campaign_name: source_name(data),
        link_id: id_text(&data.link_id),
        link_url: text(&data.href),
        list_id: None,
        list_name: None,
        extra,
    }
    .into()
}

fn common_properties(event: &ReportingEvent) -> Map<String, Value> {
    let data = &event.data;
    let mut map = Map::new();
    insert(&mut map, "delivery_id", text(&data.delivery_id));
    insert(&mut map, "campaign_id", source_id(event));
    insert(&mut map, "campaign_name", source_name(data));
    insert(&mut map, "link_id", id_text(&data.link_id));
    insert(&mut map, "link_url", text(&data.href));
    insert(&mut map, "reason", text(&data.failure_message));
    map
}

fn push_properties(event: &ReportingEvent) -> Properties {
    PushProperties {
        campaign: Some(PushCampaign {
            name: source_name(&event.data),
            medium: Some("Push".to_owned()),
            ..PushCampaign::default()
        }),
        action: None,
        extra: common_properties(event),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flow_config(config: EngagementConfig) -> EngagementConfig {
        config.validate().unwrap();
        config
    }

    /// Translation only needs the configuration.
    fn translate(config: &EngagementConfig, event: Value) -> Translated {
        let event = ReportingEvent::from_value(event).unwrap();
        translate_with(config, &event).unwrap()
    }

    fn message_json(translated: Translated) -> Value {
        match translated {
            Translated::Message(m) => serde_json::to_value(&m).unwrap(),
            Translated::Skip(reason) => panic!("expected a message, got a skip: {reason}"),
        }
    }

    fn event(object_type: &str, metric: &str, data: Value) -> Value {
        json!({
            "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": object_type,
            "metric": metric, "timestamp": 1_717_173_000, "data": data
        })
    }

    const MESSAGE_ID: &str = "01E4C4CT6YDC7Y5M7FE1GWWPQJ";

    #[test]
    fn default_table_names_email_push_and_sms() {
        let config = EngagementConfig::default();
        let cases = [
            ("email", "delivered", Some("Email Delivered")),
            ("email", "opened", Some("Email Opened")),
            ("email", "clicked", Some("Email Link Clicked")),
            ("email", "bounced", Some("Email Bounced")),
            ("email", "spammed", Some("Email Marked as Spam")),
            ("email", "unsubscribed", Some("Unsubscribed")),
            ("customer", "unsubscribed", Some("Unsubscribed")),
            ("email", "sent", None),
            ("customer", "subscribed", None),
            ("push", "delivered", Some("Push Notification Received")),
            ("push", "opened", Some("Push Notification Tapped")),
            ("push", "bounced", Some("Push Notification Bounced")),
            ("push", "clicked", None),
            ("sms", "sent", Some("SMS Sent")),
            ("sms", "delivered", Some("SMS Delivered")),
            ("sms", "bounced", Some("SMS Undelivered")),
            ("sms", "failed", Some("SMS Failed")),
            ("sms", "clicked", Some("SMS Link Clicked")),
            ("sms", "replied", Some("SMS Received")),
            ("in_app", "opened", None),
            ("email", "brand_new_metric", None),
        ];
        for (object_type, metric, expected) in cases {
            assert_eq!(
                config.event_name(&ObjectType::from(object_type), &Metric::from(metric)),
                expected,
                "{object_type}_{metric}"
            );
        }
    }

    #[test]
    fn names_override_add_disable_and_replace_the_table() {
        let config: EngagementConfig = toml::from_str(
            r#"
            unsubscribed_event = "Email Unsubscribed"
            disable = ["email_bounced"]
            [names]
            email_sent = "Email Sent"
            email_opened = "Opened It"
            "#,
        )
        .unwrap();
        let name = |o: &str, m: &str| {
            config
                .event_name(&ObjectType::from(o), &Metric::from(m))
                .map(str::to_owned)
        };
        assert_eq!(
            name("email", "unsubscribed").as_deref(),
            Some("Email Unsubscribed")
        );
        assert_eq!(
            name("customer", "unsubscribed").as_deref(),
            Some("Email Unsubscribed")
        );
        assert_eq!(name("email", "sent").as_deref(), Some("Email Sent"));
        assert_eq!(name("email", "opened").as_deref(), Some("Opened It"));
        assert_eq!(name("email", "bounced"), None);
        assert_eq!(
            name("email", "delivered").as_deref(),
            Some("Email Delivered")
        );

        let only: EngagementConfig =
            toml::from_str("replace_default_names = true\n[names]\nemail_clicked = \"Clicked\"\n")
                .unwrap();
        let o = |m: &str| only.event_name(&ObjectType::Email, &Metric::from(m));
        assert_eq!(o("clicked"), Some("Clicked"));
        assert_eq!(o("delivered"), None);
    }

    #[test]
    fn bad_configurations_are_typed_errors() {
        let blank: EngagementConfig = toml::from_str("[names]\nemail_sent = \" \"\n").unwrap();
        assert_eq!(
            blank.validate(),
            Err(EngagementConfigError::BlankName {
                key: "names.email_sent".into()
            })
        );
        let zero: EngagementConfig = toml::from_str("lease_seconds = 0").unwrap();
        assert_eq!(zero.validate(), Err(EngagementConfigError::ZeroLease));
        let unknown = toml::from_str::<EngagementConfig>("unsubscribe_event = \"x\"");
        assert!(unknown.is_err());
        let bad_fallback = toml::from_str::<EngagementConfig>("without_user_id = \"guess\"");
        assert!(bad_fallback.is_err());
    }

    #[test]
    fn email_click_follows_the_email_spec() {
        let config = flow_config(EngagementConfig::default());
        let out = translate(
            &config,
            event(
                "email",
                "clicked",
                json!({
                    "identifiers": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c1"},
                    "customer_id": "user-42", "delivery_id": "RPIL", "campaign_id": 5,
                    "campaign_name": "Trial ending", "action_id": 96,
                    "recipient": "ada+news@example.com", "subject": "Your trial ends soon",
                    "href": "https://example.com/upgrade", "link_id": 3, "machine": false
                }),
            ),
        );
        assert_eq!(
            message_json(out),
            json!({
                "type": "track", "event": "Email Link Clicked",
                "messageId": message_id_for(MESSAGE_ID), "userId": "user-42",
                "timestamp": "2024-05-31T16:30:00.000Z",
                "context": {"traits": {"email": "ada+news@example.com"}},
                "properties": {
                    "email_id": "RPIL", "email_subject": "Your trial ends soon",
                    "campaign_id": "5", "campaign_name": "Trial ending",
                    "link_id": "3", "link_url": "https://example.com/upgrade"
                }
            })
        );
    }

    #[test]
    fn bounce_carries_the_reason_and_the_broadcast_as_campaign() {
        let config = EngagementConfig::default();
        let out = translate(
            &config,
            event(
                "email",
                "bounced",
                json!({
                    "identifiers": {"id": "u-1"}, "delivery_id": "D1", "broadcast_id": 12,
                    "broadcast_name": "Launch", "failure_message": "mailbox full"
                }),
            ),
        );
        assert_eq!(
            message_json(out)["properties"],
            json!({
                "email_id": "D1", "campaign_id": "12", "campaign_name": "Launch",
                "reason": "mailbox full"
            })
        );
    }

    #[test]
    fn without_an_id_the_email_is_the_anonymous_id_or_the_event_is_skipped() {
        let data = json!({"identifiers": {"id": null, "email": "ada@example.com"}});
        let out = message_json(translate(
            &EngagementConfig::default(),
            event("email", "opened", data.clone()),
        ));
        assert_eq!(out["anonymousId"], "ada@example.com");
        assert!(out.get("userId").is_none());

        let skip = EngagementConfig {
            without_user_id: WithoutUserId::Skip,
            ..EngagementConfig::default()
        };
        assert_eq!(
            translate(&skip, event("email", "opened", data)),
            Translated::Skip(SkipReason::AnonymousNotAllowed)
        );
        assert_eq!(
            translate(
                &EngagementConfig::default(),
                event(
                    "email",
                    "opened",
                    json!({"identifiers": {"id": "", "email": null}})
                )
            ),
            Translated::Skip(SkipReason::NoIdentity)
        );
        assert_eq!(
            translate(
                &EngagementConfig::default(),
                event("email", "sent", json!({"identifiers": {"id": "u"}}))
            ),
            Translated::Skip(SkipReason::NotMapped("email_sent".into()))
        );
    }

    #[test]
    fn push_and_sms_properties() {
        let config = EngagementConfig::default();
        let push = message_json(translate(
            &config,
            event(
                "push",
                "opened",
                json!({"identifiers": {"id": "u-1", "email": "a@b.co"}, "delivery_id": "P1",
                       "campaign_id": 7, "campaign_name": "Welcome",
                       "recipients": [{"device_id": "tok", "device_platform": "ios"}]}),
            ),
        ));
        assert_eq!(push["event"], "Push Notification Tapped");
        assert_eq!(
            push["properties"],
            json!({
                "campaign": {"name": "Welcome", "medium": "Push"},
                "delivery_id": "P1", "campaign_id": "7", "campaign_name": "Welcome"
            })
        );
        assert_eq!(push["context"], json!({"traits": {"email": "a@b.co"}}));

        let sms = message_json(translate(
            &config,
            event(
                "sms",
                "clicked",
                json!({"identifiers": {"id": "u-1"}, "delivery_id": "S1", "newsletter_id": 4,
                       "recipient": "+15550100", "href": "https://x.example", "link_id": 1}),
            ),
        ));
        assert_eq!(sms["event"], "SMS Link Clicked");
        assert_eq!(
            sms["properties"],
            json!({"delivery_id": "S1", "campaign_id": "4", "link_id": "1",
                   "link_url": "https://x.example"})
        );
        // The phone number is not an email: no context traits.
        assert!(sms.get("context").is_none());
    }

    #[test]
    fn message_ids_are_stable_and_distinct_per_event() {
        assert_eq!(message_id_for("a"), message_id_for("a"));
        assert_ne!(message_id_for("a"), message_id_for("b"));
        // Pinned: the namespace never changes.
        assert_eq!(
            message_id_for(MESSAGE_ID),
            uuid::Uuid::new_v5(&MESSAGE_ID_NAMESPACE, MESSAGE_ID.as_bytes()).to_string()
        );
    }

    #[test]
    fn out_of_range_timestamp_is_a_typed_error() {
        let mut value = event("email", "opened", json!({"identifiers": {"id": "u"}}));
        value["timestamp"] = json!(i64::MAX);
        let event = ReportingEvent::from_value(value).unwrap();
        assert!(matches!(
            translate_with(&EngagementConfig::default(), &event),
            Err(TranslateError::Timestamp)
        ));
    }

    #[test]
    fn errors_follow_the_one_ack_rule() {
        assert_eq!(
            EngagementError::Signature(SignatureError::Mismatch).ack(),
            Ack::Refuse
        );
        assert_eq!(EngagementError::InFlight.ack(), Ack::RetryLater);
        assert_eq!(
            EngagementError::Delivery("the dispatcher is closed").ack(),
            Ack::RetryLater
        );
        assert_eq!(
            EngagementError::Translate(TranslateError::Timestamp).ack(),
            Ack::Refuse
        );
    }

    /// Compile-time lock: the flow's futures are `Send`, so hosts can spawn them.
    fn futures_are_send(flow: &EngagementFlow, event: &ReportingEvent, request: SignedRequest<'_>) {
        fn send<T: Send>(_: T) {}
        send(flow.process(event));
        send(flow.receive(request, SystemTime::now()));
    }

    #[test]
    fn flow_futures_are_send() {
        let _ = futures_are_send;
    }

    #[test]
    fn signed_request_debug_hides_the_body() {
        let request = SignedRequest {
            timestamp: Some(b"1"),
            signature: None,
            body: b"{\"email\":\"ada@example.com\"}",
        };
        assert!(!format!("{request:?}").contains("ada@example.com"));
    }
}
