//! Tenant settings and dead letters: what owners and admins manage.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use switchboard_store::SettingsDoc;
use uuid::Uuid;

use super::{Caller, announce};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/settings", get(read).put(write).patch(write))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/{id}/replay", post(replay))
}

async fn read(State(s): State<AppState>, caller: Caller) -> Result<Json<SettingsDoc>, ApiError> {
    Ok(Json(
        s.services
            .store
            .settings_doc(caller.user().tenant_id)
            .await?,
    ))
}

/// A merge patch over the stored settings (PUT and PATCH alike); `?replace=true` replaces
/// the sections given whole. Invalid settings are refused with the reason.
async fn write(
    State(s): State<AppState>,
    caller: Caller,
    Query(how): Query<crate::admin::WriteQuery>,
    body: axum::body::Bytes,
) -> Result<Json<SettingsDoc>, ApiError> {
    let user = caller.admin()?;
    let written: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let cipher =
        switchboard_store::crypto::Cipher::from_base64(&s.services.config.security.master_key).ok();
    Ok(Json(
        s.services
            .store
            .apply_settings(
                user.tenant_id,
                &written,
                how.write(),
                &user.id.to_string(),
                cipher.as_ref(),
            )
            .await?,
    ))
}

/// Inbound jobs read from the broker's dead letters per listing; the shared queue holds
/// every tenant's, so a tenant sees those of its own among them.
const INBOUND_DEAD_READ: usize = 500;
/// How long the listing waits for the broker before it shows the sends alone.
const INBOUND_DEAD_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Failed sends, and the tenant's inbound jobs the workers gave up on (ids and reasons
/// only; replaying those is the platform admin's `switchboard dlq replay --inbound`, since
/// the queue is shared). With the broker away the sends are still listed.
async fn dead_letters(State(s): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let tenant = caller.user().tenant_id;
    let list = s.services.store.dead_letters(Some(tenant)).await?;
    let tenant = tenant.to_string();
    let read = switchboard_bus::dead_letters(
        s.services.publisher.config(),
        switchboard_bus::INBOUND,
        INBOUND_DEAD_READ,
    );
    let inbound = match tokio::time::timeout(INBOUND_DEAD_WAIT, read).await {
        Ok(Ok(all)) => Ok(all
            .iter()
            .filter(|d| d.concerns(&tenant))
            .map(|d| d.describe_for(Some(&tenant)))
            .collect::<Vec<_>>()),
        Ok(Err(e)) => Err(format!("the broker could not be read: {e}")),
        Err(_) => Err("the broker did not answer in time".to_owned()),
    };
    Ok(Json(match inbound {
        Ok(inbound) => json!({ "dead_letters": list, "inbound": inbound }),
        Err(e) => json!({ "dead_letters": list, "inbound": null, "inbound_error": e }),
    }))
}

async fn replay(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let user = caller.actor()?;
    let conversation_id = s.services.store.replay_dead_letter(user, id).await?;
    announce(&s, user.tenant_id, json!({"type": "dead_letter", "id": id, "conversation_id": conversation_id, "status": "replayed"})).await;
    Ok(Json(json!({ "id": id, "status": "pending" })))
}
