//! Drafts conversations whose quiet window is over. The inbound handler only writes when to
//! look (`pending_drafts`) and acknowledges; this loop leases what is due, a few at a time,
//! so a thousand conversations waiting out their window cost a worker nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchboard_core::error_chain;
use switchboard_runtime::Services;
use switchboard_store::{DueDraft, Quiet, StoreError, TenantSettings};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};
use uuid::Uuid;

use crate::{Settled, draft_and_decide, tell_operators};

/// The longest the loop sleeps without looking: a row another worker scheduled, or a lease
/// that ran out, is seen within this.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// A row that is due but locked by another worker's claim is looked at again after this.
const MIN_IDLE: Duration = Duration::from_millis(50);

/// Milliseconds until the conversation's burst may be drafted: the quiet window since the
/// newest message, or the cap since the first unanswered one, whichever ends first.
pub(crate) fn quiet_left(settings: &TenantSettings, q: &Quiet) -> u64 {
    let quiet_left = settings.debounce_quiet_ms.saturating_sub(q.since_newest_ms);
    let cap_left = settings
        .debounce_cap_ms
        .saturating_sub(q.since_first_unanswered_ms);
    quiet_left.min(cap_left)
}

/// A lease is short and renewed while its worker lives, however long a draft takes: a
/// worker that dies leaves its conversations to another within this, not after the
/// longest draft the LLM settings allow.
const LEASE: Duration = Duration::from_secs(30);
/// How often a live worker renews its leases; well inside `LEASE`, so a renewal that is
/// late or fails once loses nothing.
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// The conversations this worker is drafting right now: only their leases are renewed, so a
/// lease whose release failed (or whose task died) runs out like a dead worker's.
type InFlight = Arc<Mutex<HashSet<Uuid>>>;

/// Leaves `in_flight` when the draft task ends, however it ends.
struct Drafting {
    in_flight: InFlight,
    conversation_id: Uuid,
}

impl Drafting {
    fn start(in_flight: &InFlight, conversation_id: Uuid) -> Self {
        in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(conversation_id);
        Self {
            in_flight: in_flight.clone(),
            conversation_id,
        }
    }
}

impl Drop for Drafting {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.conversation_id);
    }
}

/// Keeps the leases of the conversations in flight alive until `stop`.
async fn renew_leases(s: Services, token: Uuid, in_flight: InFlight, stop: CancellationToken) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ids: Vec<Uuid> = in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if ids.is_empty() {
            continue;
        }
        if let Err(e) = s.store.renew_leases(token, &ids, LEASE).await {
            tracing::warn!(error = %error_chain(&e), "cannot renew draft leases");
        }
    }
}

pub(crate) async fn draft_loop(
    s: Services,
    wake: std::sync::Arc<Notify>,
    shutdown: CancellationToken,
) {
    let concurrency = s.config.ai_worker.draft_concurrency.max(1);
    let hold = LEASE;
    // One token for all of this worker's leases, so that stopping frees them at once and
    // one statement renews them.
    let token = Uuid::now_v7();
    let in_flight = InFlight::default();
    let renewing = CancellationToken::new();
    let renewal = tokio::spawn(renew_leases(
        s.clone(),
        token,
        in_flight.clone(),
        renewing.clone(),
    ));
    let mut drafts = JoinSet::new();
    while !shutdown.is_cancelled() {
        if drafts.len() >= concurrency {
            tokio::select! {
                _ = drafts.join_next() => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        while drafts.try_join_next().is_some() {}
        let idle = match s
            .store
            .claim_due_drafts(token, hold, concurrency - drafts.len())
            .await
        {
            Ok(due) if !due.is_empty() => {
                for d in due {
                    let s = s.clone();
                    let span = tracing::info_span!("draft", tenant_id = %d.tenant_id, channel_id = %d.channel_id,
                        conversation_id = %d.conversation_id, message_id = field::Empty, attempt = d.attempts);
                    let drafting = Drafting::start(&in_flight, d.conversation_id);
                    drafts.spawn(
                        async move {
                            let _drafting = drafting;
                            settle(&s, d).await
                        }
                        .instrument(span),
                    );
                }
                continue;
            }
            Ok(_) => match s.store.next_draft_due().await {
                Ok(next) => next.unwrap_or(MAX_IDLE).clamp(MIN_IDLE, MAX_IDLE),
                Err(_) => MAX_IDLE,
            },
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot claim due drafts");
                MAX_IDLE
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(idle) => {}
            _ = wake.notified() => {}
            _ = shutdown.cancelled() => {}
        }
    }
    // Drafts under way get the grace period; any left then are stopped (their transactions
    // roll back) and their conversations freed for another worker at once.
    let grace = Duration::from_secs(s.config.amqp.shutdown_grace_secs);
    let _ =
        tokio::time::timeout(grace, async { while drafts.join_next().await.is_some() {} }).await;
    drafts.abort_all();
    while drafts.join_next().await.is_some() {}
    renewing.cancel();
    let _ = renewal.await;
    match s.store.release_leases(token).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(conversations = n, "unfinished drafts handed back"),
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "unfinished drafts wait for their leases to run out");
        }
    }
}

/// One leased conversation: drafted if it is quiet now, put back if it is not, and handed
/// to an operator if drafting keeps failing.
async fn settle(s: &Services, d: DueDraft) {
    let max = s.config.amqp.max_attempts.max(1);
    let result = if d.attempts > max {
        give_up(s, &d).await
    } else {
        try_settle(s, &d).await
    };
    let Err(e) = result else { return };
    tracing::warn!(error = %error_chain(&e), "drafting failed; trying again");
    let delays = &s.config.amqp.retry_delays_ms;
    let step = usize::try_from(d.attempts.saturating_sub(1)).unwrap_or(usize::MAX);
    let delay = delays.get(step).or(delays.last()).copied().unwrap_or(1000);
    if let Err(e) = s
        .store
        .release_draft(&d, Duration::from_millis(delay), true)
        .await
    {
        tracing::warn!(error = %error_chain(&e), "cannot release the draft; its lease will run out");
    }
}

async fn try_settle(s: &Services, d: &DueDraft) -> Result<(), StoreError> {
    let settings = s.store.tenant_settings(d.tenant_id).await?;
    if !settings.active {
        tracing::info!("the tenant is disabled: not drafted");
        return s.store.finish_draft(d).await;
    }
    let Some(q) = s.store.quiet(d.conversation_id).await? else {
        return s.store.finish_draft(d).await;
    };
    let wait = quiet_left(&settings, &q);
    if wait > 0 {
        return s
            .store
            .release_draft(d, Duration::from_millis(wait), false)
            .await;
    }
    tracing::Span::current().record("message_id", field::display(q.newest_customer_message));
    let settled = draft_and_decide(
        s,
        d.tenant_id,
        d.conversation_id,
        q.newest_customer_message,
        &settings,
    )
    .await?;
    match settled {
        Settled::Done => s.store.finish_draft(d).await,
        // The burst changed under the draft (an edit, an older draft dealt with): the row
        // must stay, or nothing would draft the burst as it is now.
        Settled::LookAgain => s.store.release_draft(d, Duration::ZERO, false).await,
    }
}

/// Drafting failed on every attempt: `flows::give_up` hands the conversation to an
/// operator unless a draft was made after all.
async fn give_up(s: &Services, d: &DueDraft) -> Result<(), StoreError> {
    if let Some((escalation, true)) =
        switchboard_flows::give_up(&s.store, d.tenant_id, d.conversation_id).await?
    {
        metrics::counter!("sb_drafts_abandoned_total").increment(1);
        tracing::error!(%escalation, "drafting failed on every attempt: handed to an operator");
        let event = json!({"type": "escalation", "conversation_id": d.conversation_id, "escalation_id": escalation});
        tell_operators(s, d.tenant_id, &event).await;
    }
    s.store.finish_draft(d).await
}
