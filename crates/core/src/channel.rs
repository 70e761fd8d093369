use serde::{Deserialize, Serialize};

use crate::status::UnknownValue;

/// The platforms a tenant can connect. Stored as lowercase text in `channels.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Telegram,
    Whatsapp,
    Email,
    Discord,
    Webchat,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Telegram,
        ChannelKind::Whatsapp,
        ChannelKind::Email,
        ChannelKind::Discord,
        ChannelKind::Webchat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Telegram => "telegram",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Email => "email",
            ChannelKind::Discord => "discord",
            ChannelKind::Webchat => "webchat",
        }
    }
}

impl std::str::FromStr for ChannelKind {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownValue::new("channel kind", s))
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
