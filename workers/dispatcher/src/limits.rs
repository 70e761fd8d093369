//! Platform send limits: governor smooths each process's own sends, and the shared Redis
//! limiter keeps all dispatcher processes together within the platform's numbers.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_core::{Pause, RateLimit};
use switchboard_store::{SharedRateLimiter, StoreError};
use uuid::Uuid;

/// This process's own limiters: one keyed limiter per quota (a platform has a handful),
/// each holding a state per key (a channel, a chat). Keys whose limit has fully recovered
/// are dropped every `PRUNE_EVERY` acquisitions, so a dispatcher that has talked to a
/// million chats does not keep a million limiters.
#[derive(Default)]
pub struct Local {
    by_quota: Mutex<HashMap<(Duration, u32), Keyed>>,
    acquired: AtomicU64,
}

type Keyed = Arc<DefaultKeyedRateLimiter<String>>;

const PRUNE_EVERY: u64 = 1024;

impl Local {
    fn limiter(&self, limit: &RateLimit) -> Option<Keyed> {
        let burst = NonZeroU32::new(limit.burst.max(1))?;
        let quota = Quota::with_period(limit.every)?.allow_burst(burst);
        let mut map = self.by_quota.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            map.entry((limit.every, burst.get()))
                .or_insert_with(|| Arc::new(RateLimiter::keyed(quota)))
                .clone(),
        )
    }

    /// Waits until `key` may send under `limit` in this process.
    pub async fn until_ready(&self, key: &str, limit: &RateLimit) {
        if let Some(limiter) = self.limiter(limit) {
            limiter.until_key_ready(&key.to_owned()).await;
        }
        if self.acquired.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
    }

    /// Drops the state of every key whose limit has fully recovered.
    pub fn prune(&self) {
        let limiters: Vec<_> = self
            .by_quota
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for l in limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
        metrics::gauge!("sb_rate_limit_keys").set(self.keys() as f64);
    }

    /// Keys with state, over every quota.
    pub fn keys(&self) -> usize {
        self.by_quota
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|l| l.len())
            .sum()
    }
}

pub struct Limits {
    shared: SharedRateLimiter,
    local: Local,
}

impl Limits {
    pub fn new(shared: SharedRateLimiter) -> Self {
        Self {
            shared,
            local: Local::default(),
        }
    }

    /// Waits this process's turn, then reserves the shared slots and returns how much
    /// longer the send must wait for them.
    pub async fn acquire(
        &self,
        channel_id: Uuid,
        limits: &[RateLimit],
    ) -> Result<Duration, StoreError> {
        let mut wait = Duration::ZERO;
        for limit in limits {
            let key = format!("{channel_id}:{}", limit.scope);
            self.local.until_ready(&key, limit).await;
            wait = wait.max(self.shared.reserve(&key, limit.every, limit.burst).await?);
        }
        if !wait.is_zero() {
            metrics::counter!("sb_rate_limit_waits_total").increment(1);
            metrics::histogram!("sb_rate_limit_wait_seconds").record(wait.as_secs_f64());
        }
        Ok(wait)
    }

    /// Holds a scope of the channel back in every process for as long as the platform
    /// asked: the sends that `acquire` it next wait the pause out.
    pub async fn pause(&self, channel_id: Uuid, pause: &Pause) -> Result<(), StoreError> {
        metrics::counter!("sb_rate_limit_pauses_total").increment(1);
        self.shared
            .pause(&format!("{channel_id}:{}", pause.scope), pause.wait)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Local;
    use switchboard_core::RateLimit;

    #[tokio::test]
    async fn chats_whose_limit_recovered_are_forgotten() {
        let local = Local::default();
        let per_chat = RateLimit {
            scope: "chat".into(),
            every: Duration::from_millis(20),
            burst: 1,
        };
        for chat in 0..500 {
            local
                .until_ready(&format!("tg:chat:{chat}"), &per_chat)
                .await;
        }
        assert_eq!(local.keys(), 500, "each chat has its state");
        let start = Instant::now();
        loop {
            local.prune();
            if local.keys() == 0 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} chats are still remembered",
                local.keys()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
