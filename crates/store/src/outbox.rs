//! The dispatcher's side of the outbox. A claim is a lease on the row, taken and committed
//! before the platform is called, so no transaction stays open across the network; every
//! record of the outcome checks that the lease is still this dispatcher's. Two dispatchers
//! never send the same row while its lease lives. A dispatcher that dies between the
//! platform's acceptance and the record leaves a lease that runs out, and the row goes
//! again: sends are at least once towards the platform, and that window is one part's send.

use std::time::Duration;

use switchboard_core::{ChannelKind, OutboundMessage, UnknownValue};
use uuid::Uuid;

use crate::{Result, Store, StoreError};

/// The channel a row goes out on, credentials still encrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInfo {
    pub id: Uuid,
    pub kind: ChannelKind,
    pub config: serde_json::Value,
    pub credentials: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: Uuid,
    pub channel: ChannelInfo,
    pub suggestion_id: Option<Uuid>,
    pub role: String,
    pub attempts: i32,
    /// Set when the reply must not go out: a newer customer message arrived, or the bot
    /// may no longer speak in the conversation.
    pub stale_reason: Option<String>,
    pub message: OutboundMessage,
    /// Parts of a long reply that went out on earlier attempts, and the first one's id.
    pub parts_sent: usize,
    pub first_external_id: Option<String>,
}

pub struct Claim {
    pool: sqlx::PgPool,
    lease: Uuid,
    hold: Duration,
    pub item: OutboxItem,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    conversation_id: Uuid,
    suggestion_id: Option<Uuid>,
    message_id: Uuid,
    role: String,
    body: String,
    attempts: i32,
    kind: String,
    config: serde_json::Value,
    credentials: Option<Vec<u8>>,
    recipient: String,
    reply_to: Option<String>,
    stale: Option<String>,
    choices: sqlx::types::Json<Vec<String>>,
    human_sent: bool,
    reply_context: Option<serde_json::Value>,
    parts_sent: i32,
    first_external_id: Option<String>,
}

impl Row {
    fn item(self) -> Result<OutboxItem> {
        Ok(OutboxItem {
            id: self.id,
            channel: ChannelInfo {
                id: self.channel_id,
                kind: self
                    .kind
                    .parse()
                    .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))?,
                config: self.config,
                credentials: self.credentials,
            },
            suggestion_id: self.suggestion_id,
            role: self.role.clone(),
            attempts: self.attempts,
            stale_reason: self.stale,
            message: OutboundMessage {
                message_id: self.message_id,
                tenant_id: self.tenant_id,
                channel_id: self.channel_id,
                conversation_id: self.conversation_id,
                recipient: self.recipient,
                part: 0,
                text: self.body,
                reply_to_external_id: self.reply_to,
                choices: self.choices.0,
                human_sent: self.human_sent,
                role: self.role.clone(),
                reply_context: self.reply_context.unwrap_or_default(),
            },
            parts_sent: usize::try_from(self.parts_sent).unwrap_or(0),
            first_external_id: self.first_external_id,
        })
    }
}

/// An outbox row with its channel, recipient and the platform id of the message it answers.
static SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "
    SELECT o.id, o.tenant_id, o.channel_id, o.conversation_id, o.suggestion_id, o.message_id,
           o.role, o.body, o.attempts, ch.kind, ch.config, ch.credentials,
           cu.external_id AS recipient, m.external_id AS reply_to, o.choices,
           o.approved_by IS NOT NULL AS human_sent, m.metadata AS reply_context,
           o.parts_sent, o.first_external_id,
           CASE
             -- An operator's decision, or a reply that has begun to go out, stands, except
             -- against a customer who opted out.
             WHEN o.approved_by IS NOT NULL OR o.parts_sent > 0 THEN
               CASE WHEN EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.customer_id
                                 AND k.channel_id = c.channel_id AND k.status = 'revoked')
                 THEN 'the customer revoked consent' END
             -- We are checking: only while its draft waits and the bot may speak.
             WHEN o.idempotency_key LIKE 'checking:%' THEN {checking}
             -- A holding or night reply: only an opt-out stops it (the opt-out's own
             -- confirmation is exactly what must go out).
             WHEN o.suggestion_id IS NULL THEN
               CASE WHEN o.idempotency_key NOT LIKE 'consent:%'
                         AND EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.customer_id
                                     AND k.channel_id = c.channel_id AND k.status = 'revoked')
                 THEN 'the customer revoked consent' END
             -- A drafted reply whose draft was taken back while it was in flight.
             WHEN sg.status IN ('superseded', 'rejected', 'expired')
               THEN 'the draft was ' || sg.status
             WHEN EXISTS (SELECT 1 FROM messages n WHERE n.conversation_id = o.conversation_id
                          AND n.role = 'customer' AND n.created_at > m.created_at)
               THEN 'a newer customer message arrived'
             WHEN c.status IN ('escalated', 'waiting_operator', 'resolved', 'closed')
               THEN 'the conversation is ' || c.status
             WHEN c.operator_active_until > now() THEN 'an operator has taken over'
             WHEN EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.customer_id
                          AND k.channel_id = c.channel_id AND k.status = 'revoked')
               THEN 'the customer revoked consent'
           END AS stale
    FROM outbox o
    JOIN conversations c ON c.id = o.conversation_id
    JOIN customers cu ON cu.id = c.customer_id
    JOIN channels ch ON ch.id = o.channel_id
    LEFT JOIN messages m ON m.id = o.in_reply_to
    LEFT JOIN ai_suggestions sg ON sg.id = o.suggestion_id",
        checking = crate::notify::CHECKING_STALE
    )
});

impl Store {
    /// Leases up to `limit` of the most overdue sendable rows to `lease` for `hold`, at most
    /// one per conversation and none of a conversation with a send under way, so that one
    /// conversation's replies go out one after another. The leases are committed at once;
    /// the caller sends with no transaction open. One claim for many rows: when thousands of
    /// replies fall due together, a claim per row would cost the database more than the
    /// sends. A row that cannot be read is left to its lease and logged.
    pub async fn claim_due(&self, lease: Uuid, hold: Duration, limit: usize) -> Result<Vec<Claim>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            // Walks the due index in order and stops once `limit` rows are taken, so a
            // claim does not sort the whole backlog. A row is eligible only as the first
            // due row of its conversation, and only while no row of it is leased: rows
            // locked by a concurrent claim still count as earlier (its snapshot sees them
            // unleased), so concurrent claims do not take two replies of one conversation
            // either, short of a reply committed between their two snapshots that falls
            // due no later than its sibling.
            "WITH due AS (
                 SELECT o.id FROM outbox o
                 WHERE o.status = 'pending' AND o.next_attempt_at <= now()
                   AND (o.leased_until IS NULL OR o.leased_until <= now())
                   AND NOT EXISTS (SELECT 1 FROM outbox b
                                   WHERE b.conversation_id = o.conversation_id
                                     AND b.status = 'pending' AND b.id <> o.id
                                     AND (b.leased_until > now()
                                          OR (b.next_attempt_at <= now()
                                              AND (b.next_attempt_at, b.id) < (o.next_attempt_at, o.id))))
                 ORDER BY o.next_attempt_at LIMIT $3 FOR UPDATE OF o SKIP LOCKED)
             UPDATE outbox o SET lease = $1, leased_until = now() + $2 * interval '1 millisecond'
             FROM due WHERE o.id = due.id RETURNING o.id",
        )
        .bind(lease)
        .bind(hold.as_millis() as f64)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Read after the claim committed, so the staleness each row carries is as of now.
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{} WHERE o.id = ANY($1) ORDER BY o.next_attempt_at",
            *SELECT
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let id = r.id;
                match r.item() {
                    Ok(item) => Some(Claim {
                        pool: self.pool.clone(),
                        lease,
                        hold,
                        item,
                    }),
                    Err(e) => {
                        tracing::warn!(outbox_id = %id, error = %e, "an outbox row cannot be read");
                        None
                    }
                }
            })
            .collect())
    }

    /// How long until the next row `claim_due` could take falls due, if one does; zero when
    /// one is due. (A lease that runs out is seen at the next poll.)
    pub async fn next_send_due(&self) -> Result<Option<Duration>> {
        let secs: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM o.next_attempt_at - clock_timestamp())::float8 FROM outbox o
             WHERE o.status = 'pending' AND (o.leased_until IS NULL OR o.leased_until <= now())
               AND NOT EXISTS (SELECT 1 FROM outbox b
                               WHERE b.conversation_id = o.conversation_id
                                 AND b.status = 'pending' AND b.leased_until > now())
             ORDER BY o.next_attempt_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    /// Replies whose human delay is still running, where the tenant wants the typing
    /// indicator shown.
    pub async fn waiting_replies(&self, limit: i64) -> Result<Vec<OutboxItem>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{} WHERE o.status = 'pending' AND o.attempts = 0 AND o.due_at > now() AND ch.is_active
               AND COALESCE((SELECT h.typing_indicator_enabled FROM human_delay_settings h
                             WHERE h.tenant_id = o.tenant_id), true)
             ORDER BY o.due_at LIMIT $1",
            *SELECT
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Row::item).collect()
    }
}

/// Renews one claimed row's lease.
pub struct LeaseKeeper {
    pool: sqlx::PgPool,
    id: Uuid,
    lease: Uuid,
    hold: Duration,
}

impl LeaseKeeper {
    /// Extends the lease while the send runs; false when it is no longer ours.
    pub async fn renew(&self) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE outbox SET leased_until = now() + $3 * interval '1 millisecond'
             WHERE id = $1 AND lease = $2 AND status = 'pending'",
        )
        .bind(self.id)
        .bind(self.lease)
        .bind(self.hold.as_millis() as f64)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }
}

impl Claim {
    /// The send went out: record the message as the transcript's truth and close the row.
    /// Locks in the one order: conversation, suggestion, outbox. False when the lease was
    /// lost to another dispatcher, which records its own send.
    pub async fn sent(self, external_id: Option<&str>) -> Result<bool> {
        let text = self.item.message.text.clone();
        self.sent_as(&text, external_id).await
    }

    /// As `sent`, recording `text` as what went out: the parts of a long reply that were
    /// sent before the customer opted out.
    pub async fn sent_as(self, text: &str, external_id: Option<&str>) -> Result<bool> {
        let i = &self.item;
        let m = &i.message;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE conversations SET unread_count = 0, updated_at = now(), version = version + 1
             WHERE id = $1",
        )
        .bind(m.conversation_id)
        .execute(&mut *tx)
        .await?;
        if let Some(s) = i.suggestion_id {
            sqlx::query(
                "UPDATE ai_suggestions SET status = 'sent', updated_at = now() WHERE id = $1",
            )
            .bind(s)
            .execute(&mut *tx)
            .await?;
        }
        let closed = sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1,
                               last_error = NULL, lease = NULL, leased_until = NULL
             WHERE id = $1 AND lease = $2 AND status = 'pending'",
        )
        .bind(i.id)
        .bind(self.lease)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if closed == 0 {
            tracing::warn!(outbox_id = %i.id, "the lease on this send was lost; it is not recorded twice");
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, role, content,
                                   external_id, delivery_status, in_reply_to, choices,
                                   created_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, 'sent', o.in_reply_to, o.choices,
                    clock_timestamp()
             FROM outbox o WHERE o.id = $8",
        )
        .bind(m.message_id)
        .bind(m.tenant_id)
        .bind(m.conversation_id)
        .bind(m.channel_id)
        .bind(&i.role)
        .bind(text)
        .bind(external_id)
        .bind(i.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The reply must not go out any more.
    pub async fn supersede(self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(s) = self.item.suggestion_id {
            sqlx::query(
                "UPDATE ai_suggestions SET status = 'superseded', updated_at = now()
                 WHERE id = $1 AND status NOT IN ('sent', 'rejected')",
            )
            .bind(s)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query(
            "UPDATE outbox SET status = 'superseded', last_error = $3, lease = NULL, leased_until = NULL
             WHERE id = $1 AND lease = $2 AND status = 'pending'",
        )
        .bind(self.item.id)
        .bind(self.lease)
        .bind(&self.item.stale_reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 1 {
            tx.commit().await?;
        }
        Ok(())
    }

    /// Whether the customer opted out since this row was claimed; the opt-out's own
    /// confirmation is never stopped. First waits for a message of this customer being
    /// stored right now, in any of their conversations on the channel (its transaction
    /// holds the customer's row, and a STOP revokes consent in it); the check that follows
    /// is a statement of its own, so it sees what that transaction committed.
    pub async fn opted_out(&self) -> Result<bool> {
        sqlx::query(
            "SELECT 1 FROM customers
             WHERE id = (SELECT c.customer_id FROM outbox o
                         JOIN conversations c ON c.id = o.conversation_id WHERE o.id = $1)
             FOR SHARE",
        )
        .bind(self.item.id)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox o
                 JOIN conversations c ON c.id = o.conversation_id
                 JOIN consents k ON k.customer_id = c.customer_id AND k.channel_id = c.channel_id
                 WHERE o.id = $1 AND k.status = 'revoked' AND o.idempotency_key NOT LIKE 'consent:%')",
        )
        .bind(self.item.id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// What renews this claim's lease from a task of its own while the send runs.
    pub fn lease_keeper(&self) -> LeaseKeeper {
        LeaseKeeper {
            pool: self.pool.clone(),
            id: self.item.id,
            lease: self.lease,
            hold: self.hold,
        }
    }

    /// The first `parts_sent` parts of a long reply went out; a retry starts after them.
    /// Committed at once, and the lease renewed for the next part.
    pub async fn part_sent(&self, parts_sent: usize, external_id: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET parts_sent = $3, first_external_id = COALESCE(first_external_id, $4),
                               leased_until = now() + $5 * interval '1 millisecond'
             WHERE id = $1 AND lease = $2",
        )
        .bind(self.item.id)
        .bind(self.lease)
        .bind(i32::try_from(parts_sent).unwrap_or(i32::MAX))
        .bind(external_id)
        .bind(self.hold.as_millis() as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Tries again after `after`, or gives up into the dead letters.
    pub async fn retry(self, error: &str, after: Duration, give_up: bool) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $3,
                    status = CASE WHEN $4 THEN 'dead' ELSE 'pending' END,
                    next_attempt_at = now() + $5 * interval '1 millisecond',
                    lease = NULL, leased_until = NULL
             WHERE id = $1 AND lease = $2 AND status = 'pending'",
        )
        .bind(self.item.id)
        .bind(self.lease)
        .bind(error)
        .bind(give_up)
        .bind(after.as_millis() as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The customer blocked us or is gone: fail now and stop trying this customer.
    pub async fn unreachable(self, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE customers SET unreachable = true
             WHERE id = (SELECT customer_id FROM conversations WHERE id = $1)",
        )
        .bind(self.item.message.conversation_id)
        .execute(&self.pool)
        .await?;
        self.fail(error).await
    }

    /// The chat has a new id (a Telegram group became a supergroup): the customer moves
    /// there, and the row goes again at once without counting an attempt.
    pub async fn moved(self, recipient: &str) -> Result<()> {
        sqlx::query(
            "UPDATE customers SET external_id = $2,
                    metadata = metadata || jsonb_build_object('migrated_from', external_id)
             WHERE id = (SELECT customer_id FROM conversations WHERE id = $1)",
        )
        .bind(self.item.message.conversation_id)
        .bind(recipient)
        .execute(&self.pool)
        .await?;
        self.defer(Duration::ZERO).await
    }

    /// The 24-hour window is closed: remember it on the customer and fail the free-form
    /// message.
    pub async fn window_closed(self, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE customers SET metadata = metadata || jsonb_build_object('window_closed_at', now())
             WHERE id = (SELECT customer_id FROM conversations WHERE id = $1)",
        )
        .bind(self.item.message.conversation_id)
        .execute(&self.pool)
        .await?;
        self.fail(error).await
    }

    /// Not this time, and not counted as an attempt: a rate limit asks to wait `after`.
    pub async fn defer(self, after: Duration) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = now() + $3 * interval '1 millisecond',
                               lease = NULL, leased_until = NULL
             WHERE id = $1 AND lease = $2",
        )
        .bind(self.item.id)
        .bind(self.lease)
        .bind(after.as_millis() as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A permanent failure: no retry, visible as a dead letter with its reason.
    pub async fn fail(self, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $3, status = 'failed',
                               lease = NULL, leased_until = NULL
             WHERE id = $1 AND lease = $2 AND status = 'pending'",
        )
        .bind(self.item.id)
        .bind(self.lease)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Records a message that went out outside the outbox (a re-engagement template).
    pub async fn record_sent(
        &self,
        m: &OutboundMessage,
        role: &str,
        text: &str,
        external_id: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, role, content, external_id,
                                   delivery_status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'sent', clock_timestamp())",
        )
        .bind(Uuid::now_v7())
        .bind(m.tenant_id)
        .bind(m.conversation_id)
        .bind(m.channel_id)
        .bind(role)
        .bind(text)
        .bind(external_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
