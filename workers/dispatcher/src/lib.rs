//! Sends what the outbox says is due, through the channel's adapter, and records the
//! outcome. Rows are leased (claimed with FOR UPDATE SKIP LOCKED and committed) before the
//! platform is called, at most one per conversation at a time, so any number of dispatchers
//! share the work, no transaction stays open across the network, and a row goes out twice
//! only if its dispatcher dies (or loses its lease) between the platform's acceptance and the
//! record.

mod adapters;
mod limits;
mod operators;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use switchboard_core::{OutboundMessage, SendError, error_chain};
use switchboard_runtime::{DispatcherConfig, Services};
use switchboard_store::{Claim, StoreError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::adapters::Adapters;
use crate::limits::Limits;

/// Waits longer than this are not slept through holding a row: the row is put back.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(3);
/// The longest one platform call may take; a call still running then is a retryable
/// failure, so a hung platform cannot outlive the lease.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(s: Services, shutdown: CancellationToken) {
    let adapters = Arc::new(Adapters::new(&s));
    let limits = Arc::new(Limits::new(switchboard_store::SharedRateLimiter::new(
        s.redis.clone(),
    )));
    let mut tasks = JoinSet::new();
    tasks.spawn(send_loop(
        s.clone(),
        adapters.clone(),
        limits.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(operators::notify_loop(
        s.clone(),
        adapters.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(operators::sweep_loop(s.clone(), shutdown.clone()));
    tasks.spawn(typing_loop(s.clone(), adapters, shutdown));
    while tasks.join_next().await.is_some() {}
}

pub(crate) async fn pause(shutdown: &CancellationToken, ms: u64) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
    }
}

/// The shortest sleep between claims while rows are due but locked by another dispatcher's
/// claim.
const MIN_IDLE: Duration = Duration::from_millis(5);

/// Claims due rows, as many at once as there are free send slots, and sends them. With
/// nothing due it sleeps until the next row falls due (at most the poll interval, so rows
/// queued meanwhile are seen), which keeps a reply's human delay to the millisecond.
async fn send_loop(
    s: Services,
    adapters: Arc<Adapters>,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
) {
    let poll = Duration::from_millis(s.config.dispatcher.poll_interval_ms.max(1));
    let hold = Duration::from_millis(s.config.dispatcher.lease_ms.max(100));
    let slots = Arc::new(Semaphore::new(s.config.dispatcher.concurrency.max(1)));
    // A send's slot is a permit it holds until it ends, however it ends.
    let mut sending = JoinSet::new();
    while !shutdown.is_cancelled() {
        reap(&mut sending);
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                done = sending.join_next() => {
                    if let Some(Err(e)) = done {
                        tracing::error!(error = %e, "a send task failed");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        // A lease of its own for every claim: a row whose lease ran out under a send that
        // still runs, claimed again here, must not pass for the first send's.
        let idle = match s.store.claim_due(Uuid::now_v7(), hold, free).await {
            Ok(claims) if !claims.is_empty() => {
                for claim in claims {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        // Cannot happen (no more rows were claimed than slots were free); the
                        // row's lease runs out and it is claimed again.
                        continue;
                    };
                    let (s, adapters, limits) = (s.clone(), adapters.clone(), limits.clone());
                    let m = &claim.item.message;
                    let span = tracing::info_span!("send", tenant_id = %m.tenant_id, channel_id = %m.channel_id,
                        conversation_id = %m.conversation_id, message_id = %m.message_id, outbox_id = %claim.item.id);
                    sending.spawn(
                        async move {
                            let _permit = permit;
                            if let Err(e) = deliver(&s, &adapters, &limits, claim, hold).await {
                                tracing::warn!(error = %error_chain(&e), "recording a send failed; the row will be claimed again");
                            }
                        }
                        .instrument(span),
                    );
                }
                continue;
            }
            Ok(_) => match s.store.next_send_due().await {
                Ok(Some(next)) => next.max(MIN_IDLE).min(poll),
                Ok(None) => poll,
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "cannot read when the next send is due");
                    poll
                }
            },
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot claim from the outbox");
                poll.max(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
    // Sends under way finish: each holds its row's lease, and a send cut off halfway would
    // only be retried by another dispatcher after the lease runs out.
    while let Some(done) = sending.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "a send task failed");
        }
    }
}

/// Collects the send tasks that ended, logging any that panicked.
fn reap(sending: &mut JoinSet<()>) {
    while let Some(done) = sending.try_join_next() {
        if let Err(e) = done {
            tracing::error!(error = %e, "a send task failed");
        }
    }
}

/// Exponential backoff with full jitter, capped.
pub(crate) fn backoff(cfg: &DispatcherConfig, attempts: u32) -> Duration {
    let exp = cfg.backoff_base_ms.saturating_mul(1u64 << attempts.min(20));
    let capped = exp.min(cfg.backoff_max_ms).max(1);
    Duration::from_millis(rand::rng().random_range(capped / 2..=capped))
}

/// How sending the parts of a reply ended.
enum Parts {
    /// The rate limits ask for a wait longer than a row is held for.
    Defer(Duration),
    /// Every part went out, or one failed; and the first part's platform id.
    Done(Result<(), SendError>, Option<String>),
    /// The customer opted out after the first `sent` parts went out: the rest stays
    /// unsent.
    OptedOut {
        sent: usize,
        first_id: Option<String>,
    },
    /// The lease ran out under this dispatcher (a database away longer than it): another
    /// dispatcher has the row, and sends and records the rest.
    Lost,
}

/// Sends the parts not yet sent, each within the rate limits and the send timeout,
/// recording each part but the last as it goes out.
async fn send_parts(
    claim: &Claim,
    built: &adapters::Built,
    limits: &Limits,
    parts: &[String],
    lost: &AtomicBool,
) -> Result<Parts, StoreError> {
    let kind = claim.item.channel.kind.as_str();
    let mut first_id = claim.item.first_external_id.clone();
    for (i, text) in parts.iter().enumerate().skip(claim.item.parts_sent) {
        let part = part_of(&claim.item.message, text, i, parts.len());
        let wait = limits
            .acquire(claim.item.channel.id, &built.adapter.rate_limits(&part))
            .await?;
        if wait > MAX_INLINE_WAIT {
            return Ok(Parts::Defer(wait));
        }
        tokio::time::sleep(wait).await;
        // Right before each part: the row must still be ours, and a STOP that came
        // meanwhile (while earlier parts went out, or during the wait) ends the reply.
        if lost.load(Ordering::Relaxed) {
            return Ok(Parts::Lost);
        }
        if claim.opted_out().await? {
            return Ok(Parts::OptedOut { sent: i, first_id });
        }
        let started = Instant::now();
        let sent = match tokio::time::timeout(SEND_TIMEOUT, built.adapter.send(&part)).await {
            Ok(sent) => sent,
            Err(_) => Err(SendError::Retryable {
                reason: format!("the platform did not answer within {SEND_TIMEOUT:?}"),
                retry_after: None,
            }),
        };
        metrics::histogram!("sb_send_seconds", "channel" => kind)
            .record(started.elapsed().as_secs_f64());
        match sent {
            Ok(receipt) => {
                // The part went out: a pause that cannot be recorded must not make it go
                // again, so its failure is only logged.
                if let Some(pause) = &receipt.pause
                    && let Err(e) = limits.pause(claim.item.channel.id, pause).await
                {
                    tracing::warn!(error = %error_chain(&e), "the platform's pause was not shared");
                }
                first_id = first_id.or(receipt.external_id);
                if i + 1 < parts.len() {
                    claim.part_sent(i + 1, first_id.as_deref()).await?;
                }
            }
            // The platform's limit is spent: every dispatcher waits it out, and this row
            // goes again after it, resuming after the parts that went out. Not a failed
            // attempt, and no retry sooner than the platform said.
            Err(SendError::RateLimited { pause }) => {
                tracing::info!(scope = %pause.scope, wait_ms = pause.wait.as_millis() as u64, "rate limited by the platform");
                metrics::counter!("sb_sent_total", "channel" => kind, "result" => "rate_limited")
                    .increment(1);
                limits.pause(claim.item.channel.id, &pause).await?;
                return Ok(Parts::Defer(pause.wait));
            }
            Err(e) => return Ok(Parts::Done(Err(e), first_id)),
        }
    }
    Ok(Parts::Done(Ok(()), first_id))
}

async fn deliver(
    s: &Services,
    adapters: &Adapters,
    limits: &Limits,
    claim: Claim,
    hold: Duration,
) -> Result<(), StoreError> {
    let _working = s.activity.begin();
    let cfg = &s.config.dispatcher;
    if let Some(reason) = &claim.item.stale_reason
        && claim.item.parts_sent == 0
    {
        tracing::info!(reason = %reason, "reply superseded before it went out");
        return claim.supersede().await;
    }
    let kind = claim.item.channel.kind.as_str();
    let built = match adapters.get(&claim.item.channel) {
        Ok(b) => b,
        Err(reason) => return claim.fail(&reason).await,
    };
    // A reply over the platform's limit goes out in parts, each a send of its own within
    // the rate limits; a retry resumes after the last part that went out.
    let parts = match built.adapter.max_text() {
        Some(max) => switchboard_channels::split_message(&claim.item.message.text, max),
        None => vec![claim.item.message.text.clone()],
    };
    if let Some(reason) = claim.item.stale_reason.clone() {
        // Stale after some parts went out (the customer opted out between attempts): the
        // transcript records the parts received.
        tracing::info!(reason = %reason, parts_sent = claim.item.parts_sent, "the rest of a reply is not sent");
        return stop_at(claim, &parts, (0, None)).await;
    }
    // The lease is short, so that the sends of a dispatcher that died are taken over
    // soon; a task of its own renews it while this one sends, however long the platform
    // takes, and says when it was lost.
    let lost = Arc::new(AtomicBool::new(false));
    let keeper = {
        let (lease, lost) = (claim.lease_keeper(), lost.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(hold / 3).await;
                match lease.renew().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            "the send's lease was lost; the rest is left to its new holder"
                        );
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "renewing the send's lease failed")
                    }
                }
            }
        })
    };
    let ended = send_parts(&claim, &built, limits, &parts, &lost).await;
    keeper.abort();
    let (result, first_id) = match ended? {
        Parts::Defer(wait) => return claim.defer(wait).await,
        Parts::Done(result, first_id) => (result, first_id),
        Parts::Lost => return Ok(()),
        Parts::OptedOut { sent, first_id } => {
            tracing::info!(
                parts_sent = sent,
                parts = parts.len(),
                "the customer opted out mid-reply; the rest is not sent"
            );
            return stop_at(claim, &parts, (sent, first_id)).await;
        }
    };
    let attempts = u32::try_from(claim.item.attempts).unwrap_or(0) + 1;
    let count = |result: &'static str| {
        metrics::counter!("sb_sent_total", "channel" => kind, "result" => result).increment(1)
    };
    match result {
        Ok(()) => {
            count("sent");
            tracing::info!(parts = parts.len(), "sent");
            let m = claim.item.message.clone();
            if !claim.sent(first_id.as_deref()).await? {
                return Ok(());
            }
            operators::announce(
                s,
                m.tenant_id,
                serde_json::json!({"type": "sent", "conversation_id": m.conversation_id, "message_id": m.message_id}),
            )
            .await;
            Ok(())
        }
        Err(SendError::Retryable {
            reason,
            retry_after,
        }) => {
            let give_up = attempts >= cfg.max_attempts;
            let after = retry_after.unwrap_or_else(|| backoff(cfg, attempts));
            count(if give_up { "dead" } else { "retry" });
            tracing::warn!(reason = %reason, attempts, give_up, retry_after_ms = after.as_millis() as u64, "send failed");
            claim.retry(&reason, after, give_up).await
        }
        // `send_parts` defers a rate-limited row itself; this arm only keeps the match whole.
        Err(SendError::RateLimited { pause }) => claim.defer(pause.wait).await,
        Err(SendError::Permanent { reason }) => {
            count("failed");
            tracing::warn!(reason = %reason, "send failed permanently");
            claim.fail(&reason).await
        }
        Err(SendError::Unreachable { reason }) => {
            count("unreachable");
            tracing::warn!(reason = %reason, "the customer is unreachable");
            claim.unreachable(&reason).await
        }
        Err(SendError::Moved { recipient }) => {
            tracing::info!("the chat moved; sending again to its new id");
            claim.moved(&recipient).await
        }
        Err(SendError::WindowClosed { reason }) => {
            count("window_closed");
            tracing::warn!(reason = %reason, "the 24-hour window is closed");
            let message = claim.item.message.clone();
            claim.window_closed(&reason).await?;
            if let Some((wa, Some(t))) = &built.whatsapp {
                match wa
                    .send_template(&message.recipient, &t.name, &t.language)
                    .await
                {
                    Ok(r) => {
                        let note = format!("re-engagement template {} sent", t.name);
                        s.store
                            .record_sent(&message, "system", &note, r.external_id.as_deref())
                            .await?;
                    }
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "re-engagement template failed")
                    }
                }
            }
            Ok(())
        }
    }
}

/// Ends a reply that must not go on: superseded when nothing of it went out, else recorded
/// as what the customer received (the parts sent).
async fn stop_at(
    mut claim: Claim,
    parts: &[String],
    (sent, first_id): (usize, Option<String>),
) -> Result<(), StoreError> {
    let sent = sent.max(claim.item.parts_sent).min(parts.len());
    if sent == 0 {
        claim
            .item
            .stale_reason
            .get_or_insert_with(|| "the customer revoked consent".into());
        return claim.supersede().await;
    }
    let first_id = first_id.or_else(|| claim.item.first_external_id.clone());
    claim
        .sent_as(&parts[..sent].join(" "), first_id.as_deref())
        .await
        .map(|_| ())
}

/// Part `i` of `total` of a reply: only the first answers the customer's message, and only
/// the last carries the offered choices.
fn part_of(message: &OutboundMessage, text: &str, i: usize, total: usize) -> OutboundMessage {
    OutboundMessage {
        text: text.to_owned(),
        part: u32::try_from(i).unwrap_or(u32::MAX),
        reply_to_external_id: message.reply_to_external_id.clone().filter(|_| i == 0),
        choices: if i + 1 == total {
            message.choices.clone()
        } else {
            Vec::new()
        },
        ..message.clone()
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
                last.retain(|id, _| waiting.iter().any(|w| w.id == *id));
                for item in waiting {
                    let Ok(built) = adapters.get(&item.channel) else {
                        continue;
                    };
                    let Some(every) = built.adapter.typing_interval() else {
                        continue;
                    };
                    if last
                        .get(&item.id)
                        .is_some_and(|t| now.duration_since(*t) < every)
                    {
                        continue;
                    }
                    last.insert(item.id, now);
                    if let Err(e) = built.adapter.typing(&item.message).await {
                        tracing::debug!(error = %error_chain(&e), "typing indicator skipped");
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %error_chain(&e), "typing loop cannot read the outbox")
            }
        }
        pause(&shutdown, s.config.dispatcher.poll_interval_ms).await;
    }
}
