use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde::Deserialize;

use crate::BusError;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    pub url: String,
    /// Prefix of every exchange and queue, so that several deployments (or test runs)
    /// can share one broker.
    pub namespace: String,
    pub prefetch: u16,
    /// Delays of the retry ladder; a handler's n-th retry waits the n-th entry (the last
    /// one repeats).
    pub retry_delays_ms: Vec<u64>,
    /// Deliveries after which a message goes to the dead letters.
    pub max_attempts: u32,
    /// Seconds a worker finishes its in-flight messages after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Drop queues unused for this long (x-expires); 0 keeps them. For ephemeral setups.
    pub queue_expires_ms: u64,
}

impl BusConfig {
    pub fn exchange(&self) -> String {
        self.namespace.clone()
    }
    pub fn dead_exchange(&self) -> String {
        format!("{}.dlx", self.namespace)
    }
    pub fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.namespace)
    }
    pub fn retry_queue(&self, name: &str, step: usize) -> String {
        format!("{}.{name}.retry.{step}", self.namespace)
    }
    pub fn dead_queue(&self, name: &str) -> String {
        format!("{}.{name}.dead", self.namespace)
    }
}

pub(crate) async fn connect(cfg: &BusConfig) -> Result<Connection, BusError> {
    let props = ConnectionProperties::default().with_connection_name(LongString::from(format!(
        "switchboard-{}",
        std::process::id()
    )));
    Connection::connect(&cfg.url, props)
        .await
        .map_err(BusError::Unavailable)
}

fn args(cfg: &BusConfig, extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    if cfg.queue_expires_ms > 0 {
        t.insert(
            "x-expires".into(),
            AMQPValue::LongLongInt(i64::try_from(cfg.queue_expires_ms).unwrap_or(i64::MAX)),
        );
    }
    for (k, v) in extra {
        t.insert((*k).into(), v.clone());
    }
    t
}

/// Declares the exchanges and the queue family of `name`. Idempotent: every process runs it
/// at start, and declaring what exists with the same arguments changes nothing.
pub(crate) async fn declare(ch: &Channel, cfg: &BusConfig, name: &str) -> Result<(), BusError> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let q_durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let err = BusError::Unavailable;
    for ex in [cfg.exchange(), cfg.dead_exchange()] {
        ch.exchange_declare(
            ex.into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(err)?;
    }
    let main = cfg.queue(name);
    ch.queue_declare(
        main.clone().into(),
        q_durable,
        args(
            cfg,
            &[
                (
                    "x-dead-letter-exchange",
                    AMQPValue::LongString(cfg.dead_exchange().into()),
                ),
                (
                    "x-dead-letter-routing-key",
                    AMQPValue::LongString(name.into()),
                ),
                // A message that kills its consumer every time ends up dead, not in a loop.
                ("x-delivery-limit", AMQPValue::LongInt(20)),
            ],
        ),
    )
    .await
    .map_err(err)?;
    ch.queue_bind(
        main.into(),
        cfg.exchange().into(),
        name.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(err)?;

    for (step, delay) in cfg.retry_delays_ms.iter().enumerate() {
        ch.queue_declare(
            cfg.retry_queue(name, step).into(),
            q_durable,
            args(
                cfg,
                &[
                    (
                        "x-message-ttl",
                        AMQPValue::LongLongInt(i64::try_from(*delay).unwrap_or(i64::MAX)),
                    ),
                    (
                        "x-dead-letter-exchange",
                        AMQPValue::LongString(cfg.exchange().into()),
                    ),
                    (
                        "x-dead-letter-routing-key",
                        AMQPValue::LongString(name.into()),
                    ),
                ],
            ),
        )
        .await
        .map_err(err)?;
    }

    let dead = cfg.dead_queue(name);
    // Reading the dead letters (`dead_letters`) hands them back, which a quorum queue counts
    // as a delivery; RabbitMQ 4 drops a message past its default limit of 20. So the limit
    // here is one no reader reaches.
    let dead_args = args(cfg, &[("x-delivery-limit", AMQPValue::LongInt(1_000_000))]);
    ch.queue_declare(dead.clone().into(), q_durable, dead_args)
        .await
        .map_err(err)?;
    ch.queue_bind(
        dead.into(),
        cfg.dead_exchange().into(),
        name.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(err)?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub queue: String,
    pub messages: u32,
    pub consumers: u32,
}

/// Depth and consumers of every queue in the family of `name`.
pub async fn queue_stats(cfg: &BusConfig, name: &str) -> Result<Vec<QueueStats>, BusError> {
    let conn = connect(cfg).await?;
    let ch = conn.create_channel().await.map_err(BusError::Unavailable)?;
    declare(&ch, cfg, name).await?;
    let mut names = vec![cfg.queue(name)];
    names.extend((0..cfg.retry_delays_ms.len()).map(|s| cfg.retry_queue(name, s)));
    names.push(cfg.dead_queue(name));
    let mut out = Vec::new();
    for q in names {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let info = ch
            .queue_declare(q.clone().into(), passive, FieldTable::default())
            .await
            .map_err(BusError::Unavailable)?;
        out.push(QueueStats {
            queue: q,
            messages: info.message_count(),
            consumers: info.consumer_count(),
        });
    }
    let _ = conn.close(200, "bye".into()).await;
    Ok(out)
}
