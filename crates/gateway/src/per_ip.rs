//! The per-address limit on public endpoints (design section 7): a visitor, or a script
//! pretending to be many, cannot flood the web chat or guess passwords at line rate.
//! In-process per gateway; with N gateways an address gets N times the rate, which is fine
//! for a flood guard.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde_json::json;

use crate::{AppState, LimitKey};

/// Forgets idle addresses every this many checks, so the table stays small.
const SWEEP_EVERY: u64 = 10_000;

pub struct PerIp {
    limiter: DefaultKeyedRateLimiter<LimitKey>,
    checks: AtomicU64,
}

impl PerIp {
    pub fn new(per_sec: u32, burst: u32) -> Arc<Self> {
        let rate = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(per_sec).max(1)).unwrap_or(NonZeroU32::MIN);
        Arc::new(Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            checks: AtomicU64::new(0),
        })
    }

    fn allow(&self, ip: LimitKey) -> bool {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).is_ok()
    }
}

pub async fn limit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| LimitKey::of(s.proxies.client(c.0.ip(), req.headers())));
    if let Some(ip) = ip
        && !s.per_ip.allow(ip)
    {
        metrics::counter!("sb_rate_limited_total", "scope" => "public_per_ip").increment(1);
        let mut res = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"error": "too many requests from this address; slow down"})),
        )
            .into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return res;
    }
    next.run(req).await
}
