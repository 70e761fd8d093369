//! Consumes inbound jobs: stores the message once and schedules a look at the conversation
//! for when it has gone quiet; the draft loop then drafts one reply for the whole burst and
//! lets the decision engine choose what happens to it. Stateless: every fact it needs,
//! the schedule included, is in PostgreSQL.

mod consent;
mod draft;
mod operator_chat;
mod schedule;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_bus::{Delivery, Outcome, consume};
use switchboard_core::envelope::INBOUND_MESSAGE;
use switchboard_core::{
    ChannelKind, CustomerMessage, Envelope, InboundBody, InboundEvent, LiveFeed, error_chain,
};
use switchboard_runtime::Services;
use switchboard_store::{RedisLiveFeed, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};
use uuid::Uuid;

pub use draft::{Settled, draft_and_decide, evaluate};
pub use switchboard_flows::{Drafted, Situation};

pub async fn run(services: Services, shutdown: CancellationToken) {
    // Wakes this worker's draft loop when its own handler schedules a conversation; rows
    // scheduled by other workers are seen within the loop's idle time.
    let wake = Arc::new(Notify::new());
    let drafts = tokio::spawn(schedule::draft_loop(
        services.clone(),
        wake.clone(),
        shutdown.clone(),
    ));
    let cfg = services.config.amqp.clone();
    consume(
        cfg,
        switchboard_bus::INBOUND,
        move |d| {
            let (s, wake) = (services.clone(), wake.clone());
            async move { handle(&s, &wake, d).await }
        },
        shutdown,
    )
    .await;
    if let Err(e) = drafts.await {
        tracing::error!(error = %e, "the draft loop stopped");
    }
}

/// One delivery of the inbound queue, start to finish: acknowledged once the message is
/// stored and its conversation scheduled, never held while the conversation goes quiet.
pub async fn handle(s: &Services, wake: &Notify, d: Delivery) -> Outcome {
    let _working = s.activity.begin();
    let mut env: Envelope<InboundEvent> = match serde_json::from_slice(&d.body) {
        Ok(env) => env,
        Err(e) => return Outcome::Dead(format!("unparsable envelope: {e}")),
    };
    if env.v != Envelope::<InboundEvent>::VERSION || env.kind != INBOUND_MESSAGE {
        return Outcome::Dead(format!("unsupported envelope {} v{}", env.kind, env.v));
    }
    // The gateway strips NULs at the edge; jobs from elsewhere (the listener, a replay of
    // an older dead letter) are made storable here too.
    env.payload.strip_nul();
    let span = tracing::info_span!(
        "inbound",
        trace_id = %env.trace_id,
        tenant_id = %env.tenant_id,
        channel_id = %env.channel_id,
        conversation_id = field::Empty,
        message_id = field::Empty,
        attempt = d.attempt,
    );
    let handled = async {
        process(s, wake, &env.payload).await?;
        s.store.mark_handled(&env.payload).await
    };
    match handled.instrument(span.clone()).await {
        Ok(()) => Outcome::Ack,
        Err(e) => {
            let _g = span.enter();
            tracing::warn!(error = %error_chain(&e), "inbound handling failed");
            Outcome::Retry(error_chain(&e))
        }
    }
}

async fn process(s: &Services, wake: &Notify, ev: &InboundEvent) -> Result<(), StoreError> {
    let applied = match &ev.body {
        InboundBody::Message(msg) => return process_message(s, wake, ev, msg).await,
        InboundBody::Edit {
            external_message_id,
            text,
        } => s.store.apply_edit(ev, external_message_id, text).await?,
        InboundBody::Delete {
            external_message_id,
        } => s.store.apply_delete(ev, external_message_id).await?,
        InboundBody::Status(update) => s.store.apply_status(ev, update).await?,
        InboundBody::Reaction {
            external_message_id,
            sender,
            emoji,
        } => {
            s.store
                .apply_reaction(ev, external_message_id, sender, emoji.as_deref())
                .await?
        }
    };
    metrics::counter!("sb_inbound_stored_total", "channel" => ev.channel_kind.as_str(), "kind" => ev.body.kind())
        .increment(1);
    tracing::info!(kind = ev.body.kind(), applied, "inbound update");
    Ok(())
}

async fn process_message(
    s: &Services,
    wake: &Notify,
    ev: &InboundEvent,
    msg: &CustomerMessage,
) -> Result<(), StoreError> {
    if matches!(
        ev.channel_kind,
        ChannelKind::Telegram | ChannelKind::Discord
    ) && operator_chat::handle(s, ev, msg).await?
    {
        return Ok(());
    }
    let settings = s.store.tenant_settings(ev.tenant_id).await?;
    // A robot's mail (an auto-reply saying "stop") is no customer's opt-out.
    let robot = msg
        .metadata
        .get("email")
        .is_some_and(|e| e["no_reply"].is_string());
    let word = consent::consent_word(&msg.text, &settings.language).filter(|_| !robot);
    let stored = s.store.store_inbound(ev, msg, word).await?;
    let span = tracing::Span::current();
    span.record("conversation_id", field::display(stored.conversation_id));
    span.record("message_id", field::display(stored.message_id));
    if stored.duplicate {
        tracing::info!("redelivered message recognised");
    } else {
        metrics::counter!("sb_inbound_stored_total", "channel" => ev.channel_kind.as_str(), "kind" => "message")
            .increment(1);
        let event = json!({"type": "message", "conversation_id": stored.conversation_id, "message_id": stored.message_id});
        tell_operators(s, ev.tenant_id, &event).await;
        if ev.channel_kind == ChannelKind::Webchat {
            // Other tabs of the same visitor see the message too; losing this is harmless.
            let event = json!({"type": "message", "id": stored.message_id, "role": "customer",
                               "text": msg.text, "at": ev.received_at});
            let topic =
                switchboard_channels::webchat::topic(ev.channel_id, &msg.sender.external_id);
            if let Err(e) = RedisLiveFeed::new(s.redis.clone())
                .publish(&topic, &event)
                .await
            {
                tracing::debug!(error = %switchboard_core::error_chain(&e), "live echo skipped");
            }
        }
    }

    if let Some(email) = msg.metadata.get("email")
        && mail_needs_no_draft(s, ev, &stored, email).await?
    {
        return Ok(());
    }

    if !settings.active {
        // Stored (the platform had it already), but a disabled shop's bot stays silent
        // (a STOP is still recorded: `store_inbound` did that).
        tracing::info!("the tenant is disabled: stored, not drafted");
        return Ok(());
    }
    // Every step after storing runs again on a redelivery and is idempotent by its own key:
    // a worker that died between storing a STOP and confirming it must not answer the STOP.
    if let Some(word) = word
        && consent::apply(
            s,
            ev.tenant_id,
            stored.conversation_id,
            stored.message_id,
            word,
            &settings,
        )
        .await?
    {
        return Ok(());
    }
    // A conversation waiting for a person: the operators' chat hears what the customer
    // adds (a picked answer included), once per message.
    if let Err(e) = s
        .store
        .forward_to_operators(
            ev.tenant_id,
            stored.conversation_id,
            stored.message_id,
            &msg.text,
        )
        .await
    {
        // An extra: failing it costs the notice, never the customer's reply.
        tracing::warn!(error = %error_chain(&e), "message not forwarded to the operators' chat");
    }
    // Contact details the message gives, by pattern, whether or not the bot will speak (an
    // escalated or taken-over conversation still gets its lead). The LLM's own reading
    // follows with its draft. Idempotent: a redelivery writes the same fields again, and
    // the store refuses a customer who said STOP.
    if let Err(e) = s
        .store
        .capture_lead(
            ev.tenant_id,
            stored.conversation_id,
            &switchboard_ai::extract_lead(&msg.text),
        )
        .await
    {
        tracing::warn!(error = %error_chain(&e), "lead not captured");
    }
    // Debounce: the burst is drafted once the conversation has been quiet for the window
    // (or the cap since its first unanswered message). Redeliveries schedule again, so a
    // worker that died before this line loses nothing.
    let Some(q) = s.store.quiet(stored.conversation_id).await? else {
        return Ok(());
    };
    let wait = schedule::quiet_left(&settings, &q);
    s.store
        .schedule_draft(
            ev.tenant_id,
            stored.conversation_id,
            Duration::from_millis(wait),
        )
        .await?;
    wake.notify_one();
    Ok(())
}

/// Tells the tenant's open consoles at once. Losing this is harmless: the console lists
/// the same from PostgreSQL when it loads.
pub(crate) async fn tell_operators(s: &Services, tenant_id: Uuid, event: &serde_json::Value) {
    if let Err(e) = RedisLiveFeed::new(s.redis.clone())
        .publish(&format!("operators:{tenant_id}"), event)
        .await
    {
        tracing::warn!(error = %error_chain(&e), "live operator event skipped");
    }
}

/// Mail a robot sent (auto-replies, bounces, lists, our own) is stored and never answered,
/// so two robots cannot loop; mail too large to read whole goes to an operator.
async fn mail_needs_no_draft(
    s: &Services,
    ev: &InboundEvent,
    stored: &switchboard_store::StoredInbound,
    email: &serde_json::Value,
) -> Result<bool, StoreError> {
    if let Some(reason) = email["no_reply"].as_str() {
        metrics::counter!("sb_inbound_no_reply_total", "channel" => "email", "reason" => reason.to_owned())
            .increment(1);
        tracing::info!(reason, "automatic or bulk mail: stored, never answered");
        return Ok(true);
    }
    if email["truncated"].as_bool() != Some(true) {
        return Ok(false);
    }
    // Not only on the first delivery: a worker that died after storing the mail must not
    // leave it unescalated; the key keeps a redelivery from opening a second one.
    let (escalation, opened) = switchboard_flows::escalate_without_draft(
            &s.store,
            ev.tenant_id,
            stored.conversation_id,
            &format!("oversized:{}", stored.message_id),
            "the mail is over the size limit",
            "The mail was too large to read whole and was stored truncated; please read it in the mailbox and answer.",
        )
        .await?;
    if opened {
        tracing::info!(%escalation, "mail over the size limit: handed to an operator");
        let event = json!({"type": "escalation", "conversation_id": stored.conversation_id, "escalation_id": escalation});
        tell_operators(s, ev.tenant_id, &event).await;
    }
    Ok(true)
}
