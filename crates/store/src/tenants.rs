use chrono::NaiveTime;
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

    pub async fn tenant_settings(&self, tenant_id: Uuid) -> Result<TenantSettings> {
        type Row = (
            f64,
            f64,
            bool,
            Vec<String>,
            Vec<String>,
            sqlx::types::Json<Weights>,
            sqlx::types::Json<PenaltyValues>,
            String,
            i32,
            i32,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT t_auto, t_escalate, autosend_allowed, intents_autosend_allowed,
                    intents_force_handoff, weights, penalties, default_mode,
                    debounce_quiet_ms, debounce_cap_ms
             FROM decision_settings WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        let (decision, default_mode, debounce_quiet_ms, debounce_cap_ms) = match row {
            Some((t_auto, t_escalate, allowed, intents, handoff, w, p, mode, quiet, cap)) => (
                DecisionSettings {
                    t_auto,
                    t_escalate,
                    autosend_allowed: allowed,
                    intents_autosend_allowed: intents,
                    intents_force_handoff: handoff,
                    weights: w.0,
                    penalties: p.0,
                },
                mode.parse().map_err(|e: switchboard_core::UnknownValue| {
                    StoreError::Corrupt(e.to_string())
                })?,
                u64::try_from(quiet).unwrap_or(0),
                u64::try_from(cap).unwrap_or(0),
            ),
            None => (DecisionSettings::default(), Mode::SemiAuto, 1500, 8000),
        };

        let policies: Option<(Vec<String>, Vec<String>)> = sqlx::query_as(
            "SELECT always_escalate_intents, forbidden_topics FROM ai_training_policies
             WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        let policies = policies
            .map(|(a, f)| Policies {
                always_escalate_intents: a,
                forbidden_topics: f,
            })
            .unwrap_or_default();

        // A tenant's flag overrides the global one; unset flags keep their defaults.
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "SELECT DISTINCT ON (key) key, enabled FROM feature_flags
             WHERE tenant_id = $1 OR tenant_id IS NULL
             ORDER BY key, tenant_id NULLS LAST",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        let mut flags = Flags::default();
        for (key, on) in rows {
            // Keys from a newer version are ignored rather than fatal.
            flags.set(&key, on);
        }

        let t: TenantRow = sqlx::query_as(
            "SELECT holding_message, language, languages, timezone, working_hours_start, working_hours_end,
                    working_days, name, tone, formal_address, persona, status = 'active' AS active
             FROM tenants WHERE id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound { what: "tenant" })?;
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
        let llm: LlmOverrides = sqlx::query_as(
            "SELECT provider, base_url, api_key, model, temperature, max_tokens, response_format,
                    timeout_ms, max_retries
             FROM llm_settings WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or_default();
        let human_delay = self.human_delay_settings(tenant_id).await?;

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
            llm,
            active: t.active,
        })
    }

    async fn human_delay_settings(&self, tenant_id: Uuid) -> Result<HumanDelaySettings> {
        type Row = (
            bool,
            sqlx::types::Json<Profiles>,
            i32,
            i32,
            i32,
            i32,
            String,
            f64,
            Option<String>,
            bool,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT enabled, profiles, short_max_chars, medium_max_chars, min_delay_ms, max_delay_ms,
                    night_mode, night_delay_multiplier, night_auto_reply_text, typing_indicator_enabled
             FROM human_delay_settings WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(HumanDelaySettings::default());
        };
        let n = |x: i32| u64::try_from(x).unwrap_or(0);
        Ok(HumanDelaySettings {
            enabled: r.0,
            profiles: r.1.0,
            short_max_chars: usize::try_from(r.2).unwrap_or(0),
            medium_max_chars: usize::try_from(r.3).unwrap_or(0),
            min_delay_ms: n(r.4),
            max_delay_ms: n(r.5),
            night_mode: r
                .6
                .parse()
                .map_err(|e: switchboard_core::UnknownValue| StoreError::Corrupt(e.to_string()))?,
            night_delay_multiplier: r.7,
            night_auto_reply_text: r.8,
            typing_indicator_enabled: r.9,
        })
    }
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
