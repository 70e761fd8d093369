//! The fleet as admins see it: the processes that beat, the work queue's depth, consumers
//! and lag, the drafts and sends that are due, and a plain hint where work waits.

use std::time::Duration;

use serde::Serialize;
use switchboard_store::fleet::{DueWork, FleetRegistry, Heartbeat};

use crate::Services;

/// Work due longer than this (beyond the quiet window or the send's time) earns a hint.
const WAIT_HINT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub processes: Vec<Heartbeat>,
    pub queues: Vec<QueueReport>,
    /// The longest publish-to-delivery wait an AI worker saw in its newest job.
    pub queue_lag_ms: u64,
    pub due: DueWork,
    pub hints: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    pub queue: String,
    pub messages: u32,
    pub consumers: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("the fleet registry (Redis) is unavailable")]
    Registry(#[source] switchboard_store::StoreError),
    #[error("the database is unavailable")]
    Database(#[source] switchboard_store::StoreError),
    #[error("the broker is unavailable")]
    Broker(#[source] switchboard_bus::BusError),
}

pub async fn report(s: &Services) -> Result<FleetReport, FleetError> {
    let processes = FleetRegistry::new(s.redis.clone())
        .processes()
        .await
        .map_err(FleetError::Registry)?;
    let due = s.store.due_work().await.map_err(FleetError::Database)?;
    let queues: Vec<QueueReport> =
        switchboard_bus::queue_stats(&s.config.amqp, switchboard_bus::INBOUND)
            .await
            .map_err(FleetError::Broker)?
            .into_iter()
            .map(|q| QueueReport {
                queue: q.queue,
                messages: q.messages,
                consumers: q.consumers,
            })
            .collect();
    let runs = |role: &str| processes.iter().any(|p| p.roles.iter().any(|r| r == role));
    let queue_lag_ms = processes
        .iter()
        .filter(|p| p.roles.iter().any(|r| r == "ai-worker"))
        .map(|p| p.queue_lag_ms)
        .max()
        .unwrap_or(0);
    let mut hints = Vec::new();
    for (role, command) in [
        ("gateway", "switchboard gateway"),
        ("ai-worker", "switchboard ai-worker"),
        ("dispatcher", "switchboard dispatcher"),
    ] {
        if !runs(role) {
            hints.push(format!("no {role} is running: start `{command}`"));
        }
    }
    let secs = |d: f64| d.round() as u64;
    if due.drafts > 0 && due.drafts_oldest_secs > WAIT_HINT.as_secs_f64() {
        hints.push(format!(
            "drafts wait {} s: add AI workers",
            secs(due.drafts_oldest_secs)
        ));
    }
    if Duration::from_millis(queue_lag_ms) > WAIT_HINT {
        hints.push(format!(
            "messages wait {} s on the queue: add AI workers",
            secs(queue_lag_ms as f64 / 1000.0)
        ));
    }
    if due.sends > 0 && due.sends_oldest_secs > WAIT_HINT.as_secs_f64() {
        hints.push(format!(
            "sends wait {} s: add dispatchers (or a platform's rate limit holds them)",
            secs(due.sends_oldest_secs)
        ));
    }
    Ok(FleetReport {
        processes,
        queues,
        queue_lag_ms,
        due,
        hints,
    })
}

/// The report as Prometheus gauges, for the dashboard: processes by role, queue depth and
/// consumers, due drafts and sends with the age of the oldest.
pub fn record_metrics(r: &FleetReport) {
    for role in ["gateway", "ai-worker", "dispatcher", "listener"] {
        let n = r
            .processes
            .iter()
            .filter(|p| p.roles.iter().any(|x| x == role))
            .count();
        metrics::gauge!("sb_fleet_processes", "role" => role).set(n as f64);
    }
    for q in &r.queues {
        metrics::gauge!("sb_queue_messages", "queue" => q.queue.clone()).set(f64::from(q.messages));
        metrics::gauge!("sb_queue_consumers", "queue" => q.queue.clone())
            .set(f64::from(q.consumers));
    }
    metrics::gauge!("sb_due_drafts").set(r.due.drafts as f64);
    metrics::gauge!("sb_due_drafts_oldest_seconds").set(r.due.drafts_oldest_secs);
    metrics::gauge!("sb_due_sends").set(r.due.sends as f64);
    metrics::gauge!("sb_due_sends_oldest_seconds").set(r.due.sends_oldest_secs);
}
