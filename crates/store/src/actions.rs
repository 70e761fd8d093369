//! What operators do: approve, edit or reject drafts, handle escalations, write to the
//! customer, and move conversations through the lifecycle. Each action locks the row it
//! changes, so a double click or two operators at once act once; each is audited.

use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, Postgres, Transaction};
use switchboard_core::ConversationStatus;
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
    pub status: String,
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
struct OperatorSend<'a> {
    tenant_id: Uuid,
    conversation_id: Uuid,
    suggestion_id: Option<Uuid>,
    key: String,
    role: &'a str,
    body: &'a str,
    user_id: Uuid,
    with_choices: bool,
    delay_ms: u64,
}

async fn enqueue(tx: &mut PgConnection, o: OperatorSend<'_>) -> Result<Uuid> {
    let message_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, conversation_id, channel_id, suggestion_id, message_id,
                             role, body, in_reply_to, idempotency_key, approved_by, choices,
                             due_at, next_attempt_at)
         SELECT $1, c.tenant_id, c.id, c.channel_id, $3, $4, $5, $6,
                (SELECT m.id FROM messages m WHERE m.conversation_id = c.id AND m.role = 'customer'
                 ORDER BY m.created_at DESC LIMIT 1),
                $7, $8,
                CASE WHEN $9 THEN COALESCE((SELECT choices FROM ai_suggestions WHERE id = $3), '[]') ELSE '[]' END,
                now() + $11 * interval '1 millisecond', now() + $11 * interval '1 millisecond'
         FROM conversations c WHERE c.id = $2 AND c.tenant_id = $10
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(o.conversation_id)
    .bind(o.suggestion_id)
    .bind(message_id)
    .bind(o.role)
    .bind(o.body)
    .bind(&o.key)
    .bind(o.user_id)
    .bind(o.with_choices)
    .bind(o.tenant_id)
    .bind(o.delay_ms as f64)
    .execute(&mut *tx)
    .await?;
    Ok(message_id)
}

#[allow(clippy::too_many_arguments)]
async fn human_action(
    tx: &mut PgConnection,
    user: &User,
    conversation_id: Uuid,
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
    .bind(conversation_id)
    .bind(suggestion_id)
    .bind(user.id)
    .bind(action)
    .bind(original)
    .bind(edited)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Pending {
    status: String,
    draft: String,
    intent: String,
    conversation_id: Uuid,
    customer_text: String,
    conversation_status: String,
    expired_why: Option<String>,
}

impl Store {
    /// Locks the draft's conversation, then the draft: the one lock order (conversation,
    /// suggestion, outbox) that drafting and the dispatcher keep too.
    async fn lock_suggestion(
        tx: &mut Transaction<'static, Postgres>,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Pending> {
        let conversation_id: Uuid = sqlx::query_scalar(
            "SELECT conversation_id FROM ai_suggestions WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound { what: "suggestion" })?;
        lock_conversation(tx, tenant_id, conversation_id).await?;
        sqlx::query_as(&format!(
            "SELECT s.status, s.draft, s.intent, s.conversation_id, m.content AS customer_text,
                    c.status AS conversation_status, {EXPIRED_WHY} AS expired_why
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
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound { what: "suggestion" })
    }

    async fn expire(tx: &mut Transaction<'static, Postgres>, id: Uuid) -> Result<()> {
        sqlx::query(
            "UPDATE ai_suggestions SET status = 'expired', updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Sends the draft, or the operator's edit of it, exactly as given. Approving again
    /// queues nothing new; a draft that was superseded, rejected or has expired is refused.
    pub async fn approve(&self, user: &User, id: Uuid, edited: Option<&str>) -> Result<Approval> {
        let mut tx = self.pool.begin().await?;
        let p = Self::lock_suggestion(&mut tx, user.tenant_id, id).await?;
        let conflict = |why: String| Err(StoreError::Conflict(why));
        match p.status.as_str() {
            "approved" | "edited" | "sent" => {
                let text: Option<String> = sqlx::query_scalar(
                    "SELECT body FROM outbox WHERE suggestion_id = $1 AND approved_by IS NOT NULL
                     ORDER BY created_at DESC LIMIT 1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                return Ok(Approval {
                    suggestion_id: id,
                    conversation_id: p.conversation_id,
                    status: p.status,
                    text: text.unwrap_or(p.draft),
                    already: true,
                });
            }
            "superseded" => return conflict("this draft was superseded: the customer wrote again, and a newer draft replaces it".into()),
            "rejected" => return conflict("this draft was rejected".into()),
            "expired" => return conflict("this draft has expired".into()),
            _ => {}
        }
        if let Some(why) = p.expired_why {
            Self::expire(&mut tx, id).await?;
            tx.commit().await?;
            return conflict(format!("this draft has expired: {why}"));
        }
        if p.conversation_status == "closed" {
            return conflict("the conversation is closed".into());
        }
        let text = edited
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(&p.draft)
            .to_owned();
        if text.trim().is_empty() {
            return Err(StoreError::Invalid(
                "the draft is empty: send your own text with it".into(),
            ));
        }
        let is_edit = text != p.draft;
        let delay_ms = self.approved_delay_ms(user.tenant_id, &text).await?;
        let status = if is_edit { "edited" } else { "approved" };
        let send = OperatorSend {
            tenant_id: user.tenant_id,
            conversation_id: p.conversation_id,
            suggestion_id: Some(id),
            key: format!("approval:{id}"),
            role: if is_edit { "operator" } else { "assistant" },
            body: &text,
            user_id: user.id,
            with_choices: !is_edit,
            delay_ms,
        };
        if p.status == "queued" {
            // An AUTO_SEND draft already has its reply waiting out the delay: the operator
            // takes that row over rather than queueing a second send.
            take_over_queued_reply(&mut tx, id, Some(&send)).await?;
        } else {
            enqueue(&mut tx, send).await?;
        }
        sqlx::query("UPDATE ai_suggestions SET status = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(status)
            .execute(&mut *tx)
            .await?;
        let action = if is_edit { "edit" } else { "approve" };
        human_action(
            &mut tx,
            user,
            p.conversation_id,
            Some(id),
            action,
            Some(&p.draft),
            is_edit.then_some(text.as_str()),
            None,
        )
        .await?;
        training_sample(
            &mut tx,
            user,
            id,
            &p.intent,
            p.conversation_id,
            &p.customer_text,
            &p.draft,
            Some(&text),
            status,
            None,
        )
        .await?;
        // The escalation this draft answered is dealt with by sending it.
        sqlx::query(
            "UPDATE escalation_events SET status = 'handled', handled_by = $2, handled_at = now()
             WHERE suggestion_id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
        touch(&mut tx, p.conversation_id).await?;
        audit(
            &mut *tx,
            user,
            action,
            "ai_suggestion",
            Some(id),
            json!({"conversation_id": p.conversation_id}),
        )
        .await?;
        tx.commit().await?;
        Ok(Approval {
            suggestion_id: id,
            conversation_id: p.conversation_id,
            status: status.into(),
            text,
            already: false,
        })
    }

    pub async fn reject(&self, user: &User, id: Uuid, reason: &str) -> Result<Uuid> {
        let mut tx = self.pool.begin().await?;
        let p = Self::lock_suggestion(&mut tx, user.tenant_id, id).await?;
        match p.status.as_str() {
            "rejected" => return Ok(p.conversation_id),
            "pending" => {}
            // Rejecting an AUTO_SEND draft while its delay runs stops its reply.
            "queued" => take_over_queued_reply(&mut tx, id, None).await?,
            other => {
                return Err(StoreError::Conflict(format!(
                    "this draft is {other} and can no longer be rejected"
                )));
            }
        }
        sqlx::query(
            "UPDATE ai_suggestions SET status = 'rejected', updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        human_action(
            &mut tx,
            user,
            p.conversation_id,
            Some(id),
            "reject",
            Some(&p.draft),
            None,
            Some(reason),
        )
        .await?;
        training_sample(
            &mut tx,
            user,
            id,
            &p.intent,
            p.conversation_id,
            &p.customer_text,
            &p.draft,
            None,
            "rejected",
            Some(reason),
        )
        .await?;
        touch(&mut tx, p.conversation_id).await?;
        audit(
            &mut *tx,
            user,
            "reject",
            "ai_suggestion",
            Some(id),
            json!({"conversation_id": p.conversation_id, "reason": reason}),
        )
        .await?;
        tx.commit().await?;
        Ok(p.conversation_id)
    }

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

    /// The operator writes to the customer. This is a takeover: the bot stays quiet until
    /// it is released or the tenant's takeover time runs out, and waiting drafts are dropped.
    /// `key` makes a redelivered request (a Telegram reply seen twice) send once.
    pub async fn operator_message(
        &self,
        user: &User,
        conversation_id: Uuid,
        text: &str,
        key: Option<String>,
    ) -> Result<Uuid> {
        let text = text.trim();
        if text.is_empty() {
            return Err(StoreError::Invalid("the message is empty".into()));
        }
        let mut tx = self.pool.begin().await?;
        let status = lock_conversation(&mut tx, user.tenant_id, conversation_id).await?;
        let status = match status {
            ConversationStatus::Closed => return Err(StoreError::Conflict("the conversation is closed; reopen is not possible, the customer's next message starts a new one".into())),
            ConversationStatus::Resolved => ConversationStatus::Active,
            s => s,
        };
        take_over(&mut tx, user, conversation_id, status).await?;
        let message_id = enqueue(
            &mut tx,
            OperatorSend {
                tenant_id: user.tenant_id,
                conversation_id,
                suggestion_id: None,
                key: key.unwrap_or_else(|| format!("operator:{}", Uuid::now_v7())),
                role: "operator",
                body: text,
                user_id: user.id,
                with_choices: false,
                delay_ms: 0,
            },
        )
        .await?;
        human_action(
            &mut tx,
            user,
            conversation_id,
            None,
            "message",
            None,
            Some(text),
            None,
        )
        .await?;
        audit(
            &mut *tx,
            user,
            "message",
            "conversation",
            Some(conversation_id),
            json!({"message_id": message_id}),
        )
        .await?;
        tx.commit().await?;
        Ok(message_id)
    }

    /// Moves a conversation as the lifecycle allows; anything else is a conflict.
    pub async fn conversation_action(
        &self,
        user: &User,
        id: Uuid,
        action: ConversationAction,
    ) -> Result<()> {
        use ConversationStatus::*;
        let mut tx = self.pool.begin().await?;
        let status = lock_conversation(&mut tx, user.tenant_id, id).await?;
        let illegal = |why: &str| Err(StoreError::Conflict(why.to_owned()));
        match action {
            ConversationAction::Takeover => {
                if matches!(status, Closed | Resolved) {
                    return illegal(&format!("a {status} conversation cannot be taken over"));
                }
                take_over(&mut tx, user, id, status).await?;
                human_action(&mut tx, user, id, None, "takeover", None, None, None).await?;
            }
            ConversationAction::Release => {
                let active: bool = sqlx::query_scalar("SELECT COALESCE(operator_active_until > now(), false) FROM conversations WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                if !active && !matches!(status, Escalated | WaitingOperator) {
                    return illegal("there is no takeover or escalation to release");
                }
                // The bot may answer again: escalated or waiting conversations become active.
                let to = if matches!(status, Escalated | WaitingOperator) {
                    transition(status, Active)?
                } else {
                    status
                };
                sqlx::query("UPDATE conversations SET operator_active_until = NULL, status = $2 WHERE id = $1")
                    .bind(id)
                    .bind(to.as_str())
                    .execute(&mut *tx)
                    .await?;
                human_action(&mut tx, user, id, None, "release", None, None, None).await?;
            }
            ConversationAction::Resolve
            | ConversationAction::Close
            | ConversationAction::Reopen => {
                let to = match action {
                    ConversationAction::Resolve => Resolved,
                    ConversationAction::Close => Closed,
                    _ => Active,
                };
                if action == ConversationAction::Reopen && status != Resolved {
                    return illegal(&format!(
                        "only a resolved conversation can be reopened; this one is {status}"
                    ));
                }
                let to = transition(status, to)?;
                sqlx::query("UPDATE conversations SET status = $2, operator_active_until = NULL WHERE id = $1")
                    .bind(id)
                    .bind(to.as_str())
                    .execute(&mut *tx)
                    .await?;
                if to == Closed || to == Resolved {
                    // Nothing drafted for a finished conversation may go out any more.
                    crate::supersede_waiting(&mut tx, id, &format!("the conversation was {to}"))
                        .await?;
                }
            }
        }
        touch(&mut tx, id).await?;
        audit(
            &mut *tx,
            user,
            action.as_str(),
            "conversation",
            Some(id),
            json!({"from": status.as_str()}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
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

impl Store {
    /// Zero unless the tenant wants approved drafts to wait a human-like delay as well.
    async fn approved_delay_ms(&self, tenant_id: Uuid, text: &str) -> Result<u64> {
        let wanted: bool =
            sqlx::query_scalar("SELECT delay_approved_sends FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_one(&self.pool)
                .await?;
        if !wanted {
            return Ok(0);
        }
        let t = self.tenant_settings(tenant_id).await?;
        let plan = switchboard_engine::plan_delay(
            text,
            &t.human_delay,
            t.flags.human_delay_enabled,
            false,
            &mut rand::rng(),
        );
        Ok(plan.delay_ms)
    }
}

fn transition(from: ConversationStatus, to: ConversationStatus) -> Result<ConversationStatus> {
    switchboard_engine::transition(from, to).map_err(|e| StoreError::Conflict(e.to_string()))
}

async fn lock_conversation(
    tx: &mut Transaction<'static, Postgres>,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<ConversationStatus> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM conversations WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    status
        .ok_or(StoreError::NotFound {
            what: "conversation",
        })?
        .parse()
        .map_err(|e: switchboard_core::UnknownValue| StoreError::Corrupt(e.to_string()))
}

/// Starts or extends a takeover for the tenant's takeover time, dropping waiting drafts.
async fn take_over(
    tx: &mut Transaction<'static, Postgres>,
    user: &User,
    id: Uuid,
    status: ConversationStatus,
) -> Result<()> {
    sqlx::query(
        "UPDATE conversations c SET assigned_user_id = $2, status = $3,
             operator_active_until = now() + t.takeover_minutes * interval '1 minute'
         FROM tenants t WHERE c.id = $1 AND t.id = c.tenant_id",
    )
    .bind(id)
    .bind(user.id)
    .bind(status.as_str())
    .execute(&mut **tx)
    .await?;
    crate::supersede_waiting(tx, id, "an operator took over").await
}

/// An operator acts on an AUTO_SEND draft whose reply still waits out its delay: with a
/// send, that reply becomes the operator's (their text, sent at once or after the approved
/// delay); without one, it is stopped. A reply already going out cannot be taken back.
async fn take_over_queued_reply(
    tx: &mut PgConnection,
    suggestion_id: Uuid,
    send: Option<&OperatorSend<'_>>,
) -> Result<()> {
    let row: Option<(Uuid, bool)> = sqlx::query_as(&format!(
        "SELECT id, {} AS idle FROM outbox
         WHERE suggestion_id = $1 AND status = 'pending' AND approved_by IS NULL FOR UPDATE",
        crate::supersede::NOT_IN_FLIGHT
    ))
    .bind(suggestion_id)
    .fetch_optional(&mut *tx)
    .await?;
    let outbox_id = match row {
        Some((id, true)) => id,
        _ => {
            return Err(StoreError::Conflict(
                "this reply is already going out to the customer".into(),
            ));
        }
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
            .bind(o.role)
            .bind(o.user_id)
            .bind(o.with_choices)
            .bind(o.delay_ms as f64)
            .execute(&mut *tx)
            .await?;
        }
        None => {
            sqlx::query(
                "UPDATE outbox SET status = 'superseded', last_error = 'an operator rejected the draft'
                 WHERE id = $1",
            )
            .bind(outbox_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

async fn touch(tx: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("UPDATE conversations SET updated_at = now(), version = version + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn training_sample(
    tx: &mut PgConnection,
    user: &User,
    suggestion_id: Uuid,
    intent: &str,
    conversation_id: Uuid,
    customer_message: &str,
    draft: &str,
    final_text: Option<&str>,
    outcome: &str,
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
    .bind(conversation_id)
    .bind(suggestion_id)
    .bind(intent)
    .bind(customer_message)
    .bind(draft)
    .bind(final_text)
    .bind(outcome)
    .bind(reason)
    .bind(user.id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
