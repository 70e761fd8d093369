//! Tenant settings, users and dead letters: what owners and admins manage.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_store::{SettingsDoc, User};
use uuid::Uuid;

use super::auth::role;
use super::{Caller, announce};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/settings", get(read).put(write))
        .route("/api/v1/users", post(add_user))
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

/// Replaces the sections given; invalid settings are refused with the reason.
async fn write(
    State(s): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Json<SettingsDoc>, ApiError> {
    let user = caller.admin()?;
    let doc: SettingsDoc =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let cipher =
        switchboard_store::crypto::Cipher::from_base64(&s.services.config.security.master_key).ok();
    s.services
        .store
        .apply_settings(user.tenant_id, &doc, &user.id.to_string(), cipher.as_ref())
        .await?;
    Ok(Json(s.services.store.settings_doc(user.tenant_id).await?))
}

#[derive(Deserialize)]
struct NewUser {
    email: String,
    role: String,
    password: String,
}

async fn add_user(
    State(s): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let admin = caller.admin()?;
    let u: NewUser =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let role = role(&u.role)?;
    if role == switchboard_store::Role::Owner && admin.role != switchboard_store::Role::Owner {
        return Err(ApiError::Forbidden("only an owner can add an owner"));
    }
    let created = s
        .services
        .store
        .add_user(admin.tenant_id, &u.email, role, &u.password)
        .await?;
    s.services
        .store
        .audit(
            admin,
            "add_user",
            "user",
            Some(created.id),
            json!({"email": created.email, "role": role.as_str()}),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn dead_letters(State(s): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let list = s
        .services
        .store
        .dead_letters(Some(caller.user().tenant_id))
        .await?;
    Ok(Json(json!({ "dead_letters": list })))
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
