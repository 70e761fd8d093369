use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use switchboard_core::{ChannelKind, ConversationStatus, LiveFeed};
use switchboard_engine::{
    Case, ChannelState, ConversationState, Decision, DraftSignals, Verdict, may_speak,
};
use switchboard_runtime::Services;
use switchboard_store::{NewSuggestion, RedisLiveFeed, Store, StoreError, TenantSettings};
use uuid::Uuid;

/// What the engine needs to know about the conversation besides the draft.
#[derive(Debug, Clone, Copy)]
pub struct Situation {
    pub conversation: ConversationState,
    pub channel: ChannelKind,
    pub night_auto_reply_sent: bool,
}

impl Situation {
    /// A fresh web-chat conversation in the tenant's default mode, as `explain` assumes.
    pub fn fresh(settings: &TenantSettings) -> Self {
        Self {
            conversation: ConversationState {
                mode: settings.default_mode,
                status: ConversationStatus::Active,
                operator_takeover_active: false,
                consent_revoked: false,
            },
            channel: ChannelKind::Webchat,
            night_auto_reply_sent: false,
        }
    }
}

/// Drafts a reply to `text` and lets the engine judge it, storing and sending nothing.
/// The AI worker and `switchboard explain` share it, so what an admin sees explained is
/// what the worker would do.
pub async fn evaluate(
    store: &Store,
    tenant_id: Uuid,
    settings: &TenantSettings,
    text: &str,
    situation: Situation,
) -> Result<(DraftSignals, Verdict), StoreError> {
    let sources = if settings.flags.rag_enabled {
        store.search_knowledge(tenant_id, text, 3).await?
    } else {
        vec![]
    };
    let draft = switchboard_ai::respond(text, &sources);
    let case = Case {
        customer_text: text.to_owned(),
        draft: draft.clone(),
        settings: settings.decision.clone(),
        flags: settings.flags.clone(),
        policies: settings.policies.clone(),
        conversation: situation.conversation,
        channel: ChannelState {
            kind: situation.channel,
            free_form_window_open: true,
        },
        now: Utc::now(),
        working_hours: settings.working_hours.clone(),
        human_delay: settings.human_delay.clone(),
        night_auto_reply_sent: situation.night_auto_reply_sent,
    };
    let verdict = switchboard_engine::evaluate(&case, &mut StdRng::from_os_rng())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok((draft, verdict))
}

/// The drafting transaction for the burst that ends with `newest`. Holds the conversation's
/// row lock throughout, so at most one draft per conversation is made at a time, and does
/// nothing if that burst already has a draft.
pub async fn draft_and_decide(
    s: &Services,
    tenant_id: Uuid,
    conversation_id: Uuid,
    newest: Uuid,
    settings: &TenantSettings,
) -> Result<(), StoreError> {
    let mut tx = s.store.begin_draft(tenant_id, conversation_id).await?;
    let conversation = ConversationState {
        mode: tx.mode,
        status: tx.status,
        operator_takeover_active: tx.operator_takeover_active,
        consent_revoked: tx.consent_revoked,
    };
    if let Err(silence) = may_speak(&conversation) {
        tracing::info!(reason = ?silence, "the bot stays silent");
        return Ok(());
    }
    let burst = tx.burst().await?;
    if burst.newest() != Some(newest) || tx.has_suggestion_for(newest).await? {
        return Ok(());
    }
    let text = burst.text();
    let tonight = settings.working_hours.night_key(Utc::now()).ok();
    let situation = Situation {
        conversation,
        channel: tx.channel_kind,
        night_auto_reply_sent: tonight.is_some() && tx.night_reply_key == tonight,
    };
    let (draft, verdict) = evaluate(&s.store, tenant_id, settings, &text, situation).await?;
    let Some(decision) = verdict.decision else {
        return Ok(());
    };
    let suggestion_id = tx
        .insert_suggestion(NewSuggestion {
            based_on_message_id: newest,
            provider: switchboard_ai::OFFLINE_PROVIDER,
            draft: &draft,
            decision,
            verdict: &verdict,
        })
        .await?;
    metrics::counter!("sb_decisions_total", "decision" => decision.as_str()).increment(1);
    tracing::info!(decision = decision.as_str(), confidence = verdict.confidence, %suggestion_id, "drafted");
    match decision {
        Decision::AutoSend => {
            let delay_ms = verdict.delay.as_ref().map_or(0, |d| d.delay_ms);
            tx.enqueue(
                Some(suggestion_id),
                &format!("reply:{newest}"),
                newest,
                &draft.reply,
                delay_ms,
            )
            .await?;
        }
        Decision::Escalate => {
            let reason = verdict.explanations.last().cloned().unwrap_or_default();
            let summary = summary(&text, &draft);
            tx.escalate(suggestion_id, &reason, &summary, Some(&draft.reply))
                .await?;
            if let Some(holding) = settings
                .holding_message
                .as_deref()
                .filter(|h| !h.trim().is_empty())
            {
                tx.enqueue(None, &format!("holding:{newest}"), newest, holding, 0)
                    .await?;
            }
        }
        Decision::NeedApproval => {
            if let (Some(text), Some(night)) = (&verdict.night_auto_reply, &verdict.night_key) {
                tx.enqueue(
                    None,
                    &format!("night:{conversation_id}:{night}"),
                    newest,
                    text,
                    0,
                )
                .await?;
                tx.mark_night_reply(night).await?;
            }
        }
    }
    tx.commit().await?;
    if decision != Decision::AutoSend {
        let kind = if decision == Decision::Escalate {
            "escalation"
        } else {
            "suggestion"
        };
        let event = json!({"type": kind, "conversation_id": conversation_id, "suggestion_id": suggestion_id});
        if let Err(e) = RedisLiveFeed::new(s.redis.clone())
            .publish(&format!("operators:{tenant_id}"), &event)
            .await
        {
            tracing::warn!(error = %e, "operators were not notified live; the console still lists it");
        }
    }
    Ok(())
}

/// A short summary for the operator who picks the escalation up.
fn summary(text: &str, draft: &DraftSignals) -> String {
    let mut excerpt: String = text.chars().take(280).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    format!(
        "Customer wrote: \"{excerpt}\". Detected intent: {} ({:.2}).",
        draft.intent, draft.intent_score
    )
}
