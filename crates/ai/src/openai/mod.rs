//! The OpenAI-compatible provider: one draft call with a JSON schema, one self-check call,
//! bounded retries with backoff on 429 and 5xx, a timeout per call, and a circuit breaker.

pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use switchboard_engine::DraftSignals;

use crate::breaker::CircuitBreaker;
use crate::prompt::{DraftRequest, draft_messages, self_check_messages};
use crate::{INTENTS, validate};
use wire::{ChatMessage, ChatRequest, ChatResponse, DraftAnswer, SelfCheckAnswer};

pub const PROVIDER: &str = "openai";

/// The longest a retry waits, whatever `Retry-After` asks.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    pub provider: ProviderKind,
    /// `https://api.openai.com`, `http://127.0.0.1:11434` (Ollama), …; `/v1` is optional.
    pub base_url: String,
    /// Never printed (`Debug` shows it redacted) and wiped from memory when dropped.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    pub model: String,
    pub temperature: f32,
    pub max_tokens: u32,
    pub timeout_ms: u64,
    /// Attempts after the first one, on 429, 5xx and timeouts.
    pub max_retries: u32,
    /// How the server is asked for JSON: OpenAI's `json_schema`, or `json_object` with a
    /// `schema` (llama.cpp's server).
    pub response_format: JsonMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonMode {
    JsonSchema,
    JsonObject,
}

impl std::str::FromStr for JsonMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json_schema" => Ok(Self::JsonSchema),
            "json_object" => Ok(Self::JsonObject),
            _ => Err(format!("unknown response_format {s:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The built-in responder: no network, no model.
    Offline,
    /// Any OpenAI-compatible chat-completions server.
    Openai,
}

impl std::str::FromStr for ProviderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "offline" => Ok(Self::Offline),
            "openai" => Ok(Self::Openai),
            _ => Err(format!("unknown LLM provider {s:?}")),
        }
    }
}

/// Circuit breakers by provider base URL and a hash of the API key.
type Breakers = HashMap<(String, u64), Arc<CircuitBreaker>>;

/// The process's HTTP client and one circuit breaker per provider base URL and API key,
/// shared by every tenant that calls that provider with that key in this process: one
/// tenant's exhausted quota opens its own breaker, not every tenant's on the same provider.
///
/// `public_only` calls go through the client that reaches public addresses only (a URL a
/// tenant chose).
pub fn shared(
    base_url: &str,
    api_key: Option<&str>,
    public_only: bool,
) -> (reqwest::Client, Arc<CircuitBreaker>) {
    static BREAKERS: OnceLock<Mutex<Breakers>> = OnceLock::new();
    // The key itself is not kept as a map key, only a hash of it.
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        api_key.unwrap_or_default().hash(&mut h);
        h.finish()
    };
    let mut map = BREAKERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let breaker = map
        .entry((base_url.to_owned(), key))
        .or_insert_with(|| Arc::new(CircuitBreaker::new(5, Duration::from_secs(30))))
        .clone();
    let http = if public_only {
        switchboard_http::public_client()
    } else {
        switchboard_http::client()
    };
    (http, breaker)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub requests: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LlmDraft {
    pub signals: DraftSignals,
    pub questions_to_ask: Vec<String>,
    /// The contact details the model found in the customer's messages.
    pub lead: switchboard_core::Lead,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM did not answer within {0:?}")]
    Timeout(Duration),
    /// The provider's error body is not kept: it can echo the prompt or part of the key,
    /// and this message reaches the console and the logs.
    #[error("the LLM answered HTTP {status}")]
    Http { status: u16 },
    #[error("the LLM could not be reached: {0}")]
    Transport(String),
    #[error("the LLM's answer does not parse: {0}")]
    Unparsable(String),
    #[error("the LLM's answer is invalid: {0}")]
    Invalid(String),
    #[error("the LLM provider is failing; its circuit breaker is open")]
    CircuitOpen,
}

impl LlmError {
    fn retryable(&self) -> bool {
        match self {
            LlmError::Timeout(_) | LlmError::Transport(_) => true,
            LlmError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

pub struct OpenAiProvider {
    http: reqwest::Client,
    cfg: LlmConfig,
    breaker: Arc<CircuitBreaker>,
}

impl OpenAiProvider {
    pub fn new(http: reqwest::Client, cfg: LlmConfig, breaker: Arc<CircuitBreaker>) -> Self {
        Self { http, cfg, breaker }
    }

    fn url(&self) -> String {
        let base = self.cfg.base_url.trim_end_matches('/');
        if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        }
    }

    /// Drafts and self-checks a reply. Every failure is an error for the caller to turn
    /// into ESCALATE; nothing half-checked comes back as a draft. The tokens spent are
    /// reported either way.
    pub async fn draft(&self, req: &DraftRequest<'_>) -> (Usage, Result<LlmDraft, LlmError>) {
        let mut usage = Usage::default();
        if !self.breaker.allow() {
            return (usage, Err(LlmError::CircuitOpen));
        }
        let result = self.draft_unguarded(req, &mut usage).await;
        match &result {
            Ok(_) => self.breaker.success(),
            // A model that talks nonsense is not an outage: only transport-level
            // failures trip the breaker.
            Err(e) if e.retryable() => self.breaker.failure(),
            Err(_) => self.breaker.success(),
        }
        (usage, result)
    }

    async fn draft_unguarded(
        &self,
        req: &DraftRequest<'_>,
        usage: &mut Usage,
    ) -> Result<LlmDraft, LlmError> {
        let (system, user) = draft_messages(req);
        let answer: DraftAnswer = self
            .call(
                &system,
                &user,
                wire::response_format(
                    self.cfg.response_format,
                    "draft",
                    wire::draft_schema(&INTENTS),
                ),
                usage,
            )
            .await?;
        validate::draft(&answer, req.sources).map_err(LlmError::Invalid)?;

        let (system, user) = self_check_messages(req, &answer.reply);
        let check: SelfCheckAnswer = self
            .call(
                &system,
                &user,
                wire::response_format(
                    self.cfg.response_format,
                    "self_check",
                    wire::self_check_schema(),
                ),
                usage,
            )
            .await?;
        let mut self_check_score = validate::self_check(&check).map_err(LlmError::Invalid)?;
        let mut reasons = check.reasons;
        let invented = validate::ungrounded_numbers(&answer.reply, req.sources);
        if !invented.is_empty() {
            self_check_score = 0.0;
            reasons.push(format!(
                "the reply states {}, which no source contains",
                invented.join(", ")
            ));
        }
        let similarity_score = req
            .sources
            .iter()
            .filter(|s| answer.used_sources.contains(&s.reference))
            .map(|s| s.coverage)
            .fold(0.0, f64::max);
        Ok(LlmDraft {
            signals: DraftSignals {
                reply: answer.reply,
                intent: answer.intent,
                intent_score: answer.intent_score,
                similarity_score,
                self_check_score,
                self_check_need_handoff: answer.need_handoff || check.need_handoff,
                self_check_reasons: reasons,
                used_sources: answer.used_sources,
                source_conflicts: vec![],
                missing_fields: answer.missing_fields,
                choices: answer.choices,
            },
            questions_to_ask: answer.questions_to_ask,
            lead: answer.lead.cleaned(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        system: &str,
        user: &str,
        response_format: serde_json::Value,
        usage: &mut Usage,
    ) -> Result<T, LlmError> {
        let body = ChatRequest {
            model: &self.cfg.model,
            messages: vec![
                ChatMessage {
                    role: "system",
                    content: system,
                },
                ChatMessage {
                    role: "user",
                    content: user,
                },
            ],
            temperature: self.cfg.temperature,
            max_tokens: self.cfg.max_tokens,
            response_format,
        };
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            let result = self.once(&body).await;
            metrics::histogram!("sb_llm_seconds").record(started.elapsed().as_secs_f64());
            usage.requests += 1;
            match result {
                Ok(resp) => {
                    if let Some(u) = &resp.usage {
                        usage.prompt_tokens += u.prompt_tokens;
                        usage.completion_tokens += u.completion_tokens;
                    }
                    let content = resp
                        .choices
                        .into_iter()
                        .next()
                        .and_then(|c| c.message.content)
                        .ok_or_else(|| LlmError::Unparsable("no message content".into()))?;
                    return serde_json::from_str(strip_fences(&content))
                        .map_err(|e| LlmError::Unparsable(e.to_string()));
                }
                Err((e, retry_after)) if e.retryable() && attempt < self.cfg.max_retries => {
                    attempt += 1;
                    let backoff = retry_after.unwrap_or_else(|| {
                        let base = 250u64 << attempt.min(6);
                        Duration::from_millis(rand::rng().random_range(base / 2..=base))
                    });
                    tracing::warn!(error = %switchboard_core::error_chain(&e), attempt, "LLM call failed; retrying");
                    tokio::time::sleep(backoff.min(MAX_RETRY_WAIT)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    async fn once(
        &self,
        body: &ChatRequest<'_>,
    ) -> Result<ChatResponse, (LlmError, Option<Duration>)> {
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        let mut req = self.http.post(self.url()).json(body).timeout(timeout);
        if let Some(key) = self
            .cfg
            .api_key
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .filter(|k| !k.is_empty())
        {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                (LlmError::Timeout(timeout), None)
            } else {
                (LlmError::Transport(e.without_url().to_string()), None)
            }
        })?;
        let status = resp.status();
        if status != StatusCode::OK {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err((
                LlmError::Http {
                    status: status.as_u16(),
                },
                retry_after,
            ));
        }
        let bytes = resp.bytes().await.map_err(|e| {
            if e.is_timeout() {
                (LlmError::Timeout(timeout), None)
            } else {
                (LlmError::Transport(e.without_url().to_string()), None)
            }
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| (LlmError::Unparsable(format!("response body: {e}")), None))
    }
}

/// Some servers wrap JSON in a Markdown code fence even when asked not to.
fn strip_fences(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.strip_suffix("```"))
        .map_or(t, str::trim)
}
