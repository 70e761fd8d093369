//! One module per platform. Each has its wire types in `wire.rs`, pure inbound
//! verification and normalization in `inbound.rs`, and the outbound [`ChannelAdapter`] in
//! `outbound.rs`. Only this crate knows a platform's wire format; nothing here touches
//! the database or the broker.
//!
//! [`ChannelAdapter`]: switchboard_core::ChannelAdapter

pub mod discord;
pub mod email;
mod secret;
mod split;
pub mod telegram;
pub mod webchat;
pub mod whatsapp;

pub use split::split_message;

/// Why an inbound payload was refused. The gateway maps it to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("invalid field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}
