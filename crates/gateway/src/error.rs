use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every error the API answers with: a status and a reason in `{"error": ...}`.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(&'static str),
    Conflict(String),
    /// A dependency (database, broker) is down: the client should retry.
    Unavailable(String),
    Unauthorized(&'static str),
    /// Signed in, but not allowed to do this.
    Forbidden(&'static str),
    TooMany(String),
    /// The body is not in a type this endpoint reads.
    UnsupportedMediaType(&'static str),
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, reason) = match self {
            ApiError::BadRequest(r) => (StatusCode::BAD_REQUEST, r),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
            ApiError::Conflict(r) => (StatusCode::CONFLICT, r),
            ApiError::Unavailable(r) => (StatusCode::SERVICE_UNAVAILABLE, r),
            ApiError::Unauthorized(r) => (StatusCode::UNAUTHORIZED, r.to_owned()),
            ApiError::Forbidden(r) => (StatusCode::FORBIDDEN, r.to_owned()),
            ApiError::TooMany(r) => (StatusCode::TOO_MANY_REQUESTS, r),
            ApiError::UnsupportedMediaType(r) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, r.to_owned()),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_owned(),
            ),
        };
        let mut res = (status, Json(json!({ "error": reason }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::CONFLICT {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        res
    }
}

impl From<switchboard_store::StoreError> for ApiError {
    fn from(e: switchboard_store::StoreError) -> Self {
        use switchboard_store::StoreError;
        match e {
            StoreError::Invalid(reason) => ApiError::BadRequest(reason),
            StoreError::NotFound { what } => ApiError::NotFound(what),
            StoreError::Conflict(reason) => ApiError::Conflict(reason),
            StoreError::Forbidden(reason) => ApiError::Forbidden(reason),
            e if e.is_unstorable_text() => {
                ApiError::BadRequest("text must not contain NUL characters".into())
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %switchboard_core::error_chain(&e), "store unavailable");
                ApiError::Unavailable("the database is unavailable".into())
            }
            e => {
                tracing::error!(error = %switchboard_core::error_chain(&e), "store error");
                ApiError::Internal
            }
        }
    }
}
