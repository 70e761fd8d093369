//! The storage side of what operators do. `ConversationLock` is a transaction holding a
//! conversation's row lock, with the writes an operator's action is made of; the flows
//! (`switchboard-flows`) decide which of them happen. Locks are taken in the one order:
//! conversation, then suggestion, then outbox.

use serde::Serialize;
use serde_json::json;
use sqlx::{Postgres, Transaction};
use switchboard_core::{ConversationStatus, Role, SuggestionStatus, UnknownValue};
use uuid::Uuid;

use crate::users::{User, audit, audit_admin};
use crate::{Result, Store, StoreError};

/// Why a pending draft can no longer be sent, as a SQL expression over `s` (suggestion),
/// `t` (tenant), `c` (conversation), `ch` (channel) and `cu` (customer).
pub(crate) const EXPIRED_WHY: &str = "
    CASE WHEN s.created_at + t.approval_ttl_minutes * interval '1 minute' <= now()
           THEN 'the tenant''s approval time limit passed'
         WHEN ch.kind = 'whatsapp' AND (c.last_customer_message_at + interval '24 hours' <= now()
              OR COALESCE((cu.metadata->>'window_closed_at')::timestamptz > c.last_customer_message_at, false))
           THEN 'WhatsApp''s 24-hour customer service window has closed'
    END";

#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub suggestion_id: Uuid,
    pub conversation_id: Uuid,
    /// `approved` or `edited`.
    pub status: SuggestionStatus,
    pub text: String,
    /// True when an earlier approval already queued the send; nothing new was queued.
    pub already: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationAction {
    Takeover,
    Release,
    Resolve,
    Close,
    Reopen,
}

impl ConversationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Takeover => "takeover",
            Self::Release => "release",
            Self::Resolve => "resolve",
            Self::Close => "close",
            Self::Reopen => "reopen",
        }
    }
}

/// A send an operator decided on.
pub struct OperatorSend<'a> {
    pub suggestion_id: Option<Uuid>,
    pub key: String,
    pub role: Role,
    pub body: &'a str,
    pub user_id: Uuid,
    pub with_choices: bool,
    pub delay_ms: u64,
}

/// A draft as an operator acts on it.
#[derive(Debug, Clone)]
pub struct SuggestionRecord {
    pub id: Uuid,
    pub status: SuggestionStatus,
    pub draft: String,
    pub intent: String,
    pub customer_text: String,
    /// Set when the draft can no longer be sent, with the reason.
    pub expired_why: Option<String>,
    /// The engine escalated it: its text is a suggestion for the operator's own answer.
    pub escalated: bool,
}

#[derive(sqlx::FromRow)]
struct SuggestionRow {
    status: String,
    draft: String,
    intent: String,
    customer_text: String,
    expired_why: Option<String>,
    escalated: bool,
}

fn corrupt(e: UnknownValue) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A conversation locked for one operator action; dropped without `commit`, nothing of it
/// is kept.
pub struct ConversationLock {
    tx: Transaction<'static, Postgres>,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub status: ConversationStatus,
    /// An operator's takeover is running.
    pub takeover_active: bool,
}

impl Store {
    /// Locks the conversation for an action in `tenant_id`.
    pub async fn lock_conversation(&self, tenant_id: Uuid, id: Uuid) -> Result<ConversationLock> {
        let tx = self.pool.begin().await?;
        ConversationLock::lock(tx, tenant_id, id).await
    }

    /// Locks the draft's conversation, then the draft.
    pub async fn lock_suggestion(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<(ConversationLock, SuggestionRecord)> {
        let mut tx = self.pool.begin().await?;
        let conversation_id: Uuid = sqlx::query_scalar(
            "SELECT conversation_id FROM ai_suggestions WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound { what: "suggestion" })?;
        let mut c = ConversationLock::lock(tx, tenant_id, conversation_id).await?;
        let r: SuggestionRow = sqlx::query_as(&format!(
            "SELECT s.status, s.draft, s.intent, m.content AS customer_text,
                    {EXPIRED_WHY} AS expired_why, s.decision = 'ESCALATE' AS escalated
             FROM ai_suggestions s
             JOIN messages m ON m.id = s.based_on_message_id
             JOIN conversations c ON c.id = s.conversation_id
             JOIN channels ch ON ch.id = c.channel_id
             JOIN customers cu ON cu.id = c.customer_id
             JOIN tenants t ON t.id = s.tenant_id
             WHERE s.id = $1 AND s.tenant_id = $2
             FOR UPDATE OF s"
        ))
        .bind(id)
        .bind(tenant_id)
        .fetch_one(&mut *c.tx)
        .await?;
        let record = SuggestionRecord {
            id,
            status: r.status.parse().map_err(corrupt)?,
            draft: r.draft,
            intent: r.intent,
            customer_text: r.customer_text,
            expired_why: r.expired_why,
            escalated: r.escalated,
        };
        Ok((c, record))
    }

    /// Whether the tenant wants approved drafts to wait a human-like delay as well.
    pub async fn delays_approved_sends(&self, tenant_id: Uuid) -> Result<bool> {
        Ok(
            sqlx::query_scalar("SELECT delay_approved_sends FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

impl ConversationLock {
    async fn lock(
        mut tx: Transaction<'static, Postgres>,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Self> {
        let row: Option<(String, bool)> = sqlx::query_as(
            "SELECT status, COALESCE(operator_active_until > now(), false) FROM conversations
             WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        )
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (status, takeover_active) = row.ok_or(StoreError::NotFound {
            what: "conversation",
        })?;
        Ok(Self {
            tx,
            tenant_id,
            conversation_id: id,
            status: status.parse().map_err(corrupt)?,
            takeover_active,
        })
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn set_status(&mut self, to: ConversationStatus) -> Result<()> {
        sqlx::query("UPDATE conversations SET status = $2 WHERE id = $1")
            .bind(self.conversation_id)
            .bind(to.as_str())
            .execute(&mut *self.tx)
            .await?;
        self.status = to;
        Ok(())
    }

    /// The bot may speak again as far as operators are concerned.
    pub async fn end_takeover(&mut self) -> Result<()> {
        sqlx::query("UPDATE conversations SET operator_active_until = NULL WHERE id = $1")
            .bind(self.conversation_id)
            .execute(&mut *self.tx)
            .await?;
        self.takeover_active = false;
        Ok(())
    }

    /// Starts or extends a takeover for the tenant's takeover time, in `status`, dropping
    /// what waits to be sent for the bot.
    pub async fn take_over(&mut self, user: &User, status: ConversationStatus) -> Result<()> {
        sqlx::query(
            "UPDATE conversations c SET assigned_user_id = $2, status = $3,
                 operator_active_until = now() + t.takeover_minutes * interval '1 minute'
             FROM tenants t WHERE c.id = $1 AND t.id = c.tenant_id",
        )
        .bind(self.conversation_id)
        .bind(user.id)
        .bind(status.as_str())
        .execute(&mut *self.tx)
        .await?;
        self.status = status;
        self.takeover_active = true;
        self.supersede_waiting("an operator took over").await
    }

    /// Supersedes what waits in the conversation; see [`crate::supersede_waiting`].
    pub async fn supersede_waiting(&mut self, why: &str) -> Result<()> {
        crate::supersede_waiting(&mut self.tx, self.conversation_id, why).await
    }

    /// Queues a send an operator decided on; `key` makes a second one a no-op. An approved
    /// draft answers the message it was drafted for; an operator's own message answers the
    /// newest one, so a message that arrived after the draft is still answered.
    pub async fn queue_operator_send(&mut self, o: &OperatorSend<'_>) -> Result<Uuid> {
        let message_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO outbox (id, tenant_id, conversation_id, channel_id, suggestion_id, message_id,
                                 role, body, in_reply_to, idempotency_key, approved_by, choices,
                                 due_at, next_attempt_at)
             SELECT $1, c.tenant_id, c.id, c.channel_id, $3, $4, $5, $6,
                    COALESCE((SELECT based_on_message_id FROM ai_suggestions WHERE id = $3),
                             (SELECT m.id FROM messages m WHERE m.conversation_id = c.id AND m.role = 'customer'
                              ORDER BY m.created_at DESC LIMIT 1)),
                    $7, $8,
                    CASE WHEN $9 THEN COALESCE((SELECT choices FROM ai_suggestions WHERE id = $3), '[]') ELSE '[]' END,
                    now() + $10 * interval '1 millisecond', now() + $10 * interval '1 millisecond'
             FROM conversations c WHERE c.id = $2
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(self.conversation_id)
        .bind(o.suggestion_id)
        .bind(message_id)
        .bind(o.role.as_str())
        .bind(o.body)
        .bind(&o.key)
        .bind(o.user_id)
        .bind(o.with_choices)
        .bind(o.delay_ms as f64)
        .execute(&mut *self.tx)
        .await?;
        Ok(message_id)
    }

    /// An AUTO_SEND draft whose reply still waits out its delay: with a send, that reply
    /// becomes the operator's (their text, sent at once or after the approved delay);
    /// without one, it is stopped. A reply already going out cannot be taken back.
    pub async fn take_over_queued_reply(
        &mut self,
        suggestion_id: Uuid,
        send: Option<&OperatorSend<'_>>,
    ) -> Result<()> {
        let row: Option<(Uuid, String, bool)> = sqlx::query_as(&format!(
            "SELECT id, status, {} AS idle FROM outbox
             WHERE suggestion_id = $1 AND approved_by IS NULL
             ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
            crate::supersede::NOT_IN_FLIGHT
        ))
        .bind(suggestion_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let conflict = |why: &str| Err(StoreError::Conflict(why.to_owned()));
        let outbox_id = match row {
            Some((id, status, true)) if status == "pending" => id,
            Some((_, status, _)) if status == "failed" || status == "dead" => {
                return conflict(
                    "this reply could not be sent; replay it from the dead letters or write to the customer",
                );
            }
            Some((_, status, _)) if status == "sent" => {
                return conflict("this reply has already been sent");
            }
            _ => return conflict("this reply is already going out to the customer"),
        };
        match send {
            Some(o) => {
                sqlx::query(
                    "UPDATE outbox SET body = $2, role = $3, approved_by = $4,
                            choices = CASE WHEN $5 THEN choices ELSE '[]' END,
                            due_at = now() + $6 * interval '1 millisecond',
                            next_attempt_at = now() + $6 * interval '1 millisecond'
                     WHERE id = $1",
                )
                .bind(outbox_id)
                .bind(o.body)
                .bind(o.role.as_str())
                .bind(o.user_id)
                .bind(o.with_choices)
                .bind(o.delay_ms as f64)
                .execute(&mut *self.tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE outbox SET status = 'superseded', last_error = 'an operator rejected the draft'
                     WHERE id = $1",
                )
                .bind(outbox_id)
                .execute(&mut *self.tx)
                .await?;
            }
        }
        Ok(())
    }

    pub async fn set_suggestion_status(&mut self, id: Uuid, to: SuggestionStatus) -> Result<()> {
        sqlx::query("UPDATE ai_suggestions SET status = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(to.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The text an operator's approval of the draft queued, if any.
    pub async fn approved_text(&mut self, suggestion_id: Uuid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT body FROM outbox WHERE suggestion_id = $1 AND approved_by IS NOT NULL
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(suggestion_id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    pub async fn human_action(
        &mut self,
        user: &User,
        suggestion_id: Option<Uuid>,
        action: &str,
        original: Option<&str>,
        edited: Option<&str>,
        reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO human_actions (id, tenant_id, conversation_id, suggestion_id, user_id, action,
                                        original_text, edited_text, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Uuid::now_v7())
        .bind(user.tenant_id)
        .bind(self.conversation_id)
        .bind(suggestion_id)
        .bind(user.id)
        .bind(action)
        .bind(original)
        .bind(edited)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// What the operator made of the draft, for later drafts of similar messages.
    pub async fn training_sample(
        &mut self,
        user: &User,
        s: &SuggestionRecord,
        final_text: Option<&str>,
        outcome: SuggestionStatus,
        reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO training_samples (id, tenant_id, conversation_id, suggestion_id, intent,
                                           customer_message, draft, final_text, outcome, reason, user_id,
                                           search_config)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, t.text_search_config
             FROM tenants t WHERE t.id = $2
             ON CONFLICT (suggestion_id) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(user.tenant_id)
        .bind(self.conversation_id)
        .bind(s.id)
        .bind(&s.intent)
        .bind(&s.customer_text)
        .bind(&s.draft)
        .bind(final_text)
        .bind(outcome.as_str())
        .bind(reason)
        .bind(user.id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The operator answered the customer, took over, released or finished the
    /// conversation: its open escalation is handled, by them.
    pub async fn handle_open_escalation(&mut self, user: &User) -> Result<()> {
        sqlx::query(
            "UPDATE escalation_events SET status = 'handled', handled_by = $2, handled_at = now()
             WHERE conversation_id = $1 AND status = 'pending'",
        )
        .bind(self.conversation_id)
        .bind(user.id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks the pending escalations the draft answered as handled by `user`.
    pub async fn handle_escalations_of(&mut self, suggestion_id: Uuid, user: &User) -> Result<()> {
        sqlx::query(
            "UPDATE escalation_events SET status = 'handled', handled_by = $2, handled_at = now()
             WHERE suggestion_id = $1 AND status = 'pending'",
        )
        .bind(suggestion_id)
        .bind(user.id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The escalation that stands for this conversation's `key`: the one opened under it
    /// before, or else the one the conversation has open.
    pub async fn existing_escalation(&mut self, key: &str) -> Result<Uuid> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM escalation_events
             WHERE tenant_id = $1
               AND (idempotency_key = $2 OR (conversation_id = $3 AND status = 'pending'))
             ORDER BY idempotency_key IS NOT DISTINCT FROM $2 DESC LIMIT 1",
        )
        .bind(self.tenant_id)
        .bind(key)
        .bind(self.conversation_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Opens an escalation without a draft under `key`; `None` if one was opened under it
    /// before, or the conversation has one open already.
    pub async fn open_escalation(
        &mut self,
        key: &str,
        reason: &str,
        summary: &str,
    ) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO escalation_events (id, tenant_id, conversation_id, reason, summary, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(self.tenant_id)
        .bind(self.conversation_id)
        .bind(reason)
        .bind(summary)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// The conversation changed: consoles reload it, and optimistic readers see a new
    /// version.
    pub async fn touch(&mut self) -> Result<()> {
        sqlx::query(
            "UPDATE conversations SET updated_at = now(), version = version + 1 WHERE id = $1",
        )
        .bind(self.conversation_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn audit(
        &mut self,
        user: &User,
        action: &str,
        target_type: &str,
        target_id: Option<Uuid>,
        details: serde_json::Value,
    ) -> Result<()> {
        audit(&mut *self.tx, user, action, target_type, target_id, details).await
    }
}

impl Store {
    /// Marks a pending escalation handled or dismissed.
    pub async fn close_escalation(&self, user: &User, id: Uuid, handled: bool) -> Result<Uuid> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Uuid)> = sqlx::query_as(
            "SELECT status, conversation_id FROM escalation_events WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        )
        .bind(id)
        .bind(user.tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (status, conversation_id) = row.ok_or(StoreError::NotFound { what: "escalation" })?;
        let to = if handled { "handled" } else { "dismissed" };
        if status == to {
            return Ok(conversation_id);
        }
        if status != "pending" {
            return Err(StoreError::Conflict(format!(
                "this escalation is already {status}"
            )));
        }
        sqlx::query("UPDATE escalation_events SET status = $2, handled_by = $3, handled_at = now() WHERE id = $1")
            .bind(id)
            .bind(to)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        let action = if handled { "handle" } else { "dismiss" };
        audit(
            &mut *tx,
            user,
            action,
            "escalation_event",
            Some(id),
            json!({"conversation_id": conversation_id}),
        )
        .await?;
        tx.commit().await?;
        Ok(conversation_id)
    }

    /// Queues a dead letter again; the dispatcher sends it as if new.
    pub async fn replay_dead_letter(&self, user: &User, id: Uuid) -> Result<Uuid> {
        let mut tx = self.pool.begin().await?;
        let dead = requeue_dead(&mut tx, id, Some(user)).await?;
        let details = json!({"conversation_id": dead.conversation_id, "was": dead.status});
        audit(&mut *tx, user, "replay", "outbox", Some(id), details).await?;
        tx.commit().await?;
        Ok(dead.conversation_id)
    }

    /// The same for an admin at the command line, in any tenant. Returns the tenant and the
    /// conversation.
    pub async fn replay_dead_letter_as_admin(&self, actor: &str, id: Uuid) -> Result<(Uuid, Uuid)> {
        let mut tx = self.pool.begin().await?;
        let dead = requeue_dead(&mut tx, id, None).await?;
        let details = json!({"conversation_id": dead.conversation_id, "was": dead.status});
        audit_admin(
            &mut *tx,
            dead.tenant_id,
            actor,
            "replay",
            ("outbox", Some(id)),
            details,
        )
        .await?;
        tx.commit().await?;
        Ok((dead.tenant_id, dead.conversation_id))
    }
}

struct Requeued {
    tenant_id: Uuid,
    conversation_id: Uuid,
    status: String,
}

/// Puts a failed or dead send back to pending, and only reaches the operator's own
/// tenant's sends. A replay is not an approval: the reply still faces every staleness
/// check when it is claimed (a newer message, a finished or escalated conversation, a
/// takeover, an opt-out), so a days-old reply cannot go out over what happened since.
async fn requeue_dead(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    user: Option<&User>,
) -> Result<Requeued> {
    let row: Option<(String, Uuid, Uuid)> = sqlx::query_as(
        "SELECT status, conversation_id, tenant_id FROM outbox
         WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) FOR UPDATE",
    )
    .bind(id)
    .bind(user.map(|u| u.tenant_id))
    .fetch_optional(&mut **tx)
    .await?;
    let (status, conversation_id, tenant_id) = row.ok_or(StoreError::NotFound {
        what: "dead letter",
    })?;
    if !matches!(status.as_str(), "failed" | "dead") {
        return Err(StoreError::Conflict(format!(
            "this send is {status}, not a dead letter"
        )));
    }
    sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now(),
                           last_error = NULL, lease = NULL, leased_until = NULL
         WHERE id = $1",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(Requeued {
        tenant_id,
        conversation_id,
        status,
    })
}
