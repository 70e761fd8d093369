use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::{Notify, RwLock, oneshot};

use crate::batch;
use crate::topology::{connect, declare};
use crate::{BusConfig, BusError};

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const JSON: &str = "application/json";

/// Full messages may overlap up to this many confirms; see `Lane`.
const MAX_IN_FLIGHT: usize = 8;
/// Jobs that may wait for a place in a message, per queue. More are refused at once (the
/// gateway answers 503 and the platform retries) rather than held in memory without end
/// while the broker is slow.
const MAX_WAITING: usize = 10_000;
/// A publish not confirmed by then fails, so that no caller waits on a stalled broker
/// without end; it is under the gateway's request timeout (30 s by default), so a webhook
/// gets this clear 503 first. Its job may still go out later; the consumers' dedup drops
/// the copy the platform's retry brings.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(25);

/// A job waiting for a place in a message, and the caller waiting for its confirm.
struct Waiting {
    body: Vec<u8>,
    done: oneshot::Sender<Result<(), BusError>>,
}

/// The jobs of one queue. A message goes out when none of the lane's messages awaits its
/// confirm, or when the jobs waiting fill a message (group commit). So a quiet publisher
/// sends each job at once, a busy one sends one message per confirm round trip with
/// everything that came meanwhile, and a broker far away still gets full messages
/// back to back.
#[derive(Default)]
struct Lane {
    waiting: VecDeque<Waiting>,
    waiting_bytes: usize,
    in_flight: usize,
    /// Wakes one waiting caller when a message of this lane is confirmed.
    confirmed: Arc<Notify>,
}

type Lanes = Mutex<HashMap<String, Lane>>;

fn lock(lanes: &Lanes) -> MutexGuard<'_, HashMap<String, Lane>> {
    lanes.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Inner {
    cfg: BusConfig,
    link: RwLock<Option<(Connection, Channel)>>,
    lanes: Lanes,
}

/// Persistent, confirmed publishes over one channel. Each caller awaits the confirm of the
/// message that carries its job. A lost connection is re-opened on the next publish, so a
/// broker that comes back is used again without a restart.
pub struct Publisher {
    inner: Arc<Inner>,
}

impl Publisher {
    pub fn new(cfg: BusConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                link: RwLock::new(None),
                lanes: Mutex::default(),
            }),
        }
    }

    pub fn config(&self) -> &BusConfig {
        &self.inner.cfg
    }

    /// True when a connection is open or can be opened now.
    pub async fn ready(&self) -> bool {
        self.inner.channel().await.is_ok()
    }

    /// Publishes a job to a work queue and returns once the broker has confirmed that the
    /// message carrying it is stored durably. Jobs published at the same moment may share
    /// that message; the consumer hands each to its handler alone.
    pub async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), BusError> {
        tokio::time::timeout(PUBLISH_DEADLINE, self.publish_waiting(queue, body))
            .await
            .unwrap_or(Err(BusError::Timeout(PUBLISH_DEADLINE)))
    }

    async fn publish_waiting(&self, queue: &str, body: &[u8]) -> Result<(), BusError> {
        let (done, mut confirmed) = oneshot::channel();
        let wake = {
            let mut lanes = lock(&self.inner.lanes);
            let lane = lanes.entry(queue.to_owned()).or_default();
            if lane.waiting.len() >= MAX_WAITING {
                // Jobs whose callers gave up (their deadline passed) hold no place.
                lane.waiting.retain(|w| !w.done.is_closed());
                lane.waiting_bytes = lane.waiting.iter().map(|w| w.body.len()).sum();
            }
            if lane.waiting.len() >= MAX_WAITING {
                return Err(BusError::Busy(lane.waiting.len()));
            }
            lane.waiting_bytes += body.len();
            lane.waiting.push_back(Waiting {
                body: body.to_vec(),
                done,
            });
            lane.confirmed.clone()
        };
        let abandoned = |_| Err(BusError::Refused("the publish was abandoned".into()));
        loop {
            if let Ok(result) = confirmed.try_recv() {
                return result;
            }
            let woken = wake.notified();
            tokio::pin!(woken);
            // Registered before looking, so that a confirm in between is not missed.
            woken.as_mut().enable();
            match self.inner.take(queue) {
                Some((jobs, slot)) => {
                    // Sent from a task of its own, so that every caller whose job is in the
                    // message hears back even if this caller goes away.
                    let _ = tokio::spawn(self.inner.clone().send(slot, jobs)).await;
                }
                None => tokio::select! {
                    biased;
                    result = &mut confirmed => return result.unwrap_or_else(abandoned),
                    () = &mut woken => {}
                },
            }
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
        let ch = self.inner.channel().await?;
        let result = confirmed_publish(&ch, exchange, routing_key, body, headers, JSON).await;
        if result.is_err() {
            self.inner.reset().await;
        }
        result
    }
}

/// A message of a lane awaiting its confirm; dropping it frees the place and wakes a caller
/// to send what waits.
struct Slot {
    inner: Arc<Inner>,
    queue: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(lane) = lock(&self.inner.lanes).get_mut(&self.queue) {
            lane.in_flight -= 1;
            lane.confirmed.notify_one();
        }
    }
}

impl Inner {
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

    /// The next publish starts from a fresh channel.
    async fn reset(&self) {
        *self.link.write().await = None;
    }

    /// The oldest waiting jobs of a lane, as many as one message carries, if a message may
    /// go out now.
    fn take(self: &Arc<Self>, queue: &str) -> Option<(Vec<Waiting>, Slot)> {
        let mut lanes = lock(&self.lanes);
        let lane = lanes.get_mut(queue)?;
        let full = lane.waiting.len() >= batch::MAX_JOBS || lane.waiting_bytes >= batch::MAX_BYTES;
        if lane.waiting.is_empty()
            || !(lane.in_flight == 0 || full && lane.in_flight < MAX_IN_FLIGHT)
        {
            return None;
        }
        let (mut jobs, mut bytes) = (Vec::new(), 0);
        while let Some(next) = lane.waiting.front() {
            let room = jobs.len() < batch::MAX_JOBS && bytes + next.body.len() <= batch::MAX_BYTES;
            if !jobs.is_empty() && !room {
                break;
            }
            let Some(job) = lane.waiting.pop_front() else {
                break;
            };
            lane.waiting_bytes -= job.body.len();
            // A job whose caller went away is dropped: its platform retries anyway.
            if !job.done.is_closed() {
                bytes += job.body.len();
                jobs.push(job);
            }
        }
        if jobs.is_empty() {
            return None;
        }
        lane.in_flight += 1;
        let slot = Slot {
            inner: self.clone(),
            queue: queue.to_owned(),
        };
        Some((jobs, slot))
    }

    /// Publishes `jobs` as one message and tells each waiting caller the outcome.
    async fn send(self: Arc<Self>, slot: Slot, mut jobs: Vec<Waiting>) {
        let (body, headers, content_type) = match jobs.as_mut_slice() {
            [one] => (std::mem::take(&mut one.body), FieldTable::default(), JSON),
            many => (
                batch::encode(many.iter().map(|j| j.body.as_slice())),
                batch::headers(many.len()),
                batch::CONTENT_TYPE,
            ),
        };
        let result = match self.channel().await {
            Ok(ch) => {
                let ex = self.cfg.exchange();
                confirmed_publish(&ch, &ex, &slot.queue, &body, headers, content_type).await
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.reset().await;
        }
        drop(slot);
        for job in jobs {
            let _ = job.done.send(result.clone());
        }
    }
}

pub(crate) async fn confirmed_publish(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    headers: FieldTable,
    content_type: &str,
) -> Result<(), BusError> {
    let mut headers = headers;
    headers.insert(PUBLISHED_MS.into(), AMQPValue::LongLongInt(now_ms()));
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

/// When a message was put on its queue, in Unix milliseconds: the consumer's queue lag.
pub(crate) const PUBLISHED_MS: &str = "x-sb-published-ms";

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn attempt_headers(attempt: u32, error: Option<&str>) -> FieldTable {
    let mut h = FieldTable::default();
    h.insert("x-sb-attempt".into(), AMQPValue::LongUInt(attempt));
    if let Some(e) = error {
        h.insert("x-sb-error".into(), AMQPValue::LongString(e.into()));
    }
    h
}
