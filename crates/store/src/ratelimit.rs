//! Send limits shared by every dispatcher process: a generic cell rate algorithm in one
//! Redis script, on Redis's clock.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::Result;

/// Reserves the next slot and says how long to wait for it: 0 when the send may go now.
/// Reserving (rather than refusing) keeps callers in line without a retry loop.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
local wait = math.max(0, tat - now - tolerance)
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil(next_tat - now + tolerance + 1000))
return wait
";

#[derive(Clone)]
pub struct SharedRateLimiter {
    redis: ConnectionManager,
    script: redis::Script,
}

impl SharedRateLimiter {
    pub fn new(redis: ConnectionManager) -> Self {
        Self {
            redis,
            script: redis::Script::new(GCRA),
        }
    }

    pub async fn reserve(&self, key: &str, every: Duration, burst: u32) -> Result<Duration> {
        let mut r = self.redis.clone();
        let wait_ms: u64 = self
            .script
            .key(format!("sb:rl:{key}"))
            .arg(u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg(burst.max(1))
            .invoke_async(&mut r)
            .await?;
        Ok(Duration::from_millis(wait_ms))
    }
}
