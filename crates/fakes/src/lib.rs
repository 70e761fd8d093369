//! Stand-ins for the Telegram Bot API, the WhatsApp Graph API and Discord (`discord`): they answer in the
//! documented wire format, can be scripted to fail or to hold their answers, and record
//! what they receive. The integration tests and the fault suite (`bench/faults`) use them
//! behind each channel's `api_base_url`; nothing of the product does.
// Test support: a fake that breaks should stop its test or bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod discord;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Request {
    /// The Bot API method in lower case (`sendmessage`) or the Graph API path (`12345/messages`).
    pub method: String,
    pub body: Value,
    /// The body as sent; teloxide sends some methods (setWebhook) as multipart forms.
    pub raw: String,
    pub at: Instant,
}

/// Answers (status, body) still to give, in order.
type Script = VecDeque<(u16, Value)>;

#[derive(Clone, Default)]
struct Fake {
    requests: Arc<Mutex<Vec<Request>>>,
    /// Scripted answers by method, used before the defaults.
    script: Arc<Mutex<HashMap<String, Script>>>,
    /// Methods whose calls are recorded but not answered until released.
    held: Arc<Mutex<HashSet<String>>>,
    next_id: Arc<Mutex<i64>>,
}

pub struct FakePlatform {
    pub base_url: String,
    fake: Fake,
}

impl FakePlatform {
    async fn start(app: axum::Router<Fake>, fake: Fake, prefix: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}{prefix}", listener.local_addr().unwrap());
        let app = app.with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, fake }
    }

    /// The Bot API at `{base_url}/bot{token}/{method}`.
    pub async fn telegram() -> Self {
        let app = axum::Router::new().route("/{bot}/{method}", post(telegram));
        Self::start(app, Fake::default(), "/").await
    }

    /// The Graph API at `{base_url}/{phone_number_id}/messages`.
    pub async fn whatsapp() -> Self {
        let app = axum::Router::new().route("/v21.0/{phone}/messages", post(whatsapp));
        Self::start(app, Fake::default(), "/v21.0").await
    }

    /// The next answer to `method` is this one; the defaults resume after the script.
    pub fn script(&self, method: &str, status: u16, body: Value) {
        self.fake
            .script
            .lock()
            .unwrap()
            .entry(method.into())
            .or_default()
            .push_back((status, body));
    }

    /// Calls to `method` are recorded at once but answered only after `release`: a send
    /// that is under way for as long as the test wants.
    pub fn hold(&self, method: &str) {
        self.fake.held.lock().unwrap().insert(method.into());
    }

    pub fn release(&self, method: &str) {
        self.fake.held.lock().unwrap().remove(method);
    }

    pub fn requests(&self, method: &str) -> Vec<Request> {
        self.fake
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Request> {
        self.fake.requests.lock().unwrap().clone()
    }

    /// Waits until `method` has been called `n` times.
    pub async fn wait_for(&self, method: &str, n: usize, timeout: Duration) -> Vec<Request> {
        let start = Instant::now();
        loop {
            let got = self.requests(method);
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < timeout,
                "{method} called {} of {n} times; saw {:?}",
                got.len(),
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Records the call, waits while its method is held, then takes its scripted answer.
async fn record(f: &Fake, method: &str, body: &Bytes) -> (Option<(u16, Value)>, Value) {
    let raw = String::from_utf8_lossy(body).into_owned();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    f.requests.lock().unwrap().push(Request {
        method: method.into(),
        body: body.clone(),
        raw,
        at: Instant::now(),
    });
    while f.held.lock().unwrap().contains(method) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let scripted = f
        .script
        .lock()
        .unwrap()
        .get_mut(method)
        .and_then(VecDeque::pop_front);
    (scripted, body)
}

fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// Bot API method names are case-insensitive; teloxide sends `SendMessage`. Recorded and
/// scripted in lower case.
async fn telegram(
    State(f): State<Fake>,
    Path((_bot, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let method = method.to_lowercase();
    let (scripted, req) = record(&f, &method, &body).await;
    if let Some((status, body)) = scripted {
        return reply(status, body);
    }
    let result = match method.as_str() {
        "sendmessage" => {
            let id = {
                let mut n = f.next_id.lock().unwrap();
                *n += 1;
                *n
            };
            json!({"message_id": 1000 + id, "date": 1_700_000_000, "text": req["text"],
                   "chat": {"id": req["chat_id"], "type": "private", "first_name": "Customer"},
                   "from": {"id": 1, "is_bot": true, "first_name": "Shop", "username": "shop_bot"}})
        }
        "editmessagetext" => {
            json!({"message_id": req["message_id"], "date": 1_700_000_000, "text": req["text"],
                   "chat": {"id": req["chat_id"], "type": "group", "title": "Operators"},
                   "from": {"id": 1, "is_bot": true, "first_name": "Shop", "username": "shop_bot"}})
        }
        "getupdates" => json!([]),
        _ => json!(true),
    };
    reply(200, json!({"ok": true, "result": result}))
}

async fn whatsapp(State(f): State<Fake>, Path(phone): Path<String>, body: Bytes) -> Response {
    let method = format!("{phone}/messages");
    let (scripted, req) = record(&f, &method, &body).await;
    if let Some((status, body)) = scripted {
        return reply(status, body);
    }
    if req["status"] == "read" {
        return reply(200, json!({"success": true}));
    }
    let id = {
        let mut n = f.next_id.lock().unwrap();
        *n += 1;
        *n
    };
    reply(
        200,
        json!({"messaging_product": "whatsapp",
                      "contacts": [{"input": req["to"], "wa_id": req["to"]}],
                      "messages": [{"id": format!("wamid.out.{id}")}]}),
    )
}

/// `X-Hub-Signature-256` for a WhatsApp webhook body, as Meta signs it with the app secret.
pub fn whatsapp_signature(app_secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}
