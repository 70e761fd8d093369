//! Leads: operators correct the contact details captured in a conversation, admins export
//! the shop's leads as CSV.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use switchboard_core::Lead;
use uuid::Uuid;

use super::{Caller, announce};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations/{id}/lead", patch(correct))
        .route("/api/v1/leads", get(export))
}

/// `{"name": "Anna Schmidt", "phone": null}`: each field given is set, or cleared by `null`.
async fn correct(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Json<Lead>, ApiError> {
    let user = caller.actor()?;
    let changes: Map<String, Value> =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let lead = s.services.store.correct_lead(user, id, &changes).await?;
    announce(
        &s,
        user.tenant_id,
        json!({"type": "conversation", "conversation_id": id, "action": "lead"}),
    )
    .await;
    Ok(Json(lead))
}

async fn export(State(s): State<AppState>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    let admin = caller.admin()?;
    let csv = s.services.store.leads_csv(admin.tenant_id).await?;
    // Customers' contact details leave the system here: who took them is kept.
    s.services
        .store
        .audit(
            admin,
            "leads.export",
            "tenant",
            Some(admin.tenant_id),
            json!({}),
        )
        .await?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"leads.csv\""),
        ],
        csv,
    ))
}
