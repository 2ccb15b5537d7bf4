//! Counters a host can read ([`Stats`]) and, with the `metrics` feature, export.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets (submit → resolved); a last bucket counts the rest.
pub const LATENCY_BUCKETS: &[Duration] = &[
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2500),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

/// How long items took from submit to resolution (delivered, dead-lettered or handed back).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// Bucket upper bounds (inclusive), ascending: [`LATENCY_BUCKETS`].
    pub bounds: &'static [Duration],
    /// Items per bucket; one more entry than `bounds`, the last counting everything slower.
    pub counts: Vec<u64>,
}

impl LatencyHistogram {
    /// Items counted in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A snapshot of a dispatcher's counters ([`DispatcherHandle::stats`](super::DispatcherHandle::stats)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Items accepted by `submit`.
    pub submitted: u64,
    /// Items the server accepted.
    pub delivered: u64,
    /// Items given up and handed to the dead-letter sink.
    pub dead_lettered: u64,
    /// Dead letters the dead-letter sink failed to keep (lost data).
    pub dead_letter_failures: u64,
    /// Items handed back to their callers to retry later: the dispatcher stopped retrying a
    /// failure that may pass ([`Delivery::RetryLater`](super::Delivery::RetryLater)).
    pub retry_later: u64,
    /// Requests sent, retries included.
    pub attempts: u64,
    /// Of those, retries.
    pub retried_attempts: u64,
    /// Batches split to isolate refused items.
    pub splits: u64,
    /// Throttled answers (`429`) that paused the dispatcher.
    pub throttled: u64,
    /// Items accepted and not yet resolved, outside a request attempt.
    pub queue_depth: usize,
    /// Requests currently being sent.
    pub in_flight: usize,
    /// Submit → resolved latency.
    pub latency: LatencyHistogram,
}

#[derive(Debug)]
pub(crate) struct Counters {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    sink: &'static str,
    submitted: AtomicU64,
    delivered: AtomicU64,
    dead_lettered: AtomicU64,
    dead_letter_failures: AtomicU64,
    retry_later: AtomicU64,
    attempts: AtomicU64,
    retried_attempts: AtomicU64,
    splits: AtomicU64,
    throttled: AtomicU64,
    items_in_flight: AtomicUsize,
    in_flight: AtomicUsize,
    latency: Vec<AtomicU64>,
}

impl Counters {
    pub(crate) fn new(sink: &'static str) -> Self {
        Self {
            sink,
            submitted: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            dead_letter_failures: AtomicU64::new(0),
            retry_later: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            retried_attempts: AtomicU64::new(0),
            splits: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            items_in_flight: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            latency: (0..=LATENCY_BUCKETS.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    pub(crate) fn snapshot(&self, outstanding: usize) -> Stats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let items_in_flight = self.items_in_flight.load(Ordering::Relaxed);
        Stats {
            submitted: load(&self.submitted),
            delivered: load(&self.delivered),
            dead_lettered: load(&self.dead_lettered),
            dead_letter_failures: load(&self.dead_letter_failures),
            retry_later: load(&self.retry_later),
            attempts: load(&self.attempts),
            retried_attempts: load(&self.retried_attempts),
            splits: load(&self.splits),
            throttled: load(&self.throttled),
            queue_depth: outstanding.saturating_sub(items_in_flight),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency: LatencyHistogram {
                bounds: LATENCY_BUCKETS,
                counts: self.latency.iter().map(load).collect(),
            },
        }
    }

    pub(crate) fn submitted(&self) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        self.emit("cio_segment_sync_dispatch_submitted_total", 1);
    }

    pub(crate) fn delivered(&self, latency: Duration) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.emit("cio_segment_sync_dispatch_delivered_total", 1);
        self.observe(latency);
    }

    pub(crate) fn retry_later(&self, latency: Duration) {
        self.retry_later.fetch_add(1, Ordering::Relaxed);
        self.emit("cio_segment_sync_dispatch_retry_later_total", 1);
        self.observe(latency);
    }

    pub(crate) fn dead_lettered(&self, latency: Duration, recorded: bool) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.emit("cio_segment_sync_dispatch_dead_lettered_total", 1);
        if !recorded {
            self.dead_letter_failures.fetch_add(1, Ordering::Relaxed);
            self.emit("cio_segment_sync_dispatch_dead_letter_failures_total", 1);
        }
        self.observe(latency);
    }

    pub(crate) fn attempt(&self, retry: bool) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.emit("cio_segment_sync_dispatch_attempts_total", 1);
        if retry {
            self.retried_attempts.fetch_add(1, Ordering::Relaxed);
            self.emit("cio_segment_sync_dispatch_retries_total", 1);
        }
    }

    pub(crate) fn split(&self) {
        self.splits.fetch_add(1, Ordering::Relaxed);
        self.emit("cio_segment_sync_dispatch_splits_total", 1);
    }

    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.emit("cio_segment_sync_dispatch_throttled_total", 1);
    }

    /// A request of `items` items starts (`true`) or ends (`false`).
    pub(crate) fn request(&self, items: usize, start: bool) {
        if start {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            self.items_in_flight.fetch_add(items, Ordering::Relaxed);
        } else {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.items_in_flight.fetch_sub(items, Ordering::Relaxed);
        }
    }

    pub(crate) fn queue_depth(&self, outstanding: usize) {
        #[cfg(feature = "metrics")]
        {
            let queued = outstanding.saturating_sub(self.items_in_flight.load(Ordering::Relaxed));
            metrics::gauge!("cio_segment_sync_dispatch_queue_depth", "sink" => self.sink)
                .set(queued as f64);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = outstanding;
    }

    fn observe(&self, latency: Duration) {
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| latency <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(counter) = self.latency.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        #[cfg(feature = "metrics")]
        metrics::histogram!("cio_segment_sync_dispatch_latency_seconds", "sink" => self.sink)
            .record(latency.as_secs_f64());
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn emit(&self, name: &'static str, n: u64) {
        #[cfg(feature = "metrics")]
        metrics::counter!(name, "sink" => self.sink).increment(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_whose_bound_holds_it() {
        let c = Counters::new("test");
        c.delivered(Duration::ZERO);
        c.delivered(Duration::from_millis(10));
        c.delivered(Duration::from_millis(11));
        c.dead_lettered(Duration::from_secs(3600), false);
        let s = c.snapshot(0);
        assert_eq!(s.latency.counts[0], 2);
        assert_eq!(s.latency.counts[1], 1);
        assert_eq!(s.latency.counts[LATENCY_BUCKETS.len()], 1);
        assert_eq!(s.latency.total(), 4);
        assert_eq!(
            (s.delivered, s.dead_lettered, s.dead_letter_failures),
            (3, 1, 1)
        );
    }

    #[test]
    fn queue_depth_excludes_items_in_a_request() {
        let c = Counters::new("test");
        c.request(3, true);
        let s = c.snapshot(10);
        assert_eq!((s.queue_depth, s.in_flight), (7, 1));
        c.request(3, false);
        assert_eq!(c.snapshot(10).queue_depth, 10);
    }
}
