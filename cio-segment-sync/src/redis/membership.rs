//! [`MembershipStore`] on Redis: a hash per person, audience → the newest change.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RedisConnection, millis};
use crate::flows::audience::{MembershipChange, MembershipStore};
use crate::store::StoreError;

const STORE: &str = "redis membership store";

/// KEYS[1]: the person's hash. ARGV: audience, at, entered (0/1), tiebreak, ttl ms.
/// Stores `at:entered:tiebreak` when the change is at least as new as the stored one
/// (ordered by at, then tiebreak, then entered). Returns 1 when stored.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
local at = tonumber(ARGV[2])
local entered = tonumber(ARGV[3])
local tiebreak = ARGV[4]
if current then
  local first = string.find(current, ':', 2, true)
  local second = string.find(current, ':', first + 1, true)
  local stored_at = tonumber(string.sub(current, 1, first - 1))
  local stored_entered = tonumber(string.sub(current, first + 1, second - 1))
  local stored_tiebreak = string.sub(current, second + 1)
  local newer
  if at ~= stored_at then
    newer = at > stored_at
  elseif tiebreak ~= stored_tiebreak then
    newer = tiebreak > stored_tiebreak
  else
    newer = entered >= stored_entered
  end
  if not newer then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3] .. ':' .. tiebreak)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
",
    )
});

/// KEYS[1]: the person's hash. Deletes it and returns how many audiences it held.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
",
    )
});

/// A [`MembershipStore`] shared by every worker connected to the same Redis and prefix.
///
/// One hash per person, `<prefix>membership:<person>`, audience → `at:entered:tiebreak`,
/// expiring `ttl` after the person's last change (400 days by default).
#[derive(Debug, Clone)]
pub struct RedisMembershipStore {
    conn: RedisConnection,
    ttl: Duration,
}

impl RedisMembershipStore {
    /// A store on `conn` keeping each person's changes for 400 days after the last one.
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            ttl: Duration::from_secs(400 * 24 * 60 * 60),
        }
    }

    /// Keeps a person's changes for `ttl` after their last change.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn key(&self, person: &str) -> String {
        self.conn.key(&format!("membership:{person}"))
    }
}

fn parse(stored: &str) -> Result<MembershipChange, StoreError> {
    let corrupt = || StoreError::Corrupt {
        store: STORE,
        message: "unreadable membership change".into(),
    };
    // The time may be negative, so look for the first separator after its first character.
    let first = stored
        .get(1..)
        .and_then(|rest| rest.find(':'))
        .map(|i| i + 1)
        .ok_or_else(corrupt)?;
    let (at, rest) = (&stored[..first], &stored[first + 1..]);
    let (entered, tiebreak) = rest.split_once(':').ok_or_else(corrupt)?;
    Ok(MembershipChange {
        at: at.parse().map_err(|_| corrupt())?,
        tiebreak: tiebreak.to_owned(),
        entered: match entered {
            "1" => true,
            "0" => false,
            _ => return Err(corrupt()),
        },
    })
}

#[async_trait]
impl MembershipStore for RedisMembershipStore {
    async fn record_if_newer(
        &self,
        person: &str,
        audience: &str,
        change: &MembershipChange,
    ) -> Result<bool, StoreError> {
        let key = self.key(person);
        let audience = audience.to_owned();
        let (at, entered, tiebreak) = (
            change.at,
            i64::from(change.entered),
            change.tiebreak.clone(),
        );
        let ttl = millis(self.ttl);
        let stored: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                RECORD
                    .key(key)
                    .arg(audience)
                    .arg(at)
                    .arg(entered)
                    .arg(tiebreak)
                    .arg(ttl)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(stored == 1)
    }

    async fn get(
        &self,
        person: &str,
        audience: &str,
    ) -> Result<Option<MembershipChange>, StoreError> {
        let key = self.key(person);
        let audience = audience.to_owned();
        let stored: Option<String> = self
            .conn
            .run(STORE, |mut c| async move {
                redis::AsyncCommands::hget(&mut c, key, audience).await
            })
            .await?;
        stored.as_deref().map(parse).transpose()
    }

    async fn forget(&self, person: &str) -> Result<usize, StoreError> {
        let key = self.key(person);
        let removed: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                FORGET.key(key).invoke_async(&mut c).await
            })
            .await?;
        Ok(usize::try_from(removed).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn stored_changes_parse_back() {
        let change = parse("-5:1:msg:with:colons").unwrap();
        assert_eq!(
            (change.at, change.entered, change.tiebreak.as_str()),
            (-5, true, "msg:with:colons")
        );
        let change = parse("1714558530123:0:").unwrap();
        assert_eq!(
            (change.at, change.entered, change.tiebreak.as_str()),
            (1_714_558_530_123, false, "")
        );
        assert!(parse("garbage").is_err());
        assert!(parse("1:2:x").is_err());
    }
}
