//! Telegram: webhook or long-poll updates in, the Bot API (through teloxide) out.

pub mod inbound;
pub mod outbound;
pub mod wire;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub const DEFAULT_API_BASE_URL: &str = "https://api.telegram.org/";

/// A Telegram channel's settings (`channels.config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    #[serde(default)]
    pub bot_username: Option<String>,
    #[serde(default)]
    pub group_mode: inbound::GroupMode,
    /// Poll `getUpdates` instead of receiving webhooks, for bots without a public URL.
    #[serde(default)]
    pub long_polling: bool,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.into()
}

/// A Telegram channel's credentials, stored encrypted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    #[serde(serialize_with = "crate::secret::expose")]
    pub bot_token: SecretString,
    /// What Telegram sends back in `X-Telegram-Bot-Api-Secret-Token`.
    #[serde(serialize_with = "crate::secret::expose")]
    pub secret_token: SecretString,
}

impl Config {
    pub fn inbound(&self) -> inbound::InboundConfig {
        inbound::InboundConfig {
            bot_username: self.bot_username.clone(),
            group_mode: self.group_mode,
        }
    }
}
