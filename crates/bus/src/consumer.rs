use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::batch;
use crate::publisher::{PUBLISHED_MS, attempt_headers, now_ms};
use crate::topology::{connect, declare};
use crate::{BusConfig, Publisher};

/// What a handler made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done, and its effects committed: acknowledge.
    Ack,
    /// Failed for now (a database that is down): try again later on the retry ladder.
    Retry(String),
    /// Can never succeed (a payload that does not parse): park it in the dead letters.
    Dead(String),
}

/// A message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub body: Vec<u8>,
    /// How many times the message went round the retry ladder already.
    pub attempt: u32,
    pub redelivered: bool,
}

pub(crate) fn attempt_of(headers: Option<&FieldTable>) -> u32 {
    match headers.and_then(|h| h.inner().get("x-sb-attempt")) {
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// Seconds between the publish and now, if the message says when it was published.
fn lag_of(headers: Option<&FieldTable>, now_ms: i64) -> Option<f64> {
    match headers?.inner().get(PUBLISHED_MS)? {
        AMQPValue::LongLongInt(at) => Some((now_ms - at).max(0) as f64 / 1000.0),
        _ => None,
    }
}

/// The lag of the newest first delivery this process took (publish to delivery), and when
/// it was taken, for the process's heartbeat: how long work waits on the queue before a
/// worker sees it.
static LAST_LAG_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LAST_LAG_AT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The lag of the newest job taken in the last minute; nothing taken (an idle queue) is no
/// lag.
pub fn last_queue_lag() -> std::time::Duration {
    use std::sync::atomic::Ordering::Relaxed;
    let now = u64::try_from(now_ms()).unwrap_or(0);
    if now.saturating_sub(LAST_LAG_AT_MS.load(Relaxed)) > 60_000 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_millis(LAST_LAG_MS.load(Relaxed))
}

/// Consumes `queue` until `shutdown` fires, running up to `prefetch` handlers at once.
/// A message is acknowledged only after its handler returns, so whatever the handler
/// committed is on disk first; a crash before that redelivers it. On shutdown the
/// consumer stops taking messages, gives in-flight handlers the grace period, and closes
/// the channel, which returns anything still unacknowledged to the queue.
pub async fn consume<H, F>(
    cfg: BusConfig,
    queue: &'static str,
    handler: H,
    shutdown: CancellationToken,
) where
    H: Fn(Delivery) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    let handler = Arc::new(handler);
    let publisher = Arc::new(Publisher::new(cfg.clone()));
    let mut backoff = Duration::from_millis(250);
    while !shutdown.is_cancelled() {
        match run_once(&cfg, queue, &handler, &publisher, &shutdown).await {
            Ok(()) => backoff = Duration::from_millis(250),
            Err(e) => {
                tracing::warn!(error = %switchboard_core::error_chain(&e), queue, "consumer lost the broker; reconnecting");
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn run_once<H, F>(
    cfg: &BusConfig,
    queue: &'static str,
    handler: &Arc<H>,
    publisher: &Arc<Publisher>,
    shutdown: &CancellationToken,
) -> Result<(), lapin::Error>
where
    H: Fn(Delivery) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    let conn = connect(cfg).await.map_err(|e| match e {
        crate::BusError::Unavailable(e) => e,
        other => lapin::Error::from(std::io::Error::other(other.to_string())),
    })?;
    let ch = conn.create_channel().await?;
    declare(&ch, cfg, queue)
        .await
        .map_err(|e| lapin::Error::from(std::io::Error::other(e.to_string())))?;
    ch.basic_qos(cfg.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("{}-{}", queue, std::process::id());
    let mut consumer = ch
        .basic_consume(
            cfg.queue(queue).into(),
            tag.clone().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %cfg.queue(queue), "consuming");
    let mut tasks = JoinSet::new();
    let running = Arc::new(Semaphore::new(usize::from(cfg.prefetch)));
    let result = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            next = consumer.next() => match next {
                Some(Ok(d)) => {
                    let lapin::message::Delivery { data, acker, redelivered, properties, .. } = d;
                    let attempt = attempt_of(properties.headers().as_ref());
                    // A retry's wait on its ladder is not lag: only first deliveries count.
                    if attempt == 0 && let Some(lag) = lag_of(properties.headers().as_ref(), now_ms()) {
                        metrics::histogram!("sb_queue_lag_seconds", "queue" => queue).record(lag);
                        LAST_LAG_MS.store((lag * 1000.0) as u64, std::sync::atomic::Ordering::Relaxed);
                        LAST_LAG_AT_MS.store(u64::try_from(now_ms()).unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
                    }
                    let jobs = batch::count(properties.headers().as_ref())
                        .map(|n| batch::decode(&data, n).map(|jobs| jobs.into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>()));
                    let (handler, publisher, cfg, running) =
                        (handler.clone(), publisher.clone(), cfg.clone(), running.clone());
                    tasks.spawn(async move {
                        let settled = match jobs {
                            None => {
                                let job = Delivery { body: data, attempt, redelivered };
                                run_job(&cfg, queue, &handler, &publisher, &running, job).await
                            }
                            Some(Ok(jobs)) => {
                                // Each job of a batch is handled, retried or dead-lettered on
                                // its own; the batch is acknowledged once all are settled.
                                let runs = jobs.into_iter().map(|body| {
                                    let job = Delivery { body, attempt, redelivered };
                                    run_job(&cfg, queue, &handler, &publisher, &running, job)
                                });
                                join_all(runs).await.into_iter().all(|settled| settled)
                            }
                            Some(Err(reason)) => {
                                settle(&cfg, queue, &publisher, attempt, &data, Outcome::Dead(reason)).await
                            }
                        };
                        let done = if settled {
                            acker.ack(BasicAckOptions::default()).await
                        } else {
                            acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await
                        };
                        if let Err(e) = done {
                            tracing::warn!(error = %switchboard_core::error_chain(&e), queue, "could not settle a delivery; the broker will redeliver it");
                        }
                    });
                }
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            },
        }
    };
    let _ = ch
        .basic_cancel(tag.into(), BasicCancelOptions::default())
        .await;
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            queue,
            in_flight = tasks.len(),
            "grace period over; unfinished messages go back to the queue"
        );
        tasks.abort_all();
    }
    let _ = ch.close(200, "shutdown".into()).await;
    let _ = conn.close(200, "shutdown".into()).await;
    result
}

/// Runs the handler over one job and moves the job on if it failed. Returns whether the
/// job is settled. At most `prefetch` jobs run at once, batched or not.
async fn run_job<H, F>(
    cfg: &BusConfig,
    queue: &'static str,
    handler: &Arc<H>,
    publisher: &Publisher,
    running: &Semaphore,
    job: Delivery,
) -> bool
where
    H: Fn(Delivery) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    let Ok(_permit) = running.acquire().await else {
        return false;
    };
    let (attempt, body) = (job.attempt, job.body.clone());
    // A panicking handler must not strand its delivery unacknowledged.
    let outcome = std::panic::AssertUnwindSafe(async { handler(job).await })
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Outcome::Retry("the handler panicked".into()));
    metrics::counter!("sb_bus_handled_total", "queue" => queue, "outcome" => match &outcome {
        Outcome::Ack => "ack", Outcome::Retry(_) => "retry", Outcome::Dead(_) => "dead",
    })
    .increment(1);
    settle(cfg, queue, publisher, attempt, &body, outcome).await
}

/// Moves a message that needs a retry or a dead letter to its next queue. Returns whether
/// the original may be acknowledged.
async fn settle(
    cfg: &BusConfig,
    queue: &str,
    publisher: &Publisher,
    attempt: u32,
    body: &[u8],
    outcome: Outcome,
) -> bool {
    let (target_exchange, target_key, headers) = match outcome {
        Outcome::Ack => return true,
        Outcome::Retry(reason)
            if attempt + 1 < cfg.max_attempts && !cfg.retry_delays_ms.is_empty() =>
        {
            let step = (attempt as usize).min(cfg.retry_delays_ms.len() - 1);
            tracing::warn!(queue, attempt, reason = %reason, "handler failed; retrying later");
            (
                String::new(),
                cfg.retry_queue(queue, step),
                attempt_headers(attempt + 1, Some(&reason)),
            )
        }
        Outcome::Retry(reason) | Outcome::Dead(reason) => {
            tracing::error!(queue, attempt, reason = %reason, "message goes to the dead letters");
            (
                cfg.dead_exchange(),
                queue.to_owned(),
                attempt_headers(attempt, Some(&reason)),
            )
        }
    };
    match publisher
        .publish_raw(&target_exchange, &target_key, body, headers)
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %switchboard_core::error_chain(&e), queue, "could not move the message; leaving it on its queue");
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_time_since_the_publish() {
        let mut h = FieldTable::default();
        assert_eq!(lag_of(Some(&h), 5_000), None);
        h.insert(PUBLISHED_MS.into(), AMQPValue::LongLongInt(1_500));
        assert_eq!(lag_of(Some(&h), 5_000), Some(3.5));
        // A publisher's clock ahead of ours is no lag, not a negative one.
        assert_eq!(lag_of(Some(&h), 1_000), Some(0.0));
        assert_eq!(lag_of(None, 5_000), None);
    }
}
