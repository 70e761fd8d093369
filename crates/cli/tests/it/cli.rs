//! The `switchboard` binary's pure commands, on the examples the README documents.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn readme_cases() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    readme
        .split("<!-- decide-case -->")
        .skip(1)
        .map(|part| {
            let start = part.find("```json").unwrap() + "```json".len();
            let end = start + part[start..].find("```").unwrap();
            part[start..end].to_owned()
        })
        .collect()
}

fn decide(case: &str, extra: &[&str]) -> (bool, Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["decide", "--input", "-", "--seed", "7"])
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decide_answers_every_case_in_the_readme() {
    let cases = readme_cases();
    assert_eq!(cases.len(), 3, "the README documents three cases");
    let verdicts: Vec<Value> = cases
        .iter()
        .map(|c| {
            let (ok, v, err) = decide(c, &[]);
            assert!(ok, "{err}");
            v
        })
        .collect();
    assert_eq!(verdicts[0]["decision"], "AUTO_SEND");
    assert!(verdicts[0]["delay"]["delay_ms"].as_u64().unwrap() >= 3000);
    assert_eq!(verdicts[1]["decision"], "NEED_APPROVAL");
    assert_eq!(verdicts[1]["autosend_block_reason"], "NIGHT_MODE");
    assert_eq!(
        verdicts[1]["night_auto_reply"],
        "We are closed now and answer from 9:00."
    );
    assert_eq!(verdicts[2]["silent"], "STATUS_ESCALATED");
    assert_eq!(verdicts[2]["decision"], Value::Null);
    // Same seed, same plan.
    assert_eq!(decide(&cases[0], &[]).1, verdicts[0]);
}

#[test]
fn decide_refuses_bad_cases_with_the_reason() {
    let case = readme_cases().remove(0);
    let (ok, _, err) = decide(&case.replace("\"now\"", "\"when\""), &[]);
    assert!(!ok);
    assert!(err.contains("when"), "{err}");
    let (ok, _, err) = decide(
        &case.replace("\"autosend_allowed\": true", "\"t_auto\": 0.1"),
        &[],
    );
    assert!(!ok);
    assert!(err.contains("t_escalate < t_auto"), "{err}");
}

/// Runs the binary off the test's runtime, which serves the fake platform it may call.
pub(crate) async fn switchboard(
    args: &[&str],
    config: &switchboard_runtime::Config,
) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let config = config.clone();
    tokio::task::spawn_blocking(move || run_binary(&args, &config))
        .await
        .unwrap()
}

fn run_binary(args: &[String], config: &switchboard_runtime::Config) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("SWITCHBOARD__DATABASE__URL", &config.database.url)
        .env(
            "SWITCHBOARD__SECURITY__MASTER_KEY",
            &config.security.master_key,
        )
        .env("SWITCHBOARD__SERVER__PUBLIC_URL", "https://shop.example")
        .env("SWITCHBOARD__AMQP__NAMESPACE", &config.amqp.namespace)
        .env(
            "SWITCHBOARD__AMQP__QUEUE_EXPIRES_MS",
            config.amqp.queue_expires_ms.to_string(),
        )
        .env(
            "SWITCHBOARD__AMQP__RETRY_DELAYS_MS",
            format!("{:?}", config.amqp.retry_delays_ms),
        )
        .env("SWITCHBOARD__LOG__FILTER", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn channel_commands_store_encrypted_credentials_and_set_the_webhook() {
    let app = crate::helpers::TestApp::spawn().await;
    let fake = switchboard_fakes::FakePlatform::telegram().await;
    let (ok, out, err) = switchboard(
        &[
            "channel",
            "add",
            "--tenant",
            "demo",
            "--kind",
            "telegram",
            "--name",
            "bot",
            "--bot-token",
            "123:SECRETTOKEN",
            "--secret-token",
            "hook-secret",
            "--bot-username",
            "@shop_bot",
            "--api-base-url",
            &fake.base_url,
        ],
        &app.config,
    )
    .await;
    assert!(ok, "{err}");
    let id: uuid::Uuid = out.lines().next().unwrap().parse().unwrap();
    assert!(out.contains(&format!("https://shop.example/webhooks/telegram/{id}")));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT credentials FROM channels WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains("SECRETTOKEN"),
        "credentials are encrypted"
    );

    let (ok, _, err) = switchboard(&["webhook", "set", &id.to_string()], &app.config).await;
    assert!(ok, "{err}");
    let set = fake
        .wait_for("setwebhook", 1, std::time::Duration::from_secs(5))
        .await;
    // teloxide sends setWebhook as a multipart form.
    let form = &set[0].raw;
    assert!(
        form.contains(&format!("https://shop.example/webhooks/telegram/{id}")),
        "{form}"
    );
    for field in ["hook-secret", "callback_query", "max_connections"] {
        assert!(form.contains(field), "{field} missing from {form}");
    }

    let (ok, out, _) = switchboard(&["channel", "list", "--tenant", "demo"], &app.config).await;
    assert!(
        ok && out.contains(&id.to_string()) && !out.contains("SECRETTOKEN"),
        "{out}"
    );
    let (ok, _, _) = switchboard(&["channel", "disable", &id.to_string()], &app.config).await;
    assert!(ok);
    let active: bool = sqlx::query_scalar("SELECT is_active FROM channels WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!active);

    let (ok, _, err) = switchboard(
        &[
            "channel", "add", "--tenant", "demo", "--kind", "whatsapp", "--name", "wa",
        ],
        &app.config,
    )
    .await;
    assert!(!ok && err.contains("--phone-number-id"), "{err}");

    // Discord: the application id and public key are checked before anything is stored.
    let (ok, _, err) = switchboard(
        &[
            "channel",
            "add",
            "--tenant",
            "demo",
            "--kind",
            "discord",
            "--name",
            "dc",
            "--bot-token",
            "t",
            "--application-id",
            "1100000000000000001",
            "--public-key",
            "abc",
        ],
        &app.config,
    )
    .await;
    assert!(!ok && err.contains("--public-key"), "{err}");
    let key = "6f".repeat(32);
    let (ok, out, err) = switchboard(
        &[
            "channel",
            "add",
            "--tenant",
            "demo",
            "--kind",
            "discord",
            "--name",
            "dc",
            "--bot-token",
            "t",
            "--application-id",
            "1100000000000000001",
            "--public-key",
            &key,
            "--group-mode",
            "mention",
        ],
        &app.config,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("/webhooks/discord/"), "{out}");
    let config: Value = sqlx::query_scalar("SELECT config FROM channels WHERE kind = 'discord'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(config["group_mode"], "mentions");
    assert_eq!(config["public_key"], key.as_str());
}

#[test]
fn normalize_prints_events_or_the_reason() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/whatsapp/pywa_message__text.json"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["normalize", "--channel", "whatsapp", fixture])
        .output()
        .unwrap();
    assert!(out.status.success());
    let n: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(n["events"][0]["body"]["text"], "Body Text");
    let bad = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["normalize", "--channel", "telegram", "-"])
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"{\"chat_boost\": 1}")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("update_id"));

    // A mail, as raw bytes in whatever charset it came.
    let mail = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/email/talon_reply_quoted__apple_mail.eml"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["normalize", "--channel", "email", mail])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(n["events"][0]["channel_kind"], "email");
    assert!(n["events"][0]["body"]["metadata"]["email"]["message_id"].is_string());

    // A Discord Gateway MESSAGE_CREATE.
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../channels/tests/fixtures/discord/message_create_dm_text.json"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["normalize", "--channel", "discord", event])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(n["events"][0]["channel_kind"], "discord");
    assert!(
        n["events"][0]["provider_event_id"]
            .as_str()
            .unwrap()
            .starts_with("message:")
    );
}

#[tokio::test]
async fn user_commands_create_an_operator_who_can_sign_in() {
    let app = crate::helpers::TestApp::spawn().await;
    let add = |role: &'static str, password: &'static str| {
        let config = app.config.clone();
        async move {
            switchboard(
                &[
                    "user",
                    "add",
                    "--tenant",
                    "demo",
                    "--email",
                    "Ana@Demo.example",
                    "--role",
                    role,
                    "--password",
                    password,
                ],
                &config,
            )
            .await
        }
    };
    let (ok, _, err) = add("operator", "short").await;
    assert!(!ok && err.contains("8 characters"), "{err}");
    for weak in ["password", "12345678", "ana@demo.example1"] {
        let (ok, _, err) = add("operator", weak).await;
        assert!(!ok && err.contains("too easy to guess"), "{weak}: {err}");
    }
    let (ok, _, err) = add("janitor", "long enough password").await;
    assert!(!ok && err.contains("unknown role"), "{err}");
    let (ok, out, err) = add("operator", "long enough password").await;
    assert!(ok, "{err}");
    let user: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(user["email"], "ana@demo.example");
    assert_eq!(user["role"], "operator");
    let (ok, _, err) = add("operator", "long enough password").await;
    assert!(!ok && err.contains("this shop has a user"), "{err}");

    let (ok, _, err) = switchboard(
        &[
            "user",
            "link-telegram",
            "--tenant",
            "demo",
            "--email",
            "ana@demo.example",
            "--telegram-user-id",
            "4242",
        ],
        &app.config,
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE telegram_user_id = 4242")
            .await,
        1
    );
    let res = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&serde_json::json!({"email": "ana@demo.example", "password": "long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);

    // Managing the account afterwards, every change audited as the command line's.
    let sign_in = |password: &'static str| {
        let (http, base) = (app.http.clone(), app.base.clone());
        async move {
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&serde_json::json!({"email": "ana@demo.example", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let manage = |args: &'static [&'static str]| {
        let config = app.config.clone();
        async move {
            let mut all = vec!["user"];
            all.extend_from_slice(&args[..1]);
            all.extend(["--tenant", "demo", "--email", "ana@demo.example"]);
            all.extend_from_slice(&args[1..]);
            let (ok, out, err) = switchboard(&all, &config).await;
            assert!(ok, "{args:?}: {err}");
            out
        }
    };
    manage(&["disable"]).await;
    assert_eq!(
        sign_in("long enough password").await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    manage(&["enable"]).await;
    assert_eq!(
        sign_in("long enough password").await,
        reqwest::StatusCode::OK
    );
    manage(&["reset-password", "--password", "a brand new passphrase"]).await;
    assert_eq!(
        sign_in("long enough password").await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in("a brand new passphrase").await,
        reqwest::StatusCode::OK
    );
    let changed: Value =
        serde_json::from_str(&manage(&["set-role", "--role", "admin"]).await).unwrap();
    assert_eq!(changed["role"], "admin");
    let (ok, out, err) = switchboard(&["user", "list", "--tenant", "demo"], &app.config).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"role\": \"admin\""), "{out}");
    manage(&["remove"]).await;
    let (_, out, _) = switchboard(&["user", "list", "--tenant", "demo"], &app.config).await;
    assert!(!out.contains("ana@demo.example"), "{out}");
    let (ok, _, err) = add("operator", "long enough password").await;
    assert!(ok, "a removed account's address can be used again: {err}");
    assert_eq!(
        app.count(
            "SELECT count(DISTINCT action) FROM audit_events WHERE actor_id = 'cli' AND target_type = 'user'"
        )
        .await,
        7,
        "add, link, disable, enable, password, role and remove audited"
    );
}

/// With `metrics.listen` set, the gateway serves its metrics there and not on the public
/// port, where anyone could read them.
#[tokio::test]
async fn the_gateway_serves_metrics_on_their_own_address_when_asked() {
    let app = crate::helpers::TestApp::spawn_with(
        crate::helpers::test_config(),
        switchboard::Parts::GATEWAY,
    )
    .await;
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (public, private) = (free(), free());
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _gateway = Killed(
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("gateway")
            .env("SWITCHBOARD__DATABASE__URL", &app.config.database.url)
            .env(
                "SWITCHBOARD__SECURITY__MASTER_KEY",
                &app.config.security.master_key,
            )
            // A namespace of its own: the queues' arguments are this process's defaults.
            .env(
                "SWITCHBOARD__AMQP__NAMESPACE",
                format!("{}.metrics", app.config.amqp.namespace),
            )
            .env("SWITCHBOARD__AMQP__QUEUE_EXPIRES_MS", "60000")
            .env("SWITCHBOARD__SERVER__PORT", public.to_string())
            .env(
                "SWITCHBOARD__METRICS__LISTEN",
                format!("127.0.0.1:{private}"),
            )
            .env("SWITCHBOARD__LOG__FILTER", "error")
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let start = std::time::Instant::now();
    while !http
        .get(format!("http://127.0.0.1:{public}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the gateway never came up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Something to count: a web-chat message taken.
    let posted = http
        .post(format!("http://127.0.0.1:{public}/api/webchat/demo/messages"))
        .json(&serde_json::json!({"visitor_id": "v-metrics-0001-7f3a", "client_message_id": "c1", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), reqwest::StatusCode::ACCEPTED);
    let on_public = http
        .get(format!("http://127.0.0.1:{public}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_public.status(), reqwest::StatusCode::NOT_FOUND);
    let on_private = http
        .get(format!("http://127.0.0.1:{private}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_private.status(), reqwest::StatusCode::OK);
    assert!(
        on_private.text().await.unwrap().contains("sb_"),
        "the gateway's own metrics"
    );
}

/// A new shop, from the README alone and without SQL: a tenant, a folder of Markdown and
/// HTML documents, a CSV catalogue, its name and hours; then a customer's question in the
/// shop's web chat is answered from the shop's own document. Importing again replaces
/// instead of duplicating; a changed catalogue reports what it added, changed and removed.
#[tokio::test]
async fn a_new_shop_is_set_up_from_files_and_answers_from_its_own_documents() {
    let app = crate::helpers::TestApp::spawn().await;
    let run = |args: Vec<String>| {
        let config = app.config.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, out, err) = switchboard(&args, &config).await;
            assert!(ok, "switchboard {args:?} failed: {err}");
            serde_json::from_str::<Value>(&out).unwrap()
        }
    };
    let argv = |s: &[&str]| s.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    let shop = run(argv(&[
        "tenant",
        "add",
        "--slug",
        "lamps",
        "--name",
        "Lamp Lane",
        "--timezone",
        "Europe/Berlin",
        "--currency",
        "EUR",
    ]))
    .await;
    assert_eq!(shop["channels"], 1);

    let dir = std::env::temp_dir().join(format!("sb-shop-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/returns.md"),
        "# Returns\n\nYou can send back any lamp within 30 days of delivery for a full refund. \
         Use the prepaid label in the box.\n\n## Damaged lamps\n\nIf a lamp arrives broken, \
         send us a photo and we ship a new one at once.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("delivery.html"),
        "<h1>Delivery</h1><p>Every lamp ships from Hamburg with DPD and arrives in 2-3 working days.</p>",
    )
    .unwrap();
    std::fs::write(
        dir.join("faq.csv"),
        "question,answer\n\
         Do you gift wrap?,\"Yes, in recycled paper, for 3 EUR.\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("logo.png"), [0u8, 1, 2]).unwrap();
    // A catalogue beside the handbook is not an FAQ, and is left to `catalog import`.
    std::fs::write(dir.join("stock.csv"), "sku,name,price\nX-1,Thing,1.00\n").unwrap();
    let folder = dir.to_string_lossy().into_owned();
    let imported = run(argv(&["kb", "import", "--tenant", "lamps", &folder])).await;
    assert_eq!(
        imported["imported"].as_array().unwrap().len(),
        3,
        "{imported}"
    );
    let docs = run(argv(&["kb", "list", "--tenant", "lamps"])).await;
    let titles: Vec<&str> = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Delivery",
            "Do you gift wrap?",
            "Returns",
            "Returns › Damaged lamps"
        ]
    );
    // Importing again replaces the file's documents.
    run(argv(&["kb", "import", "--tenant", "lamps", &folder])).await;
    let again = run(argv(&["kb", "list", "--tenant", "lamps"])).await;
    assert_eq!(again.as_array().unwrap().len(), 4);

    let csv = dir.join("products.csv");
    std::fs::write(
        &csv,
        "sku,name,description,price,stock,colour\n\
         LAMP-01,Brass desk lamp,A brass desk lamp with a linen shade,89.00,12,brass\n\
         LAMP-02,Arc floor lamp,A tall arc floor lamp,249.00,0,black\n",
    )
    .unwrap();
    let csv = csv.to_string_lossy().into_owned();
    let report = run(argv(&["catalog", "import", "--tenant", "lamps", &csv])).await;
    assert_eq!(report["added"], json!(["LAMP-01", "LAMP-02"]));
    std::fs::write(
        &csv,
        "sku,name,description,price,stock,colour\n\
         LAMP-01,Brass desk lamp,A brass desk lamp with a linen shade,79.00,12,brass\n\
         LAMP-03,Clip lamp,A small clip-on reading lamp,29.00,40,white\n",
    )
    .unwrap();
    let report = run(argv(&["catalog", "import", "--tenant", "lamps", &csv])).await;
    assert_eq!(report["added"], json!(["LAMP-03"]));
    assert_eq!(report["changed"], json!(["LAMP-01"]));
    assert_eq!(report["removed"], json!(["LAMP-02"]));

    let settings = dir.join("settings.json");
    std::fs::write(
        &settings,
        json!({
            "profile": {"holding_message": "Thanks! Someone from Lamp Lane will answer shortly."},
            "working_hours": {"timezone": "Europe/Berlin", "days": [1, 2, 3, 4, 5, 6, 7],
                              "start": "00:00:00", "end": "23:59:59"},
            "decision": {"autosend_allowed": true}
        })
        .to_string(),
    )
    .unwrap();
    let doc = run(argv(&[
        "settings",
        "set",
        "--tenant",
        "lamps",
        "--input",
        &settings.to_string_lossy(),
    ]))
    .await;
    assert_eq!(doc["profile"]["name"], "Lamp Lane");
    assert_eq!(doc["decision"]["autosend_allowed"], true);

    let wrap = run(argv(&[
        "kb",
        "search",
        "--tenant",
        "lamps",
        "Do you offer gift wrapping?",
    ]))
    .await;
    assert_eq!(wrap[0]["title"], "Do you gift wrap?", "{wrap}");
    let question = "How many days do I have to return a lamp?";
    let found = run(argv(&["kb", "search", "--tenant", "lamps", question])).await;
    assert_eq!(found[0]["title"], "Returns", "{found}");
    let page = app
        .http
        .get(format!("{}/chat/lamps", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h1>Lamp Lane</h1>"));
    let r = app
        .http
        .post(format!("{}/api/webchat/lamps/messages", app.base))
        .json(&json!({"visitor_id": "n1-visitor-7f3a9c2e", "client_message_id": "q1", "text": question}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    let lamps = app.services.store.tenant_id("lamps").await.unwrap();
    app.wait_count(
        &format!("SELECT count(*) FROM ai_suggestions WHERE tenant_id = '{lamps}'"),
        1,
    )
    .await;
    let (draft, sources): (String, Value) =
        sqlx::query_as("SELECT draft, used_sources FROM ai_suggestions WHERE tenant_id = $1")
            .bind(lamps)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(draft.contains("30 days"), "{draft}");
    assert!(sources.to_string().contains("doc:"), "{sources}");
    let _ = std::fs::remove_dir_all(&dir);
}
