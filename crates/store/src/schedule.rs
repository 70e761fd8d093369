//! The drafting schedule: conversations waiting for their quiet window, claimed with a lease
//! by whichever AI worker is free when they are due. A row says when to look again; what is
//! unanswered is measured from the messages each time.

use std::time::Duration;

use uuid::Uuid;

use crate::{Result, Store};

/// A conversation whose draft is due, leased to one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDraft {
    pub conversation_id: Uuid,
    pub tenant_id: Uuid,
    pub channel_id: Uuid,
    pub lease: Uuid,
    /// Claims since the customer last wrote, this one included.
    pub attempts: u32,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Store {
    /// Looks at the conversation again after `after`. The customer has written since any
    /// earlier call, so this one replaces it, frees its lease and starts the count again.
    pub async fn schedule_draft(
        &self,
        tenant_id: Uuid,
        conversation_id: Uuid,
        after: Duration,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pending_drafts (conversation_id, tenant_id, due_at)
             VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
             ON CONFLICT (conversation_id) DO UPDATE
             SET due_at = EXCLUDED.due_at, lease = NULL, leased_until = NULL, attempts = 0",
        )
        .bind(conversation_id)
        .bind(tenant_id)
        .bind(ms(after))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Leases up to `limit` due conversations for `lease`, the earliest due first. A lease
    /// that ran out (its worker died) makes the row due again.
    pub async fn claim_due_drafts(&self, lease: Duration, limit: usize) -> Result<Vec<DueDraft>> {
        let token = Uuid::now_v7();
        let rows: Vec<(Uuid, Uuid, Uuid, i32)> = sqlx::query_as(
            "UPDATE pending_drafts p
             SET lease = $1, leased_until = clock_timestamp() + $2 * interval '1 millisecond',
                 attempts = p.attempts + 1
             WHERE p.conversation_id IN (
                 SELECT conversation_id FROM pending_drafts
                 WHERE due_at <= clock_timestamp()
                   AND (leased_until IS NULL OR leased_until <= clock_timestamp())
                 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING p.conversation_id, p.tenant_id,
                       (SELECT c.channel_id FROM conversations c WHERE c.id = p.conversation_id),
                       p.attempts",
        )
        .bind(token)
        .bind(ms(lease))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(conversation_id, tenant_id, channel_id, attempts)| DueDraft {
                    conversation_id,
                    tenant_id,
                    channel_id,
                    lease: token,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                },
            )
            .collect())
    }

    /// How long until the next row is due or its lease runs out; `None` when nothing waits.
    pub async fn next_draft_due(&self) -> Result<Option<Duration>> {
        let ms: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM min(GREATEST(due_at, COALESCE(leased_until, due_at)))
                                   - clock_timestamp())::float8 * 1000
             FROM pending_drafts",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ms.map(|ms| Duration::from_millis(ms.max(0.0) as u64)))
    }

    /// The leased conversation is settled. A customer message that arrived meanwhile has
    /// rescheduled the row and freed the lease, so the row stays for that message.
    pub async fn finish_draft(&self, d: &DueDraft) -> Result<()> {
        sqlx::query("DELETE FROM pending_drafts WHERE conversation_id = $1 AND lease = $2")
            .bind(d.conversation_id)
            .bind(d.lease)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives the leased conversation back to be looked at after `after`. `tried` says
    /// whether this claim counts as an attempt (a draft that failed) or not (a conversation
    /// that was not quiet yet).
    pub async fn release_draft(&self, d: &DueDraft, after: Duration, tried: bool) -> Result<()> {
        sqlx::query(
            "UPDATE pending_drafts
             SET due_at = clock_timestamp() + $3 * interval '1 millisecond', lease = NULL,
                 leased_until = NULL, attempts = attempts - CASE WHEN $4 THEN 0 ELSE 1 END
             WHERE conversation_id = $1 AND lease = $2",
        )
        .bind(d.conversation_id)
        .bind(d.lease)
        .bind(ms(after))
        .bind(tried)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
