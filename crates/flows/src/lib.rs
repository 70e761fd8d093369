//! The domain's flows: what happens when an operator acts, or a draft comes back from the
//! LLM. The rules live here, between the workers and the gateway above and the store
//! below: the flows ask the engine (pure) and tell the store (which only stores) what to
//! lock and write, in the one lock order (conversation, suggestion, outbox).

pub mod drafting;
pub mod operator;

pub use drafting::{Drafted, Recorded, Situation, give_up, judge, record};
pub use operator::{
    action_allowed, allowed_actions, approve, conversation_action, escalate_without_draft,
    operator_message, reject,
};
