//! The operator API under `/api/v1`: JSON only, every call scoped to the caller's tenant.
//! The console uses nothing else.

mod auth;
mod catalog;
mod conversations;
mod events;
mod leads;
mod openapi;
mod settings;
mod suggestions;
mod users;

use axum::Router;
use serde_json::Value;
use switchboard_core::LiveFeed;
use switchboard_store::RedisLiveFeed;
use uuid::Uuid;

use crate::AppState;

pub use auth::Caller;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(
            auth::routes().route_layer(axum::middleware::from_fn_with_state(
                state,
                crate::per_ip::limit,
            )),
        )
        .merge(conversations::routes())
        .merge(suggestions::routes())
        .merge(events::routes())
        .merge(settings::routes())
        .merge(catalog::routes())
        .merge(users::routes())
        .merge(leads::routes())
        .merge(openapi::routes())
}

/// The live topic of a tenant's operators: the workers publish to it as well.
pub fn operators_topic(tenant_id: Uuid) -> String {
    format!("operators:{tenant_id}")
}

/// Tells the tenant's open consoles that something changed. Losing this is harmless:
/// consoles also reload what they show.
async fn announce(s: &AppState, tenant_id: Uuid, event: Value) {
    if let Err(e) = RedisLiveFeed::new(s.services.redis.clone())
        .publish(&operators_topic(tenant_id), &event)
        .await
    {
        tracing::debug!(error = %switchboard_core::error_chain(&e), "live operator event skipped");
    }
}
