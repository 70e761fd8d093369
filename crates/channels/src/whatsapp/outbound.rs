//! Sending through the Graph API, and mapping its error codes to what the dispatcher must
//! do, as Meta documents them.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchboard_core::{
    ChannelAdapter, ChannelKind, OutboundMessage, RateLimit, SendError, SendReceipt,
};

use super::inbound::WINDOW_CLOSED_CODE;
use super::wire::{ErrorResponse, SendResponse};
use crate::split::split_message;

/// WhatsApp's limit on a text message's body.
pub const MAX_TEXT: usize = 4096;

pub struct WhatsappAdapter {
    http: reqwest::Client,
    messages_url: String,
    access_token: SecretString,
    messages_per_second: u32,
}

impl WhatsappAdapter {
    /// The config's `api_base_url` includes the Graph API version, e.g.
    /// `https://graph.facebook.com/v21.0`.
    pub fn new(http: reqwest::Client, cfg: &super::Config, access_token: &SecretString) -> Self {
        Self {
            http,
            messages_url: format!(
                "{}/{}/messages",
                cfg.api_base_url.trim_end_matches('/'),
                cfg.phone_number_id
            ),
            access_token: access_token.clone(),
            messages_per_second: cfg.messages_per_second.max(1),
        }
    }

    async fn post(&self, body: &Value) -> Result<SendResponse, SendError> {
        let resp = self
            .http
            .post(&self.messages_url)
            .bearer_auth(self.access_token.expose_secret())
            .json(body)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| SendError::Retryable {
                reason: format!("WhatsApp unreachable: {}", e.without_url()),
                retry_after: None,
            })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(|e| SendError::Retryable {
            reason: format!("WhatsApp answer cut off: {}", e.without_url()),
            retry_after: None,
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| SendError::Retryable {
                reason: format!("WhatsApp answer does not parse: {e}"),
                retry_after: None,
            });
        }
        Err(match serde_json::from_slice::<ErrorResponse>(&bytes) {
            Ok(err) => map_error(
                status.as_u16(),
                err.error.code,
                &describe(&err.error),
                retry_after,
            ),
            Err(_) => map_error(status.as_u16(), 0, &format!("HTTP {status}"), retry_after),
        })
    }

    /// An approved template, for customers outside the 24-hour window.
    pub async fn send_template(
        &self,
        to: &str,
        name: &str,
        language: &str,
    ) -> Result<SendReceipt, SendError> {
        let body = json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "template", "template": {"name": name, "language": {"code": language}}
        });
        let resp = self.post(&body).await?;
        Ok(SendReceipt {
            external_id: resp.messages.into_iter().next().map(|m| m.id),
            pause: None,
        })
    }
}

fn describe(e: &super::wire::GraphError) -> String {
    match &e.error_data {
        Some(d) if !d.details.is_empty() => format!("{} ({}): {}", e.message, e.code, d.details),
        _ => format!("{} ({})", e.message, e.code),
    }
}

/// Meta's error codes: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
pub fn map_error(
    http_status: u16,
    code: i64,
    reason: &str,
    retry_after: Option<Duration>,
) -> SendError {
    let reason = reason.to_owned();
    match code {
        // Throughput and pair rate limits: back off and try again.
        130429 | 131056 | 4 | 80007 => SendError::Retryable {
            reason,
            retry_after,
        },
        WINDOW_CLOSED_CODE => SendError::WindowClosed { reason },
        // Undeliverable, unsupported message type, expired or invalid token, bad recipient
        // or parameter: trying again cannot help.
        131026 | 131051 | 190 | 131030 | 131008 | 131009 | 100 | 131021 => {
            SendError::Permanent { reason }
        }
        _ if http_status == 429 || http_status >= 500 => SendError::Retryable {
            reason,
            retry_after,
        },
        _ => SendError::Permanent { reason },
    }
}

/// The body limit of an interactive message.
const MAX_INTERACTIVE_BODY: usize = 1024;

/// Up to three choices as reply buttons (titles of at most 20 characters), up to ten as a
/// list; `None` when there is nothing to offer or the text is too long to carry them.
fn interactive(text: &str, choices: &[String]) -> Option<serde_json::Value> {
    if choices.is_empty() || choices.len() > 10 || text.chars().count() > MAX_INTERACTIVE_BODY {
        return None;
    }
    let title = |c: &String, max: usize| c.chars().take(max).collect::<String>();
    let action = if choices.len() <= 3 {
        let buttons: Vec<_> = choices
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"type": "reply", "reply": {"id": format!("choice:{i}"), "title": title(c, 20)}}))
            .collect();
        json!({"type": "button", "action": {"buttons": buttons}})
    } else {
        let rows: Vec<_> = choices
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"id": format!("choice:{i}"), "title": title(c, 24)}))
            .collect();
        json!({"type": "list", "action": {"button": "Choose", "sections": [{"title": "Options", "rows": rows}]}})
    };
    let mut interactive = action;
    interactive["body"] = json!({"text": text});
    Some(json!({"type": "interactive", "interactive": interactive}))
}

#[async_trait]
impl ChannelAdapter for WhatsappAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Whatsapp
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let mut first = None;
        let parts = split_message(&message.text, MAX_TEXT);
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            let mut body = match interactive(&part, &message.choices) {
                Some(interactive) if i == last => interactive,
                _ => json!({"type": "text", "text": {"preview_url": false, "body": part}}),
            };
            body["messaging_product"] = json!("whatsapp");
            body["recipient_type"] = json!("individual");
            body["to"] = json!(message.recipient);
            if i == 0
                && let Some(reply_to) = &message.reply_to_external_id
            {
                body["context"] = json!({"message_id": reply_to});
            }
            let resp = self.post(&body).await?;
            if first.is_none() {
                first = resp.messages.into_iter().next().map(|m| m.id);
            }
        }
        Ok(SendReceipt {
            external_id: first,
            pause: None,
        })
    }

    /// Marks the customer's message read and shows the typing indicator, which WhatsApp
    /// keeps up for at most 25 seconds or until we reply.
    async fn typing(&self, message: &OutboundMessage) -> Result<(), SendError> {
        let Some(wamid) = &message.reply_to_external_id else {
            return Ok(());
        };
        let body = json!({
            "messaging_product": "whatsapp", "status": "read", "message_id": wamid,
            "typing_indicator": {"type": "text"}
        });
        self.post(&body).await.map(|_| ())
    }

    fn typing_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(25))
    }

    /// 80 messages a second per business phone number by default.
    fn max_text(&self) -> Option<usize> {
        Some(MAX_TEXT)
    }

    fn rate_limits(&self, _message: &OutboundMessage) -> Vec<RateLimit> {
        vec![RateLimit {
            scope: "number".into(),
            every: Duration::from_secs(1) / self.messages_per_second,
            burst: self.messages_per_second,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_choices_as_buttons_or_a_list() {
        let two = vec!["Standard".to_owned(), "Express".to_owned()];
        let b = interactive("How fast?", &two).unwrap();
        assert_eq!(b["interactive"]["type"], "button");
        assert_eq!(b["interactive"]["body"]["text"], "How fast?");
        assert_eq!(
            b["interactive"]["action"]["buttons"][1]["reply"]["title"],
            "Express"
        );
        let five: Vec<String> = (1..=5).map(|i| format!("Size {i}")).collect();
        let l = interactive("Which size?", &five).unwrap();
        assert_eq!(l["interactive"]["type"], "list");
        assert_eq!(
            l["interactive"]["action"]["sections"][0]["rows"][4]["title"],
            "Size 5"
        );
        assert!(interactive("x", &[]).is_none());
    }

    #[test]
    fn maps_meta_error_codes() {
        assert!(matches!(
            map_error(400, 130429, "rate", None),
            SendError::Retryable { .. }
        ));
        assert!(matches!(
            map_error(400, 131056, "pair rate", None),
            SendError::Retryable { .. }
        ));
        assert!(matches!(
            map_error(400, 131047, "window", None),
            SendError::WindowClosed { .. }
        ));
        for code in [131026, 131051, 190, 131030] {
            assert!(
                matches!(map_error(400, code, "x", None), SendError::Permanent { .. }),
                "{code}"
            );
        }
        assert!(matches!(
            map_error(500, 1, "unknown", None),
            SendError::Retryable { .. }
        ));
        assert!(matches!(
            map_error(400, 131000, "something", None),
            SendError::Permanent { .. }
        ));
    }
}
