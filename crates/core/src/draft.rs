//! What drafting produces and what the engine decides about it: shared by the AI crate
//! (which drafts), the engine (which decides) and the store (which keeps both).

use serde::{Deserialize, Serialize};

/// The engine's choice for a draft (design section 4), kept in `ai_suggestions.decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    AutoSend,
    NeedApproval,
    Escalate,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::AutoSend => "AUTO_SEND",
            Decision::NeedApproval => "NEED_APPROVAL",
            Decision::Escalate => "ESCALATE",
        }
    }
}

/// What the drafting step (LLM or built-in responder) reports about its reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftSignals {
    #[serde(default)]
    pub reply: String,
    pub intent: String,
    pub intent_score: f64,
    pub similarity_score: f64,
    pub self_check_score: f64,
    #[serde(default)]
    pub self_check_need_handoff: bool,
    #[serde(default)]
    pub self_check_reasons: Vec<String>,
    #[serde(default)]
    pub used_sources: Vec<String>,
    #[serde(default)]
    pub source_conflicts: Vec<String>,
    #[serde(default)]
    pub missing_fields: Vec<String>,
    /// Answers the customer can pick from; channels that show buttons or lists do.
    #[serde(default)]
    pub choices: Vec<String>,
}
