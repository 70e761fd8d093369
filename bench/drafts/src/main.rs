//! `bash bench/drafts/run`: how many drafts a second one AI worker process makes when every
//! LLM call takes a fixed time (1 s by default; a draft is two calls, the draft and its
//! self-check) and the worker has a 20-connection database pool, beside the ceiling that
//! such an LLM allows at the worker's draft concurrency, measured in the same run with no
//! database at all.
//!
//! The conversations are stored first and then all fall due at once, so the figure is the
//! worker's sustained drafting rate, not the ingest's. Every conversation must end with
//! exactly one draft, or the bench fails.

use std::process::{Child, Command};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, stream};
use serde_json::json;
use sqlx::PgPool;
use switchboard_core::InboundBody;
use switchboard_store::Store;

const ADMIN_DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

struct Args {
    conversations: usize,
    llm_ms: u64,
    pool: u32,
    concurrency: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        conversations: 3000,
        llm_ms: 1000,
        pool: 20,
        concurrency: 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--conversations" => a.conversations = value.parse()?,
            "--llm-ms" => a.llm_ms = value.parse()?,
            "--pool" => a.pool = value.parse()?,
            "--concurrency" => a.concurrency = value.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    Ok(a)
}

/// One answer that is both a valid draft and a valid self-check, so the stand-in need not
/// tell the two calls apart. Grounded in the demo shop's shipping page (`source` is its
/// reference, `reply` its text), so the engine lets it go out on its own, as a good draft
/// does in production.
fn completion(source: &str, reply: &str) -> String {
    let content = json!({
        "reply": reply, "intent": "shipping", "intent_score": 0.9, "questions_to_ask": [],
        "used_sources": [source], "missing_fields": [], "need_handoff": false,
        "self_check_score": 0.95, "reasons": ["grounded"]
    });
    json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content.to_string()}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    })
    .to_string()
}

/// An OpenAI-compatible stand-in that answers every call after `delay` with what `answer`
/// holds then.
async fn fake_llm(delay: Duration, answer: Arc<RwLock<String>>) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let answer = answer.clone();
            async move {
                tokio::time::sleep(delay).await;
                let body = answer.read().map(|b| b.clone()).unwrap_or_default();
                ([("content-type", "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// The LLM's own ceiling at this concurrency: `n` drafts of two sequential calls each,
/// `concurrency` at a time, and nothing else.
async fn ceiling(base: &str, n: usize, concurrency: usize) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let started = Instant::now();
    let results: Vec<reqwest::Result<()>> = stream::iter(0..n)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                for _ in 0..2 {
                    http.post(&url)
                        .json(&json!({"model": "bench", "messages": []}))
                        .send()
                        .await?
                        .bytes()
                        .await?;
                }
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect::<reqwest::Result<Vec<_>>>()?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// `n` web-chat customers, each with one stored question, all due for a draft at once.
async fn customers(url: &str, n: usize) -> anyhow::Result<PgPool> {
    Store::migrate(url).await?;
    let store = Store::connect_lazy(url, 8)?;
    let tenant = store.seed_demo().await?;
    let pool = store.pool().clone();
    let channel: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM channels WHERE tenant_id = $1 AND kind = 'webchat'")
            .bind(tenant)
            .fetch_one(&pool)
            .await?;
    // No quiet window: every conversation is due the moment the worker starts.
    sqlx::query("UPDATE decision_settings SET debounce_quiet_ms = 0, debounce_cap_ms = 0")
        .execute(&pool)
        .await?;
    let stored: Vec<anyhow::Result<()>> = stream::iter(0..n)
        .map(|i| {
            let store = store.clone();
            async move {
                let body = json!({"visitor_id": format!("bench-visitor-{i:06}"), "client_message_id": "c1",
                                  "text": "Do you ship to Berlin?"});
                let ev = switchboard_channels::webchat::inbound::normalize(
                    tenant,
                    channel,
                    body.to_string().as_bytes(),
                    chrono::Utc::now(),
                )?;
                let InboundBody::Message(msg) = &ev.body else {
                    bail!("the web chat made no message");
                };
                store.store_inbound(&ev, msg, None).await?;
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    stored.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    sqlx::query(
        "INSERT INTO pending_drafts (conversation_id, tenant_id, due_at)
         SELECT id, tenant_id, now() FROM conversations",
    )
    .execute(&pool)
    .await?;
    Ok(pool)
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(db: &str, llm: &str, a: &Args) -> anyhow::Result<Worker> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the bench binary has a directory")?;
    let child = Command::new(dir.join("switchboard"))
        .arg("ai-worker")
        .env("SWITCHBOARD__DATABASE__URL", db)
        .env("SWITCHBOARD__DATABASE__MAX_CONNECTIONS", a.pool.to_string())
        .env(
            "SWITCHBOARD__AMQP__NAMESPACE",
            format!("bench.drafts.{}", std::process::id()),
        )
        .env("SWITCHBOARD__AMQP__QUEUE_EXPIRES_MS", "60000")
        .env("SWITCHBOARD__LLM__PROVIDER", "openai")
        .env("SWITCHBOARD__LLM__BASE_URL", llm)
        .env("SWITCHBOARD__LLM__TIMEOUT_MS", "60000")
        .env("SWITCHBOARD__LLM__MAX_RETRIES", "0")
        .env(
            "SWITCHBOARD__AI_WORKER__DRAFT_CONCURRENCY",
            a.concurrency.to_string(),
        )
        .env("SWITCHBOARD__SECURITY__MASTER_KEY", MASTER_KEY)
        .env("SWITCHBOARD__LOG__FILTER", "warn")
        .spawn()
        .context("start target/release/switchboard ai-worker (bench/drafts/run builds it)")?;
    Ok(Worker(child))
}

async fn count(pool: &PgPool, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let answer = Arc::new(RwLock::new(completion("doc:bench", "Yes.")));
    let llm = fake_llm(Duration::from_millis(a.llm_ms), answer.clone()).await?;
    println!(
        "{} conversations, an LLM answering each call after {} ms, draft concurrency {}, pool {}",
        a.conversations, a.llm_ms, a.concurrency, a.pool
    );
    let ceiling = ceiling(&llm, a.conversations.min(2000), a.concurrency).await?;

    let name = format!("sb_bench_drafts_{}", std::process::id());
    let admin = PgPool::connect(ADMIN_DB).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    let db = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let pool = customers(&db, a.conversations).await?;
    let (source, reply): (String, String) = sqlx::query_as(
        "SELECT 'doc:' || id::text, body FROM knowledge_docs WHERE title = 'Shipping and delivery'",
    )
    .fetch_one(&pool)
    .await?;
    if let Ok(mut a) = answer.write() {
        *a = completion(&source, &reply);
    }

    let n = i64::try_from(a.conversations)?;
    let started = Instant::now();
    let _worker = worker(&db, &llm, &a)?;
    let limit = Duration::from_secs(60) + Duration::from_millis(a.llm_ms) * 2 * 200;
    loop {
        let done = count(&pool, "SELECT count(*) FROM ai_suggestions").await?;
        if done >= n {
            break;
        }
        if started.elapsed() > limit {
            bail!("only {done} of {n} conversations were drafted in {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let rate = n as f64 / elapsed.as_secs_f64();

    // Once the first drafts are back (one LLM round trip after the start), the worker
    // drafts at its sustained rate until the last.
    let span: f64 = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM max(created_at) - min(created_at))::float8 FROM ai_suggestions",
    )
    .fetch_one(&pool)
    .await?;
    let sustained = (n - 1) as f64 / span.max(f64::MIN_POSITIVE);
    let distinct = count(
        &pool,
        "SELECT count(DISTINCT based_on_message_id) FROM ai_suggestions",
    )
    .await?;
    // A draft whose LLM call failed is stored empty and escalated: it counts as handled,
    // not as a draft, and the bench says how many there were.
    let failed = count(
        &pool,
        "SELECT count(*) FROM ai_suggestions WHERE draft = ''",
    )
    .await?;
    let decisions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT decision, count(*) FROM ai_suggestions GROUP BY decision ORDER BY decision",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    drop(_worker);
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    if distinct != n {
        bail!("{n} conversations got drafts for {distinct} distinct messages");
    }
    println!(
        "drafts: {sustained:.0}/s sustained (first to last draft); {rate:.0}/s from the worker's start ({n} in {:.1} s); each conversation exactly once",
        elapsed.as_secs_f64()
    );
    let decisions: Vec<String> = decisions.iter().map(|(d, c)| format!("{d} {c}")).collect();
    println!(
        "decisions: {}; failed drafts (LLM errors): {failed}",
        decisions.join(", ")
    );
    println!("LLM ceiling at this concurrency, no database: {ceiling:.0} drafts/s");
    println!(
        "ratio: {:.0} % of the ceiling sustained, {:.0} % from the start",
        100.0 * sustained / ceiling.max(f64::MIN_POSITIVE),
        100.0 * rate / ceiling.max(f64::MIN_POSITIVE)
    );
    Ok(())
}
