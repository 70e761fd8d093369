//! The admin API: per-tenant settings, behind the admin bearer token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use switchboard_store::SettingsDoc;

use crate::attempts::Attempts;
use crate::{ApiError, AppState, LimitKey};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/admin/tenants/{slug}/settings",
        get(read).put(write),
    )
}

/// The shortest admin token accepted: one any guessing would take years to find.
const MIN_TOKEN_CHARS: usize = 16;

/// Wrong admin tokens one address may send per window before it has to wait.
const ADMIN_TOKENS: Attempts = Attempts {
    scope: "admin-token",
    max: 10,
    window_secs: 900,
};

async fn authorize(s: &AppState, client: LimitKey, headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = s.services.config.admin.api_token.as_bytes();
    if expected.is_empty() {
        return Err(ApiError::Unauthorized(
            "the admin API is disabled: no admin token is configured",
        ));
    }
    if expected.len() < MIN_TOKEN_CHARS {
        return Err(ApiError::Unauthorized(
            "the admin API is disabled: the admin token is shorter than 16 characters",
        ));
    }
    if !ADMIN_TOKENS.allow(s, client).await {
        return Err(ApiError::TooMany(
            "too many wrong admin tokens from this address; wait and retry".into(),
        ));
    }
    let given = crate::bearer_token(headers).unwrap_or("");
    if switchboard_core::constant_time_eq(given.as_bytes(), expected) {
        ADMIN_TOKENS.give_back(s, client).await;
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "a valid admin bearer token is required",
        ))
    }
}

async fn read(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    client: LimitKey,
    headers: HeaderMap,
) -> Result<Json<SettingsDoc>, ApiError> {
    authorize(&s, client, &headers).await?;
    let tenant = s.services.store.tenant_id(&slug).await?;
    Ok(Json(s.services.store.settings_doc(tenant).await?))
}

/// Replaces the sections given; invalid settings are refused with the reason.
async fn write(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    client: LimitKey,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SettingsDoc>, ApiError> {
    authorize(&s, client, &headers).await?;
    let doc: SettingsDoc =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tenant = s.services.store.tenant_id(&slug).await?;
    let cipher =
        switchboard_store::crypto::Cipher::from_base64(&s.services.config.security.master_key).ok();
    s.services
        .store
        .apply_settings(tenant, &doc, "admin-token", cipher.as_ref())
        .await?;
    Ok(Json(s.services.store.settings_doc(tenant).await?))
}
