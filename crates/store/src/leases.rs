//! Listener leases: one listener at a time holds a channel's connection. A lease is a row
//! with an expiry its holder renews; a standby takes a lapsed one, and the fence it gets
//! (one more than the last holder's) guards the channel's cursor against the old holder.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store};

/// A lease this process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLease {
    pub channel_id: Uuid,
    pub holder: Uuid,
    pub fence: i64,
}

/// A lease as the table shows it, for the fleet view.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldLease {
    pub channel_id: Uuid,
    pub holder: Uuid,
    pub fence: i64,
    pub expires_at: DateTime<Utc>,
    pub acquired_at: DateTime<Utc>,
}

fn interval(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

impl Store {
    /// Takes the channel's lease for `ttl` if nobody holds it or the holder let it lapse.
    /// The database's clock judges expiry, so listeners' clocks need not agree.
    pub async fn acquire_channel_lease(
        &self,
        channel_id: Uuid,
        holder: Uuid,
        ttl: Duration,
    ) -> Result<Option<ChannelLease>> {
        // The fence only grows: past every fence this lease and the channel's cursor have
        // seen, even if the lease row was removed by hand.
        let fence: Option<i64> = sqlx::query_scalar(
            "INSERT INTO channel_leases (channel_id, holder, fence, expires_at)
             VALUES ($1, $2, COALESCE((SELECT fence FROM channel_cursors WHERE channel_id = $1), 0) + 1,
                     now() + make_interval(secs => $3))
             ON CONFLICT (channel_id) DO UPDATE
                SET holder = $2,
                    fence = GREATEST(channel_leases.fence,
                                     COALESCE((SELECT fence FROM channel_cursors WHERE channel_id = $1), 0)) + 1,
                    expires_at = now() + make_interval(secs => $3), acquired_at = now()
              WHERE channel_leases.expires_at < now() OR channel_leases.holder = $2
             RETURNING fence",
        )
        .bind(channel_id)
        .bind(holder)
        .bind(interval(ttl))
        .fetch_optional(&self.pool)
        .await?;
        Ok(fence.map(|fence| ChannelLease {
            channel_id,
            holder,
            fence,
        }))
    }

    /// Extends a held lease; false when it is no longer this holder's.
    pub async fn renew_channel_lease(&self, lease: &ChannelLease, ttl: Duration) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE channel_leases SET expires_at = now() + make_interval(secs => $4)
              WHERE channel_id = $1 AND holder = $2 AND fence = $3",
        )
        .bind(lease.channel_id)
        .bind(lease.holder)
        .bind(lease.fence)
        .bind(interval(ttl))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives a lease up at once, so a standby need not wait for it to lapse. The row stays
    /// (lapsed), so the next holder's fence is higher still.
    pub async fn release_channel_lease(&self, lease: &ChannelLease) -> Result<()> {
        sqlx::query(
            "UPDATE channel_leases SET expires_at = now() - interval '1 millisecond'
              WHERE channel_id = $1 AND holder = $2 AND fence = $3",
        )
        .bind(lease.channel_id)
        .bind(lease.holder)
        .bind(lease.fence)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every lease not yet lapsed.
    pub async fn channel_leases(&self) -> Result<Vec<HeldLease>> {
        Ok(sqlx::query_as(
            "SELECT channel_id, holder, fence, expires_at, acquired_at FROM channel_leases
              WHERE expires_at >= now() ORDER BY channel_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
