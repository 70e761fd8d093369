//! Telegram: webhook or long-poll updates in, the Bot API (through teloxide) out.

pub mod inbound;
pub mod wire;
