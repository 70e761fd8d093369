//! A shop's operator accounts, for its owners and admins: list, add, change a role,
//! disable and enable, remove, set a new password. The rules (who may change whom, the last
//! owner) are the store's, so the command line keeps them too.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_store::{Account, AccountActor, AccountChange, Role, User};
use uuid::Uuid;

use super::Caller;
use super::auth::role;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(add))
        .route("/api/v1/users/{id}", patch(change).delete(remove))
        .route("/api/v1/users/{id}/password", post(password))
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn list(State(s): State<AppState>, caller: Caller) -> Result<Json<Vec<Account>>, ApiError> {
    let admin = caller.admin()?;
    Ok(Json(s.services.store.accounts(admin.tenant_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    role: String,
    password: String,
}

async fn add(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let admin = caller.admin()?;
    let u: NewUser = parse(&body)?;
    let role = role(&u.role)?;
    if matches!(role, Role::Owner | Role::Admin) && admin.role != Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner can add an admin or an owner",
        ));
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

/// `{"role": "operator"}` or `{"disabled": true}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    role: Option<String>,
    disabled: Option<bool>,
}

async fn change(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Json<Account>, ApiError> {
    let admin = caller.admin()?;
    let c: Change = parse(&body)?;
    // Each is its own audited change with its own rules; two at once could apply half.
    let change = match (c.role, c.disabled) {
        (Some(r), None) => AccountChange::Role(role(&r)?),
        (None, Some(true)) => AccountChange::Disable,
        (None, Some(false)) => AccountChange::Enable,
        _ => {
            return Err(ApiError::BadRequest(
                "give either a \"role\" or \"disabled\" to change, one at a time".into(),
            ));
        }
    };
    Ok(Json(apply(&s, admin, id, change).await?))
}

async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let admin = caller.admin()?;
    apply(&s, admin, id, AccountChange::Remove).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

/// An admin sets a new password for an account (a forgotten one): its lock and its
/// sessions end.
async fn password(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Json<Account>, ApiError> {
    let admin = caller.admin()?;
    let p: NewPassword = parse(&body)?;
    Ok(Json(
        apply(&s, admin, id, AccountChange::Password(p.password)).await?,
    ))
}

async fn apply(
    s: &AppState,
    admin: &User,
    id: Uuid,
    change: AccountChange,
) -> Result<Account, ApiError> {
    Ok(s.services
        .store
        .change_account(admin.tenant_id, id, change, AccountActor::User(admin))
        .await?)
}
