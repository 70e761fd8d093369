use switchboard_core::{CustomerMessage, DeliveryUpdate, InboundEvent, Sender};
use uuid::Uuid;

use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredInbound {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    /// The delivery had been stored before: a platform retry or a broker redelivery.
    pub duplicate: bool,
}

/// A message that is, as a whole, a stop or a start word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentWord {
    Stop,
    Start,
}

impl Store {
    /// Stores a customer message exactly once. The receipt on (channel, provider event id)
    /// is claimed in the same transaction as the message, so a redelivery finds it and
    /// gets the original ids back instead of a second row.
    ///
    /// A stop or start word changes the customer's consent in the same transaction: from
    /// the moment the STOP is stored no send passes the dispatcher's opt-out check, even
    /// when the worker dies before it queues the confirmation.
    pub async fn store_inbound(
        &self,
        ev: &InboundEvent,
        msg: &CustomerMessage,
        consent: Option<ConsentWord>,
    ) -> Result<StoredInbound> {
        let mut tx = self.pool.begin().await?;
        if !claim_receipt(&mut tx, ev).await? {
            drop(tx);
            return self.existing_receipt(ev, msg).await;
        }

        let thread_key = thread_key(&mut tx, ev, msg).await?;
        let customer_id: Uuid = sqlx::query_scalar(
            "INSERT INTO customers (id, tenant_id, channel_id, external_id, name)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, channel_id, external_id)
             DO UPDATE SET name = COALESCE(EXCLUDED.name, customers.name)
             RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(ev.tenant_id)
        .bind(ev.channel_id)
        .bind(&msg.sender.external_id)
        .bind(&msg.sender.name)
        .fetch_one(&mut *tx)
        .await?;

        sqlx::query(
            "INSERT INTO conversations (id, tenant_id, channel_id, customer_id, mode, thread_key)
             SELECT $1, $2, $3, $4, COALESCE(
                 (SELECT default_mode FROM decision_settings WHERE tenant_id = $2), 'semi-auto'), $5
             ON CONFLICT (tenant_id, customer_id, thread_key) WHERE status <> 'closed' DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(ev.tenant_id)
        .bind(ev.channel_id)
        .bind(customer_id)
        .bind(&thread_key)
        .execute(&mut *tx)
        .await?;
        // A new customer message reopens a resolved conversation (resolved -> active).
        let conversation_id: Uuid = sqlx::query_scalar(
            "UPDATE conversations
             SET status = CASE WHEN status = 'resolved' THEN 'active' ELSE status END,
                 last_customer_message_at = now(), unread_count = unread_count + 1,
                 version = version + 1, updated_at = now()
             WHERE tenant_id = $1 AND customer_id = $2 AND thread_key = $3 AND status <> 'closed'
             RETURNING id",
        )
        .bind(ev.tenant_id)
        .bind(customer_id)
        .bind(&thread_key)
        .fetch_one(&mut *tx)
        .await?;

        let message_id = Uuid::now_v7();
        let email = msg.metadata.get("email");
        let inserted = sqlx::query(
            "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, role, content,
                                   attachments, metadata, external_id, in_reply_to, created_at,
                                   email_message_id, email_in_reply_to, email_references)
             VALUES ($1, $2, $3, $4, 'customer', $5, $6, $7, $8,
                     (SELECT id FROM messages WHERE channel_id = $4 AND external_id = $9), clock_timestamp(),
                     $10, $11, $12)
             ON CONFLICT (channel_id, external_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(ev.tenant_id)
        .bind(conversation_id)
        .bind(ev.channel_id)
        .bind(&msg.text)
        .bind(sqlx::types::Json(&msg.attachments))
        .bind(sqlx::types::Json(&msg.metadata))
        .bind(&msg.external_message_id)
        .bind(&msg.reply_to_external_id)
        .bind(email.map(|_| &msg.external_message_id))
        .bind(email.and_then(|e| ids(&e["in_reply_to"]).into_iter().next()))
        .bind(email.map(|e| ids(&e["references"])))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            // Same platform message under a new delivery id: nothing new to answer.
            drop(tx);
            return self.existing_message(ev, msg).await;
        }
        sqlx::query(
            "UPDATE inbound_receipts SET message_id = $1
             WHERE channel_id = $2 AND provider_event_id = $3",
        )
        .bind(message_id)
        .bind(ev.channel_id)
        .bind(&ev.provider_event_id)
        .execute(&mut *tx)
        .await?;
        if let Some(word) = consent {
            change_consent(&mut tx, conversation_id, message_id, word).await?;
        }
        tx.commit().await?;
        Ok(StoredInbound {
            conversation_id,
            message_id,
            duplicate: false,
        })
    }

    async fn existing_receipt(
        &self,
        ev: &InboundEvent,
        msg: &CustomerMessage,
    ) -> Result<StoredInbound> {
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT m.conversation_id, m.id FROM inbound_receipts r
             JOIN messages m ON m.id = r.message_id
             WHERE r.channel_id = $1 AND r.provider_event_id = $2 AND r.tenant_id = $3",
        )
        .bind(ev.channel_id)
        .bind(&ev.provider_event_id)
        .bind(ev.tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some((conversation_id, message_id)) => Ok(StoredInbound {
                conversation_id,
                message_id,
                duplicate: true,
            }),
            // The receipt's transaction is still open elsewhere, or it named an existing
            // message: either way the other delivery owns this one.
            None => self.existing_message(ev, msg).await,
        }
    }

    async fn existing_message(
        &self,
        ev: &InboundEvent,
        msg: &CustomerMessage,
    ) -> Result<StoredInbound> {
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT conversation_id, id FROM messages
             WHERE channel_id = $1 AND external_id = $2 AND tenant_id = $3",
        )
        .bind(ev.channel_id)
        .bind(&msg.external_message_id)
        .bind(ev.tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        let (conversation_id, message_id) = row.ok_or(StoreError::NotFound {
            what: "message of an already claimed receipt",
        })?;
        Ok(StoredInbound {
            conversation_id,
            message_id,
            duplicate: true,
        })
    }
}

/// Revokes consent for a stop word unless already revoked, and grants it again for a
/// start word only after a revocation (a start word from a customer who never opted out
/// is an ordinary message). The row remembers which message changed it.
async fn change_consent(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    conversation_id: Uuid,
    message_id: Uuid,
    word: ConsentWord,
) -> Result<()> {
    let query = match word {
        ConsentWord::Stop => sqlx::query(
            "INSERT INTO consents (id, tenant_id, customer_id, channel_id, status, changed_by)
             SELECT $3, c.tenant_id, c.customer_id, c.channel_id, 'revoked', $2
             FROM conversations c WHERE c.id = $1
             ON CONFLICT (customer_id, channel_id) DO UPDATE
             SET status = 'revoked', changed_at = now(), changed_by = EXCLUDED.changed_by
             WHERE consents.status <> 'revoked'",
        )
        .bind(conversation_id)
        .bind(message_id)
        .bind(Uuid::now_v7()),
        ConsentWord::Start => sqlx::query(
            "UPDATE consents k SET status = 'granted', changed_at = now(), changed_by = $2
             FROM conversations c
             WHERE c.id = $1 AND k.customer_id = c.customer_id AND k.channel_id = c.channel_id
               AND k.status = 'revoked'",
        )
        .bind(conversation_id)
        .bind(message_id),
    };
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Claims the dedup receipt of `ev` inside `tx`; false if another delivery holds it.
async fn claim_receipt(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    ev: &InboundEvent,
) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO inbound_receipts (tenant_id, channel_id, provider_event_id)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(ev.tenant_id)
    .bind(ev.channel_id)
    .bind(&ev.provider_event_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

impl Store {
    /// Every step of the job's handling is done: counted on its receipt, so a message
    /// stored by a worker that died before the end is told apart from a handled one.
    pub async fn mark_handled(&self, ev: &InboundEvent) -> Result<()> {
        sqlx::query(
            "UPDATE inbound_receipts SET handled = handled + 1
             WHERE tenant_id = $3 AND channel_id = $1 AND provider_event_id = $2",
        )
        .bind(ev.channel_id)
        .bind(&ev.provider_event_id)
        .bind(ev.tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An edited customer message: the stored text changes, no turn starts. Returns false
    /// for a duplicate delivery or a message we never stored.
    pub async fn apply_edit(
        &self,
        ev: &InboundEvent,
        external_message_id: &str,
        text: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if !claim_receipt(&mut tx, ev).await? {
            return Ok(false);
        }
        let changed = sqlx::query(
            "UPDATE messages SET content = $4, edited_at = now()
             WHERE tenant_id = $1 AND channel_id = $2 AND external_id = $3 AND role = 'customer'",
        )
        .bind(ev.tenant_id)
        .bind(ev.channel_id)
        .bind(external_message_id)
        .bind(text)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(changed)
    }

    /// A customer message deleted on the platform: marked with the time, kept for the
    /// record. Returns false for a duplicate delivery or a message we never stored.
    pub async fn apply_delete(&self, ev: &InboundEvent, external_message_id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if !claim_receipt(&mut tx, ev).await? {
            return Ok(false);
        }
        let changed = sqlx::query(
            "UPDATE messages SET metadata = metadata || jsonb_build_object('deleted_at', now())
             WHERE tenant_id = $1 AND channel_id = $2 AND external_id = $3 AND role = 'customer'",
        )
        .bind(ev.tenant_id)
        .bind(ev.channel_id)
        .bind(external_message_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(changed)
    }

    /// What became of a message we sent. Statuses only move forward (a late "delivered"
    /// never overwrites "read"); "failed" always applies. A closed window is remembered on
    /// the customer.
    pub async fn apply_status(&self, ev: &InboundEvent, u: &DeliveryUpdate) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if !claim_receipt(&mut tx, ev).await? {
            return Ok(false);
        }
        let changed = sqlx::query(
            "UPDATE messages SET delivery_status = $4, delivery_error = COALESCE($5, delivery_error)
             WHERE tenant_id = $1 AND channel_id = $2 AND external_id = $3 AND role <> 'customer'
               AND ($4 = 'failed' OR array_position(ARRAY['queued','sent','delivered','read'], $4)
                    > COALESCE(array_position(ARRAY['queued','sent','delivered','read'], delivery_status), 0))",
        )
        .bind(ev.tenant_id)
        .bind(ev.channel_id)
        .bind(&u.external_message_id)
        .bind(u.status.as_str())
        .bind(u.error.as_ref().map(|e| match u.error_code {
            Some(code) => format!("{code}: {e}"),
            None => e.clone(),
        }))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if u.window_closed {
            sqlx::query(
                "UPDATE customers SET metadata = metadata || jsonb_build_object('window_closed_at', now())
                 WHERE tenant_id = $1 AND channel_id = $2 AND external_id = $3",
            )
            .bind(ev.tenant_id)
            .bind(ev.channel_id)
            .bind(&u.recipient)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// A reaction to a message, kept on that message's metadata by reacting customer.
    pub async fn apply_reaction(
        &self,
        ev: &InboundEvent,
        external_message_id: &str,
        sender: &Sender,
        emoji: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if !claim_receipt(&mut tx, ev).await? {
            return Ok(false);
        }
        let changed = sqlx::query(
            "UPDATE messages SET metadata = CASE
                 WHEN $5::text IS NULL THEN metadata #- ARRAY['reactions', $4]
                 ELSE jsonb_set(metadata || jsonb_build_object('reactions', COALESCE(metadata->'reactions', '{}')),
                                ARRAY['reactions', $4], to_jsonb($5::text)) END
             WHERE tenant_id = $1 AND channel_id = $2 AND external_id = $3",
        )
        .bind(ev.tenant_id)
        .bind(ev.channel_id)
        .bind(external_message_id)
        .bind(&sender.external_id)
        .bind(emoji)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(changed)
    }
}

/// The ids an email header field lists, as the email adapter stored them.
fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Which thread of the customer's a message belongs to. Email threads by its headers: a
/// mail that answers one we stored (theirs or ours) joins that conversation's thread, any
/// other starts its own. Other channels have one thread per customer.
async fn thread_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    ev: &InboundEvent,
    msg: &CustomerMessage,
) -> Result<String> {
    let Some(email) = msg.metadata.get("email") else {
        return Ok(String::new());
    };
    let mut refs = ids(&email["in_reply_to"]);
    refs.extend(ids(&email["references"]));
    let found: Option<String> = sqlx::query_scalar(
        "SELECT c.thread_key FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.channel_id = $1 AND m.external_id = ANY($2)
         ORDER BY m.created_at DESC LIMIT 1",
    )
    .bind(ev.channel_id)
    .bind(&refs)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.unwrap_or_else(|| msg.external_message_id.clone()))
}
