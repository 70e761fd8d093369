use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use switchboard_channels::InboundError;
use switchboard_channels::webchat::{inbound, topic};
use switchboard_core::ChannelKind;
use tokio_stream::StreamExt;

use crate::{ApiError, AppState, LimitKey};

const WIDGET: &str = include_str!("widget.html");

/// Posting, reading the transcript and streaming are limited per address (each costs the
/// database or an open connection); the widget page is not.
pub fn routes(state: AppState) -> Router<AppState> {
    let limited = Router::new()
        .route(
            "/api/webchat/{slug}/messages",
            post(post_message).get(transcript),
        )
        .route("/api/webchat/{slug}/events", get(events))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::per_ip::limit,
        ));
    Router::new()
        .route("/chat/{slug}", get(widget))
        .merge(limited)
}

/// The widget's page, with the framing policy: only the gateway itself and the origins
/// the shop allowed (`webchat.allowed_origins`) may show it in a frame.
async fn widget(
    State(s): State<AppState>,
    Path(slug): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let tc = s.tenants.resolve(&slug, ChannelKind::Webchat).await?;
    let page = s.services.store.widget_page(tc.tenant_id).await?;
    let origins = &page.allowed_origins;
    // Validated when saved: origins only, no spaces, quotes or semicolons.
    let policy = std::iter::once("'self'")
        .chain(origins.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let csp = HeaderValue::from_str(&format!("frame-ancestors {policy}"))
        .map_err(|_| ApiError::Internal)?;
    let mut headers = HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_SECURITY_POLICY, csp);
    if origins.is_empty() {
        // For browsers that predate frame-ancestors.
        headers.insert(
            axum::http::header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    }
    // The slug passed resolve(), so it is [a-z0-9-] only and safe to embed; the shop's
    // name, language and welcome message are the admin's text, escaped.
    let html = WIDGET
        .replace("{{TENANT_SLUG}}", &slug)
        .replace(
            "{{LANGUAGE}}",
            &html_escape::encode_double_quoted_attribute(&page.language),
        )
        .replace("{{SHOP_NAME}}", &html_escape::encode_text(&page.name))
        .replace(
            "{{WELCOME}}",
            &html_escape::encode_text(page.welcome.as_deref().unwrap_or_default()),
        );
    Ok((headers, Html(html)))
}

/// Accepts a visitor's message. 202 means the broker confirmed a durable copy; anything
/// that stops that from happening is a 503 and leaves nothing behind.
async fn post_message(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // JSON only: a form post from another site (no CORS preflight) is not a visitor's.
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType(
            "send the message as application/json",
        ));
    }
    let tc = s.tenants.resolve(&slug, ChannelKind::Webchat).await?;
    let mut ev = inbound::normalize(tc.tenant_id, tc.channel_id, &body, chrono::Utc::now())
        .map_err(|e| {
            metrics::counter!("sb_inbound_total", "channel" => "webchat", "result" => "rejected")
                .increment(1);
            match e {
                InboundError::Malformed(_) | InboundError::Invalid { .. } => {
                    ApiError::BadRequest(e.to_string())
                }
            }
        })?;
    let status = match crate::ingress::accept(&s, std::slice::from_mut(&mut ev)).await?[..] {
        [crate::ingress::Accepted::Duplicate] => "duplicate",
        _ => "queued",
    };
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": status }))))
}

#[derive(Deserialize)]
struct Visitor {
    visitor_id: String,
}

/// The transcript's query: the visitor, and which page.
#[derive(Deserialize)]
struct TranscriptQuery {
    visitor_id: String,
    before: Option<uuid::Uuid>,
    limit: Option<u32>,
}

async fn transcript(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    Query(v): Query<TranscriptQuery>,
) -> Result<impl IntoResponse, ApiError> {
    inbound::check_visitor_id(&v.visitor_id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tc = s.tenants.resolve(&slug, ChannelKind::Webchat).await?;
    let page = switchboard_store::Page {
        before: v.before,
        limit: v.limit,
    };
    let (entries, before) = s
        .services
        .store
        .transcript(tc.tenant_id, tc.channel_id, &v.visitor_id, page)
        .await?;
    Ok(Json(json!({ "messages": entries, "before": before })))
}

async fn events(
    State(s): State<AppState>,
    client: LimitKey,
    Path(slug): Path<String>,
    Query(v): Query<Visitor>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    inbound::check_visitor_id(&v.visitor_id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tc = s.tenants.resolve(&slug, ChannelKind::Webchat).await?;
    let wanted = topic(tc.channel_id, &v.visitor_id);
    let stream = s
        .live
        .subscribe(client)?
        .filter_map(move |item| match item {
            Ok(ev) if ev.0 == wanted => Some(Ok(Event::default().data(ev.1.clone()))),
            // A lagging client missed events: tell it to refetch the transcript.
            Err(_) => Some(Ok(Event::default().data(r#"{"type":"resync"}"#))),
            _ => None,
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
