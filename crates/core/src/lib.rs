//! Domain types shared by every Switchboard crate. Pure data: no IO.

pub mod adapter;
pub mod channel;
pub mod envelope;
pub mod inbound;
pub mod knowledge;
pub mod outbound;
pub mod status;

pub use adapter::{ChannelAdapter, LiveFeed, SendError, SendReceipt};
pub use channel::ChannelKind;
pub use envelope::Envelope;
pub use inbound::{Attachment, InboundEvent, Sender};
pub use outbound::OutboundMessage;
pub use status::{ConversationStatus, Mode, Role, UnknownValue};
