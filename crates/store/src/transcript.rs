use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TranscriptEntry {
    pub id: Uuid,
    pub role: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

impl Store {
    /// A customer's messages on one channel, across their conversations, oldest first.
    pub async fn transcript(
        &self,
        tenant_id: Uuid,
        channel_id: Uuid,
        customer_external_id: &str,
    ) -> Result<Vec<TranscriptEntry>> {
        Ok(sqlx::query_as(
            "SELECT m.id, m.role, m.content AS text, m.created_at AS at
             FROM messages m
             JOIN conversations c ON c.id = m.conversation_id
             JOIN customers cu ON cu.id = c.customer_id
             WHERE m.tenant_id = $1 AND cu.tenant_id = $1 AND cu.channel_id = $2
               AND cu.external_id = $3 AND m.role <> 'system'
             ORDER BY m.created_at, m.id",
        )
        .bind(tenant_id)
        .bind(channel_id)
        .bind(customer_external_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
