//! The operators' room: a Telegram chat or a Discord channel. A button under a
//! notification approves, rejects or takes over; a reply to a notification goes to the
//! customer as the operator's message. Only a chat account linked to an operator account
//! may act; anyone else is refused.

use serde_json::json;
use switchboard_channels::discord::outbound::DiscordAdapter;
use switchboard_channels::telegram::outbound::TelegramAdapter;
use switchboard_channels::{discord, telegram};
use switchboard_core::{ChannelKind, CustomerMessage, InboundEvent, error_chain};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use switchboard_store::{ChatPlatform, ConversationAction, Notification, StoreError, User};

/// Handles `msg` if it comes from the tenant's operators' chat; false means it is an
/// ordinary customer message.
pub async fn handle(
    s: &Services,
    ev: &InboundEvent,
    msg: &CustomerMessage,
) -> Result<bool, StoreError> {
    let Some(chat) = s.store.operator_chat(ev.tenant_id).await? else {
        return Ok(false);
    };
    if chat.channel_id != ev.channel_id || msg.sender.external_id != chat.chat_id.to_string() {
        return Ok(false);
    }
    let platform = match ev.channel_kind {
        ChannelKind::Discord => ChatPlatform::Discord,
        _ => ChatPlatform::Telegram,
    };
    // Telegram gives the id as a number, Discord as a string of digits.
    let from = msg.metadata.get("from_user_id").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let user = match from {
        Some(id) => {
            s.store
                .user_by_chat_account(ev.tenant_id, platform, id)
                .await?
        }
        None => None,
    };
    let Some(user) = user else {
        tracing::info!("operators' room: refused a chat user not linked to an operator account");
        return Ok(true);
    };
    // Buttons and replies both point at the notification's message (Telegram's external
    // ids are `chat:message`, Discord's the message id alone).
    let target = msg
        .reply_to_external_id
        .as_deref()
        .and_then(|r| r.rsplit(':').next())
        .and_then(|m| m.parse::<i64>().ok());
    let notification = match target {
        Some(m) => {
            s.store
                .notification_by_message(ev.tenant_id, chat.chat_id, m)
                .await?
        }
        None => None,
    };
    let Some(n) = notification else {
        tracing::debug!("operators' chat: a message that answers no notification");
        return Ok(true);
    };
    let pressed = msg.metadata.contains_key("callback_query_id")
        || msg.metadata.contains_key("interaction_id");
    let outcome = if pressed {
        press(s, &user, &n, msg.text.trim()).await?
    } else {
        let key = format!(
            "operator:{}:{}:{}",
            ev.channel_kind, ev.channel_id, msg.external_message_id
        );
        match switchboard_flows::operator_message(
            &s.store,
            &user,
            n.conversation_id,
            &msg.text,
            Some(key),
        )
        .await
        {
            Ok(_) => format!("✉️ {} answered the customer", user.email),
            Err(StoreError::Conflict(why) | StoreError::Invalid(why)) => {
                format!("⚠️ Not sent: {why}")
            }
            Err(e) => return Err(e),
        }
    };
    tracing::info!(user_id = %user.id, "operators' room: acted");
    announce(s, ev, &n).await;
    if let Some(m) = target {
        edit(s, ev, chat.chat_id, m, &format!("{}\n\n{outcome}", n.body)).await;
    }
    Ok(true)
}

async fn press(
    s: &Services,
    user: &User,
    n: &Notification,
    data: &str,
) -> Result<String, StoreError> {
    let result = match (data, n.suggestion_id) {
        ("approve", Some(id)) => switchboard_flows::approve(&s.store, user, id, None)
            .await
            .map(|a| {
                if a.already {
                    format!("✅ Already approved; sent once ({})", user.email)
                } else {
                    format!("✅ Approved by {}", user.email)
                }
            }),
        ("reject", Some(id)) => {
            switchboard_flows::reject(&s.store, user, id, "rejected from the operators' room")
                .await
                .map(|_| format!("❌ Rejected by {}", user.email))
        }
        ("takeover", _) => switchboard_flows::conversation_action(
            &s.store,
            user,
            n.conversation_id,
            ConversationAction::Takeover,
        )
        .await
        .map(|_| format!("🙋 {} took the conversation over", user.email)),
        _ => return Ok(format!("⚠️ Unknown action {data:?}")),
    };
    match result {
        Ok(done) => Ok(done),
        Err(StoreError::Conflict(why) | StoreError::Invalid(why)) => Ok(format!("⚠️ {why}")),
        Err(e) => Err(e),
    }
}

async fn announce(s: &Services, ev: &InboundEvent, n: &Notification) {
    let event = json!({"type": "conversation", "conversation_id": n.conversation_id, "action": "operators_room"});
    crate::tell_operators(s, ev.tenant_id, &event).await;
}

/// Shows in the room who did what. Best effort: the action itself is already committed.
async fn edit(s: &Services, ev: &InboundEvent, chat: i64, message: i64, text: &str) {
    let result = async {
        let record = s
            .store
            .channel(ev.channel_id)
            .await
            .map_err(|e| error_chain(&e))?
            .ok_or("channel gone")?;
        let cipher =
            Cipher::from_base64(&s.config.security.master_key).map_err(|e| e.to_string())?;
        let secrets = record.secrets(&cipher).map_err(|e| error_chain(&e))?;
        let http = switchboard_http::client();
        if record.kind == ChannelKind::Discord {
            let secrets: discord::Secrets =
                serde_json::from_value(secrets).map_err(|e| e.to_string())?;
            let cfg: discord::Config =
                serde_json::from_value(record.config).map_err(|e| e.to_string())?;
            DiscordAdapter::new(http, &cfg.api_base_url, &secrets.bot_token)
                .edit_text(&chat.to_string(), &message.to_string(), text)
                .await
                .map_err(|e| error_chain(&e))
        } else {
            let secrets: telegram::Secrets =
                serde_json::from_value(secrets).map_err(|e| e.to_string())?;
            let cfg: telegram::Config =
                serde_json::from_value(record.config).map_err(|e| e.to_string())?;
            TelegramAdapter::new(http, &secrets.bot_token, &cfg.api_base_url)?
                .edit_text(chat, message, text)
                .await
                .map_err(|e| error_chain(&e))
        }
    };
    if let Err(e) = result.await {
        tracing::warn!(error = %e, "operators' room: the notification was not updated");
    }
}
