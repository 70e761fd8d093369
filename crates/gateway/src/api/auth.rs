//! Signing in and out, and who is calling. A bearer token or the console's HttpOnly session
//! cookie identifies the caller; a cookie alone never authorises a change without the
//! session's CSRF token in `X-CSRF-Token`, so another site cannot act through the browser.

use axum::extract::{FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_store::{Login, Role, Session, User};

use crate::attempts::Attempts;
use crate::{ApiError, AppState, LimitKey};

const SESSION_COOKIE: &str = "sb_session";
const CSRF_COOKIE: &str = "sb_csrf";
/// Sign-ins one address may get wrong per window before it has to wait.
const SIGN_INS: Attempts = Attempts {
    scope: "login",
    max: 30,
    window_secs: 900,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me))
}

/// The signed-in user behind a request.
pub struct Caller {
    pub session: Session,
}

impl Caller {
    pub fn user(&self) -> &User {
        &self.session.user
    }

    /// Viewers read; every action needs more.
    pub fn actor(&self) -> Result<&User, ApiError> {
        if self.session.user.role.may_act() {
            Ok(&self.session.user)
        } else {
            Err(ApiError::Forbidden("a viewer cannot do this"))
        }
    }

    pub fn admin(&self) -> Result<&User, ApiError> {
        if self.session.user.role.may_administer() {
            Ok(&self.session.user)
        } else {
            Err(ApiError::Forbidden("only an owner or admin can do this"))
        }
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let bearer = crate::bearer_token(&parts.headers);
        let (token, via_cookie) = match bearer {
            Some(t) => (t, false),
            None => (
                cookie(&parts.headers, SESSION_COOKIE).ok_or(ApiError::Unauthorized(
                    "sign in first: no bearer token or session cookie",
                ))?,
                true,
            ),
        };
        let session = s
            .services
            .store
            .session(token)
            .await?
            .ok_or(ApiError::Unauthorized(
                "the session is unknown, expired or signed out",
            ))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via_cookie && !safe {
            let given = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !switchboard_core::constant_time_eq(given.as_bytes(), session.csrf_token.as_bytes())
            {
                return Err(ApiError::Forbidden(
                    "missing or wrong X-CSRF-Token for a cookie session",
                ));
            }
        }
        Ok(Caller { session })
    }
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
    /// The shop's slug; needed only when the address has accounts in several shops that
    /// this password opens.
    #[serde(default)]
    tenant: Option<String>,
}

/// A session cookie; `Secure` whenever people reach the gateway over https, so the
/// browser never sends it in the clear.
fn set_cookie(
    s: &AppState,
    name: &str,
    value: &str,
    http_only: bool,
    max_age: i64,
) -> Result<HeaderValue, ApiError> {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    let secure = if s.services.config.server.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age}{http_only}{secure}"
    ))
    .map_err(|_| ApiError::Internal)
}

async fn login(
    State(s): State<AppState>,
    client: LimitKey,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let c: Credentials =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !SIGN_INS.allow(&s, client).await {
        return Err(ApiError::TooMany(
            "too many failed sign-ins from this address; wait and retry".into(),
        ));
    }
    let tenant = match c.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // An unknown shop is refused like a wrong password, after the same work.
        Some(slug) => match s.services.store.tenant_id(slug).await {
            Ok(id) => Some(id),
            Err(switchboard_store::StoreError::NotFound { .. }) => Some(uuid::Uuid::nil()),
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    match s
        .services
        .store
        .login(&c.email, &c.password, tenant)
        .await?
    {
        Login::Ok(new) => {
            SIGN_INS.give_back(&s, client).await;
            let user = &new.session.user;
            s.services
                .store
                .audit(user, "login", "user", Some(user.id), json!({}))
                .await?;
            let max_age = 12 * 3600;
            let mut res = Json(json!({
                "token": new.token,
                "csrf_token": new.session.csrf_token,
                "user": user,
            }))
            .into_response();
            let h = res.headers_mut();
            h.append(
                SET_COOKIE,
                set_cookie(&s, SESSION_COOKIE, &new.token, true, max_age)?,
            );
            h.append(
                SET_COOKIE,
                set_cookie(&s, CSRF_COOKIE, &new.session.csrf_token, false, max_age)?,
            );
            Ok(res)
        }
        Login::ChooseTenant => {
            // The right password: not a failed attempt of this address.
            SIGN_INS.give_back(&s, client).await;
            Err(ApiError::Conflict(
            "this address has accounts in several shops: sign in with the shop's slug as `tenant`"
                .into(),
            ))
        }
        Login::Refused => Err(ApiError::Unauthorized(
            "wrong email or password (after repeated failures an account is locked for a while)",
        )),
    }
}

async fn logout(State(s): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    s.services.store.logout(caller.session.id).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.append(SET_COOKIE, set_cookie(&s, SESSION_COOKIE, "", true, 0)?);
    h.append(SET_COOKIE, set_cookie(&s, CSRF_COOKIE, "", false, 0)?);
    Ok(res)
}

async fn me(caller: Caller) -> Json<User> {
    Json(caller.session.user)
}

/// Parses a role for the user endpoints.
pub fn role(s: &str) -> Result<Role, ApiError> {
    s.parse()
        .map_err(|e: switchboard_store::StoreError| ApiError::BadRequest(e.to_string()))
}
