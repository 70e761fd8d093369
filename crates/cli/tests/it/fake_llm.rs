//! A stand-in for a hosted OpenAI-compatible API: it answers scripted responses in the
//! chat-completions wire format and records what it was sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Scripted {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    pub retry_after: Option<u64>,
}

impl Scripted {
    /// A 200 whose message content is `content` (normally JSON text).
    pub fn content(content: &str) -> Self {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        });
        Self {
            status: 200,
            body: body.to_string(),
            delay: Duration::ZERO,
            retry_after: None,
        }
    }

    pub fn json(value: Value) -> Self {
        Self::content(&value.to_string())
    }

    pub fn error(status: u16) -> Self {
        Self {
            status,
            body: json!({"error": {"message": "scripted failure", "type": "server_error"}})
                .to_string(),
            delay: Duration::ZERO,
            retry_after: None,
        }
    }
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Scripted>>>,
    requests: Arc<Mutex<Vec<Value>>>,
    auth: Arc<Mutex<Vec<Option<String>>>>,
}

pub struct FakeLlm {
    pub base_url: String,
    fake: Fake,
}

impl FakeLlm {
    /// Answers with `script` in order; the last answer repeats once the script runs out.
    pub async fn start(script: Vec<Scripted>) -> Self {
        let fake = Fake {
            script: Arc::new(Mutex::new(script.into())),
            ..Default::default()
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, fake }
    }

    pub fn requests(&self) -> Vec<Value> {
        self.fake.requests.lock().unwrap().clone()
    }

    /// Waits until the first call has come, or fails after fifteen seconds.
    pub async fn wait_called(&self) {
        let start = std::time::Instant::now();
        while self.requests().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the draft call never came"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The Authorization header of each request.
    pub fn auth(&self) -> Vec<Option<String>> {
        self.fake.auth.lock().unwrap().clone()
    }
}

async fn answer(
    State(f): State<Fake>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    f.requests.lock().unwrap().push(body);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    f.auth.lock().unwrap().push(auth);
    let next = {
        let mut s = f.script.lock().unwrap();
        if s.len() > 1 {
            s.pop_front()
        } else {
            s.front().cloned()
        }
    };
    let Some(next) = next else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    tokio::time::sleep(next.delay).await;
    let mut res = (StatusCode::from_u16(next.status).unwrap(), next.body).into_response();
    res.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if let Some(s) = next.retry_after {
        res.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    res
}
