//! The decision settings live in `core`, beside every other domain type the store keeps;
//! re-exported here so the engine reads as one whole.

pub use switchboard_core::settings::{
    DecisionSettings, Flags, InvalidSettings, PenaltyValues, Policies, Weights,
};
