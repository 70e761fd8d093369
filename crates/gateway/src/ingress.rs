//! Accepting inbound events: publish each with a confirm, and only then answer 2xx. The
//! Redis dedup claim runs alongside, and the events of one request are published
//! concurrently, so a request costs about one confirm round trip whatever it carries.

use futures::future::join_all;
use switchboard_core::envelope::INBOUND_MESSAGE;
use switchboard_core::{Envelope, InboundEvent, error_chain};
use switchboard_store::DedupClaim;
use tracing::Instrument;

use crate::{ApiError, AppState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    /// Seen before: answered 2xx; the copy published again is dropped by the worker.
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
/// events that did get through are recognised as duplicates by the worker.
///
/// Platforms read nothing but the status, so their webhooks skip the Redis lookup; the web
/// chat tells its client whether a message was a duplicate.
pub async fn accept(
    s: &AppState,
    events: &[InboundEvent],
    tell_duplicates: bool,
) -> Result<Vec<Accepted>, ApiError> {
    let results = join_all(events.iter().map(|ev| accept_one(s, ev, tell_duplicates))).await;
    results.into_iter().collect()
}

async fn accept_one(
    s: &AppState,
    ev: &InboundEvent,
    tell_duplicates: bool,
) -> Result<Accepted, ApiError> {
    if !tell_duplicates {
        return publish(s, ev).await.map(|()| Accepted::Queued);
    }
    let channel = ev.channel_kind.as_str();
    let span = tracing::info_span!("ingress", tenant_id = %ev.tenant_id, channel_id = %ev.channel_id,
        provider_event_id = %ev.provider_event_id, kind = ev.body.kind());
    async move {
        let env = Envelope::new(INBOUND_MESSAGE, ev.tenant_id, ev.channel_id, ev);
        let body = serde_json::to_vec(&env).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        // The dedup claim runs beside the publish, not before it, so a request costs one
        // confirm round trip. A retry of a queued message is therefore published again;
        // the worker's receipt, the dedup truth, drops it. Redis tells the caller which it was.
        let (claim, published) = tokio::join!(
            s.dedup.claim(ev.channel_id, &ev.provider_event_id),
            s.services
                .publisher
                .publish(switchboard_bus::INBOUND, &body)
        );
        match published {
            Ok(()) => {
                let duplicate = match claim {
                    Ok(DedupClaim::Claimed) => false,
                    Ok(DedupClaim::Queued | DedupClaim::InFlight) => true,
                    Err(e) => {
                        tracing::debug!(error = %error_chain(&e), "dedup fast path unavailable");
                        false
                    }
                };
                if !duplicate {
                    let (dedup, channel_id, id) =
                        (s.dedup.clone(), ev.channel_id, ev.provider_event_id.clone());
                    tokio::spawn(async move {
                        if let Err(e) = dedup.confirm(channel_id, &id).await {
                            tracing::debug!(error = %error_chain(&e), "dedup confirm skipped");
                        }
                    });
                }
                count(channel, if duplicate { "duplicate" } else { "queued" });
                tracing::debug!(trace_id = %env.trace_id, duplicate, "queued");
                Ok(if duplicate {
                    Accepted::Duplicate
                } else {
                    Accepted::Queued
                })
            }
            Err(e) => {
                if let Ok(DedupClaim::Claimed) = claim {
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

/// The confirmed publish alone.
async fn publish(s: &AppState, ev: &InboundEvent) -> Result<(), ApiError> {
    let channel = ev.channel_kind.as_str();
    let env = Envelope::new(INBOUND_MESSAGE, ev.tenant_id, ev.channel_id, ev);
    let body = serde_json::to_vec(&env).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    match s
        .services
        .publisher
        .publish(switchboard_bus::INBOUND, &body)
        .await
    {
        Ok(()) => {
            count(channel, "queued");
            tracing::debug!(tenant_id = %ev.tenant_id, channel_id = %ev.channel_id,
                provider_event_id = %ev.provider_event_id, trace_id = %env.trace_id, "queued");
            Ok(())
        }
        Err(e) => {
            count(channel, "unavailable");
            tracing::warn!(tenant_id = %ev.tenant_id, channel_id = %ev.channel_id,
                provider_event_id = %ev.provider_event_id, error = %error_chain(&e), "publish failed");
            Err(ApiError::Unavailable(
                "the message broker is unavailable; retry".into(),
            ))
        }
    }
}
