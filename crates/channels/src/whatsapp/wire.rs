//! The WhatsApp Cloud API's webhook objects. Fields we do not read are tolerated, and
//! every message type's object is optional, so a new type is normalized as unsupported
//! instead of failing the whole batch.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Webhook {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Value {
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub statuses: Vec<Status>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub phone_number_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub wa_id: String,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Empty only on the inner message of an edit.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub from: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub context: Option<Context>,
    #[serde(default)]
    pub text: Option<Text>,
    #[serde(default)]
    pub image: Option<Media>,
    #[serde(default)]
    pub audio: Option<Media>,
    #[serde(default)]
    pub video: Option<Media>,
    #[serde(default)]
    pub document: Option<Media>,
    #[serde(default)]
    pub sticker: Option<Media>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub contacts: Vec<serde_json::Value>,
    #[serde(default)]
    pub reaction: Option<Reaction>,
    #[serde(default)]
    pub interactive: Option<Interactive>,
    #[serde(default)]
    pub button: Option<Button>,
    #[serde(default)]
    pub order: Option<serde_json::Value>,
    #[serde(default)]
    pub referral: Option<serde_json::Value>,
    #[serde(default)]
    pub edit: Option<Edit>,
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub forwarded: bool,
    #[serde(default)]
    pub frequently_forwarded: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Text {
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Media {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    /// Set on voice notes.
    #[serde(default)]
    pub voice: bool,
    /// Media hosted by Meta, on some webhooks.
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reaction {
    #[serde(default)]
    pub message_id: String,
    #[serde(default)]
    pub emoji: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub button_reply: Option<Reply>,
    #[serde(default)]
    pub list_reply: Option<Reply>,
    #[serde(default)]
    pub nfm_reply: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reply {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Button {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub payload: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Edit {
    #[serde(default)]
    pub original_message_id: String,
    #[serde(default)]
    pub message: Option<Box<Message>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub recipient_id: String,
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

/// An error object, in webhooks and in Graph API responses.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl ApiError {
    pub fn describe(&self) -> String {
        self.title
            .clone()
            .or_else(|| self.message.clone())
            .unwrap_or_default()
    }
}

/// `POST /{phone_number_id}/messages` answers.
#[derive(Debug, Clone, Deserialize)]
pub struct SendResponse {
    #[serde(default)]
    pub messages: Vec<SentMessage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SentMessage {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorResponse {
    pub error: GraphError,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: String,
}
