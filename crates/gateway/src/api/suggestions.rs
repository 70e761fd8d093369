//! Drafts waiting for approval, and escalations.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_store::{Approval, EscalationView, SuggestionView};
use uuid::Uuid;

use super::{Caller, announce};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/suggestions", get(list))
        .route("/api/v1/suggestions/{id}", get(one))
        .route("/api/v1/suggestions/{id}/approve", post(approve))
        .route("/api/v1/suggestions/{id}/reject", post(reject))
        .route("/api/v1/escalations", get(escalations))
        .route("/api/v1/escalations/{id}", get(escalation))
        .route(
            "/api/v1/escalations/{id}/handle",
            post(|s, c, p| close(s, c, p, true)),
        )
        .route(
            "/api/v1/escalations/{id}/dismiss",
            post(|s, c, p| close(s, c, p, false)),
        )
}

#[derive(Deserialize)]
struct Filter {
    status: Option<String>,
    conversation_id: Option<Uuid>,
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(f): Query<Filter>,
) -> Result<Json<Value>, ApiError> {
    let list = s
        .services
        .store
        .suggestions(
            caller.user().tenant_id,
            f.status.as_deref(),
            f.conversation_id,
        )
        .await?;
    Ok(Json(json!({ "suggestions": list })))
}

async fn one(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<SuggestionView>, ApiError> {
    Ok(Json(
        s.services
            .store
            .suggestion_view(caller.user().tenant_id, id)
            .await?,
    ))
}

/// The body is optional: no body, `{}` or `{"text": null}` approve the draft unchanged.
fn json_or_empty<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[derive(Deserialize, Default)]
struct ApproveBody {
    text: Option<String>,
}

async fn approve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<Approval>, ApiError> {
    let user = caller.actor()?;
    let b: ApproveBody = json_or_empty(&body)?;
    let a = switchboard_flows::approve(&s.services.store, user, id, b.text.as_deref()).await?;
    if !a.already {
        announce(&s, user.tenant_id, json!({"type": "suggestion", "suggestion_id": id, "conversation_id": a.conversation_id, "status": a.status})).await;
    }
    Ok(Json(a))
}

#[derive(Deserialize, Default)]
struct RejectBody {
    reason: Option<String>,
}

async fn reject(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<SuggestionView>, ApiError> {
    let user = caller.actor()?;
    let b: RejectBody = json_or_empty(&body)?;
    let reason = b.reason.unwrap_or_default();
    let conversation_id =
        switchboard_flows::reject(&s.services.store, user, id, reason.trim()).await?;
    announce(&s, user.tenant_id, json!({"type": "suggestion", "suggestion_id": id, "conversation_id": conversation_id, "status": "rejected"})).await;
    Ok(Json(
        s.services.store.suggestion_view(user.tenant_id, id).await?,
    ))
}

#[derive(Deserialize)]
struct StatusFilter {
    status: Option<String>,
}

async fn escalations(
    State(s): State<AppState>,
    caller: Caller,
    Query(f): Query<StatusFilter>,
) -> Result<Json<Value>, ApiError> {
    let list = s
        .services
        .store
        .escalations(caller.user().tenant_id, f.status.as_deref())
        .await?;
    Ok(Json(json!({ "escalations": list })))
}

async fn escalation(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<EscalationView>, ApiError> {
    Ok(Json(
        s.services
            .store
            .escalation_view(caller.user().tenant_id, id)
            .await?,
    ))
}

async fn close(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    handled: bool,
) -> Result<Json<EscalationView>, ApiError> {
    let user = caller.actor()?;
    let conversation_id = s.services.store.close_escalation(user, id, handled).await?;
    announce(
        &s,
        user.tenant_id,
        json!({"type": "escalation", "escalation_id": id, "conversation_id": conversation_id,
        "status": if handled { "handled" } else { "dismissed" }}),
    )
    .await;
    Ok(Json(
        s.services.store.escalation_view(user.tenant_id, id).await?,
    ))
}
