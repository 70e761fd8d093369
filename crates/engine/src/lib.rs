//! The decision engine (design section 4) and the human-delay planner (section 5): pure and
//! deterministic given a seeded RNG and a clock. Given a draft's signals, the tenant's
//! settings and the conversation's state, it says whether the reply may go out on its own,
//! needs an operator, or must be escalated, when it goes out, and why.

pub mod case;
pub mod decision;
pub mod delay;
pub mod hours;
pub mod lifecycle;
pub mod settings;

pub use case::{Case, Verdict, evaluate};
pub use decision::{
    BlockReason, ChannelState, ConversationState, Decision, DecisionInput, DecisionOutcome,
    DraftSignals, Penalty, Silence, decide, may_speak,
};
pub use delay::{DelayPlan, HumanDelaySettings, NightMode, plan_delay};
pub use hours::WorkingHours;
pub use lifecycle::{IllegalTransition, transition};
pub use settings::{DecisionSettings, Flags, InvalidSettings, PenaltyValues, Policies, Weights};
