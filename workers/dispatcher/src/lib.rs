//! Sends what the outbox says is due, through the channel's adapter, and records the
//! outcome. Rows are claimed with FOR UPDATE SKIP LOCKED, so any number of dispatchers
//! share the work without sending anything twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use switchboard_channels::webchat::outbound::WebchatAdapter;
use switchboard_core::{ChannelAdapter, ChannelKind, SendError};
use switchboard_runtime::{DispatcherConfig, Services};
use switchboard_store::{Claim, RedisLiveFeed, StoreError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// The adapters this process can send through, by channel kind.
struct Adapters {
    webchat: Arc<dyn ChannelAdapter>,
}

impl Adapters {
    fn new(s: &Services) -> Self {
        Self {
            webchat: Arc::new(WebchatAdapter::new(Arc::new(RedisLiveFeed::new(
                s.redis.clone(),
            )))),
        }
    }

    fn get(&self, kind: ChannelKind) -> Option<&Arc<dyn ChannelAdapter>> {
        match kind {
            ChannelKind::Webchat => Some(&self.webchat),
            _ => None,
        }
    }
}

pub async fn run(s: Services, shutdown: CancellationToken) {
    let adapters = Arc::new(Adapters::new(&s));
    let mut tasks = JoinSet::new();
    for _ in 0..s.config.dispatcher.concurrency.max(1) {
        tasks.spawn(send_loop(s.clone(), adapters.clone(), shutdown.clone()));
    }
    tasks.spawn(typing_loop(s.clone(), adapters, shutdown));
    while tasks.join_next().await.is_some() {}
}

async fn pause(shutdown: &CancellationToken, ms: u64) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
    }
}

async fn send_loop(s: Services, adapters: Arc<Adapters>, shutdown: CancellationToken) {
    let cfg = &s.config.dispatcher;
    while !shutdown.is_cancelled() {
        match s.store.claim_due().await {
            Ok(Some(claim)) => {
                let m = &claim.item.message;
                let span = tracing::info_span!("send", tenant_id = %m.tenant_id, channel_id = %m.channel_id,
                    conversation_id = %m.conversation_id, message_id = %m.message_id, outbox_id = %claim.item.id);
                if let Err(e) = deliver(cfg, &adapters, claim).instrument(span).await {
                    tracing::warn!(error = %switchboard_core::error_chain(&e), "recording a send failed; the row will be claimed again");
                }
            }
            Ok(None) => pause(&shutdown, cfg.poll_interval_ms).await,
            Err(e) => {
                tracing::warn!(error = %switchboard_core::error_chain(&e), "cannot claim from the outbox");
                pause(&shutdown, cfg.poll_interval_ms.max(1000)).await;
            }
        }
    }
}

/// Exponential backoff with full jitter, capped.
fn backoff(cfg: &DispatcherConfig, attempts: u32) -> Duration {
    let exp = cfg.backoff_base_ms.saturating_mul(1u64 << attempts.min(20));
    let capped = exp.min(cfg.backoff_max_ms).max(1);
    Duration::from_millis(rand::rng().random_range(capped / 2..=capped))
}

async fn deliver(
    cfg: &DispatcherConfig,
    adapters: &Adapters,
    claim: Claim,
) -> Result<(), StoreError> {
    if let Some(reason) = &claim.item.stale_reason {
        tracing::info!(reason = %reason, "reply superseded before it went out");
        return claim.supersede().await;
    }
    let kind = claim.item.channel_kind;
    let Some(adapter) = adapters.get(kind) else {
        return claim
            .fail(&format!("no adapter for {kind} in this process"))
            .await;
    };
    let started = std::time::Instant::now();
    let result = adapter.send(&claim.item.message).await;
    metrics::histogram!("sb_send_seconds", "channel" => kind.as_str())
        .record(started.elapsed().as_secs_f64());
    let attempts = u32::try_from(claim.item.attempts).unwrap_or(0) + 1;
    match result {
        Ok(receipt) => {
            metrics::counter!("sb_sent_total", "channel" => kind.as_str(), "result" => "sent")
                .increment(1);
            tracing::info!("sent");
            claim.sent(receipt.external_id.as_deref()).await
        }
        Err(SendError::Retryable {
            reason,
            retry_after,
        }) => {
            let give_up = attempts >= cfg.max_attempts;
            let after = retry_after.unwrap_or_else(|| backoff(cfg, attempts));
            metrics::counter!("sb_sent_total", "channel" => kind.as_str(),
                "result" => if give_up { "dead" } else { "retry" })
            .increment(1);
            tracing::warn!(reason = %reason, attempts, give_up, "send failed");
            claim.retry(&reason, after, give_up).await
        }
        Err(SendError::Permanent { reason }) => {
            metrics::counter!("sb_sent_total", "channel" => kind.as_str(), "result" => "failed")
                .increment(1);
            tracing::warn!(reason = %reason, "send failed permanently");
            claim.fail(&reason).await
        }
    }
}

/// Shows the typing indicator while a reply's human delay runs, renewed at each
/// channel's own cadence. Replies are found at the poll interval, so the indicator starts
/// as soon as a reply is scheduled.
async fn typing_loop(s: Services, adapters: Arc<Adapters>, shutdown: CancellationToken) {
    let mut last: HashMap<Uuid, Instant> = HashMap::new();
    while !shutdown.is_cancelled() {
        match s.store.waiting_replies(100).await {
            Ok(waiting) => {
                let now = Instant::now();
                last.retain(|id, _| waiting.iter().any(|w| w.0 == *id));
                for (id, kind, message) in waiting {
                    let Some(adapter) = adapters.get(kind) else {
                        continue;
                    };
                    let Some(every) = adapter.typing_interval() else {
                        continue;
                    };
                    if last
                        .get(&id)
                        .is_some_and(|t| now.duration_since(*t) < every)
                    {
                        continue;
                    }
                    last.insert(id, now);
                    if let Err(e) = adapter.typing(&message).await {
                        tracing::debug!(error = %switchboard_core::error_chain(&e), "typing indicator skipped");
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %switchboard_core::error_chain(&e), "typing loop cannot read the outbox")
            }
        }
        pause(&shutdown, s.config.dispatcher.poll_interval_ms).await;
    }
}
