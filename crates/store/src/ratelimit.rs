//! Send limits shared by every dispatcher process: a generic cell rate algorithm in one
//! Redis script, on Redis's clock.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::Result;

/// Reserves the next slot and says how long to wait for it: 0 when the send may go now.
/// Reserving (rather than refusing) keeps callers in line without a retry loop. A pause
/// the platform asked for (`KEYS[2]`, expiring when it ends) makes the wait at least as
/// long as what is left of it.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
local wait = math.max(0, tat - now - tolerance)
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil(next_tat - now + tolerance + 1000))
local paused = redis.call('PTTL', KEYS[2])
if paused > wait then wait = paused end
return wait
";

/// Holds a scope back for `ARGV[1]` ms, unless a longer pause is already set.
const PAUSE: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
end
return 1
";

#[derive(Clone)]
pub struct SharedRateLimiter {
    redis: ConnectionManager,
    script: redis::Script,
    pause: redis::Script,
}

impl SharedRateLimiter {
    pub fn new(redis: ConnectionManager) -> Self {
        Self {
            redis,
            script: redis::Script::new(GCRA),
            pause: redis::Script::new(PAUSE),
        }
    }

    pub async fn reserve(&self, key: &str, every: Duration, burst: u32) -> Result<Duration> {
        let mut r = self.redis.clone();
        let wait_ms: u64 = self
            .script
            .key(format!("sb:rl:{key}"))
            .key(format!("sb:rl:pause:{key}"))
            .arg(u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg(burst.max(1))
            .invoke_async(&mut r)
            .await?;
        Ok(Duration::from_millis(wait_ms))
    }
}

impl SharedRateLimiter {
    /// Holds `key` back for `wait` in every process: the platform said its limit is spent.
    pub async fn pause(&self, key: &str, wait: Duration) -> Result<()> {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut r = self.redis.clone();
        let _: i64 = self
            .pause
            .key(format!("sb:rl:pause:{key}"))
            .arg(ms)
            .invoke_async(&mut r)
            .await?;
        Ok(())
    }
}
