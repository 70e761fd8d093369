//! Webhook URLs name channels by id; this resolves them with their decrypted credentials,
//! off the hot path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{ChannelKind, ChannelRef};
use switchboard_store::Store;
use switchboard_store::crypto::Cipher;
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::ApiError;

const TTL: Duration = Duration::from_secs(30);

pub struct ResolvedChannel {
    pub channel: ChannelRef,
    pub kind: ChannelKind,
    pub config: serde_json::Value,
    pub secrets: serde_json::Value,
}

type Cached = (Option<Arc<ResolvedChannel>>, Instant);

pub struct ChannelCache {
    store: Store,
    cipher: Option<Cipher>,
    /// By id and the kind the caller asked for: a webhook for the wrong kind is a cached
    /// 404, and never decrypts the channel's credentials.
    entries: RwLock<HashMap<(Uuid, ChannelKind), Cached>>,
}

impl ChannelCache {
    pub fn new(store: Store, cipher: Option<Cipher>) -> Self {
        Self {
            store,
            cipher,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The active channel `id` of `kind`; anything else is a 404.
    pub async fn resolve(
        &self,
        id: Uuid,
        kind: ChannelKind,
    ) -> Result<Arc<ResolvedChannel>, ApiError> {
        let hit = self.entries.read().await.get(&(id, kind)).cloned();
        let found = match hit {
            Some((found, at)) if at.elapsed() < TTL => found,
            _ => {
                let found = self.load(id, kind).await?;
                let mut entries = self.entries.write().await;
                if entries.len() > 10_000 {
                    entries.clear();
                }
                entries.insert((id, kind), (found.clone(), Instant::now()));
                found
            }
        };
        found.ok_or(ApiError::NotFound("channel"))
    }

    /// Forgets every lookup, after a tenant was disabled or enabled here.
    pub async fn forget(&self) {
        self.entries.write().await.clear();
    }

    async fn load(
        &self,
        id: Uuid,
        kind: ChannelKind,
    ) -> Result<Option<Arc<ResolvedChannel>>, ApiError> {
        let Some(record) = self
            .store
            .channel(id)
            .await?
            .filter(|c| c.is_active && c.kind == kind)
        else {
            return Ok(None);
        };
        let cipher = self.cipher.as_ref().ok_or_else(|| {
            tracing::error!(channel_id = %id, "no master key: cannot check this channel's webhooks");
            ApiError::Internal
        })?;
        let secrets = record.secrets(cipher).map_err(|e| {
            tracing::error!(channel_id = %id, error = %switchboard_core::error_chain(&e), "channel credentials unusable");
            ApiError::Internal
        })?;
        Ok(Some(Arc::new(ResolvedChannel {
            channel: ChannelRef {
                tenant_id: record.tenant_id,
                channel_id: record.id,
            },
            kind: record.kind,
            config: record.config,
            secrets,
        })))
    }
}
