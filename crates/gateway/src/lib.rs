//! The HTTP surface: the web-chat widget and its API, platform webhooks, the operator API
//! and console, the admin API, health, readiness and metrics.
//! Ingress answers 2xx only after the broker has confirmed a durable publish.

mod admin;
mod api;
mod attempts;
mod channels;
mod client_ip;
mod console;
mod error;
mod ingress;
mod live;
mod ops;
mod per_ip;
mod tenants;
mod webchat;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::time::Duration;
use switchboard_runtime::Services;
use switchboard_store::Dedup;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use axum::BoxError;
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use client_ip::LimitKey;
pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub dedup: Dedup,
    pub live: live::LiveHub,
    pub tenants: Arc<tenants::TenantCache>,
    pub channels: Arc<channels::ChannelCache>,
    pub per_ip: Arc<per_ip::PerIp>,
    pub proxies: Arc<client_ip::TrustedProxies>,
}

pub fn router(state: AppState) -> Router {
    let server = &state.services.config.server;
    let limit = server.body_limit_bytes;
    let timeout = Duration::from_secs(server.request_timeout_secs.max(1));
    let concurrency = server.max_concurrent_requests.max(1);
    Router::new()
        .merge(ops::routes())
        .merge(webchat::routes(state.clone()))
        .merge(admin::routes())
        .merge(api::routes(state.clone()))
        .merge(console::routes())
        .merge(webhooks::routes())
        .layer(DefaultBodyLimit::max(limit))
        // A stuck dependency cannot hold a request (and its platform) for ever: 503, retry.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        // Past the cap, requests are shed with 503 rather than queued without bound.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    (StatusCode::SERVICE_UNAVAILABLE, "overloaded; retry")
                }))
                .layer(LoadShedLayer::new())
                // One semaphore for the whole router: `Router::layer` copies a layer onto
                // every route, and a plain concurrency limit would count per route.
                .layer(GlobalConcurrencyLimitLayer::new(concurrency)),
        )
        .layer(TraceLayer::new_for_http())
        // A panic in a handler becomes a 500 for that request, not a dead process.
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

/// The token of an `Authorization: Bearer …` header; the scheme's name is case-insensitive
/// (RFC 9110), so `bearer …` is the same.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Serves the gateway on `listener` until `shutdown` fires.
pub async fn serve(
    services: Services,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Metrics on their own address when one is configured (kept off the public port),
    // else at /metrics beside the API.
    if services.config.metrics.listen.is_empty() {
        ops::install_metrics();
    } else {
        switchboard_runtime::serve_metrics(&services.config.metrics)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    let live = live::LiveHub::start(
        services.config.redis.url.clone(),
        shutdown.clone(),
        services.config.server.max_streams_per_ip,
        services.config.server.max_streams,
    );
    tokio::spawn(fleet_metrics(services.clone(), shutdown.clone()));
    let proxies = client_ip::TrustedProxies::parse(&services.config.server.trusted_proxies)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let state = AppState {
        proxies: Arc::new(proxies),
        dedup: Dedup::new(services.redis.clone()),
        tenants: Arc::new(tenants::TenantCache::new(services.store.clone())),
        channels: Arc::new(channels::ChannelCache::new(
            services.store.clone(),
            switchboard_store::crypto::Cipher::from_base64(&services.config.security.master_key)
                .ok(),
        )),
        per_ip: per_ip::PerIp::new(
            services.config.server.public_rate_per_ip,
            services.config.server.public_burst_per_ip,
        ),
        services,
        live,
    };
    // The peer address keys the per-address limit on failed sign-ins.
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// How often the gateway reads the fleet for its gauges (processes, queue, due work).
const FLEET_METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

async fn fleet_metrics(s: Services, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        switchboard_runtime::fleet::record_metrics(&switchboard_runtime::fleet::report(&s).await);
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(FLEET_METRICS_EVERY) => {}
        }
    }
}
