//! What this process is doing, for the heartbeat it sends the fleet view: work under way,
//! work done in the last minute, and, for a listener, the channels it holds.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use switchboard_core::error_chain;
use switchboard_store::fleet::{BEAT, FleetRegistry, Heartbeat};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Services;

/// One second of the last minute: which second it is, and the work done in it.
#[derive(Default)]
struct Slot {
    second: AtomicU64,
    done: AtomicU64,
}

pub struct Activity {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    in_flight: AtomicU64,
    minute: [Slot; 60],
    channels: Mutex<BTreeSet<Uuid>>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            id: Uuid::now_v7(),
            started_at: Utc::now(),
            in_flight: AtomicU64::new(0),
            minute: std::array::from_fn(|_| Slot::default()),
            channels: Mutex::new(BTreeSet::new()),
        }
    }
}

fn second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A unit of work under way; it counts as done when dropped.
pub struct Working(Arc<Activity>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.done(1);
    }
}

impl Activity {
    pub fn begin(self: &Arc<Self>) -> Working {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Working(self.clone())
    }

    /// Counts `n` units of work done now. A second's count starts over when the ring
    /// comes round to it (a race there loses a count, which a gauge can afford).
    pub fn done(&self, n: u64) {
        let now = second();
        let slot = &self.minute[(now % 60) as usize];
        let seen = slot.second.load(Ordering::Relaxed);
        if seen != now
            && slot
                .second
                .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            slot.done.store(0, Ordering::Relaxed);
        }
        slot.done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn done_last_minute(&self) -> u64 {
        let now = second();
        self.minute
            .iter()
            .filter(|s| now.saturating_sub(s.second.load(Ordering::Relaxed)) < 60)
            .map(|s| s.done.load(Ordering::Relaxed))
            .sum()
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A listener took or gave back a channel's lease.
    pub fn hold(&self, channel: Uuid, held: bool) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if held {
            channels.insert(channel);
        } else {
            channels.remove(&channel);
        }
    }

    pub fn channels(&self) -> Vec<Uuid> {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

/// Announces this process to the fleet view every `BEAT` until shutdown, then leaves it.
/// `roles` are the parts it runs.
pub async fn heartbeat(s: Services, roles: Vec<&'static str>, shutdown: CancellationToken) {
    let registry = FleetRegistry::new(s.redis.clone(), &s.config.amqp.namespace);
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into());
    let a = s.activity.clone();
    while !shutdown.is_cancelled() {
        let hb = Heartbeat {
            id: a.id,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            host: host.clone(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: a.started_at,
            in_flight: a.in_flight(),
            done_last_minute: a.done_last_minute(),
            channels: a.channels(),
            queue_lag_ms: u64::try_from(switchboard_bus::last_queue_lag().as_millis())
                .unwrap_or(u64::MAX),
            at: Utc::now(),
        };
        if let Err(e) = registry.beat(&hb).await {
            tracing::debug!(error = %error_chain(&e), "heartbeat skipped");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(BEAT) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), registry.leave(a.id)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_counted_while_under_way_and_for_a_minute_after() {
        let a = Arc::new(Activity::default());
        let w = a.begin();
        assert_eq!(a.in_flight(), 1);
        drop(w);
        a.done(4);
        assert_eq!((a.in_flight(), a.done_last_minute()), (0, 5));
        let ch = Uuid::now_v7();
        a.hold(ch, true);
        assert_eq!(a.channels(), vec![ch]);
        a.hold(ch, false);
        assert!(a.channels().is_empty());
    }
}
