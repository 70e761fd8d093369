//! WhatsApp Cloud API: signed webhooks in, the Graph API out.

pub mod inbound;
pub mod wire;
