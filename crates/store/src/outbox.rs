//! The dispatcher's side of the outbox. A claim holds the row lock (FOR UPDATE SKIP LOCKED)
//! for as long as the send takes, so two dispatchers never send the same row.

use std::time::Duration;

use switchboard_core::{ChannelKind, OutboundMessage, UnknownValue};
use uuid::Uuid;

use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: Uuid,
    pub channel_kind: ChannelKind,
    pub channel_config: serde_json::Value,
    pub suggestion_id: Option<Uuid>,
    pub role: String,
    pub attempts: i32,
    /// Set when the reply must not go out: a newer customer message arrived, or the bot
    /// may no longer speak in the conversation.
    pub stale_reason: Option<String>,
    pub message: OutboundMessage,
}

pub struct Claim {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pub item: OutboxItem,
}

impl Store {
    /// Claims the most overdue sendable row, if any.
    pub async fn claim_due(&self) -> Result<Option<Claim>> {
        let mut tx = self.pool.begin().await?;
        type Row = (
            Uuid,
            Uuid,
            Uuid,
            Uuid,
            Option<Uuid>,
            Uuid,
            String,
            String,
            i32,
            String,
            serde_json::Value,
            String,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT o.id, o.tenant_id, o.channel_id, o.conversation_id, o.suggestion_id, o.message_id,
                    o.role, o.body, o.attempts, ch.kind, ch.config, cu.external_id, m.external_id,
                    CASE
                      WHEN o.suggestion_id IS NULL THEN NULL
                      WHEN EXISTS (SELECT 1 FROM messages n WHERE n.conversation_id = o.conversation_id
                                   AND n.role = 'customer' AND n.created_at > m.created_at)
                        THEN 'a newer customer message arrived'
                      WHEN c.status IN ('escalated', 'waiting_operator', 'closed')
                        THEN 'the conversation is ' || c.status
                      WHEN c.operator_active_until > now() THEN 'an operator has taken over'
                      WHEN EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.customer_id
                                   AND k.channel_id = c.channel_id AND k.status = 'revoked')
                        THEN 'the customer revoked consent'
                    END
             FROM outbox o
             JOIN conversations c ON c.id = o.conversation_id
             JOIN customers cu ON cu.id = c.customer_id
             JOIN channels ch ON ch.id = o.channel_id
             LEFT JOIN messages m ON m.id = o.in_reply_to
             WHERE o.id = (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= now()
                           ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let (id, tenant_id, channel_id, conversation_id, suggestion_id, message_id) =
            (r.0, r.1, r.2, r.3, r.4, r.5);
        let (role, body, attempts, kind, config, recipient, reply_to, stale) =
            (r.6, r.7, r.8, r.9, r.10, r.11, r.12, r.13);
        Ok(Some(Claim {
            tx,
            item: OutboxItem {
                id,
                channel_kind: kind
                    .parse()
                    .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))?,
                channel_config: config,
                suggestion_id,
                role,
                attempts,
                stale_reason: stale,
                message: OutboundMessage {
                    message_id,
                    tenant_id,
                    channel_id,
                    conversation_id,
                    recipient,
                    text: body,
                    reply_to_external_id: reply_to,
                },
            },
        }))
    }

    /// Replies whose human delay is still running, where the tenant wants the typing
    /// indicator shown.
    pub async fn waiting_replies(
        &self,
        limit: i64,
    ) -> Result<Vec<(Uuid, ChannelKind, OutboundMessage)>> {
        type Row = (Uuid, Uuid, Uuid, Uuid, Uuid, String, String, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.id, o.tenant_id, o.channel_id, o.conversation_id, o.message_id, o.body,
                    ch.kind, cu.external_id
             FROM outbox o JOIN conversations c ON c.id = o.conversation_id
             JOIN customers cu ON cu.id = c.customer_id JOIN channels ch ON ch.id = o.channel_id
             WHERE o.status = 'pending' AND o.attempts = 0 AND o.due_at > now()
               AND COALESCE((SELECT h.typing_indicator_enabled FROM human_delay_settings h
                             WHERE h.tenant_id = o.tenant_id), true)
             ORDER BY o.due_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(
                    id,
                    tenant_id,
                    channel_id,
                    conversation_id,
                    message_id,
                    text,
                    kind,
                    recipient,
                )| {
                    let kind = kind
                        .parse()
                        .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))?;
                    Ok((
                        id,
                        kind,
                        OutboundMessage {
                            message_id,
                            tenant_id,
                            channel_id,
                            conversation_id,
                            recipient,
                            text,
                            reply_to_external_id: None,
                        },
                    ))
                },
            )
            .collect()
    }
}

impl Claim {
    /// The send went out: record the message as the transcript's truth and close the row.
    pub async fn sent(mut self, external_id: Option<&str>) -> Result<()> {
        let i = &self.item;
        let m = &i.message;
        sqlx::query(
            "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, role, content,
                                   external_id, delivery_status, in_reply_to, created_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, 'sent', o.in_reply_to, clock_timestamp()
             FROM outbox o WHERE o.id = $8",
        )
        .bind(m.message_id)
        .bind(m.tenant_id)
        .bind(m.conversation_id)
        .bind(m.channel_id)
        .bind(&i.role)
        .bind(&m.text)
        .bind(external_id)
        .bind(i.id)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1,
                               last_error = NULL WHERE id = $1",
        )
        .bind(i.id)
        .execute(&mut *self.tx)
        .await?;
        if let Some(s) = i.suggestion_id {
            sqlx::query(
                "UPDATE ai_suggestions SET status = 'sent', updated_at = now() WHERE id = $1",
            )
            .bind(s)
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query(
            "UPDATE conversations SET unread_count = 0, updated_at = now(), version = version + 1
             WHERE id = $1",
        )
        .bind(m.conversation_id)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// The reply must not go out any more.
    pub async fn supersede(mut self) -> Result<()> {
        sqlx::query("UPDATE outbox SET status = 'superseded', last_error = $2 WHERE id = $1")
            .bind(self.item.id)
            .bind(&self.item.stale_reason)
            .execute(&mut *self.tx)
            .await?;
        if let Some(s) = self.item.suggestion_id {
            sqlx::query(
                "UPDATE ai_suggestions SET status = 'superseded', updated_at = now()
                 WHERE id = $1 AND status NOT IN ('sent', 'rejected')",
            )
            .bind(s)
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }

    /// Tries again after `after`, or gives up into the dead letters.
    pub async fn retry(mut self, error: &str, after: Duration, give_up: bool) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                    status = CASE WHEN $3 THEN 'dead' ELSE 'pending' END,
                    next_attempt_at = now() + $4 * interval '1 millisecond'
             WHERE id = $1",
        )
        .bind(self.item.id)
        .bind(error)
        .bind(give_up)
        .bind(after.as_millis() as f64)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// A permanent failure: no retry, visible as a dead letter with its reason.
    pub async fn fail(mut self, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2, status = 'failed' WHERE id = $1",
        )
        .bind(self.item.id)
        .bind(error)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}
