//! [`Deduper`] on Redis: one key per message id holding `lease:<token>` or `done`.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RedisConnection, millis};
use crate::dedupe::{Claim, ClaimToken, Deduper};
use crate::store::StoreError;

const STORE: &str = "redis deduper";

/// Takes the key when it is free. Returns 1 (first), 2 (done) or 3 (in flight).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == 'done' then return 2 end
return 3
",
    )
});

/// Records done when the caller still holds the lease, the key is free, or it is already
/// done. Returns 1, or 0 when another worker holds the key.
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
if v == 'done' then return 1 end
return 0
",
    )
});

/// Frees the key only when the caller still holds the lease.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Extends the caller's lease, or takes the key back when its lease ran out and nobody claimed
/// it since. Returns 1, or 0 when the key is done or another worker holds it.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
",
    )
});

/// A [`Deduper`] shared by every worker connected to the same Redis and prefix.
///
/// Keys are `<prefix>dedupe:<message id>`; a lease expires with the key's `PX`, a done key
/// after `done_ttl` (24 hours by default, Segment's own de-duplication window).
#[derive(Debug, Clone)]
pub struct RedisDeduper {
    conn: RedisConnection,
    done_ttl: Duration,
}

impl RedisDeduper {
    /// A deduper on `conn`, remembering done keys for 24 hours
    /// ([`SEGMENT_DONE_TTL`](crate::dedupe::SEGMENT_DONE_TTL)).
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            done_ttl: crate::dedupe::SEGMENT_DONE_TTL,
        }
    }

    /// A deduper for Customer.io webhook event ids on `conn`, remembering done keys for
    /// [`CUSTOMERIO_DONE_TTL`](crate::dedupe::CUSTOMERIO_DONE_TTL) (8 days, past the source's
    /// 7-day retries). Same keys as [`new`](Self::new): only the time-to-live differs.
    pub fn customerio(conn: RedisConnection) -> Self {
        Self::new(conn).with_done_ttl(crate::dedupe::CUSTOMERIO_DONE_TTL)
    }

    /// Remembers done keys for `ttl`.
    pub fn with_done_ttl(mut self, ttl: Duration) -> Self {
        self.done_ttl = ttl;
        self
    }

    fn key(&self, key: &str) -> String {
        self.conn.key(&format!("dedupe:{key}"))
    }
}

fn lease_value(token: &ClaimToken) -> String {
    format!("lease:{}", token.as_str())
}

#[async_trait]
impl Deduper for RedisDeduper {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let token = ClaimToken::generate();
        let redis_key = self.key(key);
        let value = lease_value(&token);
        let answer: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                CLAIM
                    .key(redis_key)
                    .arg(value)
                    .arg(millis(lease))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match answer {
            1 => Ok(Claim::First(token)),
            2 => Ok(Claim::Done),
            3 => Ok(Claim::InFlight),
            other => Err(StoreError::Corrupt {
                store: STORE,
                message: format!("claim answered {other}"),
            }),
        }
    }

    async fn commit(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let redis_key = self.key(key);
        let value = lease_value(token);
        let ttl = millis(self.done_ttl);
        let answer: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                COMMIT
                    .key(redis_key)
                    .arg(value)
                    .arg(ttl)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if answer == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost { store: STORE })
        }
    }

    async fn renew(
        &self,
        key: &str,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let redis_key = self.key(key);
        let value = lease_value(token);
        let answer: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                RENEW
                    .key(redis_key)
                    .arg(value)
                    .arg(millis(lease))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(answer == 1)
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let redis_key = self.key(key);
        let value = lease_value(token);
        let _: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                RELEASE.key(redis_key).arg(value).invoke_async(&mut c).await
            })
            .await?;
        Ok(())
    }
}
