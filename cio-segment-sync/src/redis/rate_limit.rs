//! A [`RateLimiter`] shared by every worker: GCRA in one Lua script.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::RedisConnection;
use crate::rate_limit::{Admission, RateLimiter};
use crate::store::StoreError;

const STORE: &str = "redis rate limiter";

/// GCRA: KEYS[1] holds the theoretical arrival time (ms). ARGV: now ms ('' = Redis TIME),
/// emission interval ms, burst tolerance ms. Returns {1, 0} (granted) or {0, wait ms}.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, math.ceil(allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0}
",
    )
});

/// A pause: KEYS[1] as above. ARGV: now ms ('' = Redis TIME), pause ms, burst tolerance ms.
/// Pushes the theoretical arrival time to `now + pause + tolerance`, unless it is later already:
/// no token is granted before the pause ends, and after it tokens come at the steady rate (the
/// burst has to build up again), so the workers' first sends after an outage are spread out.
static PAUSE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local tolerance = tonumber(ARGV[3])
local new_tat = now + tonumber(ARGV[2]) + tolerance
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < new_tat then
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
end
return 1
",
    )
});

/// Where the limiter reads time from: Redis's own clock (the default, one clock for every
/// worker) or a function the host or a test controls (unix milliseconds).
#[derive(Clone, Default)]
pub enum LimiterClock {
    /// The Redis server's `TIME`.
    #[default]
    Server,
    /// A caller-supplied clock in unix milliseconds.
    Custom(Arc<dyn Fn() -> f64 + Send + Sync>),
}

impl fmt::Debug for LimiterClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimiterClock::Server => f.write_str("Server"),
            LimiterClock::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// `rate` attempts per `period`, shared by every worker using the same Redis, prefix and
/// `name` (e.g. one per Customer.io workspace and API). Bursts up to `rate` are allowed.
///
/// Every attempt (retries included) takes a token, so N workers together stay within one
/// workspace's limit.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    conn: RedisConnection,
    key: String,
    interval_ms: f64,
    tolerance_ms: f64,
    clock: LimiterClock,
}

impl RedisRateLimiter {
    /// A limiter named `name` admitting `rate` attempts per `period`.
    pub fn new(conn: RedisConnection, name: &str, rate: NonZeroU32, period: Duration) -> Self {
        let period_ms = period.as_secs_f64() * 1000.0;
        let interval_ms = period_ms / f64::from(rate.get());
        let key = conn.key(&format!("ratelimit:{name}"));
        Self {
            conn,
            key,
            interval_ms,
            tolerance_ms: period_ms - interval_ms,
            clock: LimiterClock::Server,
        }
    }

    /// Reads time from `clock` instead of Redis's `TIME`.
    pub fn with_clock(mut self, clock: LimiterClock) -> Self {
        self.clock = clock;
        self
    }
}

impl RedisRateLimiter {
    fn now_arg(&self) -> String {
        match &self.clock {
            LimiterClock::Server => String::new(),
            LimiterClock::Custom(clock) => format!("{:.3}", clock()),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    /// Pauses every worker sharing this limiter (same Redis, prefix and name).
    async fn pause(&self, delay: Duration) -> Result<(), StoreError> {
        let now = self.now_arg();
        let key = self.key.clone();
        let pause_ms = delay.as_secs_f64() * 1000.0;
        let tolerance = self.tolerance_ms;
        let _: i64 = self
            .conn
            .run(STORE, |mut c| async move {
                PAUSE
                    .key(key)
                    .arg(now)
                    .arg(pause_ms)
                    .arg(tolerance)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn try_acquire(&self) -> Result<Admission, StoreError> {
        let now = self.now_arg();
        let key = self.key.clone();
        let (interval, tolerance) = (self.interval_ms, self.tolerance_ms);
        let (granted, wait_ms): (i64, i64) = self
            .conn
            .run(STORE, |mut c| async move {
                GCRA.key(key)
                    .arg(now)
                    .arg(interval)
                    .arg(tolerance)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if granted == 1 {
            Ok(Admission::Granted)
        } else {
            Ok(Admission::Wait(Duration::from_millis(
                u64::try_from(wait_ms).unwrap_or(0).max(1),
            )))
        }
    }
}
