//! `GET /api/v1/events`: the tenant's live operator events as Server-Sent Events. Each
//! stream keeps only its own tenant's topic, so nothing of another tenant passes.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;

use tokio_stream::StreamExt;

use super::{Caller, operators_topic};
use crate::{ApiError, AppState, LimitKey};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/events", get(events))
}

async fn events(
    State(s): State<AppState>,
    client: LimitKey,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let topic = operators_topic(caller.user().tenant_id);
    let stream = s.live.subscribe(client)?.filter_map(move |ev| match ev {
        Ok(ev) if ev.0 == topic => Some(Ok(Event::default().data(ev.1.clone()))),
        // A slow console missed events; it reloads on the next one.
        _ => None,
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
