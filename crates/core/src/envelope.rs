use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The versioned JSON envelope of every bus message. The ids ride outside the payload so
/// that consumers can open their tracing span before they parse anything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u16,
    pub kind: String,
    pub trace_id: Uuid,
    pub tenant_id: Uuid,
    pub channel_id: Uuid,
    #[serde(default)]
    pub conversation_id: Option<Uuid>,
    #[serde(default)]
    pub message_id: Option<Uuid>,
    pub payload: T,
}

impl<T> Envelope<T> {
    pub const VERSION: u16 = 1;

    pub fn new(kind: &str, tenant_id: Uuid, channel_id: Uuid, payload: T) -> Self {
        Self {
            v: Self::VERSION,
            kind: kind.to_owned(),
            trace_id: Uuid::now_v7(),
            tenant_id,
            channel_id,
            conversation_id: None,
            message_id: None,
            payload,
        }
    }
}

/// The kind of envelope that carries an [`InboundEvent`](crate::InboundEvent).
pub const INBOUND_MESSAGE: &str = "inbound.message";
