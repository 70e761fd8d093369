//! The closed vocabularies of the data model, mirrored by CHECK constraints in the migrations.

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

impl UnknownValue {
    pub fn new(what: &'static str, value: &str) -> Self {
        Self {
            what,
            value: value.to_owned(),
        }
    }
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue::new($what, s)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Where a conversation stands; `closed` is final for the bot.
    ConversationStatus, "conversation status" {
        Active = "active",
        WaitingCustomer = "waiting_customer",
        WaitingOperator = "waiting_operator",
        Escalated = "escalated",
        Resolved = "resolved",
        Closed = "closed",
    }
);

text_enum!(
    /// How much the bot may do on its own in a conversation.
    Mode, "mode" {
        Learning = "learning",
        SemiAuto = "semi-auto",
        Auto = "auto",
    }
);

text_enum!(
    /// Where a draft stands. `pending` waits for an operator; `queued` is an AUTO_SEND
    /// draft whose reply waits in the outbox for its human delay, and is never offered for
    /// approval.
    SuggestionStatus, "suggestion status" {
        Pending = "pending",
        Queued = "queued",
        Approved = "approved",
        Edited = "edited",
        Rejected = "rejected",
        Sent = "sent",
        Superseded = "superseded",
        Expired = "expired",
    }
);

text_enum!(
    /// Who wrote a message.
    Role, "role" {
        Customer = "customer",
        Assistant = "assistant",
        Operator = "operator",
        System = "system",
    }
);
