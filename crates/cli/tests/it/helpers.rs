#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{Parts, Running};
use switchboard_runtime::{Config, Services};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ADMIN_DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestApp {
    pub base: String,
    pub config: Config,
    pub services: Services,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub running: Running,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A config of our own: a database and a queue namespace no other test uses.
pub fn test_config() -> Config {
    let mut c = Config::load().expect("embedded defaults load");
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    c.database.url = format!("postgres://postgres@127.0.0.1:5432/sb_test_{pid}_{n}");
    c.database.max_connections = 10;
    c.amqp.namespace = format!("sbt.{}", Uuid::new_v4().simple());
    c.amqp.queue_expires_ms = 120_000;
    c.amqp.retry_delays_ms = vec![200, 500];
    c.amqp.shutdown_grace_secs = 2;
    c.dispatcher.poll_interval_ms = 50;
    c.dispatcher.backoff_base_ms = 100;
    c.dispatcher.backoff_max_ms = 1000;
    c.server.port = 0;
    c.security.master_key = MASTER_KEY.into();
    // The fake LLMs of the tests listen on this machine.
    c.security.allow_private_llm_urls = true;
    c
}

/// 32 bytes of 7, in base64.
pub const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// Drops databases left by earlier test processes that are no longer running.
async fn drop_stale_databases() {
    let Ok(admin) = PgPool::connect(ADMIN_DB).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'sb_test_%'")
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid: Option<u32> = name.split('_').nth(2).and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&admin)
                .await;
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(test_config(), Parts::ALL).await
    }

    pub async fn spawn_with(config: Config, parts: Parts) -> Self {
        static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        CLEANED.get_or_init(drop_stale_databases).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shutdown = CancellationToken::new();
        let running = switchboard::start(config.clone(), listener, parts, shutdown.clone())
            .await
            .expect("app starts");
        let services = running.services.clone();
        let pool = services.store.pool().clone();
        // The broker takes the namespace's topology before the test starts: a broker busy
        // deleting earlier tests' expired queues can take longer to declare it than a
        // webhook's publish is given.
        let start = Instant::now();
        // (Not when a test points the app at a broker that is down on purpose.)
        let shared_broker = config.amqp.url.contains("127.0.0.1:5672");
        while shared_broker && !services.publisher.ready().await {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the broker never took the topology"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Tests do not need to wait the production quiet window.
        sqlx::query("UPDATE decision_settings SET debounce_quiet_ms = 300, debounce_cap_ms = 2000")
            .execute(&pool)
            .await
            .unwrap();
        Self {
            base: format!("http://{}", running.addr),
            config,
            services,
            pool,
            http: reqwest::Client::new(),
            shutdown,
            running,
        }
    }

    pub async fn post_chat(
        &self,
        visitor: &str,
        client_id: &str,
        text: &str,
    ) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/api/webchat/demo/messages", self.base))
            .json(&json!({"visitor_id": visitor, "client_message_id": client_id, "text": text}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn transcript(&self, visitor: &str) -> Vec<Value> {
        let r: Value = self
            .http
            .get(format!("{}/api/webchat/demo/messages", self.base))
            .query(&[("visitor_id", visitor)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Polls the transcript until `done` holds, or fails after `timeout`.
    pub async fn wait_transcript(
        &self,
        visitor: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let t = self.transcript(visitor).await;
            if done(&t) {
                return t;
            }
            assert!(start.elapsed() < timeout, "timed out; transcript: {t:#?}");
            // Under the per-address limit the transcript shares with posts and streams.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn webchat_channel(&self) -> Uuid {
        sqlx::query_scalar("SELECT id FROM channels WHERE kind = 'webchat'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Stores a channel the way `switchboard channel add` does, credentials encrypted.
    pub async fn add_channel(
        &self,
        kind: switchboard_core::ChannelKind,
        config: Value,
        secrets: Value,
    ) -> Uuid {
        let cipher =
            switchboard_store::crypto::Cipher::from_base64(&self.config.security.master_key)
                .unwrap();
        let tenant = self.services.store.tenant_id("demo").await.unwrap();
        let blob = cipher.encrypt(secrets.to_string().as_bytes());
        self.services
            .store
            .create_channel(tenant, kind, &format!("{kind} test"), &config, Some(&blob))
            .await
            .unwrap()
    }

    pub async fn exec(&self, sql: &str) {
        sqlx::query(sql).execute(&self.pool).await.unwrap();
    }

    /// Waits until `sql` counts at least `n`, or fails after thirty seconds (the whole
    /// suite on two cores can keep a step waiting well beyond its usual second).
    pub async fn wait_count(&self, sql: &str, n: i64) {
        let start = Instant::now();
        loop {
            let got = self.count(sql).await;
            if got >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{sql} counted {got}, not {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the system has nothing left to do: no conversation waits for a draft
    /// and no send waits in the outbox (due or not, leased or not). What a test asserts
    /// after this cannot still be about to happen.
    pub async fn settled(&self) {
        let start = Instant::now();
        loop {
            let drafts = self.count("SELECT count(*) FROM pending_drafts").await;
            let sends = self
                .count("SELECT count(*) FROM outbox WHERE status = 'pending'")
                .await;
            if drafts == 0 && sends == 0 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "not settled: {drafts} conversations wait for a draft, {sends} sends wait"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the inbound job `provider_event_id` (webchat "visitor:client_message_id",
    /// Telegram "update:N", WhatsApp "msg:wamid" or "status:wamid:status", email
    /// "message-id:id") has run to its end at least `times` times: stored, and its consent,
    /// escalation or draft schedule done, on every path, the ones that write nothing new
    /// included. Fails after twenty seconds. Follow it with `settled` for what the job
    /// scheduled.
    pub async fn handled(&self, provider_event_id: &str, times: i32) {
        let start = Instant::now();
        loop {
            let got = self.handled_count(provider_event_id).await;
            if got >= times {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "inbound job {provider_event_id} was handled {got} times, not {times}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many times the inbound job `provider_event_id` has run to its end so far.
    pub async fn handled_count(&self, provider_event_id: &str) -> i32 {
        let rows: Vec<i32> =
            sqlx::query_scalar("SELECT handled FROM inbound_receipts WHERE provider_event_id = $1")
                .bind(provider_event_id)
                .fetch_all(&self.pool)
                .await
                .unwrap();
        assert!(
            rows.len() <= 1,
            "{provider_event_id} names jobs of several channels"
        );
        rows.first().copied().unwrap_or(0)
    }

    /// Waits until every inbound job queued before this call has been handled: for paths
    /// that leave no receipt (the operators' Telegram chat), and for repeated webhooks,
    /// whose copies are not counted anywhere (a repeat that comes while the first copy is
    /// still on its way is queued too). Publishes a job no worker can read and waits for it
    /// in the dead letters, with nothing left on the queue or its retry rungs. Exact only
    /// with `amqp.prefetch = 1`, where the broker hands the worker nothing new before the
    /// previous delivery is acknowledged, which is after its handler returned. (A job whose
    /// handler failed comes back from its retry rung unseen once it is being handled again;
    /// the tests expect no failures.)
    pub async fn inbound_drained(&self) {
        let cfg = &self.config.amqp;
        assert_eq!(
            cfg.prefetch, 1,
            "the inbound barrier needs amqp.prefetch = 1"
        );
        let dead_queue = cfg.dead_queue(switchboard_bus::INBOUND);
        let dead = |stats: &[switchboard_bus::QueueStats]| {
            stats
                .iter()
                .find(|q| q.queue == dead_queue)
                .map_or(0, |q| q.messages)
        };
        let before = dead(
            &switchboard_bus::queue_stats(cfg, switchboard_bus::INBOUND)
                .await
                .unwrap(),
        );
        // The app's own publisher: its connection is open, where a new one could wait on a
        // busy broker.
        self.services
            .publisher
            .publish(switchboard_bus::INBOUND, b"sb-test-barrier")
            .await
            .unwrap();
        let start = Instant::now();
        loop {
            let stats = switchboard_bus::queue_stats(cfg, switchboard_bus::INBOUND)
                .await
                .unwrap();
            let waiting: u32 = stats
                .iter()
                .filter(|q| q.queue != dead_queue)
                .map(|q| q.messages)
                .sum();
            if dead(&stats) > before && waiting == 0 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the inbound queue did not drain: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes a probe on the live topic (`webchat:…`, `operators:…`) until `events`
    /// shows it: from then on the gateway's live subscription is up and the stream gets
    /// every event of the topic.
    pub async fn live_ready<S, B, E>(&self, topic: &str, events: &mut S)
    where
        S: futures::Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Debug,
    {
        use futures::StreamExt;
        let probe = format!("probe-{}", Uuid::new_v4().simple());
        let payload = json!({"type": "probe", "probe": probe}).to_string();
        let mut redis = self.services.redis.clone();
        let mut seen = String::new();
        let start = Instant::now();
        loop {
            let _: i64 = redis::cmd("PUBLISH")
                .arg(format!("sb:live:{topic}"))
                .arg(&payload)
                .query_async(&mut redis)
                .await
                .unwrap();
            let read = Instant::now();
            while read.elapsed() < Duration::from_millis(100) {
                match tokio::time::timeout(Duration::from_millis(100), events.next()).await {
                    Ok(Some(chunk)) => {
                        seen.push_str(&String::from_utf8_lossy(chunk.unwrap().as_ref()));
                        if seen.contains(&probe) {
                            return;
                        }
                    }
                    Ok(None) => panic!("the event stream ended: {seen}"),
                    Err(_) => break,
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the live feed never carried a probe on {topic}: {seen}"
            );
        }
    }

    /// Stops the app and waits until every part has: nothing of it writes after this.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.running.tasks.join_next().await.is_some() {}
        })
        .await
        .expect("the app stopped within twenty seconds");
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

pub fn by_role<'a>(t: &'a [Value], role: &str) -> Vec<&'a Value> {
    t.iter().filter(|m| m["role"] == role).collect()
}

/// A `switchboard <role>` process (`ai-worker`, `dispatcher`, `listener`) with the test
/// app's configuration; killed when dropped.
pub fn role_process(app: &TestApp, role: &str) -> Killed {
    Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg(role)
            .env("SWITCHBOARD__DATABASE__URL", &app.config.database.url)
            .env(
                "SWITCHBOARD__SECURITY__MASTER_KEY",
                &app.config.security.master_key,
            )
            .env("SWITCHBOARD__AMQP__NAMESPACE", &app.config.amqp.namespace)
            .env(
                "SWITCHBOARD__AMQP__QUEUE_EXPIRES_MS",
                app.config.amqp.queue_expires_ms.to_string(),
            )
            .env("SWITCHBOARD__AMQP__RETRY_DELAYS_MS", "[200,500]")
            .env("SWITCHBOARD__DISPATCHER__POLL_INTERVAL_MS", "50")
            .env("SWITCHBOARD__METRICS__LISTEN", "")
            .env("SWITCHBOARD__LOG__FILTER", "error")
            .spawn()
            .unwrap(),
    )
}

pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
