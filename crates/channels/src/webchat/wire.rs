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
        /// Answers the visitor can pick instead of typing.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        choices: Vec<String>,
    },
    Typing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_reach_the_widget_only_when_offered() {
        let at = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let msg = |choices: Vec<String>| LiveEvent::Message {
            id: Uuid::nil(),
            role: "assistant".into(),
            text: "Which one?".into(),
            at,
            choices,
        };
        let with = serde_json::to_value(msg(vec!["Shipping".into(), "Returns".into()])).unwrap();
        assert_eq!(with["type"], "message");
        assert_eq!(with["choices"], serde_json::json!(["Shipping", "Returns"]));
        let without = serde_json::to_value(msg(vec![])).unwrap();
        assert!(without.get("choices").is_none());
    }
}
