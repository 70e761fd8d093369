//! Accepting inbound events: claim each on the Redis fast path, publish with a confirm, and
//! only then answer 2xx. Events of one request are published concurrently, so a batch costs
//! about one confirm round trip, not one per event.

use futures::future::join_all;
use switchboard_core::envelope::INBOUND_MESSAGE;
use switchboard_core::{Envelope, InboundEvent, error_chain};
use switchboard_store::DedupClaim;
use tracing::Instrument;

use crate::{ApiError, AppState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    /// Seen and queued before: answered 2xx without a new job.
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
pub async fn accept(s: &AppState, events: &[InboundEvent]) -> Result<Vec<Accepted>, ApiError> {
    let results = join_all(events.iter().map(|ev| accept_one(s, ev))).await;
    results.into_iter().collect()
}

async fn accept_one(s: &AppState, ev: &InboundEvent) -> Result<Accepted, ApiError> {
    let channel = ev.channel_kind.as_str();
    let span = tracing::info_span!("ingress", tenant_id = %ev.tenant_id, channel_id = %ev.channel_id,
        provider_event_id = %ev.provider_event_id, kind = ev.body.kind());
    async move {
        // Redis is only the fast path; if it is down the worker's receipt still dedups.
        match s.dedup.claim(ev.channel_id, &ev.provider_event_id).await {
            Ok(DedupClaim::Queued) => {
                count(channel, "duplicate");
                return Ok(Accepted::Duplicate);
            }
            Ok(DedupClaim::InFlight) => {
                count(channel, "in_flight");
                return Err(ApiError::Conflict("this message is being accepted right now; retry".into()));
            }
            Ok(DedupClaim::Claimed) => {}
            Err(e) => tracing::warn!(error = %error_chain(&e), "dedup fast path unavailable"),
        }
        let env = Envelope::new(INBOUND_MESSAGE, ev.tenant_id, ev.channel_id, ev);
        let body = serde_json::to_vec(&env).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        match s.services.publisher.publish(switchboard_bus::INBOUND, &body).await {
            Ok(()) => {
                // Awaited, not spawned: a platform's immediate retry must find "queued",
                // not "in flight" (which would answer 409).
                if let Err(e) = s.dedup.confirm(ev.channel_id, &ev.provider_event_id).await {
                    tracing::warn!(error = %error_chain(&e), "dedup confirm failed; a retry will be deduplicated by the worker");
                }
                count(channel, "queued");
                tracing::debug!(trace_id = %env.trace_id, "queued");
                Ok(Accepted::Queued)
            }
            Err(e) => {
                let _ = s.dedup.release(ev.channel_id, &ev.provider_event_id).await;
                count(channel, "unavailable");
                tracing::warn!(error = %error_chain(&e), "publish failed");
                Err(ApiError::Unavailable("the message broker is unavailable; retry".into()))
            }
        }
    }
    .instrument(span)
    .await
}
