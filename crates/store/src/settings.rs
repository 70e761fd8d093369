//! A tenant's settings as one document: what admins read and write, through the admin API
//! and `switchboard settings`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::Mode;
use switchboard_engine::{DecisionSettings, Flags, HumanDelaySettings, Policies};
use uuid::Uuid;

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
}

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

fn n(x: u64) -> i32 {
    i32::try_from(x).unwrap_or(i32::MAX)
}

impl Store {
    /// The tenant's effective settings, defaults filled in; flags are the tenant's own.
    pub async fn settings_doc(&self, tenant_id: Uuid) -> Result<SettingsDoc> {
        let s = self.tenant_settings(tenant_id).await?;
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
        })
    }

    /// Validates, then writes the given sections in one transaction with an audit event.
    pub async fn apply_settings(
        &self,
        tenant_id: Uuid,
        doc: &SettingsDoc,
        actor: &str,
    ) -> Result<()> {
        doc.validate().map_err(|e| StoreError::Invalid(e.0))?;
        let mut tx = self.pool.begin().await?;
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
        for (key, value) in doc.flags.iter().flatten() {
            set_flag(&mut tx, Some(tenant_id), key, *value).await?;
        }
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, details)
             VALUES ($1, $2, 'admin', $3, 'settings.update', 'tenant', $2, $4)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(actor)
        .bind(json!(doc))
        .execute(&mut *tx)
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
