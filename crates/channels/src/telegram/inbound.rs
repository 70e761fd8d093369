//! Pure verification and normalization of Telegram updates.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::{
    Attachment, ChannelKind, ChannelRef, CustomerMessage, InboundBody, InboundEvent, Normalized,
    Sender,
};

use super::wire::{Message, Update, User};
use switchboard_core::constant_time_eq;

use crate::InboundError;

/// Which group messages the bot reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupMode {
    /// Only messages that mention the bot, reply to it, or are commands addressed to it.
    #[default]
    #[serde(alias = "mention")]
    Mentions,
    /// Every group message.
    All,
    /// No group message.
    Ignore,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundConfig {
    /// Without the leading `@`; needed to recognise mentions in groups.
    pub bot_username: Option<String>,
    pub group_mode: GroupMode,
}

/// Checks `X-Telegram-Bot-Api-Secret-Token` in constant time.
pub fn verify_secret(expected: &str, header: Option<&str>) -> bool {
    !expected.is_empty()
        && header.is_some_and(|h| constant_time_eq(h.as_bytes(), expected.as_bytes()))
}

pub fn parse(body: &[u8]) -> Result<Update, InboundError> {
    serde_json::from_slice(body).map_err(|e| InboundError::Malformed(e.to_string()))
}

/// The events of one update: at most one, or the kind it ignored.
pub fn normalize(
    ch: ChannelRef,
    cfg: &InboundConfig,
    update: &Update,
    now: DateTime<Utc>,
) -> Result<Normalized, InboundError> {
    let event = |body| InboundEvent {
        tenant_id: ch.tenant_id,
        channel_id: ch.channel_id,
        channel_kind: ChannelKind::Telegram,
        provider_event_id: format!("update:{}", update.update_id),
        received_at: now,
        body,
    };
    let mut out = Normalized::default();
    if let Some(m) = &update.message {
        match customer_message(cfg, m)? {
            Ok(msg) => out.events.push(event(InboundBody::Message(msg))),
            Err(ignored) => out.ignored.push(ignored),
        }
    } else if let Some(m) = &update.edited_message {
        match customer_message(cfg, m)? {
            Ok(msg) => out.events.push(event(InboundBody::Edit {
                external_message_id: msg.external_message_id,
                text: msg.text,
            })),
            Err(ignored) => out.ignored.push(ignored),
        }
    } else if let Some(q) = &update.callback_query {
        // A button press: the customer's choice, answered like a message. Without the
        // originating message (inline mode) there is no chat to answer in.
        let Some(chat) = q.message.as_ref().map(|m| m.chat.id) else {
            out.ignored.push("callback_query.inline".into());
            return Ok(out);
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert("callback_query_id".into(), json!(q.id));
        // Who pressed: in the operators' chat, that decides who acts.
        metadata.insert("from_user_id".into(), json!(q.from.id));
        out.events.push(event(InboundBody::Message(CustomerMessage {
            external_message_id: format!("callback:{}", q.id),
            sender: Sender {
                external_id: chat.to_string(),
                name: Some(display_name(&q.from)),
            },
            text: q.data.clone().unwrap_or_default(),
            attachments: vec![],
            reply_to_external_id: q
                .message
                .as_ref()
                .map(|m| format!("{}:{}", m.chat.id, m.message_id)),
            metadata,
        })));
    } else if let Some(r) = &update.message_reaction {
        let emoji = r.new_reaction.iter().find_map(|x| x.emoji.clone());
        out.events.push(event(InboundBody::Reaction {
            external_message_id: format!("{}:{}", r.chat.id, r.message_id),
            sender: Sender {
                external_id: r.chat.id.to_string(),
                name: r.user.as_ref().map(display_name),
            },
            emoji,
        }));
    } else {
        let kind = update
            .other
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "empty".into());
        out.ignored.push(kind);
    }
    Ok(out)
}

fn display_name(u: &User) -> String {
    match &u.last_name {
        Some(last) => format!("{} {last}", u.first_name),
        None => u.first_name.clone(),
    }
}

/// Whether a group message is for the bot.
fn addressed_to_bot(cfg: &InboundConfig, m: &Message, text: &str) -> bool {
    match cfg.group_mode {
        GroupMode::All => return true,
        GroupMode::Ignore => return false,
        GroupMode::Mentions => {}
    }
    let Some(bot) = cfg.bot_username.as_deref() else {
        return false;
    };
    let replied_to_bot = m
        .reply_to_message
        .as_ref()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|u| u.is_bot && u.username.as_deref() == Some(bot));
    let mention = format!("@{bot}").to_lowercase();
    replied_to_bot || text.to_lowercase().contains(&mention)
}

/// The customer message in `m`, `Ok(Err(kind))` for a kind ignored on purpose, or an error
/// for a message that cannot be read at all.
fn customer_message(
    cfg: &InboundConfig,
    m: &Message,
) -> Result<Result<CustomerMessage, String>, InboundError> {
    if m.chat.kind == "channel" {
        return Ok(Err("channel_post".into()));
    }
    if m.from.as_ref().is_some_and(|u| u.is_bot) {
        return Ok(Err("message.from_bot".into()));
    }
    let text = m
        .text
        .clone()
        .or_else(|| m.caption.clone())
        .unwrap_or_default();
    if matches!(m.chat.kind.as_str(), "group" | "supergroup") && !addressed_to_bot(cfg, m, &text) {
        return Ok(Err("group_message".into()));
    }
    let mut attachments = Vec::new();
    let mut file = |kind: &str, f: &super::wire::File| {
        attachments.push(Attachment {
            kind: kind.into(),
            file_id: f.file_id.clone(),
            mime_type: f.mime_type.clone(),
            name: f.file_name.clone().or_else(|| f.emoji.clone()),
        })
    };
    // The last photo size is the largest.
    if let Some(p) = m.photo.last() {
        file("photo", p);
    }
    for (kind, f) in [
        ("voice", &m.voice),
        ("audio", &m.audio),
        ("video", &m.video),
        ("video_note", &m.video_note),
        ("document", &m.document),
        ("sticker", &m.sticker),
        ("animation", &m.animation),
    ] {
        if let Some(f) = f {
            file(kind, f);
        }
    }
    if let Some(v) = &m.venue {
        attachments.push(Attachment {
            kind: "location".into(),
            file_id: format!("{},{}", v.location.latitude, v.location.longitude),
            mime_type: None,
            name: Some(format!("{}, {}", v.title, v.address)),
        });
    } else if let Some(l) = &m.location {
        attachments.push(Attachment {
            kind: "location".into(),
            file_id: format!("{},{}", l.latitude, l.longitude),
            mime_type: None,
            name: None,
        });
    }
    if let Some(c) = &m.contact {
        let name = match &c.last_name {
            Some(last) => format!("{} {last}", c.first_name),
            None => c.first_name.clone(),
        };
        attachments.push(Attachment {
            kind: "contact".into(),
            file_id: c.phone_number.clone(),
            mime_type: None,
            name: Some(name),
        });
    }
    if text.is_empty() && attachments.is_empty() {
        // Service messages: pins, joins, migrations, payments, giveaways, …
        return Ok(Err("message.service".into()));
    }
    let mut metadata = serde_json::Map::new();
    if let Some(cmd) = command(&text, cfg.bot_username.as_deref()) {
        metadata.insert("command".into(), json!(cmd));
    }
    if m.forward_origin.is_some() || m.forward_from.is_some() || m.forward_date.is_some() {
        metadata.insert("forwarded".into(), json!(true));
    }
    if let Some(g) = &m.media_group_id {
        metadata.insert("media_group_id".into(), json!(g));
    }
    let sender = Sender {
        external_id: m.chat.id.to_string(),
        name: m.from.as_ref().map(display_name),
    };
    if let Some(u) = &m.from {
        metadata.insert("from_user_id".into(), json!(u.id));
    }
    Ok(Ok(CustomerMessage {
        external_message_id: format!("{}:{}", m.chat.id, m.message_id),
        sender,
        text,
        attachments,
        reply_to_external_id: m
            .reply_to_message
            .as_ref()
            .map(|r| format!("{}:{}", r.chat.id, r.message_id)),
        metadata,
    }))
}

/// `/start`, `/help@shop_bot` → `/start`, `/help`; a command for another bot is none.
fn command(text: &str, bot: Option<&str>) -> Option<String> {
    let raw = text.split_whitespace().next()?;
    let name = raw.strip_prefix('/')?.split('@').next()?;
    if name.is_empty()
        || name.len() > 32
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    match raw.split_once('@') {
        Some((cmd, target)) if bot.is_none_or(|b| b.eq_ignore_ascii_case(target)) => {
            Some(cmd.to_owned())
        }
        Some(_) => None,
        None => Some(raw.to_owned()),
    }
}
