//! The fleet view: every process announces itself, `switchboard fleet` and the admin API
//! show them with the work queue and the due work, and a process that dies drops out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{TestApp, role_process, test_config};

const TOKEN: &str = "test-admin-token-fleet";

async fn fleet(app: &TestApp) -> Value {
    let r = app
        .http
        .get(format!("{}/api/v1/admin/fleet", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn roles(report: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for p in report["processes"].as_array().unwrap() {
        for r in p["roles"].as_array().unwrap() {
            *out.entry(r.as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    out
}

/// Waits until the fleet shows `want` processes per role.
async fn wait_roles(app: &TestApp, want: &[(&str, usize)]) -> Value {
    let want: BTreeMap<String, usize> = want.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect();
    let start = Instant::now();
    loop {
        let report = fleet(app).await;
        if roles(&report) == want {
            return report;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the fleet shows {:?}, not {want:?}",
            roles(&report)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_fleet_shows_every_process_and_drops_one_that_died() {
    let mut config = test_config();
    config.admin.api_token = TOKEN.into();
    let app = TestApp::spawn_with(config, switchboard::Parts::GATEWAY).await;
    let unauthorized = app
        .http
        .get(format!("{}/api/v1/admin/fleet", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let mut workers = vec![
        role_process(&app, "ai-worker"),
        role_process(&app, "ai-worker"),
    ];
    let _dispatchers = [
        role_process(&app, "dispatcher"),
        role_process(&app, "dispatcher"),
    ];
    let _listener = role_process(&app, "listener");
    let report = wait_roles(
        &app,
        &[
            ("gateway", 1),
            ("ai-worker", 2),
            ("dispatcher", 2),
            ("listener", 1),
        ],
    )
    .await;
    let pids: Vec<u64> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&u64::from(workers[0].0.id())));
    for p in report["processes"].as_array().unwrap() {
        assert!(!p["host"].as_str().unwrap().is_empty());
        assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
    }
    // Each AI worker consumes the inbound queue (its consumer may attach a moment after
    // its first heartbeat).
    let inbound = format!("{}.inbound", app.config.amqp.namespace);
    let start = Instant::now();
    let report = loop {
        let report = fleet(&app).await;
        let consumers = report["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["queue"] == inbound.as_str())
            .map(|q| q["consumers"].as_u64().unwrap());
        if consumers == Some(2) {
            break report;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "inbound consumers: {consumers:?} in {}",
            report["queues"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        report["hints"].as_array().unwrap().is_empty(),
        "{:?}",
        report["hints"]
    );
    assert_eq!(report["unavailable"], serde_json::json!([]));

    // A message is answered by the fleet, and the work shows in the heartbeats.
    app.post_chat("fleet-visitor-7f3a9c2e", "f1", "Do you ship to Berlin?")
        .await;
    app.wait_transcript("fleet-visitor-7f3a9c2e", Duration::from_secs(30), |t| {
        crate::helpers::by_role(t, "assistant").len() == 1
    })
    .await;
    let start = Instant::now();
    loop {
        let report = fleet(&app).await;
        let done = |role: &str| -> u64 {
            report["processes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["roles"].as_array().unwrap().iter().any(|r| r == role))
                .map(|p| p["done_last_minute"].as_u64().unwrap())
                .sum()
        };
        if done("ai-worker") > 0 && done("dispatcher") > 0 && done("gateway") > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{report}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The same from the command line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["fleet", "--json"])
        .env("SWITCHBOARD__DATABASE__URL", &app.config.database.url)
        .env("SWITCHBOARD__AMQP__NAMESPACE", &app.config.amqp.namespace)
        .env(
            "SWITCHBOARD__AMQP__QUEUE_EXPIRES_MS",
            app.config.amqp.queue_expires_ms.to_string(),
        )
        .env("SWITCHBOARD__AMQP__RETRY_DELAYS_MS", "[200,500]")
        .env("SWITCHBOARD__LOG__FILTER", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(roles(&cli), roles(&report));

    // An AI worker killed outright stops beating and drops out within seconds; the other
    // is told to add one.
    let mut dead = workers.remove(0);
    dead.0.kill().unwrap();
    dead.0.wait().unwrap();
    wait_roles(
        &app,
        &[
            ("gateway", 1),
            ("ai-worker", 1),
            ("dispatcher", 2),
            ("listener", 1),
        ],
    )
    .await;
    drop(workers);
    let report = wait_roles(&app, &[("gateway", 1), ("dispatcher", 2), ("listener", 1)]).await;
    assert!(
        report["hints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str().unwrap().contains("no ai-worker is running")),
        "{:?}",
        report["hints"]
    );
}
