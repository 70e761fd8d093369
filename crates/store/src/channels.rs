use std::collections::HashMap;

use switchboard_core::{ChannelKind, UnknownValue};
use uuid::Uuid;

use crate::crypto::Cipher;
use crate::{ChannelLease, Result, Store, StoreError};

/// A channel as stored; `credentials` is still encrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_slug: String,
    pub kind: ChannelKind,
    pub name: String,
    pub config: serde_json::Value,
    pub credentials: Option<Vec<u8>>,
    pub is_active: bool,
}

impl ChannelRecord {
    /// The decrypted credentials, as the JSON the channel module defines.
    pub fn secrets(&self, cipher: &Cipher) -> Result<serde_json::Value> {
        let blob = self.credentials.as_deref().ok_or_else(|| {
            StoreError::Invalid(format!("channel {} has no credentials", self.id))
        })?;
        let plain = cipher
            .decrypt(blob)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Corrupt(format!("channel credentials: {e}")))
    }
}

type Row = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    serde_json::Value,
    Option<Vec<u8>>,
    bool,
);

/// A channel is active when it is enabled and its tenant is too: a disabled tenant's
/// channels answer 404 and are not listened on.
const SELECT: &str = "SELECT c.id, c.tenant_id, t.slug, c.kind, c.name, c.config, c.credentials,
                             c.is_active AND t.status = 'active'
                      FROM channels c JOIN tenants t ON t.id = c.tenant_id";

fn record(r: Row) -> Result<ChannelRecord> {
    Ok(ChannelRecord {
        id: r.0,
        tenant_id: r.1,
        tenant_slug: r.2,
        kind: r
            .3
            .parse()
            .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))?,
        name: r.4,
        config: r.5,
        credentials: r.6,
        is_active: r.7,
    })
}

impl Store {
    pub async fn create_channel(
        &self,
        tenant_id: Uuid,
        kind: ChannelKind,
        name: &str,
        config: &serde_json::Value,
        credentials: Option<&[u8]>,
    ) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let inserted = sqlx::query(
            "INSERT INTO channels (id, tenant_id, kind, name, config, credentials) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, kind, name) DO NOTHING",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(kind.as_str())
        .bind(name)
        .bind(config)
        .bind(credentials)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Invalid(format!(
                "the tenant already has a {kind} channel named {name:?}"
            )));
        }
        Ok(id)
    }

    pub async fn channel(&self, id: Uuid) -> Result<Option<ChannelRecord>> {
        let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(record).transpose()
    }

    /// Every channel, or one tenant's, oldest first.
    pub async fn channels(&self, tenant_id: Option<Uuid>) -> Result<Vec<ChannelRecord>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{SELECT} WHERE $1::uuid IS NULL OR c.tenant_id = $1 ORDER BY c.created_at"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(record).collect()
    }

    pub async fn set_channel_active(&self, id: Uuid, active: bool) -> Result<()> {
        let n = sqlx::query("UPDATE channels SET is_active = $2 WHERE id = $1")
            .bind(id)
            .bind(active)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "channel" });
        }
        Ok(())
    }
}

impl Store {
    /// The next `getUpdates` offset of a long-polled Telegram channel.
    pub async fn telegram_offset(&self, channel_id: Uuid) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT telegram_offset FROM channel_cursors WHERE channel_id = $1")
                .bind(channel_id)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    /// Moves a long-polled Telegram channel's offset on, only while `lease` is held.
    pub async fn set_telegram_offset(
        &self,
        tenant_id: Uuid,
        lease: &ChannelLease,
        offset: i64,
    ) -> Result<()> {
        let n = sqlx::query(&fenced(
            "(channel_id, tenant_id, fence, telegram_offset) SELECT $1, $2, $3, $5 FROM held",
            "telegram_offset = $5",
        ))
        .bind(lease.channel_id)
        .bind(tenant_id)
        .bind(lease.fence)
        .bind(lease.holder)
        .bind(offset)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    /// An IMAP channel's cursor: the mailbox's UIDVALIDITY and the last UID queued.
    pub async fn imap_cursor(&self, channel_id: Uuid) -> Result<Option<(u32, u32)>> {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT imap_uidvalidity, imap_last_uid FROM channel_cursors WHERE channel_id = $1",
        )
        .bind(channel_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((Some(v), Some(u))) => Some((
                u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("UIDVALIDITY {v}")))?,
                u32::try_from(u).map_err(|_| StoreError::Corrupt(format!("UID {u}")))?,
            )),
            _ => None,
        })
    }

    /// Moves an IMAP channel's cursor on, only while `lease` is held.
    pub async fn set_imap_cursor(
        &self,
        tenant_id: Uuid,
        lease: &ChannelLease,
        uidvalidity: u32,
        last_uid: u32,
    ) -> Result<()> {
        let n = sqlx::query(&fenced(
            "(channel_id, tenant_id, fence, imap_uidvalidity, imap_last_uid)
             SELECT $1, $2, $3, $5, $6 FROM held",
            "imap_uidvalidity = $5, imap_last_uid = $6",
        ))
        .bind(lease.channel_id)
        .bind(tenant_id)
        .bind(lease.fence)
        .bind(lease.holder)
        .bind(i64::from(uidvalidity))
        .bind(i64::from(last_uid))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    /// Where the reading of each Discord channel a bot reads has got to, keyed by the
    /// Discord channel's id. Channels whose newest message read is older than the message
    /// id `since` are forgotten here, so the map holds the channels read lately only.
    pub async fn discord_cursors(
        &self,
        channel_id: Uuid,
        since: &str,
    ) -> Result<HashMap<String, DiscordCursor>> {
        if !is_snowflake(since) {
            return Err(StoreError::Invalid(format!(
                "{since:?} is not a Discord id"
            )));
        }
        let ids: Option<sqlx::types::Json<HashMap<String, DiscordCursor>>> = sqlx::query_scalar(
            "UPDATE channel_cursors SET discord_last_ids = COALESCE(
                    (SELECT jsonb_object_agg(k, v) FROM jsonb_each(discord_last_ids) AS e(k, v)
                      WHERE (v ->> 'last')::numeric >= $2::numeric), '{}')
              WHERE channel_id = $1 RETURNING discord_last_ids",
        )
        .bind(channel_id)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(ids.map(|j| j.0).unwrap_or_default())
    }

    /// Records that the messages of the Discord channel `discord_channel` up to `cursor`
    /// are queued (or ignored on purpose); an older id than the one stored leaves it. Only
    /// while `lease` is held.
    pub async fn set_discord_cursor(
        &self,
        tenant_id: Uuid,
        lease: &ChannelLease,
        discord_channel: &str,
        cursor: &DiscordCursor,
    ) -> Result<()> {
        if !is_snowflake(discord_channel) || !is_snowflake(&cursor.last) {
            return Err(StoreError::Invalid(format!(
                "{discord_channel:?}/{:?} are not Discord ids",
                cursor.last
            )));
        }
        let n = sqlx::query(&fenced(
            "(channel_id, tenant_id, fence, discord_last_ids)
             SELECT $1, $2, $3, jsonb_build_object($5::text, $6::jsonb) FROM held",
            "discord_last_ids = CASE
                WHEN (channel_cursors.discord_last_ids -> $5::text ->> 'last') IS NOT NULL
                 AND (channel_cursors.discord_last_ids -> $5::text ->> 'last')::numeric
                     >= ($6::jsonb ->> 'last')::numeric
                THEN channel_cursors.discord_last_ids
                ELSE channel_cursors.discord_last_ids || jsonb_build_object($5::text, $6::jsonb)
              END",
        ))
        .bind(lease.channel_id)
        .bind(tenant_id)
        .bind(lease.fence)
        .bind(lease.holder)
        .bind(discord_channel)
        .bind(sqlx::types::Json(cursor))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }
}

/// How far a Discord channel has been read: the newest message id, and the guild the
/// channel belongs to (the REST API's messages do not say, and the guild decides whether
/// a message must mention the bot).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiscordCursor {
    pub last: String,
    #[serde(default)]
    pub guild: Option<String>,
}

fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// An upsert of a channel's cursor that happens only while the lease (`$1` channel, `$3`
/// fence, `$4` holder) is held and no later holder has written: the fence.
fn fenced(insert: &str, update: &str) -> String {
    format!(
        "WITH held AS (SELECT 1 FROM channel_leases
                        WHERE channel_id = $1 AND fence = $3 AND holder = $4 AND expires_at > now())
         INSERT INTO channel_cursors {insert}
         ON CONFLICT (channel_id) DO UPDATE SET {update}, fence = $3, updated_at = now()
          WHERE channel_cursors.fence <= $3"
    )
}
