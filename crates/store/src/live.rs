//! Redis: the dedup fast path in front of the broker, and the live event fan-out that
//! carries replies and typing events to whichever gateway holds the customer's stream.

use std::time::Duration;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use switchboard_core::{LiveFeed, SendError};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::Result;

const LIVE_PREFIX: &str = "sb:live:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupClaim {
    /// First sighting: the caller publishes, then confirms or releases.
    Claimed,
    /// Already durably queued: answer 2xx without a new job.
    Queued,
    /// Another request is publishing it right now: the platform should retry.
    InFlight,
}

/// Writes the marks that came meanwhile as one pipeline: one Redis round trip for many
/// webhooks under load.
async fn mark_queued(mut redis: ConnectionManager, mut marks: mpsc::Receiver<String>) {
    let mut keys = Vec::new();
    while marks.recv_many(&mut keys, 256).await > 0 {
        let mut pipe = redis::pipe();
        for key in keys.drain(..) {
            pipe.set_ex(key, "queued", QUEUED_TTL_SECS).ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut redis).await {
            tracing::debug!(error = %switchboard_core::error_chain(&e), "dedup marks skipped");
        }
    }
}

/// The fast path of ingress dedup. The database's `inbound_receipts` stays the truth;
/// this only saves a broker round trip for the retries platforms send all day.
#[derive(Clone)]
pub struct Dedup {
    redis: ConnectionManager,
    queued: mpsc::Sender<String>,
}

/// Marks waiting to be written. A mark only saves a broker round trip (the receipts table
/// is the truth), so one that finds the buffer full is dropped: its key runs out after
/// `PENDING_TTL_SECS` and a retry then goes to the database.
const MARKS_BUFFER: usize = 10_000;

const PENDING_TTL_SECS: u64 = 30;
const QUEUED_TTL_SECS: u64 = 7 * 24 * 3600;

impl Dedup {
    /// Starts the task that marks events queued, so call it inside the runtime.
    pub fn new(redis: ConnectionManager) -> Self {
        let (queued, marks) = mpsc::channel(MARKS_BUFFER);
        tokio::spawn(mark_queued(redis.clone(), marks));
        Self { redis, queued }
    }

    fn key(channel_id: Uuid, event_id: &str) -> String {
        format!("sb:dedup:{channel_id}:{event_id}")
    }

    pub async fn claim(&self, channel_id: Uuid, event_id: &str) -> Result<DedupClaim> {
        let key = Self::key(channel_id, event_id);
        let mut r = self.redis.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg("pending")
            .arg("NX")
            .arg("GET")
            .arg("EX")
            .arg(PENDING_TTL_SECS)
            .query_async(&mut r)
            .await?;
        Ok(match set.as_deref() {
            None => DedupClaim::Claimed,
            Some("queued") => DedupClaim::Queued,
            Some(_) => DedupClaim::InFlight,
        })
    }

    /// Marks a claimed event as durably queued, in the background. A mark that is lost
    /// only lets the claim expire, and the worker's receipt drops the next copy.
    pub fn confirm(&self, channel_id: Uuid, event_id: &str) {
        let _ = self.queued.try_send(Self::key(channel_id, event_id));
    }

    pub async fn release(&self, channel_id: Uuid, event_id: &str) -> Result<()> {
        let mut r = self.redis.clone();
        let _: () = r.del(Self::key(channel_id, event_id)).await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        let mut r = self.redis.clone();
        let _: String = redis::cmd("PING").query_async(&mut r).await?;
        Ok(())
    }
}

#[derive(Clone)]
pub struct RedisLiveFeed {
    redis: ConnectionManager,
}

impl RedisLiveFeed {
    pub fn new(redis: ConnectionManager) -> Self {
        Self { redis }
    }
}

#[async_trait]
impl LiveFeed for RedisLiveFeed {
    async fn publish(&self, topic: &str, event: &serde_json::Value) -> Result<(), SendError> {
        let mut r = self.redis.clone();
        r.publish::<_, _, ()>(format!("{LIVE_PREFIX}{topic}"), event.to_string())
            .await
            .map_err(|e| SendError::Retryable {
                reason: format!("live feed unavailable: {e}"),
                retry_after: Some(Duration::from_secs(1)),
            })
    }
}

/// Every live event of every topic, as (topic, JSON text). Ends when the connection drops;
/// the caller reconnects.
pub async fn subscribe_live(redis_url: &str) -> Result<impl Stream<Item = (String, String)>> {
    let client = redis::Client::open(redis_url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(format!("{LIVE_PREFIX}*")).await?;
    Ok(pubsub.into_on_message().filter_map(|msg| async move {
        let topic = msg.get_channel_name().strip_prefix(LIVE_PREFIX)?.to_owned();
        let payload: String = msg.get_payload().ok()?;
        Some((topic, payload))
    }))
}
