//! Redis-backed stores for many workers (feature `redis`).
//!
//! Several worker processes on several machines share one state through Redis: dedupe claims
//! ([`RedisDeduper`]), identity links ([`RedisIdentityStore`]) and last activity
//! ([`RedisActivityStore`]), onboarding progress ([`RedisProgressStore`]), audience membership, newest change first
//! ([`RedisMembershipStore`]), named leases ([`RedisLeaseStore`]) so that a job such as the churn
//! scan runs on one replica per interval, dead letters in a stream ([`RedisDeadLetters`]), and a
//! rate limiter ([`RedisRateLimiter`]) so many workers together stay within one workspace's
//! limit. Every key lives under a
//! configurable prefix, everything that can expire has a TTL, and every operation that two
//! workers could race on runs as one Lua script, so it is atomic on the server.
//!
//! When Redis is unreachable or slow, calls fail with [`StoreError::Unavailable`] after the
//! configured operation timeout; the pipeline then does not ack, and work resumes when Redis
//! is back (the connection manager reconnects by itself).
//!
//! Scripts touch keys they compute from the prefix, so on Redis Cluster put a hash tag in the
//! prefix (e.g. `{cio-sync}:`) to keep every key in one slot.
//!
//! One connection, shared by every store and handed to the flows (not run here: it needs a
//! Redis server):
//!
//! ```no_run
//! use std::num::NonZeroU32;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
//! use cio_segment_sync::flows::triggers::{SegmentToCustomerIo, TriggersConfig};
//! use cio_segment_sync::redis::{RedisConfig, RedisDeduper, RedisIdentityStore, RedisRateLimiter};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let conn = RedisConfig::new("redis://127.0.0.1:6379")
//!     .with_prefix("prod:cio-sync:")
//!     .connect()
//!     .await?;
//! let client = TrackClient::new(
//!     SiteId::new("site-id"),
//!     TrackApiKey::new("track-api-key"),
//!     ClientConfig::new(Region::Us),
//! )?;
//! let (flow, worker) = SegmentToCustomerIo::builder(client, TriggersConfig::default())
//!     .deduper(Arc::new(RedisDeduper::new(conn.clone())))
//!     .identity_store(Arc::new(RedisIdentityStore::new(conn.clone())))
//!     // 100 Track API requests per second for all workers together.
//!     .rate_limiter(Arc::new(RedisRateLimiter::new(
//!         conn,
//!         "track-api",
//!         NonZeroU32::new(100).unwrap(),
//!         Duration::from_secs(1),
//!     )))
//!     .build();
//! tokio::spawn(worker);
//! # drop(flow);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::store::StoreError;

mod activity;
mod dedupe;
mod identity;
mod lease;
mod membership;
mod progress;
mod rate_limit;

pub use crate::dead_letter::RedisDeadLetters;
pub use activity::RedisActivityStore;
pub use dedupe::RedisDeduper;
pub use identity::RedisIdentityStore;
pub use lease::RedisLeaseStore;
pub use membership::RedisMembershipStore;
pub use progress::RedisProgressStore;
pub use rate_limit::{LimiterClock, RedisRateLimiter};

/// How to reach Redis and how to name keys.
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    prefix: String,
    op_timeout: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisConfig")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// Redis at `url` (`redis://host:port/db`, `rediss://…`, `unix:///path/redis.sock`), keys
    /// under `cio-sync:`, a 2 s operation timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "cio-sync:".to_owned(),
            op_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
        }
    }

    /// Puts every key under `prefix` (e.g. one per environment or test run).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Fails an operation that takes longer than `timeout` with
    /// [`StoreError::Unavailable`].
    pub fn with_op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Opens a connection manager (one multiplexed connection that reconnects by itself).
    /// Share the returned [`RedisConnection`] between stores.
    pub async fn connect(&self) -> Result<RedisConnection, StoreError> {
        let client =
            redis::Client::open(self.url.as_str()).map_err(|err| unavailable("redis", err))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = tokio::time::timeout(
            self.connect_timeout * 2,
            client.get_connection_manager_with_config(manager_config),
        )
        .await
        .map_err(|_| unavailable("redis", Timeout))?
        .map_err(|err| unavailable("redis", err))?;
        Ok(RedisConnection {
            manager,
            prefix: self.prefix.clone(),
            op_timeout: self.op_timeout,
        })
    }
}

/// A shared connection to Redis, with the key prefix and operation timeout.
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    prefix: String,
    op_timeout: Duration,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisConnection {
    /// Sends `PING` and waits for the answer (within the operation timeout): whether Redis is
    /// reachable now. For readiness checks.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when Redis does not answer in time or answers an error.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run("redis", |mut c| async move {
            redis::cmd("PING").query_async::<()>(&mut c).await
        })
        .await
    }

    /// The full key for `part` under this connection's prefix.
    pub(crate) fn key(&self, part: &str) -> String {
        format!("{}{}", self.prefix, part)
    }

    /// The prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `op` against a clone of the manager, bounded by the operation timeout. A value of
    /// the wrong type (a record this version did not write) is [`StoreError::Corrupt`], with a
    /// message that does not quote it; any other failure is [`StoreError::Unavailable`].
    pub(crate) async fn run<T, F, Fut>(&self, store: &'static str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.op_timeout, op(self.manager.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err))
                if matches!(
                    err.kind(),
                    redis::ErrorKind::UnexpectedReturnType | redis::ErrorKind::Parse
                ) =>
            {
                Err(StoreError::Corrupt {
                    store,
                    message: "a record of an unexpected type (not written by this version)"
                        .to_owned(),
                })
            }
            Ok(Err(err)) => Err(unavailable(store, err)),
            Err(_) => Err(unavailable(store, Timeout)),
        }
    }
}

/// The operation took longer than the configured timeout.
#[derive(Debug, thiserror::Error)]
#[error("redis operation timed out")]
struct Timeout;

fn unavailable(
    store: &'static str,
    err: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Unavailable {
        store,
        source: Box::new(err),
    }
}

/// Milliseconds for a `PX` argument, at least 1.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
