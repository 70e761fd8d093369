//! Discord: Gateway events (a websocket the listener holds) and signed interaction
//! webhooks in, the REST API out.

pub mod inbound;
pub mod outbound;
pub mod wire;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::telegram::inbound::GroupMode;

pub const DEFAULT_API_BASE_URL: &str = "https://discord.com/api/v10";

/// A Discord channel's settings (`channels.config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    /// The application's id; for a bot it is also the bot user's id, which tells mentions
    /// of the bot and replies to it in guild channels.
    pub application_id: String,
    /// The application's Ed25519 public key (hex) that signs HTTP interactions.
    pub public_key: String,
    /// Which guild messages to read: those mentioning or replying to the bot (default),
    /// all, or none. Direct messages are always read.
    #[serde(default)]
    pub group_mode: GroupMode,
    /// After a (re)connection, Discord channels with a message in the last this many days
    /// are read for what arrived while no one was connected.
    #[serde(default = "default_backfill_days")]
    pub backfill_days: u32,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.into()
}

fn default_backfill_days() -> u32 {
    7
}

/// A Discord channel's credentials, stored encrypted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    #[serde(serialize_with = "crate::secret::expose")]
    pub bot_token: SecretString,
}

impl Config {
    pub fn inbound(&self) -> inbound::InboundConfig {
        inbound::InboundConfig {
            bot_user_id: self.application_id.clone(),
            group_mode: self.group_mode,
        }
    }
}
