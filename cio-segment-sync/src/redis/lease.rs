//! [`LeaseStore`] on Redis: one key per lease, holding the holder's id, expiring with the
//! lease.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RedisConnection, millis};
use crate::store::{LeaseStore, StoreError};

const STORE: &str = "redis lease store";

/// KEYS: lease. ARGV: holder, ttl ms. Takes a free lease (`SET NX PX`) or extends the
/// holder's own; returns 1 when the holder holds it after the call.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// KEYS: lease. ARGV: holder, ttl ms. Compare-and-pexpire: 1 when renewed.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// KEYS: lease. ARGV: holder. Compare-and-delete: 1 when released.
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

/// A [`LeaseStore`] shared by every replica connected to the same Redis and prefix.
///
/// Key: `<prefix>lease:<name>`, a string holding the holder's id, with the lease's
/// time-to-live as its own (`PX`), so an abandoned lease disappears on Redis' clock. Renewal
/// and release compare the holder first, in one script, so a holder whose lease ran out
/// cannot extend or delete the lease another replica took since.
#[derive(Debug, Clone)]
pub struct RedisLeaseStore {
    conn: RedisConnection,
}

impl RedisLeaseStore {
    /// A store on `conn`.
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn }
    }

    fn key(&self, name: &str) -> String {
        self.conn.key(&format!("lease:{name}"))
    }

    async fn call(
        &self,
        script: &'static Script,
        name: &str,
        args: &[String],
    ) -> Result<bool, StoreError> {
        let key = self.key(name);
        let args = args.to_vec();
        let answer: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                let mut invocation = script.key(key);
                for arg in &args {
                    invocation.arg(arg);
                }
                invocation.invoke_async(&mut c).await
            })
            .await?;
        Ok(answer == 1)
    }
}

#[async_trait]
impl LeaseStore for RedisLeaseStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.call(
            &ACQUIRE,
            name,
            &[holder.to_owned(), millis(ttl).to_string()],
        )
        .await
    }

    async fn renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.call(&RENEW, name, &[holder.to_owned(), millis(ttl).to_string()])
            .await
    }

    async fn release(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        self.call(&RELEASE, name, &[holder.to_owned()]).await
    }
}
