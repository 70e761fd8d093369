//! A tenant's settings as one document: what admins read and write, through the admin API
//! and `switchboard settings`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::Mode;
use switchboard_core::settings::{
    DecisionSettings, Flags, HumanDelaySettings, Policies, WorkingHours,
};
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

/// A tenant's settings. Read, every section is there. Written, the document is a JSON
/// merge patch (RFC 7396) over the stored one: only the fields given change, and `null`
/// removes an optional one; with `Write::Replace`, the sections given replace the stored
/// ones whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_hours: Option<WorkingHours>,
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

/// Who the shop is, as its customers meet it: its name in the web chat, how the LLM speaks
/// for it, its language and currency, and what a customer is told while a person takes
/// over. The shop's time zone is `working_hours.timezone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSettings {
    pub name: String,
    /// Who the assistant is, in the LLM's prompt ("You are Mia, the shop's assistant…").
    #[serde(default)]
    pub persona: Option<String>,
    /// How the replies sound: friendly, formal, playful…
    pub tone: String,
    /// Formal address (Sie, vous, usted) in languages that have it.
    pub formal_address: bool,
    /// ISO 639-1 code of the replies, opt-out words and confirmations.
    pub language: String,
    /// Other languages the shop answers in (ISO 639-1): a customer who writes in one of
    /// them is answered in it, anyone else in `language`.
    #[serde(default)]
    pub languages: Vec<String>,
    /// PostgreSQL's text-search configuration for the knowledge base (`german`, `simple`).
    pub search_language: String,
    /// ISO 4217 code of the catalogue's prices.
    pub currency: String,
    /// What the customer is told when their conversation goes to a person.
    #[serde(default)]
    pub holding_message: Option<String>,
    /// Where escalations are announced besides the console (addresses, phone numbers).
    #[serde(default)]
    pub escalation_contacts: Vec<String>,
}

/// Search configurations PostgreSQL ships with.
const SEARCH_LANGUAGES: &[&str] = &[
    "simple",
    "arabic",
    "armenian",
    "basque",
    "catalan",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hindi",
    "hungarian",
    "indonesian",
    "irish",
    "italian",
    "lithuanian",
    "nepali",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "serbian",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
    "yiddish",
];

/// The web-chat widget: the sites that may show it in a frame. Empty, only the gateway's
/// own pages may; the widget's page says so to browsers (`frame-ancestors`), so another
/// site cannot dress it up to trick a visitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebchatSettings {
    /// Origins such as `https://shop.example` or `https://*.shop.example`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Shown above a visitor's empty conversation ("Hi! Ask us about…"); never stored.
    #[serde(default)]
    pub welcome_message: Option<String>,
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
/// unhandled escalation is announced again, and the operators' room: a Telegram chat or a
/// Discord channel (one of the two).
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
    /// The name of the tenant's Discord channel whose bot serves the operators' room, and
    /// the id of the Discord channel (in a server) where notices go.
    #[serde(default)]
    pub discord_channel: Option<String>,
    #[serde(default)]
    pub discord_room: Option<String>,
    /// Approved drafts wait the tenant's human delay too, instead of going out at once.
    #[serde(default)]
    pub delay_approved_sends: bool,
    /// A customer whose answer waits for approval this long is told `checking_message`
    /// (0: never). Defaulted, so a section written before these existed still reads.
    #[serde(default = "default_checking_after")]
    pub checking_after_minutes: u32,
    #[serde(default = "default_checking_message")]
    pub checking_message: String,
}

fn default_checking_after() -> u32 {
    10
}

fn default_checking_message() -> String {
    "Thanks for your patience: we are checking this for you and will answer shortly.".into()
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
    /// How long one call may take, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    /// Retries after a failed call (a timeout, a 429 or a 5xx).
    #[serde(default)]
    pub max_retries: Option<u32>,
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
        if let Some(p) = &self.profile {
            p.validate()?;
        }
        if let Some(w) = &self.working_hours {
            crate::shops::check_timezone(&w.timezone)
                .map_err(|e| InvalidSettingsDoc(format!("working_hours.{e}")))?;
            let mut days = w.days.clone();
            days.sort_unstable();
            days.dedup();
            if days.is_empty()
                || days.len() != w.days.len()
                || days.iter().any(|d| !(1..=7).contains(d))
            {
                return bad(
                    "working_hours.days must list distinct ISO weekdays, 1 (Monday) to 7 (Sunday)"
                        .into(),
                );
            }
            if w.start == w.end {
                return bad("working_hours.start and working_hours.end must differ".into());
            }
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
            if l.timeout_ms.is_some_and(|t| !(1000..=600_000).contains(&t)) {
                return bad("llm.timeout_ms must lie between 1000 and 600000".into());
            }
            if l.max_retries.is_some_and(|r| r > 10) {
                return bad("llm.max_retries must be at most 10".into());
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
            if o.checking_after_minutes > 525_600 {
                return bad(
                    "operators.checking_after_minutes must lie between 0 (never) and 525600".into(),
                );
            }
            let chars = o.checking_message.trim().chars().count();
            if chars == 0 || chars > 1000 {
                return bad("operators.checking_message must be 1-1000 characters".into());
            }
            if o.telegram_channel.is_some() != o.telegram_chat_id.is_some() {
                return bad(
                    "operators.telegram_channel and operators.telegram_chat_id go together".into(),
                );
            }
            if o.discord_channel.is_some() != o.discord_room.is_some() {
                return bad(
                    "operators.discord_channel and operators.discord_room go together".into(),
                );
            }
            if o.telegram_channel.is_some() && o.discord_channel.is_some() {
                return bad(
                    "the operators' room is a Telegram chat or a Discord channel, not both".into(),
                );
            }
            if o.discord_room
                .as_deref()
                .is_some_and(|r| discord_room(r).is_none())
            {
                return bad("operators.discord_room is a Discord channel id (digits)".into());
            }
        }
        if let Some(w) = &self.webchat {
            if w.allowed_origins.len() > 50 {
                return bad("webchat.allowed_origins holds at most 50 origins".into());
            }
            if w.welcome_message
                .as_deref()
                .is_some_and(|m| m.trim().is_empty() || m.chars().count() > 1000)
            {
                return bad("webchat.welcome_message must be 1-1000 characters, or null".into());
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

impl ProfileSettings {
    fn validate(&self) -> Result<(), InvalidSettingsDoc> {
        let bad = |m: String| Err(InvalidSettingsDoc(m));
        let chars = |t: &str| t.trim().chars().count();
        if !(1..=200).contains(&chars(&self.name)) {
            return bad("profile.name must be 1-200 characters".into());
        }
        if !(1..=100).contains(&chars(&self.tone)) {
            return bad("profile.tone must be 1-100 characters".into());
        }
        if self.persona.as_deref().is_some_and(|p| chars(p) > 2000) {
            return bad("profile.persona holds at most 2000 characters".into());
        }
        if self
            .holding_message
            .as_deref()
            .is_some_and(|h| !(1..=1000).contains(&chars(h)))
        {
            return bad("profile.holding_message must be 1-1000 characters".into());
        }
        if crate::shops::primary_language(&self.language)
            .ok()
            .as_deref()
            != Some(self.language.as_str())
        {
            return bad(format!(
                "profile.language {:?} must be an ISO 639-1 code such as en or de",
                self.language
            ));
        }
        if self.languages.len() > 10 {
            return bad("profile.languages holds at most 10 languages".into());
        }
        if let Some(bad_code) = self
            .languages
            .iter()
            .find(|l| !switchboard_core::settings::DETECTED_LANGUAGES.contains(&l.as_str()))
        {
            return bad(format!(
                "profile.languages: {bad_code:?} is not one a customer's language is told apart in ({})",
                switchboard_core::settings::DETECTED_LANGUAGES.join(", ")
            ));
        }
        if !SEARCH_LANGUAGES.contains(&self.search_language.as_str()) {
            return bad(format!(
                "profile.search_language {:?} is not one of {}",
                self.search_language,
                SEARCH_LANGUAGES.join(", ")
            ));
        }
        if crate::shops::currency(&self.currency).ok().as_deref() != Some(self.currency.as_str()) {
            return bad(format!(
                "profile.currency {:?} must be an ISO 4217 code such as EUR",
                self.currency
            ));
        }
        if self.escalation_contacts.len() > 20
            || self
                .escalation_contacts
                .iter()
                .any(|c| !(1..=200).contains(&chars(c)))
        {
            return bad(
                "profile.escalation_contacts holds at most 20 entries of 1-200 characters".into(),
            );
        }
        Ok(())
    }
}

/// How a settings document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Write {
    /// A JSON merge patch: only the fields given change.
    #[default]
    Merge,
    /// The sections given replace the stored ones whole; fields left out take their
    /// defaults.
    Replace,
}

/// The document as the audit log keeps it: without the API key.
fn redacted(doc: &SettingsDoc) -> SettingsDoc {
    let mut d = doc.clone();
    if let Some(l) = &mut d.llm {
        l.api_key = l
            .api_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(|_| REDACTED.to_owned());
    }
    d
}

/// What a written document does to the stored LLM API key. It is never read back (the
/// document shows "***"), so writing back what was read keeps it; `null` or "" clears it.
enum KeyChange {
    Keep,
    Clear,
    Set(String),
}

fn api_key_change(written: Option<&serde_json::Value>) -> KeyChange {
    match written {
        None => KeyChange::Keep,
        Some(serde_json::Value::String(k)) if k == REDACTED => KeyChange::Keep,
        Some(serde_json::Value::String(k)) if !k.is_empty() => KeyChange::Set(k.clone()),
        Some(_) => KeyChange::Clear,
    }
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
            operator_channel: Option<String>,
            operator_channel_kind: Option<String>,
            operator_chat_id: Option<i64>,
            delay_approved_sends: bool,
            checking_after_minutes: i32,
            checking_message: String,
            widget_origins: Vec<String>,
            widget_welcome: Option<String>,
            search_language: String,
            currency: String,
            escalation_contacts: sqlx::types::Json<Vec<String>>,
        }
        let ops: Ops = sqlx::query_as(
            "SELECT t.approval_ttl_minutes, t.takeover_minutes, t.escalation_sla_minutes,
                    ch.name AS operator_channel, ch.kind AS operator_channel_kind,
                    t.operator_chat_id, t.delay_approved_sends,
                    t.checking_after_minutes, t.checking_message, t.widget_origins,
                    t.widget_welcome, t.text_search_config::text AS search_language, t.currency,
                    t.escalation_contacts
             FROM tenants t LEFT JOIN channels ch ON ch.id = t.operator_channel_id WHERE t.id = $1",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?;
        let discord = ops.operator_channel_kind.as_deref() == Some("discord");
        let own: Vec<(String, bool)> = sqlx::query_as(
            "SELECT key, enabled FROM feature_flags WHERE tenant_id = $1 ORDER BY key",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(SettingsDoc {
            profile: Some(ProfileSettings {
                name: s.name,
                persona: s.persona,
                tone: s.tone,
                formal_address: s.formal_address,
                language: s.language,
                languages: s.languages.into_iter().skip(1).collect(),
                search_language: ops.search_language,
                currency: ops.currency,
                holding_message: s.holding_message,
                escalation_contacts: ops.escalation_contacts.0,
            }),
            working_hours: Some(s.working_hours),
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
                timeout_ms: s.llm.timeout_ms.and_then(|t| u32::try_from(t).ok()),
                max_retries: s.llm.max_retries.and_then(|r| u32::try_from(r).ok()),
            }),
            operators: Some(OperatorSettings {
                approval_ttl_minutes: u32::try_from(ops.approval_ttl_minutes).unwrap_or(1),
                takeover_minutes: u32::try_from(ops.takeover_minutes).unwrap_or(1),
                escalation_sla_minutes: u32::try_from(ops.escalation_sla_minutes).unwrap_or(1),
                telegram_channel: ops.operator_channel.clone().filter(|_| !discord),
                telegram_chat_id: ops.operator_chat_id.filter(|_| !discord),
                discord_channel: ops.operator_channel.filter(|_| discord),
                discord_room: ops
                    .operator_chat_id
                    .filter(|_| discord)
                    .map(|id| id.to_string()),
                delay_approved_sends: ops.delay_approved_sends,
                checking_after_minutes: u32::try_from(ops.checking_after_minutes).unwrap_or(0),
                checking_message: ops.checking_message,
            }),
            webchat: Some(WebchatSettings {
                allowed_origins: ops.widget_origins,
                welcome_message: ops.widget_welcome,
            }),
        })
    }

    /// Applies a written document (see [`SettingsDoc`] and [`Write`]) over the stored
    /// settings: the result is validated and written in one transaction, with an audit event
    /// listing what changed (a JSON Patch, RFC 6902, the API key redacted). Nothing changed,
    /// nothing is written. Writes to one tenant's settings take turns, so two admins'
    /// patches cannot undo each other. An LLM API key needs `cipher`: keys are only ever
    /// stored encrypted. Returns the settings as now stored.
    pub async fn apply_settings(
        &self,
        tenant_id: Uuid,
        written: &serde_json::Value,
        how: Write,
        actor: &str,
        cipher: Option<&Cipher>,
    ) -> Result<SettingsDoc> {
        let Some(given) = written.as_object() else {
            return Err(StoreError::Invalid(
                "the settings document must be a JSON object".into(),
            ));
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('settings:' || $1::text, 0))")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        // Read after the lock: a write that held it before has committed.
        let stored = self.settings_doc(tenant_id).await?;
        let before =
            serde_json::to_value(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut after = before.clone();
        match how {
            Write::Merge => {
                json_patch::merge(&mut after, &one_room(written));
            }
            Write::Replace => {
                for (section, value) in given {
                    after[section] = value.clone();
                }
            }
        }
        // Every section stays: `null` may remove a field inside one, not a whole section.
        if let Some(gone) = before
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .find(|k| after.get(k.as_str()).is_none_or(serde_json::Value::is_null))
        {
            return Err(StoreError::Invalid(format!(
                "settings: the section {gone} cannot be removed; set its fields instead"
            )));
        }
        // Only what this write changes is checked: a value stored before a check existed
        // must not block an unrelated change.
        let changed: serde_json::Map<String, serde_json::Value> = after
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| before.get(k.as_str()) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let parse = |v: serde_json::Value| {
            serde_json::from_value::<SettingsDoc>(v)
                .map_err(|e| StoreError::Invalid(format!("settings: {e}")))
        };
        parse(serde_json::Value::Object(changed))?
            .validate()
            .map_err(|e| StoreError::Invalid(e.0))?;
        let doc = parse(after)?;
        let api_key = api_key_change(given.get("llm").and_then(|l| l.get("api_key")));
        let changes = json_patch::diff(&json!(redacted(&stored)), &json!(redacted(&doc)));
        if changes.0.is_empty() && !matches!(api_key, KeyChange::Set(_)) {
            return Ok(stored);
        }
        let api_key = match api_key {
            KeyChange::Keep => None,
            KeyChange::Clear => Some(None),
            KeyChange::Set(key) => {
                let cipher =
                    cipher.ok_or_else(|| StoreError::Invalid(CryptoError::NoKey.to_string()))?;
                Some(Some(cipher.encrypt(key.as_bytes())))
            }
        };
        // Flags the tenant no longer sets fall back to the global value.
        let unset: Vec<String> = stored
            .flags
            .iter()
            .flatten()
            .filter(|(k, _)| !doc.flags.as_ref().is_some_and(|f| f.contains_key(*k)))
            .map(|(k, _)| k.clone())
            .collect();
        if let Some(p) = &doc.profile {
            sqlx::query(
                "UPDATE tenants SET name = $2, persona = $3, tone = $4, formal_address = $5,
                        language = $6, text_search_config = $7::regconfig, currency = $8,
                        holding_message = $9, escalation_contacts = $10, languages = $11
                 WHERE id = $1",
            )
            .bind(tenant_id)
            .bind(p.name.trim())
            .bind(&p.persona)
            .bind(&p.tone)
            .bind(p.formal_address)
            .bind(&p.language)
            .bind(&p.search_language)
            .bind(&p.currency)
            .bind(&p.holding_message)
            .bind(sqlx::types::Json(&p.escalation_contacts))
            .bind(
                p.languages
                    .iter()
                    .filter(|l| **l != p.language)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
            // Documents, products and operators' past verdicts are searched in the shop's
            // language.
            for table in ["knowledge_docs", "products", "training_samples"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET search_config = $2::regconfig
                     WHERE tenant_id = $1 AND search_config <> $2::regconfig"
                ))
                .bind(tenant_id)
                .bind(&p.search_language)
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(w) = &doc.working_hours {
            let days: Vec<i16> = w.days.iter().map(|d| i16::from(*d)).collect();
            sqlx::query(
                "UPDATE tenants SET timezone = $2, working_hours_start = $3,
                        working_hours_end = $4, working_days = $5
                 WHERE id = $1",
            )
            .bind(tenant_id)
            .bind(&w.timezone)
            .bind(w.start)
            .bind(w.end)
            .bind(&days)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(l) = &doc.llm {
            sqlx::query(
                "INSERT INTO llm_settings (tenant_id, provider, base_url, model, temperature, max_tokens,
                        response_format, timeout_ms, max_retries)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (tenant_id) DO UPDATE SET provider = $2, base_url = $3, model = $4, temperature = $5,
                        max_tokens = $6, response_format = $7, timeout_ms = $8, max_retries = $9,
                        updated_at = now()",
            )
            .bind(tenant_id)
            .bind(&l.provider)
            .bind(&l.base_url)
            .bind(&l.model)
            .bind(l.temperature)
            .bind(l.max_tokens)
            .bind(&l.response_format)
            .bind(l.timeout_ms.map(|t| n(u64::from(t))))
            .bind(l.max_retries.map(|r| n(u64::from(r))))
            .execute(&mut *tx)
            .await?;
            if let Some(key) = &api_key {
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
            let room = match (&o.telegram_channel, &o.discord_channel) {
                (Some(name), _) => Some(("telegram", "Telegram", name, o.telegram_chat_id)),
                (None, Some(name)) => Some((
                    "discord",
                    "Discord",
                    name,
                    o.discord_room.as_deref().and_then(discord_room),
                )),
                (None, None) => None,
            };
            let (channel, chat): (Option<Uuid>, Option<i64>) = match room {
                None => (None, None),
                Some((kind, platform, name, chat)) => (
                    Some(
                        sqlx::query_scalar(
                            "SELECT id FROM channels WHERE tenant_id = $1 AND kind = $2 AND name = $3",
                        )
                        .bind(tenant_id)
                        .bind(kind)
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Invalid(format!(
                                "operators.{kind}_channel: the tenant has no {platform} channel named {name:?}"
                            ))
                        })?,
                    ),
                    chat,
                ),
            };
            sqlx::query(
                "UPDATE tenants SET approval_ttl_minutes = $2, takeover_minutes = $3,
                        escalation_sla_minutes = $4, operator_channel_id = $5, operator_chat_id = $6,
                        delay_approved_sends = $7, checking_after_minutes = $8,
                        checking_message = $9
                 WHERE id = $1",
            )
            .bind(tenant_id)
            .bind(n(u64::from(o.approval_ttl_minutes)))
            .bind(n(u64::from(o.takeover_minutes)))
            .bind(n(u64::from(o.escalation_sla_minutes)))
            .bind(channel)
            .bind(chat)
            .bind(o.delay_approved_sends)
            .bind(n(u64::from(o.checking_after_minutes)))
            .bind(o.checking_message.trim())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(w) = &doc.webchat {
            sqlx::query(
                "UPDATE tenants SET widget_origins = $2, widget_welcome = $3 WHERE id = $1",
            )
            .bind(tenant_id)
            .bind(&w.allowed_origins)
            .bind(w.welcome_message.as_deref().map(str::trim))
            .execute(&mut *tx)
            .await?;
        }
        for key in &unset {
            set_flag(&mut tx, Some(tenant_id), key, None).await?;
        }
        for (key, value) in doc.flags.iter().flatten() {
            set_flag(&mut tx, Some(tenant_id), key, *value).await?;
        }
        let mut changes = json!(changes);
        if let Some(Some(_)) = &api_key {
            changes.as_array_mut().into_iter().for_each(|c| {
                c.push(json!({"op": "replace", "path": "/llm/api_key", "value": REDACTED}))
            });
        }
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "settings.update",
            ("tenant", Some(tenant_id)),
            json!({"changes": changes}),
        )
        .await?;
        tx.commit().await?;
        self.settings_doc(tenant_id).await
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

/// A tenant has one operators' room: a patch that names one platform's room replaces the
/// other's, rather than being refused for naming both.
fn one_room(patch: &serde_json::Value) -> serde_json::Value {
    let mut patch = patch.clone();
    if let Some(ops) = patch.get_mut("operators").and_then(|o| o.as_object_mut()) {
        let names = |key: &str| ops.get(key).is_some_and(|v| !v.is_null());
        let other: &[&str] = if names("discord_channel") || names("discord_room") {
            &["telegram_channel", "telegram_chat_id"]
        } else if names("telegram_channel") || names("telegram_chat_id") {
            &["discord_channel", "discord_room"]
        } else {
            &[]
        };
        for key in other {
            ops.entry(*key).or_insert(serde_json::Value::Null);
        }
    }
    patch
}

/// A Discord channel id as the operators' room column keeps it (snowflakes fit a bigint).
fn discord_room(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0)
}
