//! `bash bench/ingest/run`: how many signed WhatsApp webhooks per second the gateway turns
//! into durably queued messages, beside this machine's raw ceiling for persistent,
//! confirmed publishes to a quorum queue, measured in the same run.

use std::io::Write;
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
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
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
            "messages": [{"from": "491700000001", "id": format!("wamid.bench.{id:020}"), "timestamp": "1700000000",
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

/// Posts unique signed webhooks from `CONNECTIONS` tasks for `RUN`, paced to `rate`
/// requests a second in all (wrk cannot pace).
async fn load(url: &str, rate: u64) -> anyhow::Result<Stats> {
    let expected = rate * RUN.as_secs() * 5 / 4;
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
            let interval = Duration::from_secs_f64(CONNECTIONS as f64 / rate as f64);
            let mut due = start + interval.mul_f64(worker as f64 / CONNECTIONS as f64);
            while start.elapsed() < RUN {
                tokio::time::sleep_until(due.into()).await;
                due += interval;
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

/// Requests written for wrk: more than a 10-second run at 64 connections can send here.
const WRK_STOCK: u64 = 400_000;
const WRK_THREADS: usize = 2;

/// The 64-connection run, driven by wrk: a C load generator leaves more of the two cores
/// to the gateway and the broker than the in-process one does.
fn wrk_load(port: u16, path: &str) -> anyhow::Result<Stats> {
    let dir = std::env::temp_dir().join(format!("sb-ingest-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("webhooks.lua");
    std::fs::write(&script, include_str!("../webhooks.lua"))?;
    let stock = dir.join("requests");
    let first = rand_start();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&stock)?);
    let mut size = None;
    for id in first..first + WRK_STOCK {
        let (body, sig) = body(id);
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             X-Hub-Signature-256: {sig}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        // The script cuts the file into equal slices; ids of a fixed width keep them so.
        if *size.get_or_insert(req.len()) != req.len() {
            bail!("requests of different lengths");
        }
        out.write_all(&req)?;
    }
    out.flush()?;
    drop(out);
    let output = Command::new("wrk")
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{}s", RUN.as_secs()))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .arg("--")
        .arg(&stock)
        .arg(size.unwrap_or_default().to_string())
        .arg(WRK_THREADS.to_string())
        .output()
        .context("running wrk (bash bench/ingest/run installs it)")?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("WRK ")) else {
        bail!(
            "wrk printed no summary: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [
        requests,
        duration_us,
        bad_status,
        socket_errors,
        p50_us,
        p99_us,
    ] = n[..]
    else {
        bail!("unexpected wrk summary: {line}");
    };
    if bad_status + socket_errors > 0 {
        eprintln!(
            "warning: {bad_status} requests answered with an error, {socket_errors} socket errors"
        );
    }
    let ok = requests - bad_status;
    Ok(Stats {
        count: ok,
        per_sec: ok as f64 / (duration_us as f64 / 1e6),
        p50: Duration::from_micros(p50_us),
        p99: Duration::from_micros(p99_us),
    })
}

fn rand_start() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_fields().0) << 20
}

/// Persistent publishes with confirms to a quorum queue, `CONNECTIONS` in flight at once,
/// one message each, straight through lapin: the most any durable ingest that publishes
/// one message per webhook can do on this machine.
async fn raw_ceiling(queue: &str) -> anyhow::Result<Stats> {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert("x-expires".into(), AMQPValue::LongInt(300_000));
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), durable, args).await?;
    let payload = body(0).0;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (ch, payload, queue) = (ch.clone(), payload.clone(), queue.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while start.elapsed() < RUN {
                let t = Instant::now();
                let props = lapin::BasicProperties::default().with_delivery_mode(2);
                let confirmed = match ch
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &payload,
                        props,
                    )
                    .await
                {
                    Ok(confirm) => confirm.await.is_ok_and(|c| c.is_ack()),
                    Err(_) => false,
                };
                if confirmed {
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
    let _ = conn.close(200, "measured".into()).await;
    Ok(stats(all, start.elapsed()))
}

/// Empties the given queues and lets the broker settle, so that no run pays for the
/// backlog an earlier run left (a quorum queue keeps writing its log after the publishes).
/// Returns how many messages it emptied out.
async fn settle(queues: &[String]) -> anyhow::Result<u64> {
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let mut purged = 0;
    for q in queues {
        // Purged, not deleted: the gateway's publisher keeps publishing to it.
        purged += ch
            .queue_purge(
                q.as_str().into(),
                lapin::options::QueuePurgeOptions::default(),
            )
            .await
            .map_or(0, u64::from);
    }
    let _ = conn.close(200, "settled".into()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(purged)
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
    let _ = tokio::time::timeout(Duration::from_secs(3), load(&url, 1000)).await;
    println!("measuring the raw confirmed-publish ceiling ({CONNECTIONS} in flight, {RUN:?})…");
    // Every run starts on an empty, settled broker.
    let inbound = format!("{ns}.{}", switchboard_bus::INBOUND);
    settle(std::slice::from_ref(&inbound)).await?;
    let raw_queue = format!("{ns}.raw");
    let raw = raw_ceiling(&raw_queue).await?;
    settle(std::slice::from_ref(&raw_queue)).await?;
    println!("measuring durable webhooks at {CONNECTIONS} connections ({RUN:?})…");
    let full = wrk_load(port, &format!("/webhooks/whatsapp/{channel}"))?;
    let full_messages = settle(std::slice::from_ref(&inbound)).await?;
    println!("measuring latency at 5,000 requests/s…");
    let paced = load(&url, 5000).await?;
    let paced_messages = settle(std::slice::from_ref(&inbound)).await?;
    // The ceiling wanders between runs on a shared machine: measure it before and after the
    // webhooks and compare with the mean of the two.
    println!("measuring the raw ceiling again…");
    let raw_after = raw_ceiling(&raw_queue).await?;
    settle(std::slice::from_ref(&raw_queue)).await?;
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
    // Webhooks that arrive while earlier ones wait for their confirm share a message.
    let per_message = |s: &Stats, messages: u64| s.count as f64 / messages.max(1) as f64;
    println!(
        "webhooks per broker message: {:.1} at 64 connections, {:.1} at 5,000/s",
        per_message(&full, full_messages),
        per_message(&paced, paced_messages)
    );
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
