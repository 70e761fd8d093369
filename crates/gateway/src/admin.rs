//! The admin API, behind the admin bearer token: the platform's tenants and each one's
//! settings, and the fleet.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_store::{NewTenant, SettingsDoc, TenantRecord, Write};

use crate::attempts::Attempts;
use crate::{ApiError, AppState, LimitKey};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/tenants", get(list).post(add))
        .route("/api/v1/admin/tenants/{slug}", get(show))
        .route("/api/v1/admin/tenants/{slug}/disable", post(disable))
        .route("/api/v1/admin/tenants/{slug}/enable", post(enable))
        .route(
            "/api/v1/admin/tenants/{slug}/settings",
            get(read).put(write).patch(write),
        )
        .route("/api/v1/admin/fleet", get(fleet))
}

/// The fleet: processes, the work queue, due drafts and sends, and hints. A part that
/// cannot be read is named in `unavailable`; 503 only when none can.
async fn fleet(
    State(s): State<AppState>,
    client: LimitKey,
    headers: HeaderMap,
) -> Result<Json<switchboard_runtime::fleet::FleetReport>, ApiError> {
    authorize(&s, client, &headers).await?;
    let report = switchboard_runtime::fleet::report(&s.services).await;
    if report.unavailable.len() == 3 {
        return Err(ApiError::Unavailable(
            "Redis, the database and the broker are all unavailable".into(),
        ));
    }
    Ok(Json(report))
}

/// The audit log's actor for changes made with the admin token.
const ACTOR: &str = "admin-token";

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddTenant {
    slug: String,
    name: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default = "default_currency")]
    currency: String,
}

fn default_language() -> String {
    "en".into()
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_currency() -> String {
    "EUR".into()
}

async fn list(
    State(s): State<AppState>,
    client: LimitKey,
    headers: HeaderMap,
) -> Result<Json<Vec<TenantRecord>>, ApiError> {
    authorize(&s, client, &headers).await?;
    Ok(Json(s.services.store.tenants().await?))
}

/// 201 with the tenant; 409 when the slug is taken, 400 with the reason for a bad field.
async fn add(
    State(s): State<AppState>,
    client: LimitKey,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<TenantRecord>), ApiError> {
    authorize(&s, client, &headers).await?;
    let t: AddTenant =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let new = NewTenant {
        slug: t.slug,
        name: t.name,
        language: t.language,
        timezone: t.timezone,
        currency: t.currency,
    };
    let created = s.services.store.add_tenant(&new, ACTOR).await?;
    Ok((axum::http::StatusCode::CREATED, Json(created)))
}

async fn show(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    client: LimitKey,
    headers: HeaderMap,
) -> Result<Json<TenantRecord>, ApiError> {
    authorize(&s, client, &headers).await?;
    Ok(Json(s.services.store.tenant(&slug).await?))
}

/// Takes effect at once on this gateway, and within the caches' 30 s on the others.
async fn disable(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    client: LimitKey,
    headers: HeaderMap,
) -> Result<Json<TenantRecord>, ApiError> {
    authorize(&s, client, &headers).await?;
    let t = s
        .services
        .store
        .set_tenant_enabled(&slug, false, ACTOR)
        .await?;
    s.tenants.forget().await;
    s.channels.forget().await;
    Ok(Json(t))
}

async fn enable(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    client: LimitKey,
    headers: HeaderMap,
) -> Result<Json<TenantRecord>, ApiError> {
    authorize(&s, client, &headers).await?;
    let t = s
        .services
        .store
        .set_tenant_enabled(&slug, true, ACTOR)
        .await?;
    s.tenants.forget().await;
    s.channels.forget().await;
    Ok(Json(t))
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

/// `?replace=true` on a settings write: the sections given replace the stored ones whole,
/// instead of being merged into them.
#[derive(Debug, Default, Deserialize)]
pub struct WriteQuery {
    #[serde(default)]
    replace: bool,
}

impl WriteQuery {
    pub fn write(&self) -> Write {
        if self.replace {
            Write::Replace
        } else {
            Write::Merge
        }
    }
}

/// A merge patch over the stored settings (PUT and PATCH alike), or with `?replace=true`
/// a replacement of the sections given; invalid settings are refused with the reason.
async fn write(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    Query(how): Query<WriteQuery>,
    client: LimitKey,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SettingsDoc>, ApiError> {
    authorize(&s, client, &headers).await?;
    let written: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tenant = s.services.store.tenant_id(&slug).await?;
    let cipher =
        switchboard_store::crypto::Cipher::from_base64(&s.services.config.security.master_key).ok();
    Ok(Json(
        s.services
            .store
            .apply_settings(tenant, &written, how.write(), ACTOR, cipher.as_ref())
            .await?,
    ))
}
