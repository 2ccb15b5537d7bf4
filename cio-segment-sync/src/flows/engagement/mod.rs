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
//! The module's files: `config.rs` ([`EngagementConfig`]), `error.rs` ([`EngagementError`]),
//! `request.rs` ([`SignedRequest`]), `stats.rs` ([`EngagementStats`]) and this one, the flow.
//! The translation itself is the pure reverse mapping in [`mapping::to_segment`].
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
//! 3. **Translation** (pure, [`EngagementFlow::translate`]) — the event name from the
//!    configured table ([`EngagementConfig::event_name`]), then [`to_segment::track`]: the
//!    identity, the properties, the context, the timestamp, and a `messageId`.
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
//! The default table is the reverse mapping's
//! ([`to_segment`](crate::mapping::to_segment#event-names)), keyed by Customer.io's
//! reporting-webhook event names, `<object_type>_<metric>`: the Email spec for email, the
//! Native Mobile spec for push, a documented table for SMS. Any other pair (email `sent`, push
//! `clicked`, in-app, Slack, …) is skipped with [`SkipReason::NotMapped`] unless
//! [`EngagementConfig::names`] gives it a name. [`EngagementConfig::names`] adds and replaces
//! entries, [`EngagementConfig::disable`] removes them, and
//! [`EngagementConfig::replace_default_names`] drops the default table so `names` is the whole
//! table. The name of `email_unsubscribed` and `customer_unsubscribed` is
//! [`EngagementConfig::unsubscribed_event`] (default `Unsubscribed`).
//!
//! Identity ([`WithoutUserId`]), properties, context, timestamp and the UUID v5 `messageId`
//! ([`message_id_for`]) follow the rules of [`mapping::to_segment`].
//!
//! # Metrics
//!
//! [`EngagementFlow::stats`] counts answers. With the `metrics` feature every answer of
//! [`receive`](EngagementFlow::receive) and [`process`](EngagementFlow::process) is also
//! reported as `flow="engagement"` under the crate's [answer metrics](super::metrics).
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

mod config;
mod error;
mod request;
mod stats;

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use customerio_client::webhook::{ReportingEvent, SignatureVerifier};
use segment_model::Message;
use tracing::Instrument;

use super::metrics::record_answer;
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterSink};
use crate::dedupe::{Deduper, DeduperExt, Once};
use crate::dispatch::sinks::SegmentTrackingSink;
use crate::dispatch::{Delivery, DispatcherHandle, FailureKind, OrderingKey, Sink, SubmitError};
use crate::loop_guard::LoopGuard;
use crate::mapping::to_segment::{self, event_key};
use crate::outcome::{Outcome, SkipReason, describe};
#[cfg(doc)]
use crate::{mapping, outcome::Ack};

pub use self::config::{EngagementConfig, EngagementConfigError};
pub use self::error::{EngagementError, FlowStep};
pub use self::request::SignedRequest;
use self::stats::Counters;
pub use self::stats::EngagementStats;
// The reverse mapping's types, at the path the flow has always offered them.
pub use crate::mapping::to_segment::{
    MESSAGE_ID_NAMESPACE, TranslateError, Translated, WithoutUserId, message_id_for,
};

/// The prefix of this flow's dedupe keys (`engagement:` + `event_id`).
pub const DEDUPE_KEY_PREFIX: &str = "engagement:";

/// The `flow` label of this flow's metrics.
const FLOW: &str = "engagement";

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
        let started = Instant::now();
        let result = match self.verify(request, now) {
            Ok(event) => self.process_inner(&event).await,
            Err(error) => Err(error),
        };
        self.answered(&result, started);
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
        let started = Instant::now();
        let result = self.process_inner(event).await;
        self.answered(&result, started);
        result
    }

    /// Counts one answer in the stats and the metrics.
    fn answered(&self, result: &Result<Outcome, EngagementError>, started: Instant) {
        self.counters.record(result);
        record_answer(FLOW, result, started);
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
                    error: describe(&source),
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

/// [`EngagementFlow::translate`] under `config`: the configured name, then the reverse mapping.
fn translate_with(
    config: &EngagementConfig,
    event: &ReportingEvent,
) -> Result<Translated, TranslateError> {
    match config.event_name(&event.object_type, &event.metric) {
        Some(name) => to_segment::track(event, name, config.without_user_id),
        None => Ok(Translated::Skip(SkipReason::NotMapped(event_key(
            &event.object_type,
            &event.metric,
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn event(object_type: &str, metric: &str, data: Value) -> ReportingEvent {
        ReportingEvent::from_value(json!({
            "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": object_type,
            "metric": metric, "timestamp": 1_717_173_000, "data": data
        }))
        .unwrap()
    }

    #[test]
    fn translation_names_the_event_from_the_configuration() {
        let config: EngagementConfig = toml::from_str(
            "unsubscribed_event = \"Email Unsubscribed\"\n[names]\nemail_sent = \"Email Sent\"\n",
        )
        .unwrap();
        let name = |object_type: &str, metric: &str| {
            let data = json!({"identifiers": {"id": "u-1"}});
            match translate_with(&config, &event(object_type, metric, data)).unwrap() {
                Translated::Message(message) => message.event().map(str::to_owned),
                Translated::Skip(reason) => panic!("skipped: {reason}"),
            }
        };
        assert_eq!(name("email", "sent").as_deref(), Some("Email Sent"));
        assert_eq!(
            name("customer", "unsubscribed").as_deref(),
            Some("Email Unsubscribed")
        );
        assert_eq!(
            name("push", "opened").as_deref(),
            Some("Push Notification Tapped")
        );
    }

    #[test]
    fn an_unnamed_event_is_skipped_with_its_key_before_anything_else_is_read() {
        // No identity and an impossible timestamp: the name decides first.
        let mut value = serde_json::to_value(event("in_app", "opened", json!({}))).unwrap();
        value["timestamp"] = json!(i64::MAX);
        let unnamed = ReportingEvent::from_value(value).unwrap();
        assert_eq!(
            translate_with(&EngagementConfig::default(), &unnamed).unwrap(),
            Translated::Skip(SkipReason::NotMapped("in_app_opened".into()))
        );
    }

    #[test]
    fn the_configured_fallback_decides_for_people_without_an_id() {
        let data = json!({"identifiers": {"email": "ada@example.com"}});
        let skip: EngagementConfig = toml::from_str("without_user_id = \"skip\"").unwrap();
        assert_eq!(
            translate_with(&skip, &event("email", "opened", data.clone())).unwrap(),
            Translated::Skip(SkipReason::AnonymousNotAllowed)
        );
        let Translated::Message(message) = translate_with(
            &EngagementConfig::default(),
            &event("email", "opened", data),
        )
        .unwrap() else {
            panic!("the email is the anonymous id by default");
        };
        assert!(message.user_id().is_none());
        assert!(message.anonymous_id().is_some());
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
}
