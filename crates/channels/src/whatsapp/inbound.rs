//! Pure verification and normalization of WhatsApp Cloud API webhooks.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use switchboard_core::{
    Attachment, ChannelKind, ChannelRef, CustomerMessage, DeliveryStatus, DeliveryUpdate,
    InboundBody, InboundEvent, Normalized, Sender,
};

use super::wire::{Message, Status, Webhook};
use crate::InboundError;

/// The error code for "more than 24 hours since the customer last wrote".
pub const WINDOW_CLOSED_CODE: i64 = 131047;

/// Checks `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, keyed with the app secret,
/// compared in constant time. The raw bytes matter: re-serialized JSON does not verify.
pub fn verify_signature(app_secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Some(given) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The subscription handshake: the challenge to echo, if the mode and token are right.
pub fn verify_challenge<'a>(
    verify_token: &str,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
) -> Option<&'a str> {
    let ok = mode == Some("subscribe")
        && !verify_token.is_empty()
        && token.is_some_and(|t| {
            switchboard_core::constant_time_eq(t.as_bytes(), verify_token.as_bytes())
        });
    if ok { challenge } else { None }
}

pub fn parse(body: &[u8]) -> Result<Webhook, InboundError> {
    let hook: Webhook =
        serde_json::from_slice(body).map_err(|e| InboundError::Malformed(e.to_string()))?;
    if hook.object != "whatsapp_business_account" {
        return Err(InboundError::Invalid {
            field: "object",
            reason: format!("expected whatsapp_business_account, got {:?}", hook.object),
        });
    }
    Ok(hook)
}

/// Every message and status of every change of every entry.
/// Keeps only the changes addressed to `phone_number_id`, the channel's own number, and
/// returns what it dropped. One Meta app (and so one app secret, one valid signature) can
/// serve several numbers, even several tenants' numbers: a body signed for one of them must
/// not be stored in another's channel.
pub fn only_for_number(hook: &mut Webhook, phone_number_id: &str) -> Vec<String> {
    let mut dropped = Vec::new();
    for entry in &mut hook.entry {
        entry.changes.retain(|c| {
            let ours = c
                .value
                .metadata
                .as_ref()
                .is_some_and(|m| m.phone_number_id == phone_number_id);
            if !ours {
                dropped.push("another phone number".to_owned());
            }
            ours
        });
    }
    dropped
}

pub fn normalize(ch: ChannelRef, hook: &Webhook, now: DateTime<Utc>) -> Normalized {
    let mut out = Normalized::default();
    for change in hook.entry.iter().flat_map(|e| &e.changes) {
        if change.field != "messages" {
            out.ignored.push(change.field.clone());
            continue;
        }
        let v = &change.value;
        for m in &v.messages {
            let name = v
                .contacts
                .iter()
                .find(|c| c.wa_id == m.from)
                .and_then(|c| c.profile.as_ref())
                .map(|p| p.name.clone());
            let sender = Sender {
                external_id: m.from.clone(),
                name,
            };
            match message(m, sender) {
                Ok(body) => out.events.push(InboundEvent {
                    tenant_id: ch.tenant_id,
                    channel_id: ch.channel_id,
                    channel_kind: ChannelKind::Whatsapp,
                    provider_event_id: format!("msg:{}", m.id),
                    received_at: now,
                    body,
                }),
                Err(kind) => out.ignored.push(kind),
            }
        }
        for s in &v.statuses {
            match status(s) {
                Some(update) => out.events.push(InboundEvent {
                    tenant_id: ch.tenant_id,
                    channel_id: ch.channel_id,
                    channel_kind: ChannelKind::Whatsapp,
                    provider_event_id: format!("status:{}:{}", s.id, s.status),
                    received_at: now,
                    body: InboundBody::Status(update),
                }),
                None => out.ignored.push(format!("status.{}", s.status)),
            }
        }
    }
    out
}

fn status(s: &Status) -> Option<DeliveryUpdate> {
    let status = match s.status.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        // A played voice message has been heard: read.
        "read" | "played" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return None,
    };
    let error = s.errors.first();
    Some(DeliveryUpdate {
        external_message_id: s.id.clone(),
        recipient: s.recipient_id.clone(),
        status,
        error_code: error.map(|e| e.code),
        error: error.map(|e| e.describe()),
        window_closed: s.errors.iter().any(|e| e.code == WINDOW_CLOSED_CODE),
    })
}

fn attachment(kind: &str, m: &super::wire::Media) -> Attachment {
    Attachment {
        kind: kind.into(),
        file_id: m.id.clone(),
        mime_type: m.mime_type.clone(),
        name: m.filename.clone(),
    }
}

/// The body for one message, or the kind ignored on purpose.
fn message(m: &Message, sender: Sender) -> Result<InboundBody, String> {
    if m.id.is_empty() {
        return Err("message.without_id".into());
    }
    let mut text = String::new();
    let mut attachments = Vec::new();
    let mut metadata = serde_json::Map::new();
    match m.kind.as_str() {
        "text" => text = m.text.as_ref().map(|t| t.body.clone()).unwrap_or_default(),
        "image" | "audio" | "video" | "document" | "sticker" => {
            let media = match m.kind.as_str() {
                "image" => &m.image,
                "audio" => &m.audio,
                "video" => &m.video,
                "document" => &m.document,
                _ => &m.sticker,
            };
            if let Some(media) = media {
                let kind = if m.kind == "audio" && media.voice {
                    "voice"
                } else {
                    m.kind.as_str()
                };
                text = media.caption.clone().unwrap_or_default();
                attachments.push(attachment(kind, media));
            }
        }
        "location" => {
            if let Some(l) = &m.location {
                let name = [l.name.clone(), l.address.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                attachments.push(Attachment {
                    kind: "location".into(),
                    file_id: format!("{},{}", l.latitude, l.longitude),
                    mime_type: None,
                    name: Some(name).filter(|n| !n.is_empty()),
                });
            }
        }
        "contacts" => {
            for c in &m.contacts {
                attachments.push(Attachment {
                    kind: "contact".into(),
                    file_id: c["phones"][0]["phone"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    mime_type: None,
                    name: c["name"]["formatted_name"].as_str().map(str::to_owned),
                });
            }
        }
        "reaction" => {
            let r = m.reaction.as_ref().ok_or("reaction.empty")?;
            return Ok(InboundBody::Reaction {
                external_message_id: r.message_id.clone(),
                sender,
                // An empty emoji takes the reaction back.
                emoji: r.emoji.clone().filter(|e| !e.is_empty()),
            });
        }
        "interactive" => {
            let i = m.interactive.as_ref().ok_or("interactive.empty")?;
            let reply = i.button_reply.as_ref().or(i.list_reply.as_ref());
            if let Some(r) = reply {
                text = r.title.clone();
                metadata.insert("choice_id".into(), json!(r.id));
            } else if let Some(nfm) = &i.nfm_reply {
                text = nfm["body"].as_str().unwrap_or("Form submitted").to_owned();
                metadata.insert("flow_response".into(), nfm.clone());
            }
            metadata.insert("interactive".into(), json!(i.kind));
        }
        "button" => {
            let b = m.button.as_ref().ok_or("button.empty")?;
            text = b.text.clone();
            metadata.insert("template_button_payload".into(), json!(b.payload));
        }
        "order" => {
            let order = m.order.clone().unwrap_or_default();
            text = order["text"].as_str().unwrap_or_default().to_owned();
            metadata.insert("order".into(), order);
        }
        "edit" => {
            let e = m.edit.as_ref().ok_or("edit.empty")?;
            let inner = e.message.as_deref();
            let text = inner
                .and_then(|i| {
                    i.text.as_ref().map(|t| t.body.clone()).or_else(|| {
                        [&i.image, &i.video, &i.document]
                            .into_iter()
                            .flatten()
                            .find_map(|x| x.caption.clone())
                    })
                })
                .unwrap_or_default();
            return Ok(InboundBody::Edit {
                external_message_id: e.original_message_id.clone(),
                text,
            });
        }
        "unsupported" | "unknown" => {
            attachments.push(Attachment {
                kind: "unsupported".into(),
                file_id: String::new(),
                mime_type: None,
                name: m.errors.first().map(|e| e.describe()),
            });
        }
        // Deleted messages, number and identity changes: nothing to answer.
        other => return Err(format!("message.{other}")),
    }
    if let Some(r) = &m.referral {
        metadata.insert("referral".into(), r.clone());
    }
    let ctx = m.context.as_ref();
    if ctx.is_some_and(|c| c.forwarded || c.frequently_forwarded) {
        metadata.insert("forwarded".into(), json!(true));
    }
    Ok(InboundBody::Message(CustomerMessage {
        external_message_id: m.id.clone(),
        sender,
        text,
        attachments,
        // A forwarded message's context names no message of ours.
        reply_to_external_id: ctx
            .filter(|c| !c.forwarded && !c.frequently_forwarded)
            .and_then(|c| c.id.clone()),
        metadata,
    }))
}
