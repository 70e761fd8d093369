//! The one rule for what a change in a conversation takes back: every draft still waiting
//! (for an operator, or for its delay) and every drafted reply that has not begun to go
//! out. What an operator decided on stands (only an opt-out stops it, at the dispatcher),
//! and so does a reply already in flight, which is finished rather than cut off.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;

/// Supersedes what is waiting in the conversation, with `why` kept on the outbox rows.
/// The caller holds the conversation's row lock (the lock order is conversation, then
/// suggestion, then outbox).
pub(crate) async fn supersede_waiting(
    tx: &mut PgConnection,
    conversation_id: Uuid,
    why: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE ai_suggestions SET status = 'superseded', updated_at = now()
         WHERE conversation_id = $1 AND status IN ('pending', 'queued')",
    )
    .bind(conversation_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE outbox SET status = 'superseded', last_error = $2
         WHERE conversation_id = $1 AND status = 'pending' AND suggestion_id IS NOT NULL
           AND approved_by IS NULL AND {NOT_IN_FLIGHT}"
    ))
    .bind(conversation_id)
    .bind(why)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// An outbox row no dispatcher is sending and of which nothing went out yet.
pub(crate) const NOT_IN_FLIGHT: &str =
    "parts_sent = 0 AND (leased_until IS NULL OR leased_until <= now())";
