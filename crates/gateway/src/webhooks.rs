//! Platform webhooks. Each checks the platform's signature or secret first (401), then
//! parses (400 with the reason), then answers 200 only once every event is durably queued.

use secrecy::ExposeSecret;
use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde::de::DeserializeOwned;
use switchboard_channels::telegram::outbound::TelegramAdapter;
use switchboard_channels::{InboundError, discord, telegram, whatsapp};
use switchboard_core::{ChannelKind, InboundBody, error_chain};
use uuid::Uuid;

use crate::channels::ResolvedChannel;
use crate::ingress::{accept, count_ignored};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/telegram/{channel_id}", post(telegram_update))
        .route(
            "/webhooks/whatsapp/{channel_id}",
            post(whatsapp_post).get(whatsapp_verify),
        )
        .route("/webhooks/discord/{channel_id}", post(discord_interaction))
}

fn typed<T: DeserializeOwned>(ch: &ResolvedChannel, v: &serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| {
        tracing::error!(channel_id = %ch.channel.channel_id, error = %e, "channel settings unusable");
        ApiError::Internal
    })
}

fn rejected(channel: &'static str, e: InboundError) -> ApiError {
    metrics::counter!("sb_inbound_total", "channel" => channel, "result" => "rejected")
        .increment(1);
    ApiError::BadRequest(e.to_string())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn telegram_update(
    State(s): State<AppState>,
    Path(channel_id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let ch = s
        .channels
        .resolve(channel_id, ChannelKind::Telegram)
        .await?;
    let cfg: telegram::Config = typed(&ch, &ch.config)?;
    let secrets: telegram::Secrets = typed(&ch, &ch.secrets)?;
    if !telegram::inbound::verify_secret(
        secrets.secret_token.expose_secret(),
        header(&headers, "x-telegram-bot-api-secret-token"),
    ) {
        return Err(ApiError::Unauthorized(
            "missing or wrong X-Telegram-Bot-Api-Secret-Token",
        ));
    }
    let update = telegram::inbound::parse(&body).map_err(|e| rejected("telegram", e))?;
    let mut n =
        telegram::inbound::normalize(ch.channel, &cfg.inbound(), &update, chrono::Utc::now())
            .map_err(|e| rejected("telegram", e))?;
    count_ignored("telegram", &n.ignored);
    accept(&s, &mut n.events).await?;
    answer_callbacks(&cfg, &secrets, &n.events);
    Ok(StatusCode::OK)
}

/// Telegram shows a spinner on a pressed button until the bot answers the callback query.
/// The press is already queued, so this only tidies up the customer's screen.
fn answer_callbacks(
    cfg: &telegram::Config,
    secrets: &telegram::Secrets,
    events: &[switchboard_core::InboundEvent],
) {
    let ids: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            InboundBody::Message(m) => m
                .metadata
                .get("callback_query_id")?
                .as_str()
                .map(str::to_owned),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return;
    }
    let Ok(adapter) = TelegramAdapter::new(
        switchboard_http::client(),
        &secrets.bot_token,
        &cfg.api_base_url,
    ) else {
        return;
    };
    tokio::spawn(async move {
        for id in ids {
            if let Err(e) = adapter.answer_callback(&id).await {
                tracing::warn!(error = %error_chain(&e), "answerCallbackQuery failed");
            }
        }
    });
}

/// Meta's subscription handshake.
async fn whatsapp_verify(
    State(s): State<AppState>,
    Path(channel_id): Path<Uuid>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let ch = s
        .channels
        .resolve(channel_id, ChannelKind::Whatsapp)
        .await?;
    let secrets: whatsapp::Secrets = typed(&ch, &ch.secrets)?;
    let get = |k: &str| q.get(k).map(String::as_str);
    match whatsapp::inbound::verify_challenge(
        secrets.verify_token.expose_secret(),
        get("hub.mode"),
        get("hub.verify_token"),
        get("hub.challenge"),
    ) {
        Some(challenge) => Ok((StatusCode::OK, challenge.to_owned())),
        None => Ok((StatusCode::FORBIDDEN, "verification failed".to_owned())),
    }
}

async fn whatsapp_post(
    State(s): State<AppState>,
    Path(channel_id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let ch = s
        .channels
        .resolve(channel_id, ChannelKind::Whatsapp)
        .await?;
    let secrets: whatsapp::Secrets = typed(&ch, &ch.secrets)?;
    if !whatsapp::inbound::verify_signature(
        secrets.app_secret.expose_secret(),
        &body,
        header(&headers, "x-hub-signature-256"),
    ) {
        return Err(ApiError::Unauthorized("missing or bad X-Hub-Signature-256"));
    }
    let cfg: whatsapp::Config = typed(&ch, &ch.config)?;
    let mut hook = whatsapp::inbound::parse(&body).map_err(|e| rejected("whatsapp", e))?;
    count_ignored(
        "whatsapp",
        &whatsapp::inbound::only_for_number(&mut hook, &cfg.phone_number_id),
    );
    let mut n = whatsapp::inbound::normalize(ch.channel, &hook, chrono::Utc::now());
    count_ignored("whatsapp", &n.ignored);
    accept(&s, &mut n.events).await?;
    Ok(StatusCode::OK)
}

/// Discord's interactions endpoint, for an application that takes interactions over HTTP
/// rather than the Gateway: Ed25519 first (Discord itself sends bad signatures to check
/// that they are refused), then a ping is answered, and a button press is acknowledged
/// as a deferred update once it is durably queued.
async fn discord_interaction(
    State(s): State<AppState>,
    Path(channel_id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let ch = s.channels.resolve(channel_id, ChannelKind::Discord).await?;
    let cfg: discord::Config = typed(&ch, &ch.config)?;
    if !discord::inbound::verify_signature(
        &cfg.public_key,
        header(&headers, "x-signature-ed25519"),
        header(&headers, "x-signature-timestamp"),
        &body,
    ) {
        return Err(ApiError::Unauthorized("invalid request signature"));
    }
    let interaction =
        discord::inbound::parse_interaction(&body).map_err(|e| rejected("discord", e))?;
    let answer = match interaction.kind {
        1 => serde_json::json!({"type": 1}),
        3 => serde_json::json!({"type": 6}),
        // A command this bot never registered: said so, to the one who asked only.
        _ => serde_json::json!({"type": 4, "data": {
            "content": "Write to us in a message; this bot has no commands.",
            "flags": 64,
        }}),
    };
    let mut n = discord::inbound::normalize_interaction(
        ch.channel,
        &cfg.inbound(),
        &interaction,
        chrono::Utc::now(),
    );
    count_ignored("discord", &n.ignored);
    accept(&s, &mut n.events).await?;
    Ok(axum::Json(answer))
}
