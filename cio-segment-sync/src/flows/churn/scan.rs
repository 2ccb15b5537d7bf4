//! [`ChurnScanner`]: the churn scan on a schedule, once per interval however many replicas run
//! it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::{Either, select};
use tokio::time::MissedTickBehavior;

use super::{ChurnError, ChurnMonitor};
use crate::activity::Cursor;
use crate::outcome::describe;
use crate::store::LeaseStore;

/// The name of the lease the churn scan takes for each interval (under the store's prefix:
/// `<prefix>lease:churn-scan` on Redis).
pub const CHURN_SCAN_LEASE: &str = "churn-scan";

/// What one [`ChurnScanner::run_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanRun {
    /// This replica held the lease and scanned.
    Scanned(ScanTotals),
    /// Another replica holds the lease for this interval: nothing was scanned here.
    HeldElsewhere,
}

/// The sums of one scheduled scan over every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ScanTotals {
    /// Pages scanned ([`ChurnMonitor::scan`] calls).
    pub pages: u64,
    /// People enrolled.
    pub enrolled: u64,
    /// People skipped (active again meanwhile, or enrolled by someone else).
    pub skipped: u64,
    /// People whose enrolment was not delivered or not stored; the next interval's scan lists
    /// them again.
    pub failed: u64,
    /// The lease was lost during the scan (it could not be renewed in time, and another
    /// replica may have taken it), so the scan stopped after the page it was on.
    pub lease_lost: bool,
}

/// Counters of a [`ChurnScanner`] since it was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ScanStats {
    /// Intervals this replica scanned.
    pub scans: u64,
    /// Intervals skipped because another replica held the lease.
    pub skipped: u64,
    /// Intervals that failed (the lease store or the activity store could not be reached).
    pub errors: u64,
    /// Scans cut short because the lease was lost.
    pub leases_lost: u64,
    /// People enrolled by this replica's scans.
    pub enrolled: u64,
    /// People whose enrolment failed in this replica's scans.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    scans: AtomicU64,
    skipped: AtomicU64,
    errors: AtomicU64,
    leases_lost: AtomicU64,
    enrolled: AtomicU64,
    failed: AtomicU64,
}

/// Runs a [`ChurnMonitor`]'s scan every interval, on one replica per interval.
///
/// Each interval, the scanner tries to take the [`CHURN_SCAN_LEASE`] from its
/// [`LeaseStore`] for one interval. The replica that gets it scans every page
/// ([`ChurnMonitor::scan`] from a fresh cursor until the listing is done); the others skip that
/// interval (logged at debug level, counted in [`ScanStats::skipped`]). With the Redis lease
/// store, N replicas therefore scan once per interval, not N times; with the in-memory one
/// (a single process) the lease only keeps two scanners of that process apart.
///
/// - **The lease outlasts the scan.** It is taken for one interval and renewed every third of
///   an interval while the scan runs, so a scan longer than the interval keeps it. The holder
///   does not give it up after scanning: holding it until the interval ends is what keeps the
///   other replicas, whose timers tick at other moments, from scanning again within the same
///   interval. At its next tick the holder takes it again (taking a lease one holds extends
///   it), so one replica keeps scanning while it lives.
/// - **A crashed holder is replaced.** Its lease is not renewed and runs out within one
///   interval; the first replica to tick after that takes it and scans. [`run`](Self::run)
///   releases the lease when it is told to stop, so a clean shutdown hands over at once.
/// - **Losing the lease mid-scan** (a renewal found another holder, after the store was
///   unreachable for longer than the lease) stops the scan after its current page. Two
///   replicas scanning the same people at once would do no harm beyond extra requests:
///   enrolment ids are derived from the person and their last activity, so Customer.io applies
///   a repeated enrolment once, and the activity store enrols each person once.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use async_trait::async_trait;
/// use cio_segment_sync::activity::MemoryActivityStore;
/// use cio_segment_sync::customerio_client::track::v2::Operation;
/// use cio_segment_sync::dispatch::OrderingKey;
/// use cio_segment_sync::flows::churn::{
///     ChurnConfig, ChurnMonitor, ChurnScanner, DeliveryFailure, OperationDeliverer, ScanRun,
/// };
/// use cio_segment_sync::store::MemoryLeaseStore;
///
/// #[derive(Debug)]
/// struct Accepting;
///
/// #[async_trait]
/// impl OperationDeliverer for Accepting {
///     async fn deliver(&self, _: Vec<Operation>, _: OrderingKey) -> Result<(), DeliveryFailure> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let monitor = Arc::new(ChurnMonitor::new(
///     ChurnConfig::default(),
///     Arc::new(MemoryActivityStore::default()),
///     Arc::new(Accepting),
/// )?);
/// monitor.record("user-42", 0).await?;
/// let leases = Arc::new(MemoryLeaseStore::default());
/// let every = Duration::from_secs(900);
/// let one = ChurnScanner::new(monitor.clone(), leases.clone(), every);
/// let two = ChurnScanner::new(monitor, leases, every);
/// let now = 40 * 86_400;
/// assert!(matches!(one.run_once(now).await?, ScanRun::Scanned(t) if t.enrolled == 1));
/// // The second replica skips this interval.
/// assert_eq!(two.run_once(now).await?, ScanRun::HeldElsewhere);
/// // A host runs each scanner as a task: `tokio::spawn(async move { scanner.run(stop).await })`.
/// # Ok(())
/// # }
/// ```
pub struct ChurnScanner {
    monitor: Arc<ChurnMonitor>,
    leases: Arc<dyn LeaseStore>,
    interval: Duration,
    holder: String,
    counters: Counters,
}

impl fmt::Debug for ChurnScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChurnScanner")
            .field("interval", &self.interval)
            .field("holder", &self.holder)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ChurnScanner {
    /// A scanner running `monitor`'s scan every `interval`, taking the scan lease from
    /// `leases` (share one store, e.g. [`Stores::leases`](crate::store::Stores::leases), among
    /// the replicas). Its holder id is random; see [`with_holder`](Self::with_holder).
    pub fn new(
        monitor: Arc<ChurnMonitor>,
        leases: Arc<dyn LeaseStore>,
        interval: Duration,
    ) -> Self {
        Self {
            monitor,
            leases,
            interval,
            holder: format!("churn-scanner-{}", uuid::Uuid::new_v4().simple()),
            counters: Counters::default(),
        }
    }

    /// Names this replica in the lease (e.g. the host name plus the process id, to see in
    /// Redis who scans). Every replica must use a different one.
    pub fn with_holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = holder.into();
        self
    }

    /// This replica's holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How often the scan runs, and how long each lease lasts.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The monitor whose scan this runs.
    pub fn monitor(&self) -> &Arc<ChurnMonitor> {
        &self.monitor
    }

    /// The counters so far.
    pub fn stats(&self) -> ScanStats {
        let c = &self.counters;
        ScanStats {
            scans: c.scans.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            leases_lost: c.leases_lost.load(Ordering::Relaxed),
            enrolled: c.enrolled.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// One interval's turn: takes the lease (or finds another replica holds it), and if this
    /// replica holds it, scans every page at `now` (unix seconds) while renewing the lease.
    ///
    /// # Errors
    ///
    /// The lease store could not be reached, or the activity store failed to list a page
    /// ([`ChurnError::Store`]); the pages before it were scanned. Either way the next interval
    /// tries again. Failures of single people are counted in the totals instead.
    pub async fn run_once(&self, now: i64) -> Result<ScanRun, ChurnError> {
        let result = self.turn(now).await;
        let c = &self.counters;
        match &result {
            Ok(ScanRun::Scanned(totals)) => {
                c.scans.fetch_add(1, Ordering::Relaxed);
                c.enrolled.fetch_add(totals.enrolled, Ordering::Relaxed);
                c.failed.fetch_add(totals.failed, Ordering::Relaxed);
                if totals.lease_lost {
                    c.leases_lost.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(ScanRun::HeldElsewhere) => {
                c.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    async fn turn(&self, now: i64) -> Result<ScanRun, ChurnError> {
        let ttl = self.interval;
        if !self
            .leases
            .try_acquire(CHURN_SCAN_LEASE, &self.holder, ttl)
            .await?
        {
            tracing::debug!(
                holder = %self.holder,
                "Another replica holds the churn scan lease; skipping this interval."
            );
            return Ok(ScanRun::HeldElsewhere);
        }
        let lost = AtomicBool::new(false);
        let scanning = self.scan_pages(now, &lost);
        let renewing = self.renew_until_lost(ttl, &lost);
        futures::pin_mut!(scanning, renewing);
        match select(scanning, renewing).await {
            Either::Left((result, _)) => result.map(ScanRun::Scanned),
            // The lease is gone: the scan stops after the page it is on.
            Either::Right(((), scanning)) => scanning.await.map(ScanRun::Scanned),
        }
    }

    /// Every page of a scan at `now`, stopping early once `lost` is set.
    async fn scan_pages(&self, now: i64, lost: &AtomicBool) -> Result<ScanTotals, ChurnError> {
        let mut totals = ScanTotals::default();
        let mut cursor: Option<Cursor> = None;
        loop {
            let report = self.monitor.scan(now, cursor.as_ref()).await?;
            totals.pages += 1;
            totals.enrolled += report.enrolled as u64;
            totals.skipped += report.skipped as u64;
            totals.failed += report.failed as u64;
            if lost.load(Ordering::SeqCst) {
                totals.lease_lost = true;
                tracing::warn!(
                    enrolled = totals.enrolled,
                    "The churn scan lost its lease; another replica scans at the next interval."
                );
                return Ok(totals);
            }
            match report.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        tracing::info!(
            pages = totals.pages,
            enrolled = totals.enrolled,
            skipped = totals.skipped,
            failed = totals.failed,
            "Finished a churn scan."
        );
        Ok(totals)
    }

    /// Renews the lease every third of `ttl`; returns (setting `lost`) once a renewal finds
    /// the lease held by another replica or expired. A renewal the store could not answer is
    /// logged and tried again at the next period: the lease may still be ours.
    async fn renew_until_lost(&self, ttl: Duration, lost: &AtomicBool) {
        let period = (ttl / 3).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(period).await;
            match self.leases.renew(CHURN_SCAN_LEASE, &self.holder, ttl).await {
                Ok(true) => {}
                Ok(false) => {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = %describe(&error), "Could not renew the churn scan lease; trying again.");
                }
            }
        }
    }

    /// Runs [`run_once`](Self::run_once) at every interval (the first one interval after the
    /// start) with the system clock's time, until `shutdown` resolves; then releases the lease
    /// if this replica holds it, so another replica takes over at its next tick. A scan
    /// running when `shutdown` resolves is abandoned: people whose enrolment it had not stored
    /// are listed again by the next scan, on whichever replica (their enrolment ids are the
    /// same, so Customer.io applies them once).
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        let work = async {
            loop {
                tick.tick().await;
                if let Err(error) = self.run_once(unix_now()).await {
                    tracing::warn!(error = %describe(&error), "A churn scan failed; the next interval tries again.");
                }
            }
        };
        futures::pin_mut!(work, shutdown);
        let _ = select(work, shutdown).await;
        match self.leases.release(CHURN_SCAN_LEASE, &self.holder).await {
            Ok(true) => tracing::debug!("Released the churn scan lease."),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %describe(&error), "Could not release the churn scan lease; it expires by itself.");
            }
        }
    }
}

/// The system clock, in unix seconds.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use customerio_client::track::v2::Operation;

    use super::*;
    use crate::activity::MemoryActivityStore;
    use crate::dispatch::OrderingKey;
    use crate::flows::churn::{ChurnConfig, DeliveryFailure, OperationDeliverer};
    use crate::store::{MemoryLeaseStore, StoreError};

    const DAY: i64 = 86_400;
    const EVERY: Duration = Duration::from_secs(900);

    /// Accepts everything after `delay` (on tokio's clock) and counts the operations.
    #[derive(Debug, Default)]
    struct Slow {
        delay: Duration,
        operations: Mutex<usize>,
    }

    #[async_trait]
    impl OperationDeliverer for Slow {
        async fn deliver(
            &self,
            ops: Vec<Operation>,
            _: OrderingKey,
        ) -> Result<(), DeliveryFailure> {
            tokio::time::sleep(self.delay).await;
            *self.operations.lock().unwrap() += ops.len();
            Ok(())
        }
    }

    /// A lease store whose every lease is granted and never renewed, or that is unreachable.
    #[derive(Debug)]
    enum Scripted {
        NeverRenewed,
        Unreachable,
    }

    #[async_trait]
    impl LeaseStore for Scripted {
        async fn try_acquire(&self, _: &str, _: &str, _: Duration) -> Result<bool, StoreError> {
            match self {
                Scripted::NeverRenewed => Ok(true),
                Scripted::Unreachable => Err(StoreError::Corrupt {
                    store: "scripted lease store",
                    message: "unreachable".into(),
                }),
            }
        }

        async fn renew(&self, _: &str, _: &str, _: Duration) -> Result<bool, StoreError> {
            Ok(false)
        }

        async fn release(&self, _: &str, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
    }

    async fn monitor(
        people: &[&str],
        max_per_scan: usize,
        delay: Duration,
    ) -> (Arc<ChurnMonitor>, Arc<Slow>) {
        let deliverer = Arc::new(Slow {
            delay,
            ..Slow::default()
        });
        let config = ChurnConfig {
            max_per_scan,
            ..ChurnConfig::default()
        };
        let monitor = ChurnMonitor::new(
            config,
            Arc::new(MemoryActivityStore::default()),
            deliverer.clone(),
        )
        .unwrap();
        for person in people {
            monitor.record(person, 0).await.unwrap();
        }
        (Arc::new(monitor), deliverer)
    }

    #[tokio::test]
    async fn the_replica_holding_the_lease_scans_every_page_and_the_other_skips() {
        let (monitor, deliverer) = monitor(&["a", "b", "c"], 2, Duration::ZERO).await;
        let leases: Arc<dyn LeaseStore> = Arc::new(MemoryLeaseStore::default());
        let one = ChurnScanner::new(monitor.clone(), leases.clone(), EVERY).with_holder("one");
        let two = ChurnScanner::new(monitor, leases.clone(), EVERY).with_holder("two");
        let now = 40 * DAY;
        let (first, second) = tokio::join!(one.run_once(now), two.run_once(now));
        let (first, second) = (first.unwrap(), second.unwrap());
        let ScanRun::Scanned(totals) = first else {
            panic!("the first to ask holds the lease: {first:?}");
        };
        assert_eq!(second, ScanRun::HeldElsewhere);
        assert_eq!((totals.pages, totals.enrolled, totals.failed), (2, 3, 0));
        assert!(!totals.lease_lost);
        assert_eq!(*deliverer.operations.lock().unwrap(), 6);
        // The holder keeps the lease for the interval, and takes it again next time.
        assert!(
            !leases
                .try_acquire(CHURN_SCAN_LEASE, "two", EVERY)
                .await
                .unwrap()
        );
        assert!(
            matches!(one.run_once(now + 900).await.unwrap(), ScanRun::Scanned(t) if t.enrolled == 0)
        );
        assert_eq!(
            two.run_once(now + 900).await.unwrap(),
            ScanRun::HeldElsewhere
        );
        assert_eq!(
            one.stats(),
            ScanStats {
                scans: 2,
                enrolled: 3,
                ..ScanStats::default()
            }
        );
        assert_eq!(
            two.stats(),
            ScanStats {
                skipped: 2,
                ..ScanStats::default()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_scan_that_loses_its_lease_stops_after_the_page_it_is_on() {
        // Each delivery takes two thirds of an interval: the renewal at one third finds the
        // lease gone while the first page is being delivered.
        let (monitor, deliverer) = monitor(&["a", "b", "c"], 1, EVERY * 2 / 3).await;
        let scanner = ChurnScanner::new(monitor, Arc::new(Scripted::NeverRenewed), EVERY);
        let run = scanner.run_once(40 * DAY).await.unwrap();
        let ScanRun::Scanned(totals) = run else {
            panic!("{run:?}");
        };
        assert_eq!((totals.pages, totals.enrolled), (1, 1));
        assert!(totals.lease_lost);
        assert_eq!(*deliverer.operations.lock().unwrap(), 2);
        assert_eq!(scanner.stats().leases_lost, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_scan_renews_its_lease_so_no_other_replica_takes_it() {
        let (monitor, _) = monitor(&["a", "b", "c"], 1, EVERY * 2 / 3).await;
        let leases: Arc<dyn LeaseStore> = Arc::new(MemoryLeaseStore::default());
        let scanner = ChurnScanner::new(monitor, leases.clone(), EVERY).with_holder("one");
        let scan = scanner.run_once(40 * DAY);
        let other = async {
            // Two intervals in, the three pages (two intervals of delivery) still run.
            tokio::time::sleep(EVERY * 3 / 2).await;
            leases
                .try_acquire(CHURN_SCAN_LEASE, "two", EVERY)
                .await
                .unwrap()
        };
        let (run, taken) = tokio::join!(scan, other);
        assert!(!taken, "the lease ran out during the scan");
        assert!(matches!(run.unwrap(), ScanRun::Scanned(t) if t.pages == 3 && !t.lease_lost));
    }

    #[tokio::test]
    async fn an_unreachable_lease_store_is_an_error_and_scans_nothing() {
        let (monitor, deliverer) = monitor(&["a"], 10, Duration::ZERO).await;
        let scanner = ChurnScanner::new(monitor, Arc::new(Scripted::Unreachable), EVERY);
        let error = scanner.run_once(40 * DAY).await.unwrap_err();
        assert!(matches!(error, ChurnError::Store(_)), "{error:?}");
        assert_eq!(*deliverer.operations.lock().unwrap(), 0);
        assert_eq!(
            scanner.stats(),
            ScanStats {
                errors: 1,
                ..ScanStats::default()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn run_scans_every_interval_and_hands_the_lease_over_when_stopped() {
        let (monitor, deliverer) = monitor(&["a"], 10, Duration::ZERO).await;
        let leases: Arc<dyn LeaseStore> = Arc::new(MemoryLeaseStore::default());
        let scanner =
            Arc::new(ChurnScanner::new(monitor, leases.clone(), EVERY).with_holder("one"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let scanner = scanner.clone();
            async move {
                scanner
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
            }
        });
        // Nothing at the start; then one scan per interval.
        tokio::time::sleep(EVERY / 2).await;
        assert_eq!(scanner.stats().scans, 0);
        tokio::time::sleep(EVERY * 3).await;
        assert_eq!(scanner.stats().scans, 3);
        // The person was old activity on the system clock: enrolled once.
        assert_eq!(scanner.stats().enrolled, 1);
        assert_eq!(*deliverer.operations.lock().unwrap(), 2);
        assert!(
            !leases
                .try_acquire(CHURN_SCAN_LEASE, "two", EVERY)
                .await
                .unwrap()
        );
        stop.send(()).unwrap();
        task.await.unwrap();
        assert!(
            leases
                .try_acquire(CHURN_SCAN_LEASE, "two", EVERY)
                .await
                .unwrap()
        );
    }

    #[test]
    fn debug_shows_the_holder_and_the_stats_and_holders_are_unique() {
        let monitor = Arc::new(
            ChurnMonitor::new(
                ChurnConfig::default(),
                Arc::new(MemoryActivityStore::default()),
                Arc::new(Slow::default()),
            )
            .unwrap(),
        );
        let leases: Arc<dyn LeaseStore> = Arc::new(MemoryLeaseStore::default());
        let one = ChurnScanner::new(monitor.clone(), leases.clone(), EVERY);
        let two = ChurnScanner::new(monitor, leases, EVERY);
        assert_ne!(one.holder(), two.holder());
        assert!(one.holder().starts_with("churn-scanner-"));
        let debug = format!("{one:?}");
        assert!(
            debug.contains(one.holder()) && debug.contains("scans: 0"),
            "{debug}"
        );
    }

    #[test]
    fn the_scanner_and_its_futures_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let monitor = Arc::new(
            ChurnMonitor::new(
                ChurnConfig::default(),
                Arc::new(MemoryActivityStore::default()),
                Arc::new(Slow::default()),
            )
            .unwrap(),
        );
        let scanner = ChurnScanner::new(monitor, Arc::new(MemoryLeaseStore::default()), EVERY);
        send_sync(&scanner);
        send(&scanner.run_once(0));
        send(&scanner.run(std::future::pending::<()>()));
    }
}
