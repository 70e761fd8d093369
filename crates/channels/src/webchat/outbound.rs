use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use switchboard_core::{
    ChannelAdapter, ChannelKind, LiveFeed, OutboundMessage, SendError, SendReceipt,
};

use super::topic;
use super::wire::LiveEvent;

/// Delivers to the visitor's live stream. The dispatcher stores the message, which is
/// what the transcript endpoint serves; the event carries the same id so the widget can
/// merge the two without showing a message twice.
pub struct WebchatAdapter {
    feed: Arc<dyn LiveFeed>,
}

impl WebchatAdapter {
    pub fn new(feed: Arc<dyn LiveFeed>) -> Self {
        Self { feed }
    }

    async fn emit(&self, message: &OutboundMessage, event: &LiveEvent) -> Result<(), SendError> {
        let value = serde_json::to_value(event).map_err(|e| SendError::Permanent {
            reason: e.to_string(),
        })?;
        self.feed
            .publish(&topic(message.channel_id, &message.recipient), &value)
            .await
    }
}

#[async_trait]
impl ChannelAdapter for WebchatAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webchat
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let event = LiveEvent::Message {
            id: message.message_id,
            role: message.role.clone(),
            text: message.text.clone(),
            at: Utc::now(),
            choices: message.choices.clone(),
        };
        self.emit(message, &event).await?;
        Ok(SendReceipt {
            external_id: None,
            pause: None,
        })
    }

    async fn typing(&self, message: &OutboundMessage) -> Result<(), SendError> {
        self.emit(message, &LiveEvent::Typing).await
    }

    /// The widget shows "typing…" for six seconds after each event.
    fn typing_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(4))
    }
}
