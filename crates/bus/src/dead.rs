//! The dead letters of a work queue, for the admin who finds out why jobs failed and, once
//! the cause is fixed, puts them back. A dead letter leaves its queue only after the broker
//! has confirmed its jobs back on the work queue.

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};

use crate::consumer::attempt_of;
use crate::publisher::{JSON, attempt_headers, confirmed_publish};
use crate::topology::{connect, declare};
use crate::{BusConfig, BusError, batch};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why it died: the handler's reason, or the broker's (a delivery limit).
    pub reason: String,
    /// How often the retry ladder had sent it round.
    pub attempt: u32,
    /// Its jobs: one, or those of a shared message the broker dead-lettered whole.
    pub jobs: Vec<Vec<u8>>,
}

impl DeadLetter {
    /// The reason, the attempts and each job's ids (trace, tenant, channel, kind) and size:
    /// enough to trace it in the logs, and never the message text.
    pub fn describe(&self) -> serde_json::Value {
        self.describe_for(None)
    }

    /// As `describe`, with only the jobs of `tenant_id` (by its id as text) when given: a
    /// dead message that several shops' jobs shared shows each shop its own.
    pub fn describe_for(&self, tenant_id: Option<&str>) -> serde_json::Value {
        let jobs: Vec<serde_json::Value> = self
            .jobs
            .iter()
            .filter(|job| {
                tenant_id.is_none_or(|t| {
                    serde_json::from_slice::<serde_json::Value>(job)
                        .is_ok_and(|env| env["tenant_id"] == t)
                })
            })
            .map(|job| match serde_json::from_slice::<serde_json::Value>(job) {
                Ok(env) => serde_json::json!({"trace_id": env["trace_id"], "tenant_id": env["tenant_id"],
                    "channel_id": env["channel_id"], "kind": env["kind"], "bytes": job.len()}),
                Err(_) => serde_json::json!({"unparsable": true, "bytes": job.len()}),
            })
            .collect();
        serde_json::json!({"reason": self.reason, "attempt": self.attempt, "jobs": jobs})
    }

    /// Whether a job of this letter is the tenant's (by its id as text).
    pub fn concerns(&self, tenant_id: &str) -> bool {
        self.jobs.iter().any(|job| {
            serde_json::from_slice::<serde_json::Value>(job)
                .is_ok_and(|env| env["tenant_id"] == tenant_id)
        })
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replayed {
    pub letters: usize,
    pub jobs: usize,
}

fn text(headers: Option<&FieldTable>, key: &str) -> Option<String> {
    match headers?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

fn read(d: &Delivery) -> DeadLetter {
    let headers = d.properties.headers().as_ref();
    let jobs = match batch::count(headers) {
        None => vec![d.data.clone()],
        // A shared message too damaged to split goes back as it is, and dies again with
        // the reason.
        Some(n) => batch::decode(&d.data, n).map_or_else(
            |_| vec![d.data.clone()],
            |jobs| jobs.into_iter().map(<[u8]>::to_vec).collect(),
        ),
    };
    DeadLetter {
        reason: text(headers, "x-sb-error")
            .or_else(|| text(headers, "x-first-death-reason"))
            .unwrap_or_else(|| "unknown".into()),
        attempt: attempt_of(headers),
        jobs,
    }
}

async fn open(cfg: &BusConfig, name: &str) -> Result<(Connection, Channel), BusError> {
    let conn = connect(cfg).await?;
    let ch = conn.create_channel().await.map_err(BusError::Unavailable)?;
    declare(&ch, cfg, name).await?;
    Ok((conn, ch))
}

async fn get(ch: &Channel, cfg: &BusConfig, name: &str) -> Result<Option<Delivery>, BusError> {
    let got = ch
        .basic_get(
            cfg.dead_queue(name).into(),
            BasicGetOptions { no_ack: false },
        )
        .await
        .map_err(BusError::Unavailable)?;
    Ok(got.map(|m| m.delivery))
}

/// Up to `limit` dead letters of the queue `name`, oldest first, left where they are.
pub async fn dead_letters(
    cfg: &BusConfig,
    name: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>, BusError> {
    let (conn, ch) = open(cfg, name).await?;
    let mut out = Vec::new();
    // Each is held unacknowledged, so it is read once; closing the channel puts all back.
    while out.len() < limit {
        let Some(d) = get(&ch, cfg, name).await? else {
            break;
        };
        out.push(read(&d));
    }
    let _ = ch.close(200, "read".into()).await;
    let _ = conn.close(200, "bye".into()).await;
    Ok(out)
}

/// Puts up to `limit` of the dead letters waiting now back on the queue `name`, each job
/// as a message of its own with its attempts reset. A replay that stops half way can
/// leave a job both replayed and dead; replaying that again is safe, since workers store
/// a job once.
pub async fn replay_dead(cfg: &BusConfig, name: &str, limit: usize) -> Result<Replayed, BusError> {
    let (conn, ch) = open(cfg, name).await?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(BusError::Unavailable)?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    // Only what waits now: a job that dies again during the replay is not replayed twice.
    let waiting = ch
        .queue_declare(cfg.dead_queue(name).into(), passive, FieldTable::default())
        .await
        .map_err(BusError::Unavailable)?
        .message_count();
    let mut done = Replayed::default();
    for _ in 0..limit.min(waiting as usize) {
        let Some(d) = get(&ch, cfg, name).await? else {
            break;
        };
        let letter = read(&d);
        for job in &letter.jobs {
            confirmed_publish(
                &ch,
                &cfg.exchange(),
                name,
                job,
                attempt_headers(0, None),
                JSON,
            )
            .await?;
        }
        d.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(BusError::Unavailable)?;
        done.letters += 1;
        done.jobs += letter.jobs.len();
    }
    let _ = ch.close(200, "replayed".into()).await;
    let _ = conn.close(200, "bye".into()).await;
    Ok(done)
}
