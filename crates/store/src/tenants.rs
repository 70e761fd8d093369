use std::collections::HashMap;

use chrono::NaiveTime;
use sqlx::types::Json;
use switchboard_core::settings::{
    DecisionSettings, Flags, HumanDelaySettings, PenaltyValues, Policies, Profiles, Weights,
    WorkingHours,
};
use switchboard_core::{ChannelKind, Mode};
use uuid::Uuid;

use crate::{Result, Store, StoreError};

#[derive(sqlx::FromRow)]
struct TenantRow {
    holding_message: Option<String>,
    language: String,
    languages: Vec<String>,
    timezone: String,
    working_hours_start: NaiveTime,
    working_hours_end: NaiveTime,
    working_days: Vec<i16>,
    name: String,
    tone: String,
    formal_address: bool,
    persona: Option<String>,
    active: bool,
}

/// A tenant together with one of its channels, as the gateway resolves a public URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantChannel {
    pub tenant_id: Uuid,
    pub channel_id: Uuid,
}

/// The chat widget's page: the shop's name in its header, its language, and the origins
/// allowed to frame it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WidgetPage {
    pub name: String,
    pub language: String,
    pub allowed_origins: Vec<String>,
    pub welcome: Option<String>,
}

/// Everything the AI worker needs from a tenant's settings, with the seed defaults filled
/// in where the tenant has no row.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    pub decision: DecisionSettings,
    pub default_mode: Mode,
    pub debounce_quiet_ms: u64,
    pub debounce_cap_ms: u64,
    pub flags: Flags,
    pub policies: Policies,
    pub holding_message: Option<String>,
    pub human_delay: HumanDelaySettings,
    pub working_hours: WorkingHours,
    /// The tenant's language (ISO 639-1): replies, opt-out words and confirmations.
    pub language: String,
    /// Every language the shop answers in, `language` first.
    pub languages: Vec<String>,
    pub name: String,
    pub tone: String,
    pub formal_address: bool,
    pub persona: Option<String>,
    pub llm: LlmOverrides,
    /// False while the platform admin has the tenant disabled: nothing is drafted.
    pub active: bool,
}

/// A tenant's own LLM settings; `None` fields fall back to the global configuration.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct LlmOverrides {
    pub provider: Option<String>,
    pub base_url: Option<String>,
    /// Encrypted; see [`crate::crypto::Cipher`].
    pub api_key: Option<Vec<u8>>,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<i32>,
    pub response_format: Option<String>,
    pub timeout_ms: Option<i32>,
    pub max_retries: Option<i32>,
}

impl Store {
    /// The active tenant with this slug and its active channel of this kind.
    pub async fn tenant_channel(
        &self,
        slug: &str,
        kind: ChannelKind,
    ) -> Result<Option<TenantChannel>> {
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT t.id, c.id FROM tenants t JOIN channels c ON c.tenant_id = t.id
             WHERE t.slug = $1 AND t.status = 'active' AND c.kind = $2 AND c.is_active
             ORDER BY c.created_at LIMIT 1",
        )
        .bind(slug)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(tenant_id, channel_id)| TenantChannel {
            tenant_id,
            channel_id,
        }))
    }

    /// What the tenant's chat widget page shows and who may frame it.
    pub async fn widget_page(&self, tenant_id: Uuid) -> Result<WidgetPage> {
        sqlx::query_as(
            "SELECT name, language, widget_origins AS allowed_origins, widget_welcome AS welcome
             FROM tenants WHERE id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound { what: "tenant" })
    }

    pub async fn tenant_id(&self, slug: &str) -> Result<Uuid> {
        sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound { what: "tenant" })
    }

    /// Everything the workers need to know about a tenant, read in one statement: it is read
    /// for every message stored and every draft, so its round trips count.
    pub async fn tenant_settings(&self, tenant_id: Uuid) -> Result<TenantSettings> {
        let row: SettingsRow = sqlx::query_as(
            "SELECT t.holding_message, t.language, t.languages, t.timezone, t.working_hours_start,
                    t.working_hours_end, t.working_days, t.name, t.tone, t.formal_address,
                    t.persona, t.status = 'active' AS active,
                    to_jsonb(d) AS decision, to_jsonb(p) AS policies, to_jsonb(h) AS human_delay,
                    (SELECT COALESCE(jsonb_object_agg(f.key, f.enabled), '{}')
                     FROM (SELECT DISTINCT ON (key) key, enabled FROM feature_flags
                           WHERE tenant_id = t.id OR tenant_id IS NULL
                           ORDER BY key, tenant_id NULLS LAST) f) AS flags,
                    l.provider, l.base_url, l.api_key, l.model, l.temperature, l.max_tokens,
                    l.response_format, l.timeout_ms, l.max_retries
             FROM tenants t
             LEFT JOIN decision_settings d ON d.tenant_id = t.id
             LEFT JOIN ai_training_policies p ON p.tenant_id = t.id
             LEFT JOIN human_delay_settings h ON h.tenant_id = t.id
             LEFT JOIN llm_settings l ON l.tenant_id = t.id
             WHERE t.id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound { what: "tenant" })?;
        let corrupt = |e: switchboard_core::UnknownValue| StoreError::Corrupt(e.to_string());
        let (decision, default_mode, debounce_quiet_ms, debounce_cap_ms) = match row.decision {
            Some(Json(d)) => (
                DecisionSettings {
                    t_auto: d.t_auto,
                    t_escalate: d.t_escalate,
                    autosend_allowed: d.autosend_allowed,
                    intents_autosend_allowed: d.intents_autosend_allowed,
                    intents_force_handoff: d.intents_force_handoff,
                    weights: d.weights,
                    penalties: d.penalties,
                },
                d.default_mode.parse().map_err(corrupt)?,
                u64::try_from(d.debounce_quiet_ms).unwrap_or(0),
                u64::try_from(d.debounce_cap_ms).unwrap_or(0),
            ),
            None => (DecisionSettings::default(), Mode::SemiAuto, 1500, 8000),
        };
        let policies = row
            .policies
            .map(|Json(p)| Policies {
                always_escalate_intents: p.always_escalate_intents,
                forbidden_topics: p.forbidden_topics,
            })
            .unwrap_or_default();
        // A tenant's flag overrides the global one; unset flags keep their defaults.
        let mut flags = Flags::default();
        for (key, on) in row.flags.0 {
            // Keys from a newer version are ignored rather than fatal.
            flags.set(&key, on);
        }
        let human_delay = match row.human_delay {
            None => HumanDelaySettings::default(),
            Some(Json(h)) => {
                let n = |x: i32| u64::try_from(x).unwrap_or(0);
                HumanDelaySettings {
                    enabled: h.enabled,
                    profiles: h.profiles,
                    short_max_chars: usize::try_from(h.short_max_chars).unwrap_or(0),
                    medium_max_chars: usize::try_from(h.medium_max_chars).unwrap_or(0),
                    min_delay_ms: n(h.min_delay_ms),
                    max_delay_ms: n(h.max_delay_ms),
                    night_mode: h.night_mode.parse().map_err(corrupt)?,
                    night_delay_multiplier: h.night_delay_multiplier,
                    night_auto_reply_text: h.night_auto_reply_text,
                    typing_indicator_enabled: h.typing_indicator_enabled,
                }
            }
        };
        let t = row.tenant;
        let working_hours = WorkingHours {
            timezone: t.timezone,
            start: t.working_hours_start,
            end: t.working_hours_end,
            days: t
                .working_days
                .into_iter()
                .filter_map(|d| u8::try_from(d).ok())
                .collect(),
        };
        Ok(TenantSettings {
            decision,
            default_mode,
            debounce_quiet_ms,
            debounce_cap_ms,
            flags,
            policies,
            holding_message: t.holding_message,
            human_delay,
            working_hours,
            languages: std::iter::once(t.language.clone())
                .chain(t.languages.into_iter().filter(|l| *l != t.language))
                .collect(),
            language: t.language,
            name: t.name,
            tone: t.tone,
            formal_address: t.formal_address,
            persona: t.persona,
            llm: row.llm,
            active: t.active,
        })
    }
}

/// `tenant_settings`' one row: the tenant's own columns, and each settings table's row
/// (absent when the tenant never wrote one) as JSON.
#[derive(sqlx::FromRow)]
struct SettingsRow {
    #[sqlx(flatten)]
    tenant: TenantRow,
    decision: Option<Json<DecisionRow>>,
    policies: Option<Json<PoliciesRow>>,
    human_delay: Option<Json<HumanDelayRow>>,
    flags: Json<HashMap<String, bool>>,
    #[sqlx(flatten)]
    llm: LlmOverrides,
}

#[derive(serde::Deserialize)]
struct DecisionRow {
    t_auto: f64,
    t_escalate: f64,
    autosend_allowed: bool,
    intents_autosend_allowed: Vec<String>,
    intents_force_handoff: Vec<String>,
    weights: Weights,
    penalties: PenaltyValues,
    default_mode: String,
    debounce_quiet_ms: i32,
    debounce_cap_ms: i32,
}

#[derive(serde::Deserialize)]
struct PoliciesRow {
    always_escalate_intents: Vec<String>,
    forbidden_topics: Vec<String>,
}

#[derive(serde::Deserialize)]
struct HumanDelayRow {
    enabled: bool,
    profiles: Profiles,
    short_max_chars: i32,
    medium_max_chars: i32,
    min_delay_ms: i32,
    max_delay_ms: i32,
    night_mode: String,
    night_delay_multiplier: f64,
    night_auto_reply_text: Option<String>,
    typing_indicator_enabled: bool,
}

impl Store {
    /// Adds one drafting's token counts to the tenant's usage of the day.
    pub async fn record_usage(
        &self,
        tenant_id: Uuid,
        provider: &str,
        tokens_in: u64,
        tokens_out: u64,
        requests: u64,
    ) -> Result<()> {
        let n = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO usage (tenant_id, day, provider, tokens_in, tokens_out, requests)
             VALUES ($1, current_date, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, day, provider) DO UPDATE SET
                 tokens_in = usage.tokens_in + EXCLUDED.tokens_in,
                 tokens_out = usage.tokens_out + EXCLUDED.tokens_out,
                 requests = usage.requests + EXCLUDED.requests",
        )
        .bind(tenant_id)
        .bind(provider)
        .bind(n(tokens_in))
        .bind(n(tokens_out))
        .bind(n(requests))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
