use serde_json::json;
use switchboard_core::{ConversationStatus, LiveFeed, Mode};
use switchboard_engine::{
    ChannelState, ConversationState, Decision, DecisionInput, DecisionOutcome, DraftSignals,
    decide, may_speak,
};
use switchboard_store::{NewSuggestion, RedisLiveFeed, Store, StoreError, TenantSettings};
use uuid::Uuid;

use switchboard_runtime::Services;

/// Drafts a reply to `text` and decides on it, without storing or sending anything.
/// The AI worker and `switchboard explain` share it, so what an admin sees explained is
/// what the worker would do.
pub async fn evaluate(
    store: &Store,
    tenant_id: Uuid,
    settings: &TenantSettings,
    text: &str,
    conversation: ConversationState,
) -> Result<(DraftSignals, DecisionOutcome), StoreError> {
    let sources = if settings.flags.rag_enabled {
        store.search_knowledge(tenant_id, text, 3).await?
    } else {
        vec![]
    };
    let draft = switchboard_ai::respond(text, &sources);
    let outcome = decide(&DecisionInput {
        customer_text: text,
        draft: &draft,
        settings: &settings.decision,
        flags: &settings.flags,
        policies: &settings.policies,
        conversation,
        channel: ChannelState {
            free_form_window_open: true,
        },
    });
    Ok((draft, outcome))
}

/// A fresh conversation in the tenant's default mode, as `explain` assumes.
pub fn new_conversation(settings: &TenantSettings) -> ConversationState {
    ConversationState {
        mode: settings.default_mode,
        status: ConversationStatus::Active,
        operator_takeover_active: false,
        consent_revoked: false,
    }
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
    let state = ConversationState {
        mode: tx.mode,
        status: tx.status,
        operator_takeover_active: tx.operator_takeover_active,
        consent_revoked: tx.consent_revoked,
    };
    if let Err(silence) = may_speak(&state) {
        tracing::info!(reason = ?silence, "the bot stays silent");
        return Ok(());
    }
    let burst = tx.burst().await?;
    if burst.newest() != Some(newest) || tx.has_suggestion_for(newest).await? {
        return Ok(());
    }
    let text = burst.text();
    let (draft, outcome) = evaluate(&s.store, tenant_id, settings, &text, state).await?;
    let suggestion_id = tx
        .insert_suggestion(NewSuggestion {
            based_on_message_id: newest,
            provider: switchboard_ai::OFFLINE_PROVIDER,
            draft: &draft,
            outcome: &outcome,
        })
        .await?;
    metrics::counter!("sb_decisions_total", "decision" => outcome.decision.as_str()).increment(1);
    tracing::info!(decision = outcome.decision.as_str(), confidence = outcome.confidence, %suggestion_id, "drafted");
    let mut escalated = false;
    match outcome.decision {
        Decision::AutoSend => {
            tx.enqueue(
                Some(suggestion_id),
                &format!("reply:{newest}"),
                newest,
                &draft.reply,
                0,
            )
            .await?;
        }
        Decision::Escalate => {
            let reason = outcome.explanations.last().cloned().unwrap_or_default();
            let summary = summary(&text, &draft, state.mode);
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
            escalated = true;
        }
        Decision::NeedApproval => {}
    }
    tx.commit().await?;
    if escalated || outcome.decision == Decision::NeedApproval {
        let event = json!({"type": if escalated { "escalation" } else { "suggestion" },
                           "conversation_id": conversation_id, "suggestion_id": suggestion_id});
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
fn summary(text: &str, draft: &DraftSignals, mode: Mode) -> String {
    let mut excerpt: String = text.chars().take(280).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    format!(
        "Customer wrote: \"{excerpt}\". Detected intent: {} ({:.2}). Conversation mode: {mode}.",
        draft.intent, draft.intent_score
    )
}
