//! A tenant's settings as one document: what admins read and write, through the admin API
//! and `switchboard settings`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::Mode;
use switchboard_core::settings::{DecisionSettings, Flags, HumanDelaySettings, Policies};
use uuid::Uuid;

use crate::crypto::{Cipher, CryptoError};
use crate::{Result, Store, StoreError};

/// Conversation handling that is not the engine's: the starting mode and the debounce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationSettings {
    pub default_mode: Mode,
    pub debounce_quiet_ms: u32,
    pub debounce_cap_ms: u32,
}

/// Every section is optional on write: the sections given replace the stored ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_delay: Option<HumanDelaySettings>,
    /// The tenant's own flag values; `null` removes one, so the global value applies again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<BTreeMap<String, Option<bool>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Policies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSettingsDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operators: Option<OperatorSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webchat: Option<WebchatSettings>,
}

/// The web-chat widget: the sites that may show it in a frame. Empty, only the gateway's
/// own pages may; the widget's page says so to browsers (`frame-ancestors`), so another
/// site cannot dress it up to trick a visitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebchatSettings {
    /// Origins such as `https://shop.example` or `https://*.shop.example`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// Whether `origin` is a scheme, host and optional port, nothing else: the form a
/// `frame-ancestors` source takes. A wildcard may stand only for the leftmost labels.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    matches!(scheme, "https" | "http")
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
        && !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// How operators are involved: how long drafts wait, how long a takeover lasts, when an
/// unhandled escalation is announced again, and the operators' Telegram chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSettings {
    pub approval_ttl_minutes: u32,
    pub takeover_minutes: u32,
    pub escalation_sla_minutes: u32,
    /// The name of the tenant's Telegram channel whose bot serves the operators' chat.
    #[serde(default)]
    pub telegram_channel: Option<String>,
    #[serde(default)]
    pub telegram_chat_id: Option<i64>,
    /// Approved drafts wait the tenant's human delay too, instead of going out at once.
    #[serde(default)]
    pub delay_approved_sends: bool,
}

/// The tenant's own LLM settings; absent fields use the global `[llm]` configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettingsDoc {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    /// Write-only: stored encrypted, read back as "***" when set.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<i32>,
    #[serde(default)]
    pub response_format: Option<String>,
}

const REDACTED: &str = "***";

/// Why settings were refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSettingsDoc(pub String);

const MAX_DEBOUNCE_MS: u32 = 60_000;

impl SettingsDoc {
    pub fn validate(&self) -> Result<(), InvalidSettingsDoc> {
        let bad = |m: String| Err(InvalidSettingsDoc(m));
        if let Some(d) = &self.decision {
            d.validate()
                .map_err(|e| InvalidSettingsDoc(e.to_string()))?;
        }
        if let Some(h) = &self.human_delay {
            h.validate()
                .map_err(|e| InvalidSettingsDoc(e.to_string()))?;
        }
        if let Some(c) = &self.conversation
            && !(c.debounce_quiet_ms <= c.debounce_cap_ms && c.debounce_cap_ms <= MAX_DEBOUNCE_MS)
        {
            return bad(format!(
                "debounce must satisfy debounce_quiet_ms <= debounce_cap_ms <= {MAX_DEBOUNCE_MS}, got {} and {}",
                c.debounce_quiet_ms, c.debounce_cap_ms
            ));
        }
        if let Some(l) = &self.llm {
            if let Some(p) = l
                .provider
                .as_deref()
                .filter(|p| !["offline", "openai"].contains(p))
            {
                return bad(format!("llm.provider must be offline or openai, not {p:?}"));
            }
            if let Some(f) = l
                .response_format
                .as_deref()
                .filter(|f| !["json_schema", "json_object"].contains(f))
            {
                return bad(format!(
                    "llm.response_format must be json_schema or json_object, not {f:?}"
                ));
            }
            if l.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
                return bad("llm.temperature must lie between 0 and 2".into());
            }
            if l.max_tokens.is_some_and(|m| m <= 0) {
                return bad("llm.max_tokens must be positive".into());
            }
        }
        if let Some(o) = &self.operators {
            for (name, v) in [
                ("approval_ttl_minutes", o.approval_ttl_minutes),
                ("takeover_minutes", o.takeover_minutes),
                ("escalation_sla_minutes", o.escalation_sla_minutes),
            ] {
                if v == 0 || v > 525_600 {
                    return bad(format!(
                        "operators.{name} must lie between 1 and 525600 minutes"
                    ));
                }
            }
            if o.telegram_channel.is_some() != o.telegram_chat_id.is_some() {
                return bad(
                    "operators.telegram_channel and operators.telegram_chat_id go together".into(),
                );
            }
        }
        if let Some(w) = &self.webchat {
            if w.allowed_origins.len() > 50 {
                return bad("webchat.allowed_origins holds at most 50 origins".into());
            }
            if let Some(o) = w.allowed_origins.iter().find(|o| !is_origin(o)) {
                return bad(format!(
                    "webchat.allowed_origins: {o:?} is not an origin such as https://shop.example"
                ));
            }
        }
        if let Some(flags) = &self.flags {
            let known = Flags::all_keys();
            if let Some(k) = flags.keys().find(|k| !known.contains(k)) {
                return bad(format!(
                    "unknown flag {k:?}; known flags: {}",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// The document as the audit log keeps it: without the API key.
fn redacted(doc: &SettingsDoc) -> SettingsDoc {
    let mut d = doc.clone();
    if let Some(l) = &mut d.llm
        && l.api_key.is_some()
    {
        l.api_key = Some(REDACTED.to_owned());
    }
    d
}

fn n(x: u64) -> i32 {
    i32::try_from(x).unwrap_or(i32::MAX)
}

impl Store {
    /// The tenant's effective settings, defaults filled in; flags are the tenant's own.
    pub async fn settings_doc(&self, tenant_id: Uuid) -> Result<SettingsDoc> {
        let s = self.tenant_settings(tenant_id).await?;
        #[derive(sqlx::FromRow)]
        struct Ops {
            approval_ttl_minutes: i32,
            takeover_minutes: i32,
            escalation_sla_minutes: i32,
            telegram_channel: Option<String>,
            operator_chat_id: Option<i64>,
            delay_approved_sends: bool,
            widget_origins: Vec<String>,
        }
        let ops: Ops = sqlx::query_as(
            "SELECT t.approval_ttl_minutes, t.takeover_minutes, t.escalation_sla_minutes,
                    ch.name AS telegram_channel, t.operator_chat_id, t.delay_approved_sends,
                    t.widget_origins
             FROM tenants t LEFT JOIN channels ch ON ch.id = t.operator_channel_id WHERE t.id = $1",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?;
        let own: Vec<(String, bool)> = sqlx::query_as(
            "SELECT key, enabled FROM feature_flags WHERE tenant_id = $1 ORDER BY key",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(SettingsDoc {
            decision: Some(s.decision),
            conversation: Some(ConversationSettings {
                default_mode: s.default_mode,
                debounce_quiet_ms: u32::try_from(s.debounce_quiet_ms).unwrap_or(u32::MAX),
                debounce_cap_ms: u32::try_from(s.debounce_cap_ms).unwrap_or(u32::MAX),
            }),
            human_delay: Some(s.human_delay),
            flags: Some(own.into_iter().map(|(k, v)| (k, Some(v))).collect()),
            policies: Some(s.policies),
            llm: Some(LlmSettingsDoc {
                provider: s.llm.provider,
                base_url: s.llm.base_url,
                api_key: s.llm.api_key.map(|_| REDACTED.to_owned()),
                model: s.llm.model,
                temperature: s.llm.temperature,
                max_tokens: s.llm.max_tokens,
                response_format: s.llm.response_format,
            }),
            operators: Some(OperatorSettings {
                approval_ttl_minutes: u32::try_from(ops.approval_ttl_minutes).unwrap_or(1),
                takeover_minutes: u32::try_from(ops.takeover_minutes).unwrap_or(1),
                escalation_sla_minutes: u32::try_from(ops.escalation_sla_minutes).unwrap_or(1),
                telegram_channel: ops.telegram_channel,
                telegram_chat_id: ops.operator_chat_id,
                delay_approved_sends: ops.delay_approved_sends,
            }),
            webchat: Some(WebchatSettings {
                allowed_origins: ops.widget_origins,
            }),
        })
    }

    /// Validates, then writes the given sections in one transaction with an audit event.
    /// An LLM API key needs `cipher`: keys are only ever stored encrypted.
    pub async fn apply_settings(
        &self,
        tenant_id: Uuid,
        doc: &SettingsDoc,
        actor: &str,
        cipher: Option<&Cipher>,
    ) -> Result<()> {
        doc.validate().map_err(|e| StoreError::Invalid(e.0))?;
        let api_key = match doc.llm.as_ref().and_then(|l| l.api_key.as_deref()) {
            // Reading a document back and writing it again keeps the stored key.
            None | Some(REDACTED) => None,
            Some("") => Some(None),
            Some(key) => {
                let cipher =
                    cipher.ok_or_else(|| StoreError::Invalid(CryptoError::NoKey.to_string()))?;
                Some(Some(cipher.encrypt(key.as_bytes())))
            }
        };
        let mut tx = self.pool.begin().await?;
        if let Some(l) = &doc.llm {
            sqlx::query(
                "INSERT INTO llm_settings (tenant_id, provider, base_url, model, temperature, max_tokens, response_format)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id) DO UPDATE SET provider = $2, base_url = $3, model = $4, temperature = $5,
                        max_tokens = $6, response_format = $7, updated_at = now()",
            )
            .bind(tenant_id)
            .bind(&l.provider)
            .bind(&l.base_url)
            .bind(&l.model)
            .bind(l.temperature)
            .bind(l.max_tokens)
            .bind(&l.response_format)
            .execute(&mut *tx)
            .await?;
            if let Some(key) = api_key {
                sqlx::query("UPDATE llm_settings SET api_key = $2 WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("INSERT INTO decision_settings (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        if let Some(d) = &doc.decision {
            sqlx::query(
                "UPDATE decision_settings SET t_auto = $2, t_escalate = $3, autosend_allowed = $4,
                        intents_autosend_allowed = $5, intents_force_handoff = $6, weights = $7,
                        penalties = $8, updated_at = now()
                 WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .bind(d.t_auto)
            .bind(d.t_escalate)
            .bind(d.autosend_allowed)
            .bind(&d.intents_autosend_allowed)
            .bind(&d.intents_force_handoff)
            .bind(sqlx::types::Json(&d.weights))
            .bind(sqlx::types::Json(&d.penalties))
            .execute(&mut *tx)
            .await?;
        }
        if let Some(c) = &doc.conversation {
            sqlx::query(
                "UPDATE decision_settings SET default_mode = $2, debounce_quiet_ms = $3, debounce_cap_ms = $4,
                        updated_at = now() WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .bind(c.default_mode.as_str())
            .bind(n(u64::from(c.debounce_quiet_ms)))
            .bind(n(u64::from(c.debounce_cap_ms)))
            .execute(&mut *tx)
            .await?;
        }
        if let Some(h) = &doc.human_delay {
            sqlx::query(
                "INSERT INTO human_delay_settings (tenant_id, enabled, profiles, short_max_chars, medium_max_chars,
                        min_delay_ms, max_delay_ms, night_mode, night_delay_multiplier, night_auto_reply_text,
                        typing_indicator_enabled)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (tenant_id) DO UPDATE SET enabled = $2, profiles = $3, short_max_chars = $4,
                        medium_max_chars = $5, min_delay_ms = $6, max_delay_ms = $7, night_mode = $8,
                        night_delay_multiplier = $9, night_auto_reply_text = $10,
                        typing_indicator_enabled = $11, updated_at = now()",
            )
            .bind(tenant_id)
            .bind(h.enabled)
            .bind(sqlx::types::Json(&h.profiles))
            .bind(n(h.short_max_chars as u64))
            .bind(n(h.medium_max_chars as u64))
            .bind(n(h.min_delay_ms))
            .bind(n(h.max_delay_ms))
            .bind(h.night_mode.as_str())
            .bind(h.night_delay_multiplier)
            .bind(&h.night_auto_reply_text)
            .bind(h.typing_indicator_enabled)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(p) = &doc.policies {
            sqlx::query(
                "INSERT INTO ai_training_policies (tenant_id, always_escalate_intents, forbidden_topics)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id) DO UPDATE SET always_escalate_intents = $2, forbidden_topics = $3,
                        updated_at = now()",
            )
            .bind(tenant_id)
            .bind(&p.always_escalate_intents)
            .bind(&p.forbidden_topics)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(o) = &doc.operators {
            let channel: Option<Uuid> = match &o.telegram_channel {
                None => None,
                Some(name) => Some(
                    sqlx::query_scalar(
                        "SELECT id FROM channels WHERE tenant_id = $1 AND kind = 'telegram' AND name = $2",
                    )
                    .bind(tenant_id)
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "operators.telegram_channel: the tenant has no Telegram channel named {name:?}"
                        ))
                    })?,
                ),
            };
            sqlx::query(
                "UPDATE tenants SET approval_ttl_minutes = $2, takeover_minutes = $3,
                        escalation_sla_minutes = $4, operator_channel_id = $5, operator_chat_id = $6,
                        delay_approved_sends = $7
                 WHERE id = $1",
            )
            .bind(tenant_id)
            .bind(n(u64::from(o.approval_ttl_minutes)))
            .bind(n(u64::from(o.takeover_minutes)))
            .bind(n(u64::from(o.escalation_sla_minutes)))
            .bind(channel)
            .bind(o.telegram_chat_id)
            .bind(o.delay_approved_sends)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(w) = &doc.webchat {
            sqlx::query("UPDATE tenants SET widget_origins = $2 WHERE id = $1")
                .bind(tenant_id)
                .bind(&w.allowed_origins)
                .execute(&mut *tx)
                .await?;
        }
        for (key, value) in doc.flags.iter().flatten() {
            set_flag(&mut tx, Some(tenant_id), key, *value).await?;
        }
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "settings.update",
            ("tenant", Some(tenant_id)),
            json!(redacted(doc)),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or with `None` removes) a flag, for one tenant or, without one, globally.
    pub async fn set_flag(
        &self,
        tenant_id: Option<Uuid>,
        key: &str,
        value: Option<bool>,
    ) -> Result<()> {
        if !Flags::all_keys().iter().any(|k| k == key) {
            return Err(StoreError::Invalid(format!("unknown flag {key:?}")));
        }
        let mut tx = self.pool.begin().await?;
        set_flag(&mut tx, tenant_id, key, value).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn set_flag(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant_id: Option<Uuid>,
    key: &str,
    value: Option<bool>,
) -> Result<()> {
    match value {
        Some(on) => {
            sqlx::query(
                "INSERT INTO feature_flags (id, tenant_id, key, enabled) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, key) DO UPDATE SET enabled = $4, updated_at = now()",
            )
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(key)
            .bind(on)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "DELETE FROM feature_flags WHERE tenant_id IS NOT DISTINCT FROM $1 AND key = $2",
            )
            .bind(tenant_id)
            .bind(key)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
