use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ChannelKind;

/// One customer message, normalized from any platform. This is what the gateway and the
/// listeners put on the bus, and all the AI worker ever sees of a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    pub tenant_id: Uuid,
    pub channel_id: Uuid,
    pub channel_kind: ChannelKind,
    /// The platform's id for this delivery; `(channel_id, provider_event_id)` is the dedup key.
    pub provider_event_id: String,
    /// The platform's id for the message itself, unique per channel.
    pub external_message_id: String,
    pub sender: Sender,
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The customer's id on the platform (chat id, phone number, visitor id, address).
    pub external_id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: String,
    pub file_id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}
