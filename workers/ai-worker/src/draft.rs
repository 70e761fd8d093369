use secrecy::ExposeSecret;
use serde_json::json;
use switchboard_ai::{DraftRequest, LlmConfig, OpenAiProvider, Persona, ProviderKind, Turn};
use switchboard_core::{Decision, DraftSignals, Lead};
use switchboard_engine::{Verdict, may_speak};
use switchboard_flows::{Drafted, Recorded, Situation};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use switchboard_store::{StoreError, TenantSettings};
use uuid::Uuid;

/// The tenant's LLM settings over the global ones, with the API key decrypted, and whether
/// the URL is the tenant's own (then only public addresses are called, unless the platform
/// allows private ones).
fn llm_config(s: &Services, settings: &TenantSettings) -> Result<(LlmConfig, bool), String> {
    let o = &settings.llm;
    let mut cfg = s.config.llm.clone();
    let mut own_url = false;
    if let Some(p) = &o.provider {
        cfg.provider = p.parse()?;
    }
    if let Some(v) = &o.base_url
        && v.trim_end_matches('/') != cfg.base_url.trim_end_matches('/')
    {
        cfg.base_url = v.clone();
        // The platform's key goes only to the platform's server: a tenant that points
        // drafting elsewhere brings its own key, or sends none.
        cfg.api_key = None;
        own_url = !s.config.security.allow_private_llm_urls;
        if own_url {
            switchboard_http::refuse_private(&cfg.base_url)?;
        }
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
    if let Some(v) = o.timeout_ms {
        cfg.timeout_ms = u64::try_from(v).unwrap_or(cfg.timeout_ms);
    }
    if let Some(v) = o.max_retries {
        cfg.max_retries = u32::try_from(v).unwrap_or(cfg.max_retries);
    }
    if let Some(blob) = &o.api_key {
        let cipher =
            Cipher::from_base64(&s.config.security.master_key).map_err(|e| e.to_string())?;
        let key = cipher.decrypt(blob).map_err(|e| e.to_string())?;
        cfg.api_key = Some(
            String::from_utf8(key)
                .map_err(|_| "the stored API key is not text".to_owned())?
                .into(),
        );
    }
    Ok((cfg, own_url))
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
    let _working = s.activity.begin();
    let sources = if settings.flags.rag_enabled {
        s.store.search_knowledge(tenant_id, text, 3).await?
    } else {
        vec![]
    };
    let (cfg, public_only) = match llm_config(s, settings) {
        Ok(found) => found,
        Err(e) => {
            return Ok(Drafted {
                draft: failed_draft(),
                provider: switchboard_ai::openai::PROVIDER,
                error: Some(format!("LLM settings unusable: {e}")),
                lead: Lead::default(),
            });
        }
    };
    // The customer's language when the shop answers in it, else the shop's first.
    let lang =
        switchboard_ai::reply_language(switchboard_ai::detect_language(text), &settings.languages);
    if cfg.provider == ProviderKind::Offline {
        return Ok(Drafted {
            draft: switchboard_ai::respond(text, &sources, &lang),
            provider: switchboard_ai::OFFLINE_PROVIDER,
            error: None,
            lead: Lead::default(),
        });
    }
    let persona = Persona {
        shop_name: settings.name.clone(),
        language: lang.code.clone(),
        tone: settings.tone.clone(),
        formal: settings.formal_address,
        persona: settings.persona.clone(),
    };
    let examples = s.store.similar_examples(tenant_id, text, 3).await?;
    let (http, breaker) = switchboard_ai::openai::shared(
        &cfg.base_url,
        cfg.api_key.as_ref().map(ExposeSecret::expose_secret),
        public_only,
    );
    let provider = OpenAiProvider::new(http, cfg, breaker);
    let req = DraftRequest {
        persona: &persona,
        question: text,
        history,
        sources: &sources,
        examples: &examples,
    };
    let (usage, result) = provider.draft(&req).await;
    metrics::counter!("sb_llm_tokens_total", "kind" => "prompt").increment(usage.prompt_tokens);
    metrics::counter!("sb_llm_tokens_total", "kind" => "completion")
        .increment(usage.completion_tokens);
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
            lead: said_in(d.lead, text),
        },
        Err(e) => {
            tracing::warn!(error = %switchboard_core::error_chain(&e), "drafting failed; escalating");
            Drafted {
                draft: failed_draft(),
                provider: switchboard_ai::openai::PROVIDER,
                error: Some(e.to_string()),
                lead: Lead::default(),
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
    let verdict = switchboard_flows::judge(settings, text, &drafted, situation)?;
    Ok((drafted, verdict))
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
) -> Result<Settled, StoreError> {
    let (text, history) = {
        let mut snap = s.store.snapshot_draft(tenant_id, conversation_id).await?;
        if let Err(silence) = may_speak(&Situation::of(&snap, settings).conversation) {
            tracing::info!(reason = ?silence, "the bot stays silent");
            return Ok(Settled::Done);
        }
        let burst = snap.burst().await?;
        if burst.newest() != Some(newest) || snap.has_suggestion_for(newest).await? {
            return Ok(Settled::Done);
        }
        let Some((first, _)) = burst.messages.first() else {
            return Ok(Settled::Done);
        };
        let history: Vec<Turn> = snap
            .history(*first, 10)
            .await?
            .into_iter()
            .map(|(role, text)| Turn { role, text })
            .collect();
        (burst.text(), history)
        // The snapshot's connection goes back to the pool here, before the LLM is called.
    };
    let drafted = draft(s, tenant_id, settings, &text, &history).await?;
    let recorded = switchboard_flows::record(
        &s.store,
        tenant_id,
        conversation_id,
        newest,
        &text,
        &drafted,
        settings,
    )
    .await?;
    let (decision, suggestion_id) = match recorded {
        Recorded::Stale => {
            tracing::info!("the burst changed while drafting; looking at it again");
            return Ok(Settled::LookAgain);
        }
        Recorded::Silent => {
            tracing::info!("the bot stays silent");
            return Ok(Settled::Done);
        }
        Recorded::Decided {
            decision,
            suggestion_id,
        } => (decision, suggestion_id),
    };
    metrics::counter!("sb_decisions_total", "decision" => decision.as_str()).increment(1);
    tracing::info!(decision = decision.as_str(), %suggestion_id, "drafted");
    if decision != Decision::AutoSend {
        let kind = if decision == Decision::Escalate {
            "escalation"
        } else {
            "suggestion"
        };
        let event = json!({"type": kind, "conversation_id": conversation_id, "suggestion_id": suggestion_id});
        crate::tell_operators(s, tenant_id, &event).await;
    }
    Ok(Settled::Done)
}

/// Whether a look at a conversation settled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    /// What was drafted is no longer the burst: draft again at once.
    LookAgain,
}

/// The model's reading of a lead, keeping an email address or phone number only when the
/// customer's messages contain it: the prompt also holds the history and the shop's own
/// knowledge, whose contacts are not the customer's.
fn said_in(mut lead: Lead, text: &str) -> Lead {
    let lower = text.to_lowercase();
    if lead
        .email
        .as_deref()
        .is_some_and(|e| !lower.contains(&e.to_lowercase()))
    {
        lead.email = None;
    }
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    if lead
        .phone
        .as_deref()
        .is_some_and(|p| digits(p).is_empty() || !digits(text).contains(&digits(p)))
    {
        lead.phone = None;
    }
    lead
}

#[cfg(test)]
mod tests {
    use switchboard_core::Lead;

    use super::said_in;

    #[test]
    fn only_contacts_the_customer_wrote_are_kept() {
        let lead = Lead {
            name: Some("Kim".into()),
            email: Some("support@shop.example".into()),
            phone: Some("+49 30 1234 5678".into()),
            ..Lead::default()
        };
        let kept = said_in(lead, "Kim here, call me: +49 (30) 1234-5678");
        assert_eq!(kept.email, None);
        assert_eq!(kept.phone.as_deref(), Some("+49 30 1234 5678"));
        assert_eq!(kept.name.as_deref(), Some("Kim"));
    }
}
