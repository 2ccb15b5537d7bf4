//! [`ActivityStore`] on Redis: a hash of last activity, a sorted set of people not enrolled
//! (scored by last activity) and a set of enrolled people.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;

use super::RedisConnection;
use crate::activity::{ActivityStore, Cursor, Inactive, InactivePage, Recorded};
use crate::store::StoreError;

const STORE: &str = "redis activity store";

/// KEYS: last, candidates, enrolled. ARGV: person, at. Returns {last_active, reactivated}.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local person = ARGV[1]
local at = tonumber(ARGV[2])
local last = redis.call('HGET', KEYS[1], person)
if not last then
  redis.call('HSET', KEYS[1], person, ARGV[2])
  redis.call('ZADD', KEYS[2], at, person)
  return {ARGV[2], 0}
end
local enrolled = redis.call('SISMEMBER', KEYS[3], person) == 1
local newest = last
if at > tonumber(last) then newest = ARGV[2] end
redis.call('HSET', KEYS[1], person, newest)
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

/// KEYS: candidates. ARGV: before, has cursor (0/1), cursor score, cursor person, limit.
/// Returns up to limit + 1 (person, score) pairs flattened, oldest first.
static INACTIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local want = (tonumber(ARGV[5]) + 1) * 2
local has_cursor = ARGV[2] == '1'
local min = '-inf'
if has_cursor then min = ARGV[3] end
local out = {}
local offset = 0
while #out < want do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], min, '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', offset, 256)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local person = batch[i]
    local skip = has_cursor and tonumber(batch[i + 1]) == tonumber(ARGV[3]) and person <= ARGV[4]
    if not skip and #out < want then
      table.insert(out, person)
      table.insert(out, batch[i + 1])
    end
  end
  offset = offset + 256
end
return out
",
    )
});

/// KEYS: last, candidates, enrolled. ARGV: person, expected last activity. Returns 1 or 0.
static ENROLL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local person = ARGV[1]
if redis.call('SISMEMBER', KEYS[3], person) == 1 then return 0 end
local last = redis.call('HGET', KEYS[1], person)
if (not last) or tonumber(last) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], person)
redis.call('SADD', KEYS[3], person)
return 1
",
    )
});

/// KEYS: last, enrolled. ARGV: person. Returns {} or {last, enrolled}.
static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local last = redis.call('HGET', KEYS[1], ARGV[1])
if not last then return {} end
return {last, redis.call('SISMEMBER', KEYS[2], ARGV[1])}
",
    )
});

/// KEYS: last, candidates, enrolled. ARGV: person. Returns 1 when the person was known.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local known = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return known
",
    )
});

/// An [`ActivityStore`] shared by every worker connected to the same Redis and prefix.
///
/// Keys: `<prefix>activity:last` (hash), `<prefix>activity:candidates` (sorted set),
/// `<prefix>activity:enrolled` (set). They hold the activity record itself and do not
/// expire; their size is one entry per person.
#[derive(Debug, Clone)]
pub struct RedisActivityStore {
    conn: RedisConnection,
}

impl RedisActivityStore {
    /// A store on `conn`.
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn }
    }

    fn keys(&self) -> [String; 3] {
        ["last", "candidates", "enrolled"].map(|k| self.conn.key(&format!("activity:{k}")))
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
        let [last, candidates, enrolled] = self.keys();
        let person = person.to_owned();
        let (last_active, reactivated): (String, i64) = self
            .conn
            .run(STORE, |mut c| async move {
                RECORD
                    .key(last)
                    .key(candidates)
                    .key(enrolled)
                    .arg(person)
                    .arg(at)
                    .invoke_async(&mut c)
                    .await
            })
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
        let [_, candidates, _] = self.keys();
        let (has, score, member) = match after {
            Some(c) => (1, c.last_active, c.person.clone()),
            None => (0, 0, String::new()),
        };
        let flat: Vec<String> = self
            .conn
            .run(STORE, |mut c| async move {
                INACTIVE
                    .key(candidates)
                    .arg(before)
                    .arg(has)
                    .arg(score)
                    .arg(member)
                    .arg(limit)
                    .invoke_async(&mut c)
                    .await
            })
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
        let [last, candidates, enrolled] = self.keys();
        let person = person.to_owned();
        let done: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                ENROLL
                    .key(last)
                    .key(candidates)
                    .key(enrolled)
                    .arg(person)
                    .arg(last_active)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(done == 1)
    }

    async fn get(&self, person: &str) -> Result<Option<(i64, bool)>, StoreError> {
        let [last, _, enrolled] = self.keys();
        let person = person.to_owned();
        let answer: Vec<redis::Value> = self
            .conn
            .run(STORE, |mut c| async move {
                GET.key(last)
                    .key(enrolled)
                    .arg(person)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
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
        let [last, candidates, enrolled] = self.keys();
        let person = person.to_owned();
        let known: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                FORGET
                    .key(last)
                    .key(candidates)
                    .key(enrolled)
                    .arg(person)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(known == 1)
    }
}
