//! The decision engine (design section 4): pure and deterministic. Given a draft's signals,
//! the tenant's settings and the conversation's state, it says whether the reply may go out
//! on its own, needs an operator, or must be escalated, and explains why.

pub mod decision;
pub mod settings;

pub use decision::{
    BlockReason, ChannelState, ConversationState, Decision, DecisionInput, DecisionOutcome,
    DraftSignals, Penalty, Silence, decide, may_speak,
};
pub use settings::{DecisionSettings, Flags, InvalidSettings, PenaltyValues, Policies, Weights};
