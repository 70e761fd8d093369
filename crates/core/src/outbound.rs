use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A reply on its way out: what the dispatcher hands to a channel adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The id the stored message will carry; adapters pass it on so clients can dedup.
    pub message_id: Uuid,
    pub tenant_id: Uuid,
    pub channel_id: Uuid,
    pub conversation_id: Uuid,
    /// The customer's id on the platform.
    pub recipient: String,
    /// Which part of a longer reply this is (0 for the first, and for a reply in one
    /// part); with `message_id`, the key of a platform that recognises a send made twice
    /// (Discord's nonce).
    #[serde(default)]
    pub part: u32,
    pub text: String,
    /// The platform id of the customer message this answers, where the platform threads.
    pub reply_to_external_id: Option<String>,
    /// Answers offered as buttons or a list, where the platform can show them.
    #[serde(default)]
    pub choices: Vec<String>,
    /// A person decided this send (an operator's message, an approval, a replay), so it is
    /// no automatic reply; email leaves `Auto-Submitted` off.
    #[serde(default)]
    pub human_sent: bool,
    /// Who speaks: `assistant`, `operator` or `system`, as the transcript will say.
    #[serde(default = "assistant")]
    pub role: String,
    /// Platform details of the message this answers, as its adapter stored them (an
    /// email's subject and References).
    #[serde(default)]
    pub reply_context: serde_json::Value,
}

fn assistant() -> String {
    "assistant".into()
}
