//! The console in a real browser (Debian's headless Chromium, driven by playwright-core):
//! an operator signs in, opens the waiting draft, pages back through a long history, edits
//! the draft and sends it, and the customer's web chat shows exactly the edited text; and
//! the customer's own web chat page. Screenshots land in target/artifacts/.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use switchboard_store::Role;

use crate::helpers::{TestApp, by_role};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Installs Chromium and playwright-core the first time (`.ci/setup-browser`).
async fn browser_tools() {
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let script = repo().join(".ci/setup-browser");
            let out =
                tokio::task::spawn_blocking(move || Command::new("bash").arg(script).output())
                    .await
                    .unwrap()
                    .unwrap();
            assert!(
                out.status.success(),
                "installing the browser test's tools failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
        .await;
}

/// Runs tests/browser/approve.mjs against the app; panics with its output if it fails.
async fn approve_in_browser(
    app: &TestApp,
    email: &str,
    edited: &str,
    viewport: &str,
    all_messages: Option<i64>,
) -> PathBuf {
    browser_tools().await;
    let artifacts = repo().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join(format!("console-approve-{viewport}.png"));
    let _ = std::fs::remove_file(&shot);
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/browser/approve.mjs"))
        .env("CONSOLE_URL", format!("{}/console", app.base))
        .env("EMAIL", email)
        .env("PASSWORD", "correct horse battery")
        .env("EDITED_TEXT", edited)
        .env("SCREENSHOT", &shot)
        .env("VIEWPORT", viewport);
    if let Some(n) = all_messages {
        cmd.env("ALL_MESSAGES", n.to_string());
    }
    // Blocking here would starve the app, which runs on this test's runtime.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.exists(), "no screenshot at {}", shot.display());
    shot
}

#[tokio::test]
async fn an_operator_edits_and_sends_a_draft_from_the_console() {
    let app = TestApp::spawn().await;
    app.exec("UPDATE decision_settings SET autosend_allowed = false")
        .await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    app.services
        .store
        .add_user(
            demo,
            "mia@demo.example",
            Role::Operator,
            "correct horse battery",
        )
        .await
        .unwrap();

    for (visitor, viewport, edited) in [
        (
            "b1-visitor-7f3a9c2e",
            "laptop",
            "Yes — we ship to Berlin within 2 days. Mia",
        ),
        (
            "b2-visitor-7f3a9c2e",
            "phone",
            "Hi! Berlin is 2 days away for us. Mia, on my phone",
        ),
    ] {
        let pending = app
            .count("SELECT count(*) FROM ai_suggestions WHERE status = 'pending'")
            .await;
        app.post_chat(visitor, "c1", "Do you ship to Berlin?").await;
        app.wait_count(
            "SELECT count(*) FROM ai_suggestions WHERE status = 'pending'",
            pending + 1,
        )
        .await;
        // The laptop's conversation has a long history: more than one page of it.
        let all_messages = if viewport == "laptop" {
            app.exec(&format!(
                "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, role, content, created_at)
                 SELECT gen_random_uuid(), c.tenant_id, c.id, c.channel_id, 'customer',
                        'earlier message ' || i, now() - interval '1 day' + i * interval '1 second'
                 FROM conversations c JOIN customers cu ON cu.id = c.customer_id,
                      generate_series(1, 260) i
                 WHERE cu.external_id = '{visitor}'"
            ))
            .await;
            Some(261)
        } else {
            None
        };
        approve_in_browser(&app, "mia@demo.example", edited, viewport, all_messages).await;
        let t = app
            .wait_transcript(visitor, Duration::from_secs(15), |t| {
                by_role(t, "operator").len() == 1
            })
            .await;
        assert_eq!(by_role(&t, "operator")[0]["text"], edited);
        assert!(
            by_role(&t, "assistant").is_empty(),
            "only the edited text went out"
        );
    }
}

/// An admin's day in Chromium: an escalated conversation is answered with the admin's own
/// text (no one-click approval of the suggestion), the shop's name changes in the settings
/// and nothing else does (a merge patch), and a product's price and stock are edited in
/// the catalogue.
#[tokio::test]
async fn an_admin_answers_an_escalation_and_edits_the_settings_the_catalogue_and_the_accounts() {
    let app = TestApp::spawn().await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    app.services
        .store
        .add_user(
            demo,
            "owner@demo.example",
            Role::Owner,
            "correct horse battery",
        )
        .await
        .unwrap();
    let visitor = "c9-visitor-7f3a9c2e";
    app.post_chat(visitor, "c1", "This is unacceptable, I want to complain")
        .await;
    app.wait_count(
        "SELECT count(*) FROM escalation_events WHERE status = 'pending'",
        1,
    )
    .await;
    let conversation: uuid::Uuid =
        sqlx::query_scalar("SELECT conversation_id FROM escalation_events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let before: serde_json::Value =
        serde_json::to_value(app.services.store.settings_doc(demo).await.unwrap()).unwrap();

    browser_tools().await;
    let artifacts = repo().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let answer = "I am very sorry. I have refunded your order in full. Mia";
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/browser/shop.mjs"))
        .env("CONSOLE_URL", format!("{}/console", app.base))
        .env("EMAIL", "owner@demo.example")
        .env("PASSWORD", "correct horse battery")
        .env("CONVERSATION_ID", conversation.to_string())
        .env("ANSWER", answer)
        .env("SHOP_NAME", "Demo Shop Berlin")
        .env("SKU", "MUG-01")
        .env("PRICE", "12.50")
        .env("STOCK", "7")
        .env("NEW_USER", "new.operator@demo.example")
        .env("DELETE_SKU", "TEE-03")
        .env("LEAD_NAME", "Sam Angry")
        .env("SCREENSHOT", artifacts.join("console-shop.png"));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let t = app
        .wait_transcript(visitor, Duration::from_secs(15), |t| {
            by_role(t, "operator").len() == 1
        })
        .await;
    assert_eq!(by_role(&t, "operator")[0]["text"], answer);
    assert_eq!(
        app.count("SELECT count(*) FROM escalation_events WHERE status = 'handled'")
            .await,
        1
    );
    let after = serde_json::to_value(app.services.store.settings_doc(demo).await.unwrap()).unwrap();
    assert_eq!(after["profile"]["name"], "Demo Shop Berlin");
    let mut expected = before.clone();
    expected["profile"]["name"] = "Demo Shop Berlin".into();
    assert_eq!(after, expected, "only the name changed");
    let mug = app.services.store.product(demo, "MUG-01").await.unwrap();
    assert_eq!((mug.price.as_str(), mug.stock), ("12.50", 7));
    assert_eq!(
        mug.name, "Ceramic coffee mug",
        "the rest of the product kept"
    );
    assert!(
        app.services.store.product(demo, "TEE-03").await.is_err(),
        "the deleted product is gone"
    );
    let lead: serde_json::Value = sqlx::query_scalar(
        "SELECT cu.lead FROM customers cu JOIN conversations c ON c.customer_id = cu.id
         WHERE c.id = $1",
    )
    .bind(conversation)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        lead,
        serde_json::json!({"name": "Sam Angry"}),
        "corrected in the console"
    );
    let added = app
        .services
        .store
        .account_by_email(demo, "new.operator@demo.example")
        .await
        .unwrap();
    assert_eq!((added.role, added.disabled), (Role::Operator, true));
    assert_eq!(
        app.count("SELECT count(*) FROM knowledge_docs WHERE title = 'Do you gift wrap?'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_customers_web_chat_welcomes_labels_and_keeps_its_choices() {
    use crate::fake_llm::{FakeLlm, Scripted};
    use crate::llm::{app_with_llm, check, point_at, shipping_ref};
    let fake = FakeLlm::start(vec![]).await;
    let app = app_with_llm(&fake).await;
    let (doc, body) = shipping_ref(&app).await;
    let answer = serde_json::json!({
        "reply": body, "intent": "shipping", "intent_score": 0.9, "questions_to_ask": [],
        "used_sources": [doc], "missing_fields": [], "need_handoff": false,
        "choices": ["Germany", "Rest of the EU"]
    });
    let fake = FakeLlm::start(vec![Scripted::json(answer), check(0.95)]).await;
    point_at(&app, &fake).await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    let welcome = "Hi! Ask us about shipping, returns or our mugs.";
    app.services
        .store
        .apply_settings(
            demo,
            &serde_json::json!({"webchat": {"welcome_message": welcome}}),
            switchboard_store::Write::Merge,
            "test",
            None,
        )
        .await
        .unwrap();

    browser_tools().await;
    let artifacts = repo().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/browser/widget.mjs"))
        .env("CHAT_URL", format!("{}/chat/demo", app.base))
        .env("WELCOME", welcome)
        .env("QUESTION", "Do you ship to Berlin?")
        .env("CHOICE", "Germany")
        .env("SCREENSHOT", artifacts.join("widget.png"));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.wait_count(
        "SELECT count(*) FROM messages WHERE role = 'customer' AND content = 'Germany'",
        1,
    )
    .await;
}
