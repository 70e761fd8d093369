//! Discord's JSON, as the Gateway dispatches it and the REST API returns it. Tolerant:
//! every field a message may lack has a default, ids stay strings (snowflakes overflow
//! JavaScript's numbers, so Discord sends them as strings), and an unknown event or
//! message kind is counted, not failed.

use serde::{Deserialize, Serialize};

/// A Gateway payload: `op` 0 is a dispatch, with the event's name in `t`.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayPayload {
    pub op: u8,
    #[serde(default)]
    pub t: Option<String>,
    #[serde(default)]
    pub s: Option<u64>,
    #[serde(default)]
    pub d: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
    #[serde(default)]
    pub bot: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub nick: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAttachment {
    pub id: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embed {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StickerItem {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReference {
    /// 0 a reply, 1 a forward (the message then carries `message_snapshots`).
    #[serde(default, rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// A message, as `MESSAGE_CREATE` and `GET /channels/{id}/messages` give it. The REST
/// form has no `guild_id`: the backfill sets it from what it knows of the channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub channel_id: String,
    #[serde(default)]
    pub guild_id: Option<String>,
    pub author: User,
    #[serde(default)]
    pub content: String,
    /// 0 a message, 19 a reply; the rest are system messages (joins, pins, boosts, …).
    #[serde(default, rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub webhook_id: Option<String>,
    #[serde(default)]
    pub mentions: Vec<User>,
    #[serde(default)]
    pub attachments: Vec<FileAttachment>,
    #[serde(default)]
    pub embeds: Vec<Embed>,
    #[serde(default)]
    pub sticker_items: Vec<StickerItem>,
    #[serde(default)]
    pub message_reference: Option<MessageReference>,
    #[serde(default)]
    pub referenced_message: Option<Box<Message>>,
    /// A forward's copy of what was forwarded; the message itself has no content.
    #[serde(default)]
    pub message_snapshots: Vec<Snapshot>,
    #[serde(default)]
    pub edited_timestamp: Option<String>,
    /// Bit 13 (8192) marks a voice message. Null when serenity had none.
    #[serde(default)]
    pub flags: Option<u64>,
}

/// A forward's snapshot. Discord wraps the message (`{"message": {...}}`); a message
/// that went through serenity's model comes back flat, so both are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Snapshot {
    Wrapped { message: SnapshotMessage },
    Flat(SnapshotMessage),
}

impl Snapshot {
    pub fn message(&self) -> &SnapshotMessage {
        match self {
            Snapshot::Wrapped { message } | Snapshot::Flat(message) => message,
        }
    }
}

/// The part of a forwarded message a forward keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMessage {
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub attachments: Vec<FileAttachment>,
    #[serde(default)]
    pub embeds: Vec<Embed>,
    #[serde(default)]
    pub sticker_items: Vec<StickerItem>,
}

/// `MESSAGE_UPDATE`: a partial message; only what changed is certain to be there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MessageUpdate {
    pub id: String,
    pub channel_id: String,
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub edited_timestamp: Option<String>,
}

/// `MESSAGE_DELETE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MessageDelete {
    pub id: String,
    pub channel_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Emoji {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `MESSAGE_REACTION_ADD` and `MESSAGE_REACTION_REMOVE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Reaction {
    pub user_id: String,
    pub channel_id: String,
    pub message_id: String,
    #[serde(default)]
    pub emoji: Emoji,
    #[serde(default)]
    pub member: Option<Member>,
}

/// An interaction: 1 a ping (HTTP endpoint only), 2 a slash command, 3 a button press.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Interaction {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub guild_id: Option<String>,
    #[serde(default)]
    pub member: Option<Member>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub data: Option<InteractionData>,
    #[serde(default)]
    pub message: Option<InteractionMessage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InteractionData {
    #[serde(default)]
    pub custom_id: Option<String>,
}

/// The message whose button was pressed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InteractionMessage {
    pub id: String,
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// `GET /channels/{id}`: what the backfill needs to know of a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Channel {
    pub id: String,
    #[serde(default)]
    pub guild_id: Option<String>,
}

/// What the REST API says when it refuses: Discord's JSON error code and message, and on
/// a 429 how long to wait and whether the limit is the bot's global one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub retry_after: Option<f64>,
    #[serde(default)]
    pub global: bool,
}

/// A sent message as the REST API returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Sent {
    pub id: String,
}
