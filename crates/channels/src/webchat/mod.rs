//! The built-in web chat: the widget posts JSON to the gateway and listens on a
//! Server-Sent Events stream fed by [`outbound::WebchatAdapter`].

pub mod inbound;
pub mod outbound;
pub mod wire;

use uuid::Uuid;

/// The live-feed topic of one visitor's chat.
pub fn topic(channel_id: Uuid, visitor_id: &str) -> String {
    format!("webchat:{channel_id}:{visitor_id}")
}
