//! Domain types shared by every Switchboard crate. Pure data: no IO.

pub mod adapter;
pub mod channel;
pub mod draft;
pub mod envelope;
pub mod inbound;
pub mod knowledge;
pub mod lead;
pub mod outbound;
pub mod settings;
pub mod status;

pub use adapter::{ChannelAdapter, LiveFeed, Pause, RateLimit, SendError, SendReceipt};
pub use channel::ChannelKind;
pub use draft::{Decision, DraftSignals};
pub use envelope::Envelope;
pub use inbound::{
    Attachment, ChannelRef, CustomerMessage, DeliveryStatus, DeliveryUpdate, InboundBody,
    InboundEvent, Normalized, Sender,
};
pub use lead::{LEAD_FIELDS, Lead};
pub use outbound::OutboundMessage;
pub use status::{ConversationStatus, Mode, Role, SuggestionStatus, UnknownValue};

/// Compares secrets in constant time, so response times say nothing about them.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An error with its causes, for logs: "database error: pool timed out".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_secrets() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
