//! The admin settings API and what the settings do to the next message.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, test_config};

const TOKEN: &str = "test-admin-token";

async fn app() -> TestApp {
    let mut config = test_config();
    config.admin.api_token = TOKEN.into();
    TestApp::spawn_with(config, switchboard::Parts::ALL).await
}

fn url(app: &TestApp) -> String {
    format!("{}/api/v1/admin/tenants/demo/settings", app.base)
}

async fn put(app: &TestApp, doc: Value) -> (StatusCode, Value) {
    let r = app
        .http
        .put(url(app))
        .bearer_auth(TOKEN)
        .json(&doc)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn decision_for(app: &TestApp, visitor: &str) -> (String, Option<String>) {
    app.post_chat(visitor, "c1", "Do you ship to Berlin?").await;
    for _ in 0..150 {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT s.decision, s.autosend_block_reason FROM ai_suggestions s
             JOIN conversations c ON c.id = s.conversation_id JOIN customers cu ON cu.id = c.customer_id
             WHERE cu.external_id = $1",
        )
        .bind(visitor)
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if let Some(r) = row {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no decision");
}

#[tokio::test]
async fn settings_need_the_admin_token() {
    let app = app().await;
    assert_eq!(
        app.http.get(url(&app)).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = app
        .http
        .get(url(&app))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .http
        .get(url(&app))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The scheme's name is case-insensitive.
    let lower = app
        .http
        .get(url(&app))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["decision"]["t_auto"], 0.75);
    assert_eq!(doc["human_delay"]["night_mode"], "DELAY");
}

#[tokio::test]
async fn invalid_settings_are_refused_with_the_reason() {
    let app = app().await;
    let (status, body) = put(
        &app,
        json!({"decision": {"t_auto": 0.3, "t_escalate": 0.5}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("t_escalate < t_auto"),
        "{body}"
    );
    let (status, body) = put(
        &app,
        json!({"decision": {"weights": {"similarity": 0.5, "intent": 0.5, "self_check": 0.5}}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("sum to 1"),
        "{body}"
    );
    let (status, body) = put(&app, json!({"flags": {"AUTOPILOT": true}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("AUTOPILOT"),
        "{body}"
    );
    let (status, body) = put(&app, json!({"conversation": {"default_mode": "auto", "debounce_quiet_ms": 9000, "debounce_cap_ms": 8000}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = put(&app, json!({"decison": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'settings.update'")
            .await,
        0
    );
}

#[tokio::test]
async fn settings_change_the_next_decision() {
    let app = app().await;
    let (status, doc) = put(&app, json!({"flags": {"AI_AUTOSEND_ENABLED": false}})).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["flags"]["AI_AUTOSEND_ENABLED"], false);
    assert_eq!(
        decision_for(&app, "a1-visitor-7f3a9c2e").await,
        ("NEED_APPROVAL".into(), Some("FLAG_OFF".into()))
    );

    put(
        &app,
        json!({"flags": {"AI_AUTOSEND_ENABLED": null}, "decision": {"autosend_allowed": false}}),
    )
    .await;
    assert_eq!(
        decision_for(&app, "a2-visitor-7f3a9c2e").await,
        ("NEED_APPROVAL".into(), Some("SETTING_OFF".into()))
    );

    put(&app, json!({"decision": {"autosend_allowed": true, "t_auto": 0.75}, "policies": {"always_escalate_intents": ["shipping"], "forbidden_topics": []}})).await;
    assert_eq!(
        decision_for(&app, "a3-visitor-7f3a9c2e").await.0,
        "ESCALATE"
    );

    // A global flag applies where the tenant has none of its own.
    put(
        &app,
        json!({"policies": {"always_escalate_intents": [], "forbidden_topics": []}}),
    )
    .await;
    app.services
        .store
        .set_flag(None, "CHANNEL_WEBCHAT_ENABLED", Some(false))
        .await
        .unwrap();
    assert_eq!(
        decision_for(&app, "a4-visitor-7f3a9c2e").await,
        ("NEED_APPROVAL".into(), Some("FLAG_OFF".into()))
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'settings.update'")
            .await,
        4
    );
}

/// An admin token short enough to guess leaves the admin API off.
#[tokio::test]
async fn a_short_admin_token_leaves_the_admin_api_off() {
    let mut config = test_config();
    config.admin.api_token = "short".into();
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    let r = app
        .http
        .get(url(&app))
        .bearer_auth("short")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("16 characters"));
}

/// Guessing the admin token is capped per address: ten wrong tokens in the window, then
/// 429 even for the right one, from that address. Attempts sent at once are counted
/// before any token is compared, so a burst gets no more comparisons than the cap.
#[tokio::test]
async fn admin_token_guesses_are_capped_per_address() {
    let app = app().await;
    let guess = |token: String| app.http.get(url(&app)).bearer_auth(token).send();
    let answers =
        futures::future::join_all((0..25).map(|i| guess(format!("wrong-token-{i:04}")))).await;
    let statuses: Vec<StatusCode> = answers.into_iter().map(|r| r.unwrap().status()).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        15
    );
    assert_eq!(
        guess(TOKEN.into()).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address waits, whatever it sends"
    );
}

/// The platform admin creates a shop through the API: it has a web-chat channel and the
/// default settings (nothing of the demo shop), the change is audited, a taken slug is
/// 409, a bad field 400 with the reason; disabled, its chat answers 404 and nothing more
/// is drafted; enabled again, it answers.
#[tokio::test]
async fn tenants_are_created_listed_disabled_and_enabled_through_the_admin_api() {
    let app = app().await;
    let tenants = format!("{}/api/v1/admin/tenants", app.base);
    let post = |body: Value| {
        app.http
            .post(&tenants)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let r = post(
        json!({"slug": "lamps", "name": "Lamp Lane", "language": "de-DE",
                         "timezone": "Europe/Vienna", "currency": "chf"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["slug"], "lamps");
    assert_eq!(created["language"], "de");
    assert_eq!(created["currency"], "CHF");
    assert_eq!(created["status"], "active");
    assert_eq!(created["channels"], 1);

    let r = post(json!({"slug": "lamps", "name": "Again"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = post(json!({"slug": "x", "name": "X", "timezone": "Mars/Olympus"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Mars/Olympus"));
    let r = app
        .http
        .post(&tenants)
        .json(&json!({"slug": "y", "name": "Y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let listed: Value = app
        .http
        .get(&tenants)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert!(
        slugs.contains(&"demo") && slugs.contains(&"lamps"),
        "{slugs:?}"
    );
    let lamps = app.services.store.tenant_id("lamps").await.unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT (SELECT count(*) FROM knowledge_docs WHERE tenant_id = '{lamps}')
                  + (SELECT count(*) FROM products WHERE tenant_id = '{lamps}')"
        ))
        .await,
        0,
        "nothing of the demo shop"
    );
    let settings: Value = app
        .http
        .get(format!("{tenants}/lamps/settings"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        settings["decision"]["autosend_allowed"], false,
        "the safe default"
    );

    let chat = format!("{}/api/webchat/lamps/messages", app.base);
    let say = |visitor: &str, text: &str| {
        app.http
            .post(&chat)
            .json(&json!({"visitor_id": visitor, "client_message_id": text, "text": text}))
            .send()
    };
    assert_eq!(
        say("l1-visitor-7f3a9c2e", "Hallo?").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    app.wait_count(
        &format!("SELECT count(*) FROM ai_suggestions WHERE tenant_id = '{lamps}'"),
        1,
    )
    .await;

    let r = app
        .http
        .post(format!("{tenants}/lamps/disable"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "disabled");
    assert_eq!(
        say("l2-visitor-7f3a9c2e", "Hallo?").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.http
            .get(format!("{}/chat/lamps", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    app.settled().await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM ai_suggestions WHERE tenant_id = '{lamps}'"
        ))
        .await,
        1,
        "nothing more drafted"
    );

    let r = app
        .http
        .post(format!("{tenants}/lamps/enable"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "active");
    assert_eq!(
        say("l3-visitor-7f3a9c2e", "Hallo?").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    app.wait_count(
        &format!("SELECT count(*) FROM ai_suggestions WHERE tenant_id = '{lamps}'"),
        2,
    )
    .await;
    let actions: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT action FROM audit_events WHERE tenant_id = '{lamps}' AND action LIKE 'tenant.%' ORDER BY created_at"
    ))
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        ["tenant.create", "tenant.disable", "tenant.enable"]
    );
}

/// A write changes only the fields it gives (a JSON merge patch): raising `t_auto` keeps
/// the shop's auto-send on (it once reset it), `null` removes an optional field, the audit
/// event lists exactly what changed, a write that changes nothing writes nothing, and only
/// `?replace=true` replaces a section whole. The profile and working
/// hours are settings too; the widget shows the shop's name.
#[tokio::test]
async fn a_settings_write_is_a_merge_patch_with_its_changes_audited() {
    let app = app().await;
    let audited = || async {
        sqlx::query_scalar::<_, Value>(
            "SELECT details->'changes' FROM audit_events WHERE action = 'settings.update'
             ORDER BY created_at",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap()
    };
    let (status, doc) = put(&app, json!({"decision": {"t_auto": 0.8}})).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["decision"]["t_auto"], 0.8);
    assert_eq!(doc["decision"]["autosend_allowed"], true, "untouched");
    assert_eq!(
        audited().await,
        [json!([{"op": "replace", "path": "/decision/t_auto", "value": 0.8}])]
    );

    let r = app
        .http
        .patch(url(&app))
        .bearer_auth(TOKEN)
        .json(&json!({
            "profile": {"name": "Lamp <Lane>", "language": "de", "search_language": "german",
                        "holding_message": null, "escalation_contacts": ["boss@lamps.example"]},
            "working_hours": {"timezone": "Europe/Vienna", "days": [1, 2, 3, 4, 5, 6],
                              "start": "08:00:00", "end": "20:00:00"},
            "llm": {"timeout_ms": 20000, "max_retries": 1}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["profile"]["name"], "Lamp <Lane>");
    assert_eq!(doc["profile"]["currency"], "EUR", "untouched");
    assert!(doc["profile"]["holding_message"].is_null(), "removed");
    assert_eq!(doc["working_hours"]["timezone"], "Europe/Vienna");
    assert_eq!(doc["llm"]["timeout_ms"], 20000);
    let settings = app
        .services
        .store
        .tenant_settings(app.services.store.tenant_id("demo").await.unwrap())
        .await
        .unwrap();
    assert_eq!(settings.language, "de");
    assert_eq!(settings.working_hours.days, [1, 2, 3, 4, 5, 6]);
    assert_eq!(settings.llm.timeout_ms, Some(20000));
    let page = app
        .http
        .get(format!("{}/chat/demo", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<h1>Lamp &lt;Lane&gt;</h1>"),
        "escaped name in the header"
    );
    assert!(page.contains(r#"<html lang="de">"#));
    let changes = audited().await;
    let paths: Vec<&str> = changes[1]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    for p in [
        "/profile/name",
        "/profile/language",
        "/profile/search_language",
        "/profile/holding_message",
        "/working_hours/timezone",
        "/llm/timeout_ms",
    ] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }

    // Writing back what was read changes nothing and writes nothing.
    let (status, _) = put(&app, doc.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audited().await.len(), 2);

    // Only an explicit replace resets what it leaves out to the defaults.
    let r = app
        .http
        .put(format!("{}?replace=true", url(&app)))
        .bearer_auth(TOKEN)
        .json(&json!({"decision": {"t_auto": 0.7}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let replaced: Value = r.json().await.unwrap();
    assert_eq!(replaced["decision"]["t_auto"], 0.7);
    assert_eq!(replaced["decision"]["autosend_allowed"], false);
    assert_eq!(
        replaced["profile"], doc["profile"],
        "other sections untouched"
    );

    // A whole section cannot be removed.
    let (status, err) = put(&app, json!({"llm": null})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("llm"), "{err}");

    // A flag set for the tenant, then removed with null: the global value applies again.
    let (_, doc) = put(&app, json!({"flags": {"RAG_ENABLED": false}})).await;
    assert_eq!(doc["flags"]["RAG_ENABLED"], false);
    let (_, doc) = put(&app, json!({"flags": {"RAG_ENABLED": null}})).await;
    assert!(doc["flags"].get("RAG_ENABLED").is_none(), "{doc}");
}
