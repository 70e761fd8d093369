//! Email: IMAP in (the listener fetches, `inbound` parses and normalizes one raw message),
//! SMTP out (lettre). A message's RFC 5322 Message-ID is its external id, which is what
//! threads replies and dedups redeliveries.

pub mod inbound;
pub mod outbound;
mod strip;

pub use strip::customer_words;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    #[default]
    Tls,
}

impl std::str::FromStr for Tls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Tls::None),
            "starttls" => Ok(Tls::Starttls),
            "tls" => Ok(Tls::Tls),
            other => Err(format!(
                "TLS mode must be none, starttls or tls, not {other:?}"
            )),
        }
    }
}

/// An email channel's settings (`channels.config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub imap_host: String,
    pub imap_port: u16,
    #[serde(default)]
    pub imap_tls: Tls,
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    #[serde(default)]
    pub smtp_tls: Tls,
    /// `Shop Support <support@shop.example>`: the sender of every reply; its domain names
    /// our Message-IDs.
    pub from: String,
    /// Mail larger than this is stored truncated, flagged, and handed to an operator.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Seconds between polls on servers without IDLE.
    #[serde(default = "default_poll_secs")]
    pub poll_secs: u64,
    /// Seconds the IMAP server may take over connecting (TCP, TLS, greeting, login) or one
    /// command before the session is given up and started again with backoff.
    #[serde(default = "default_command_timeout_secs")]
    pub command_timeout_secs: u64,
    /// Certificates (PEM) of a private CA that signed the mail servers' certificates; the
    /// public web roots are trusted either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_pem: Option<String>,
}

fn default_mailbox() -> String {
    "INBOX".into()
}

fn default_max_bytes() -> usize {
    1024 * 1024
}

fn default_poll_secs() -> u64 {
    30
}

fn default_command_timeout_secs() -> u64 {
    30
}

/// An email channel's credentials, stored encrypted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    pub imap_user: String,
    #[serde(serialize_with = "crate::secret::expose")]
    pub imap_password: SecretString,
    #[serde(default)]
    pub smtp_user: Option<String>,
    #[serde(default, serialize_with = "crate::secret::expose_opt")]
    pub smtp_password: Option<SecretString>,
}

impl Config {
    /// The domain of the `from` address, which our Message-IDs carry.
    pub fn domain(&self) -> String {
        let addr = self
            .from
            .rsplit_once('<')
            .map_or(self.from.as_str(), |(_, a)| a.trim_end_matches('>'));
        addr.rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
            .trim()
            .to_lowercase()
    }

    /// Refuses settings no mail could be sent with.
    pub fn validate(&self) -> Result<(), String> {
        self.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("--from {:?} is not an address: {e}", self.from))?;
        if self.imap_host.is_empty() || self.smtp_host.is_empty() {
            return Err("the IMAP and SMTP hosts are required".into());
        }
        if let Some(pem) = &self.tls_ca_pem {
            outbound::ca_certificate(pem)?;
        }
        Ok(())
    }

    pub fn inbound(&self) -> inbound::InboundConfig {
        inbound::InboundConfig {
            max_bytes: self.max_bytes,
            own_domain: self.domain(),
        }
    }
}
