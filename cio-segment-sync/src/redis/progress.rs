//! [`ProgressStore`] on Redis: one key per person holding their furthest onboarding step.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RedisConnection, millis};
use crate::flows::onboarding::{Advance, ProgressStore};
use crate::store::StoreError;

const STORE: &str = "redis progress store";

/// KEYS[1]: the person's key. ARGV: step, ttl ms. Returns {previous or -1, current}.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local step = tonumber(ARGV[1])
local previous = redis.call('GET', KEYS[1])
local current = step
if previous and tonumber(previous) >= step then current = tonumber(previous) end
redis.call('SET', KEYS[1], current, 'PX', ARGV[2])
if previous then return {tonumber(previous), current} end
return {-1, current}
",
    )
});

/// A [`ProgressStore`] shared by every worker connected to the same Redis and prefix.
///
/// Keys are `<prefix>progress:<person>`; each expires `ttl` after the person's last advance
/// (180 days by default, as the in-memory store).
#[derive(Debug, Clone)]
pub struct RedisProgressStore {
    conn: RedisConnection,
    ttl: Duration,
}

impl RedisProgressStore {
    /// A store on `conn` keeping progress for 180 days after the last advance.
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            ttl: Duration::from_secs(180 * 24 * 60 * 60),
        }
    }

    /// Keeps progress for `ttl` after the last advance.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn key(&self, person: &str) -> String {
        self.conn.key(&format!("progress:{person}"))
    }
}

fn step(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        store: STORE,
        message: "a step out of range".into(),
    })
}

#[async_trait]
impl ProgressStore for RedisProgressStore {
    async fn advance(&self, person: &str, to: u32) -> Result<Advance, StoreError> {
        let key = self.key(person);
        let ttl = millis(self.ttl);
        let (previous, current): (i64, i64) = self
            .conn
            .run(STORE, |mut c| async move {
                ADVANCE.key(key).arg(to).arg(ttl).invoke_async(&mut c).await
            })
            .await?;
        let previous = if previous < 0 {
            None
        } else {
            Some(step(previous)?)
        };
        Ok(Advance {
            previous,
            current: step(current)?,
        })
    }

    async fn get(&self, person: &str) -> Result<Option<u32>, StoreError> {
        let key = self.key(person);
        let value: Option<i64> = self
            .conn
            .run(STORE, |mut c| async move {
                redis::AsyncCommands::get(&mut c, key).await
            })
            .await?;
        value.map(step).transpose()
    }

    async fn forget(&self, person: &str) -> Result<bool, StoreError> {
        let key = self.key(person);
        let removed: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                redis::AsyncCommands::del(&mut c, key).await
            })
            .await?;
        Ok(removed == 1)
    }
}
