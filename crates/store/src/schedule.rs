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
    /// The worker's lease token.
    pub lease: Uuid,
    /// Bumped by every customer message; a finished claim of an older generation leaves
    /// the row for the newer message.
    pub generation: i64,
    /// Claims since the customer last wrote, this one included.
    pub attempts: u32,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Store {
    /// Looks at the conversation again after `after`, since the customer has written. A
    /// live lease stays with its holder, who leaves the row for this message when done.
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
             SET due_at = EXCLUDED.due_at, generation = pending_drafts.generation + 1,
                 attempts = 0",
        )
        .bind(conversation_id)
        .bind(tenant_id)
        .bind(ms(after))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Leases up to `limit` due conversations to the worker `lease` for `hold`, the
    /// earliest due first. A lease that ran out (its worker died) makes the row due again.
    pub async fn claim_due_drafts(
        &self,
        lease: Uuid,
        hold: Duration,
        limit: usize,
    ) -> Result<Vec<DueDraft>> {
        // The rows are picked in a CTE, which runs once: as a subquery of the UPDATE the
        // planner may run it again and lease more than `limit`.
        let rows: Vec<(Uuid, Uuid, Uuid, i64, i32)> = sqlx::query_as(
            "WITH due AS (
                 SELECT conversation_id FROM pending_drafts
                 WHERE due_at <= clock_timestamp()
                   AND (leased_until IS NULL OR leased_until <= clock_timestamp())
                 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE pending_drafts p
             SET lease = $1, leased_until = clock_timestamp() + $2 * interval '1 millisecond',
                 attempts = p.attempts + 1
             FROM due WHERE p.conversation_id = due.conversation_id
             RETURNING p.conversation_id, p.tenant_id,
                       (SELECT c.channel_id FROM conversations c WHERE c.id = p.conversation_id),
                       p.generation, p.attempts",
        )
        .bind(lease)
        .bind(ms(hold))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(conversation_id, tenant_id, channel_id, generation, attempts)| DueDraft {
                    conversation_id,
                    tenant_id,
                    channel_id,
                    lease,
                    generation,
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

    /// The leased conversation is settled. If the customer wrote meanwhile, the row stays,
    /// unleased, for that message.
    pub async fn finish_draft(&self, d: &DueDraft) -> Result<()> {
        let deleted = sqlx::query(
            "DELETE FROM pending_drafts WHERE conversation_id = $1 AND lease = $2 AND generation = $3",
        )
        .bind(d.conversation_id)
        .bind(d.lease)
        .bind(d.generation)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if deleted == 0 {
            sqlx::query(
                "UPDATE pending_drafts SET lease = NULL, leased_until = NULL
                 WHERE conversation_id = $1 AND lease = $2",
            )
            .bind(d.conversation_id)
            .bind(d.lease)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Gives the leased conversation back to be looked at after `after`, or when the
    /// customer's newer message is due if that is later. `tried` says whether this claim
    /// counts as an attempt (a draft that failed) or not (a conversation not quiet yet).
    pub async fn release_draft(&self, d: &DueDraft, after: Duration, tried: bool) -> Result<()> {
        sqlx::query(
            "UPDATE pending_drafts
             SET due_at = GREATEST(due_at, clock_timestamp() + $3 * interval '1 millisecond'),
                 lease = NULL, leased_until = NULL,
                 attempts = attempts - CASE WHEN $4 OR generation <> $5 THEN 0 ELSE 1 END
             WHERE conversation_id = $1 AND lease = $2",
        )
        .bind(d.conversation_id)
        .bind(d.lease)
        .bind(ms(after))
        .bind(tried)
        .bind(d.generation)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Extends the leases the worker `lease` holds on `conversations` by `hold` from now:
    /// it is alive and still drafting them.
    pub async fn renew_leases(
        &self,
        lease: Uuid,
        conversations: &[Uuid],
        hold: Duration,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE pending_drafts SET leased_until = clock_timestamp() + $2 * interval '1 millisecond'
             WHERE lease = $1 AND conversation_id = ANY($3)",
        )
        .bind(lease)
        .bind(ms(hold))
        .bind(conversations)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Frees every lease the worker `lease` holds: it is stopping, and what it did not
    /// finish is due again at once rather than when the leases would run out.
    pub async fn release_leases(&self, lease: Uuid) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE pending_drafts SET lease = NULL, leased_until = NULL WHERE lease = $1",
        )
        .bind(lease)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Whether the message already has a draft, so that giving up on a conversation never
    /// escalates one that was answered after all.
    pub async fn has_suggestion(&self, message_id: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ai_suggestions WHERE based_on_message_id = $1)",
        )
        .bind(message_id)
        .fetch_one(&self.pool)
        .await?)
    }
}
