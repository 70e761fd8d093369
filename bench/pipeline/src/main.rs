//! `bash bench/pipeline/run`: end to end, webhook to reply. N signed WhatsApp webhooks
//! from N new customers go into a running deployment with default settings; a fake Graph
//! API counts the replies. It prints messages a second end to end, the p50 and p99 from
//! webhook to send, and, measured in the same run on the same machine, the raw rate of
//! single-row PostgreSQL transactions, with the ratio of the two. It fails unless every
//! customer got exactly one reply.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use switchboard_fakes::FakePlatform;

const APP_SECRET: &str = "bench-app-secret";
const PHONE: &str = "PN1";
const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const ADMIN_DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const CONNECTIONS: usize = 32;

struct Args {
    messages: usize,
    workers: usize,
    timeout: Duration,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        messages: 3000,
        workers: 0,
        timeout: Duration::from_secs(600),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--messages" => a.messages = value.parse()?,
            "--workers" => a.workers = value.parse()?,
            "--timeout-secs" => a.timeout = Duration::from_secs(value.parse()?),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(a)
}

/// The fleet's processes; killed when the bench ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn switchboard(db: &str, ns: &str, port: u16) -> Command {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut cmd = Command::new(exe.with_file_name("switchboard"));
    cmd.env("SWITCHBOARD__DATABASE__URL", db)
        .env("SWITCHBOARD__AMQP__NAMESPACE", ns)
        .env("SWITCHBOARD__AMQP__QUEUE_EXPIRES_MS", "300000")
        .env("SWITCHBOARD__SERVER__PORT", port.to_string())
        .env("SWITCHBOARD__SECURITY__MASTER_KEY", MASTER_KEY)
        .env("SWITCHBOARD__LOG__FILTER", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

fn webhook(customer: &str, n: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE},
            "contacts": [{"wa_id": customer, "profile": {"name": "Bench"}}],
            "messages": [{"from": customer, "id": format!("wamid.pipeline.{n:08}"), "timestamp": "1700000000",
                          "type": "text", "text": {"body": "Do you ship to Berlin?"}}]}}]}]}))
    .unwrap_or_default()
}

/// Single-row transactions a second, from as many connections as the deployment's pool
/// would use, for five seconds: the database's own ceiling for the work one message needs.
async fn raw_rate(db: &str) -> anyhow::Result<f64> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(db)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
        .execute(&pool)
        .await?;
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let run = Duration::from_secs(5);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (pool, next) = (pool.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while start.elapsed() < run {
                    let id = next.fetch_add(1, Ordering::Relaxed) as i64;
                    let Ok(mut tx) = pool.begin().await else {
                        continue;
                    };
                    if sqlx::query("INSERT INTO bench_raw (id) VALUES ($1)")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .is_ok()
                        && tx.commit().await.is_ok()
                    {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Waits until no conversation waits for a draft and no send waits or runs.
async fn settled(db: &str, since: Instant, timeout: Duration) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(db).await?;
    loop {
        let (drafts, sends): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM pending_drafts),
                    (SELECT count(*) FROM outbox WHERE status = 'pending')",
        )
        .fetch_one(&pool)
        .await?;
        if drafts == 0 && sends == 0 {
            return Ok(());
        }
        if since.elapsed() > timeout {
            bail!("not settled: {drafts} drafts and {sends} sends wait");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// CPU seconds each part of the machine has used so far (utime + stime of every process in
/// /proc): where the cores go is what limits a deployment that shares them.
fn cpu_by_part(deployment: &[u32]) -> HashMap<&'static str, f64> {
    // USER_HZ: 100 on every Linux this runs on.
    const TICKS: f64 = 100.0;
    let me = std::process::id();
    let mut parts = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return parts;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let part = if deployment.contains(&pid) {
            "switchboard"
        } else if pid == me {
            "bench (load and fake Graph API)"
        } else if comm == "postgres" {
            "PostgreSQL"
        } else if comm.starts_with("beam") || comm.starts_with("erl") || comm == "epmd" {
            "RabbitMQ"
        } else if comm.starts_with("redis") {
            "Redis"
        } else {
            "other"
        };
        // Fields after the command: state is the first, utime the 12th, stime the 13th.
        *parts.entry(part).or_insert(0.0) += (ticks(11) + ticks(12)) / TICKS;
    }
    parts
}

/// Transactions committed and rows written in this database so far.
async fn db_work(db: &str) -> anyhow::Result<(i64, i64)> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db)
        .await?;
    // The statistics reach the view up to a second after the transactions that made them.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let row: (i64, i64) = sqlx::query_as(
        "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database
         WHERE datname = current_database()",
    )
    .fetch_one(&pool)
    .await?;
    Ok(row)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn pick(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let pid = std::process::id();
    let name = format!("sb_pipeline_{pid}");
    let db = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let ns = format!("bench.pipeline.{pid}");
    let admin = sqlx::PgPool::connect(ADMIN_DB).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await?;
    let result = run(&a, &db, &ns).await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await;
    result
}

async fn run(a: &Args, db: &str, ns: &str) -> anyhow::Result<()> {
    let fake = FakePlatform::whatsapp().await;
    let port = free_port()?;
    let mut procs = Procs(Vec::new());
    // The deployment: `switchboard up`, or a gateway beside K AI workers and K dispatchers.
    let first = if a.workers == 0 { "up" } else { "gateway" };
    // PostgreSQL takes 100 connections by default: the fleet's pools share 80 of them (20
    // each at most, the default), leaving room for the bench and the CLI.
    let pool = (80 / (2 * a.workers + 1)).clamp(2, 20).to_string();
    let switchboard = |db: &str, ns: &str, port: u16| {
        let mut cmd = switchboard(db, ns, port);
        cmd.env("SWITCHBOARD__DATABASE__MAX_CONNECTIONS", &pool);
        cmd
    };
    procs.0.push(switchboard(db, ns, port).arg(first).spawn()?);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()?;
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the deployment did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..a.workers {
        procs
            .0
            .push(switchboard(db, ns, 0).arg("ai-worker").spawn()?);
        procs
            .0
            .push(switchboard(db, ns, 0).arg("dispatcher").spawn()?);
    }
    let out = switchboard(db, ns, port)
        .args([
            "channel",
            "add",
            "--tenant",
            "demo",
            "--kind",
            "whatsapp",
            "--name",
            "wa",
            "--api-base-url",
            &fake.base_url,
            "--phone-number-id",
            PHONE,
            "--access-token",
            "t",
            "--app-secret",
            APP_SECRET,
            "--verify-token",
            "v",
            "--messages-per-second",
            "100000",
        ])
        .stdout(Stdio::piped())
        .output()?;
    let channel = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !out.status.success() || channel.is_empty() {
        bail!(
            "channel add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let url = format!("{base}/webhooks/whatsapp/{channel}");

    let raw = raw_rate(db).await?;
    let pids: Vec<u32> = procs.0.iter().map(Child::id).collect();
    let work_before = db_work(db).await?;
    let cpu_before = cpu_by_part(&pids);

    // Every customer writes once; each webhook is retried until the gateway takes it.
    let customers: Vec<String> = (0..a.messages).map(|i| format!("49170{i:07}")).collect();
    let sent_at: HashMap<String, Instant> = futures::stream::iter(customers.iter().enumerate())
        .map(|(i, c)| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let body = webhook(c, i);
                let sig = switchboard_fakes::whatsapp_signature(APP_SECRET, &body);
                let t = Instant::now();
                // 503 (a dependency busy) and connection errors are retried, for a minute
                // at most; another refusal is the bench's own mistake.
                loop {
                    let status = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", &sig)
                        .body(body.clone())
                        .send()
                        .await
                        .map(|r| r.status());
                    match status {
                        Ok(s) if s.is_success() => break,
                        Ok(s) if s.is_client_error() => {
                            anyhow::bail!("the gateway refused a webhook: {s}")
                        }
                        _ if t.elapsed() > Duration::from_secs(60) => {
                            anyhow::bail!("the gateway took no webhook for a minute")
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                Ok((c.clone(), t))
            }
        })
        .buffer_unordered(CONNECTIONS)
        .collect::<Vec<anyhow::Result<(String, Instant)>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let first_sent = sent_at.values().min().copied().unwrap_or_else(Instant::now);
    let ingest_done = first_sent.elapsed();

    let method = format!("{PHONE}/messages");
    let replies = loop {
        let replies: Vec<_> = fake
            .requests(&method)
            .into_iter()
            .filter(|r| r.body["type"] == "text")
            .collect();
        if replies.len() >= a.messages {
            break replies;
        }
        if first_sent.elapsed() > a.timeout {
            bail!(
                "{} of {} replies after {:?}",
                replies.len(),
                a.messages,
                a.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu_after = cpu_by_part(&pids);
    let busy = first_sent.elapsed().as_secs_f64();
    // A second reply could still be on its way: count only once nothing waits to be
    // drafted or sent, and no send is under way.
    settled(db, first_sent, a.timeout).await?;
    let work_after = db_work(db).await?;
    let mut per_customer: HashMap<String, Vec<Instant>> = HashMap::new();
    for r in fake
        .requests(&method)
        .into_iter()
        .filter(|r| r.body["type"] == "text")
    {
        per_customer
            .entry(r.body["to"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(r.at);
    }
    let twice = per_customer.values().filter(|v| v.len() > 1).count();
    let missing = customers
        .iter()
        .filter(|c| !per_customer.contains_key(*c))
        .count();
    let last_reply = replies.iter().map(|r| r.at).max().unwrap_or(first_sent);
    let elapsed = last_reply - first_sent;
    let mut lat: Vec<Duration> = customers
        .iter()
        .filter_map(|c| {
            Some(
                per_customer
                    .get(c)?
                    .iter()
                    .min()?
                    .duration_since(*sent_at.get(c)?),
            )
        })
        .collect();
    lat.sort();
    let e2e = a.messages as f64 / elapsed.as_secs_f64();
    let deployment = if a.workers == 0 {
        "switchboard up".to_owned()
    } else {
        format!("gateway + {0} AI workers + {0} dispatchers", a.workers)
    };
    println!(
        "| deployment | messages | ingest | end to end | webhook→reply p50 | p99 | raw PostgreSQL tx/s | end to end / raw | replied twice | unanswered |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // (Webhook to reply includes the tenant's quiet window, 1.5 s by default.)
    println!(
        "| {deployment} | {} | {:.0}/s | **{e2e:.0}/s** | {:.2} s | {:.2} s | {raw:.0} | **{:.1} %** | {twice} | {missing} |",
        a.messages,
        a.messages as f64 / ingest_done.as_secs_f64(),
        pick(&lat, 0.5).as_secs_f64(),
        pick(&lat, 0.99).as_secs_f64(),
        100.0 * e2e / raw,
    );
    // Peak resident memory of each process of the deployment (VmHWM).
    let roles =
        std::iter::once(first).chain((0..a.workers).flat_map(|_| ["ai-worker", "dispatcher"]));
    let peaks: Vec<String> = procs
        .0
        .iter()
        .zip(roles)
        .map(|(c, role)| format!("{role} {} MB", peak_rss_kib(c.id()) / 1024))
        .collect();
    println!();
    println!("peak memory: {}", peaks.join(", "));
    let mut cpu: Vec<(&str, f64)> = cpu_after
        .iter()
        .map(|(part, secs)| (*part, secs - cpu_before.get(part).copied().unwrap_or(0.0)))
        .filter(|(_, secs)| *secs > 0.0)
        .collect();
    cpu.sort_by(|a, b| b.1.total_cmp(&a.1));
    let cpu: Vec<String> = cpu
        .iter()
        .map(|(part, secs)| format!("{part} {:.0} %", 100.0 * secs / busy))
        .collect();
    println!(
        "CPU from the first webhook to the last reply ({} cores, 100 % each): {}",
        std::thread::available_parallelism().map_or(1, usize::from),
        cpu.join(", ")
    );
    let n = a.messages as f64;
    println!(
        "PostgreSQL per message: {:.1} transactions, {:.1} rows written",
        (work_after.0 - work_before.0) as f64 / n,
        (work_after.1 - work_before.1) as f64 / n,
    );
    drop(procs);
    if twice > 0 || missing > 0 {
        bail!("{twice} customers got two replies, {missing} none");
    }
    Ok(())
}
