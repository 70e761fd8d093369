//! Sending through the Bot API with teloxide, and mapping its errors to what the
//! dispatcher must do: wait, move, give up on the customer, or fail.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::{
    ChannelAdapter, ChannelKind, OutboundMessage, RateLimit, SendError, SendReceipt,
};
use teloxide_core::Bot;
use teloxide_core::errors::{ApiError, RequestError};
use teloxide_core::payloads::{SendMessageSetters, SetWebhookSetters};
use teloxide_core::prelude::Requester;
use teloxide_core::types::{
    AllowedUpdate, CallbackQueryId, ChatAction, ChatId, InlineKeyboardButton, InlineKeyboardMarkup,
    MessageId, ReplyParameters,
};

use crate::split::split_message;

/// Telegram's limit on one message's text.
pub const MAX_TEXT: usize = 4096;

pub struct TelegramAdapter {
    bot: Bot,
}

impl TelegramAdapter {
    /// `api_base_url` is `https://api.telegram.org/` in production, a local fake in tests.
    pub fn new(
        http: reqwest::Client,
        bot_token: &SecretString,
        api_base_url: &str,
    ) -> Result<Self, String> {
        let url =
            reqwest::Url::parse(api_base_url).map_err(|e| format!("bad api_base_url: {e}"))?;
        Ok(Self {
            bot: Bot::with_client(bot_token.expose_secret(), http).set_api_url(url),
        })
    }

    /// Registers the webhook with its secret, the update kinds we read, and a cap on
    /// Telegram's parallel connections.
    pub async fn set_webhook(
        &self,
        url: &str,
        secret_token: &str,
        max_connections: u8,
    ) -> Result<(), SendError> {
        let url = reqwest::Url::parse(url).map_err(|e| SendError::Permanent {
            reason: format!("bad webhook URL: {e}"),
        })?;
        self.bot
            .set_webhook(url)
            .secret_token(secret_token)
            .max_connections(max_connections)
            .allowed_updates(vec![
                AllowedUpdate::Message,
                AllowedUpdate::EditedMessage,
                AllowedUpdate::CallbackQuery,
                AllowedUpdate::MessageReaction,
            ])
            .await
            .map(|_| ())
            .map_err(map_error)
    }

    /// Posts a notice with one row of callback buttons `(label, data)`; returns the
    /// message id that replies and button presses will point back at.
    pub async fn post_with_buttons(
        &self,
        chat: i64,
        text: &str,
        buttons: &[(&str, &str)],
    ) -> Result<i64, SendError> {
        let row = buttons
            .iter()
            .map(|(label, data)| InlineKeyboardButton::callback(*label, *data))
            .collect::<Vec<_>>();
        let text = split_message(text, MAX_TEXT)
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut req = self.bot.send_message(ChatId(chat), text);
        if !row.is_empty() {
            req = req.reply_markup(InlineKeyboardMarkup::new(vec![row]));
        }
        req.await.map(|m| i64::from(m.id.0)).map_err(map_error)
    }

    /// Replaces a message's text and removes its buttons.
    pub async fn edit_text(&self, chat: i64, message: i64, text: &str) -> Result<(), SendError> {
        let id = i32::try_from(message).map_err(|_| SendError::Permanent {
            reason: format!("{message} is not a Telegram message id"),
        })?;
        let text = split_message(text, MAX_TEXT)
            .into_iter()
            .next()
            .unwrap_or_default();
        self.bot
            .edit_message_text(ChatId(chat), MessageId(id), text)
            .await
            .map(|_| ())
            .map_err(map_error)
    }

    /// Stops the button's spinner on the customer's screen.
    pub async fn answer_callback(&self, callback_query_id: &str) -> Result<(), SendError> {
        self.bot
            .answer_callback_query(CallbackQueryId(callback_query_id.to_owned()))
            .await
            .map(|_| ())
            .map_err(map_error)
    }
}

fn chat_id(recipient: &str) -> Result<ChatId, SendError> {
    recipient
        .parse()
        .map(ChatId)
        .map_err(|_| SendError::Permanent {
            reason: format!("{recipient:?} is not a Telegram chat id"),
        })
}

/// The message id in our `chat:message` external ids.
fn message_id(external: &str) -> Option<MessageId> {
    external
        .rsplit_once(':')
        .and_then(|(_, m)| m.parse().ok())
        .map(MessageId)
}

/// One button per choice; pressing it sends the choice back as a callback query, which
/// is handled like the customer typing it. Callback data holds at most 64 bytes.
fn keyboard(choices: &[String]) -> InlineKeyboardMarkup {
    let data = |c: &str| {
        let mut end = c.len().min(64);
        while !c.is_char_boundary(end) {
            end -= 1;
        }
        c[..end].to_owned()
    };
    InlineKeyboardMarkup::new(
        choices
            .iter()
            .map(|c| vec![InlineKeyboardButton::callback(c.clone(), data(c))]),
    )
}

pub fn map_error(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::Retryable {
            reason: "Telegram flood control".into(),
            retry_after: Some(s.duration()),
        },
        RequestError::MigrateToChatId(id) => SendError::Moved {
            recipient: id.to_string(),
        },
        RequestError::Api(
            api @ (ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots),
        ) => SendError::Unreachable {
            reason: api.to_string(),
        },
        RequestError::Api(api) => SendError::Permanent {
            reason: api.to_string(),
        },
        // Network trouble, or a proxy's HTML error page instead of JSON: try again.
        e @ (RequestError::Network(_) | RequestError::InvalidJson { .. } | RequestError::Io(_)) => {
            SendError::Retryable {
                reason: e.to_string(),
                retry_after: None,
            }
        }
    }
}

#[async_trait]
impl ChannelAdapter for TelegramAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    /// Long replies go out as several messages, cut at sentence ends; the first one replies
    /// to the customer's message. The receipt names the first message.
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let chat = chat_id(&message.recipient)?;
        let reply_to = message.reply_to_external_id.as_deref().and_then(message_id);
        let mut first = None;
        let parts = split_message(&message.text, MAX_TEXT);
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            let mut req = self.bot.send_message(chat, part);
            if i == 0
                && let Some(mid) = reply_to
            {
                req = req.reply_parameters(ReplyParameters::new(mid).allow_sending_without_reply());
            }
            if i == last && !message.choices.is_empty() {
                req = req.reply_markup(keyboard(&message.choices));
            }
            let sent = req.await.map_err(map_error)?;
            first.get_or_insert(format!("{}:{}", sent.chat.id, sent.id));
        }
        Ok(SendReceipt {
            external_id: first,
            pause: None,
        })
    }

    async fn typing(&self, message: &OutboundMessage) -> Result<(), SendError> {
        self.bot
            .send_chat_action(chat_id(&message.recipient)?, ChatAction::Typing)
            .await
            .map(|_| ())
            .map_err(map_error)
    }

    /// Telegram shows "typing…" for five seconds or until a message arrives.
    fn typing_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(4))
    }

    /// About 30 messages a second per bot, one a second per chat, 20 a minute per group
    /// (group and supergroup ids are negative).
    fn max_text(&self) -> Option<usize> {
        Some(MAX_TEXT)
    }

    fn rate_limits(&self, message: &OutboundMessage) -> Vec<RateLimit> {
        let per_chat = if message.recipient.starts_with('-') {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(1)
        };
        vec![
            RateLimit {
                scope: "bot".into(),
                every: Duration::from_millis(34),
                burst: 30,
            },
            RateLimit {
                scope: format!("chat:{}", message.recipient),
                every: per_chat,
                burst: 1,
            },
        ]
    }
}
