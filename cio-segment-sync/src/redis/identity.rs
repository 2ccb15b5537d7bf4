//! [`IdentityStore`] on Redis: one string key per link, `<prefix>id:<kind>:<value>` → userId.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RedisConnection, millis};
use crate::identity::{IdentityKey, IdentityStore, LinkOutcome};
use crate::store::StoreError;

const STORE: &str = "redis identity store";

/// Shared Lua: `canon(k)` follows a link and then merges (at most 32 hops) to the person.
const CANON: &str = r"
local prefix = ARGV[1]
local function canon(k)
  local u = redis.call('GET', prefix .. k)
  if not u then return nil end
  for _ = 1, 32 do
    local n = redis.call('GET', prefix .. 'user:' .. u)
    if (not n) or n == u then break end
    u = n
  end
  return u
end
";

/// ARGV: prefix, ttl ms, user id, storage keys… Returns a flat list of moved (key, person).
/// Every key is also listed in `rev:<person>`, the set of keys of its (canonical) person, so a
/// person can be forgotten without scanning.
static LINK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{CANON}
local ttl = ARGV[2]
local user = ARGV[3]
local person = canon('user:' .. user) or user
local rev = prefix .. 'rev:' .. person
if person == user then
  redis.call('SET', prefix .. 'user:' .. user, user, 'PX', ttl)
  redis.call('SADD', rev, 'user:' .. user)
end
local moved = {{}}
for i = 4, #ARGV do
  local k = ARGV[i]
  local previous = canon(k)
  if previous and previous ~= person then
    table.insert(moved, k)
    table.insert(moved, previous)
    redis.call('SREM', prefix .. 'rev:' .. previous, k)
  end
  if k ~= 'user:' .. person then
    redis.call('SET', prefix .. k, person, 'PX', ttl)
    redis.call('SADD', rev, k)
  end
end
redis.call('PEXPIRE', rev, ttl)
return moved
"
    ))
});

/// ARGV: prefix, storage key. Returns the person or nil.
static RESOLVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{CANON}\nreturn canon(ARGV[2])")));

/// ARGV: prefix, ttl ms, primary, secondary. The secondary's keys join the primary's set.
static MERGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{CANON}
local ttl = ARGV[2]
local primary = ARGV[3]
local secondary = ARGV[4]
local p = canon('user:' .. primary) or primary
local s = canon('user:' .. secondary) or secondary
if p == s then return 0 end
local rev_p = prefix .. 'rev:' .. p
local rev_s = prefix .. 'rev:' .. s
if p == primary then
  redis.call('SET', prefix .. 'user:' .. p, p, 'PX', ttl)
  redis.call('SADD', rev_p, 'user:' .. p)
end
redis.call('SET', prefix .. 'user:' .. s, p, 'PX', ttl)
redis.call('SADD', rev_p, 'user:' .. s)
if s ~= secondary then
  redis.call('SET', prefix .. 'user:' .. secondary, p, 'PX', ttl)
  redis.call('SADD', rev_p, 'user:' .. secondary)
end
redis.call('SUNIONSTORE', rev_p, rev_p, rev_s)
redis.call('DEL', rev_s)
redis.call('PEXPIRE', rev_p, ttl)
return 1
"
    ))
});

/// ARGV: prefix, user id. Deletes every key of the person and returns how many.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{CANON}
local person = canon('user:' .. ARGV[2])
if not person then return 0 end
local rev = prefix .. 'rev:' .. person
local doomed = {{}}
for _, k in ipairs(redis.call('SMEMBERS', rev)) do
  if canon(k) == person then table.insert(doomed, k) end
end
local removed = 0
for _, k in ipairs(doomed) do
  removed = removed + redis.call('DEL', prefix .. k)
end
redis.call('DEL', rev)
return removed
"
    ))
});

/// An [`IdentityStore`] shared by every worker connected to the same Redis and prefix.
///
/// Each link is a key `<prefix>id:<anon|user|email>:<value>` holding the userId it points at;
/// `<prefix>id:rev:<userId>` lists the keys of each person so [`forget`](IdentityStore::forget)
/// needs no scan. Keys carry a TTL refreshed whenever they are written (35 days by default: Customer.io attaches
/// anonymous events of the last 30 days).
#[derive(Debug, Clone)]
pub struct RedisIdentityStore {
    conn: RedisConnection,
    ttl: Duration,
}

impl RedisIdentityStore {
    /// A store on `conn` with 35-day links.
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            ttl: Duration::from_secs(35 * 24 * 60 * 60),
        }
    }

    /// Keeps links for `ttl` after they were last written.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn prefix(&self) -> String {
        format!("{}id:", self.conn.prefix())
    }
}

#[async_trait]
impl IdentityStore for RedisIdentityStore {
    async fn link(&self, user_id: &str, keys: &[IdentityKey]) -> Result<LinkOutcome, StoreError> {
        let prefix = self.prefix();
        let ttl = millis(self.ttl);
        let user = user_id.to_owned();
        let storage: Vec<String> = keys.iter().map(IdentityKey::storage_key).collect();
        let flat: Vec<String> = self
            .conn
            .run(STORE, |mut c| async move {
                let mut call = LINK.prepare_invoke();
                call.arg(prefix).arg(ttl).arg(user);
                for key in storage {
                    call.arg(key);
                }
                call.invoke_async(&mut c).await
            })
            .await?;
        let mut outcome = LinkOutcome::default();
        for pair in flat.chunks(2) {
            let [key, person] = pair else {
                return Err(StoreError::Corrupt {
                    store: STORE,
                    message: "odd link answer".into(),
                });
            };
            let key = IdentityKey::from_storage_key(key).ok_or_else(|| StoreError::Corrupt {
                store: STORE,
                message: "unknown key kind".into(),
            })?;
            outcome.moved.push((key, person.clone()));
        }
        Ok(outcome)
    }

    async fn resolve(&self, key: &IdentityKey) -> Result<Option<String>, StoreError> {
        let prefix = self.prefix();
        let storage = key.storage_key();
        self.conn
            .run(STORE, |mut c| async move {
                RESOLVE.arg(prefix).arg(storage).invoke_async(&mut c).await
            })
            .await
    }

    async fn merge(&self, primary: &str, secondary: &str) -> Result<(), StoreError> {
        let prefix = self.prefix();
        let ttl = millis(self.ttl);
        let (p, s) = (primary.to_owned(), secondary.to_owned());
        let _: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                MERGE
                    .arg(prefix)
                    .arg(ttl)
                    .arg(p)
                    .arg(s)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn forget(&self, user_id: &str) -> Result<usize, StoreError> {
        let prefix = self.prefix();
        let user = user_id.to_owned();
        let removed: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                FORGET.arg(prefix).arg(user).invoke_async(&mut c).await
            })
            .await?;
        Ok(usize::try_from(removed).unwrap_or(0))
    }
}
