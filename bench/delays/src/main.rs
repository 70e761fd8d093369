//! `bash bench/delays/run`: how late replies go out when many fall due together. N WhatsApp
//! customers each get one reply queued through the store, as drafting queues a reply with
//! its human delay, all due within the same window (10,000 within one minute by default);
//! K dispatcher processes send them to a fake Graph API. It prints the lateness of each
//! reply (arrival at the platform minus its due time) at p50, p99 and worst, counts replies
//! that arrived early or twice, and, as the baseline measured in the same run, the lateness
//! of plain timers in this process set for the same due times. It fails on any early,
//! duplicate or missing reply.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures::StreamExt;
use switchboard_core::{ChannelRef, InboundBody};
use switchboard_fakes::FakePlatform;
use switchboard_store::Store;
use uuid::Uuid;

const PHONE: &str = "PN1";
const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const ADMIN_DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const REPLY: &str = "Your parcel left our warehouse today.";

struct Args {
    replies: usize,
    window: Duration,
    dispatchers: usize,
    lead: Duration,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        replies: 10_000,
        window: Duration::from_secs(60),
        dispatchers: 1,
        lead: Duration::from_secs(45),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--replies" => a.replies = value.parse()?,
            "--window-secs" => a.window = Duration::from_secs(value.parse()?),
            "--dispatchers" => a.dispatchers = value.parse()?,
            // Time to queue every reply before the first falls due.
            "--lead-secs" => a.lead = Duration::from_secs(value.parse()?),
            other => bail!("unknown option {other}"),
        }
    }
    if a.replies == 0 || a.dispatchers == 0 {
        bail!("--replies and --dispatchers must be at least 1");
    }
    Ok(a)
}

/// The dispatcher processes; killed when the bench ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn switchboard(db: &str, ns: &str) -> Command {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut cmd = Command::new(exe.with_file_name("switchboard"));
    cmd.env("SWITCHBOARD__DATABASE__URL", db)
        .env("SWITCHBOARD__AMQP__NAMESPACE", ns)
        .env("SWITCHBOARD__AMQP__QUEUE_EXPIRES_MS", "300000")
        .env("SWITCHBOARD__SECURITY__MASTER_KEY", MASTER_KEY)
        .env("SWITCHBOARD__LOG__FILTER", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Seconds since the epoch of an `Instant` of this process.
struct Clock(Instant, SystemTime);

impl Clock {
    fn now() -> Self {
        Self(Instant::now(), SystemTime::now())
    }

    fn wall(&self, at: Instant) -> f64 {
        let since = self.1.duration_since(UNIX_EPOCH).unwrap_or_default();
        if at >= self.0 {
            (since + (at - self.0)).as_secs_f64()
        } else {
            (since - (self.0 - at)).as_secs_f64()
        }
    }
}

fn pick(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let pid = std::process::id();
    let name = format!("sb_delays_{pid}");
    let db = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let ns = format!("bench.delays.{pid}");
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

/// A WhatsApp channel pointed at the fake, added the way an admin adds one.
fn add_channel(db: &str, ns: &str, fake: &FakePlatform) -> anyhow::Result<Uuid> {
    let out = switchboard(db, ns)
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
            "s",
            "--verify-token",
            "v",
            // Meta's default is 80 a second per number; the bench measures our timing, not
            // that limit.
            "--messages-per-second",
            "100000",
        ])
        .stdout(Stdio::piped())
        .output()?;
    if !out.status.success() {
        bail!(
            "channel add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .parse()?)
}

/// `n` customers who each wrote once: (conversation, message) per customer.
async fn customers(store: &Store, ch: ChannelRef, n: usize) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let stored: Vec<anyhow::Result<(Uuid, Uuid)>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let customer = format!("49171{i:07}");
            let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
                "field": "messages", "value": {"messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE},
                    "contacts": [{"wa_id": customer, "profile": {"name": "Bench"}}],
                    "messages": [{"from": customer, "id": format!("wamid.delays.{i:08}"), "timestamp": "1700000000",
                                  "type": "text", "text": {"body": "Where is my parcel?"}}]}}]}]});
            let hook = switchboard_channels::whatsapp::inbound::parse(body.to_string().as_bytes())?;
            let normalized =
                switchboard_channels::whatsapp::inbound::normalize(ch, &hook, chrono::Utc::now());
            let ev = normalized.events.first().context("the webhook made no event")?;
            let InboundBody::Message(msg) = &ev.body else {
                bail!("the webhook made no message");
            };
            let stored = store.store_inbound(ev, msg, None).await?;
            Ok((stored.conversation_id, stored.message_id))
        })
        .buffer_unordered(16)
        .collect()
        .await;
    stored.into_iter().collect()
}

async fn run(a: &Args, db: &str, ns: &str) -> anyhow::Result<()> {
    Store::migrate(db).await?;
    let store = Store::connect_lazy(db, 16)?;
    let tenant_id = store.seed_demo().await?;
    let fake = FakePlatform::whatsapp().await;
    let channel_id = add_channel(db, ns, &fake)?;
    let conversations = customers(
        &store,
        ChannelRef {
            tenant_id,
            channel_id,
        },
        a.replies,
    )
    .await?;
    let mut procs = Procs(Vec::new());
    for _ in 0..a.dispatchers {
        procs.0.push(switchboard(db, ns).arg("dispatcher").spawn()?);
    }

    // Reply i falls due at `first + window * i / n`: the whole schedule is fixed before the
    // first reply is queued, and each is queued with the delay left until its due time.
    let clock = Clock::now();
    let first = clock.0 + a.lead;
    let due_at = |i: usize| first + a.window.mul_f64(i as f64 / a.replies as f64);
    // The baseline: a plain timer in this process for every due time, on the same machine
    // under the same load.
    let timers: Vec<_> = (0..a.replies)
        .map(|i| {
            let due = due_at(i);
            tokio::spawn(async move {
                tokio::time::sleep_until(due.into()).await;
                due.elapsed().as_secs_f64() * 1000.0
            })
        })
        .collect();
    let queued: Vec<anyhow::Result<()>> = futures::stream::iter(conversations.iter().enumerate())
        .map(|(i, (conversation, message))| {
            let store = store.clone();
            let left = due_at(i).checked_duration_since(Instant::now());
            async move {
                let left =
                    left.context("queueing took longer than the lead time: raise --lead-secs")?;
                let mut tx = store.begin_draft(tenant_id, *conversation).await?;
                tx.enqueue(
                    None,
                    &format!("bench-delay:{i}"),
                    *message,
                    REPLY,
                    u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    queued.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let queued_in = clock.0.elapsed();
    if queued_in > a.lead {
        bail!("queueing took {queued_in:?}, longer than the lead time: raise --lead-secs");
    }

    let method = format!("{PHONE}/messages");
    let deadline = a.lead + a.window + Duration::from_secs(120);
    let pool = store.pool().clone();
    loop {
        let sent = fake
            .requests(&method)
            .iter()
            .filter(|r| r.body["type"] == "text")
            .count();
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(&pool)
                .await?;
        if sent >= a.replies && pending == 0 {
            break;
        }
        if clock.0.elapsed() > deadline {
            bail!("{sent} of {} replies, {pending} still pending", a.replies);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut baseline = Vec::with_capacity(timers.len());
    for t in timers {
        baseline.push(t.await?);
    }

    // Each reply's due time as the database holds it, against its arrival at the platform.
    let due: HashMap<String, f64> = sqlx::query_as::<_, (String, f64)>(
        "SELECT cu.external_id, EXTRACT(EPOCH FROM o.due_at)::float8 FROM outbox o
         JOIN conversations c ON c.id = o.conversation_id
         JOIN customers cu ON cu.id = c.customer_id
         WHERE o.idempotency_key LIKE 'bench-delay:%'",
    )
    .fetch_all(&pool)
    .await?
    .into_iter()
    .collect();
    let mut arrivals: HashMap<String, Vec<f64>> = HashMap::new();
    for r in fake
        .requests(&method)
        .into_iter()
        .filter(|r| r.body["type"] == "text")
    {
        arrivals
            .entry(r.body["to"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(clock.wall(r.at));
    }
    let twice = arrivals.values().filter(|v| v.len() > 1).count();
    let missing = due.keys().filter(|c| !arrivals.contains_key(*c)).count();
    let mut late: Vec<f64> = due
        .iter()
        .filter_map(|(c, due)| {
            let first = arrivals.get(c)?.iter().copied().reduce(f64::min)?;
            Some((first - due) * 1000.0)
        })
        .collect();
    late.sort_by(f64::total_cmp);
    baseline.sort_by(f64::total_cmp);
    let early = late.iter().filter(|l| **l < 0.0).count();
    println!(
        "| replies | due within | dispatchers | lateness p50 | p99 | worst | early | twice | unanswered | baseline: a timer's lateness p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} s | {} | {:.1} ms | **{:.1} ms** | {:.1} ms | {early} | {twice} | {missing} | {:.1} ms | {:.1} ms |",
        a.replies,
        a.window.as_secs(),
        a.dispatchers,
        pick(&late, 0.5),
        pick(&late, 0.99),
        late.last().copied().unwrap_or_default(),
        pick(&baseline, 0.5),
        pick(&baseline, 0.99),
    );
    println!();
    println!(
        "queued in {:.1} s; peak memory: {}",
        queued_in.as_secs_f64(),
        procs
            .0
            .iter()
            .map(|c| format!("dispatcher {} MB", peak_rss_kib(c.id()) / 1024))
            .collect::<Vec<_>>()
            .join(", ")
    );
    drop(procs);
    if early > 0 || twice > 0 || missing > 0 {
        bail!("{early} replies went out early, {twice} twice, {missing} never");
    }
    Ok(())
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
