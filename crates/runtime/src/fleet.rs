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
    /// The longest publish-to-delivery wait an AI worker saw in its newest job (in the
    /// last minute).
    pub queue_lag_ms: u64,
    pub due: Option<DueWork>,
    pub hints: Vec<String>,
    /// What could not be read (`redis`, `database`, `broker`): its part of the report is
    /// empty, not zero. An outage is when the rest is needed most.
    pub unavailable: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    pub queue: String,
    pub messages: u32,
    pub consumers: u32,
}

/// How long each part of the report may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

async fn bounded<T, E: std::fmt::Display>(
    what: &'static str,
    fut: impl std::future::Future<Output = Result<T, E>>,
    unavailable: &mut Vec<&'static str>,
) -> Option<T> {
    match tokio::time::timeout(READ_TIMEOUT, fut).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, part = what, "fleet report: part unavailable");
            unavailable.push(what);
            None
        }
        Err(_) => {
            unavailable.push(what);
            None
        }
    }
}

pub async fn report(s: &Services) -> FleetReport {
    let mut unavailable = Vec::new();
    let registry = FleetRegistry::new(s.redis.clone(), &s.config.amqp.namespace);
    let processes = bounded("redis", registry.processes(), &mut unavailable)
        .await
        .unwrap_or_default();
    let due = bounded("database", s.store.due_work(), &mut unavailable).await;
    let queues: Vec<QueueReport> = bounded(
        "broker",
        switchboard_bus::queue_stats(&s.config.amqp, switchboard_bus::INBOUND),
        &mut unavailable,
    )
    .await
    .unwrap_or_default()
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
    if !unavailable.contains(&"redis") {
        for (role, command) in [
            ("gateway", "switchboard gateway"),
            ("ai-worker", "switchboard ai-worker"),
            ("dispatcher", "switchboard dispatcher"),
        ] {
            if !runs(role) {
                hints.push(format!("no {role} is running: start `{command}`"));
            }
        }
    }
    let secs = |d: f64| d.round() as u64;
    if let Some(due) = &due {
        if due.drafts > 0 && due.drafts_oldest_secs > WAIT_HINT.as_secs_f64() {
            hints.push(format!(
                "drafts wait {} s: add AI workers",
                secs(due.drafts_oldest_secs)
            ));
        }
        if due.sends > 0 && due.sends_oldest_secs > WAIT_HINT.as_secs_f64() {
            hints.push(format!(
                "sends wait {} s: add dispatchers (or a platform's rate limit holds them)",
                secs(due.sends_oldest_secs)
            ));
        }
    }
    if Duration::from_millis(queue_lag_ms) > WAIT_HINT {
        hints.push(format!(
            "messages wait {} s on the queue: add AI workers",
            secs(queue_lag_ms as f64 / 1000.0)
        ));
    }
    for part in &unavailable {
        hints.push(format!(
            "{part} is unavailable: its part of this report is missing"
        ));
    }
    FleetReport {
        processes,
        queues,
        queue_lag_ms,
        due,
        hints,
        unavailable,
    }
}

/// The report as Prometheus gauges, for the dashboard: processes by role, queue depth and
/// consumers, due drafts and sends with the age of the oldest.
pub fn record_metrics(r: &FleetReport) {
    for role in ["gateway", "ai-worker", "dispatcher", "listener"] {
        if r.unavailable.contains(&"redis") {
            break;
        }
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
    if let Some(due) = &r.due {
        metrics::gauge!("sb_due_drafts").set(due.drafts as f64);
        metrics::gauge!("sb_due_drafts_oldest_seconds").set(due.drafts_oldest_secs);
        metrics::gauge!("sb_due_sends").set(due.sends as f64);
        metrics::gauge!("sb_due_sends_oldest_seconds").set(due.sends_oldest_secs);
    }
    // A part that could not be read leaves its gauges as they were: this says so.
    for part in ["redis", "database", "broker"] {
        metrics::gauge!("sb_fleet_report_unavailable", "part" => part)
            .set(f64::from(u8::from(r.unavailable.contains(&part))));
    }
}
