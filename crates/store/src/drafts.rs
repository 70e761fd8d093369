//! The drafting transaction: one per conversation at a time, held by a row lock on the
//! conversation, so a burst of messages is answered once and never twice.

use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use switchboard_core::{
    ChannelKind, ConversationStatus, Decision, DraftSignals, Mode, SuggestionStatus, UnknownValue,
};
use uuid::Uuid;

use crate::{Result, Store, StoreError};

/// How long the conversation has been quiet, measured on the database clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    pub newest_customer_message: Uuid,
    pub since_newest_ms: u64,
    pub since_first_unanswered_ms: u64,
}

/// The customer messages not yet answered, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    pub messages: Vec<(Uuid, String)>,
}

impl Burst {
    pub fn newest(&self) -> Option<Uuid> {
        self.messages.last().map(|(id, _)| *id)
    }

    pub fn text(&self) -> String {
        self.messages
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A draft and what the engine decided about it, as kept in `ai_suggestions`.
pub struct NewSuggestion<'a> {
    pub based_on_message_id: Uuid,
    pub provider: &'a str,
    pub draft: &'a DraftSignals,
    pub decision: Decision,
    pub confidence: f64,
    pub autosend_eligible: bool,
    pub autosend_block_reason: Option<&'a str>,
    /// The engine's penalties, as it serialises them.
    pub penalties: serde_json::Value,
    pub explanations: &'a [String],
    pub delay_ms: Option<u64>,
}

/// Customer messages after the newest one answered: by a message the customer got (the
/// message it answered, not when it went out, so a message that arrived while a slow reply
/// was being sent is still unanswered), or by a draft an operator dealt with. A draft still
/// waiting (`pending` for an operator, `queued` for its delay) does not count: a message that
/// arrives before it goes out is answered together with the ones it answered.
const UNANSWERED: &str = "
    SELECT m.id, m.content, m.created_at FROM messages m
    WHERE m.conversation_id = $1 AND m.role = 'customer' AND m.created_at > COALESCE(GREATEST(
        (SELECT max(COALESCE(a.created_at, r.created_at)) FROM messages r
         LEFT JOIN messages a ON a.id = r.in_reply_to
         WHERE r.conversation_id = $1 AND r.role <> 'customer'),
        (SELECT max(b.created_at) FROM ai_suggestions s JOIN messages b ON b.id = s.based_on_message_id
         WHERE s.conversation_id = $1 AND s.status NOT IN ('pending', 'queued', 'superseded'))), '-infinity')";

impl Store {
    pub async fn quiet(&self, conversation_id: Uuid) -> Result<Option<Quiet>> {
        let row: Option<(Uuid, f64, f64)> = sqlx::query_as(&format!(
            "WITH u AS ({UNANSWERED})
             SELECT (SELECT id FROM u ORDER BY created_at DESC, id DESC LIMIT 1),
                    EXTRACT(EPOCH FROM clock_timestamp() - max(created_at))::float8 * 1000,
                    EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8 * 1000
             FROM u HAVING count(*) > 0"
        ))
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, newest, first)| Quiet {
            newest_customer_message: id,
            since_newest_ms: newest.max(0.0) as u64,
            since_first_unanswered_ms: first.max(0.0) as u64,
        }))
    }

    /// Opens the drafting transaction and locks the conversation row for its duration.
    /// Nothing slow may run inside it: the LLM is called on a snapshot (`snapshot_draft`)
    /// before, and this transaction only re-checks and writes.
    pub async fn begin_draft(&self, tenant_id: Uuid, conversation_id: Uuid) -> Result<DraftTx> {
        let mut tx = self.pool.begin().await?;
        let state = read_state(&mut tx, tenant_id, conversation_id, true).await?;
        view(tx, tenant_id, conversation_id, state)
    }

    /// The same view without a lock or a transaction, to read what the LLM needs; drop it
    /// before calling the LLM so no connection is held across the network.
    pub async fn snapshot_draft(
        &self,
        tenant_id: Uuid,
        conversation_id: Uuid,
    ) -> Result<DraftSnapshot> {
        let mut conn = self.pool.acquire().await?;
        let state = read_state(&mut conn, tenant_id, conversation_id, false).await?;
        view(conn, tenant_id, conversation_id, state)
    }
}

/// The conversation as drafting sees it, locked (`FOR UPDATE`) or not.
async fn read_state(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    conversation_id: Uuid,
    lock: bool,
) -> Result<LockedConversation> {
    let row: Option<LockedConversation> = sqlx::query_as(&format!(
        "SELECT c.channel_id, ch.kind, c.status, c.mode,
                c.operator_active_until IS NOT NULL AND c.operator_active_until > now() AS takeover,
                EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.customer_id
                        AND k.channel_id = c.channel_id AND k.status = 'revoked') AS revoked,
                c.night_reply_key,
                -- WhatsApp lets free-form text through for 24 hours after the customer's
                -- last message, unless Meta has since said the window is closed.
                ch.kind <> 'whatsapp' OR (
                    c.last_customer_message_at > now() - interval '24 hours'
                    AND NOT COALESCE((cu.metadata->>'window_closed_at')::timestamptz
                                     > c.last_customer_message_at, false)) AS window_open
         FROM conversations c JOIN channels ch ON ch.id = c.channel_id
         JOIN customers cu ON cu.id = c.customer_id
         WHERE c.id = $1 AND c.tenant_id = $2 {}",
        if lock { "FOR UPDATE OF c" } else { "" }
    ))
    .bind(conversation_id)
    .bind(tenant_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.ok_or(StoreError::NotFound {
        what: "conversation",
    })
}

fn view<C>(
    tx: C,
    tenant_id: Uuid,
    conversation_id: Uuid,
    r: LockedConversation,
) -> Result<DraftTx<C>> {
    let corrupt = |e: UnknownValue| StoreError::Corrupt(e.to_string());
    Ok(DraftTx {
        tx,
        tenant_id,
        conversation_id,
        channel_id: r.channel_id,
        channel_kind: r.kind.parse().map_err(corrupt)?,
        night_reply_key: r.night_reply_key,
        window_open: r.window_open,
        status: r.status.parse().map_err(corrupt)?,
        mode: r.mode.parse().map_err(corrupt)?,
        operator_takeover_active: r.takeover,
        consent_revoked: r.revoked,
    })
}

#[derive(sqlx::FromRow)]
struct LockedConversation {
    channel_id: Uuid,
    kind: String,
    status: String,
    mode: String,
    takeover: bool,
    revoked: bool,
    night_reply_key: Option<String>,
    window_open: bool,
}

/// The drafting view of a conversation. `DraftTx` holds its row lock in a transaction and
/// writes; `DraftSnapshot` only reads, on a pooled connection, with nothing locked.
pub struct DraftTx<C = sqlx::Transaction<'static, sqlx::Postgres>> {
    pub(crate) tx: C,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub channel_id: Uuid,
    pub channel_kind: ChannelKind,
    pub night_reply_key: Option<String>,
    /// Whether the channel takes free-form text to this customer now.
    pub window_open: bool,
    pub status: ConversationStatus,
    pub mode: Mode,
    pub operator_takeover_active: bool,
    pub consent_revoked: bool,
}

pub type DraftSnapshot = DraftTx<sqlx::pool::PoolConnection<sqlx::Postgres>>;

impl<C: DerefMut<Target = PgConnection>> DraftTx<C> {
    pub async fn burst(&mut self) -> Result<Burst> {
        let rows: Vec<(Uuid, String, DateTime<Utc>)> =
            sqlx::query_as(&format!("{UNANSWERED} ORDER BY m.created_at, m.id"))
                .bind(self.conversation_id)
                .fetch_all(&mut *self.tx)
                .await?;
        Ok(Burst {
            messages: rows.into_iter().map(|(id, text, _)| (id, text)).collect(),
        })
    }

    /// The conversation before the burst: the last `limit` messages, oldest first, as
    /// (role, text).
    pub async fn history(&mut self, before: Uuid, limit: i64) -> Result<Vec<(String, String)>> {
        let mut rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT role, content FROM messages
             WHERE conversation_id = $1 AND role <> 'system'
               AND created_at < (SELECT created_at FROM messages WHERE id = $2)
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(self.conversation_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Whether something was queued under the idempotency key `key`.
    pub async fn has_outbox_key(&mut self, key: &str) -> Result<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE idempotency_key = $1)")
                .bind(key)
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    pub async fn has_suggestion_for(&mut self, message_id: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ai_suggestions WHERE based_on_message_id = $1)",
        )
        .bind(message_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }
}

impl DraftTx {
    /// Supersedes every waiting draft and unsent drafted reply in the conversation.
    pub async fn supersede_waiting(&mut self, why: &str) -> Result<()> {
        crate::supersede_waiting(&mut self.tx, self.conversation_id, why).await
    }

    /// Records the draft and its decision, superseding every older pending draft and
    /// unsent reply in the conversation.
    pub async fn insert_suggestion(&mut self, s: NewSuggestion<'_>) -> Result<Uuid> {
        self.supersede_waiting("a newer draft replaces it").await?;
        let id = Uuid::now_v7();
        // An AUTO_SEND draft is already on its way; only the others wait for an operator.
        let status = if s.decision == Decision::AutoSend {
            SuggestionStatus::Queued
        } else {
            SuggestionStatus::Pending
        };
        let d = s.draft;
        sqlx::query(
            "INSERT INTO ai_suggestions (id, tenant_id, conversation_id, based_on_message_id, draft,
                 provider, intent, confidence, similarity_score, intent_score, self_check_score,
                 used_sources, penalties, explanations, missing_fields, source_conflicts,
                 decision, autosend_eligible, autosend_block_reason, choices, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(id)
        .bind(self.tenant_id)
        .bind(self.conversation_id)
        .bind(s.based_on_message_id)
        .bind(&d.reply)
        .bind(s.provider)
        .bind(&d.intent)
        .bind(s.confidence)
        .bind(d.similarity_score)
        .bind(d.intent_score)
        .bind(d.self_check_score)
        .bind(sqlx::types::Json(&d.used_sources))
        .bind(sqlx::types::Json(&s.penalties))
        .bind(sqlx::types::Json(s.explanations))
        .bind(sqlx::types::Json(&d.missing_fields))
        .bind(sqlx::types::Json(&d.source_conflicts))
        .bind(s.decision.as_str())
        .bind(s.autosend_eligible)
        .bind(s.autosend_block_reason)
        .bind(sqlx::types::Json(&d.choices))
        .bind(status.as_str())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, details)
             VALUES ($1, $2, 'system', 'decision-engine', 'decision', 'ai_suggestion', $3, $4)",
        )
        .bind(Uuid::now_v7())
        .bind(self.tenant_id)
        .bind(id)
        .bind(json!({
            "conversation_id": self.conversation_id,
            "based_on_message_id": s.based_on_message_id,
            "decision": s.decision.as_str(),
            "confidence": s.confidence,
            "autosend_block_reason": s.autosend_block_reason,
            "delay_ms": s.delay_ms,
            "explanations": s.explanations,
        }))
        .execute(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// Schedules a message in the outbox. `key` makes a second enqueue of the same message
    /// a no-op, which is what keeps "one inbound message, at most one reply".
    pub async fn enqueue(
        &mut self,
        suggestion_id: Option<Uuid>,
        key: &str,
        in_reply_to: Uuid,
        body: &str,
        delay_ms: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (id, tenant_id, conversation_id, channel_id, suggestion_id,
                                 message_id, role, body, in_reply_to, idempotency_key,
                                 due_at, next_attempt_at, choices)
             VALUES ($1, $2, $3, $4, $5, $6, 'assistant', $7, $8, $9,
                     now() + $10 * interval '1 millisecond', now() + $10 * interval '1 millisecond',
                     COALESCE((SELECT choices FROM ai_suggestions WHERE id = $5), '[]'))
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(self.tenant_id)
        .bind(self.conversation_id)
        .bind(self.channel_id)
        .bind(suggestion_id)
        .bind(Uuid::now_v7())
        .bind(body)
        .bind(in_reply_to)
        .bind(key)
        .bind(delay_ms as f64)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Whether `message_id` is the message that last changed the customer's consent on
    /// this conversation's channel (its stop or start word was stored with it).
    pub async fn consent_changed_by(&mut self, message_id: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM consents k JOIN conversations c
                 ON k.customer_id = c.customer_id AND k.channel_id = c.channel_id
                 WHERE c.id = $1 AND k.changed_by = $2)",
        )
        .bind(self.conversation_id)
        .bind(message_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Remembers that tonight's automatic night reply went out.
    pub async fn mark_night_reply(&mut self, night_key: &str) -> Result<()> {
        sqlx::query("UPDATE conversations SET night_reply_key = $2 WHERE id = $1")
            .bind(self.conversation_id)
            .bind(night_key)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// ESCALATE: the conversation goes to `escalated` and an escalation event is opened,
    /// unless one is open already: then that one carries the newest draft and summary, and
    /// `false` says nothing new was opened (no second holding message). The caller has
    /// checked that the lifecycle allows it.
    pub async fn escalate(
        &mut self,
        suggestion_id: Uuid,
        reason: &str,
        summary: &str,
        suggested_response: Option<&str>,
    ) -> Result<(Uuid, bool)> {
        sqlx::query(
            "UPDATE conversations SET status = 'escalated', version = version + 1, updated_at = now()
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(self.conversation_id)
        .bind(self.tenant_id)
        .execute(&mut *self.tx)
        .await?;
        self.status = ConversationStatus::Escalated;
        // Closing an escalation does not take the conversation's lock, so the open one may
        // be handled between the two statements: then the second look opens a new one.
        for _ in 0..2 {
            let opened: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO escalation_events (id, tenant_id, conversation_id, suggestion_id, reason,
                                                summary, suggested_response)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (conversation_id) WHERE status = 'pending' DO NOTHING RETURNING id",
            )
            .bind(Uuid::now_v7())
            .bind(self.tenant_id)
            .bind(self.conversation_id)
            .bind(suggestion_id)
            .bind(reason)
            .bind(summary)
            .bind(suggested_response)
            .fetch_optional(&mut *self.tx)
            .await?;
            if let Some(id) = opened {
                return Ok((id, true));
            }
            let joined: Option<Uuid> = sqlx::query_scalar(
                "UPDATE escalation_events SET suggestion_id = $2, reason = $3, summary = $4,
                        suggested_response = $5
                 WHERE conversation_id = $1 AND status = 'pending' RETURNING id",
            )
            .bind(self.conversation_id)
            .bind(suggestion_id)
            .bind(reason)
            .bind(summary)
            .bind(suggested_response)
            .fetch_optional(&mut *self.tx)
            .await?;
            if let Some(id) = joined {
                return Ok((id, false));
            }
        }
        Err(StoreError::Conflict(
            "the conversation's open escalation kept changing; try again".into(),
        ))
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
