//! [`RecentIds`] on Redis (feature `redis`): one key per id, expiring with `PX`.

use std::time::Duration;

use async_trait::async_trait;

use super::RecentIds;
use crate::redis::{RedisConnection, millis};
use crate::store::StoreError;

const STORE: &str = "redis recent ids";

/// [`RecentIds`] shared by every worker connected to the same Redis and prefix, so an event
/// one worker wrote into Segment is recognised by whichever worker receives it back.
///
/// Keys are `<prefix>recent:<message id>`; Redis expires them, so memory is bounded by the
/// write rate times the time-to-live.
#[derive(Debug, Clone)]
pub struct RedisRecentIds {
    conn: RedisConnection,
}

impl RedisRecentIds {
    /// Recent ids on `conn`.
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn }
    }

    fn key(&self, id: &str) -> String {
        self.conn.key(&format!("recent:{id}"))
    }
}

#[async_trait]
impl RecentIds for RedisRecentIds {
    async fn remember(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        let key = self.key(id);
        let px = millis(ttl);
        self.conn
            .run(STORE, |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("PX")
                    .arg(px)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    async fn contains(&self, id: &str) -> Result<bool, StoreError> {
        let key = self.key(id);
        let found: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                redis::cmd("EXISTS").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(found > 0)
    }
}
