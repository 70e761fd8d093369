//! Accepting inbound events: claim each in Redis, publish the new ones with a confirm, and
//! only then answer 2xx. The events of one request are handled concurrently, and the
//! publisher packs jobs that wait together into one message, so a request costs about one
//! Redis and one confirm round trip whatever it carries.

use futures::future::join_all;
use switchboard_core::envelope::INBOUND_MESSAGE;
use switchboard_core::{Envelope, InboundEvent, error_chain};
use switchboard_store::DedupClaim;
use tracing::Instrument;

use crate::{ApiError, AppState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    /// Seen before: answered 2xx without a new job (or, while the first copy is still in
    /// flight, queued again for the worker to drop).
    Duplicate,
}

fn count(channel: &'static str, result: &'static str) {
    metrics::counter!("sb_inbound_total", "channel" => channel, "result" => result).increment(1);
}

/// Counts kinds a platform sent that we deliberately do not handle.
pub fn count_ignored(channel: &str, kinds: &[String]) {
    for kind in kinds {
        metrics::counter!("sb_inbound_ignored_total", "channel" => channel.to_owned(), "kind" => kind.clone()).increment(1);
    }
}

/// Accepts every event, or fails as a whole: the platform then retries the request, and the
/// events that did get through are recognised as duplicates.
pub async fn accept(s: &AppState, events: &mut [InboundEvent]) -> Result<Vec<Accepted>, ApiError> {
    // PostgreSQL cannot store a NUL: a message carrying one would be accepted here and then
    // never stored, so it is taken out at the edge.
    for ev in events.iter_mut() {
        if ev.strip_nul() {
            tracing::debug!(provider_event_id = %ev.provider_event_id, "NUL characters removed");
        }
    }
    let _working = s.services.activity.begin();
    let results = join_all(events.iter().map(|ev| accept_one(s, ev))).await;
    results.into_iter().collect()
}

async fn accept_one(s: &AppState, ev: &InboundEvent) -> Result<Accepted, ApiError> {
    let channel = ev.channel_kind.as_str();
    let span = tracing::info_span!("ingress", tenant_id = %ev.tenant_id, channel_id = %ev.channel_id,
        provider_event_id = %ev.provider_event_id, kind = ev.body.kind());
    async move {
        // The claim comes before the publish, so that a platform's retry of a queued message
        // costs one Redis round trip and makes no new job. Redis is only the fast path: the
        // worker's receipt is the dedup truth, so without Redis every copy is queued.
        let claim = match s.dedup.claim(ev.channel_id, &ev.provider_event_id).await {
            Ok(DedupClaim::Queued) => {
                count(channel, "duplicate");
                tracing::debug!("duplicate of a queued message");
                return Ok(Accepted::Duplicate);
            }
            Ok(claim) => Some(claim),
            Err(e) => {
                tracing::debug!(error = %error_chain(&e), "dedup fast path unavailable");
                None
            }
        };
        let env = Envelope::new(INBOUND_MESSAGE, ev.tenant_id, ev.channel_id, ev);
        let body = serde_json::to_vec(&env).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let published = s
            .services
            .publisher
            .publish(switchboard_bus::INBOUND, &body)
            .await;
        match (published, claim) {
            (Ok(()), Some(DedupClaim::InFlight)) => {
                // The first copy is still on its way and may yet fail, so this one was queued
                // too; the worker drops whichever comes second.
                count(channel, "duplicate");
                tracing::debug!(trace_id = %env.trace_id, "queued beside a copy in flight");
                Ok(Accepted::Duplicate)
            }
            (Ok(()), claim) => {
                if claim.is_some() {
                    s.dedup.confirm(ev.channel_id, &ev.provider_event_id);
                }
                count(channel, "queued");
                tracing::debug!(trace_id = %env.trace_id, "queued");
                Ok(Accepted::Queued)
            }
            (Err(e), claim) => {
                if let Some(DedupClaim::Claimed) = claim {
                    // The platform's retry must be taken as new, not as a duplicate.
                    let _ = s.dedup.release(ev.channel_id, &ev.provider_event_id).await;
                }
                count(channel, "unavailable");
                tracing::warn!(error = %error_chain(&e), "publish failed");
                Err(ApiError::Unavailable(
                    "the message broker is unavailable; retry".into(),
                ))
            }
        }
    }
    .instrument(span)
    .await
}
