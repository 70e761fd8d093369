//! Platform send limits: governor smooths each process's own sends, and the shared Redis
//! limiter keeps all dispatcher processes together within the platform's numbers.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use switchboard_core::RateLimit;
use switchboard_store::{SharedRateLimiter, StoreError};
use uuid::Uuid;

pub struct Limits {
    shared: SharedRateLimiter,
    local: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
}

impl Limits {
    pub fn new(shared: SharedRateLimiter) -> Self {
        Self {
            shared,
            local: Mutex::new(HashMap::new()),
        }
    }

    fn local(&self, key: &str, limit: &RateLimit) -> Option<Arc<DefaultDirectRateLimiter>> {
        let burst = NonZeroU32::new(limit.burst.max(1))?;
        let quota = Quota::with_period(limit.every)?.allow_burst(burst);
        let mut map = self.local.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            map.entry(key.to_owned())
                .or_insert_with(|| Arc::new(RateLimiter::direct(quota)))
                .clone(),
        )
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
            if let Some(local) = self.local(&key, limit) {
                local.until_ready().await;
            }
            wait = wait.max(self.shared.reserve(&key, limit.every, limit.burst).await?);
        }
        if !wait.is_zero() {
            metrics::counter!("sb_rate_limit_waits_total").increment(1);
            metrics::histogram!("sb_rate_limit_wait_seconds").record(wait.as_secs_f64());
        }
        Ok(wait)
    }
}
