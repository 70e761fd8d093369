//! `bash bench/faults/run`: the fault suite. A real fleet (the gateway, two AI workers, two
//! dispatchers and two listeners, each its own process) answers customers on the web chat,
//! Telegram, WhatsApp and email, against local fakes of the platforms and the real
//! PostgreSQL, RabbitMQ, Redis and mail servers, while processes are killed with SIGKILL
//! and restarted, RabbitMQ, PostgreSQL and Redis are restarted, and the Telegram fake
//! holds its answers for ten seconds. Once everything has settled it checks, from the
//! database and what the fakes received, that every message was stored once and answered
//! once (or handed to an operator), that nothing followed a STOP or a takeover, and that
//! no work was left behind; it prints one table and fails if a guarantee broke.
//!
//! `--messages 200 --short` is CI's version: one fault of each kind.

mod check;
mod customers;
mod fleet;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard_core::ChannelKind;
use switchboard_fakes::FakePlatform;
use switchboard_store::Store;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken as Stop;
use uuid::Uuid;

use crate::check::Clock;
use crate::customers::{Customer, Kind, Targets};
use crate::fleet::{Fleet, Role, Service};

const ADMIN_DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const OPERATOR: &str = "operator@faults.example";
const PASSWORD: &str = "faults-bench-operator-pw";

#[derive(Clone)]
struct Args {
    messages: usize,
    rate: f64,
    kill_every: Duration,
    short: bool,
    bin_dir: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let exe = std::env::current_exe()?;
    let mut a = Args {
        messages: 2000,
        rate: 20.0,
        kill_every: Duration::from_secs(3),
        short: false,
        bin_dir: exe
            .parent()
            .context("the bench binary has a directory")?
            .to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--short" {
            a.short = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--messages" => a.messages = value.parse()?,
            "--rate" => a.rate = value.parse()?,
            "--kill-every-ms" => a.kill_every = Duration::from_millis(value.parse()?),
            "--bin-dir" => a.bin_dir = value.into(),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(a)
}

/// A database of the run's own with the demo shop, answering around the clock with a
/// short quiet window and a short human delay, and the three platform channels.
async fn shop(
    db: &str,
    telegram: &FakePlatform,
    whatsapp: &FakePlatform,
    folder: &str,
) -> anyhow::Result<(Store, Uuid, Uuid)> {
    Store::migrate(db).await?;
    let store = Store::connect_lazy(db, 8)?;
    let tenant = store.seed_demo().await?;
    for sql in [
        // Always open, and no "we are checking" courtesy message: the suite counts answers,
        // and its operator approves what waits long before a customer would be told.
        "UPDATE tenants SET working_hours_start = '00:00', working_hours_end = '23:59:59',
                working_days = '{1,2,3,4,5,6,7}', checking_after_minutes = 0",
        "UPDATE decision_settings SET debounce_quiet_ms = 1000, debounce_cap_ms = 4000",
        "INSERT INTO human_delay_settings (tenant_id, enabled, min_delay_ms, max_delay_ms)
         SELECT id, true, 300, 1200 FROM tenants
         ON CONFLICT (tenant_id) DO UPDATE SET enabled = true, min_delay_ms = 300, max_delay_ms = 1200",
    ] {
        sqlx::query(sql).execute(store.pool()).await?;
    }
    let cipher = switchboard_store::crypto::Cipher::from_base64(MASTER_KEY)?;
    let add = async |kind, config: Value, secrets: Value| {
        store
            .create_channel(
                tenant,
                kind,
                &format!("{kind} faults"),
                &config,
                Some(&cipher.encrypt(secrets.to_string().as_bytes())),
            )
            .await
    };
    let tg = add(
        ChannelKind::Telegram,
        json!({"api_base_url": telegram.base_url, "bot_username": "shop_bot"}),
        json!({"bot_token": "123:FAULTS", "secret_token": customers::TG_SECRET}),
    )
    .await?;
    let wa = add(
        ChannelKind::Whatsapp,
        json!({"api_base_url": whatsapp.base_url, "phone_number_id": customers::WA_PHONE}),
        json!({"access_token": "wa-token", "app_secret": customers::WA_APP_SECRET, "verify_token": "v"}),
    )
    .await?;
    add(
        ChannelKind::Email,
        json!({"imap_host": "127.0.0.1", "imap_port": customers::IMAP_PORT, "imap_tls": "none",
               "mailbox": folder, "smtp_host": "127.0.0.1", "smtp_port": 10025, "smtp_tls": "none",
               "from": "Shop Support <support@shop.example>", "poll_secs": 1}),
        json!({"imap_user": "support", "imap_password": "support"}),
    )
    .await?;
    store
        .add_user(
            tenant,
            OPERATOR,
            switchboard_store::Role::Operator,
            PASSWORD,
        )
        .await?;
    Ok((store, tg, wa))
}

/// A free port for the gateway, which keeps it across restarts.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn fleet_env(db: &str, namespace: &str, port: u16) -> Vec<(String, String)> {
    [
        ("DATABASE__URL", db.to_owned()),
        ("DATABASE__MAX_CONNECTIONS", "10".into()),
        ("AMQP__NAMESPACE", namespace.to_owned()),
        ("SERVER__PORT", port.to_string()),
        ("SERVER__PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        // Every customer of the bench writes from this machine's one address.
        ("SERVER__PUBLIC_RATE_PER_IP", "100000".into()),
        ("SERVER__PUBLIC_BURST_PER_IP", "100000".into()),
        ("SECURITY__MASTER_KEY", MASTER_KEY.into()),
        ("LOG__FILTER", "warn".into()),
        ("LOG__FORMAT", "json".into()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("SWITCHBOARD__{k}"), v))
    .collect()
}

/// Signs the operator in and approves every draft that waits for approval, until told to
/// stop: the operator the NEED_APPROVAL drafts wait for. Failures (the gateway killed, a
/// dependency restarting) are tried again on the next round.
async fn operator(targets: Targets, stop: Stop) -> usize {
    let mut approved = 0;
    while !stop.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(t) = &sign_in(&targets).await else {
            continue;
        };
        let Ok(r) = targets
            .http
            .get(format!(
                "{}/api/v1/suggestions?status=pending",
                targets.gateway
            ))
            .bearer_auth(t)
            .send()
            .await
        else {
            continue;
        };
        if r.status() == 401 {
            forget(&targets, t).await;
            continue;
        }
        let list: Value = r.json().await.unwrap_or_default();
        for s in list["suggestions"].as_array().into_iter().flatten() {
            let Some(id) = s["id"].as_str() else { continue };
            // An escalation is answered with the operator's own text, never approved as
            // it is (the API refuses that); here the operator writes the suggestion out.
            let body = if s["decision"] == "ESCALATE" {
                json!({"text": format!("{} (from a person)", s["draft"].as_str().unwrap_or("We are on it."))})
            } else {
                json!({})
            };
            let ok = targets
                .http
                .post(format!(
                    "{}/api/v1/suggestions/{id}/approve",
                    targets.gateway
                ))
                .bearer_auth(t)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            approved += usize::from(ok);
        }
    }
    approved
}

/// The operator's session token, signing in only when there is none (or it was refused:
/// `forget`).
async fn sign_in(targets: &Targets) -> Option<String> {
    let mut token = targets.operator_token.lock().await;
    if token.is_none() {
        *token = new_session(targets).await;
    }
    token.clone()
}

async fn forget(targets: &Targets, refused: &str) {
    let mut token = targets.operator_token.lock().await;
    if token.as_deref() == Some(refused) {
        *token = None;
    }
}

async fn new_session(targets: &Targets) -> Option<String> {
    let r = targets
        .http
        .post(format!("{}/api/v1/auth/login", targets.gateway))
        .json(&json!({"email": OPERATOR, "password": PASSWORD}))
        .send()
        .await
        .ok()?;
    let v: Value = r.json().await.ok()?;
    v["token"].as_str().map(str::to_owned)
}

/// An operator takes over the customer's conversation, once it exists; retried until it
/// is done.
async fn take_over(targets: &Targets, pool: &PgPool, c: &Customer) {
    loop {
        // Bounded: a connection the PostgreSQL restart left half open must not hold the
        // customer (and the whole drive) for ever.
        let lookup = sqlx::query_scalar(
            "SELECT c.id FROM conversations c JOIN customers cu ON cu.id = c.customer_id
             JOIN channels ch ON ch.id = c.channel_id WHERE cu.external_id = $1 AND ch.kind = $2",
        )
        .bind(&c.external)
        .bind(c.channel.kind())
        .fetch_optional(pool);
        let conversation: Option<Uuid> = tokio::time::timeout(Duration::from_secs(5), lookup)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();

        if let (Some(id), Some(token)) = (conversation, sign_in(targets).await) {
            let answer = targets
                .http
                .post(format!(
                    "{}/api/v1/conversations/{id}/takeover",
                    targets.gateway
                ))
                .bearer_auth(&token)
                .send()
                .await;
            match answer.map(|r| r.status()) {
                Ok(s) if s.is_success() => return,
                Ok(s) if s == 401 => forget(targets, &token).await,
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// What one customer does: ask; then write STOP, or wait for an operator to take over
/// and write again.
async fn customer(targets: Targets, pool: PgPool, c: Arc<Customer>) {
    targets.send(&c, c.question).await;
    match c.kind {
        Kind::Plain => {}
        Kind::Stop => {
            // Anywhere from inside the quiet window to while the reply waits its human
            // delay or goes out.
            let ms = rand::rng().random_range(200..3000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            targets.send(&c, customers::STOP).await;
        }
        Kind::Held => {
            take_over(&targets, &pool, &c).await;
            targets.send(&c, customers::FOLLOW_UP).await;
        }
    }
}

/// The faults, spread over the drive: processes killed (a random one every `kill_every`,
/// or in the short version one of each role), each service restarted once, and the
/// Telegram fake holding its answers for ten seconds. Returns what was done.
async fn faults(
    fleet: Arc<Mutex<Fleet>>,
    telegram: Arc<FakePlatform>,
    a: &Args,
    drive: Duration,
) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let mut done = Vec::new();
    let mut plan: Vec<(Duration, Fault)> = vec![
        (drive.mul_f64(0.2), Fault::Service(Service::RabbitMq)),
        (drive.mul_f64(0.4), Fault::Hold),
        (drive.mul_f64(0.55), Fault::Service(Service::PostgreSql)),
        (drive.mul_f64(0.75), Fault::Service(Service::Redis)),
    ];
    if a.short {
        for (i, role) in [
            Role::Gateway,
            Role::AiWorker,
            Role::Dispatcher,
            Role::Listener,
        ]
        .into_iter()
        .enumerate()
        {
            plan.push((
                drive.mul_f64(0.1 + 0.22 * i as f64),
                Fault::Kill(Some(role)),
            ));
        }
    } else {
        let mut t = a.kill_every;
        while t < drive {
            plan.push((t, Fault::Kill(None)));
            t += a.kill_every;
        }
    }
    plan.sort_by_key(|(at, _)| *at);
    for (at, fault) in plan {
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        let what = match fault {
            Fault::Service(s) => {
                let log = fleet.lock().await.log_dir.join("services.log");
                let away = s.restart(&log).await?;
                format!("restart {} ({:.1} s)", s.name(), away.as_secs_f64())
            }
            Fault::Hold => {
                telegram.hold("sendmessage");
                let telegram = telegram.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    telegram.release("sendmessage");
                });
                "Telegram answers nothing for 10 s".to_owned()
            }
            Fault::Kill(role) => {
                let mut fleet = fleet.lock().await;
                let candidates: Vec<usize> = match role {
                    Some(r) => fleet.of(r),
                    None => (0..fleet::LAYOUT.len()).collect(),
                };
                let Some(&i) = candidates.choose(&mut rand::rng()) else {
                    continue;
                };
                // A killed process comes back after a moment, as under a supervisor.
                let pause = rand::rng().random_range(200..1000);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                fleet.kill_and_restart(i).await?
            }
        };
        eprintln!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());
        done.push(what);
    }
    Ok(done)
}

#[derive(Clone, Copy)]
enum Fault {
    Kill(Option<Role>),
    Service(Service),
    Hold,
}

/// Waits until every message is stored and handled and nothing is due: no draft, no
/// send, no approval, no inbound job on the queue or its retry rungs. Returns what still
/// waits if that does not happen within `limit`.
async fn settle(
    pool: &PgPool,
    bus: &switchboard_bus::BusConfig,
    expected: usize,
    limit: Duration,
) -> Option<String> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let counts: Result<(i64, i64, i64, i64, i64), _> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM messages WHERE role = 'customer'),
                    (SELECT count(*) FROM inbound_receipts WHERE handled = 0),
                    (SELECT count(*) FROM pending_drafts),
                    (SELECT count(*) FROM outbox WHERE status = 'pending'),
                    (SELECT count(*) FROM ai_suggestions WHERE status IN ('pending', 'queued'))",
        )
        .fetch_one(pool)
        .await;
        let Ok((stored, unhandled, drafts, sends, approvals)) = counts else {
            continue;
        };
        let dead = bus.dead_queue(switchboard_bus::INBOUND);
        let Ok(stats) = switchboard_bus::queue_stats(bus, switchboard_bus::INBOUND).await else {
            continue;
        };
        let queued: u32 = stats
            .iter()
            .filter(|q| q.queue != dead)
            .map(|q| q.messages)
            .sum();
        last = format!(
            "{stored} of {expected} messages stored, {unhandled} inbound jobs unhandled, {queued} queued, \
             {drafts} drafts due, {sends} sends due, {approvals} drafts waiting"
        );
        if stored as usize >= expected
            && unhandled == 0
            && queued == 0
            && drafts == 0
            && sends == 0
            && approvals == 0
        {
            return None;
        }
    }
    Some(last)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let run = format!("f{}", std::process::id());
    let clock = Clock::now();
    let telegram = Arc::new(FakePlatform::telegram().await);
    let whatsapp = FakePlatform::whatsapp().await;

    let folder = format!("faults-{run}");
    let mut imap = customers::imap()
        .await
        .context("the IMAP server (bash .ci/mail-servers starts it)")?;
    imap.create(&folder).await?;
    imap.logout().await?;

    let name = format!("sb_faults_{}", std::process::id());
    let admin = PgPool::connect(ADMIN_DB).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let db = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let (store, tg, wa) = shop(&db, &telegram, &whatsapp, &folder).await?;
    let pool = store.pool().clone();

    let namespace = format!("faults.{run}");
    let port = free_port()?;
    let log_dir = PathBuf::from(format!("target/faults/{run}"));
    let fleet = Arc::new(Mutex::new(Fleet::start(
        a.bin_dir.clone(),
        log_dir.clone(),
        fleet_env(&db, &namespace, port),
    )?));
    let targets = Targets {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(35))
            .build()?,
        gateway: format!("http://127.0.0.1:{port}"),
        operator_token: Default::default(),
        telegram: tg,
        whatsapp: wa,
        email_folder: folder,
    };
    wait_ready(&targets).await?;

    let people = customers::make(a.messages, &run);
    let expected: usize = people.iter().map(|c| c.messages()).sum();
    let drive = Duration::from_secs_f64(people.len() as f64 / a.rate);
    println!(
        "{expected} messages from {} customers over {:.0} s; logs in {}",
        people.len(),
        drive.as_secs_f64(),
        log_dir.display()
    );

    let stop = Stop::default();
    let supervisor = {
        let (fleet, stop) = (fleet.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Err(e) = fleet.lock().await.supervise() {
                    eprintln!("supervising the fleet failed: {e:#}");
                }
            }
        })
    };
    let approvals = tokio::spawn(operator(targets.clone(), stop.clone()));
    let injected = {
        let (fleet, telegram) = (fleet.clone(), telegram.clone());
        let a = a.clone();
        tokio::spawn(async move { faults(fleet, telegram, &a, drive).await })
    };

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, c) in people.iter().enumerate() {
        let at = Duration::from_secs_f64(i as f64 / a.rate);
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        tasks.spawn(customer(targets.clone(), pool.clone(), c.clone()));
    }
    while tasks.join_next().await.is_some() {}
    let injected = injected.await??;
    println!(
        "every message delivered after {:.0} s; waiting for the fleet to settle",
        started.elapsed().as_secs_f64()
    );

    let bus = switchboard_bus::BusConfig {
        url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        namespace,
        prefetch: 32,
        retry_delays_ms: vec![1000, 5000, 30000],
        max_attempts: 6,
        shutdown_grace_secs: 10,
        queue_expires_ms: 0,
    };
    let unsettled = settle(&pool, &bus, expected, Duration::from_secs(600)).await;
    stop.cancel();
    let approved = approvals.await?;
    supervisor.await?;
    let exited = {
        let mut fleet = fleet.lock().await;
        fleet.stop().await;
        fleet.exited
    };

    let mut received = customers::platform_replies(&telegram, &whatsapp);
    received.extend(customers::mails(&run, (clock.instant, clock.wall)));
    let mut v = check::verdict(&pool, &people, received, clock).await?;
    let dead = switchboard_bus::queue_stats(&bus, switchboard_bus::INBOUND)
        .await?
        .into_iter()
        .filter(|q| q.queue == bus.dead_queue(switchboard_bus::INBOUND) && q.messages > 0)
        .map(|q| format!("dead inbound jobs: {}", q.messages));
    v.left_over.extend(dead);
    if let Some(what) = &unsettled {
        v.left_over
            .push(format!("not settled after 10 min: {what}"));
    }

    let kills = injected.iter().filter(|f| f.starts_with("SIGKILL")).count();
    let dispatcher_kills = injected
        .iter()
        .filter(|f| f.starts_with("SIGKILL dispatcher"))
        .count();
    // The dispatchers' default `dispatcher.concurrency`: sends under way per process.
    v.window_bound = dispatcher_kills * 16;
    println!();
    println!(
        "| messages | faults injected | replies | duplicates | duplicates in the send window | losses | unanswered | after STOP | while held | left over | longest delay (p50, p99) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} ({} stored) | {} ({kills} SIGKILLs, {} restarts, 1 hold) | {} ({} escalated, {approved} approved) | {} | {} (at most {} allowed) | {} | {} | {} | {} | {} | {:.1} s ({:.1} s, {:.1} s) |",
        v.messages,
        v.stored,
        injected.len(),
        injected.len() - kills - 1,
        v.replies,
        v.escalated,
        v.duplicates + v.stored_twice,
        v.window_duplicates,
        v.window_bound,
        v.lost,
        v.unanswered,
        v.after_stop,
        v.while_held,
        if v.left_over.is_empty() {
            "nothing".to_owned()
        } else {
            v.left_over.join("; ")
        },
        v.longest.as_secs_f64(),
        v.p50.as_secs_f64(),
        v.p99.as_secs_f64(),
    );
    if exited > 0 {
        println!("{exited} processes ended on their own and were restarted (see their logs)");
    }
    pool.close().await;
    if !v.ok() {
        bail!(
            "a guarantee broke under faults; the fleet's logs are in {}",
            log_dir.display()
        );
    }
    let admin = PgPool::connect(ADMIN_DB).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    Ok(())
}

/// Waits until the gateway answers its readiness check.
async fn wait_ready(targets: &Targets) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let ready = targets
            .http
            .get(format!("{}/readyz", targets.gateway))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the gateway was not ready within a minute");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
