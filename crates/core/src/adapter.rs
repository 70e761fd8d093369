use std::time::Duration;

use async_trait::async_trait;

use crate::{ChannelKind, OutboundMessage};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// The platform's id for the sent message, when it gives one.
    pub external_id: Option<String>,
    /// The platform said this send used up a limit (Discord's `X-RateLimit-Remaining: 0`):
    /// every dispatcher holds that scope back until it resets.
    pub pause: Option<Pause>,
}

/// A send limit's scope (as in [`RateLimit::scope`]) held back for `wait`, because the
/// platform said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub scope: String,
    pub wait: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again, after `retry_after` when the platform says so.
    #[error("temporary send failure: {reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Trying again cannot help (bad recipient, expired token, unsupported content).
    #[error("permanent send failure: {reason}")]
    Permanent { reason: String },
    /// The customer cannot be reached any more (blocked the bot, deleted the account).
    #[error("the customer is unreachable: {reason}")]
    Unreachable { reason: String },
    /// The chat moved (a Telegram group became a supergroup): send again to `recipient`.
    #[error("the chat moved to {recipient}")]
    Moved { recipient: String },
    /// The platform refused the send for its rate limit (a 429): every dispatcher holds
    /// the scope back for the wait, and the send goes again after it, not counted as a
    /// failed attempt.
    #[error("rate limited for {:?} on {}", pause.wait, pause.scope)]
    RateLimited { pause: Pause },
    /// Free-form messages cannot reach the customer now (WhatsApp's 24-hour window).
    #[error("the customer-service window is closed: {reason}")]
    WindowClosed { reason: String },
}

/// At most one send per `every` in the `scope` (a bot, a chat, a phone number), with
/// bursts of up to `burst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub scope: String,
    pub every: Duration,
    pub burst: u32,
}

/// The outbound half of a platform: every channel module implements it.
#[async_trait]
pub trait ChannelAdapter: Send + Sync {
    fn kind(&self) -> ChannelKind;

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError>;

    /// Shows the platform's native "typing…" indicator to the recipient.
    async fn typing(&self, message: &OutboundMessage) -> Result<(), SendError>;

    /// How often the indicator must be renewed while a reply waits; `None` where the
    /// platform has no indicator.
    fn typing_interval(&self) -> Option<Duration>;

    /// The platform's send limits that apply to `message`. The dispatcher enforces them
    /// across all its processes.
    fn rate_limits(&self, _message: &OutboundMessage) -> Vec<RateLimit> {
        Vec::new()
    }

    /// The longest text one message may carry, where the platform has a limit. The
    /// dispatcher sends longer replies in parts, each within the limits, and resumes after
    /// the last part that went out.
    fn max_text(&self) -> Option<usize> {
        None
    }
}

/// Fan-out of live events (web-chat transcripts, operator feeds) to whichever gateway
/// process holds the subscriber. Implemented by `store` over Redis pub/sub.
#[async_trait]
pub trait LiveFeed: Send + Sync {
    async fn publish(&self, topic: &str, event: &serde_json::Value) -> Result<(), SendError>;
}
