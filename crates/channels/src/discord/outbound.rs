//! Sending through Discord's REST API with the one configured HTTP client, and mapping
//! its answers to what the dispatcher must do. serenity's HTTP client is not used: its
//! rate limiter coordinates one process only, and with it off the bucket headers are
//! out of reach. The limits are the dispatcher's, shared in Redis: the adapter declares
//! Discord's numbers and reports the pauses Discord asks for (an empty bucket, a 429).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_core::{
    ChannelAdapter, ChannelKind, OutboundMessage, Pause, RateLimit, SendError, SendReceipt,
};

use super::inbound::choice_id;
use super::wire::{ApiError, Channel, Message, Sent};
use crate::split::split_message;

/// Discord's limit on one message's content.
pub const MAX_TEXT: usize = 2000;

/// Buttons: five to a row, five rows to a message; a label holds 80 characters.
const BUTTONS_PER_ROW: usize = 5;
const MAX_BUTTONS: usize = 25;
const MAX_LABEL: usize = 80;

/// The shortest wait after a 429, whatever `retry_after` says.
const MIN_429_WAIT: Duration = Duration::from_millis(500);

/// Discord error codes the dispatcher acts on.
const CANNOT_DM_USER: i64 = 50007;
const UNKNOWN_CHANNEL: i64 = 10003;
const MISSING_PERMISSIONS: i64 = 50013;
const MISSING_ACCESS: i64 = 50001;

pub struct DiscordAdapter {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl DiscordAdapter {
    /// `api_base_url` includes the API version: `https://discord.com/api/v10`.
    pub fn new(http: reqwest::Client, api_base_url: &str, bot_token: &SecretString) -> Self {
        Self {
            http,
            base: api_base_url.trim_end_matches('/').to_owned(),
            token: bot_token.clone(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Bot {}", self.token.expose_secret()),
            )
            .timeout(Duration::from_secs(20))
    }

    /// Sends a request and reads its answer, or maps the refusal; `scope` names the rate
    /// limit the route counts against.
    async fn call(
        &self,
        req: reqwest::RequestBuilder,
        scope: &str,
    ) -> Result<(Vec<u8>, Option<Pause>), SendError> {
        let resp = req.send().await.map_err(|e| SendError::Retryable {
            reason: format!("Discord unreachable: {}", e.without_url()),
            retry_after: None,
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| SendError::Retryable {
            reason: format!("Discord's answer broke off: {}", e.without_url()),
            retry_after: None,
        })?;
        if status.is_success() {
            return Ok((body.to_vec(), bucket_pause(&headers, scope)));
        }
        Err(map_error(status.as_u16(), &headers, &body, scope))
    }

    /// Posts a message; returns its id and any pause its bucket asks for.
    async fn post_message(
        &self,
        channel: &str,
        body: &Value,
    ) -> Result<(String, Option<Pause>), SendError> {
        let (raw, pause) = self
            .call(
                self.request(
                    reqwest::Method::POST,
                    &format!("/channels/{}/messages", path_id(channel)?),
                )
                .json(body),
                &messages_scope(channel),
            )
            .await?;
        let sent: Sent = serde_json::from_slice(&raw).map_err(|e| SendError::Retryable {
            reason: format!("Discord's answer does not parse: {e}"),
            retry_after: None,
        })?;
        Ok((sent.id, pause))
    }

    /// Acknowledges a button press within Discord's three seconds, leaving the message as
    /// it is (a deferred update); the answer follows as an ordinary message.
    pub async fn defer_interaction(&self, id: &str, token: &str) -> Result<(), SendError> {
        let path = format!(
            "/interactions/{}/{}/callback",
            path_id(id)?,
            path_token(token)?
        );
        self.call(
            self.request(reqwest::Method::POST, &path)
                .json(&json!({"type": 6})),
            "interactions",
        )
        .await
        .map(|_| ())
    }

    /// Messages of `channel` after `after`, oldest first, at most 100 (Discord's page).
    pub async fn messages_after(
        &self,
        channel: &str,
        after: &str,
    ) -> Result<Vec<serde_json::Value>, SendError> {
        let path = format!(
            "/channels/{}/messages?after={}&limit=100",
            path_id(channel)?,
            path_id(after)?
        );
        let (raw, _) = self
            .call(
                self.request(reqwest::Method::GET, &path),
                &format!("route:read:{channel}"),
            )
            .await?;
        let mut page: Vec<serde_json::Value> =
            serde_json::from_slice(&raw).map_err(|e| SendError::Retryable {
                reason: format!("Discord's answer does not parse: {e}"),
                retry_after: None,
            })?;
        // Discord returns the newest first.
        page.sort_by_key(|m| snowflake(m["id"].as_str().unwrap_or("0")));
        Ok(page)
    }

    /// What the backfill needs to know of a channel: whether it is a guild's.
    pub async fn channel(&self, channel: &str) -> Result<Channel, SendError> {
        let path = format!("/channels/{}", path_id(channel)?);
        let (raw, _) = self
            .call(
                self.request(reqwest::Method::GET, &path),
                &format!("route:read:{channel}"),
            )
            .await?;
        serde_json::from_slice(&raw).map_err(|e| SendError::Retryable {
            reason: format!("Discord's answer does not parse: {e}"),
            retry_after: None,
        })
    }

    /// Posts a notice with one row of buttons `(label, custom_id)`; returns its id.
    pub async fn post_with_buttons(
        &self,
        channel: &str,
        text: &str,
        buttons: &[(&str, &str)],
        nonce: &str,
    ) -> Result<String, SendError> {
        let text = split_message(text, MAX_TEXT)
            .into_iter()
            .next()
            .unwrap_or_default();
        let row: Vec<Value> = buttons
            .iter()
            .map(|(label, id)| json!({"type": 2, "style": 2, "label": label, "custom_id": id}))
            .collect();
        let body = json!({
            "content": text,
            "nonce": nonce,
            "enforce_nonce": true,
            "allowed_mentions": {"parse": []},
            "components": [{"type": 1, "components": row}],
        });
        self.post_message(channel, &body).await.map(|(id, _)| id)
    }

    /// Replaces a notice's text and removes its buttons.
    pub async fn edit_text(
        &self,
        channel: &str,
        message: &str,
        text: &str,
    ) -> Result<(), SendError> {
        let text = split_message(text, MAX_TEXT)
            .into_iter()
            .next()
            .unwrap_or_default();
        let path = format!(
            "/channels/{}/messages/{}",
            path_id(channel)?,
            path_id(message)?
        );
        self.call(
            self.request(reqwest::Method::PATCH, &path)
                .json(&json!({"content": text, "components": []})),
            &messages_scope(channel),
        )
        .await
        .map(|_| ())
    }
}

/// A snowflake's number, for ordering; anything else sorts first.
pub fn snowflake(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

/// The scope of a channel's message route, as `rate_limits` declares it.
fn messages_scope(channel: &str) -> String {
    format!("route:messages:{channel}")
}

/// Ids go into URL paths: only a snowflake may.
fn path_id(id: &str) -> Result<&str, SendError> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(SendError::Permanent {
            reason: format!("{id:?} is not a Discord id"),
        })
    }
}

fn path_token(token: &str) -> Result<&str, SendError> {
    if !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        Ok(token)
    } else {
        Err(SendError::Permanent {
            reason: "the interaction token is malformed".into(),
        })
    }
}

/// The nonce of a part: Discord drops a second message with the same nonce from the same
/// bot within a few minutes (`enforce_nonce`) and returns the first, so a send retried
/// after a lost answer does not post twice. At most 25 characters.
pub fn nonce(message: &OutboundMessage) -> String {
    let digest = Sha256::new()
        .chain_update(message.message_id.as_bytes())
        .chain_update(message.part.to_be_bytes())
        .finalize();
    hex::encode(&digest[..10])
}

fn header_secs(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
}

fn secs(s: f64) -> Duration {
    // Capped: a wait beyond an hour is a broken header, not a plan.
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

/// A bucket Discord says is empty (`X-RateLimit-Remaining: 0`) holds its route back until
/// it resets.
fn bucket_pause(headers: &HeaderMap, scope: &str) -> Option<Pause> {
    let remaining = headers
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())?;
    if remaining.trim() != "0" {
        return None;
    }
    let wait = header_secs(headers, "x-ratelimit-reset-after")?;
    Some(Pause {
        scope: scope.to_owned(),
        wait: secs(wait),
    })
}

/// Maps a refusal as Discord documents its codes.
pub fn map_error(status: u16, headers: &HeaderMap, body: &[u8], scope: &str) -> SendError {
    let err: ApiError = serde_json::from_slice(body).unwrap_or_default();
    let reason = if err.message.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("{} ({})", err.message, err.code)
    };
    match status {
        429 => {
            let global = err.global
                || headers
                    .get("x-ratelimit-global")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
            let wait = err
                .retry_after
                .or_else(|| header_secs(headers, "retry-after"))
                .unwrap_or(1.0);
            SendError::RateLimited {
                pause: Pause {
                    scope: if global {
                        "bot".into()
                    } else {
                        scope.to_owned()
                    },
                    // Never less than this: a 429 must not turn into a tight retry loop.
                    wait: secs(wait).max(MIN_429_WAIT),
                },
            }
        }
        403 if err.code == CANNOT_DM_USER => SendError::Unreachable { reason },
        403 if matches!(err.code, MISSING_PERMISSIONS | MISSING_ACCESS) => SendError::Permanent {
            reason: format!("the bot lacks a permission in this channel: {reason}"),
        },
        404 if err.code == UNKNOWN_CHANNEL => SendError::Permanent {
            reason: format!("the Discord channel is gone: {reason}"),
        },
        401 => SendError::Permanent {
            reason: format!("Discord refused the bot token: {reason}"),
        },
        500..=599 => SendError::Retryable {
            reason: format!("Discord failed: {reason}"),
            retry_after: None,
        },
        _ => SendError::Permanent { reason },
    }
}

/// Choices as buttons, five to a row; more than Discord can show are left out.
fn components(choices: &[String]) -> Value {
    let buttons: Vec<Value> = choices
        .iter()
        .take(MAX_BUTTONS)
        .enumerate()
        .map(|(i, c)| {
            let label: String = c.chars().take(MAX_LABEL).collect();
            json!({"type": 2, "style": 2, "label": label, "custom_id": choice_id(i, c)})
        })
        .collect();
    Value::Array(
        buttons
            .chunks(BUTTONS_PER_ROW)
            .map(|row| json!({"type": 1, "components": row}))
            .collect(),
    )
}

#[async_trait]
impl ChannelAdapter for DiscordAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    /// One message of at most 2,000 characters (the dispatcher sends longer replies part by
    /// part); the first part replies to the customer's message, the last carries the
    /// choices as buttons.
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let text = split_message(&message.text, MAX_TEXT)
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut body = json!({
            "content": text,
            "nonce": nonce(message),
            "enforce_nonce": true,
            // A reply pings the customer it answers, and nobody else.
            "allowed_mentions": {"parse": [], "replied_user": true},
        });
        // Only a message's own id can be replied to (a button press has none).
        if let Some(reply_to) = message
            .reply_to_external_id
            .as_deref()
            .filter(|id| path_id(id).is_ok())
        {
            body["message_reference"] =
                json!({"message_id": reply_to, "fail_if_not_exists": false});
        }
        if !message.choices.is_empty() {
            body["components"] = components(&message.choices);
        }
        let (id, pause) = self.post_message(&message.recipient, &body).await?;
        Ok(SendReceipt {
            external_id: Some(id),
            pause,
        })
    }

    async fn typing(&self, message: &OutboundMessage) -> Result<(), SendError> {
        let path = format!("/channels/{}/typing", path_id(&message.recipient)?);
        self.call(
            self.request(reqwest::Method::POST, &path),
            &format!("route:typing:{}", message.recipient),
        )
        .await
        .map(|_| ())
    }

    /// Discord shows "typing…" for ten seconds or until the bot's message arrives.
    fn typing_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(8))
    }

    fn max_text(&self) -> Option<usize> {
        Some(MAX_TEXT)
    }

    /// 50 requests a second per bot, and five messages per five seconds per channel
    /// (Discord's usual bucket; the headers of each answer tighten it when Discord says so).
    fn rate_limits(&self, message: &OutboundMessage) -> Vec<RateLimit> {
        vec![
            RateLimit {
                scope: "bot".into(),
                every: Duration::from_millis(20),
                burst: 50,
            },
            RateLimit {
                scope: messages_scope(&message.recipient),
                every: Duration::from_secs(1),
                burst: 5,
            },
        ]
    }
}

/// A message from the backfill, read with our own wire types.
pub fn read_message(raw: &Value) -> Result<Message, crate::InboundError> {
    Message::deserialize(raw).map_err(|e| crate::InboundError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_429_pauses_its_route_or_the_whole_bot() {
        let route = map_error(
            429,
            &headers(&[]),
            br#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#,
            "route:messages:1",
        );
        assert_eq!(
            route,
            SendError::RateLimited {
                pause: Pause {
                    scope: "route:messages:1".into(),
                    wait: Duration::from_millis(1500)
                }
            }
        );
        let global = map_error(
            429,
            &headers(&[("x-ratelimit-global", "true"), ("retry-after", "3")]),
            b"",
            "route:messages:1",
        );
        assert!(
            matches!(global, SendError::RateLimited { pause } if pause.scope == "bot" && pause.wait == Duration::from_secs(3))
        );
    }

    #[test]
    fn refusals_map_to_what_the_dispatcher_does() {
        let h = headers(&[]);
        assert!(matches!(
            map_error(
                403,
                &h,
                br#"{"code":50007,"message":"Cannot send messages to this user"}"#,
                "s"
            ),
            SendError::Unreachable { .. }
        ));
        assert!(matches!(
            map_error(403, &h, br#"{"code":50013,"message":"Missing Permissions"}"#, "s"),
            SendError::Permanent { reason } if reason.contains("permission")
        ));
        assert!(matches!(
            map_error(404, &h, br#"{"code":10003,"message":"Unknown Channel"}"#, "s"),
            SendError::Permanent { reason } if reason.contains("gone")
        ));
        assert!(matches!(
            map_error(502, &h, b"<html>", "s"),
            SendError::Retryable { .. }
        ));
    }

    #[test]
    fn an_empty_bucket_pauses_until_it_resets() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset-after", "2.5"),
        ]);
        assert_eq!(
            bucket_pause(&h, "route:messages:1"),
            Some(Pause {
                scope: "route:messages:1".into(),
                wait: Duration::from_millis(2500)
            })
        );
        let h = headers(&[
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-reset-after", "2.5"),
        ]);
        assert_eq!(bucket_pause(&h, "s"), None);
    }

    #[test]
    fn nonces_differ_by_part_and_fit_discords_limit() {
        let m = OutboundMessage {
            message_id: uuid::Uuid::nil(),
            tenant_id: uuid::Uuid::nil(),
            channel_id: uuid::Uuid::nil(),
            conversation_id: uuid::Uuid::nil(),
            recipient: "1".into(),
            part: 0,
            text: String::new(),
            reply_to_external_id: None,
            choices: vec![],
            human_sent: false,
            role: "assistant".into(),
            reply_context: Value::Null,
        };
        let second = OutboundMessage {
            part: 1,
            ..m.clone()
        };
        assert_ne!(nonce(&m), nonce(&second));
        assert!(nonce(&m).len() <= 25);
    }

    #[test]
    fn choices_become_rows_of_five_buttons() {
        let choices: Vec<String> = (0..12).map(|i| format!("choice {i}")).collect();
        let rows = components(&choices);
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["components"].as_array().unwrap().len(), 5);
        assert_eq!(rows[2]["components"].as_array().unwrap().len(), 2);
        assert_eq!(rows[0]["components"][1]["custom_id"], "c1:choice 1");
    }
}
