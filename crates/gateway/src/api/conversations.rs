//! The inbox, a conversation's messages, operator messages and lifecycle moves.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_store::{ConversationAction, ConversationView, InboxFilter};
use uuid::Uuid;

use super::{Caller, announce};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations", get(inbox))
        .route("/api/v1/conversations/{id}", get(one))
        .route(
            "/api/v1/conversations/{id}/messages",
            get(messages).post(write),
        )
        .route(
            "/api/v1/conversations/{id}/takeover",
            post(|s, c, p| act(s, c, p, ConversationAction::Takeover)),
        )
        .route(
            "/api/v1/conversations/{id}/release",
            post(|s, c, p| act(s, c, p, ConversationAction::Release)),
        )
        .route(
            "/api/v1/conversations/{id}/resolve",
            post(|s, c, p| act(s, c, p, ConversationAction::Resolve)),
        )
        .route(
            "/api/v1/conversations/{id}/close",
            post(|s, c, p| act(s, c, p, ConversationAction::Close)),
        )
        .route(
            "/api/v1/conversations/{id}/reopen",
            post(|s, c, p| act(s, c, p, ConversationAction::Reopen)),
        )
}

#[derive(Deserialize)]
struct InboxQuery {
    status: Option<String>,
    channel: Option<String>,
    q: Option<String>,
}

async fn inbox(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<InboxQuery>,
) -> Result<Json<Value>, ApiError> {
    // A status, or one of the inbox's own filters; a typo is an error, not an empty list.
    if let Some(status) = q.status.as_deref().filter(|s| !s.is_empty())
        && status != "draft_waiting"
        && status
            .parse::<switchboard_core::ConversationStatus>()
            .is_err()
    {
        return Err(ApiError::BadRequest(format!(
            "unknown status {status:?}: a conversation status, or draft_waiting"
        )));
    }
    let filter = InboxFilter {
        status: q.status,
        channel: q.channel,
        // PostgreSQL cannot compare with a NUL; searching for one finds what the rest finds.
        q: q.q.map(|q| q.replace('\0', "")),
    };
    let list = s
        .services
        .store
        .inbox(caller.user().tenant_id, &filter, 200)
        .await?;
    Ok(Json(json!({ "conversations": list })))
}

async fn one(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.user().tenant_id;
    let c = s.services.store.conversation_view(tenant, id).await?;
    let status: switchboard_core::ConversationStatus =
        c.status.parse().map_err(|_| ApiError::Internal)?;
    let held = c.takeover_until.is_some_and(|t| t > chrono::Utc::now());
    let actions = switchboard_flows::allowed_actions(status, held);
    let pending = s
        .services
        .store
        .suggestions(tenant, Some("pending"), Some(id))
        .await?;
    let mut v = serde_json::to_value(c).map_err(|_| ApiError::Internal)?;
    v["pending_suggestion"] =
        serde_json::to_value(pending.into_iter().next()).map_err(|_| ApiError::Internal)?;
    v["actions"] = json!(actions);
    Ok(Json(v))
}

async fn messages(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(page): Query<switchboard_store::Page>,
) -> Result<Json<Value>, ApiError> {
    let (list, before) = s
        .services
        .store
        .conversation_messages(caller.user().tenant_id, id, page)
        .await?;
    Ok(Json(json!({ "messages": list, "before": before })))
}

#[derive(Deserialize)]
struct Text {
    text: String,
}

/// The operator writes to the customer, which takes the conversation over.
async fn write(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = caller.actor()?;
    let t: Text = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let message_id =
        switchboard_flows::operator_message(&s.services.store, user, id, &t.text, None).await?;
    announce(
        &s,
        user.tenant_id,
        json!({"type": "conversation", "conversation_id": id, "action": "message"}),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "message_id": message_id })),
    ))
}

async fn act(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    action: ConversationAction,
) -> Result<Json<ConversationView>, ApiError> {
    let user = caller.actor()?;
    switchboard_flows::conversation_action(&s.services.store, user, id, action).await?;
    announce(
        &s,
        user.tenant_id,
        json!({"type": "conversation", "conversation_id": id, "action": action.as_str()}),
    )
    .await;
    Ok(Json(
        s.services
            .store
            .conversation_view(user.tenant_id, id)
            .await?,
    ))
}
