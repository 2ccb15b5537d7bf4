//! Dispatcher settings and ordering keys.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::retry::RetryPolicy;

/// How a dispatcher batches, queues, runs and retries requests.
///
/// | setting | default |
/// |---|---|
/// | queue capacity (items accepted and not yet resolved) | 10 000 |
/// | concurrency (requests being sent at once) | 4 |
/// | per-attempt timeout | 10 s |
/// | linger, max items | the sink's [`BatchLimits`](super::BatchLimits) |
/// | retries | [`RetryPolicy::default`] |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    pub(crate) queue_capacity: usize,
    pub(crate) concurrency: usize,
    pub(crate) attempt_timeout: Duration,
    pub(crate) linger: Option<Duration>,
    pub(crate) max_items: Option<NonZeroUsize>,
    pub(crate) retry: RetryPolicy,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            concurrency: 4,
            attempt_timeout: Duration::from_secs(10),
            linger: None,
            max_items: None,
            retry: RetryPolicy::default(),
        }
    }
}

impl DispatcherConfig {
    /// How many items may be accepted and not yet resolved (queued, batching, in a request or
    /// backing off). A full queue makes `submit` wait and `try_submit` fail. Capped at tokio's
    /// semaphore maximum.
    pub fn with_queue_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.queue_capacity = capacity.get().min(Semaphore::MAX_PERMITS);
        self
    }

    /// How many requests may be sent at once. A request backing off between attempts does not
    /// count.
    pub fn with_concurrency(mut self, concurrency: NonZeroUsize) -> Self {
        self.concurrency = concurrency.get().min(Semaphore::MAX_PERMITS);
        self
    }

    /// The timeout of one attempt. A timed-out attempt may have reached the server.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How long a partial batch waits for more items (from its first item), instead of the
    /// sink's default.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// At most this many items per request (never more than the sink allows).
    pub fn with_max_items(mut self, max_items: NonZeroUsize) -> Self {
        self.max_items = Some(max_items);
        self
    }

    /// The retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The queue capacity.
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    /// The concurrency.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }
}

/// Items submitted with the same ordering key are sent in submit order, and never two of them
/// in requests at the same time.
///
/// Build one from whatever names the person (a customer id, an email): only a 64-bit hash
/// (FNV-1a, stable across versions and processes) is kept, so the key itself is never stored
/// or logged. Two people whose keys collide are merely ordered together.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderingKey(u64);

impl OrderingKey {
    /// The key for `key`'s bytes.
    pub fn new(key: impl AsRef<[u8]>) -> Self {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = key
            .as_ref()
            .iter()
            .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
        Self(hash)
    }

    /// A key from its raw hash (as stored in a dead letter).
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw hash.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for OrderingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderingKey({:016x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_key_is_stable_fnv1a() {
        // Known FNV-1a 64 values.
        assert_eq!(OrderingKey::new("").get(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(OrderingKey::new("a").get(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(OrderingKey::new("user-42"), OrderingKey::new(b"user-42"));
        assert_ne!(OrderingKey::new("user-42"), OrderingKey::new("user-43"));
        assert_eq!(
            OrderingKey::from_raw(OrderingKey::new("x").get()),
            OrderingKey::new("x")
        );
    }

    #[test]
    fn zero_like_settings_are_unrepresentable_and_huge_ones_are_capped() {
        let c = DispatcherConfig::default()
            .with_queue_capacity(NonZeroUsize::MAX)
            .with_concurrency(NonZeroUsize::MAX);
        assert_eq!(c.queue_capacity(), Semaphore::MAX_PERMITS);
        assert_eq!(c.concurrency(), Semaphore::MAX_PERMITS);
    }
}
