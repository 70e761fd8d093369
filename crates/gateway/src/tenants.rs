use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchboard_core::ChannelKind;
use switchboard_store::{Store, TenantChannel};
use tokio::sync::RwLock;

use crate::ApiError;

const TTL: Duration = Duration::from_secs(30);
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// A lookup result (a miss too) and when it was made.
type Cached = (Option<TenantChannel>, Instant);

/// Public URLs name tenants by slug; this keeps the lookup off the hot path.
pub struct TenantCache {
    store: Store,
    entries: RwLock<HashMap<(String, ChannelKind), Cached>>,
}

impl TenantCache {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub async fn resolve(&self, slug: &str, kind: ChannelKind) -> Result<TenantChannel, ApiError> {
        let key = (slug.to_owned(), kind);
        if let Some((hit, at)) = self.entries.read().await.get(&key) {
            let ttl = if hit.is_some() { TTL } else { NEGATIVE_TTL };
            if at.elapsed() < ttl {
                return hit.clone().ok_or(ApiError::NotFound("tenant"));
            }
        }
        let found = self.store.tenant_channel(slug, kind).await?;
        let mut entries = self.entries.write().await;
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(key, (found.clone(), Instant::now()));
        found.ok_or(ApiError::NotFound("tenant"))
    }

    /// Forgets every lookup, after a tenant was disabled or enabled here; other gateways
    /// see the change when their entries expire (`TTL`).
    pub async fn forget(&self) {
        self.entries.write().await.clear();
    }
}
