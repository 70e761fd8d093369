use std::time::{Duration, Instant};

use futures::future::join_all;
use secrecy::ExposeSecret;
use serde::Deserialize;
use switchboard_channels::telegram;
use switchboard_channels::telegram::outbound::TelegramAdapter;
use switchboard_core::envelope::INBOUND_MESSAGE;
use switchboard_core::{ChannelRef, Envelope, InboundBody, error_chain};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use switchboard_store::{ChannelLease, ChannelRecord};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Telegram holds a long poll open for up to this long.
const POLL_SECS: u64 = 25;

/// One `getUpdates` answer. The updates stay raw JSON so that one Telegram cannot parse
/// does not sink the batch: it is counted and stepped over.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Vec<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

pub struct Poller {
    s: Services,
    /// Cursor writes carry it, and are refused once another listener holds the channel.
    lease: ChannelLease,
    channel: ChannelRef,
    config: telegram::Config,
    secrets: telegram::Secrets,
    http: reqwest::Client,
}

impl Poller {
    pub fn new(
        s: &Services,
        record: &ChannelRecord,
        cipher: &Cipher,
        lease: ChannelLease,
    ) -> Result<Self, String> {
        let (channel, config, secrets) = crate::decode(record, cipher)?;
        Ok(Self {
            s: s.clone(),
            lease,
            channel,
            config,
            secrets,
            http: switchboard_http::client(),
        })
    }

    pub async fn run(self, stop: CancellationToken) {
        let span = tracing::info_span!("poll", tenant_id = %self.channel.tenant_id, channel_id = %self.channel.channel_id);
        // Instrumented, not entered: a guard held across awaits would tag other tasks' logs.
        async {
            tracing::info!("long polling started");
            let mut backoff = Duration::from_secs(1);
            while !stop.is_cancelled() {
                let started = Instant::now();
                // A poll is cut off when the poller must stop (its lease lost): the offset
                // moves only after a batch is queued, so the next holder reads it again.
                let polled = tokio::select! {
                    _ = stop.cancelled() => break,
                    polled = self.once() => polled,
                };
                let pause = match polled {
                    Ok(0) if started.elapsed() < Duration::from_secs(1) => {
                        // A server that answers an empty long poll at once must not be hammered.
                        Duration::from_secs(1)
                    }
                    Ok(_) => {
                        backoff = Duration::from_secs(1);
                        Duration::ZERO
                    }
                    Err(wait) => {
                        let wait = wait.unwrap_or(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        wait
                    }
                };
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One poll: returns how many updates it queued, or how long to wait after a failure.
    async fn once(&self) -> Result<usize, Option<Duration>> {
        let offset = self
            .s
            .store
            .telegram_offset(self.channel.channel_id)
            .await
            .map_err(|e| {
                tracing::warn!(error = %error_chain(&e), "cannot read the offset");
                None
            })?;
        let url = format!(
            "{}/bot{}/getUpdates",
            self.config.api_base_url.trim_end_matches('/'),
            self.secrets.bot_token.expose_secret()
        );
        let mut body = serde_json::json!({
            "timeout": POLL_SECS,
            "allowed_updates": ["message", "edited_message", "callback_query", "message_reaction"],
        });
        if let Some(o) = offset {
            body["offset"] = o.into();
        }
        let answer: Answer = match self
            .http
            .post(url)
            .json(&body)
            .timeout(Duration::from_secs(POLL_SECS + 10))
            .send()
            .await
        {
            Ok(r) => r.json().await.map_err(|e| {
                tracing::warn!(error = %e.without_url(), "getUpdates answer does not parse");
                None
            })?,
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "getUpdates failed");
                return Err(None);
            }
        };
        if !answer.ok {
            tracing::warn!(
                reason = answer.description.as_deref().unwrap_or(""),
                "getUpdates refused"
            );
            return Err(answer
                .parameters
                .and_then(|p| p.retry_after)
                .map(Duration::from_secs));
        }
        let Some(last) = answer
            .result
            .iter()
            .filter_map(|u| u["update_id"].as_i64())
            .max()
        else {
            return Ok(0);
        };
        let mut events = Vec::new();
        for raw in &answer.result {
            let parsed = serde_json::from_value::<telegram::wire::Update>(raw.clone())
                .map_err(|e| switchboard_channels::InboundError::Malformed(e.to_string()))
                .and_then(|u| {
                    telegram::inbound::normalize(
                        self.channel,
                        &self.config.inbound(),
                        &u,
                        chrono::Utc::now(),
                    )
                });
            match parsed {
                Ok(n) => {
                    for kind in &n.ignored {
                        metrics::counter!("sb_inbound_ignored_total", "channel" => "telegram", "kind" => kind.clone()).increment(1);
                    }
                    events.extend(n.events);
                }
                Err(e) => {
                    metrics::counter!("sb_inbound_total", "channel" => "telegram", "result" => "rejected").increment(1);
                    tracing::warn!(update_id = raw["update_id"].as_i64(), error = %e, "update skipped");
                }
            }
        }
        let publishes = events.iter().map(|ev| async move {
            let env = Envelope::new(INBOUND_MESSAGE, ev.tenant_id, ev.channel_id, ev);
            let body = serde_json::to_vec(&env).map_err(|e| e.to_string())?;
            self.s
                .publisher
                .publish(switchboard_bus::INBOUND, &body)
                .await
                .map_err(|e| error_chain(&e))
        });
        if let Some(Err(e)) = join_all(publishes).await.into_iter().find(Result::is_err) {
            // The offset stays: the whole batch comes again, and receipts drop what got through.
            tracing::warn!(error = %e, "publishing polled updates failed");
            return Err(None);
        }
        metrics::counter!("sb_inbound_total", "channel" => "telegram", "result" => "queued")
            .increment(events.len() as u64);
        self.s.activity.done(events.len() as u64);
        self.s
            .store
            .set_telegram_offset(self.channel.tenant_id, &self.lease, last + 1)
            .await
            .map_err(|e| {
                tracing::warn!(error = %error_chain(&e), "cannot store the offset; the batch will come again");
                None
            })?;
        self.answer_callbacks(&events).await;
        Ok(events.len())
    }

    async fn answer_callbacks(&self, events: &[switchboard_core::InboundEvent]) {
        let ids: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.body {
                InboundBody::Message(m) => m.metadata.get("callback_query_id")?.as_str(),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return;
        }
        let Ok(adapter) = TelegramAdapter::new(
            self.http.clone(),
            &self.secrets.bot_token,
            &self.config.api_base_url,
        ) else {
            return;
        };
        for id in ids {
            if let Err(e) = adapter.answer_callback(id).await {
                tracing::warn!(error = %error_chain(&e), "answerCallbackQuery failed");
            }
        }
    }
}
