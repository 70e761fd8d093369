//! A stand-in for Discord: the REST API under `/api/v10` (messages with `enforce_nonce`,
//! typing, channel reads with `after`, interaction callbacks, scripted refusals with
//! rate-limit headers) and a Gateway websocket that speaks HELLO, IDENTIFY, READY,
//! heartbeats and dispatches, refuses to resume (so a dropped client identifies again),
//! and drops its connections on command. Messages live in the fake: what a customer sends
//! while no session is connected is there for the backfill to read.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as Ws, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const BOT_ID: &str = "1100000000000000001";

/// A scripted answer to the next message post: status, body and headers.
type Scripted = (u16, Value, Vec<(&'static str, String)>);

#[derive(Clone, Debug)]
pub struct Call {
    /// `POST /channels/1/messages`, `GET /gateway/bot`, …
    pub route: String,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    calls: Mutex<Vec<Call>>,
    /// Every message by Discord channel, oldest first.
    messages: Mutex<BTreeMap<String, Vec<Value>>>,
    /// The guild of each guild channel; others are DMs.
    guilds: Mutex<HashMap<String, String>>,
    nonces: Mutex<HashMap<String, Value>>,
    script: Mutex<VecDeque<Scripted>>,
    sessions: Mutex<Vec<mpsc::UnboundedSender<Option<Value>>>>,
    identifies: AtomicUsize,
    /// While set, Gateway connections are refused (a network cut that lasts).
    refusing: std::sync::atomic::AtomicBool,
    seq: AtomicU64,
    next_id: AtomicU64,
    ws_url: Mutex<String>,
}

#[derive(Clone)]
pub struct FakeDiscord {
    /// `http://127.0.0.1:port/api/v10`, the channel's `api_base_url`.
    pub base_url: String,
    inner: Arc<Inner>,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        // Ids grow like snowflakes of today, so a backfill window in days finds them.
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        inner
            .next_id
            .store((now_ms - 1_420_070_400_000) << 22, Ordering::SeqCst);
        let app = Router::new()
            .route("/gateway", get(ws_upgrade))
            .route("/api/v10/gateway", get(gateway))
            .route("/api/v10/gateway/bot", get(gateway))
            .route("/api/v10/channels/{id}", get(channel))
            .route(
                "/api/v10/channels/{id}/messages",
                post(create_message).get(list_messages),
            )
            .route("/api/v10/channels/{id}/messages/{mid}", patch(edit_message))
            .route("/api/v10/channels/{id}/typing", post(typing))
            .route(
                "/api/v10/interactions/{id}/{token}/callback",
                post(interaction_callback),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *inner.ws_url.lock().unwrap() = format!("ws://{addr}/gateway");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{addr}/api/v10"),
            inner,
        }
    }

    pub fn next_id(&self) -> String {
        self.inner
            .next_id
            .fetch_add(1 << 22, Ordering::SeqCst)
            .to_string()
    }

    /// Declares `channel` a text channel (or thread) of `guild`.
    pub fn guild_channel(&self, channel: &str, guild: &str) {
        self.inner
            .guilds
            .lock()
            .unwrap()
            .insert(channel.into(), guild.into());
    }

    /// A customer writes `content` in `channel`: the message is kept (for the backfill)
    /// and dispatched to every connected session. `extra` fields go into the message
    /// (mentions, message_reference, attachments, …). Returns the message id.
    pub fn customer_says(&self, channel: &str, user: &str, content: &str, extra: Value) -> String {
        let id = self.next_id();
        let mut m = message(&id, channel, user_json(user, false), content);
        if let Some(g) = self.inner.guilds.lock().unwrap().get(channel) {
            m["guild_id"] = json!(g);
        }
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                m[k] = v;
            }
        }
        self.keep(channel, m.clone());
        self.dispatch("MESSAGE_CREATE", m);
        id
    }

    /// A customer presses a button `custom_id` under the bot's message `message_id`.
    pub fn press(&self, channel: &str, message_id: &str, custom_id: &str, user: &str) -> String {
        let id = self.next_id();
        let pressed = self
            .message(channel, message_id)
            .unwrap_or_else(|| message(message_id, channel, user_json(BOT_ID, true), ""));
        let mut i = json!({
            "id": id, "application_id": BOT_ID, "type": 3, "token": format!("tok{id}"),
            "version": 1, "channel_id": channel,
            "data": {"custom_id": custom_id, "component_type": 2},
            "message": pressed, "locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {}, "attachment_size_limit": 8388608,
            "app_permissions": "0",
        });
        match self.inner.guilds.lock().unwrap().get(channel) {
            Some(g) => {
                i["guild_id"] = json!(g);
                i["member"] = json!({"user": user_json(user, false), "roles": [],
                    "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                    "flags": 0, "permissions": "0"});
            }
            None => i["user"] = user_json(user, false),
        }
        self.dispatch("INTERACTION_CREATE", i);
        id
    }

    /// A customer edits their message.
    pub fn customer_edits(&self, channel: &str, message_id: &str, content: &str) {
        let mut m = self.message(channel, message_id).unwrap();
        m["content"] = json!(content);
        m["edited_timestamp"] = json!(chrono_now());
        self.dispatch("MESSAGE_UPDATE", m);
    }

    /// Sends a dispatch to every connected session.
    pub fn dispatch(&self, t: &str, d: Value) {
        let s = self.inner.seq.fetch_add(1, Ordering::SeqCst) + 2;
        let payload = json!({"op": 0, "t": t, "s": s, "d": d});
        self.inner
            .sessions
            .lock()
            .unwrap()
            .retain(|tx| tx.send(Some(payload.clone())).is_ok());
    }

    /// Closes every Gateway connection, as a network cut would.
    pub fn drop_connections(&self) {
        for tx in self.inner.sessions.lock().unwrap().drain(..) {
            let _ = tx.send(None);
        }
    }

    /// Refuses new Gateway connections until `accept_connections`.
    pub fn refuse_connections(&self) {
        self.inner.refusing.store(true, Ordering::SeqCst);
    }

    pub fn accept_connections(&self) {
        self.inner.refusing.store(false, Ordering::SeqCst);
    }

    /// Sessions connected and identified now.
    pub fn sessions(&self) -> usize {
        let mut s = self.inner.sessions.lock().unwrap();
        s.retain(|tx| !tx.is_closed());
        s.len()
    }

    /// IDENTIFYs received so far.
    pub fn identifies(&self) -> usize {
        self.inner.identifies.load(Ordering::SeqCst)
    }

    /// Waits until `n` IDENTIFYs have been received in all.
    pub async fn wait_identified(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.identifies() < n || self.sessions() == 0 {
            assert!(
                start.elapsed() < timeout,
                "{} of {n} identifies after {timeout:?}",
                self.identifies()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next message post is answered so (a 429 with its headers, a 403, …).
    pub fn script(&self, status: u16, body: Value, headers: Vec<(&'static str, String)>) {
        self.inner
            .script
            .lock()
            .unwrap()
            .push_back((status, body, headers));
    }

    pub fn calls(&self, route_prefix: &str) -> Vec<Call> {
        self.inner
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.route.starts_with(route_prefix))
            .cloned()
            .collect()
    }

    /// Waits until `n` calls start with `route_prefix`.
    pub async fn wait_calls(&self, route_prefix: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let start = Instant::now();
        loop {
            let got = self.calls(route_prefix);
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < timeout,
                "{} of {n} calls to {route_prefix}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The bot's messages in `channel`, as posted (after nonce dedup), oldest first.
    pub fn bot_messages(&self, channel: &str) -> Vec<Value> {
        self.inner
            .messages
            .lock()
            .unwrap()
            .get(channel)
            .map(|ms| {
                ms.iter()
                    .filter(|m| m["author"]["id"] == BOT_ID)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the bot has `n` messages in `channel`.
    pub async fn wait_bot_messages(
        &self,
        channel: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.bot_messages(channel);
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < timeout,
                "{} of {n} bot messages in {channel}; calls: {:?}",
                got.len(),
                self.calls("POST /channels")
                    .iter()
                    .map(|c| &c.route)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn message(&self, channel: &str, id: &str) -> Option<Value> {
        self.inner
            .messages
            .lock()
            .unwrap()
            .get(channel)?
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
    }

    fn keep(&self, channel: &str, m: Value) {
        keep(&self.inner, channel, m);
    }
}

fn keep(inner: &Inner, channel: &str, m: Value) {
    inner
        .messages
        .lock()
        .unwrap()
        .entry(channel.into())
        .or_default()
        .push(m);
}

fn chrono_now() -> String {
    // RFC 3339 without pulling a time crate in: the fake's clock need not be exact.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.000000+00:00")
}

fn user_json(id: &str, bot: bool) -> Value {
    json!({"id": id, "username": if bot { "shop" } else { "customer" },
           "discriminator": "0", "global_name": if bot { Value::Null } else { json!("Ada Customer") },
           "avatar": null, "bot": bot, "public_flags": 0})
}

/// A message object with every field the documentation marks as always present.
fn message(id: &str, channel: &str, author: Value, content: &str) -> Value {
    json!({"id": id, "channel_id": channel, "author": author, "content": content,
           "timestamp": chrono_now(), "edited_timestamp": null, "tts": false,
           "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
           "embeds": [], "pinned": false, "type": 0, "flags": 0, "components": []})
}

fn log(inner: &Inner, route: String, body: &Bytes) -> Value {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    inner.calls.lock().unwrap().push(Call {
        route,
        body: body.clone(),
        at: Instant::now(),
    });
    body
}

fn answer(status: u16, body: Value, headers: &[(&'static str, String)]) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    for (k, v) in headers {
        r.headers_mut().insert(*k, v.parse().unwrap());
    }
    r
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bot "))
}

async fn gateway(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    log(&inner, "GET /gateway/bot".into(), &Bytes::new());
    if !authorized(&headers) {
        return answer(401, json!({"message": "401: Unauthorized", "code": 0}), &[]);
    }
    let url = inner.ws_url.lock().unwrap().clone();
    answer(
        200,
        json!({"url": url, "shards": 1, "session_start_limit":
               {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}}),
        &[],
    )
}

async fn channel(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    log(&inner, format!("GET /channels/{id}"), &Bytes::new());
    let guild = inner.guilds.lock().unwrap().get(&id).cloned();
    answer(
        200,
        json!({"id": id, "type": if guild.is_some() { 0 } else { 1 }, "guild_id": guild}),
        &[],
    )
}

async fn create_message(
    State(inner): State<Arc<Inner>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = log(&inner, format!("POST /channels/{channel}/messages"), &body);
    if !authorized(&headers) {
        return answer(401, json!({"message": "401: Unauthorized", "code": 0}), &[]);
    }
    if let Some((status, body, headers)) = inner.script.lock().unwrap().pop_front() {
        return answer(status, body, &headers);
    }
    let nonce = req["nonce"].as_str().map(str::to_owned);
    if req["enforce_nonce"] == true
        && let Some(n) = &nonce
        && let Some(earlier) = inner.nonces.lock().unwrap().get(n)
    {
        return answer(200, earlier.clone(), &[]);
    }
    let id = inner
        .next_id
        .fetch_add(1 << 22, Ordering::SeqCst)
        .to_string();
    let mut m = message(
        &id,
        &channel,
        user_json(BOT_ID, true),
        req["content"].as_str().unwrap_or(""),
    );
    m["components"] = req["components"].clone();
    if let Some(r) = req.get("message_reference") {
        m["message_reference"] = r.clone();
        m["type"] = json!(19);
    }
    if let Some(g) = inner.guilds.lock().unwrap().get(&channel) {
        m["guild_id"] = json!(g);
    }
    if let Some(n) = nonce {
        m["nonce"] = json!(n);
        inner.nonces.lock().unwrap().insert(n, m.clone());
    }
    keep(&inner, &channel, m.clone());
    // The bot's own message comes back over the Gateway, as on Discord.
    let s = inner.seq.fetch_add(1, Ordering::SeqCst) + 2;
    let payload = json!({"op": 0, "t": "MESSAGE_CREATE", "s": s, "d": m});
    inner
        .sessions
        .lock()
        .unwrap()
        .retain(|tx| tx.send(Some(payload.clone())).is_ok());
    answer(
        200,
        m,
        &[
            ("x-ratelimit-limit", "5".into()),
            ("x-ratelimit-remaining", "4".into()),
            ("x-ratelimit-reset-after", "1.000".into()),
        ],
    )
}

async fn list_messages(
    State(inner): State<Arc<Inner>>,
    Path(channel): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    log(
        &inner,
        format!("GET /channels/{channel}/messages"),
        &Bytes::new(),
    );
    let after: u64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    let mut page: Vec<Value> = inner
        .messages
        .lock()
        .unwrap()
        .get(&channel)
        .map(|ms| {
            ms.iter()
                .filter(|m| m["id"].as_str().unwrap().parse::<u64>().unwrap() > after)
                .take(limit)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    // REST messages carry no guild_id, and come newest first.
    for m in &mut page {
        m.as_object_mut().unwrap().remove("guild_id");
    }
    page.reverse();
    answer(200, Value::Array(page), &[])
}

async fn edit_message(
    State(inner): State<Arc<Inner>>,
    Path((channel, mid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let req = log(
        &inner,
        format!("PATCH /channels/{channel}/messages/{mid}"),
        &body,
    );
    let mut ms = inner.messages.lock().unwrap();
    let Some(m) = ms
        .get_mut(&channel)
        .and_then(|ms| ms.iter_mut().find(|m| m["id"] == mid.as_str()))
    else {
        return answer(
            404,
            json!({"message": "Unknown Message", "code": 10008}),
            &[],
        );
    };
    if let Some(c) = req.get("content") {
        m["content"] = c.clone();
    }
    if let Some(c) = req.get("components") {
        m["components"] = c.clone();
    }
    answer(200, m.clone(), &[])
}

async fn typing(State(inner): State<Arc<Inner>>, Path(channel): Path<String>) -> Response {
    log(
        &inner,
        format!("POST /channels/{channel}/typing"),
        &Bytes::new(),
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn interaction_callback(
    State(inner): State<Arc<Inner>>,
    Path((id, token)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    log(
        &inner,
        format!("POST /interactions/{id}/{token}/callback"),
        &body,
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn ws_upgrade(State(inner): State<Arc<Inner>>, ws: WebSocketUpgrade) -> Response {
    if inner.refusing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    ws.on_upgrade(move |socket| session(inner, socket))
}

/// One Gateway connection: HELLO, then IDENTIFY → READY, heartbeats acknowledged, RESUME
/// refused (op 9, not resumable), dispatches forwarded until the fake drops it.
async fn session(inner: Arc<Inner>, mut socket: WebSocket) {
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}});
    if socket
        .send(Ws::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Value>>();
    let mut registered = Some(tx);
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                let Ws::Text(text) = msg else { continue };
                let Ok(payload) = serde_json::from_str::<Value>(&text) else { continue };
                let reply = match payload["op"].as_u64() {
                    Some(1) => Some(json!({"op": 11})),
                    Some(2) => {
                        let n = inner.identifies.fetch_add(1, Ordering::SeqCst) + 1;
                        let url = inner.ws_url.lock().unwrap().clone();
                        if let Some(tx) = registered.take() {
                            inner.sessions.lock().unwrap().push(tx);
                        }
                        Some(json!({"op": 0, "t": "READY", "s": 1, "d": {
                            "v": 10, "user": user_json(BOT_ID, true), "guilds": [],
                            "session_id": format!("fake-session-{n}"),
                            "resume_gateway_url": url, "shard": [0, 1],
                            "application": {"id": BOT_ID, "flags": 0}}}))
                    }
                    Some(6) => Some(json!({"op": 9, "d": false})),
                    _ => None,
                };
                if let Some(r) = reply
                    && socket.send(Ws::Text(r.to_string().into())).await.is_err()
                {
                    return;
                }
            }
            out = rx.recv() => match out {
                Some(Some(payload)) => {
                    if socket.send(Ws::Text(payload.to_string().into())).await.is_err() {
                        return;
                    }
                }
                // Dropped on command: the connection ends without a close frame.
                _ => return,
            },
        }
    }
}
