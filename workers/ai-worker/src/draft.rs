use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use switchboard_ai::{DraftRequest, LlmConfig, OpenAiProvider, Persona, ProviderKind, Turn};
use switchboard_core::{ChannelKind, ConversationStatus};
use switchboard_engine::{
    Case, ChannelState, ConversationState, Decision, DraftSignals, Verdict, may_speak,
};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use switchboard_store::{DraftTx, NewSuggestion, StoreError, TenantSettings};
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
}

/// A draft, who made it, and why it failed if it did.
#[derive(Debug, Clone)]
pub struct Drafted {
    pub draft: DraftSignals,
    pub provider: &'static str,
    pub error: Option<String>,
}

/// The tenant's LLM settings over the global ones, with the API key decrypted.
fn llm_config(s: &Services, settings: &TenantSettings) -> Result<LlmConfig, String> {
    let o = &settings.llm;
    let mut cfg = s.config.llm.clone();
    if let Some(p) = &o.provider {
        cfg.provider = p.parse()?;
    }
    if let Some(v) = &o.base_url {
        cfg.base_url = v.clone();
    }
    if let Some(v) = &o.model {
        cfg.model = v.clone();
    }
    if let Some(v) = o.temperature {
        cfg.temperature = v;
    }
    if let Some(v) = &o.response_format {
        cfg.response_format = v.parse()?;
    }
    if let Some(v) = o.max_tokens {
        cfg.max_tokens = u32::try_from(v).unwrap_or(cfg.max_tokens);
    }
    if let Some(blob) = &o.api_key {
        let cipher =
            Cipher::from_base64(&s.config.security.master_key).map_err(|e| e.to_string())?;
        let key = cipher.decrypt(blob).map_err(|e| e.to_string())?;
        cfg.api_key =
            Some(String::from_utf8(key).map_err(|_| "the stored API key is not text".to_owned())?);
    }
    Ok(cfg)
}

/// Drafts with the tenant's provider. A provider failure is not an error here: it comes
/// back as `Drafted::error`, which the engine turns into ESCALATE.
pub async fn draft(
    s: &Services,
    tenant_id: Uuid,
    settings: &TenantSettings,
    text: &str,
    history: &[Turn],
) -> Result<Drafted, StoreError> {
    let sources = if settings.flags.rag_enabled {
        s.store.search_knowledge(tenant_id, text, 3).await?
    } else {
        vec![]
    };
    let cfg = match llm_config(s, settings) {
        Ok(cfg) => cfg,
        Err(e) => {
            return Ok(Drafted {
                draft: failed_draft(),
                provider: switchboard_ai::openai::PROVIDER,
                error: Some(format!("LLM settings unusable: {e}")),
            });
        }
    };
    if cfg.provider == ProviderKind::Offline {
        return Ok(Drafted {
            draft: switchboard_ai::respond(text, &sources),
            provider: switchboard_ai::OFFLINE_PROVIDER,
            error: None,
        });
    }
    let persona = Persona {
        shop_name: settings.name.clone(),
        language: settings.language.clone(),
        tone: settings.tone.clone(),
        formal: settings.formal_address,
        persona: settings.persona.clone(),
    };
    let examples = s.store.similar_examples(tenant_id, text, 3).await?;
    let (http, breaker) = switchboard_ai::openai::shared(&cfg.base_url);
    let provider = OpenAiProvider::new(http, cfg, breaker);
    let req = DraftRequest {
        persona: &persona,
        question: text,
        history,
        sources: &sources,
        examples: &examples,
    };
    let (usage, result) = provider.draft(&req).await;
    if usage.requests > 0
        && let Err(e) = s
            .store
            .record_usage(
                tenant_id,
                switchboard_ai::openai::PROVIDER,
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.requests,
            )
            .await
    {
        tracing::warn!(error = %switchboard_core::error_chain(&e), "token usage not recorded");
    }
    Ok(match result {
        Ok(d) => Drafted {
            draft: d.signals,
            provider: switchboard_ai::openai::PROVIDER,
            error: None,
        },
        Err(e) => {
            tracing::warn!(error = %switchboard_core::error_chain(&e), "drafting failed; escalating");
            Drafted {
                draft: failed_draft(),
                provider: switchboard_ai::openai::PROVIDER,
                error: Some(e.to_string()),
            }
        }
    })
}

fn failed_draft() -> DraftSignals {
    DraftSignals {
        reply: String::new(),
        intent: "other".into(),
        intent_score: 0.0,
        similarity_score: 0.0,
        self_check_score: 0.0,
        self_check_need_handoff: true,
        self_check_reasons: vec![],
        used_sources: vec![],
        source_conflicts: vec![],
        missing_fields: vec![],
        choices: vec![],
    }
}

/// Drafts a reply to `text` and lets the engine judge it, storing and sending nothing.
/// The AI worker and `switchboard explain` share it, so what an admin sees explained is
/// what the worker would do.
pub async fn evaluate(
    s: &Services,
    tenant_id: Uuid,
    settings: &TenantSettings,
    text: &str,
    history: &[Turn],
    situation: Situation,
) -> Result<(Drafted, Verdict), StoreError> {
    let drafted = draft(s, tenant_id, settings, text, history).await?;
    let verdict = judge(settings, text, &drafted, situation)?;
    Ok((drafted, verdict))
}

/// The engine's verdict on a draft in the conversation as it stands. Pure and quick, so
/// the drafting transaction runs it again on what it finds locked.
fn judge(
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

/// What the engine needs to know of the conversation, as the drafting view found it.
fn situation(tx: &DraftTx, settings: &TenantSettings) -> Situation {
    let tonight = settings.working_hours.night_key(Utc::now()).ok();
    Situation {
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

/// Drafts the burst that ends with `newest`, in three steps so that no transaction, row
/// lock or connection is held while the LLM thinks: read a snapshot of the conversation,
/// draft from it with nothing open, then lock the conversation briefly, check that the
/// burst is still the one drafted (a newer message moves the schedule on, and its own draft
/// covers this one) and still has no draft, judge the draft on the conversation as it is
/// now (an operator may have taken over meanwhile), and write.
pub async fn draft_and_decide(
    s: &Services,
    tenant_id: Uuid,
    conversation_id: Uuid,
    newest: Uuid,
    settings: &TenantSettings,
) -> Result<(), StoreError> {
    let (text, history) = {
        let mut snap = s.store.snapshot_draft(tenant_id, conversation_id).await?;
        if let Err(silence) = may_speak(&situation(&snap, settings).conversation) {
            tracing::info!(reason = ?silence, "the bot stays silent");
            return Ok(());
        }
        let burst = snap.burst().await?;
        if burst.newest() != Some(newest) || snap.has_suggestion_for(newest).await? {
            return Ok(());
        }
        let Some((first, _)) = burst.messages.first() else {
            return Ok(());
        };
        let history: Vec<Turn> = snap
            .history(*first, 10)
            .await?
            .into_iter()
            .map(|(role, text)| Turn { role, text })
            .collect();
        (burst.text(), history)
        // The snapshot's read-only transaction ends here, before the LLM is called.
    };
    let drafted = draft(s, tenant_id, settings, &text, &history).await?;

    let mut tx = s.store.begin_draft(tenant_id, conversation_id).await?;
    let burst = tx.burst().await?;
    if burst.newest() != Some(newest)
        || burst.text() != text
        || tx.has_suggestion_for(newest).await?
    {
        tracing::info!("the burst changed while drafting; the newer schedule drafts it");
        return Ok(());
    }
    let situation = situation(&tx, settings);
    if let Err(silence) = may_speak(&situation.conversation) {
        tracing::info!(reason = ?silence, "the bot stays silent");
        return Ok(());
    }
    let verdict = judge(settings, &text, &drafted, situation)?;
    let Some(decision) = verdict.decision else {
        return Ok(());
    };
    let draft = &drafted.draft;
    let suggestion_id = tx
        .insert_suggestion(NewSuggestion {
            based_on_message_id: newest,
            provider: drafted.provider,
            draft,
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
            let summary = summary(&text, draft);
            let suggested = Some(draft.reply.as_str()).filter(|r| !r.is_empty());
            let escalation_id = tx
                .escalate(suggestion_id, &reason, &summary, suggested)
                .await?;
            let notice = format!(
                "🔴 Escalated: {reason}\n{summary}\n\nSuggested reply: {}",
                excerpt(&draft.reply, 1500)
            );
            tx.notify_operators(suggestion_id, Some(escalation_id), &notice)
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
            let why = verdict
                .autosend_block_reason
                .map(|r| r.as_str().to_owned())
                .or_else(|| verdict.explanations.last().cloned())
                .unwrap_or_default();
            let notice = format!(
                "🟡 Needs approval · confidence {:.2} · intent {} · {why}\n\nCustomer: {}\n\nDraft: {}\n\nReply to this message to answer the customer yourself.",
                verdict.confidence,
                draft.intent,
                excerpt(&text, 1000),
                excerpt(&draft.reply, 1500)
            );
            tx.notify_operators(suggestion_id, None, &notice).await?;
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
        crate::tell_operators(s, tenant_id, &event).await;
    }
    Ok(())
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
