//! `bash bench/ingest/run`: how many signed WhatsApp webhooks per second the gateway turns
//! into durably queued messages, beside this machine's raw ceiling for persistent,
//! confirmed publishes to a quorum queue, measured in the same run.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const CONNECTIONS: usize = 64;
const RUN: Duration = Duration::from_secs(10);
const APP_SECRET: &str = "bench-app-secret";
const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(cmd: &mut Command, db: &str, ns: &str, port: u16) {
    cmd.env("SWITCHBOARD__DATABASE__URL", db)
        .env("SWITCHBOARD__AMQP__NAMESPACE", ns)
        .env("SWITCHBOARD__AMQP__QUEUE_EXPIRES_MS", "300000")
        .env("SWITCHBOARD__SERVER__PORT", port.to_string())
        .env("SWITCHBOARD__SECURITY__MASTER_KEY", MASTER_KEY)
        .env("SWITCHBOARD__LOG__FILTER", "warn");
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn body(id: u64) -> (Vec<u8>, String) {
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": "PN1"},
            "contacts": [{"wa_id": "491700000001", "profile": {"name": "Bench"}}],
            "messages": [{"from": "491700000001", "id": format!("wamid.bench.{id}"), "timestamp": "1700000000",
                          "type": "text", "text": {"body": "Do you ship to Berlin?"}}]}}]}]});
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()) else {
        return (bytes, String::new());
    };
    mac.update(&bytes);
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (bytes, format!("sha256={sig}"))
}

struct Stats {
    count: u64,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn stats(mut lat: Vec<Duration>, elapsed: Duration) -> Stats {
    lat.sort();
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Stats {
        count: lat.len() as u64,
        per_sec: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

/// Unique signed bodies made before the clock starts, so that the load generator, which
/// shares the cores with the gateway and the broker, spends them on requests rather than on
/// JSON and HMAC (as wrk with pre-signed bodies would).
struct Presigned {
    first_id: u64,
    bodies: Vec<(bytes::Bytes, String)>,
}

impl Presigned {
    fn new(n: u64) -> Self {
        let first_id = rand_start();
        let bodies = (first_id..first_id + n)
            .map(|id| {
                let (bytes, sig) = body(id);
                (bytes::Bytes::from(bytes), sig)
            })
            .collect();
        Self { first_id, bodies }
    }

    /// The `i`-th body, made now if the stock ran out.
    fn take(&self, i: u64) -> (reqwest::Body, String) {
        match self.bodies.get(i as usize) {
            Some((b, s)) => (reqwest::Body::from(b.clone()), s.clone()),
            None => {
                let (bytes, sig) = body(self.first_id + i);
                (reqwest::Body::from(bytes), sig)
            }
        }
    }
}

/// Posts unique signed webhooks from `CONNECTIONS` tasks for `RUN`; with `rate`, paced to
/// that many requests a second in all.
async fn load(url: &str, rate: Option<u64>) -> anyhow::Result<Stats> {
    let expected = rate.unwrap_or(20_000) * RUN.as_secs() * 5 / 4;
    let stock = Arc::new(Presigned::new(expected));
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONNECTIONS {
        let (client, url, next, failures, stock) = (
            client.clone(),
            url.to_owned(),
            next.clone(),
            failures.clone(),
            stock.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let interval = rate.map(|r| Duration::from_secs_f64(CONNECTIONS as f64 / r as f64));
            let mut due = start
                + interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(worker as f64 / CONNECTIONS as f64)
                });
            while start.elapsed() < RUN {
                if let Some(i) = interval {
                    tokio::time::sleep_until(due.into()).await;
                    due += i;
                }
                let (bytes, sig) = stock.take(next.fetch_add(1, Ordering::Relaxed));
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(bytes)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => lat.push(t.elapsed()),
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("warning: {failed} requests failed");
    }
    Ok(stats(all, start.elapsed()))
}

fn rand_start() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_fields().0) << 20
}

/// Persistent publishes with confirms to a quorum queue, `CONNECTIONS` in flight at once:
/// the most any durable ingest can do on this machine.
async fn raw_ceiling(ns: &str) -> anyhow::Result<Stats> {
    let cfg = switchboard_bus::BusConfig {
        url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        namespace: format!("{ns}.raw"),
        prefetch: 1,
        retry_delays_ms: vec![1000],
        max_attempts: 1,
        shutdown_grace_secs: 1,
        queue_expires_ms: 300_000,
    };
    let publisher = Arc::new(switchboard_bus::Publisher::new(cfg));
    let payload = body(0).0;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (p, payload) = (publisher.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while start.elapsed() < RUN {
                let t = Instant::now();
                if p.publish(switchboard_bus::INBOUND, &payload).await.is_ok() {
                    lat.push(t.elapsed());
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    Ok(stats(all, start.elapsed()))
}

/// Empties the given queues and lets the broker settle, so that no run pays for the
/// backlog an earlier run left (a quorum queue keeps writing its log after the publishes).
async fn settle(queues: &[String]) -> anyhow::Result<()> {
    let conn = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await?;
    let ch = conn.create_channel().await?;
    for q in queues {
        // Purged, not deleted: the gateway's publisher keeps publishing to it.
        let _ = ch
            .queue_purge(
                q.as_str().into(),
                lapin::options::QueuePurgeOptions::default(),
            )
            .await;
    }
    let _ = conn.close(200, "settled".into()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = std::env::current_exe()?.with_file_name("switchboard");
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let db = format!(
        "postgres://postgres@127.0.0.1:5432/sb_bench_{}",
        &run_id[..8]
    );
    let ns = format!("sbbench.{}", &run_id[..8]);
    let port = free_port()?;

    let mut add = Command::new(&bin);
    add.args([
        "channel",
        "add",
        "--tenant",
        "demo",
        "--kind",
        "whatsapp",
        "--name",
        "bench",
        "--phone-number-id",
        "PN1",
        "--access-token",
        "t",
        "--app-secret",
        APP_SECRET,
        "--verify-token",
        "v",
    ]);
    env(&mut add, &db, &ns, port);
    let out = add.output().context("running switchboard channel add")?;
    if !out.status.success() {
        bail!(
            "channel add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let channel = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();

    let mut cmd = Command::new(&bin);
    cmd.arg("gateway").stdout(Stdio::null());
    env(&mut cmd, &db, &ns, port);
    let gateway = Gateway(cmd.spawn().context("starting the gateway")?);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = Instant::now();
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        if ready.elapsed() > Duration::from_secs(60) {
            bail!("the gateway did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let url = format!("{base}/webhooks/whatsapp/{channel}");

    println!("warming up…");
    let _ = tokio::time::timeout(Duration::from_secs(3), load(&url, Some(1000))).await;
    println!("measuring the raw confirmed-publish ceiling ({CONNECTIONS} in flight, {RUN:?})…");
    // Every run starts on an empty, settled broker.
    let inbound = format!("{ns}.{}", switchboard_bus::INBOUND);
    settle(std::slice::from_ref(&inbound)).await?;
    let raw = raw_ceiling(&ns).await?;
    settle(&[format!("{ns}.raw.{}", switchboard_bus::INBOUND)]).await?;
    println!("measuring durable webhooks at {CONNECTIONS} connections ({RUN:?})…");
    let full = load(&url, None).await?;
    settle(std::slice::from_ref(&inbound)).await?;
    println!("measuring latency at 5,000 requests/s…");
    let paced = load(&url, Some(5000)).await?;
    settle(std::slice::from_ref(&inbound)).await?;
    // The ceiling wanders between runs on a shared machine: measure it before and after the
    // webhooks and compare with the mean of the two.
    println!("measuring the raw ceiling again…");
    let raw_after = raw_ceiling(&ns).await?;
    settle(&[format!("{ns}.raw.{}", switchboard_bus::INBOUND)]).await?;
    let raw = Stats {
        count: (raw.count + raw_after.count) / 2,
        per_sec: (raw.per_sec + raw_after.per_sec) / 2.0,
        p50: (raw.p50 + raw_after.p50) / 2,
        p99: (raw.p99 + raw_after.p99) / 2,
    };
    let rss_mib = peak_rss_kib(gateway.0.id()) as f64 / 1024.0;

    println!();
    println!("| run | count | per second | p50 | p99 | vs raw ceiling |");
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |name: &str, s: &Stats| {
        println!(
            "| {name} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.0} % |",
            s.count,
            s.per_sec,
            s.p50.as_secs_f64() * 1000.0,
            s.p99.as_secs_f64() * 1000.0,
            100.0 * s.per_sec / raw.per_sec
        )
    };
    row(
        "raw confirmed publish (baseline, mean of before and after)",
        &raw,
    );
    row("signed webhook → queued, 64 connections", &full);
    row("signed webhook → queued, paced at 5,000/s", &paced);
    println!();
    println!("gateway peak RSS: {rss_mib:.1} MiB");
    drop(gateway);
    let _ = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-q",
            "-c",
            &format!(
                "DROP DATABASE IF EXISTS \"sb_bench_{}\" WITH (FORCE)",
                &run_id[..8]
            ),
        ])
        .status();
    Ok(())
}
