use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::{OwnedSemaphorePermit, RwLock, Semaphore, oneshot};

use crate::batch;
use crate::topology::{connect, declare};
use crate::{BusConfig, BusError};

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
const JSON: &str = "application/json";

/// How many messages may wait for their confirm at once. Publishes that come while all of
/// them wait are queued in their lane and go out together as the next message, so a busy
/// gateway sends fewer, fuller messages and a quiet one sends each job at once.
const IN_FLIGHT: usize = 8;

/// A job waiting for a place in a message, and the caller waiting for its confirm.
struct Waiting {
    body: Vec<u8>,
    done: oneshot::Sender<Result<(), BusError>>,
}

/// Persistent, confirmed publishes over one channel. Many publishes may be in flight at
/// once; each caller awaits only the confirm of the message that carries its job. A lost
/// connection is re-opened on the next publish, so a broker that comes back is used again
/// without a restart.
pub struct Publisher {
    cfg: BusConfig,
    link: RwLock<Option<(Connection, Channel)>>,
    /// Jobs waiting for a message, per queue, oldest first.
    lanes: Mutex<HashMap<String, VecDeque<Waiting>>>,
    in_flight: Arc<Semaphore>,
}

impl Publisher {
    pub fn new(cfg: BusConfig) -> Self {
        Self {
            cfg,
            link: RwLock::new(None),
            lanes: Mutex::default(),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }

    pub fn config(&self) -> &BusConfig {
        &self.cfg
    }

    async fn channel(&self) -> Result<Channel, BusError> {
        if let Some((_, ch)) = self.link.read().await.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let mut link = self.link.write().await;
        if let Some((_, ch)) = link.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let conn = tokio::time::timeout(CONFIRM_TIMEOUT, connect(&self.cfg))
            .await
            .map_err(|_| BusError::Timeout(CONFIRM_TIMEOUT))??;
        let ch = conn.create_channel().await.map_err(BusError::Unavailable)?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(BusError::Unavailable)?;
        for q in [crate::INBOUND] {
            declare(&ch, &self.cfg, q).await?;
        }
        *link = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// True when a connection is open or can be opened now.
    pub async fn ready(&self) -> bool {
        self.channel().await.is_ok()
    }

    /// Publishes a job to a work queue and returns once the broker has confirmed that the
    /// message carrying it is stored durably. Jobs published at the same moment may share
    /// that message; the consumer hands each to its handler alone.
    pub async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), BusError> {
        let (done, mut confirmed) = oneshot::channel();
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(queue.to_owned())
            .or_default()
            .push_back(Waiting {
                body: body.to_vec(),
                done,
            });
        let abandoned = |_| Err(BusError::Refused("the publish was abandoned".into()));
        loop {
            let permit = tokio::select! {
                biased;
                result = &mut confirmed => return result.unwrap_or_else(abandoned),
                permit = self.in_flight.clone().acquire_owned() => permit,
            };
            let Ok(permit) = permit else {
                return Err(BusError::Refused("the publisher is closed".into()));
            };
            let jobs = self.take(queue);
            if jobs.is_empty() {
                // Another caller took this job into its message.
                drop(permit);
                return confirmed.await.unwrap_or_else(abandoned);
            }
            self.send(queue, jobs, permit).await;
        }
    }

    /// The oldest waiting jobs of a lane, as many as one message may carry.
    fn take(&self, queue: &str) -> Vec<Waiting> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(lane) = lanes.get_mut(queue) else {
            return Vec::new();
        };
        let (mut jobs, mut bytes) = (Vec::new(), 0);
        while let Some(next) = lane.front() {
            let full = jobs.len() == batch::MAX_JOBS || bytes + next.body.len() > batch::MAX_BYTES;
            if !jobs.is_empty() && full {
                break;
            }
            if let Some(job) = lane.pop_front()
                && !job.done.is_closed()
            {
                // A job whose caller went away is dropped: its platform retries anyway.
                bytes += job.body.len();
                jobs.push(job);
            }
        }
        jobs
    }

    /// Publishes `jobs` as one message and tells each waiting caller the outcome.
    async fn send(&self, queue: &str, mut jobs: Vec<Waiting>, permit: OwnedSemaphorePermit) {
        let ch = match self.channel().await {
            Ok(ch) => ch,
            Err(e) => {
                for job in jobs {
                    let _ = job.done.send(Err(e.clone()));
                }
                return;
            }
        };
        let (body, headers, content_type) = match jobs.as_mut_slice() {
            [one] => (std::mem::take(&mut one.body), FieldTable::default(), JSON),
            many => (
                batch::encode(many.iter().map(|j| j.body.as_slice())),
                batch::headers(many.len()),
                batch::CONTENT_TYPE,
            ),
        };
        let (exchange, key) = (self.cfg.exchange(), queue.to_owned());
        // The confirm is awaited in a task of its own, so that every caller whose job is in
        // this message hears back even if the caller that sent it goes away.
        let sent = tokio::spawn(async move {
            let result =
                confirmed_publish(&ch, &exchange, &key, &body, headers, content_type).await;
            drop(permit);
            let failed = result.is_err();
            for job in jobs {
                let _ = job.done.send(result.clone());
            }
            failed
        });
        if !matches!(sent.await, Ok(false)) {
            // Next publish starts from a fresh channel.
            *self.link.write().await = None;
        }
    }

    /// One message, published on its own (moves along the retry ladder).
    pub(crate) async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
    ) -> Result<(), BusError> {
        let ch = self.channel().await?;
        let result = confirmed_publish(&ch, exchange, routing_key, body, headers, JSON).await;
        if result.is_err() {
            // Next publish starts from a fresh channel.
            *self.link.write().await = None;
        }
        result
    }
}

async fn confirmed_publish(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    headers: FieldTable,
    content_type: &str,
) -> Result<(), BusError> {
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(content_type.into())
        .with_headers(headers);
    let publish = async {
        let confirm = ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .map_err(BusError::Unavailable)?
            .await
            .map_err(BusError::Unavailable)?;
        if confirm.is_nack() {
            return Err(BusError::Refused("nack".into()));
        }
        if let Some(returned) = confirm.take_message() {
            return Err(BusError::Refused(format!(
                "unroutable: {}",
                returned.reply_text
            )));
        }
        Ok(())
    };
    tokio::time::timeout(CONFIRM_TIMEOUT, publish)
        .await
        .map_err(|_| BusError::Timeout(CONFIRM_TIMEOUT))?
}

pub(crate) fn attempt_headers(attempt: u32, error: Option<&str>) -> FieldTable {
    let mut h = FieldTable::default();
    h.insert("x-sb-attempt".into(), AMQPValue::LongUInt(attempt));
    if let Some(e) = error {
        h.insert("x-sb-error".into(), AMQPValue::LongString(e.into()));
    }
    h
}
