use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Result, Store};

/// Which page of a conversation to read: the newest `limit` messages, or the `limit`
/// before message `before`. Pages are returned oldest first.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Page {
    pub before: Option<Uuid>,
    pub limit: Option<u32>,
}

impl Page {
    pub const DEFAULT: i64 = 100;
    pub const MAX: i64 = 500;

    pub fn limit(&self) -> i64 {
        self.limit
            .map_or(Self::DEFAULT, |l| i64::from(l).clamp(1, Self::MAX))
    }

    /// The message to read before, for a page read newest first and then reversed; with
    /// `before` when the page is full, so the caller can ask for the one before it.
    pub fn turn<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> (Vec<T>, Option<Uuid>) {
        let full = rows.len() as i64 >= self.limit();
        rows.reverse();
        let before = if full { rows.first().map(id) } else { None };
        (rows, before)
    }
}

/// The end of a query over messages `m`: rows older than the page's `before` message
/// (parameter `$n`), newest first, at most the limit (parameter `$n+1`).
pub(crate) fn page_sql(n: u8) -> String {
    format!(
        "AND (${n}::uuid IS NULL OR (m.created_at, m.id) <
             (SELECT created_at, id FROM messages WHERE id = ${n}))
         ORDER BY m.created_at DESC, m.id DESC LIMIT ${}",
        n + 1
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TranscriptEntry {
    pub id: Uuid,
    pub role: String,
    pub text: String,
    pub at: DateTime<Utc>,
    /// The answers the message offered to pick from.
    #[sqlx(json)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

impl Store {
    /// A page of a customer's messages on one channel, across their conversations,
    /// oldest first, and the message to page back from when there are older ones.
    pub async fn transcript(
        &self,
        tenant_id: Uuid,
        channel_id: Uuid,
        customer_external_id: &str,
        page: Page,
    ) -> Result<(Vec<TranscriptEntry>, Option<Uuid>)> {
        let rows: Vec<TranscriptEntry> = sqlx::query_as(&format!(
            "SELECT m.id, m.role, m.content AS text, m.created_at AS at, m.choices
             FROM messages m
             JOIN conversations c ON c.id = m.conversation_id
             JOIN customers cu ON cu.id = c.customer_id
             WHERE m.tenant_id = $1 AND cu.tenant_id = $1 AND cu.channel_id = $2
               AND cu.external_id = $3 AND m.role <> 'system' {}",
            page_sql(4)
        ))
        .bind(tenant_id)
        .bind(channel_id)
        .bind(customer_external_id)
        .bind(page.before)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        Ok(page.turn(rows, |r| r.id))
    }
}
