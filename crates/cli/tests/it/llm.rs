//! The OpenAI-compatible provider end to end through the web chat, against a fake server
//! that answers each scripted case.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::helpers::{TestApp, by_role, test_config};

const WAIT: Duration = Duration::from_secs(20);

pub(crate) async fn app_with_llm(fake: &FakeLlm) -> TestApp {
    let mut config = test_config();
    config.llm.timeout_ms = 1000;
    config.llm.max_retries = 1;
    app_on(fake, config, switchboard::Parts::ALL).await
}

/// The app with `parts`, its demo tenant drafting with the fake.
async fn app_on(
    fake: &FakeLlm,
    config: switchboard_runtime::Config,
    parts: switchboard::Parts,
) -> TestApp {
    let app = TestApp::spawn_with(config, parts).await;
    sqlx::query("INSERT INTO llm_settings (tenant_id, provider, base_url, model) SELECT id, 'openai', $1, 'fake-model' FROM tenants")
        .bind(&fake.base_url)
        .execute(&app.pool)
        .await
        .unwrap();
    app
}

/// Sends the tenant's LLM calls to `fake`, once the app has seeded what its script needs.
pub(crate) async fn point_at(app: &TestApp, fake: &FakeLlm) {
    sqlx::query("UPDATE llm_settings SET base_url = $1")
        .bind(&fake.base_url)
        .execute(&app.pool)
        .await
        .unwrap();
}

pub(crate) async fn shipping_ref(app: &TestApp) -> (String, String) {
    sqlx::query_as(
        "SELECT 'doc:' || id::text, body FROM knowledge_docs WHERE title = 'Shipping and delivery'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

fn draft(reply: &str, intent: &str, score: f64, sources: &[&str]) -> Scripted {
    Scripted::json(json!({
        "reply": reply, "intent": intent, "intent_score": score, "questions_to_ask": [],
        "used_sources": sources, "missing_fields": [], "need_handoff": false
    }))
}

pub(crate) fn check(score: f64) -> Scripted {
    Scripted::json(
        json!({"self_check_score": score, "reasons": ["checked"], "need_handoff": false}),
    )
}

/// Waits for the suggestion and returns (decision, explanations, provider).
async fn suggestion(app: &TestApp) -> (String, Value, String) {
    let start = std::time::Instant::now();
    loop {
        let row: Option<(String, Value, String)> =
            sqlx::query_as("SELECT decision, explanations, provider FROM ai_suggestions")
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if let Some(r) = row {
            return r;
        }
        assert!(start.elapsed() < WAIT, "no suggestion was made");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_good_answer_is_sent_and_its_tokens_counted() {
    let fake = FakeLlm::start(vec![]).await;
    let app = app_with_llm(&fake).await;
    let (doc, body) = shipping_ref(&app).await;
    // The script needs the document id, which exists only once the app has seeded.
    let fake = FakeLlm::start(vec![draft(&body, "shipping", 0.9, &[&doc]), check(0.95)]).await;
    point_at(&app, &fake).await;

    app.post_chat("l1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    let t = app
        .wait_transcript("l1-visitor-7f3a9c2e", WAIT, |t| {
            !by_role(t, "assistant").is_empty()
        })
        .await;
    assert_eq!(by_role(&t, "assistant")[0]["text"], body.as_str());
    let (decision, _, provider) = suggestion(&app).await;
    assert_eq!(
        (decision.as_str(), provider.as_str()),
        ("AUTO_SEND", "openai")
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one draft call and one self-check call");
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("Demo Shop") && system.contains("ISO code en") && system.contains(&doc),
        "{system}"
    );
    assert_eq!(requests[0]["model"], "fake-model");
    assert_eq!(requests[0]["response_format"]["type"], "json_schema");
    let (tokens_in, tokens_out, calls): (i64, i64, i64) = sqlx::query_as(
        "SELECT tokens_in, tokens_out, requests FROM usage WHERE provider = 'openai'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((tokens_in, tokens_out, calls), (200, 40, 2));
}

#[tokio::test]
async fn the_models_reading_of_a_lead_is_captured_with_its_draft() {
    let fake = FakeLlm::start(vec![]).await;
    let app = app_with_llm(&fake).await;
    let (doc, body) = shipping_ref(&app).await;
    // Nothing a pattern catches ("Kim here", "the bakery on Main Street"): only the model
    // reads it, and its empty fields capture nothing.
    let mut answer = json!({
        "reply": body, "intent": "shipping", "intent_score": 0.9, "questions_to_ask": [],
        "used_sources": [doc], "missing_fields": [], "need_handoff": false, "choices": [],
        "lead": {"name": "Kim", "email": "", "phone": "", "company": "Bakery on Main Street",
                 "interest": "shipping to Berlin"}
    });
    let fake = FakeLlm::start(vec![Scripted::json(answer.take()), check(0.95)]).await;
    point_at(&app, &fake).await;
    let text = "Kim here, I run the bakery on Main Street. Do you ship to Berlin?";
    app.post_chat("l9-visitor-7f3a9c2e", "c1", text).await;
    app.handled("l9-visitor-7f3a9c2e:c1", 1).await;
    app.settled().await;
    let lead: Value = sqlx::query_scalar("SELECT lead FROM customers")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        lead,
        json!({"name": "Kim", "company": "Bakery on Main Street", "interest": "shipping to Berlin"})
    );
}

#[tokio::test]
async fn offered_choices_stay_in_the_web_chat_transcript() {
    let fake = FakeLlm::start(vec![]).await;
    let app = app_with_llm(&fake).await;
    let (doc, body) = shipping_ref(&app).await;
    let answer = json!({
        "reply": body, "intent": "shipping", "intent_score": 0.9, "questions_to_ask": [],
        "used_sources": [doc], "missing_fields": [], "need_handoff": false,
        "choices": ["Germany", "Rest of the EU"]
    });
    let fake = FakeLlm::start(vec![Scripted::json(answer), check(0.95)]).await;
    point_at(&app, &fake).await;
    let visitor = "l8-visitor-7f3a9c2e";
    app.post_chat(visitor, "c1", "Do you ship to Berlin?").await;
    app.wait_transcript(visitor, WAIT, |t| !by_role(t, "assistant").is_empty())
        .await;
    // Read again as a reloaded widget would: the offer is part of the message.
    let t = app.transcript(visitor).await;
    let reply = by_role(&t, "assistant")[0];
    assert_eq!(
        reply["choices"],
        json!(["Germany", "Rest of the EU"]),
        "{t:#?}"
    );
    assert!(
        by_role(&t, "customer")[0].get("choices").is_none(),
        "a message that offered nothing carries no choices"
    );
}

#[tokio::test]
async fn a_low_confidence_answer_is_not_sent() {
    let fake = FakeLlm::start(vec![
        draft("Maybe next week?", "other", 0.3, &[]),
        check(0.2),
    ])
    .await;
    let app = app_with_llm(&fake).await;
    app.post_chat("l2-visitor-7f3a9c2e", "c1", "When will my order arrive?")
        .await;
    let (decision, explanations, _) = suggestion(&app).await;
    assert_eq!(decision, "ESCALATE");
    assert!(
        explanations.to_string().contains("below t_escalate"),
        "{explanations}"
    );
    app.handled("l2-visitor-7f3a9c2e:c1", 1).await;
    app.settled().await;
    let t = app.transcript("l2-visitor-7f3a9c2e").await;
    assert!(
        by_role(&t, "assistant")
            .iter()
            .all(|m| m["text"] != "Maybe next week?")
    );
}

#[tokio::test]
async fn a_forced_handoff_intent_escalates() {
    let fake = FakeLlm::start(vec![
        draft("Sorry about that!", "complaint", 0.95, &[]),
        check(0.9),
    ])
    .await;
    let app = app_with_llm(&fake).await;
    app.post_chat("l3-visitor-7f3a9c2e", "c1", "You sent the wrong colour")
        .await;
    let (decision, explanations, _) = suggestion(&app).await;
    assert_eq!(decision, "ESCALATE");
    assert!(explanations.to_string().contains("complaint"));
}

/// Each failure must escalate with its reason, and only the holding message goes out.
async fn escalates_with(script: Vec<Scripted>, reason: &str) -> FakeLlm {
    let fake = FakeLlm::start(script).await;
    let app = app_with_llm(&fake).await;
    app.post_chat("lf-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    let (decision, explanations, _) = suggestion(&app).await;
    assert_eq!(decision, "ESCALATE");
    assert!(explanations.to_string().contains(reason), "{explanations}");
    assert!(
        !explanations.to_string().contains("scripted failure"),
        "the provider's error body is not shown: {explanations}"
    );
    let t = app
        .wait_transcript("lf-visitor-7f3a9c2e", WAIT, |t| {
            !by_role(t, "assistant").is_empty()
        })
        .await;
    let holding: String = sqlx::query_scalar("SELECT holding_message FROM tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(by_role(&t, "assistant").len(), 1);
    assert_eq!(by_role(&t, "assistant")[0]["text"], holding.as_str());
    fake
}

/// A tenant may not point drafting at the platform's own network (the metadata service,
/// an admin port): its URL is refused before any call, unless the platform allows it.
#[tokio::test]
async fn a_tenant_llm_url_on_the_private_network_is_refused() {
    let fake = FakeLlm::start(vec![]).await;
    let mut config = test_config();
    config.security.allow_private_llm_urls = false;
    let app = app_on(&fake, config, switchboard::Parts::ALL).await;
    app.post_chat("ls-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    let (decision, explanations, _) = suggestion(&app).await;
    assert_eq!(decision, "ESCALATE");
    assert!(
        explanations
            .to_string()
            .contains("private address (127.0.0.1)"),
        "{explanations}"
    );
    app.settled().await;
    assert!(
        fake.requests().is_empty(),
        "no call reached the private address"
    );
}

#[tokio::test]
async fn malformed_json_escalates() {
    escalates_with(vec![Scripted::content("Sure! {not json")], "does not parse").await;
}

#[tokio::test]
async fn an_out_of_range_score_escalates() {
    escalates_with(
        vec![draft("We ship.", "shipping", 6.0, &[])],
        "intent_score 6",
    )
    .await;
}

#[tokio::test]
async fn a_slow_answer_times_out_and_escalates() {
    let mut slow = draft("late", "shipping", 0.9, &[]);
    slow.delay = Duration::from_secs(3);
    escalates_with(vec![slow], "did not answer").await;
}

#[tokio::test]
async fn a_server_error_escalates_after_the_retries() {
    let fake = escalates_with(vec![Scripted::error(500)], "HTTP 500").await;
    assert_eq!(fake.requests().len(), 2, "the first call and one retry");
}

#[tokio::test]
async fn a_429_is_retried_then_succeeds() {
    let fake = FakeLlm::start(vec![]).await;
    let app = app_with_llm(&fake).await;
    let (doc, body) = shipping_ref(&app).await;
    let mut limited = Scripted::error(429);
    limited.retry_after = Some(1);
    let fake = FakeLlm::start(vec![
        limited,
        draft(&body, "shipping", 0.9, &[&doc]),
        check(0.95),
    ])
    .await;
    point_at(&app, &fake).await;
    app.post_chat("l4-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    let t = app
        .wait_transcript("l4-visitor-7f3a9c2e", WAIT, |t| {
            !by_role(t, "assistant").is_empty()
        })
        .await;
    assert_eq!(by_role(&t, "assistant")[0]["text"], body.as_str());
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn an_invented_price_is_not_sent_on_its_own() {
    let fake = FakeLlm::start(vec![]).await;
    let app = app_with_llm(&fake).await;
    let (doc, _) = shipping_ref(&app).await;
    // The model cites the right document but makes the price up, and rates itself highly.
    let fake = FakeLlm::start(vec![
        draft(
            "Shipping to Berlin costs 1.99 EUR.",
            "shipping",
            0.95,
            &[&doc],
        ),
        check(1.0),
    ])
    .await;
    point_at(&app, &fake).await;
    app.post_chat(
        "l5-visitor-7f3a9c2e",
        "c1",
        "How much is shipping to Berlin?",
    )
    .await;
    let (decision, _, _) = suggestion(&app).await;
    assert_ne!(decision, "AUTO_SEND");
    let reasons: Value = sqlx::query_scalar("SELECT explanations FROM ai_suggestions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(reasons.to_string().contains("self-check 0.00"), "{reasons}");
}

#[tokio::test]
async fn tenant_llm_settings_keep_the_api_key_encrypted() {
    use base64::Engine;
    let fake = FakeLlm::start(vec![Scripted::content("not json")]).await;
    let mut config = test_config();
    config.admin.api_token = "test-admin-token".into();
    config.security.master_key = String::new();
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    let url = format!("{}/api/v1/admin/tenants/demo/settings", app.base);
    let doc = json!({"llm": {"provider": "openai", "base_url": fake.base_url, "api_key": "sk-test-123", "model": "m"}});
    // Without a master key, a key is refused rather than stored in the clear.
    let r = app
        .http
        .put(&url)
        .bearer_auth("test-admin-token")
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("MASTER_KEY"));
    drop(app);

    let mut config = test_config();
    config.admin.api_token = "test-admin-token".into();
    config.security.master_key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    let url = format!("{}/api/v1/admin/tenants/demo/settings", app.base);
    let r = app
        .http
        .put(&url)
        .bearer_auth("test-admin-token")
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let back: Value = r.json().await.unwrap();
    assert_eq!(back["llm"]["api_key"], "***");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT api_key FROM llm_settings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("sk-test-123"));
    let audit: Value =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'settings.update'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!audit.to_string().contains("sk-test-123"));

    app.post_chat("k1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    suggestion(&app).await;
    assert_eq!(fake.auth()[0].as_deref(), Some("Bearer sk-test-123"));
}

/// A tenant admin who points drafting at a server of their own must not receive the
/// platform's API key there.
#[tokio::test]
async fn the_platform_key_never_goes_to_a_tenants_own_server() {
    let fake = FakeLlm::start(vec![Scripted::content("not json")]).await;
    let mut config = test_config();
    config.llm.api_key = Some("sk-platform".into());
    let app = app_on(&fake, config, switchboard::Parts::ALL).await;
    app.post_chat("p1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    suggestion(&app).await;
    let auth = fake.auth();
    assert!(!auth.is_empty(), "the tenant's server was called");
    assert!(auth.iter().all(Option::is_none), "{auth:?}");
}

/// Waits until `n` drafts wait for an operator and returns the newest one's id.
async fn pending(app: &TestApp, n: i64) -> uuid::Uuid {
    app.wait_count(
        "SELECT count(*) FROM ai_suggestions WHERE status = 'pending'",
        n,
    )
    .await;
    sqlx::query_scalar(
        "SELECT id FROM ai_suggestions WHERE status = 'pending' ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn operators_verdicts_guide_the_next_similar_draft() {
    let fake = FakeLlm::start(vec![]).await;
    let app = app_with_llm(&fake).await;
    app.exec("UPDATE decision_settings SET autosend_allowed = false")
        .await;
    let (doc, body) = shipping_ref(&app).await;
    let fake = FakeLlm::start(vec![
        draft(&body, "shipping", 0.9, &[&doc]),
        check(0.95),
        draft("We ship to Bern tomorrow.", "shipping", 0.9, &[&doc]),
        check(0.95),
        draft(&body, "shipping", 0.9, &[&doc]),
        check(0.95),
    ])
    .await;
    point_at(&app, &fake).await;
    let op = crate::operators::operator(&app).await;

    app.post_chat("x1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    let first = pending(&app, 1).await;
    let (status, _) = op
        .post(
            &format!("/api/v1/suggestions/{first}/approve"),
            json!({"text": "Yes, DHL brings it to Berlin in 2 days."}),
        )
        .await;
    assert!(status.is_success());
    app.post_chat("x2-visitor-7f3a9c2e", "c1", "Do you ship to Bern?")
        .await;
    let second = pending(&app, 1).await;
    assert_ne!(first, second);
    let (status, _) = op
        .post(
            &format!("/api/v1/suggestions/{second}/reject"),
            json!({"reason": "we do not ship to Switzerland"}),
        )
        .await;
    assert!(status.is_success());
    app.post_chat(
        "x3-visitor-7f3a9c2e",
        "c1",
        "Can you ship to Berlin or Bern?",
    )
    .await;
    pending(&app, 1).await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 6);
    let system = |i: usize| {
        requests[i]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(!system(0).contains("operators approved"), "{}", system(0));
    let third = system(4);
    assert!(
        third.contains("approved reply: Yes, DHL brings it to Berlin in 2 days."),
        "{third}"
    );
    assert!(
        third.contains(
            "rejected draft: We ship to Bern tomorrow.\n  reason: we do not ship to Switzerland"
        ),
        "{third}"
    );
}

/// A worker stopping with a draft under way hands the conversation back at once, rather
/// than leaving it leased until the lease would run out.
#[tokio::test]
async fn a_stopping_worker_hands_back_its_unfinished_drafts() {
    let mut slow = draft("Yes.", "shipping", 0.9, &[]);
    slow.delay = Duration::from_secs(30);
    let fake = FakeLlm::start(vec![slow]).await;
    let mut config = test_config();
    config.llm.timeout_ms = 60_000;
    config.llm.max_retries = 0;
    let parts = switchboard::Parts {
        ai_worker: false,
        ..switchboard::Parts::ALL
    };
    let app = app_on(&fake, config, parts).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(switchboard_ai_worker::run(
        app.services.clone(),
        stop.clone(),
    ));
    app.post_chat("s1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    app.wait_count(
        "SELECT count(*) FROM pending_drafts WHERE lease IS NOT NULL",
        1,
    )
    .await;
    fake.wait_called().await;
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(
        app.count(
            "SELECT count(*) FROM pending_drafts WHERE lease IS NULL AND leased_until IS NULL"
        )
        .await,
        1,
        "handed back, due again"
    );
    assert_eq!(app.count("SELECT count(*) FROM ai_suggestions").await, 0);
}

/// A draft holds a short lease that its live worker keeps renewing, however slow the LLM:
/// a worker that dies leaves the conversation to another within the short lease, not
/// after the longest draft the LLM settings allow.
#[tokio::test]
async fn a_slow_draft_keeps_a_short_lease_alive() {
    let mut slow = draft("Yes.", "shipping", 0.9, &[]);
    slow.delay = Duration::from_secs(60);
    let fake = FakeLlm::start(vec![slow]).await;
    let mut config = test_config();
    config.llm.timeout_ms = 120_000;
    config.llm.max_retries = 0;
    let app = app_on(&fake, config, switchboard::Parts::ALL).await;
    app.post_chat("r1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    fake.wait_called().await;
    let left = || {
        sqlx::query_scalar::<_, f64>(
            "SELECT EXTRACT(EPOCH FROM leased_until - clock_timestamp())::float8 FROM pending_drafts",
        )
        .fetch_one(&app.pool)
    };
    let first = left().await.unwrap();
    assert!(first <= 30.5, "a short lease: {first} s");
    // Renewed while the LLM still thinks: the lease ends later than it first did.
    let until = || {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
            "SELECT leased_until FROM pending_drafts",
        )
        .fetch_one(&app.pool)
    };
    let initial = until().await.unwrap();
    let start = std::time::Instant::now();
    loop {
        if until().await.unwrap() > initial {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "the lease was never renewed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(left().await.unwrap() <= 30.5);
    assert_eq!(app.count("SELECT count(*) FROM ai_suggestions").await, 0);
}
