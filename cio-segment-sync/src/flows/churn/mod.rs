//! Churn prevention: activity per person, and a scan the host schedules that enrols people
//! inactive for a configured period into re-engagement.
//!
//! # How it works
//!
//! - **Activity.** [`ChurnMonitor::record`] notes that a person was active at an instant
//!   (unix seconds); [`ChurnMonitor::observe`] does the same for a Segment message and the
//!   [`Target`] identity resolution gave it. The person is the **Customer.io identifier the
//!   sync writes to** (by default the person's `id`; see [`ChurnConfig::person_id_type`]). A
//!   host resolves it the way the rest of the sync does: run its
//!   [`IdentityResolver`](crate::identity) on the message and pass the resulting
//!   [`Target`] to `observe`, or call `record` with the identifier it already knows (e.g. the
//!   userId of a backend event).
//! - **Scans.** The host calls [`ChurnMonitor::scan`] from its own scheduler (a cron job, a
//!   timer task). Each person inactive for at least [`ChurnConfig::inactive_days`] and not yet
//!   enrolled gets, in one request batch through the Customer.io dispatcher:
//!   - an event (default name `churn_risk`) with the attributes `days_inactive` (whole days
//!     between the last activity and the scan) and `last_seen` (the last activity, unix
//!     seconds), timestamped at the scan;
//!   - an attribute (default `churn_risk_since`) set to the instant the person crossed the
//!     inactivity threshold (last activity + the period, unix seconds). It is derived from the
//!     stored activity, not from the scan's clock, so re-sending an enrolment writes the same
//!     value.
//!
//!   The person is marked enrolled in the [`ActivityStore`] **only after Customer.io accepted
//!   every operation**. A failed delivery leaves them unenrolled, so the next scan tries again;
//!   nothing is lost. The event id is a ULID derived from the person and their last activity
//!   ([`customerio_client::event_id::event_id`]), so an enrolment sent twice (a retried scan,
//!   two workers racing) is applied once by Customer.io.
//! - **Races.** If new activity lands between the listing and the enrolment, the store refuses
//!   the enrolment ([`ActivityStore::enroll`] compares the activity time); the person is counted
//!   as skipped and, since the enrolment operations already reached Customer.io, the monitor
//!   sends the reactivation operations at once so the person is not left flagged.
//! - **Reactivation.** Activity after enrolment clears the attribute (with `null` or `""`, see
//!   [`ClearWith`]) and sends a reactivation event (default `churn_reactivated`), whose id is
//!   derived from the person and the new activity time. These operations are delivered
//!   *before* the store forgets the enrolment, so if they fail `record` returns an error, the
//!   store is unchanged, and the host's retry of the same message sends them again.
//!
//! The identify operations carry no `timestamp`: a reactivation can be triggered by a message
//! whose own time is earlier than the scan that set the attribute, and Customer.io orders
//! identify updates by that field, so a timestamped clear could be ignored. The dispatcher's
//! per-person ordering keeps the set and the clear in the order they were submitted.
//!
//! # Scheduling, once per interval across replicas
//!
//! [`ChurnScanner`] runs the scan every interval for the host (the host runs its
//! [`run`](ChurnScanner::run) future; the [builder](crate::builder) makes one when `[churn]` is
//! present). Each interval it takes the [`CHURN_SCAN_LEASE`] from a
//! [`LeaseStore`](crate::store::LeaseStore): with the Redis lease store shared by N replicas,
//! the one holding the lease scans and the others skip, so the scan runs once per interval,
//! not N times. The lease lasts one interval and is renewed while a scan runs; a replica that
//! dies stops renewing, its lease runs out, and another replica takes over at its next tick.
//!
//! # Activity retention
//!
//! The Redis activity store can expire people nobody wrote about for a while
//! (`RedisActivityStore::with_ttl`, feature `redis`; `Stores::redis_for` sets it from the
//! configuration). The time-to-live must let a scan see
//! the person inactive first: at least [`inactive_days`](ChurnConfig::inactive_days) plus the
//! scan interval plus [`ACTIVITY_TTL_MARGIN`] (one day, for a failed scan and clock skew), see
//! [`ChurnConfig::min_activity_ttl`]; `churn.activity_ttl_days` below that is refused when the
//! configuration loads. An enrolled person's record lasts that long after their enrolment;
//! activity after it is a new person's, so no reactivation is sent for it — set
//! `activity_ttl_days` to how long a returning person should still count as reactivated.
//!
//! # Bounded, resumable scans
//!
//! A scan looks at most [`ChurnConfig::max_per_scan`] people (oldest activity first) and returns
//! a [`ScanReport`] whose `next` is a [`Cursor`] when more inactive people remain. Call `scan`
//! again with that cursor (and the same `now`) to continue; `None` means the listing is done,
//! and the next scheduled scan starts again without a cursor. People whose delivery failed are
//! not enrolled, so they appear again in the next scan started without a cursor (a resumed
//! scan only moves forward).
//!
//! ```
//! use std::sync::Arc;
//!
//! use async_trait::async_trait;
//! use cio_segment_sync::activity::MemoryActivityStore;
//! use cio_segment_sync::customerio_client::track::v2::Operation;
//! use cio_segment_sync::dispatch::OrderingKey;
//! use cio_segment_sync::flows::churn::{
//!     ChurnConfig, ChurnMonitor, DeliveryFailure, OperationDeliverer,
//! };
//!
//! /// A deliverer that accepts everything (a host passes its Customer.io dispatcher handle).
//! #[derive(Debug)]
//! struct Accepting;
//!
//! #[async_trait]
//! impl OperationDeliverer for Accepting {
//!     async fn deliver(&self, _: Vec<Operation>, _: OrderingKey) -> Result<(), DeliveryFailure> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: ChurnConfig = toml::from_str("inactive_days = 14")?;
//! let monitor = ChurnMonitor::new(
//!     config,
//!     Arc::new(MemoryActivityStore::default()),
//!     Arc::new(Accepting),
//! )?;
//! let day = 86_400;
//! monitor.record("user-42", 0).await?;
//! let report = monitor.scan(20 * day, None).await?;
//! assert_eq!((report.enrolled, report.failed, report.next), (1, 0, None));
//! // Enrolled once: the next scan finds nobody.
//! assert_eq!(monitor.scan(21 * day, None).await?.enrolled, 0);
//! // Activity after enrolment is a reactivation.
//! assert!(monitor.record("user-42", 22 * day).await?.reactivated);
//! # Ok(())
//! # }
//! ```

mod config;
mod deliver;
mod scan;

use std::sync::Arc;

use customerio_client::event_id::event_id;
use customerio_client::track::v2::{Operation, PersonEvent, PersonIdentify};
use futures::future::join_all;
use segment_model::Message;
use segment_model::message::MessageKind;
use serde_json::{Map, Value};

pub use config::{
    ACTIVITY_TTL_MARGIN, ChurnConfig, ClearWith, DEFAULT_ATTRIBUTE, DEFAULT_EVENT,
    DEFAULT_INACTIVE_DAYS, DEFAULT_MAX_PER_SCAN, DEFAULT_REACTIVATION_EVENT, PersonIdType,
};
pub use deliver::{DeliveryFailure, OperationDeliverer};
pub use scan::{CHURN_SCAN_LEASE, ChurnScanner, ScanRun, ScanStats, ScanTotals};

use crate::activity::{ActivityStore, Cursor, Inactive};
use crate::dispatch::OrderingKey;
use crate::identity::{SkipReason, Target};
use crate::outcome::describe;
use crate::store::StoreError;
use config::SECONDS_PER_DAY;

/// What went wrong in the churn flow. Never names a person.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChurnError {
    /// A setting is invalid.
    #[error("`{field}` {problem}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `activity_ttl_days` is shorter than [`ChurnConfig::min_activity_ttl`]: activity
    /// records could expire before a scan saw their person inactive.
    #[error(
        "`activity_ttl_days` must be at least {min_days} (it is {days}): `inactive_days` \
         ({inactive_days}) plus the scan interval ({scan_interval_seconds} s) plus a 1-day margin"
    )]
    ActivityTtlTooShort {
        /// The value set.
        days: u32,
        /// The shortest value that works.
        min_days: u64,
        /// The churn period it was checked against.
        inactive_days: u32,
        /// The scan interval it was checked against, in seconds.
        scan_interval_seconds: u64,
    },
    /// The activity store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An operation could not be built (e.g. an identifier or time Customer.io would refuse).
    #[error("a churn operation could not be built")]
    Build(#[source] customerio_client::Error),
    /// The reactivation operations were not delivered; the store was left unchanged when
    /// possible, so redelivering the activity sends them again.
    #[error("the reactivation was not delivered")]
    Delivery(#[source] DeliveryFailure),
}

/// What [`ChurnMonitor::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Activity {
    /// The person's last activity after this call (unix seconds).
    pub last_active: i64,
    /// The person was enrolled, and this activity ended it (reactivation operations delivered).
    pub reactivated: bool,
}

/// What [`ChurnMonitor::observe`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observed {
    /// The message counted as activity.
    Recorded(Activity),
    /// The message did not count, and why.
    Skipped(SkipReason),
}

/// The result of one [`ChurnMonitor::scan`] call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ScanReport {
    /// People enrolled by this call.
    pub enrolled: usize,
    /// People not enrolled because they became active meanwhile or another worker enrolled
    /// them first.
    pub skipped: usize,
    /// People whose operations were not delivered (or whose store update failed); the next
    /// scan started without a cursor lists them again.
    pub failed: usize,
    /// Where to resume (pass it to the next `scan` call), or `None` when the listing is done.
    pub next: Option<Cursor>,
}

enum Enrolment {
    Enrolled,
    Skipped,
    Failed,
}

/// The churn-prevention flow. See the [module docs](self).
#[derive(Debug)]
pub struct ChurnMonitor {
    config: ChurnConfig,
    store: Arc<dyn ActivityStore>,
    deliverer: Arc<dyn OperationDeliverer>,
}

impl ChurnMonitor {
    /// A monitor keeping activity in `store` and delivering through `deliverer` (normally the
    /// Customer.io v2 dispatcher handle). Fails if `config` does not
    /// [validate](ChurnConfig::validate).
    pub fn new(
        config: ChurnConfig,
        store: Arc<dyn ActivityStore>,
        deliverer: Arc<dyn OperationDeliverer>,
    ) -> Result<Self, ChurnError> {
        config.validate()?;
        Ok(Self {
            config,
            store,
            deliverer,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ChurnConfig {
        &self.config
    }

    /// Records that `person` (a Customer.io identifier of
    /// [`person_id_type`](ChurnConfig::person_id_type)) was active at `at` (unix seconds).
    ///
    /// A person Customer.io would refuse (empty, or an id over 150 bytes) is
    /// [`ChurnError::Build`]. If the person is enrolled and `at` is later than their last activity, the reactivation
    /// operations are delivered first and the enrolment ends only once they were accepted; if
    /// they fail, [`ChurnError::Delivery`] is returned and the store is unchanged (do not ack
    /// the source, redeliver it later).
    pub async fn record(&self, person: &str, at: i64) -> Result<Activity, ChurnError> {
        // A person Customer.io would refuse (empty, too long) would fail every scan: refuse it
        // here instead.
        self.config
            .person_id_type
            .identifier(person)
            .validate()
            .map_err(ChurnError::Build)?;
        if let Some((last, true)) = self.store.get(person).await?
            && at > last
        {
            self.reactivate(person, at).await?;
            let recorded = self.store.record(person, at).await?;
            return Ok(Activity {
                last_active: recorded.last_active,
                reactivated: true,
            });
        }
        let recorded = self.store.record(person, at).await?;
        if recorded.reactivated {
            // A scan enrolled the person between our read and the record: the store has
            // already ended the enrolment, so deliver now (an error here cannot be redone by
            // redelivering the activity; it is reported to the caller all the same).
            self.reactivate(person, at).await?;
        }
        Ok(Activity {
            last_active: recorded.last_active,
            reactivated: recorded.reactivated,
        })
    }

    /// Records a Segment message as activity of the person identity resolution found for it.
    ///
    /// Track, page and screen calls count (identify only with
    /// [`count_identify`](ChurnConfig::count_identify)); events in
    /// [`ignored_events`](ChurnConfig::ignored_events), group and alias calls do not. The
    /// activity time is the message's `timestamp` (else `originalTimestamp`), never later than
    /// `now`; `now` when it has neither. The target must be a person identified by the
    /// configured [`person_id_type`](ChurnConfig::person_id_type); anything else is skipped
    /// with a reason.
    pub async fn observe(
        &self,
        message: &Message,
        target: &Target,
        now: i64,
    ) -> Result<Observed, ChurnError> {
        let counts = match message.kind() {
            MessageKind::Track => !message
                .event()
                .is_some_and(|name| self.config.ignored_events.iter().any(|i| i == name)),
            MessageKind::Page | MessageKind::Screen => true,
            MessageKind::Identify => self.config.count_identify,
            _ => false,
        };
        if !counts {
            return Ok(Observed::Skipped(SkipReason::Filtered));
        }
        let person = match target {
            Target::Person { identifier, .. } => {
                if identifier.kind().as_str() != self.config.person_id_type.as_str() {
                    return Ok(Observed::Skipped(SkipReason::Custom(format!(
                        "the person is identified by {}, the churn monitor tracks {}",
                        identifier.kind().as_str(),
                        self.config.person_id_type.as_str()
                    ))));
                }
                identifier.value()
            }
            Target::Anonymous { .. } => {
                return Ok(Observed::Skipped(SkipReason::AnonymousNotAllowed));
            }
            Target::Skip(reason) => return Ok(Observed::Skipped(reason.clone())),
            _ => return Ok(Observed::Skipped(SkipReason::Filtered)),
        };
        let common = message.common();
        let at = common
            .timestamp
            .as_ref()
            .or(common.original_timestamp.as_ref())
            .map_or(now, |t| t.as_unix_seconds().min(now));
        self.record(person, at).await.map(Observed::Recorded)
    }

    /// Enrols up to [`max_per_scan`](ChurnConfig::max_per_scan) people inactive since
    /// `now - inactive_days`, starting after `after` (the `next` of the previous report, or
    /// `None` for a fresh scan). See the [module docs](self) for what enrolment writes.
    ///
    /// Per-person failures are counted in the report, not returned; only a failure to list
    /// candidates is an error.
    pub async fn scan(&self, now: i64, after: Option<&Cursor>) -> Result<ScanReport, ChurnError> {
        let before = now.saturating_sub(self.config.inactive_seconds());
        let page = self
            .store
            .inactive_since(before, after, self.config.max_per_scan)
            .await?;
        let outcomes = join_all(page.people.iter().map(|p| self.enrol(p, now))).await;
        let mut report = ScanReport {
            next: page.next,
            ..ScanReport::default()
        };
        for outcome in outcomes {
            match outcome {
                Enrolment::Enrolled => report.enrolled += 1,
                Enrolment::Skipped => report.skipped += 1,
                Enrolment::Failed => report.failed += 1,
            }
        }
        tracing::debug!(
            enrolled = report.enrolled,
            skipped = report.skipped,
            failed = report.failed,
            more = report.next.is_some(),
            "Churn scan finished."
        );
        Ok(report)
    }

    async fn enrol(&self, inactive: &Inactive, now: i64) -> Enrolment {
        let person = inactive.person.as_str();
        let ops = match self.enrolment_operations(person, inactive.last_active, now) {
            Ok(ops) => ops,
            Err(err) => {
                tracing::warn!(error = %describe(&err), "Churn enrolment operations could not be built.");
                return Enrolment::Failed;
            }
        };
        if let Err(err) = self.deliverer.deliver(ops, OrderingKey::new(person)).await {
            tracing::warn!(error = %describe(&err), "Churn enrolment was not delivered; the next scan retries it.");
            return Enrolment::Failed;
        }
        match self.store.enroll(person, inactive.last_active).await {
            Ok(true) => Enrolment::Enrolled,
            Ok(false) => {
                self.undo_raced(person, inactive.last_active).await;
                Enrolment::Skipped
            }
            Err(err) => {
                tracing::warn!(error = %describe(&err), "Churn enrolment was delivered but not stored; the next scan sends it again (de-duplicated).");
                Enrolment::Failed
            }
        }
    }

    /// The enrolment lost to new activity after its operations were delivered: clear them.
    async fn undo_raced(&self, person: &str, listed_at: i64) {
        match self.store.get(person).await {
            Ok(Some((last, false))) if last > listed_at => {
                if let Err(err) = self.reactivate(person, last).await {
                    tracing::warn!(error = %describe(&err), "A raced churn enrolment could not be undone in Customer.io.");
                }
            }
            // Enrolled by another worker, or forgotten: nothing to undo.
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %describe(&err), "Could not read a raced churn enrolment back.");
            }
        }
    }

    async fn reactivate(&self, person: &str, at: i64) -> Result<(), ChurnError> {
        let ops = self.reactivation_operations(person, at)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.deliverer
            .deliver(ops, OrderingKey::new(person))
            .await
            .map_err(ChurnError::Delivery)
    }

    fn event_id(&self, name: &str, person: &str, at: i64) -> ulid::Ulid {
        event_id(&format!("churn:{name}:{person}"), at.saturating_mul(1000))
    }

    /// The operations that enrol `person`, last active at `last_active`, in a scan at `now`.
    pub fn enrolment_operations(
        &self,
        person: &str,
        last_active: i64,
        now: i64,
    ) -> Result<Vec<Operation>, ChurnError> {
        let who = self.config.person_id_type.identifier(person);
        let mut ops = Vec::with_capacity(2);
        if self.config.send_event {
            let mut attributes = Map::new();
            attributes.insert(
                "days_inactive".to_owned(),
                Value::from(now.saturating_sub(last_active).max(0) / SECONDS_PER_DAY),
            );
            attributes.insert("last_seen".to_owned(), Value::from(last_active));
            let event = PersonEvent::new(who.clone(), self.config.event_name.as_str())
                .and_then(|e| e.with_timestamp(now))
                .and_then(|e| e.with_attributes(attributes))
                .map_err(ChurnError::Build)?
                .with_id(self.event_id(&self.config.event_name, person, last_active));
            ops.push(event.into());
        }
        if self.config.set_attribute {
            let since = last_active.saturating_add(self.config.inactive_seconds());
            let identify = PersonIdentify::new(who)
                .and_then(|i| i.with_attribute(self.config.attribute.as_str(), since))
                .map_err(ChurnError::Build)?;
            ops.push(identify.into());
        }
        Ok(ops)
    }

    /// The operations that reactivate `person`, active again at `at`.
    pub fn reactivation_operations(
        &self,
        person: &str,
        at: i64,
    ) -> Result<Vec<Operation>, ChurnError> {
        let who = self.config.person_id_type.identifier(person);
        let mut ops = Vec::with_capacity(2);
        if self.config.send_reactivation_event {
            let name = self.config.reactivation_event_name.as_str();
            let event = PersonEvent::new(who.clone(), name)
                .and_then(|e| e.with_timestamp(at))
                .map_err(ChurnError::Build)?
                .with_id(self.event_id(name, person, at));
            ops.push(event.into());
        }
        if self.config.set_attribute {
            let identify = PersonIdentify::new(who)
                .and_then(|i| {
                    i.with_attribute(
                        self.config.attribute.as_str(),
                        self.config.clear_attribute_with.value(),
                    )
                })
                .map_err(ChurnError::Build)?;
            ops.push(identify.into());
        }
        Ok(ops)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use customerio_client::Identifier;
    use serde_json::json;

    use super::*;
    use crate::activity::MemoryActivityStore;

    const DAY: i64 = SECONDS_PER_DAY;

    /// Records every delivery; fails deliveries for the people in `failing`.
    #[derive(Debug, Default)]
    struct Fake {
        sent: Mutex<Vec<Value>>,
        failing: Mutex<HashSet<String>>,
        /// Activity recorded in this store while the next delivery is in flight (a race).
        race: Mutex<Option<(Arc<MemoryActivityStore>, i64)>>,
    }

    impl Fake {
        fn fail(&self, person: &str, fail: bool) {
            let mut failing = self.failing.lock().unwrap();
            if fail {
                failing.insert(person.to_owned());
            } else {
                failing.remove(person);
            }
        }

        fn take(&self) -> Vec<Value> {
            std::mem::take(&mut *self.sent.lock().unwrap())
        }
    }

    fn person_of(op: &Value) -> String {
        op["identifiers"]["id"].as_str().unwrap().to_owned()
    }

    #[async_trait]
    impl OperationDeliverer for Fake {
        async fn deliver(
            &self,
            operations: Vec<Operation>,
            _: OrderingKey,
        ) -> Result<(), DeliveryFailure> {
            let values: Vec<Value> = operations
                .iter()
                .map(|o| serde_json::to_value(o).unwrap())
                .collect();
            if values
                .iter()
                .any(|v| self.failing.lock().unwrap().contains(&person_of(v)))
            {
                return Err(DeliveryFailure::DeadLettered("failed"));
            }
            let race = self.race.lock().unwrap().take();
            if let Some((store, at)) = race {
                store.record(&person_of(&values[0]), at).await.unwrap();
            }
            self.sent.lock().unwrap().extend(values);
            Ok(())
        }
    }

    fn monitor(config: ChurnConfig) -> (ChurnMonitor, Arc<MemoryActivityStore>, Arc<Fake>) {
        let store = Arc::new(MemoryActivityStore::default());
        let fake = Arc::new(Fake::default());
        let monitor = ChurnMonitor::new(config, store.clone(), fake.clone()).unwrap();
        (monitor, store, fake)
    }

    #[tokio::test]
    async fn enrolment_sends_the_event_and_attribute_once() {
        let (monitor, store, fake) = monitor(ChurnConfig::default());
        monitor.record("u1", 1_000).await.unwrap();
        let now = 1_000 + 31 * DAY;
        let report = monitor.scan(now, None).await.unwrap();
        assert_eq!(
            report,
            ScanReport {
                enrolled: 1,
                ..ScanReport::default()
            }
        );
        let id = event_id("churn:churn_risk:u1", 1_000_000).to_string();
        assert_eq!(
            fake.take(),
            vec![
                json!({"type": "person", "action": "event", "identifiers": {"id": "u1"},
                       "name": "churn_risk", "id": id, "timestamp": now,
                       "attributes": {"days_inactive": 31, "last_seen": 1_000}}),
                json!({"type": "person", "action": "identify", "identifiers": {"id": "u1"},
                       "attributes": {"churn_risk_since": 1_000 + 30 * DAY}}),
            ]
        );
        assert_eq!(store.get("u1").await.unwrap(), Some((1_000, true)));
        assert_eq!(monitor.scan(now + DAY, None).await.unwrap().enrolled, 0);
        assert!(fake.take().is_empty(), "enrolled twice");
    }

    #[tokio::test]
    async fn people_active_within_the_period_are_left_alone() {
        let (monitor, _, fake) = monitor(ChurnConfig::default());
        monitor.record("u1", 30 * DAY).await.unwrap();
        // Exactly 30 days later is not "strictly before" the threshold… one second more is.
        assert_eq!(monitor.scan(60 * DAY, None).await.unwrap().enrolled, 0);
        assert_eq!(monitor.scan(60 * DAY + 1, None).await.unwrap().enrolled, 1);
        assert_eq!(fake.take().len(), 2);
    }

    #[tokio::test]
    async fn a_failed_delivery_is_not_enrolled_and_the_next_scan_retries() {
        let (monitor, store, fake) = monitor(ChurnConfig::default());
        monitor.record("u1", 0).await.unwrap();
        fake.fail("u1", true);
        let report = monitor.scan(40 * DAY, None).await.unwrap();
        assert_eq!((report.enrolled, report.failed), (0, 1));
        assert_eq!(store.get("u1").await.unwrap(), Some((0, false)));
        fake.fail("u1", false);
        let report = monitor.scan(41 * DAY, None).await.unwrap();
        assert_eq!((report.enrolled, report.failed), (1, 0));
        let sent = fake.take();
        assert_eq!(sent.len(), 2);
        // Same event id as the failed attempt: derived from person and last activity.
        assert_eq!(
            sent[0]["id"],
            json!(event_id("churn:churn_risk:u1", 0).to_string())
        );
    }

    #[tokio::test]
    async fn reactivation_clears_the_attribute_and_sends_the_event() {
        for (clear, value) in [
            (ClearWith::EmptyString, json!("")),
            (ClearWith::Null, json!(null)),
        ] {
            let config = ChurnConfig {
                clear_attribute_with: clear,
                ..ChurnConfig::default()
            };
            let (monitor, store, fake) = monitor(config);
            monitor.record("u1", 0).await.unwrap();
            monitor.scan(40 * DAY, None).await.unwrap();
            fake.take();
            let activity = monitor.record("u1", 41 * DAY).await.unwrap();
            assert!(activity.reactivated);
            let id = event_id("churn:churn_reactivated:u1", 41 * DAY * 1000).to_string();
            assert_eq!(
                fake.take(),
                vec![
                    json!({"type": "person", "action": "event", "identifiers": {"id": "u1"},
                           "name": "churn_reactivated", "id": id, "timestamp": 41 * DAY}),
                    json!({"type": "person", "action": "identify", "identifiers": {"id": "u1"},
                           "attributes": {"churn_risk_since": value}}),
                ]
            );
            assert_eq!(store.get("u1").await.unwrap(), Some((41 * DAY, false)));
            // Further activity is ordinary.
            assert!(!monitor.record("u1", 42 * DAY).await.unwrap().reactivated);
            assert!(fake.take().is_empty());
        }
    }

    #[tokio::test]
    async fn a_failed_reactivation_leaves_the_enrolment_so_a_retry_redelivers() {
        let (monitor, store, fake) = monitor(ChurnConfig::default());
        monitor.record("u1", 0).await.unwrap();
        monitor.scan(40 * DAY, None).await.unwrap();
        fake.take();
        fake.fail("u1", true);
        let err = monitor.record("u1", 41 * DAY).await.unwrap_err();
        assert!(matches!(err, ChurnError::Delivery(_)), "{err:?}");
        assert_eq!(store.get("u1").await.unwrap(), Some((0, true)));
        fake.fail("u1", false);
        assert!(monitor.record("u1", 41 * DAY).await.unwrap().reactivated);
        assert_eq!(fake.take().len(), 2);
    }

    #[tokio::test]
    async fn an_enrolment_raced_by_activity_is_skipped_and_undone() {
        let (monitor, store, fake) = monitor(ChurnConfig::default());
        monitor.record("u1", 0).await.unwrap();
        *fake.race.lock().unwrap() = Some((store.clone(), 39 * DAY));
        let report = monitor.scan(40 * DAY, None).await.unwrap();
        assert_eq!((report.enrolled, report.skipped, report.failed), (0, 1, 0));
        assert_eq!(store.get("u1").await.unwrap(), Some((39 * DAY, false)));
        let sent = fake.take();
        let names: Vec<&Value> = sent.iter().map(|op| &op["action"]).collect();
        assert_eq!(names, ["event", "identify", "event", "identify"]);
        assert_eq!(sent[2]["name"], "churn_reactivated");
        assert_eq!(sent[3]["attributes"]["churn_risk_since"], "");
    }

    #[tokio::test]
    async fn scans_are_bounded_and_resume_from_the_cursor() {
        let config = ChurnConfig {
            max_per_scan: 2,
            ..ChurnConfig::default()
        };
        let (monitor, _, fake) = monitor(config);
        for (i, person) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            monitor.record(person, i as i64).await.unwrap();
        }
        let now = 40 * DAY;
        let mut cursor = None;
        let mut pages = Vec::new();
        loop {
            let report = monitor.scan(now, cursor.as_ref()).await.unwrap();
            pages.push(report.enrolled);
            let sent: Vec<String> = fake.take().iter().map(person_of).collect();
            assert!(sent.len() <= 4, "more than max_per_scan people in one scan");
            match report.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, vec![2, 2, 1]);
        assert_eq!(monitor.scan(now, None).await.unwrap().enrolled, 0);
    }

    #[tokio::test]
    async fn observe_counts_activity_by_call_and_target() {
        let (monitor, store, _) = monitor(ChurnConfig {
            ignored_events: vec!["Email Opened".into()],
            ..ChurnConfig::default()
        });
        let person = Target::Person {
            identifier: Identifier::id("u1"),
            anonymous_id: None,
        };
        let track = |event: &str, ts: &str| {
            Message::from_value(json!({"type": "track", "userId": "u1", "event": event,
                                       "timestamp": ts}))
            .unwrap()
        };
        let now = 1_717_200_000;
        let got = monitor
            .observe(
                &track("Order Completed", "2024-05-31T16:20:00Z"),
                &person,
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            got,
            Observed::Recorded(Activity {
                last_active: 1_717_172_400,
                reactivated: false
            })
        );
        // A future timestamp is clamped to now.
        monitor
            .observe(
                &track("Order Completed", "2030-01-01T00:00:00Z"),
                &person,
                now,
            )
            .await
            .unwrap();
        assert_eq!(store.get("u1").await.unwrap(), Some((now, false)));
        let skipped = [
            (
                track("Email Opened", "2024-06-01T00:00:00Z"),
                person.clone(),
            ),
            (
                Message::from_value(json!({"type": "identify", "userId": "u1"})).unwrap(),
                person.clone(),
            ),
            (
                track("Order Completed", "2024-06-01T00:00:00Z"),
                Target::Anonymous {
                    anonymous_id: "a1".into(),
                },
            ),
            (
                track("Order Completed", "2024-06-01T00:00:00Z"),
                Target::Person {
                    identifier: Identifier::email("u1@example.com"),
                    anonymous_id: None,
                },
            ),
        ];
        for (message, target) in skipped {
            assert!(matches!(
                monitor.observe(&message, &target, now + 100).await.unwrap(),
                Observed::Skipped(_)
            ));
        }
        assert_eq!(store.get("u1").await.unwrap(), Some((now, false)));
    }

    #[tokio::test]
    async fn an_identifier_customerio_would_refuse_is_not_recorded() {
        let (monitor, store, _) = monitor(ChurnConfig::default());
        for person in [String::new(), "x".repeat(151)] {
            let err = monitor.record(&person, 10).await.unwrap_err();
            assert!(matches!(err, ChurnError::Build(_)), "{err:?}");
        }
        assert!(store.is_empty());
    }

    #[test]
    fn the_monitor_and_its_futures_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let (monitor, _, _) = monitor(ChurnConfig::default());
        send_sync(&monitor);
        let message =
            Message::from_value(json!({"type": "track", "userId": "u", "event": "e"})).unwrap();
        let target = Target::Skip(SkipReason::NoIdentity);
        send(&monitor.scan(0, None));
        send(&monitor.record("u", 0));
        send(&monitor.observe(&message, &target, 0));
    }
}
