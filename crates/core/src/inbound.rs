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
    /// The customer deleted a message: it is marked deleted, and stays for the record.
    Delete { external_message_id: String },
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
            InboundBody::Delete { .. } => "delete",
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

/// Removes NUL characters, which PostgreSQL cannot store in text: a platform that sends one
/// would otherwise have its message accepted and then never stored.
fn strip_nul(s: &mut String) -> bool {
    let had = s.contains('\0');
    if had {
        s.retain(|c| c != '\0');
    }
    had
}

fn strip_nul_json(v: &mut serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => strip_nul(s),
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |had, i| strip_nul_json(i) | had),
        serde_json::Value::Object(map) => strip_nul_map(map),
        _ => false,
    }
}

fn strip_nul_map(map: &mut serde_json::Map<String, serde_json::Value>) -> bool {
    // Keys are left alone: they are ours, set by the normalizers.
    map.values_mut()
        .fold(false, |had, v| strip_nul_json(v) | had)
}

impl InboundEvent {
    /// Removes every NUL character from the event's text, ids and metadata; true if there
    /// was one.
    pub fn strip_nul(&mut self) -> bool {
        let mut had = strip_nul(&mut self.provider_event_id);
        match &mut self.body {
            InboundBody::Message(m) => {
                had |= strip_nul(&mut m.external_message_id);
                had |= strip_nul(&mut m.sender.external_id);
                had |= m.sender.name.as_mut().is_some_and(strip_nul);
                had |= strip_nul(&mut m.text);
                for a in &mut m.attachments {
                    had |= strip_nul(&mut a.kind) | strip_nul(&mut a.file_id);
                    had |= a.mime_type.as_mut().is_some_and(strip_nul);
                    had |= a.name.as_mut().is_some_and(strip_nul);
                }
                had |= m.reply_to_external_id.as_mut().is_some_and(strip_nul);
                had |= strip_nul_map(&mut m.metadata);
            }
            InboundBody::Edit {
                external_message_id,
                text,
            } => had |= strip_nul(external_message_id) | strip_nul(text),
            InboundBody::Delete {
                external_message_id,
            } => had |= strip_nul(external_message_id),
            InboundBody::Status(u) => {
                had |= strip_nul(&mut u.external_message_id) | strip_nul(&mut u.recipient);
                had |= u.error.as_mut().is_some_and(strip_nul);
            }
            InboundBody::Reaction {
                external_message_id,
                sender,
                emoji,
            } => {
                had |= strip_nul(external_message_id) | strip_nul(&mut sender.external_id);
                had |= sender.name.as_mut().is_some_and(strip_nul);
                had |= emoji.as_mut().is_some_and(strip_nul);
            }
        }
        had
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_taken_out_of_every_string() {
        let mut ev = InboundEvent {
            tenant_id: Uuid::nil(),
            channel_id: Uuid::nil(),
            channel_kind: ChannelKind::Whatsapp,
            provider_event_id: "wamid\0.1".into(),
            received_at: Utc::now(),
            body: InboundBody::Message(CustomerMessage {
                external_message_id: "wamid\0.1".into(),
                sender: Sender {
                    external_id: "49\0x".into(),
                    name: Some("A\0da".into()),
                },
                text: "hi\0 there".into(),
                attachments: vec![Attachment {
                    kind: "image".into(),
                    file_id: "f\0".into(),
                    mime_type: None,
                    name: None,
                }],
                reply_to_external_id: None,
                metadata: serde_json::json!({"caption": ["x\0y"]})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            }),
        };
        assert!(ev.strip_nul());
        let text = serde_json::to_string(&ev).unwrap_or_default();
        assert!(!text.contains("\\u0000"), "{text}");
        assert!(text.contains("hi there") && text.contains("xy"), "{text}");
        assert!(!ev.strip_nul(), "nothing left to strip");
    }
}
