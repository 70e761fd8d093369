use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /api/webchat/{tenant}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PostMessage {
    pub visitor_id: String,
    pub client_message_id: String,
    pub text: String,
}

/// What the widget receives on its event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LiveEvent {
    Message {
        id: Uuid,
        role: String,
        text: String,
        at: DateTime<Utc>,
    },
    Typing,
}
