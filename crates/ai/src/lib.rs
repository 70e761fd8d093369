//! Drafting replies: the built-in offline responder (retrieval-grounded, no network), the
//! OpenAI-compatible provider, and the intent classifier. Every provider returns the same
//! [`DraftSignals`], so the decision engine judges all of them by one set of rules.
//! **A provider only drafts; it never decides or sends.**

mod attributes;
mod breaker;
mod intent;
mod language;
mod lead;
mod offline;
pub mod openai;
mod prompt;
mod validate;

pub use breaker::CircuitBreaker;
pub use intent::{INTENTS, Intent, classify};
pub use language::{ReplyLanguage, detect as detect_language, reply_language};
pub use lead::extract_lead;
pub use offline::{PROVIDER as OFFLINE_PROVIDER, respond};
pub use openai::{JsonMode, LlmConfig, LlmDraft, LlmError, OpenAiProvider, ProviderKind, Usage};
pub use prompt::{DraftRequest, Persona, Turn};
pub use switchboard_engine::DraftSignals;
