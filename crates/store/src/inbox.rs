//! What operators read: the inbox, a conversation's messages, drafts waiting for approval
//! with their decision trace, escalations and dead letters. Every query is scoped to the
//! caller's tenant, so another tenant's id reads as "not found".

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::transcript::{Page, page_sql};
use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub q: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ConversationView {
    pub id: Uuid,
    pub status: String,
    pub mode: String,
    pub channel_id: Uuid,
    pub channel_kind: String,
    pub channel_name: String,
    pub customer: Json<Value>,
    pub last_message: Option<Json<Value>>,
    pub unread_count: i32,
    pub pending_suggestions: i64,
    pub takeover_until: Option<DateTime<Utc>>,
    pub assigned_user_id: Option<Uuid>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MessageView {
    pub id: Uuid,
    pub role: String,
    pub text: String,
    pub at: DateTime<Utc>,
    pub delivery_status: Option<String>,
    pub attachments: Json<Value>,
    /// How an AI message came about: AUTO_SEND, NEED_APPROVAL or ESCALATE.
    pub decision: Option<String>,
    pub suggestion_id: Option<Uuid>,
    /// The answers the message offered to pick from.
    pub choices: Json<Value>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SuggestionView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub based_on_message_id: Uuid,
    pub customer_text: String,
    pub draft: String,
    pub provider: String,
    pub intent: String,
    pub confidence: f64,
    pub similarity_score: f64,
    pub intent_score: f64,
    pub self_check_score: f64,
    pub penalties: Json<Value>,
    pub explanations: Json<Value>,
    pub used_sources: Json<Value>,
    /// The used sources with their titles (a document's title, a product's name; null for
    /// one deleted since), so operators read what the draft relied on.
    pub sources: Json<Value>,
    pub missing_fields: Json<Value>,
    pub source_conflicts: Json<Value>,
    pub choices: Json<Value>,
    pub decision: String,
    pub autosend_eligible: bool,
    pub autosend_block_reason: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// When the tenant's approval TTL runs out; the channel's window may close sooner.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EscalationView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub suggestion_id: Option<Uuid>,
    pub reason: String,
    pub summary: String,
    pub suggested_response: Option<String>,
    pub status: String,
    pub handled_by: Option<Uuid>,
    pub handled_at: Option<DateTime<Utc>>,
    pub notify_count: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetterView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub channel_kind: String,
    pub role: String,
    pub text: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A draft waits for an operator's approval (an escalation's suggestion is not one: it is
/// answered, never approved).
const DRAFT_WAITING: &str = "EXISTS (SELECT 1 FROM ai_suggestions s
    WHERE s.conversation_id = c.id AND s.status = 'pending' AND s.decision = 'NEED_APPROVAL')";

const CONVERSATION: &str = "
    SELECT c.id, c.status, c.mode, c.channel_id, ch.kind AS channel_kind, ch.name AS channel_name,
           json_build_object('id', cu.id, 'name', cu.name, 'external_id', cu.external_id,
                             'lead', cu.lead) AS customer,
           (SELECT json_build_object('role', m.role, 'text', m.content, 'at', m.created_at)
              FROM messages m WHERE m.conversation_id = c.id AND m.role <> 'system'
              ORDER BY m.created_at DESC LIMIT 1) AS last_message,
           c.unread_count,
           (SELECT count(*) FROM ai_suggestions s WHERE s.conversation_id = c.id
              AND s.status = 'pending') AS pending_suggestions,
           CASE WHEN c.operator_active_until > now() THEN c.operator_active_until END AS takeover_until,
           c.assigned_user_id, c.updated_at
    FROM conversations c
    JOIN channels ch ON ch.id = c.channel_id
    JOIN customers cu ON cu.id = c.customer_id";

pub(crate) const SUGGESTION: &str = "
    SELECT s.id, s.conversation_id, s.based_on_message_id, m.content AS customer_text, s.draft,
           s.provider, s.intent, s.confidence, s.similarity_score, s.intent_score,
           s.self_check_score, s.penalties, s.explanations, s.used_sources,
           (SELECT COALESCE(json_agg(json_build_object('reference', r.ref, 'title', COALESCE(
                      (SELECT d.title FROM knowledge_docs d
                       WHERE d.tenant_id = s.tenant_id AND d.id = CASE
                         WHEN r.ref ~ '^doc:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                         THEN substr(r.ref, 5)::uuid END),
                      (SELECT p.name FROM products p
                       WHERE p.tenant_id = s.tenant_id AND r.ref LIKE 'product:%'
                         AND p.sku = substr(r.ref, 9))))
                    ORDER BY r.ord), '[]')
            FROM jsonb_array_elements_text(s.used_sources) WITH ORDINALITY AS r(ref, ord)) AS sources,
           s.missing_fields,
           s.source_conflicts, s.choices, s.decision, s.autosend_eligible,
           s.autosend_block_reason, s.status, s.created_at,
           s.created_at + t.approval_ttl_minutes * interval '1 minute' AS expires_at
    FROM ai_suggestions s
    JOIN messages m ON m.id = s.based_on_message_id
    JOIN tenants t ON t.id = s.tenant_id";

const ESCALATION: &str = "
    SELECT id, conversation_id, suggestion_id, reason, summary, suggested_response, status,
           handled_by, handled_at, notify_count, created_at
    FROM escalation_events";

impl Store {
    /// The inbox, newest activity first.
    pub async fn inbox(
        &self,
        tenant_id: Uuid,
        f: &InboxFilter,
        limit: i64,
    ) -> Result<Vec<ConversationView>> {
        let q =
            f.q.as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(|q| {
                    format!(
                        "%{}%",
                        q.replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_")
                    )
                });
        Ok(sqlx::query_as(&format!(
            "{CONVERSATION}
             WHERE c.tenant_id = $1
               AND ($2::text IS NULL
                    OR ($2 = 'draft_waiting' AND {DRAFT_WAITING})
                    OR ($2 = 'waiting_operator'
                        AND (c.status IN ('waiting_operator', 'escalated') OR {DRAFT_WAITING}
                             OR EXISTS (SELECT 1 FROM escalation_events e
                                        WHERE e.conversation_id = c.id AND e.status = 'pending')))
                    OR c.status = $2)
               AND ($3::text IS NULL OR ch.kind = $3)
               AND ($4::text IS NULL OR cu.name ILIKE $4 OR cu.external_id ILIKE $4
                    OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.content ILIKE $4))
             ORDER BY c.updated_at DESC, c.id DESC LIMIT $5"
        ))
        .bind(tenant_id)
        .bind(f.status.as_deref().filter(|s| !s.is_empty()))
        .bind(f.channel.as_deref().filter(|s| !s.is_empty()))
        .bind(q)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn conversation_view(&self, tenant_id: Uuid, id: Uuid) -> Result<ConversationView> {
        sqlx::query_as(&format!(
            "{CONVERSATION} WHERE c.tenant_id = $1 AND c.id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound {
            what: "conversation",
        })
    }

    /// A page of the conversation's messages, oldest first, and the message to page back
    /// from when there are older ones; reading clears the unread count.
    pub async fn conversation_messages(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        page: Page,
    ) -> Result<(Vec<MessageView>, Option<Uuid>)> {
        let found = sqlx::query(
            "UPDATE conversations SET unread_count = 0 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if found.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "conversation",
            });
        }
        let rows: Vec<MessageView> = sqlx::query_as(&format!(
            "SELECT m.id, m.role, m.content AS text, m.created_at AS at, m.delivery_status,
                    m.attachments, s.decision, o.suggestion_id, m.choices
             FROM messages m
             LEFT JOIN outbox o ON o.message_id = m.id
             LEFT JOIN ai_suggestions s ON s.id = o.suggestion_id
             WHERE m.tenant_id = $1 AND m.conversation_id = $2 {}",
            page_sql(3)
        ))
        .bind(tenant_id)
        .bind(id)
        .bind(page.before)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        Ok(page.turn(rows, |r| r.id))
    }

    pub async fn suggestions(
        &self,
        tenant_id: Uuid,
        status: Option<&str>,
        conversation_id: Option<Uuid>,
    ) -> Result<Vec<SuggestionView>> {
        Ok(sqlx::query_as(&format!(
            "{SUGGESTION} WHERE s.tenant_id = $1 AND ($2::text IS NULL OR s.status = $2)
               AND ($3::uuid IS NULL OR s.conversation_id = $3)
             ORDER BY s.created_at DESC LIMIT 200"
        ))
        .bind(tenant_id)
        .bind(status.filter(|s| !s.is_empty()))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn suggestion_view(&self, tenant_id: Uuid, id: Uuid) -> Result<SuggestionView> {
        sqlx::query_as(&format!(
            "{SUGGESTION} WHERE s.tenant_id = $1 AND s.id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound { what: "suggestion" })
    }

    pub async fn escalations(
        &self,
        tenant_id: Uuid,
        status: Option<&str>,
    ) -> Result<Vec<EscalationView>> {
        Ok(sqlx::query_as(&format!(
            "{ESCALATION} WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
             ORDER BY created_at DESC LIMIT 200"
        ))
        .bind(tenant_id)
        .bind(status.filter(|s| !s.is_empty()))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn escalation_view(&self, tenant_id: Uuid, id: Uuid) -> Result<EscalationView> {
        sqlx::query_as(&format!("{ESCALATION} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound { what: "escalation" })
    }

    /// Sends that failed for good, of one tenant or of all: kept, visible and replayable.
    pub async fn dead_letters(&self, tenant_id: Option<Uuid>) -> Result<Vec<DeadLetterView>> {
        Ok(sqlx::query_as(
            "SELECT o.id, o.tenant_id, o.conversation_id, ch.kind AS channel_kind, o.role,
                    o.body AS text, o.status, o.attempts, o.last_error, o.created_at
             FROM outbox o JOIN channels ch ON ch.id = o.channel_id
             WHERE ($1::uuid IS NULL OR o.tenant_id = $1) AND o.status IN ('failed', 'dead')
             ORDER BY o.created_at DESC LIMIT 200",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
