use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ChannelKind;

/// One thing a customer's platform told us, normalized: what the gateway and the listeners
/// put on the bus, and all the AI worker ever sees of a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    pub tenant_id: Uuid,
    pub channel_id: Uuid,
    pub channel_kind: ChannelKind,
    /// The platform's id for this delivery; `(channel_id, provider_event_id)` is the dedup key.
    pub provider_event_id: String,
    pub received_at: DateTime<Utc>,
    pub body: InboundBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundBody {
    /// A customer message: a new turn.
    Message(CustomerMessage),
    /// The customer edited a message: the stored text changes, no new turn starts.
    Edit {
        external_message_id: String,
        text: String,
    },
    /// What became of a message we sent.
    Status(DeliveryUpdate),
    /// A reaction to a message; `emoji: None` takes it back.
    Reaction {
        external_message_id: String,
        sender: Sender,
        emoji: Option<String>,
    },
}

impl InboundBody {
    pub fn kind(&self) -> &'static str {
        match self {
            InboundBody::Message(_) => "message",
            InboundBody::Edit { .. } => "edit",
            InboundBody::Status(_) => "status",
            InboundBody::Reaction { .. } => "reaction",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMessage {
    /// The platform's id for the message, unique per channel.
    pub external_message_id: String,
    pub sender: Sender,
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// The platform id of the message this one replies to.
    #[serde(default)]
    pub reply_to_external_id: Option<String>,
    /// Platform details worth keeping: command, forwarded, referral, callback id, location.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// Where replies go: the chat id, phone number, visitor id or address.
    pub external_id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `photo`, `voice`, `audio`, `video`, `document`, `sticker`, `location`, `contact`, …
    pub kind: String,
    /// The platform's file id, or for locations and contacts a compact description.
    pub file_id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryUpdate {
    /// The platform's id of the message we sent.
    pub external_message_id: String,
    pub recipient: String,
    pub status: DeliveryStatus,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    /// The platform says free-form messages cannot reach this customer now (WhatsApp 131047).
    #[serde(default)]
    pub window_closed: bool,
}

/// What a webhook body or a poll produced: events to queue, and kinds deliberately ignored
/// (acknowledged and counted, never failed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Normalized {
    pub events: Vec<InboundEvent>,
    pub ignored: Vec<String>,
}

/// The channel an inbound payload arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRef {
    pub tenant_id: Uuid,
    pub channel_id: Uuid,
}
