//! The fleet as its processes report themselves, and the work that waits for it. Each
//! process writes a heartbeat to Redis every `BEAT` that lives `GONE_AFTER`: a process that
//! stops beating drops out on its own, whatever killed it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Result, Store};

pub const BEAT: Duration = Duration::from_secs(2);
pub const GONE_AFTER: Duration = Duration::from_secs(6);

/// What a process says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: Uuid,
    /// `gateway`, `ai-worker`, `dispatcher`, `listener`; `switchboard up` runs them all.
    pub roles: Vec<String>,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// Units of work under way now: inbound jobs and drafts, sends, webhooks, events.
    pub in_flight: u64,
    pub done_last_minute: u64,
    /// A listener's channels (the leases it holds).
    #[serde(default)]
    pub channels: Vec<Uuid>,
    /// How long the newest job this process took had waited on the queue.
    #[serde(default)]
    pub queue_lag_ms: u64,
    pub at: DateTime<Utc>,
}

/// The processes of one deployment: keyed by its queue namespace, so deployments (or
/// tests) sharing a Redis do not see each other's processes.
#[derive(Clone)]
pub struct FleetRegistry {
    redis: ConnectionManager,
    members: String,
}

impl FleetRegistry {
    pub fn new(redis: ConnectionManager, namespace: &str) -> Self {
        Self {
            redis,
            members: format!("sb:fleet:{namespace}"),
        }
    }

    fn key(&self, id: impl std::fmt::Display) -> String {
        format!("{}:{id}", self.members)
    }

    pub async fn beat(&self, hb: &Heartbeat) -> Result<()> {
        let body = serde_json::to_string(hb)
            .map_err(|e| crate::StoreError::Corrupt(format!("heartbeat: {e}")))?;
        let ttl = u64::try_from(GONE_AFTER.as_millis()).unwrap_or(6000);
        let mut r = self.redis.clone();
        redis::pipe()
            .pset_ex(self.key(hb.id), body, ttl)
            .ignore()
            .sadd(&self.members, hb.id.to_string())
            .ignore()
            .query_async::<()>(&mut r)
            .await?;
        Ok(())
    }

    /// A process that stops on purpose leaves at once.
    pub async fn leave(&self, id: Uuid) -> Result<()> {
        let mut r = self.redis.clone();
        redis::pipe()
            .del(self.key(id))
            .ignore()
            .srem(&self.members, id.to_string())
            .ignore()
            .query_async::<()>(&mut r)
            .await?;
        Ok(())
    }

    /// Every process whose heartbeat has not run out, oldest first; those that ran out
    /// are forgotten.
    pub async fn processes(&self) -> Result<Vec<Heartbeat>> {
        let mut r = self.redis.clone();
        let ids: Vec<String> = r.smembers(&self.members).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let beats: Vec<Option<String>> = r.mget(&keys).await?;
        let mut alive = Vec::new();
        let mut gone = Vec::new();
        for (id, beat) in ids.into_iter().zip(beats) {
            match beat.and_then(|b| serde_json::from_str::<Heartbeat>(&b).ok()) {
                Some(hb) => alive.push(hb),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: i64 = r.srem(&self.members, gone).await?;
        }
        alive.sort_by_key(|h| (h.started_at, h.id));
        Ok(alive)
    }
}

/// Work that is due and not yet taken up: conversations whose quiet window is over and
/// sends whose time has come.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DueWork {
    pub drafts: i64,
    /// How long the longest-waiting due draft has been due, in seconds.
    pub drafts_oldest_secs: f64,
    pub sends: i64,
    pub sends_oldest_secs: f64,
}

impl Store {
    pub async fn due_work(&self) -> Result<DueWork> {
        let (drafts, drafts_oldest_secs): (i64, f64) = sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(due_at)), 0)::float8
               FROM pending_drafts WHERE due_at <= now()
                AND (leased_until IS NULL OR leased_until <= now())",
        )
        .fetch_one(&self.pool)
        .await?;
        let (sends, sends_oldest_secs): (i64, f64) = sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)), 0)::float8
               FROM outbox WHERE status = 'pending' AND next_attempt_at <= now()
                AND (leased_until IS NULL OR leased_until <= now())",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(DueWork {
            drafts,
            drafts_oldest_secs,
            sends,
            sends_oldest_secs,
        })
    }
}
