//! A tenant's settings as the domain sees them: what the engine decides and plans with,
//! and what the store keeps. Pure data, validation and time-zone arithmetic; no IO.

mod decision;
mod delay;
mod hours;

pub use decision::{DecisionSettings, Flags, InvalidSettings, PenaltyValues, Policies, Weights};
pub use delay::{
    DelayProfile, HumanDelaySettings, InvalidDelaySettings, NightMode, ProfileName, Profiles,
};
pub use hours::{UnknownTimezone, WorkingHours};

/// The languages (ISO 639-1) a customer's message is told apart in, so the ones a shop may
/// list as answering in besides its first.
pub const DETECTED_LANGUAGES: &[&str] = &[
    "en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da", "nb", "fi", "cs", "tr", "ru", "uk",
];
