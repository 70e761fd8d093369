//! Pure verification and normalization of Discord events: Gateway dispatches, REST
//! messages read by the backfill, and interactions from either the Gateway or the signed
//! HTTP endpoint.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::json;
use switchboard_core::{
    Attachment, ChannelKind, ChannelRef, CustomerMessage, InboundBody, InboundEvent, Normalized,
    Sender,
};

use super::wire::{
    GatewayPayload, Interaction, Message, MessageDelete, MessageUpdate, Reaction, User,
};
use crate::InboundError;
use crate::telegram::inbound::GroupMode;

/// `message_reference.type` of a forward.
const FORWARD: u8 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundConfig {
    /// The bot user's id: mentions of it and replies to it address the bot in a guild.
    pub bot_user_id: String,
    pub group_mode: GroupMode,
}

/// Discord's signature of an HTTP interaction: Ed25519 over the timestamp header followed
/// by the raw body, with the application's public key. Anything missing or malformed is
/// a failed check.
pub fn verify_signature(
    public_key_hex: &str,
    signature_hex: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
) -> bool {
    let (Some(signature_hex), Some(timestamp)) = (signature_hex, timestamp) else {
        return false;
    };
    let key = hex::decode(public_key_hex.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let signature = hex::decode(signature_hex.trim())
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .map(|s| Signature::from_bytes(&s));
    let (Some(key), Some(signature)) = (key, signature) else {
        return false;
    };
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    key.verify_strict(&signed, &signature).is_ok()
}

/// A Gateway payload as the websocket (or `switchboard normalize`) has it.
pub fn parse_payload(body: &[u8]) -> Result<GatewayPayload, InboundError> {
    serde_json::from_slice(body).map_err(|e| InboundError::Malformed(e.to_string()))
}

pub fn parse_interaction(body: &[u8]) -> Result<Interaction, InboundError> {
    serde_json::from_slice(body).map_err(|e| InboundError::Malformed(e.to_string()))
}

/// The events of one Gateway payload; anything but a dispatch is ignored.
pub fn normalize_payload(
    ch: ChannelRef,
    cfg: &InboundConfig,
    payload: &GatewayPayload,
    now: DateTime<Utc>,
) -> Result<Normalized, InboundError> {
    match (&payload.t, payload.op) {
        (Some(event), 0) => normalize_dispatch(ch, cfg, event, &payload.d, now),
        (_, op) => Ok(ignored(format!("op_{op}"))),
    }
}

fn ignored(kind: impl Into<String>) -> Normalized {
    Normalized {
        events: Vec::new(),
        ignored: vec![kind.into()],
    }
}

fn read<T: serde::de::DeserializeOwned>(
    event: &str,
    data: &serde_json::Value,
) -> Result<T, InboundError> {
    T::deserialize(data).map_err(|e| InboundError::Malformed(format!("{event}: {e}")))
}

/// The events of one dispatch (`t`, `d`).
pub fn normalize_dispatch(
    ch: ChannelRef,
    cfg: &InboundConfig,
    event: &str,
    data: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Normalized, InboundError> {
    let make = |id: String, body| InboundEvent {
        tenant_id: ch.tenant_id,
        channel_id: ch.channel_id,
        channel_kind: ChannelKind::Discord,
        provider_event_id: id,
        received_at: now,
        body,
    };
    Ok(match event {
        "MESSAGE_CREATE" => normalize_message(ch, cfg, &read(event, data)?, now),
        "INTERACTION_CREATE" => normalize_interaction(ch, cfg, &read(event, data)?, now),
        "MESSAGE_UPDATE" => {
            let u: MessageUpdate = read(event, data)?;
            match (&u.content, &u.author) {
                (_, Some(a)) if a.bot => ignored("message_update.from_bot"),
                // A link preview resolved or a pin changed on a message never edited: the
                // update carries the whole message, but nothing was said anew.
                (Some(_), _) if u.edited_timestamp.is_none() => {
                    ignored("message_update.not_edited")
                }
                (Some(text), _) => {
                    let text = strip_mentions(text, &cfg.bot_user_id);
                    // Each edit is its own event: the edit time tells them apart.
                    let at = u
                        .edited_timestamp
                        .clone()
                        .unwrap_or_else(|| now.to_rfc3339());
                    Normalized {
                        events: vec![make(
                            format!("edit:{}:{at}", u.id),
                            InboundBody::Edit {
                                external_message_id: u.id.clone(),
                                text,
                            },
                        )],
                        ignored: vec![],
                    }
                }
                // An embed resolved or a pin changed: no new text.
                (None, _) => ignored("message_update.partial"),
            }
        }
        "MESSAGE_DELETE" => {
            let d: MessageDelete = read(event, data)?;
            Normalized {
                events: vec![make(
                    format!("delete:{}", d.id),
                    InboundBody::Delete {
                        external_message_id: d.id,
                    },
                )],
                ignored: vec![],
            }
        }
        "MESSAGE_REACTION_ADD" | "MESSAGE_REACTION_REMOVE" => {
            let r: Reaction = read(event, data)?;
            if r.user_id == cfg.bot_user_id {
                return Ok(ignored("reaction.own"));
            }
            let emoji = match (&r.emoji.name, &r.emoji.id) {
                (Some(name), Some(id)) => format!("{name}:{id}"),
                (Some(name), None) => name.clone(),
                (None, Some(id)) => id.clone(),
                (None, None) => String::new(),
            };
            let added = event == "MESSAGE_REACTION_ADD";
            let name = r.member.as_ref().and_then(|m| member_name(m, None));
            Normalized {
                // A reaction has no id of its own, and is never replayed (the backfill
                // reads messages only): the time it came tells a re-add apart.
                events: vec![make(
                    format!(
                        "reaction:{}:{}:{emoji}:{}:{}",
                        r.message_id,
                        r.user_id,
                        if added { "add" } else { "remove" },
                        now.timestamp_micros()
                    ),
                    InboundBody::Reaction {
                        external_message_id: r.message_id,
                        sender: Sender {
                            external_id: r.channel_id,
                            name,
                        },
                        emoji: added.then_some(emoji),
                    },
                )],
                ignored: vec![],
            }
        }
        other => ignored(other.to_ascii_lowercase()),
    })
}

fn display_name(u: &User) -> String {
    u.global_name.clone().unwrap_or_else(|| u.username.clone())
}

fn member_name(m: &super::wire::Member, user: Option<&User>) -> Option<String> {
    m.nick
        .clone()
        .or_else(|| m.user.as_ref().or(user).map(display_name))
}

/// Whether a guild message is for the bot.
fn addressed_to_bot(cfg: &InboundConfig, m: &Message) -> bool {
    match cfg.group_mode {
        GroupMode::All => return true,
        GroupMode::Ignore => return false,
        GroupMode::Mentions => {}
    }
    let bot = cfg.bot_user_id.as_str();
    !bot.is_empty()
        && (m.mentions.iter().any(|u| u.id == bot)
            || m.referenced_message
                .as_ref()
                .is_some_and(|r| r.author.id == bot)
            || m.content.contains(&format!("<@{bot}>"))
            || m.content.contains(&format!("<@!{bot}>")))
}

/// The text without the mentions of the bot that addressed it.
fn strip_mentions(text: &str, bot: &str) -> String {
    if bot.is_empty() {
        return text.trim().to_owned();
    }
    text.replace(&format!("<@!{bot}>"), "")
        .replace(&format!("<@{bot}>"), "")
        .trim()
        .to_owned()
}

/// A message (from the Gateway or the backfill), or the kind ignored.
pub fn normalize_message(
    ch: ChannelRef,
    cfg: &InboundConfig,
    m: &Message,
    now: DateTime<Utc>,
) -> Normalized {
    match customer_message(cfg, m) {
        Ok(msg) => Normalized {
            events: vec![InboundEvent {
                tenant_id: ch.tenant_id,
                channel_id: ch.channel_id,
                channel_kind: ChannelKind::Discord,
                // The Gateway and the backfill give the same id: a message seen by both
                // is stored once.
                provider_event_id: format!("message:{}", m.id),
                received_at: now,
                body: InboundBody::Message(msg),
            }],
            ignored: vec![],
        },
        Err(kind) => ignored(kind),
    }
}

fn customer_message(cfg: &InboundConfig, m: &Message) -> Result<CustomerMessage, &'static str> {
    if m.author.bot {
        return Err("message.from_bot");
    }
    if m.webhook_id.is_some() {
        return Err("message.webhook");
    }
    if !matches!(m.kind, 0 | 19) {
        return Err("message.system");
    }
    if m.guild_id.is_some() && !addressed_to_bot(cfg, m) {
        return Err("guild_message");
    }
    // A forward says nothing of its own: what it forwards is in its snapshot.
    let forward = m
        .message_reference
        .as_ref()
        .is_some_and(|r| r.kind == FORWARD);
    let snapshot = m
        .message_snapshots
        .first()
        .map(|s| s.message())
        .filter(|_| forward);
    let content = snapshot.map_or(m.content.as_str(), |s| s.content.as_str());
    let (files, embeds, stickers) = match snapshot {
        Some(s) => (&s.attachments, &s.embeds, &s.sticker_items),
        None => (&m.attachments, &m.embeds, &m.sticker_items),
    };
    let mut text = strip_mentions(content, &cfg.bot_user_id);
    if text.is_empty() {
        // A message of embeds only (a shared card): their text is what was said.
        text = embeds
            .iter()
            .flat_map(|e| [e.title.as_deref(), e.description.as_deref()])
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
    }
    let voice = m.flags.unwrap_or(0) & 8192 != 0;
    let mut attachments: Vec<Attachment> = files
        .iter()
        .map(|a| {
            let mime = a.content_type.clone();
            let kind = match mime.as_deref().and_then(|t| t.split('/').next()) {
                Some("audio") if voice => "voice",
                Some("image") => "photo",
                Some("video") => "video",
                Some("audio") => "audio",
                _ => "document",
            };
            Attachment {
                kind: kind.into(),
                file_id: a.id.clone(),
                mime_type: mime,
                name: Some(a.filename.clone()).filter(|n| !n.is_empty()),
            }
        })
        .collect();
    attachments.extend(stickers.iter().map(|s| Attachment {
        kind: "sticker".into(),
        file_id: s.id.clone(),
        mime_type: None,
        name: Some(s.name.clone()).filter(|n| !n.is_empty()),
    }));
    if text.is_empty() && attachments.is_empty() {
        return Err("message.empty");
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("from_user_id".into(), json!(m.author.id));
    if let Some(g) = &m.guild_id {
        metadata.insert("guild_id".into(), json!(g));
    }
    if forward {
        metadata.insert("forwarded".into(), json!(true));
    }
    Ok(CustomerMessage {
        external_message_id: m.id.clone(),
        sender: Sender {
            external_id: m.channel_id.clone(),
            name: Some(display_name(&m.author)),
        },
        text,
        attachments,
        // A forward's reference names the original elsewhere, not a message replied to.
        reply_to_external_id: m
            .message_reference
            .as_ref()
            .filter(|r| r.kind != FORWARD)
            .and_then(|r| r.message_id.clone()),
        metadata,
    })
}

/// The prefix of a choice button's `custom_id` (`c0:`, `c1:`, …): ids must differ within
/// a message even when two choices begin alike.
pub fn choice_id(index: usize, choice: &str) -> String {
    let prefix = format!("c{index}:");
    // custom_id holds at most 100 characters.
    let room = 100 - prefix.len();
    let mut end = choice.len().min(room);
    while !choice.is_char_boundary(end) {
        end -= 1;
    }
    format!("{prefix}{}", &choice[..end])
}

fn choice_text(custom_id: &str) -> &str {
    custom_id
        .strip_prefix('c')
        .and_then(|rest| rest.split_once(':'))
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map_or(custom_id, |(_, text)| text)
}

/// A button press, handled like the customer typing the choice; other interactions are
/// ignored (a ping is answered by the endpoint itself).
pub fn normalize_interaction(
    ch: ChannelRef,
    _cfg: &InboundConfig,
    i: &Interaction,
    now: DateTime<Utc>,
) -> Normalized {
    if i.kind != 3 {
        return ignored(match i.kind {
            1 => "interaction.ping",
            2 => "interaction.command",
            _ => "interaction.other",
        });
    }
    let (Some(channel), Some(custom_id)) = (
        i.channel_id
            .clone()
            .or_else(|| i.message.as_ref().and_then(|m| m.channel_id.clone())),
        i.data.as_ref().and_then(|d| d.custom_id.as_deref()),
    ) else {
        return ignored("interaction.incomplete");
    };
    let user = i
        .member
        .as_ref()
        .and_then(|m| m.user.as_ref())
        .or(i.user.as_ref());
    let mut metadata = serde_json::Map::new();
    metadata.insert("interaction_id".into(), json!(i.id));
    if let Some(u) = user {
        // Who pressed: in the operators' room, that decides who acts.
        metadata.insert("from_user_id".into(), json!(u.id));
    }
    if let Some(g) = &i.guild_id {
        metadata.insert("guild_id".into(), json!(g));
    }
    let name = i
        .member
        .as_ref()
        .and_then(|m| member_name(m, None))
        .or_else(|| user.map(display_name));
    Normalized {
        events: vec![InboundEvent {
            tenant_id: ch.tenant_id,
            channel_id: ch.channel_id,
            channel_kind: ChannelKind::Discord,
            provider_event_id: format!("interaction:{}", i.id),
            received_at: now,
            body: InboundBody::Message(CustomerMessage {
                external_message_id: format!("interaction:{}", i.id),
                sender: Sender {
                    external_id: channel,
                    name,
                },
                text: choice_text(custom_id).to_owned(),
                attachments: vec![],
                reply_to_external_id: i.message.as_ref().map(|m| m.id.clone()),
                metadata,
            }),
        }],
        ignored: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn a_signature_over_timestamp_and_body_verifies_and_nothing_else_does() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let public = hex::encode(key.verifying_key().to_bytes());
        let body = br#"{"type":1}"#;
        let sig = hex::encode(
            key.sign(&[b"1700000000".as_slice(), body].concat())
                .to_bytes(),
        );
        assert!(verify_signature(
            &public,
            Some(&sig),
            Some("1700000000"),
            body
        ));
        assert!(!verify_signature(
            &public,
            Some(&sig),
            Some("1700000001"),
            body
        ));
        assert!(!verify_signature(
            &public,
            Some(&sig),
            Some("1700000000"),
            br#"{"type":2}"#
        ));
        assert!(!verify_signature(&public, None, Some("1700000000"), body));
        assert!(!verify_signature(
            &public,
            Some("zz"),
            Some("1700000000"),
            body
        ));
        assert!(!verify_signature(
            "not hex",
            Some(&sig),
            Some("1700000000"),
            body
        ));
    }

    #[test]
    fn choice_ids_are_unique_short_and_read_back() {
        let long = "é".repeat(80);
        let id = choice_id(3, &long);
        assert!(id.len() <= 100 && id.starts_with("c3:"));
        assert_eq!(
            choice_text(&choice_id(0, "Track my order")),
            "Track my order"
        );
        assert_eq!(choice_text("approve:1"), "approve:1");
        assert_eq!(choice_text("c:x"), "c:x");
    }
}
