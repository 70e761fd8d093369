//! The OpenAI chat-completions wire format, as OpenAI, Azure OpenAI, Ollama, vLLM,
//! llama.cpp's server and OpenRouter speak it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<ChatMessage<'a>>,
    pub temperature: f32,
    pub max_tokens: u32,
    pub response_format: Value,
}

#[derive(Debug, Serialize)]
pub struct ChatMessage<'a> {
    pub role: &'a str,
    pub content: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct ChatResponse {
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub struct Choice {
    pub message: ResponseMessage,
}

#[derive(Debug, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// What the draft call must return.
#[derive(Debug, Deserialize)]
pub struct DraftAnswer {
    pub reply: String,
    pub intent: String,
    pub intent_score: f64,
    #[serde(default)]
    pub questions_to_ask: Vec<String>,
    #[serde(default)]
    pub used_sources: Vec<String>,
    #[serde(default)]
    pub missing_fields: Vec<String>,
    #[serde(default)]
    pub need_handoff: bool,
    #[serde(default)]
    pub choices: Vec<String>,
    /// Contact details the customer gave; a model that leaves it out captures none.
    #[serde(default)]
    pub lead: switchboard_core::Lead,
}

/// What the self-check call must return.
#[derive(Debug, Deserialize)]
pub struct SelfCheckAnswer {
    pub self_check_score: f64,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub need_handoff: bool,
}

pub fn response_format(mode: super::JsonMode, name: &str, schema: Value) -> Value {
    match mode {
        super::JsonMode::JsonSchema => serde_json::json!({
            "type": "json_schema",
            "json_schema": {"name": name, "strict": true, "schema": schema}
        }),
        super::JsonMode::JsonObject => serde_json::json!({"type": "json_object", "schema": schema}),
    }
}

/// WhatsApp's list messages hold ten rows of at most 24 characters.
pub const MAX_CHOICES: usize = 10;
pub const MAX_CHOICE_CHARS: usize = 24;

pub fn draft_schema(intents: &[&str]) -> Value {
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["reply", "intent", "intent_score", "questions_to_ask", "used_sources", "missing_fields", "need_handoff", "choices", "lead"],
        "properties": {
            "reply": {"type": "string"},
            "intent": {"type": "string", "enum": intents},
            "intent_score": {"type": "number", "minimum": 0, "maximum": 1},
            "questions_to_ask": {"type": "array", "items": {"type": "string"}},
            "used_sources": {"type": "array", "items": {"type": "string"}},
            "missing_fields": {"type": "array", "items": {"type": "string"}},
            "need_handoff": {"type": "boolean"},
            "choices": {"type": "array", "maxItems": MAX_CHOICES, "items": {"type": "string", "maxLength": MAX_CHOICE_CHARS}},
            "lead": {
                "type": "object",
                "additionalProperties": false,
                "required": switchboard_core::LEAD_FIELDS,
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string"},
                    "phone": {"type": "string"},
                    "company": {"type": "string"},
                    "interest": {"type": "string"}
                }
            }
        }
    })
}

pub fn self_check_schema() -> Value {
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["self_check_score", "reasons", "need_handoff"],
        "properties": {
            "self_check_score": {"type": "number", "minimum": 0, "maximum": 1},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "need_handoff": {"type": "boolean"}
        }
    })
}
