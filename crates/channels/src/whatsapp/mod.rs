//! WhatsApp Cloud API: signed webhooks in, the Graph API out.

pub mod inbound;
pub mod outbound;
pub mod wire;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub const DEFAULT_API_BASE_URL: &str = "https://graph.facebook.com/v21.0";

/// A WhatsApp channel's settings (`channels.config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    pub phone_number_id: String,
    /// Sent instead when a reply meets a closed 24-hour window.
    #[serde(default)]
    pub reengagement_template: Option<Template>,
    #[serde(default = "default_rate")]
    pub messages_per_second: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    pub language: String,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.into()
}

fn default_rate() -> u32 {
    80
}

/// A WhatsApp channel's credentials, stored encrypted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    #[serde(serialize_with = "crate::secret::expose")]
    pub access_token: SecretString,
    /// Keys the HMAC of every webhook body.
    #[serde(serialize_with = "crate::secret::expose")]
    pub app_secret: SecretString,
    /// Answers Meta's subscription handshake.
    #[serde(serialize_with = "crate::secret::expose")]
    pub verify_token: SecretString,
}
