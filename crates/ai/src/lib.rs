//! Drafting replies: the built-in offline responder (retrieval-grounded, no network) and
//! the intent classifier. Every provider returns the same [`DraftSignals`], so the decision
//! engine judges all of them by one set of rules.

mod intent;
mod offline;

pub use intent::{Intent, classify};
pub use offline::{PROVIDER as OFFLINE_PROVIDER, respond};
pub use switchboard_engine::DraftSignals;
