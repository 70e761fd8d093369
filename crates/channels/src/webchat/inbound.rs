use chrono::{DateTime, Utc};
use switchboard_core::{ChannelKind, CustomerMessage, InboundBody, InboundEvent, Sender};
use uuid::Uuid;

use super::wire::PostMessage;
use crate::InboundError;

pub const MAX_ID_CHARS: usize = 128;
pub const MAX_TEXT_CHARS: usize = 4000;

/// The shortest visitor id taken. The visitor id is the only key to a visitor's
/// transcript and event stream, so it must be a secret nobody guesses: the widget makes a
/// random UUID (36 characters); "1" or "alice" would let anyone read that conversation.
pub const MIN_VISITOR_ID_CHARS: usize = 16;
/// Fewer different characters than this is no random id ("aaaaaaaaaaaaaaaa").
const MIN_VISITOR_ID_DISTINCT: usize = 8;

/// A visitor id as the widget's posts and reads (transcript, event stream) must carry it:
/// a random secret of at least 16 characters, so a bad one is a 400 rather than a
/// database error or a door into someone else's conversation.
pub fn check_visitor_id(value: &str) -> Result<(), InboundError> {
    check_id("visitor_id", value)?;
    let distinct: std::collections::HashSet<char> = value.chars().collect();
    if value.chars().count() < MIN_VISITOR_ID_CHARS || distinct.len() < MIN_VISITOR_ID_DISTINCT {
        return Err(InboundError::Invalid {
            field: "visitor_id",
            reason: format!(
                "must be a random id of at least {MIN_VISITOR_ID_CHARS} characters (the widget makes one)"
            ),
        });
    }
    Ok(())
}

fn check_id(field: &'static str, value: &str) -> Result<(), InboundError> {
    let invalid = |reason: &str| InboundError::Invalid {
        field,
        reason: reason.into(),
    };
    if value.trim().is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.chars().count() > MAX_ID_CHARS {
        return Err(invalid("is longer than 128 characters"));
    }
    if value.chars().any(|c| c.is_control() || c == ':') {
        return Err(invalid("must not contain control characters or ':'"));
    }
    Ok(())
}

/// Parses and validates a widget post into the normalized event.
pub fn normalize(
    tenant_id: Uuid,
    channel_id: Uuid,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<InboundEvent, InboundError> {
    let post: PostMessage =
        serde_json::from_slice(body).map_err(|e| InboundError::Malformed(e.to_string()))?;
    check_visitor_id(&post.visitor_id)?;
    check_id("client_message_id", &post.client_message_id)?;
    let text = post.text.trim();
    if text.is_empty() {
        return Err(InboundError::Invalid {
            field: "text",
            reason: "must not be empty".into(),
        });
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(InboundError::Invalid {
            field: "text",
            reason: format!("is longer than {MAX_TEXT_CHARS} characters"),
        });
    }
    // A client message id is the visitor's own: two visitors may pick the same one.
    let id = format!("{}:{}", post.visitor_id, post.client_message_id);
    Ok(InboundEvent {
        tenant_id,
        channel_id,
        channel_kind: ChannelKind::Webchat,
        provider_event_id: id.clone(),
        received_at: now,
        body: InboundBody::Message(CustomerMessage {
            external_message_id: id,
            sender: Sender {
                external_id: post.visitor_id,
                name: None,
            },
            text: text.to_owned(),
            attachments: vec![],
            reply_to_external_id: None,
            metadata: Default::default(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str) -> Result<InboundEvent, InboundError> {
        normalize(Uuid::nil(), Uuid::nil(), body.as_bytes(), Utc::now())
    }

    const V: &str = "2f1c8e0a-5b7d-4e2a-9c3f-6a1b0d4e8f21";

    #[test]
    fn normalizes_a_post() {
        let ev = run(&format!(
            r#"{{"visitor_id":"{V}","client_message_id":"c1","text":" Hi "}}"#
        ))
        .unwrap();
        assert_eq!(ev.provider_event_id, format!("{V}:c1"));
        let InboundBody::Message(m) = ev.body else {
            panic!("a message")
        };
        assert_eq!(m.sender.external_id, V);
        assert_eq!(m.text, "Hi");
    }

    #[test]
    fn says_what_is_wrong() {
        let missing = run(&format!(r#"{{"visitor_id":"{V}","text":"x"}}"#)).unwrap_err();
        assert!(
            missing.to_string().contains("client_message_id"),
            "{missing}"
        );
        assert!(matches!(run("{not json"), Err(InboundError::Malformed(_))));
        assert!(matches!(
            run(&format!(
                r#"{{"visitor_id":"{V}","client_message_id":"c","text":"  "}}"#
            )),
            Err(InboundError::Invalid { field: "text", .. })
        ));
        assert!(matches!(
            run(r#"{"visitor_id":"a:b","client_message_id":"c","text":"x"}"#),
            Err(InboundError::Invalid {
                field: "visitor_id",
                ..
            })
        ));
    }

    /// A guessable visitor id would open someone else's transcript: refused.
    #[test]
    fn a_guessable_visitor_id_is_refused() {
        for guessable in [
            "1",
            "alice",
            "visitor-0000000",
            "aaaaaaaaaaaaaaaaaaaa",
            "1111111111111111",
        ] {
            assert!(check_visitor_id(guessable).is_err(), "{guessable}");
        }
        assert!(check_visitor_id(V).is_ok());
        assert!(check_visitor_id("k3J9xQ2mZp7LwR4v").is_ok());
    }
}
