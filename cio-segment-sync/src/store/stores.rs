//! [`Stores`]: every piece of state the flows share, in memory or on Redis.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use customerio_client::limits::{APP_REQUESTS_PER_SECOND, TRACK_REQUESTS_PER_SECOND_DOCUMENTED};
use segment_model::client::tracking::REQUESTS_PER_SECOND_RECOMMENDED;

use crate::activity::{ActivityStore, MemoryActivityStore};
use crate::dedupe::{Deduper, MemoryDeduper, MemoryDeduperConfig};
use crate::flows::audience::{MembershipStore, MemoryMembershipStore};
use crate::flows::onboarding::{MemoryProgressStore, ProgressStore};
use crate::identity::{IdentityStore, MemoryIdentityStore};
use crate::loop_guard::{MemoryRecentIds, RecentIds};
use crate::rate_limit::{GovernorLimiter, RateLimiter};
use crate::store::{LeaseStore, MemoryLeaseStore};

/// The state every flow shares, and the vendor rate limits every request takes a token from.
///
/// [`Stores::memory`] keeps everything in this process (bounded; right for one worker);
/// `Stores::redis` (feature `redis`) puts every store and limiter on one Redis, so several
/// workers on several machines behave as one: a message claimed by one is not sent by another,
/// identity links written by one are read by all, the vendors' rate limits hold for all of
/// them together, and the churn scan runs on one of them per interval (the lease in
/// [`Stores::leases`]); `Stores::redis_for` also gives activity records the time-to-live the
/// churn settings call for. Each field is an `Arc<dyn …>`, so a host can replace one store with its own
/// implementation (checked with the conformance suites of the `testing` feature).
///
/// ```
/// use std::sync::Arc;
/// use cio_segment_sync::dedupe::{MemoryDeduper, MemoryDeduperConfig};
/// use cio_segment_sync::store::Stores;
///
/// let mut stores = Stores::memory();
/// // Replace one store (here with a larger in-memory one), keep the rest.
/// stores.deduper = Arc::new(MemoryDeduper::new(MemoryDeduperConfig::default()));
/// # let _ = stores;
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Stores {
    /// Claims on Segment messageIds. A finished id is remembered at least as long as Segment
    /// retries a webhook ([`SEGMENT_RETRY_WINDOW`](crate::dedupe::SEGMENT_RETRY_WINDOW), ~4 h;
    /// by default 24 h).
    pub deduper: Arc<dyn Deduper>,
    /// Claims on Customer.io webhook event ids (the engagement back-sync, the backfill). A
    /// finished id is remembered at least as long as Customer.io retries
    /// ([`CUSTOMERIO_RETRY_WINDOW`](crate::dedupe::CUSTOMERIO_RETRY_WINDOW), 7 days; by default
    /// 8 days).
    pub customerio_deduper: Arc<dyn Deduper>,
    /// Identity links (anonymousId / userId / email → person).
    pub identity: Arc<dyn IdentityStore>,
    /// Last activity per person (churn scans).
    pub activity: Arc<dyn ActivityStore>,
    /// The loop guard's recently written Segment messageIds.
    pub recent_ids: Arc<dyn RecentIds>,
    /// Onboarding progress per person.
    pub progress: Arc<dyn ProgressStore>,
    /// Audience membership versions per person and audience.
    pub memberships: Arc<dyn MembershipStore>,
    /// Named leases, so a job that must run once per deployment (the churn scan) runs on one
    /// worker at a time.
    pub leases: Arc<dyn LeaseStore>,
    /// Every Customer.io Track API request takes a token here (the documented 1000/s).
    pub track_limiter: Arc<dyn RateLimiter>,
    /// Every Customer.io App API request takes a token here (the documented 10/s, one bucket
    /// for every App API call of the workspace).
    pub app_limiter: Arc<dyn RateLimiter>,
    /// Every Segment Tracking API request of the back-sync takes a token here (Segment's
    /// recommended ceiling, 1000/s).
    pub segment_limiter: Arc<dyn RateLimiter>,
    /// The connection [`Stores::redis`] opened, for [`ping`](Stores::ping).
    #[cfg(feature = "redis")]
    redis: Option<crate::redis::RedisConnection>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Trait objects only; what they hold is personal data.
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// A rate as a `NonZeroU32` (the constants are never 0; `MIN` keeps this total).
pub(crate) fn per_second(rate: u32) -> NonZeroU32 {
    NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN)
}

impl Stores {
    /// Bounded in-memory stores with the library's defaults, and in-process limiters at the
    /// vendors' documented rates.
    pub fn memory() -> Self {
        Self {
            deduper: Arc::new(MemoryDeduper::default()),
            customerio_deduper: Arc::new(MemoryDeduper::new(MemoryDeduperConfig::customerio())),
            identity: Arc::new(MemoryIdentityStore::default()),
            activity: Arc::new(MemoryActivityStore::default()),
            recent_ids: Arc::new(MemoryRecentIds::default()),
            progress: Arc::new(MemoryProgressStore::default()),
            memberships: Arc::new(MemoryMembershipStore::default()),
            leases: Arc::new(MemoryLeaseStore::default()),
            track_limiter: Arc::new(GovernorLimiter::per_second(per_second(
                TRACK_REQUESTS_PER_SECOND_DOCUMENTED,
            ))),
            app_limiter: Arc::new(GovernorLimiter::per_second(per_second(
                APP_REQUESTS_PER_SECOND,
            ))),
            segment_limiter: Arc::new(GovernorLimiter::per_second(per_second(
                REQUESTS_PER_SECOND_RECOMMENDED,
            ))),
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// Whether the shared backend answers now: a `PING` on the Redis connection of
    /// [`Stores::redis`] (feature `redis`); always `Ok` for [`Stores::memory`]. Stores a host
    /// put in by hand are not checked by this; give a readiness check of their own.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`](crate::StoreError::Unavailable) when Redis does not answer
    /// within its operation timeout.
    pub async fn ping(&self) -> Result<(), crate::StoreError> {
        #[cfg(feature = "redis")]
        if let Some(conn) = &self.redis {
            return conn.ping().await;
        }
        Ok(())
    }

    /// Whether these stores live on a shared backend (`Stores::redis`), i.e. whether
    /// [`ping`](Self::ping) checks anything.
    pub fn is_shared(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.redis.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// Every store on the Redis `config` points at (under its key prefix), and the Track, App
    /// and Segment limiters shared through it, so the rates hold for all workers together.
    /// Activity records do not expire; [`Stores::redis_for`] gives them the time-to-live the
    /// churn settings call for.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`](crate::StoreError::Unavailable) when Redis cannot be reached.
    #[cfg(feature = "redis")]
    pub async fn redis(config: &crate::redis::RedisConfig) -> Result<Self, crate::StoreError> {
        Self::redis_with(config, None).await
    }

    /// [`Stores::redis`] for the sync `sync` configures: activity records expire after
    /// [`SyncConfig::activity_ttl`](crate::config::SyncConfig::activity_ttl) (when `[churn]` is
    /// present), so people who never come back do not stay in Redis for ever. See
    /// [`RedisActivityStore`](crate::redis::RedisActivityStore#time-to-live).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`](crate::StoreError::Unavailable) when Redis cannot be reached.
    #[cfg(feature = "redis")]
    pub async fn redis_for(
        config: &crate::redis::RedisConfig,
        sync: &crate::config::SyncConfig,
    ) -> Result<Self, crate::StoreError> {
        Self::redis_with(config, sync.activity_ttl()).await
    }

    #[cfg(feature = "redis")]
    async fn redis_with(
        config: &crate::redis::RedisConfig,
        activity_ttl: Option<std::time::Duration>,
    ) -> Result<Self, crate::StoreError> {
        use std::time::Duration;

        use crate::loop_guard::RedisRecentIds;
        use crate::redis::{
            RedisActivityStore, RedisDeduper, RedisIdentityStore, RedisLeaseStore,
            RedisMembershipStore, RedisProgressStore, RedisRateLimiter,
        };

        let conn = config.connect().await?;
        let limiter = |name: &str, rate: u32| -> Arc<dyn RateLimiter> {
            Arc::new(RedisRateLimiter::new(
                conn.clone(),
                name,
                per_second(rate),
                Duration::from_secs(1),
            ))
        };
        let mut activity = RedisActivityStore::new(conn.clone());
        if let Some(ttl) = activity_ttl {
            activity = activity.with_ttl(ttl);
        }
        Ok(Self {
            track_limiter: limiter("track-api", TRACK_REQUESTS_PER_SECOND_DOCUMENTED),
            app_limiter: limiter("app-api", APP_REQUESTS_PER_SECOND),
            segment_limiter: limiter("segment-tracking-api", REQUESTS_PER_SECOND_RECOMMENDED),
            deduper: Arc::new(RedisDeduper::new(conn.clone())),
            customerio_deduper: Arc::new(RedisDeduper::customerio(conn.clone())),
            identity: Arc::new(RedisIdentityStore::new(conn.clone())),
            activity: Arc::new(activity),
            recent_ids: Arc::new(RedisRecentIds::new(conn.clone())),
            progress: Arc::new(RedisProgressStore::new(conn.clone())),
            leases: Arc::new(RedisLeaseStore::new(conn.clone())),
            memberships: Arc::new(RedisMembershipStore::new(conn.clone())),
            redis: Some(conn),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn finished_ids_outlive_each_sources_retry_window() {
        use std::time::Duration;

        use crate::dedupe::{CUSTOMERIO_RETRY_WINDOW, Claim, SEGMENT_RETRY_WINDOW};

        let stores = Stores::memory();
        let lease = Duration::from_secs(30);
        for (deduper, window) in [
            (&stores.deduper, SEGMENT_RETRY_WINDOW),
            (&stores.customerio_deduper, CUSTOMERIO_RETRY_WINDOW),
        ] {
            let Claim::First(token) = deduper.claim("id-1", lease).await.unwrap() else {
                panic!("fresh key");
            };
            deduper.commit("id-1", &token).await.unwrap();
            // The source's last redelivery, at the end of its window, is still a duplicate.
            tokio::time::advance(window).await;
            assert_eq!(deduper.claim("id-1", lease).await.unwrap(), Claim::Done);
        }
    }

    #[tokio::test]
    async fn memory_stores_are_always_reachable() {
        let stores = Stores::memory();
        assert!(!stores.is_shared());
        stores.ping().await.unwrap();
    }

    #[test]
    fn debug_shows_no_contents() {
        assert_eq!(format!("{:?}", Stores::memory()), "Stores { .. }");
    }

    #[tokio::test]
    async fn memory_stores_share_state_through_clones() {
        let stores = Stores::memory();
        let copy = stores.clone();
        let lease = std::time::Duration::from_secs(30);
        let crate::dedupe::Claim::First(_) = stores.deduper.claim("m-1", lease).await.unwrap()
        else {
            panic!("a fresh store has no claim");
        };
        assert_eq!(
            copy.deduper.claim("m-1", lease).await.unwrap(),
            crate::dedupe::Claim::InFlight
        );
        assert!(stores.leases.try_acquire("job", "a", lease).await.unwrap());
        assert!(!copy.leases.try_acquire("job", "b", lease).await.unwrap());
    }
}
