//! The drafting flow after the draft: judge it on the conversation as it stands and record
//! what the engine decided. The AI worker drafts on a snapshot with no transaction open and
//! hands the draft here; `record` locks the conversation briefly, checks that the burst is
//! still the one drafted and has no draft yet, and writes the suggestion, its send,
//! escalation or night reply, and the operators' notice, all in one commit.

use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use switchboard_core::{ChannelKind, ConversationStatus, Decision, Lead};
use switchboard_engine::{Case, ChannelState, ConversationState, DraftSignals, Verdict, may_speak};
use switchboard_store::{DraftTx, NewSuggestion, Store, StoreError, TenantSettings};
use uuid::Uuid;

/// What the engine needs to know about the conversation besides the draft.
#[derive(Debug, Clone, Copy)]
pub struct Situation {
    pub conversation: ConversationState,
    pub channel: ChannelKind,
    pub window_open: bool,
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
            window_open: true,
            night_auto_reply_sent: false,
        }
    }

    /// The conversation as a drafting view (snapshot or locked) found it.
    pub fn of<C>(tx: &DraftTx<C>, settings: &TenantSettings) -> Self {
        let tonight = settings.working_hours.night_key(Utc::now()).ok();
        Self {
            conversation: ConversationState {
                mode: tx.mode,
                status: tx.status,
                operator_takeover_active: tx.operator_takeover_active,
                consent_revoked: tx.consent_revoked,
            },
            channel: tx.channel_kind,
            window_open: tx.window_open,
            night_auto_reply_sent: tonight.is_some() && tx.night_reply_key == tonight,
        }
    }
}

/// A draft, who made it, why it failed if it did, and the contact details the customer
/// gave in the burst.
#[derive(Debug, Clone)]
pub struct Drafted {
    pub draft: DraftSignals,
    pub provider: &'static str,
    pub error: Option<String>,
    pub lead: Lead,
}

/// The engine's verdict on a draft in a situation. Pure and quick, so `record` runs it
/// again on what it finds locked.
pub fn judge(
    settings: &TenantSettings,
    text: &str,
    drafted: &Drafted,
    situation: Situation,
) -> Result<Verdict, StoreError> {
    let case = Case {
        customer_text: text.to_owned(),
        draft: drafted.draft.clone(),
        draft_error: drafted.error.clone(),
        settings: settings.decision.clone(),
        flags: settings.flags.clone(),
        policies: settings.policies.clone(),
        conversation: situation.conversation,
        channel: ChannelState {
            kind: situation.channel,
            free_form_window_open: situation.window_open,
        },
        now: Utc::now(),
        working_hours: settings.working_hours.clone(),
        human_delay: settings.human_delay.clone(),
        night_auto_reply_sent: situation.night_auto_reply_sent,
    };
    switchboard_engine::evaluate(&case, &mut StdRng::from_os_rng())
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// What `record` did with a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The burst changed while drafting (a newer message, an edit, or an older draft dealt
    /// with meanwhile) or was drafted meanwhile: nothing was written, and the conversation
    /// is to be looked at again.
    Stale,
    /// The bot may not speak in the conversation now.
    Silent,
    Decided {
        decision: Decision,
        suggestion_id: Uuid,
    },
}

/// Records the draft of the burst that ends with `newest`, whose text was `text`, then the
/// lead the burst gave (unless the burst is to be drafted again; the store refuses it after
/// a STOP).
pub async fn record(
    store: &Store,
    tenant_id: Uuid,
    conversation_id: Uuid,
    newest: Uuid,
    text: &str,
    drafted: &Drafted,
    settings: &TenantSettings,
) -> Result<Recorded, StoreError> {
    let recorded = record_draft(
        store,
        tenant_id,
        conversation_id,
        newest,
        text,
        drafted,
        settings,
    )
    .await?;
    // After the draft's commit, since the customer row comes before the conversation in
    // the lock order. A lead that fails to save costs the lead, never the reply.
    if recorded != Recorded::Stale
        && let Err(e) = store
            .capture_lead(tenant_id, conversation_id, &drafted.lead)
            .await
    {
        tracing::warn!(error = %switchboard_core::error_chain(&e), "lead not captured");
    }
    Ok(recorded)
}

async fn record_draft(
    store: &Store,
    tenant_id: Uuid,
    conversation_id: Uuid,
    newest: Uuid,
    text: &str,
    drafted: &Drafted,
    settings: &TenantSettings,
) -> Result<Recorded, StoreError> {
    let mut tx = store.begin_draft(tenant_id, conversation_id).await?;
    let burst = tx.burst().await?;
    if burst.newest() != Some(newest)
        || burst.text() != text
        || tx.has_suggestion_for(newest).await?
    {
        return Ok(Recorded::Stale);
    }
    let situation = Situation::of(&tx, settings);
    // Resolved after the customer's last message (a new one reopens it): an operator has
    // finished the conversation while the LLM was drafting.
    if may_speak(&situation.conversation).is_err()
        || matches!(
            tx.status,
            ConversationStatus::Resolved | ConversationStatus::Closed
        )
    {
        return Ok(Recorded::Silent);
    }
    let verdict = judge(settings, text, drafted, situation)?;
    let Some(decision) = verdict.decision else {
        return Ok(Recorded::Silent);
    };
    let draft = &drafted.draft;
    // What the self-check found is kept with the decision, so operators read why its
    // score is what it is (a reply not in the customer's language, a colour the
    // catalogue lacks).
    let mut explanations = verdict.explanations.clone();
    // A model writes its reasons freely: a few, each a line long, are kept.
    if !draft.self_check_reasons.is_empty() {
        let reasons: Vec<String> = draft
            .self_check_reasons
            .iter()
            .take(5)
            .map(|r| excerpt(r, 200))
            .collect();
        explanations.push(format!(
            "self-check {:.2}: {}",
            draft.self_check_score,
            reasons.join("; ")
        ));
    }
    let suggestion_id = tx
        .insert_suggestion(NewSuggestion {
            based_on_message_id: newest,
            provider: drafted.provider,
            draft,
            decision,
            confidence: verdict.confidence,
            autosend_eligible: verdict.autosend_eligible,
            autosend_block_reason: verdict.autosend_block_reason.map(|r| r.as_str()),
            penalties: serde_json::to_value(&verdict.penalties)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            explanations: &explanations,
            delay_ms: verdict.delay.as_ref().map(|p| p.delay_ms),
        })
        .await?;
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
            let summary = summary(text, draft);
            let suggested = Some(draft.reply.as_str()).filter(|r| !r.is_empty());
            if switchboard_engine::transition(tx.status, ConversationStatus::Escalated).is_err() {
                return Err(StoreError::Invalid(format!(
                    "a {} conversation cannot be escalated",
                    tx.status
                )));
            }
            let (escalation_id, opened) = tx
                .escalate(suggestion_id, &reason, &summary, suggested)
                .await?;
            let notice = format!(
                "🔴 Escalated: {reason}\n{summary}\n\nSuggested reply: {}",
                excerpt(&draft.reply, 1500)
            );
            tx.notify_operators(suggestion_id, Some(escalation_id), &notice)
                .await?;
            // A customer whose escalation is already open has had the holding message.
            if let Some(holding) = settings
                .holding_message
                .as_deref()
                .filter(|h| opened && !h.trim().is_empty())
            {
                tx.enqueue(None, &format!("holding:{newest}"), newest, holding, 0)
                    .await?;
            }
        }
        Decision::NeedApproval => {
            let why = verdict
                .autosend_block_reason
                .map(|r| r.as_str().to_owned())
                .or_else(|| verdict.explanations.last().cloned())
                .unwrap_or_default();
            let notice = format!(
                "🟡 Needs approval · confidence {:.2} · intent {} · {why}\n\nCustomer: {}\n\nDraft: {}\n\nReply to this message to answer the customer yourself.",
                verdict.confidence,
                draft.intent,
                excerpt(text, 1000),
                excerpt(&draft.reply, 1500)
            );
            tx.notify_operators(suggestion_id, None, &notice).await?;
            if let (Some(night_text), Some(night)) = (&verdict.night_auto_reply, &verdict.night_key)
            {
                tx.enqueue(
                    None,
                    &format!("night:{conversation_id}:{night}"),
                    newest,
                    night_text,
                    0,
                )
                .await?;
                tx.mark_night_reply(night).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(Recorded::Decided {
        decision,
        suggestion_id,
    })
}

/// At most `max` characters of `text`, marked when cut.
fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// A short summary for the operator who picks the escalation up.
fn summary(text: &str, draft: &DraftSignals) -> String {
    format!(
        "Customer wrote: \"{}\". Detected intent: {} ({:.2}).",
        excerpt(text, 280),
        draft.intent,
        draft.intent_score
    )
}

/// Drafting failed on every attempt: the customer still gets a person rather than
/// silence, unless a draft was made after all. The escalation carries the key of the
/// message it gives up on, so a worker that dies after opening it and the next one that
/// gives up open one. Returns the escalation and whether this call opened it, or `None`
/// when nothing is left to answer.
pub async fn give_up(
    store: &Store,
    tenant_id: Uuid,
    conversation_id: Uuid,
) -> Result<Option<(Uuid, bool)>, StoreError> {
    let Some(q) = store.quiet(conversation_id).await? else {
        return Ok(None);
    };
    if store.has_suggestion(q.newest_customer_message).await? {
        return Ok(None);
    }
    crate::escalate_without_draft(
        store,
        tenant_id,
        conversation_id,
        &format!("give-up:{}", q.newest_customer_message),
        "drafting failed on every attempt",
        "The assistant could not draft a reply to the customer's latest messages; please answer them.",
    )
    .await
    .map(Some)
}
