use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::RwLock;

use crate::topology::{connect, declare};
use crate::{BusConfig, BusError};

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Persistent, confirmed publishes over one channel. Many publishes may be in flight at
/// once; each caller awaits only its own confirm. A lost connection is re-opened on the
/// next publish, so a broker that comes back is used again without a restart.
pub struct Publisher {
    cfg: BusConfig,
    link: RwLock<Option<(Connection, Channel)>>,
}

impl Publisher {
    pub fn new(cfg: BusConfig) -> Self {
        Self {
            cfg,
            link: RwLock::new(None),
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

    /// Publishes to a work queue and returns once the broker has confirmed that the message
    /// is stored durably.
    pub async fn publish(&self, queue: &str, body: &[u8]) -> Result<(), BusError> {
        let ex = self.cfg.exchange();
        self.publish_raw(&ex, queue, body, FieldTable::default())
            .await
    }

    pub(crate) async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
    ) -> Result<(), BusError> {
        let ch = self.channel().await?;
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
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
        let result = tokio::time::timeout(CONFIRM_TIMEOUT, publish)
            .await
            .map_err(|_| BusError::Timeout(CONFIRM_TIMEOUT))?;
        if result.is_err() {
            // Next publish starts from a fresh channel.
            *self.link.write().await = None;
        }
        result
    }
}

pub(crate) fn attempt_headers(attempt: u32, error: Option<&str>) -> FieldTable {
    let mut h = FieldTable::default();
    h.insert("x-sb-attempt".into(), AMQPValue::LongUInt(attempt));
    if let Some(e) = error {
        h.insert("x-sb-error".into(), AMQPValue::LongString(e.into()));
    }
    h
}
