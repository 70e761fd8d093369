//! Operator notifications in the tenant's operators' Telegram chat, and the sweeps that
//! keep approvals honest: drafts expire, and escalations nobody handles notify again.
//! Notifications are rows sent by the dispatcher, so a notice is never lost with a process.

use std::time::Duration;

use serde::Serialize;
use switchboard_core::UnknownValue;
use uuid::Uuid;

use crate::drafts::DraftTx;
use crate::outbox::ChannelInfo;
use crate::{Result, Store, StoreError};

/// The operators' chat of a tenant, when one is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorChat {
    pub channel_id: Uuid,
    pub chat_id: i64,
}

/// A notification the dispatcher is sending, leased to it (no transaction stays open while
/// the platform is called); only the lease's holder records how it went.
pub struct NotificationClaim {
    pool: sqlx::PgPool,
    lease: Uuid,
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub channel: ChannelInfo,
    pub chat_id: i64,
    pub body: String,
    pub conversation_id: Uuid,
    pub suggestion_id: Option<Uuid>,
    /// It announces an escalation: an operator answers it, nothing approves it.
    pub escalation: bool,
    pub attempts: i32,
}

/// The notification an operator pressed a button on or replied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub suggestion_id: Option<Uuid>,
    pub body: String,
}

/// What a sweep changed, for the live feed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Swept {
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub id: Uuid,
}

/// Whether tenant `t`'s working hours are on now, in its time zone: the rule of
/// `WorkingHours::is_open`, hours that cross midnight included.
const OPEN_NOW: &str = "(SELECT CASE
        -- A zone this PostgreSQL does not know (its tzdata older than chrono-tz's) is
        -- never open here, rather than an error that stops the sweep.
        WHEN NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = t.timezone)
        THEN false
        WHEN t.working_hours_start <= t.working_hours_end
        THEN extract(isodow FROM l)::smallint = ANY (t.working_days)
             AND l::time >= t.working_hours_start AND l::time < t.working_hours_end
        ELSE (extract(isodow FROM l)::smallint = ANY (t.working_days)
              AND l::time >= t.working_hours_start)
          OR ((extract(isodow FROM l)::smallint + 5) % 7 + 1 = ANY (t.working_days)
              AND l::time < t.working_hours_end)
        END
     FROM (SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = t.timezone)
                  THEN now() AT TIME ZONE t.timezone END AS l) AS local)";

/// Why a queued "we are checking" message must not go out any more (null: it may): the
/// draft it speaks for no longer waits for approval, or the bot may no longer speak.
pub(crate) const CHECKING_STALE: &str = "CASE
    WHEN NOT EXISTS (SELECT 1 FROM ai_suggestions w WHERE w.based_on_message_id = o.in_reply_to
                     AND w.tenant_id = o.tenant_id AND w.status = 'pending'
                     AND w.decision = 'NEED_APPROVAL')
      THEN 'the draft no longer waits for approval'
    WHEN c.status NOT IN ('active', 'waiting_customer') THEN 'the conversation is ' || c.status
    WHEN c.operator_active_until > now() THEN 'an operator has taken over'
    WHEN EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.customer_id
                 AND k.channel_id = c.channel_id AND k.status = 'revoked')
      THEN 'the customer revoked consent'
  END";

impl DraftTx {
    /// Queues a notice for the tenant's operators' chat, if the tenant has one.
    pub async fn notify_operators(
        &mut self,
        suggestion_id: Uuid,
        escalation_id: Option<Uuid>,
        body: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO operator_notifications (id, tenant_id, channel_id, chat_id, conversation_id,
                                                 suggestion_id, escalation_id, body)
             SELECT $1, t.id, t.operator_channel_id, t.operator_chat_id, $3, $4, $5, $6
             FROM tenants t JOIN channels ch ON ch.id = t.operator_channel_id AND ch.is_active
             WHERE t.id = $2 AND t.operator_chat_id IS NOT NULL",
        )
        .bind(Uuid::now_v7())
        .bind(self.tenant_id)
        .bind(self.conversation_id)
        .bind(suggestion_id)
        .bind(escalation_id)
        .bind(body)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    pub async fn operator_chat(&self, tenant_id: Uuid) -> Result<Option<OperatorChat>> {
        let row: Option<(Option<Uuid>, Option<i64>)> = sqlx::query_as(
            "SELECT operator_channel_id, operator_chat_id FROM tenants WHERE id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((Some(channel_id), Some(chat_id))) => Some(OperatorChat {
                channel_id,
                chat_id,
            }),
            _ => None,
        })
    }

    /// Leases the most overdue pending notification for `hold`, committed at once. `hold`
    /// must outlast the platform call: a lease that runs out lets another dispatcher post
    /// the notice again.
    pub async fn claim_notification(&self, hold: Duration) -> Result<Option<NotificationClaim>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            tenant_id: Uuid,
            channel_id: Uuid,
            kind: String,
            config: serde_json::Value,
            credentials: Option<Vec<u8>>,
            chat_id: i64,
            body: String,
            conversation_id: Uuid,
            suggestion_id: Option<Uuid>,
            escalation: bool,
            attempts: i32,
        }
        let lease = Uuid::now_v7();
        let row: Option<Row> = sqlx::query_as(
            "UPDATE operator_notifications n
             SET lease = $1, leased_until = now() + $2 * interval '1 millisecond'
             FROM channels ch
             WHERE ch.id = n.channel_id
               AND n.id = (SELECT id FROM operator_notifications
                           WHERE status = 'pending' AND next_attempt_at <= now()
                             AND (leased_until IS NULL OR leased_until <= now())
                           ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING n.id, n.tenant_id, n.channel_id, ch.kind, ch.config, ch.credentials,
                       n.chat_id, n.body, n.conversation_id, n.suggestion_id,
                       n.escalation_id IS NOT NULL AS escalation, n.attempts",
        )
        .bind(lease)
        .bind(hold.as_millis() as f64)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(NotificationClaim {
            pool: self.pool.clone(),
            lease,
            id: r.id,
            tenant_id: r.tenant_id,
            channel: ChannelInfo {
                id: r.channel_id,
                kind: r
                    .kind
                    .parse()
                    .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))?,
                config: r.config,
                credentials: r.credentials,
            },
            chat_id: r.chat_id,
            body: r.body,
            conversation_id: r.conversation_id,
            suggestion_id: r.suggestion_id,
            escalation: r.escalation,
            attempts: r.attempts,
        }))
    }

    /// The notification behind a Telegram message in the operators' chat.
    pub async fn notification_by_message(
        &self,
        tenant_id: Uuid,
        chat_id: i64,
        notice_message_id: i64,
    ) -> Result<Option<Notification>> {
        let row: Option<(Uuid, Uuid, Option<Uuid>, String)> = sqlx::query_as(
            "SELECT id, conversation_id, suggestion_id, body FROM operator_notifications
             WHERE tenant_id = $1 AND chat_id = $2 AND notice_message_id = $3",
        )
        .bind(tenant_id)
        .bind(chat_id)
        .bind(notice_message_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(id, conversation_id, suggestion_id, body)| Notification {
                id,
                conversation_id,
                suggestion_id,
                body,
            }),
        )
    }

    /// Expires pending drafts past the tenant's approval TTL or whose WhatsApp window
    /// closed. Safe to run from every dispatcher at once.
    pub async fn expire_pending_drafts(&self) -> Result<Vec<Swept>> {
        let rows: Vec<Swept> = sqlx::query_as(&format!(
            "UPDATE ai_suggestions s SET status = 'expired', updated_at = now()
             FROM conversations c, tenants t, channels ch, customers cu
             WHERE s.status = 'pending' AND c.id = s.conversation_id AND t.id = s.tenant_id
               AND ch.id = c.channel_id AND cu.id = c.customer_id
               AND ({}) IS NOT NULL
             RETURNING s.tenant_id, s.conversation_id, s.id",
            crate::actions::EXPIRED_WHY
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Customers whose answer has waited for approval longer than the tenant's
    /// `checking_after_minutes` are told the tenant's `checking_message`, once per waiting
    /// draft (the key `checking:<message>`), and only while the shop works (at night the
    /// night reply speaks) and the bot may speak: the conversation active or waiting for
    /// the customer, no takeover, no opt-out, the channel on, no other reply to that message
    /// queued. The dispatcher checks the same again when it sends ([`CHECKING_STALE`]).
    /// Safe to run from every dispatcher at once.
    pub async fn queue_checking_messages(&self) -> Result<Vec<Swept>> {
        let rows: Vec<Swept> = sqlx::query_as(&format!(
            "INSERT INTO outbox (id, tenant_id, conversation_id, channel_id, message_id, role,
                                 body, in_reply_to, idempotency_key, due_at, next_attempt_at)
             SELECT gen_random_uuid(), s.tenant_id, s.conversation_id, c.channel_id,
                    gen_random_uuid(), 'assistant', t.checking_message, s.based_on_message_id,
                    'checking:' || s.based_on_message_id, now(), now()
             FROM ai_suggestions s
             JOIN conversations c ON c.id = s.conversation_id
             JOIN channels ch ON ch.id = c.channel_id AND ch.is_active
             JOIN tenants t ON t.id = s.tenant_id
             WHERE s.status = 'pending' AND s.decision = 'NEED_APPROVAL'
               AND t.checking_after_minutes > 0 AND t.status = 'active'
               AND s.created_at + t.checking_after_minutes * interval '1 minute' <= now()
               AND c.status IN ('active', 'waiting_customer')
               AND NOT COALESCE(c.operator_active_until > now(), false)
               AND NOT EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.customer_id
                               AND k.channel_id = c.channel_id AND k.status = 'revoked')
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.conversation_id = s.conversation_id
                               AND o.in_reply_to = s.based_on_message_id)
               AND {OPEN_NOW}
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING tenant_id, conversation_id, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Forwards a customer's message to the tenant's operators' chat when its conversation
    /// has an escalation open since before it (the customer wrote again, or picked one of
    /// the offered answers, while waiting for a person), so an operator working from the
    /// chat sees it and can reply to the notice. Once per message; a no-op when there is
    /// no open escalation or no operators' chat. Returns whether a notice was queued.
    pub async fn forward_to_operators(
        &self,
        tenant_id: Uuid,
        conversation_id: Uuid,
        message_id: Uuid,
        text: &str,
    ) -> Result<bool> {
        let excerpt: String = text.chars().take(1000).collect();
        let n = sqlx::query(
            "INSERT INTO operator_notifications (id, tenant_id, channel_id, chat_id, conversation_id,
                                                 suggestion_id, escalation_id, body, message_id)
             SELECT $1, t.id, t.operator_channel_id, t.operator_chat_id, e.conversation_id,
                    e.suggestion_id, e.id, $5, $4
             FROM escalation_events e JOIN tenants t ON t.id = e.tenant_id
             JOIN channels ch ON ch.id = t.operator_channel_id AND ch.is_active
             WHERE e.tenant_id = $2 AND e.conversation_id = $3 AND e.status = 'pending'
               AND t.operator_chat_id IS NOT NULL
               AND e.created_at < (SELECT created_at FROM messages WHERE id = $4)
             ORDER BY e.created_at DESC LIMIT 1
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(conversation_id)
        .bind(message_id)
        .bind(format!(
            "💬 The customer wrote again while waiting for a person:\n{excerpt}\n\nReply to this message to answer them."
        ))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Escalations pending longer than the tenant's SLA since they were last announced:
    /// each is announced again (live, and in the operators' chat if there is one).
    pub async fn renotify_escalations(&self) -> Result<Vec<Swept>> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, Uuid, Uuid, String, i32)> = sqlx::query_as(
            "UPDATE escalation_events e SET last_notified_at = now(), notify_count = notify_count + 1
             FROM tenants t
             WHERE e.status = 'pending' AND t.id = e.tenant_id
               AND COALESCE(e.last_notified_at, e.created_at) + t.escalation_sla_minutes * interval '1 minute' <= now()
             RETURNING e.tenant_id, e.conversation_id, e.id, e.summary, e.notify_count",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (tenant_id, conversation_id, id, summary, count) in &rows {
            sqlx::query(
                "INSERT INTO operator_notifications (id, tenant_id, channel_id, chat_id, conversation_id,
                                                     suggestion_id, escalation_id, body)
                 SELECT $1, t.id, t.operator_channel_id, t.operator_chat_id, $3,
                        e.suggestion_id, e.id, $5
                 FROM tenants t JOIN channels ch ON ch.id = t.operator_channel_id AND ch.is_active
                 JOIN escalation_events e ON e.id = $4
                 WHERE t.id = $2 AND t.operator_chat_id IS NOT NULL",
            )
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(conversation_id)
            .bind(id)
            .bind(format!("⏰ Still waiting for an operator (reminder {count}).\n{summary}"))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(tenant_id, conversation_id, id, _, _)| Swept {
                tenant_id,
                conversation_id,
                id,
            })
            .collect())
    }
}

impl NotificationClaim {
    /// Records the posted notice, if the lease is still this claim's.
    pub async fn sent(self, notice_message_id: i64) -> Result<()> {
        let recorded = sqlx::query(
            "UPDATE operator_notifications SET status = 'sent', notice_message_id = $3,
                    attempts = attempts + 1, last_error = NULL, lease = NULL, leased_until = NULL
             WHERE id = $1 AND lease = $2",
        )
        .bind(self.id)
        .bind(self.lease)
        .bind(notice_message_id)
        .execute(&self.pool)
        .await?;
        // Another dispatcher holds the notice now and will post it again: this copy's
        // buttons and replies find no row, so its id goes in the error for an operator.
        held(
            recorded.rows_affected(),
            &format!("the notice ({notice_message_id})"),
        )
    }

    /// Puts the notification back for another attempt after `after`, or fails it for good.
    pub async fn retry(self, error: &str, after: Duration, give_up: bool) -> Result<()> {
        let recorded = sqlx::query(
            "UPDATE operator_notifications SET attempts = attempts + 1, last_error = $3,
                    status = CASE WHEN $4 THEN 'failed' ELSE 'pending' END,
                    next_attempt_at = now() + $5 * interval '1 millisecond',
                    lease = NULL, leased_until = NULL
             WHERE id = $1 AND lease = $2",
        )
        .bind(self.id)
        .bind(self.lease)
        .bind(error)
        .bind(give_up)
        .bind(after.as_millis() as f64)
        .execute(&self.pool)
        .await?;
        held(recorded.rows_affected(), "the outcome")
    }
}

/// Whether an update made under a notice's lease found the lease still its own.
fn held(rows: u64, what: &str) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "the notification's lease ran out before {what} was recorded"
        )))
    }
}
