//! Operator-facing work of the dispatcher: notifications to the operators' room (Telegram or Discord),
//! the sweeps that expire drafts and announce escalations nobody handled in time, and the
//! "we are checking" message to a customer whose answer waits for approval.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_core::{LiveFeed, SendError, error_chain};
use switchboard_runtime::Services;
use switchboard_store::{NotificationClaim, RedisLiveFeed, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::adapters::Adapters;
use crate::{backoff, pause};

/// How often the sweeps run; expiry and SLAs are minutes, so this is plenty.
const SWEEP_EVERY_MS: u64 = 5_000;
/// A notice is leased for longer than posting it can take (one request, cut off at the
/// HTTP client's timeout), so a live dispatcher never loses it mid-call; a dead one's
/// notice goes again after this.
const NOTICE_LEASE: Duration = Duration::from_secs(2 * switchboard_http::REQUEST_TIMEOUT.as_secs());

pub async fn notify_loop(s: Services, adapters: Arc<Adapters>, shutdown: CancellationToken) {
    let poll = s.config.dispatcher.poll_interval_ms;
    while !shutdown.is_cancelled() {
        match s.store.claim_notification(NOTICE_LEASE).await {
            Ok(Some(claim)) => {
                let span = tracing::info_span!("notify_operators", tenant_id = %claim.tenant_id,
                    channel_id = %claim.channel.id, conversation_id = %claim.conversation_id, notification_id = %claim.id);
                if let Err(e) = notify(&s, &adapters, claim).instrument(span).await {
                    tracing::warn!(error = %error_chain(&e), "recording a notification failed");
                }
            }
            Ok(None) => pause(&shutdown, poll).await,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot claim operator notifications");
                pause(&shutdown, poll.max(1000)).await;
            }
        }
    }
}

async fn notify(
    s: &Services,
    adapters: &Adapters,
    claim: NotificationClaim,
) -> Result<(), StoreError> {
    let cfg = &s.config.dispatcher;
    let attempts = u32::try_from(claim.attempts).unwrap_or(0) + 1;
    let built = match adapters.get(&claim.channel) {
        Ok(b) => b,
        Err(reason) => return claim.retry(&reason, Duration::ZERO, true).await,
    };
    // An escalation is answered (a reply to the notice) or taken over, never approved.
    let buttons: &[(&str, &str)] = if claim.suggestion_id.is_some() && !claim.escalation {
        &[
            ("✅ Approve", "approve"),
            ("❌ Reject", "reject"),
            ("🙋 Take over", "takeover"),
        ]
    } else {
        &[("🙋 Take over", "takeover")]
    };
    let posted = match (&built.telegram, &built.discord) {
        (Some(telegram), _) => {
            telegram
                .post_with_buttons(claim.chat_id, &claim.body, buttons)
                .await
        }
        (None, Some(discord)) => discord
            // The notification's id is the nonce: a retry after a lost answer posts once.
            .post_with_buttons(
                &claim.chat_id.to_string(),
                &claim.body,
                buttons,
                &claim.id.simple().to_string()[..25],
            )
            .await
            .and_then(|id| {
                id.parse::<i64>().map_err(|_| SendError::Permanent {
                    reason: format!("Discord gave the notice the id {id:?}"),
                })
            }),
        (None, None) => {
            return claim
                .retry(
                    "the operators' room is neither a Telegram nor a Discord channel",
                    Duration::ZERO,
                    true,
                )
                .await;
        }
    };
    match posted {
        Ok(message_id) => {
            tracing::info!("operators notified");
            claim.sent(message_id).await
        }
        Err(SendError::RateLimited { pause }) => {
            claim.retry("rate limited", pause.wait, false).await
        }
        Err(SendError::Retryable {
            reason,
            retry_after,
        }) => {
            let give_up = attempts >= cfg.max_attempts;
            let after = retry_after.unwrap_or_else(|| backoff(cfg, attempts));
            tracing::warn!(reason = %reason, attempts, give_up, "operator notification failed");
            claim.retry(&reason, after, give_up).await
        }
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "operator notification failed for good");
            claim.retry(&e.to_string(), Duration::ZERO, true).await
        }
    }
}

pub async fn sweep_loop(s: Services, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        if let Err(e) = sweep(&s).await {
            tracing::warn!(error = %error_chain(&e), "operator sweep failed; trying again");
        }
        pause(&shutdown, SWEEP_EVERY_MS).await;
    }
}

/// Tells the tenant's open consoles; losing this is harmless, consoles reload.
pub async fn announce(s: &Services, tenant_id: uuid::Uuid, event: serde_json::Value) {
    if let Err(e) = RedisLiveFeed::new(s.redis.clone())
        .publish(&format!("operators:{tenant_id}"), &event)
        .await
    {
        tracing::debug!(error = %error_chain(&e), "live operator event skipped");
    }
}

async fn sweep(s: &Services) -> Result<(), StoreError> {
    for x in s.store.expire_pending_drafts().await? {
        tracing::info!(tenant_id = %x.tenant_id, conversation_id = %x.conversation_id, suggestion_id = %x.id, "draft expired");
        let event = json!({"type": "suggestion", "suggestion_id": x.id, "conversation_id": x.conversation_id, "status": "expired"});
        announce(s, x.tenant_id, event).await;
    }
    // A failure here must not hold up the escalation reminders below.
    match s.store.queue_checking_messages().await {
        Ok(queued) => {
            for x in queued {
                tracing::info!(tenant_id = %x.tenant_id, conversation_id = %x.conversation_id, outbox_id = %x.id, "a draft waits for approval: the customer is told we are checking");
            }
        }
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "checking messages not queued this round")
        }
    }
    for x in s.store.renotify_escalations().await? {
        tracing::info!(tenant_id = %x.tenant_id, conversation_id = %x.conversation_id, escalation_id = %x.id, "escalation still unhandled; operators notified again");
        let event = json!({"type": "escalation_reminder", "escalation_id": x.id, "conversation_id": x.conversation_id});
        announce(s, x.tenant_id, event).await;
    }
    Ok(())
}
