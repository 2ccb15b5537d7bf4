//! [`ActivityStore`] on Redis: a hash of last activity, a sorted set of people not enrolled
//! (scored by last activity), a set of enrolled people and, with a time-to-live, a sorted set
//! of when each person was last written.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RedisConnection, millis};
use crate::activity::{ActivityStore, Cursor, Inactive, InactivePage, Recorded};
use crate::store::StoreError;

const STORE: &str = "redis activity store";

/// How many expired people one call drops at most, besides the person it is about.
const PRUNE_BATCH: usize = 100;

/// The start of every script. KEYS: last, candidates, enrolled, touched. ARGV[1]: the record
/// time-to-live in milliseconds, 0 for none.
///
/// With a time-to-live, `touched` scores each person by the Redis time (ms) of the last write
/// about them; the prelude drops up to `PRUNE_BATCH` people whose last write is older than the
/// time-to-live, `expired(p)` drops `p` if their record ran out, and `touch(p)` notes a write
/// and gives every key the time-to-live again. Without one, `touch` removes any key
/// time-to-live left by an earlier setting, so the records keep.
const PRELUDE: &str = r"
local ttl = tonumber(ARGV[1])
local now = 0
local function drop(p)
  redis.call('HDEL', KEYS[1], p)
  redis.call('ZREM', KEYS[2], p)
  redis.call('SREM', KEYS[3], p)
  redis.call('ZREM', KEYS[4], p)
end
local function expired(p)
  if ttl == 0 then return false end
  local touched = redis.call('ZSCORE', KEYS[4], p)
  if touched and tonumber(touched) < now - ttl then
    drop(p)
    return true
  end
  return false
end
local function touch(p)
  if ttl > 0 then
    redis.call('ZADD', KEYS[4], now, p)
    for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
  else
    for i = 1, 3 do redis.call('PERSIST', KEYS[i]) end
  end
end
if ttl > 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', string.format('(%d', now - ttl), 'LIMIT', 0, PRUNE_BATCH)
  for _, p in ipairs(old) do drop(p) end
end
";

fn script(body: &str) -> Script {
    Script::new(&format!(
        "{}{body}",
        PRELUDE.replace("PRUNE_BATCH", &PRUNE_BATCH.to_string())
    ))
}

/// ARGV: ttl, person, at. Returns {last_active, reactivated}.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local person = ARGV[2]
local at = tonumber(ARGV[3])
expired(person)
local last = redis.call('HGET', KEYS[1], person)
if not last then
  redis.call('HSET', KEYS[1], person, ARGV[3])
  redis.call('ZADD', KEYS[2], at, person)
  touch(person)
  return {ARGV[3], 0}
end
local enrolled = redis.call('SISMEMBER', KEYS[3], person) == 1
local newest = last
if at > tonumber(last) then newest = ARGV[3] end
redis.call('HSET', KEYS[1], person, newest)
touch(person)
local reactivated = enrolled and at > tonumber(last)
if reactivated then
  redis.call('SREM', KEYS[3], person)
  redis.call('ZADD', KEYS[2], newest, person)
  return {newest, 1}
end
if not enrolled then redis.call('ZADD', KEYS[2], newest, person) end
return {newest, 0}
",
    )
});

/// ARGV: ttl, before, has cursor (0/1), cursor score, cursor person, limit. Returns up to
/// limit + 1 (person, score) pairs flattened, oldest first. People whose record ran out are
/// left out, and dropped once the listing is done (dropping them while paging through the
/// sorted set would shift the offsets).
static INACTIVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local want = (tonumber(ARGV[6]) + 1) * 2
local has_cursor = ARGV[3] == '1'
local min = '-inf'
if has_cursor then min = ARGV[4] end
local out = {}
local gone = {}
local offset = 0
while #out < want do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[2], min, '(' .. ARGV[2], 'WITHSCORES', 'LIMIT', offset, 256)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local person = batch[i]
    local skip = has_cursor and tonumber(batch[i + 1]) == tonumber(ARGV[4]) and person <= ARGV[5]
    if not skip and #out < want then
      local touched = ttl > 0 and redis.call('ZSCORE', KEYS[4], person)
      if touched and tonumber(touched) < now - ttl then
        table.insert(gone, person)
      else
        table.insert(out, person)
        table.insert(out, batch[i + 1])
      end
    end
  end
  offset = offset + 256
end
for _, p in ipairs(gone) do drop(p) end
return out
",
    )
});

/// ARGV: ttl, person, expected last activity. Returns 1 or 0.
static ENROLL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local person = ARGV[2]
if expired(person) then return 0 end
if redis.call('SISMEMBER', KEYS[3], person) == 1 then return 0 end
local last = redis.call('HGET', KEYS[1], person)
if (not last) or tonumber(last) ~= tonumber(ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[2], person)
redis.call('SADD', KEYS[3], person)
touch(person)
return 1
",
    )
});

/// ARGV: ttl, person. Returns {} or {last, enrolled}.
static GET: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if expired(ARGV[2]) then return {} end
local last = redis.call('HGET', KEYS[1], ARGV[2])
if not last then return {} end
return {last, redis.call('SISMEMBER', KEYS[3], ARGV[2])}
",
    )
});

/// ARGV: ttl, person. Returns 1 when the person was known (and not expired).
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if expired(ARGV[2]) then return 0 end
local known = redis.call('HDEL', KEYS[1], ARGV[2])
drop(ARGV[2])
return known
",
    )
});

/// An [`ActivityStore`] shared by every worker connected to the same Redis and prefix.
///
/// Keys: `<prefix>activity:last` (hash: person → last activity), `<prefix>activity:candidates`
/// (sorted set of the people not enrolled, by last activity), `<prefix>activity:enrolled`
/// (set), and with a time-to-live `<prefix>activity:touched` (sorted set: person → Redis time
/// of the last write about them, in milliseconds). Their size is one entry per person.
///
/// # Time-to-live
///
/// [`RedisActivityStore::new`] keeps every record until it is forgotten (as v0.1 did).
/// [`with_ttl`](Self::with_ttl) makes records expire: a person nobody wrote about (no
/// activity, no enrolment) for the time-to-live is dropped from every key, and every key gets
/// the time-to-live again at each write (so the whole store disappears after that long without
/// any write, which is the same thing). Expiry follows Redis' clock (`TIME`), and each call
/// first drops up to 100 expired people, so the store stays bounded without a sweeper; an
/// expired person is never listed, enrolled or returned, even before they are dropped.
/// Records written by a version without a time-to-live have no write time and keep until
/// their person is written again. Scripts read `TIME` before writing, which needs Redis 5 or
/// later (script effects replication).
///
/// The time-to-live must outlast a scan's chance to see the person inactive: at least the
/// churn period plus the scan interval plus a margin — see
/// [`ChurnConfig::min_activity_ttl`](crate::flows::churn::ChurnConfig::min_activity_ttl), which
/// the configuration file enforces for `churn.activity_ttl_days`. An enrolled person's record
/// lasts the time-to-live after their enrolment: activity after that is recorded as a new
/// person's, so no reactivation is sent for it.
#[derive(Debug, Clone)]
pub struct RedisActivityStore {
    conn: RedisConnection,
    ttl: Option<Duration>,
}

impl RedisActivityStore {
    /// A store on `conn` whose records do not expire.
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn, ttl: None }
    }

    /// Records expire `ttl` after the last write about their person (see the
    /// [type docs](Self#time-to-live)). Every replica sharing the prefix should use the same.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The records' time-to-live, if they have one.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    fn keys(&self) -> [String; 4] {
        ["last", "candidates", "enrolled", "touched"]
            .map(|k| self.conn.key(&format!("activity:{k}")))
    }

    fn ttl_arg(&self) -> u64 {
        self.ttl.map_or(0, millis)
    }

    /// Runs `script` over the four keys with the time-to-live and `args`.
    async fn invoke<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &'static Script,
        args: Vec<String>,
    ) -> Result<T, StoreError> {
        let keys = self.keys();
        let ttl = self.ttl_arg();
        self.conn
            .run(STORE, |mut c| async move {
                let mut invocation = script.prepare_invoke();
                for key in keys {
                    invocation.key(key);
                }
                invocation.arg(ttl);
                for arg in args {
                    invocation.arg(arg);
                }
                invocation.invoke_async(&mut c).await
            })
            .await
    }
}

fn corrupt(message: &str) -> StoreError {
    StoreError::Corrupt {
        store: STORE,
        message: message.to_owned(),
    }
}

fn number(text: &str) -> Result<i64, StoreError> {
    // Scores come back as text; whole seconds may be written with a trailing ".0" by Lua.
    text.parse::<i64>()
        .or_else(|_| text.parse::<f64>().map(|f| f as i64))
        .map_err(|_| corrupt("a stored time is not a number"))
}

#[async_trait]
impl ActivityStore for RedisActivityStore {
    async fn record(&self, person: &str, at: i64) -> Result<Recorded, StoreError> {
        let (last_active, reactivated): (String, i64) = self
            .invoke(&RECORD, vec![person.to_owned(), at.to_string()])
            .await?;
        Ok(Recorded {
            last_active: number(&last_active)?,
            reactivated: reactivated == 1,
        })
    }

    async fn inactive_since(
        &self,
        before: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<InactivePage, StoreError> {
        if limit == 0 {
            return Ok(InactivePage::default());
        }
        let (has, score, member) = match after {
            Some(c) => ("1", c.last_active, c.person.clone()),
            None => ("0", 0, String::new()),
        };
        let flat: Vec<String> = self
            .invoke(
                &INACTIVE,
                vec![
                    before.to_string(),
                    has.to_owned(),
                    score.to_string(),
                    member,
                    limit.to_string(),
                ],
            )
            .await?;
        let mut people = Vec::with_capacity(flat.len() / 2);
        for pair in flat.chunks(2) {
            let [person, last] = pair else {
                return Err(corrupt("odd listing answer"));
            };
            people.push(Inactive {
                person: person.clone(),
                last_active: number(last)?,
            });
        }
        let next = if people.len() > limit {
            people.truncate(limit);
            people.last().map(|p| Cursor {
                last_active: p.last_active,
                person: p.person.clone(),
            })
        } else {
            None
        };
        Ok(InactivePage { people, next })
    }

    async fn enroll(&self, person: &str, last_active: i64) -> Result<bool, StoreError> {
        let done: i64 = self
            .invoke(&ENROLL, vec![person.to_owned(), last_active.to_string()])
            .await?;
        Ok(done == 1)
    }

    async fn get(&self, person: &str) -> Result<Option<(i64, bool)>, StoreError> {
        let answer: Vec<redis::Value> = self.invoke(&GET, vec![person.to_owned()]).await?;
        match answer.as_slice() {
            [] => Ok(None),
            [last, enrolled] => {
                let last: String =
                    redis::from_redis_value_ref(last).map_err(|_| corrupt("bad last activity"))?;
                let enrolled: i64 =
                    redis::from_redis_value_ref(enrolled).map_err(|_| corrupt("bad enrolment"))?;
                Ok(Some((number(&last)?, enrolled == 1)))
            }
            _ => Err(corrupt("unexpected answer")),
        }
    }

    async fn forget(&self, person: &str) -> Result<bool, StoreError> {
        let known: i64 = self.invoke(&FORGET, vec![person.to_owned()]).await?;
        Ok(known == 1)
    }
}
