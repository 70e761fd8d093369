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
