//! The operator API against the real app: sign-in, tenant scoping, roles, approvals,
//! escalations, the lifecycle, dead letters, live events, and approval from Telegram.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::ChannelKind;
use switchboard_store::Role;
use uuid::Uuid;

use crate::helpers::{TestApp, by_role, test_config};
use crate::platforms::{SECRET, post_tg, telegram_channel};
use switchboard_fakes::FakePlatform;

// Generous: a loaded CI machine runs two suites of these at once; a pass takes a few seconds.
const WAIT: Duration = Duration::from_secs(30);
pub(crate) const PASSWORD: &str = "correct horse battery";

/// A signed-in API client.
pub(crate) struct Api<'a> {
    app: &'a TestApp,
    pub(crate) token: String,
}

impl Api<'_> {
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .app
            .http
            .get(format!("{}{path}", self.app.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .app
            .http
            .request(method, format!("{}{path}", self.app.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .app
            .http
            .post(format!("{}{path}", self.app.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }
}

async fn tenant(app: &TestApp, slug: &str) -> Uuid {
    app.services.store.tenant_id(slug).await.unwrap()
}

/// A second tenant with its own web chat.
pub(crate) async fn other_tenant(app: &TestApp) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, 'other', 'Other Shop')")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.services
        .store
        .create_channel(id, ChannelKind::Webchat, "web", &json!({}), None)
        .await
        .unwrap();
    id
}

pub(crate) async fn sign_in<'a>(
    app: &'a TestApp,
    tenant: Uuid,
    email: &str,
    role: Role,
) -> Api<'a> {
    app.services
        .store
        .add_user(tenant, email, role, PASSWORD)
        .await
        .unwrap();
    let res = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    Api {
        app,
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

pub(crate) async fn operator(app: &TestApp) -> Api<'_> {
    sign_in(
        app,
        tenant(app, "demo").await,
        "op@demo.example",
        Role::Operator,
    )
    .await
}

/// Every draft waits for an operator.
pub(crate) async fn approvals_only(app: &TestApp) {
    app.exec("UPDATE decision_settings SET autosend_allowed = false")
        .await;
}

/// A customer's question and the id of the pending draft that answers it.
async fn pending_draft(app: &TestApp, visitor: &str, text: &str) -> Uuid {
    let before = app
        .count("SELECT count(*) FROM ai_suggestions WHERE status = 'pending'")
        .await;
    app.post_chat(visitor, &Uuid::new_v4().to_string(), text)
        .await;
    app.wait_count(
        "SELECT count(*) FROM ai_suggestions WHERE status = 'pending'",
        before + 1,
    )
    .await;
    sqlx::query_scalar(
        "SELECT s.id FROM ai_suggestions s JOIN conversations c ON c.id = s.conversation_id
         JOIN customers cu ON cu.id = c.customer_id
         WHERE s.status = 'pending' AND cu.external_id = $1",
    )
    .bind(visitor)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn conversation_of(app: &TestApp, suggestion: Uuid) -> Uuid {
    sqlx::query_scalar("SELECT conversation_id FROM ai_suggestions WHERE id = $1")
        .bind(suggestion)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Twenty operators approve one draft at once, each with an edit of their own: one edit
/// goes out, once, and every one of them is told which text that was.
#[tokio::test]
async fn concurrent_approvals_with_different_edits_all_learn_the_text_sent() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let op = operator(&app).await;
    let id = pending_draft(&app, "e20-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let path = format!("/api/v1/suggestions/{id}/approve");
    let answers = futures::future::join_all((0..20).map(|i| {
        op.post(
            &path,
            json!({ "text": format!("We ship to Berlin. (edit {i})") }),
        )
    }))
    .await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{answers:?}"
    );
    let first: Vec<_> = answers
        .iter()
        .filter(|(_, b)| b["already"] == false)
        .collect();
    assert_eq!(first.len(), 1, "one approval queues the send");
    let sent = first[0].1["text"].as_str().unwrap().to_owned();
    assert!(
        answers.iter().all(|(_, b)| b["text"] == sent.as_str()),
        "every answer names the text that goes out: {answers:?}"
    );
    app.settled().await;
    let t = app.transcript("e20-visitor-7f3a9c2e").await;
    let ops = by_role(&t, "operator");
    assert_eq!(ops.len(), 1, "sent once: {t:#?}");
    assert_eq!(ops[0]["text"], sent.as_str());
}

#[tokio::test]
async fn the_inbox_filters_find_what_operators_wait_on() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let op = operator(&app).await;
    let draft = pending_draft(&app, "f1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let waiting = conversation_of(&app, draft).await;
    let rejected = pending_draft(&app, "f2-visitor-7f3a9c2e", "How much is the coffee mug?").await;
    let (status, _) = op
        .post(
            &format!("/api/v1/suggestions/{rejected}/reject"),
            json!({"reason": "wrong price"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.post_chat(
        "f3-visitor-7f3a9c2e",
        "c1",
        "This is unacceptable, I want to complain",
    )
    .await;
    app.wait_count("SELECT count(*) FROM escalation_events", 1)
        .await;
    app.settled().await;
    let escalated: Uuid = sqlx::query_scalar("SELECT conversation_id FROM escalation_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let ids = |inbox: &Value| -> BTreeSet<String> {
        inbox["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let set = |list: &[Uuid]| -> BTreeSet<String> { list.iter().map(Uuid::to_string).collect() };
    let (_, all) = op.get("/api/v1/conversations").await;
    assert_eq!(ids(&all).len(), 3);
    let (_, drafts) = op.get("/api/v1/conversations?status=draft_waiting").await;
    assert_eq!(ids(&drafts), set(&[waiting]), "only the draft to approve");
    let (_, wait) = op
        .get("/api/v1/conversations?status=waiting_operator")
        .await;
    assert_eq!(
        ids(&wait),
        set(&[waiting, escalated]),
        "a draft to approve and an escalation; not the conversation whose draft was rejected"
    );
    let (_, esc) = op.get("/api/v1/conversations?status=escalated").await;
    assert_eq!(ids(&esc), set(&[escalated]));
    let (status, err) = op.get("/api/v1/conversations?status=escalatd").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
}

#[tokio::test]
async fn a_customer_whose_answer_waits_for_approval_is_told_once() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let admin = sign_in(
        &app,
        tenant(&app, "demo").await,
        "admin@demo.example",
        Role::Admin,
    )
    .await;
    let checking = "Danke! Wir prüfen das und melden uns gleich.";
    let (status, doc) = admin
        .send(
            reqwest::Method::PATCH,
            "/api/v1/settings",
            Some(json!({"operators": {"checking_after_minutes": 3, "checking_message": checking}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(
        doc["operators"]["approval_ttl_minutes"], 1440,
        "the rest kept"
    );
    let (status, err) = admin
        .send(
            reqwest::Method::PATCH,
            "/api/v1/settings",
            Some(json!({"operators": {"checking_message": " "}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    // Told only while the shop works: here, always.
    app.exec(
        "UPDATE tenants SET working_hours_start = '00:00', working_hours_end = '23:59:59',
                working_days = '{1,2,3,4,5,6,7}'",
    )
    .await;
    let visitor = "k1-visitor-7f3a9c2e";
    let waiting = pending_draft(&app, visitor, "Do you ship to Berlin?").await;
    let fresh = pending_draft(&app, "k2-visitor-7f3a9c2e", "How much is the coffee mug?").await;
    // The first draft has waited past the tenant's time; the second has not.
    app.exec(&format!(
        "UPDATE ai_suggestions SET created_at = now() - interval '4 minutes' WHERE id = '{waiting}'"
    ))
    .await;
    let t = app
        .wait_transcript(visitor, WAIT, |t| !by_role(t, "assistant").is_empty())
        .await;
    assert_eq!(by_role(&t, "assistant")[0]["text"], checking);
    app.settled().await;
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE idempotency_key LIKE 'checking:%'")
            .await,
        1,
        "once, and only for the draft that waited"
    );
    let still: String = sqlx::query_scalar("SELECT status FROM ai_suggestions WHERE id = $1")
        .bind(waiting)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(still, "pending", "the draft still waits for its operator");
    assert!(
        by_role(&app.transcript("k2-visitor-7f3a9c2e").await, "assistant").is_empty(),
        "{fresh} has not waited long enough"
    );

    // A conversation an operator took over is not told, however long its draft waited.
    let conv = conversation_of(&app, fresh).await;
    let (status, _) = admin
        .post(&format!("/api/v1/conversations/{conv}/takeover"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.exec(&format!(
        "UPDATE ai_suggestions SET created_at = now() - interval '4 minutes', status = 'pending'
         WHERE id = '{fresh}'"
    ))
    .await;
    let queued = app.services.store.queue_checking_messages().await.unwrap();
    assert!(queued.is_empty(), "{queued:?}");
}

#[tokio::test]
async fn approve_with_edit_delivers_exactly_the_edited_text_once() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let op = operator(&app).await;
    let id = pending_draft(&app, "e1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;

    let (status, list) = op.get("/api/v1/suggestions?status=pending").await;
    assert_eq!(status, StatusCode::OK);
    let s = &list["suggestions"][0];
    assert_eq!(s["id"], id.to_string());
    assert_eq!(s["customer_text"], "Do you ship to Berlin?");
    assert_eq!(s["decision"], "NEED_APPROVAL");
    assert_eq!(s["autosend_block_reason"], "SETTING_OFF");
    assert!(s["confidence"].as_f64().unwrap() > 0.0);
    assert!(!s["used_sources"].as_array().unwrap().is_empty());
    assert!(!s["explanations"].as_array().unwrap().is_empty());

    // A double click, and a late third click: one send, of exactly the edited text.
    let edited = "Yes, we ship to Berlin in 2-3 days. — Mia";
    let path = format!("/api/v1/suggestions/{id}/approve");
    let body = json!({ "text": edited });
    let (a, b) = tokio::join!(op.post(&path, body.clone()), op.post(&path, body.clone()));
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        [a.1["already"].as_bool(), b.1["already"].as_bool()]
            .iter()
            .filter(|x| **x == Some(false))
            .count(),
        1,
        "exactly one approval queues the send: {a:?} {b:?}"
    );
    assert_eq!(a.1["text"], edited);
    assert_eq!(a.1["status"], "edited");
    let t = app
        .wait_transcript("e1-visitor-7f3a9c2e", WAIT, |t| {
            by_role(t, "operator").len() == 1
        })
        .await;
    assert_eq!(by_role(&t, "operator")[0]["text"], edited);
    let (status, third) = op.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(third["already"], true);
    app.settled().await;
    let t = app.transcript("e1-visitor-7f3a9c2e").await;
    assert_eq!(by_role(&t, "operator").len(), 1, "sent once: {t:#?}");
    assert!(
        by_role(&t, "assistant").is_empty(),
        "the draft itself never went out"
    );

    // Kept as a training sample and audited with its actor.
    let sample: (String, String, Option<String>, String) = sqlx::query_as(
        "SELECT customer_message, draft, final_text, outcome FROM training_samples WHERE suggestion_id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(sample.0, "Do you ship to Berlin?");
    assert_eq!(sample.2.as_deref(), Some(edited));
    assert_eq!(sample.3, "edited");
    assert_ne!(sample.1, edited);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events a JOIN users u ON u.id::text = a.actor_id WHERE a.action = 'edit' AND a.actor_type = 'user'")
            .await,
        1
    );
    let (_, msgs) = op
        .get(&format!(
            "/api/v1/conversations/{}/messages",
            conversation_of(&app, id).await
        ))
        .await;
    let sent = msgs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "operator")
        .unwrap();
    assert_eq!(sent["decision"], "NEED_APPROVAL");
    assert_eq!(sent["suggestion_id"], id.to_string());
}

#[tokio::test]
async fn approve_reject_and_the_drafts_that_can_no_longer_go_out() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let op = operator(&app).await;

    // Approved unchanged: the draft goes out as the assistant's message.
    let first = pending_draft(&app, "r1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let draft: String = sqlx::query_scalar("SELECT draft FROM ai_suggestions WHERE id = $1")
        .bind(first)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, a) = op
        .post(&format!("/api/v1/suggestions/{first}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "approved");
    let t = app
        .wait_transcript("r1-visitor-7f3a9c2e", WAIT, |t| {
            by_role(t, "assistant").len() == 1
        })
        .await;
    assert_eq!(by_role(&t, "assistant")[0]["text"], draft.as_str());

    // The customer writes again before the next draft is approved: it is superseded.
    let old = pending_draft(&app, "r2-visitor-7f3a9c2e", "How much is the coffee mug?").await;
    app.post_chat("r2-visitor-7f3a9c2e", "c2", "And do you ship to Paris?")
        .await;
    app.wait_count(
        &format!(
            "SELECT count(*) FROM ai_suggestions WHERE id = '{old}' AND status = 'superseded'"
        ),
        1,
    )
    .await;
    app.wait_count(
        "SELECT count(*) FROM ai_suggestions WHERE status = 'pending'",
        1,
    )
    .await;
    let newer: Uuid = sqlx::query_scalar("SELECT id FROM ai_suggestions WHERE status = 'pending'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, e) = op
        .post(&format!("/api/v1/suggestions/{old}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(e["error"].as_str().unwrap().contains("superseded"), "{e}");

    // Rejected with a reason, then approving it is a conflict.
    let (status, r) = op
        .post(
            &format!("/api/v1/suggestions/{newer}/reject"),
            json!({"reason": "wrong price"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "rejected");
    let (status, e) = op
        .post(&format!("/api/v1/suggestions/{newer}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(e["error"].as_str().unwrap().contains("rejected"), "{e}");
    assert_eq!(
        app.count("SELECT count(*) FROM training_samples WHERE outcome = 'rejected' AND reason = 'wrong price'")
            .await,
        1
    );

    // Past the tenant's approval TTL: 409 at approval time...
    let late = pending_draft(&app, "r3-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    sqlx::query("UPDATE ai_suggestions SET created_at = now() - interval '2 days' WHERE id = $1")
        .bind(late)
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, e) = op
        .post(&format!("/api/v1/suggestions/{late}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(e["error"].as_str().unwrap().contains("expired"), "{e}");

    // ...and the dispatcher's sweep expires the rest without anyone asking.
    let (_, settings) = op.get("/api/v1/settings").await;
    assert_eq!(settings["operators"]["approval_ttl_minutes"], 1440);
    let swept = pending_draft(&app, "r4-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    sqlx::query("UPDATE ai_suggestions SET created_at = now() - interval '25 hours' WHERE id = $1")
        .bind(swept)
        .execute(&app.pool)
        .await
        .unwrap();
    app.wait_count(
        &format!("SELECT count(*) FROM ai_suggestions WHERE id = '{swept}' AND status = 'expired'"),
        1,
    )
    .await;
    assert!(by_role(&app.transcript("r4-visitor-7f3a9c2e").await, "assistant").is_empty());
}

#[tokio::test]
async fn operator_messages_takeover_and_the_lifecycle() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let op = operator(&app).await;
    let draft = pending_draft(&app, "l1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let conv = conversation_of(&app, draft).await;
    let at = |action: &str| format!("/api/v1/conversations/{conv}/{action}");

    // The inbox shows it, with its waiting draft and unread message.
    let (_, inbox) = op.get("/api/v1/conversations?channel=webchat").await;
    let row = &inbox["conversations"][0];
    assert_eq!(row["id"], conv.to_string());
    assert_eq!(row["pending_suggestions"], 1);
    assert_eq!(row["unread_count"], 1);
    let (_, none) = op.get("/api/v1/conversations?status=closed").await;
    assert!(none["conversations"].as_array().unwrap().is_empty());
    let (_, found) = op.get("/api/v1/conversations?q=berlin").await;
    assert_eq!(found["conversations"].as_array().unwrap().len(), 1);
    let (_, one) = op.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(one["pending_suggestion"]["id"], draft.to_string());
    assert_eq!(
        one["actions"],
        json!(["takeover", "resolve", "close"]),
        "only the moves the lifecycle allows"
    );
    let sources = one["pending_suggestion"]["sources"].as_array().unwrap();
    assert!(!sources.is_empty(), "{one}");
    for source in sources {
        let title = source["title"].as_str().unwrap_or_default();
        assert!(
            !title.is_empty() && !title.starts_with("doc:"),
            "a source by its title: {source}"
        );
    }

    // Writing to the customer takes over: the draft is dropped and the bot stays quiet.
    let (status, _) = op
        .post(
            &at("messages"),
            json!({"text": "Hi, Mia here. Let me check."}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.wait_transcript("l1-visitor-7f3a9c2e", WAIT, |t| {
        by_role(t, "operator").len() == 1
    })
    .await;
    let (_, one) = op.get(&format!("/api/v1/conversations/{conv}")).await;
    assert!(one["takeover_until"].is_string(), "{one}");
    assert!(one["pending_suggestion"].is_null());
    assert_eq!(
        one["actions"],
        json!(["takeover", "release", "resolve", "close"]),
        "held, so it can be released"
    );
    app.post_chat("l1-visitor-7f3a9c2e", "c2", "Thanks! And to Paris?")
        .await;
    app.handled("l1-visitor-7f3a9c2e:c2", 1).await;
    app.settled().await;
    assert_eq!(
        app.count("SELECT count(*) FROM ai_suggestions WHERE status = 'pending'")
            .await,
        0,
        "the bot drafts nothing during a takeover"
    );

    // Release, resolve, reopen, close; then every move out of closed is refused.
    for action in ["release", "resolve", "reopen", "close"] {
        let (status, body) = op.post(&at(action), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let (_, one) = op.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(one["status"], "closed");
    assert_eq!(
        one["actions"],
        json!([]),
        "closed is final: nothing is offered"
    );
    for action in ["reopen", "resolve", "takeover", "close", "release"] {
        let (status, body) = op.post(&at(action), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert!(body["error"].is_string());
    }
    let (status, _) = op.post(&at("messages"), json!({"text": "hello?"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE target_id = '{conv}' AND actor_type = 'user'"
        ))
        .await
            >= 5
    );
}

/// A conversation has one open escalation at a time: escalating again while one is open
/// adds to it (the newest summary) without a second holding message; an operator's reply
/// to the customer handles it, and so does resolving the conversation.
#[tokio::test]
async fn one_open_escalation_per_conversation_and_a_reply_handles_it() {
    let app = TestApp::spawn().await;
    let op = operator(&app).await;
    let visitor = "e1-visitor-7f3a9c2e";
    let holding = "SELECT count(*) FROM outbox WHERE idempotency_key LIKE 'holding:%'";
    app.post_chat(visitor, "c1", "This is unacceptable, I want to complain")
        .await;
    app.wait_count("SELECT count(*) FROM escalation_events", 1)
        .await;
    assert_eq!(app.count(holding).await, 1);
    // The bot speaks again while the escalation is still open (as after a takeover ran out).
    app.exec("UPDATE conversations SET status = 'active'").await;
    app.post_chat(
        visitor,
        "c2",
        "Still waiting. This is a complaint about my order!",
    )
    .await;
    app.wait_count(
        "SELECT count(*) FROM ai_suggestions WHERE decision = 'ESCALATE'",
        2,
    )
    .await;
    app.settled().await;
    assert_eq!(
        app.count("SELECT count(*) FROM escalation_events").await,
        1,
        "one open escalation"
    );
    let summary: String = sqlx::query_scalar("SELECT summary FROM escalation_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(summary.contains("Still waiting"), "{summary}");
    assert_eq!(app.count(holding).await, 1, "no second holding message");

    let conv: Uuid = sqlx::query_scalar("SELECT id FROM conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // A hand-over without a draft (a mail too large to read) joins the open one too.
    let open: Uuid = sqlx::query_scalar("SELECT id FROM escalation_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let demo = tenant(&app, "demo").await;
    let joined = switchboard_flows::escalate_without_draft(
        &app.services.store,
        demo,
        conv,
        "oversized:test",
        "the mail is over the size limit",
        "read it in the mailbox",
    )
    .await
    .unwrap();
    assert_eq!(joined, (open, false));
    // Its suggested reply is not approved as it is.
    let escalated: Uuid = sqlx::query_scalar(
        "SELECT id FROM ai_suggestions WHERE decision = 'ESCALATE' AND status = 'pending'
         ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let (status, body) = op
        .post(
            &format!("/api/v1/suggestions/{escalated}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = op
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "I am so sorry. I am looking at your order now."}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, open) = op.get("/api/v1/escalations?status=pending").await;
    assert!(open["escalations"].as_array().unwrap().is_empty(), "{open}");
    let handled_by: Option<Uuid> = sqlx::query_scalar("SELECT handled_by FROM escalation_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(handled_by.is_some(), "handled by the operator who replied");

    // Released, the bot escalates again: a new one, which resolving handles.
    let (status, _) = op
        .post(&format!("/api/v1/conversations/{conv}/release"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.post_chat(
        visitor,
        "c3",
        "I want to complain again, this is unacceptable",
    )
    .await;
    app.wait_count(
        "SELECT count(*) FROM escalation_events WHERE status = 'pending'",
        1,
    )
    .await;
    let (status, _) = op
        .post(&format!("/api/v1/conversations/{conv}/resolve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.count("SELECT count(*) FROM escalation_events WHERE status = 'pending'")
            .await,
        0
    );
}

#[tokio::test]
async fn escalations_are_listed_handled_and_dismissed() {
    let app = TestApp::spawn().await;
    let op = operator(&app).await;
    app.post_chat(
        "x1-visitor-7f3a9c2e",
        "c1",
        "This is unacceptable, I want to complain",
    )
    .await;
    app.post_chat(
        "x2-visitor-7f3a9c2e",
        "c1",
        "I demand a discount, this is a complaint",
    )
    .await;
    app.wait_count(
        "SELECT count(*) FROM escalation_events WHERE status = 'pending'",
        2,
    )
    .await;
    let (_, list) = op.get("/api/v1/escalations?status=pending").await;
    let list = list["escalations"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert!(
        list[0]["summary"]
            .as_str()
            .unwrap()
            .contains("Customer wrote")
    );
    let (a, b) = (
        list[0]["id"].as_str().unwrap(),
        list[1]["id"].as_str().unwrap(),
    );

    let (status, h) = op
        .post(&format!("/api/v1/escalations/{a}/handle"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["status"], "handled");
    assert!(h["handled_by"].is_string());
    let (status, _) = op
        .post(&format!("/api/v1/escalations/{a}/handle"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "handling twice is the same as once");
    let (status, _) = op
        .post(&format!("/api/v1/escalations/{a}/dismiss"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, d) = op
        .post(&format!("/api/v1/escalations/{b}/dismiss"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["status"], "dismissed");
    let (_, left) = op.get("/api/v1/escalations?status=pending").await;
    assert!(left["escalations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_unhandled_escalation_is_announced_again_after_the_sla() {
    let app = TestApp::spawn().await;
    app.post_chat(
        "s1-visitor-7f3a9c2e",
        "c1",
        "This is unacceptable, I want to complain",
    )
    .await;
    app.wait_count("SELECT count(*) FROM escalation_events", 1)
        .await;
    assert_eq!(
        app.count("SELECT count(*) FROM escalation_events WHERE notify_count > 0")
            .await,
        0
    );
    app.exec("UPDATE escalation_events SET created_at = now() - interval '16 minutes'")
        .await;
    app.wait_count(
        "SELECT count(*) FROM escalation_events WHERE notify_count = 1 AND last_notified_at IS NOT NULL",
        1,
    )
    .await;
    // A later sweep ran: it announced a second escalation, overdue since before the first
    // was announced again, in the same statement that judged the first one again.
    // (Another conversation's: a conversation has one open escalation at a time.)
    app.post_chat(
        "s2-visitor-7f3a9c2e",
        "c1",
        "This is unacceptable, I want to complain",
    )
    .await;
    app.wait_count("SELECT count(*) FROM escalation_events", 2)
        .await;
    app.exec(
        "UPDATE escalation_events SET reason = 'sentinel', created_at = now() - interval '16 minutes'
         WHERE notify_count = 0",
    )
    .await;
    app.wait_count(
        "SELECT count(*) FROM escalation_events WHERE reason = 'sentinel' AND notify_count = 1",
        1,
    )
    .await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM escalation_events WHERE notify_count = 1 AND reason <> 'sentinel'"
        )
        .await,
        1,
        "announced again once per SLA period, not on every sweep"
    );
}

/// Every endpoint, with a path to a resource of the demo tenant.
fn endpoints(
    conv: Uuid,
    suggestion: Uuid,
    escalation: Uuid,
    dead: Uuid,
) -> Vec<(&'static str, String)> {
    let mut all = vec![
        ("GET", format!("/api/v1/conversations/{conv}")),
        ("GET", format!("/api/v1/conversations/{conv}/messages")),
        ("POST", format!("/api/v1/conversations/{conv}/messages")),
        ("GET", format!("/api/v1/suggestions/{suggestion}")),
        ("POST", format!("/api/v1/suggestions/{suggestion}/approve")),
        ("POST", format!("/api/v1/suggestions/{suggestion}/reject")),
        ("GET", format!("/api/v1/escalations/{escalation}")),
        ("POST", format!("/api/v1/escalations/{escalation}/handle")),
        ("POST", format!("/api/v1/escalations/{escalation}/dismiss")),
        ("POST", format!("/api/v1/dead-letters/{dead}/replay")),
    ];
    for a in ["takeover", "release", "resolve", "close", "reopen"] {
        all.push(("POST", format!("/api/v1/conversations/{conv}/{a}")));
    }
    all
}

async fn call(api: &Api<'_>, method: &str, path: &str) -> (StatusCode, Value) {
    if method == "GET" {
        api.get(path).await
    } else {
        api.post(path, json!({"text": "leak?", "reason": "leak?"}))
            .await
    }
}

#[tokio::test]
async fn another_tenant_sees_404_and_a_viewer_gets_403() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let demo = tenant(&app, "demo").await;
    let other = other_tenant(&app).await;
    let stranger = sign_in(&app, other, "boss@other.example", Role::Owner).await;
    let viewer = sign_in(&app, demo, "viewer@demo.example", Role::Viewer).await;

    let suggestion = pending_draft(&app, "t1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let conv = conversation_of(&app, suggestion).await;
    app.post_chat(
        "t2-visitor-7f3a9c2e",
        "c1",
        "This is unacceptable, I want to complain",
    )
    .await;
    app.wait_count("SELECT count(*) FROM escalation_events", 1)
        .await;
    let escalation: Uuid = sqlx::query_scalar("SELECT id FROM escalation_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let dead = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, conversation_id, channel_id, message_id, role, body,
                             idempotency_key, status, last_error)
         SELECT $1, tenant_id, id, channel_id, $2, 'assistant', 'secret text', 'dead-1', 'dead', 'gave up'
         FROM conversations WHERE id = $3",
    )
    .bind(dead)
    .bind(Uuid::now_v7())
    .bind(conv)
    .execute(&app.pool)
    .await
    .unwrap();

    for (method, path) in endpoints(conv, suggestion, escalation, dead) {
        let (status, body) = call(&stranger, method, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        let text = body.to_string();
        assert!(
            !text.contains("Berlin") && !text.contains("secret"),
            "{method} {path} leaked: {text}"
        );
    }
    for list in [
        "/api/v1/conversations",
        "/api/v1/suggestions",
        "/api/v1/escalations",
        "/api/v1/dead-letters",
    ] {
        let (status, body) = stranger.get(list).await;
        assert_eq!(status, StatusCode::OK);
        let items = body.as_object().unwrap().values().next().unwrap();
        assert!(
            items.as_array().unwrap().is_empty(),
            "{list} leaked: {body}"
        );
    }

    // A viewer reads everything and may do nothing.
    for (method, path) in endpoints(conv, suggestion, escalation, dead) {
        let (status, body) = call(&viewer, method, &path).await;
        let want = if method == "GET" {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(status, want, "{method} {path}: {body}");
    }
    let res = app
        .http
        .put(format!("{}/api/v1/settings", app.base))
        .bearer_auth(&viewer.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (status, _) = viewer
        .post(
            "/api/v1/users",
            json!({"email": "x@demo.example", "role": "owner", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing changed.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM ai_suggestions WHERE id = '{suggestion}' AND status = 'pending'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE status = 'dead'")
            .await,
        1
    );
}

#[tokio::test]
async fn sign_in_lockout_cookies_csrf_and_sign_out() {
    let app = TestApp::spawn().await;
    let demo = tenant(&app, "demo").await;
    app.services
        .store
        .add_user(demo, "locked@demo.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    let login = |email: &'static str, password: &'static str| {
        app.http
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    // Sign-ins made at once: each is counted before its password is checked, so no more
    // than the allowed attempts are tried and the burst locks the account; the right
    // password in the next burst does not clear the lock the wrong ones set. (Within one
    // burst, a right password admitted among the first attempts would sign in and start
    // the count afresh, which is what a correct sign-in is for: the bursts are apart so
    // that the test does not depend on the order the requests arrive in.)
    let burst = |right: bool| {
        let mut attempts: Vec<_> = (0..12)
            .map(|_| login("locked@demo.example", "wrong password"))
            .collect();
        if right {
            attempts.insert(6, login("locked@demo.example", PASSWORD));
        }
        futures::future::join_all(attempts)
    };
    for right in [false, true] {
        let answers: Vec<StatusCode> = burst(right)
            .await
            .into_iter()
            .map(|r| r.unwrap().status())
            .collect();
        assert!(
            answers.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
            "{answers:?}"
        );
    }
    let res = login("locked@demo.example", PASSWORD).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "locked even with the right password"
    );
    let locked = res.text().await.unwrap();
    // An unknown address answers exactly like a locked account: nobody learns which
    // addresses have accounts.
    let res = login("nobody@demo.example", PASSWORD).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.text().await.unwrap(), locked);
    let res = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The console's cookie session: reads need the cookie, changes need the CSRF token too.
    app.services
        .store
        .add_user(demo, "admin@demo.example", Role::Admin, PASSWORD)
        .await
        .unwrap();
    let res = login("admin@demo.example", PASSWORD).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("sb_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    let body: Value = res.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let cookie = session.split(';').next().unwrap().to_owned();
    let me = app
        .http
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let put = |csrf: Option<String>| {
        let mut req = app
            .http
            .put(format!("{}/api/v1/settings", app.base))
            .header("cookie", &cookie)
            .json(&json!({"operators": {"approval_ttl_minutes": 60, "takeover_minutes": 10, "escalation_sla_minutes": 5}}));
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        req.send()
    };
    assert_eq!(put(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        put(Some("forged".into())).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let ok = put(Some(csrf.clone())).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let doc: Value = ok.json().await.unwrap();
    assert_eq!(doc["operators"]["takeover_minutes"], 10);
    // Validation errors come back with the reason.
    let bad = app
        .http
        .put(format!("{}/api/v1/settings", app.base))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(
            &json!({"decision": {"t_auto": 0.3, "t_escalate": 0.5, "autosend_allowed": true,
            "intents_autosend_allowed": [], "intents_force_handoff": [],
            "weights": {"similarity": 0.45, "intent": 0.25, "self_check": 0.30},
            "penalties": {"source_conflict": 0.15, "missing_field": 0.10, "no_sources": 0.25}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("t_"));

    // Owners and admins add users through the API.
    let res = app
        .http
        .post(format!("{}/api/v1/users", app.base))
        .bearer_auth(body["token"].as_str().unwrap())
        .json(&json!({"email": "new@demo.example", "role": "operator", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        login("new@demo.example", PASSWORD).await.unwrap().status(),
        StatusCode::OK
    );

    let out = app
        .http
        .post(format!("{}/api/v1/auth/logout", app.base))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let me = app
        .http
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let stored: i64 = app
        .count("SELECT count(*) FROM users WHERE password_hash LIKE '$argon2id$%'")
        .await;
    assert_eq!(stored, 3);

    // Guessing across many accounts from one address is cut off too, for everyone there.
    let mut capped = false;
    for _ in 0..40 {
        let res = login("nobody@demo.example", "guess").await.unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.text().await.unwrap().contains("this address"));
            capped = true;
            break;
        }
        // Under the per-address request limit of the public endpoints.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(capped, "failed sign-ins per address are capped");
    let res = login("new@demo.example", PASSWORD).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Reads SSE data lines from `stream` until `until` holds for what was read, or the time is
/// up.
async fn read_events<B: AsRef<[u8]>, E>(
    mut stream: impl futures::Stream<Item = Result<B, E>> + Unpin,
    until: impl Fn(&str) -> bool,
) -> String {
    let mut seen = String::new();
    let _ = tokio::time::timeout(WAIT, async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(chunk.as_ref()));
            if until(&seen) {
                break;
            }
        }
    })
    .await;
    seen
}

#[tokio::test]
async fn the_event_stream_shows_only_the_callers_tenant() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let other = other_tenant(&app).await;
    let op = operator(&app).await;
    let stranger = sign_in(&app, other, "boss@other.example", Role::Owner).await;
    let open = |api: &Api<'_>| {
        app.http
            .get(format!("{}/api/v1/events", app.base))
            .bearer_auth(&api.token)
            .send()
    };
    let (mine, theirs) = (open(&op).await.unwrap(), open(&stranger).await.unwrap());
    assert_eq!(mine.status(), StatusCode::OK);
    let (mut mine, mut theirs) = (mine.bytes_stream(), theirs.bytes_stream());
    let demo = tenant(&app, "demo").await;
    app.live_ready(&format!("operators:{demo}"), &mut mine)
        .await;
    app.live_ready(&format!("operators:{other}"), &mut theirs)
        .await;

    // The other tenant's customer writes first, then ours.
    let res = app
        .http
        .post(format!("{}/api/webchat/other/messages", app.base))
        .json(&json!({"visitor_id": "o1-visitor-7f3a9c2e", "client_message_id": "c1", "text": "Hello other shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let theirs_seen = read_events(theirs, |s| s.contains("\"type\":\"message\"")).await;
    let suggestion = pending_draft(&app, "m1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let conv = conversation_of(&app, suggestion).await;
    let mine_seen = read_events(mine, |s| s.contains("\"type\":\"suggestion\"")).await;

    let other_conv: Uuid = sqlx::query_scalar("SELECT id FROM conversations WHERE tenant_id = $1")
        .bind(other)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        theirs_seen.contains(&other_conv.to_string()),
        "{theirs_seen}"
    );
    assert!(mine_seen.contains(&conv.to_string()), "{mine_seen}");
    assert!(mine_seen.contains("\"type\":\"message\""), "{mine_seen}");
    assert!(
        !mine_seen.contains(&other_conv.to_string()),
        "another tenant's event leaked: {mine_seen}"
    );
    assert!(!theirs_seen.contains(&conv.to_string()));
    let res = app
        .http
        .get(format!("{}/api/v1/events", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// A Telegram customer's draft, approved by `op`, which Telegram refuses for good: a
/// failed send in the outbox.
async fn fail_a_send(app: &TestApp, op: &Api<'_>, fake: &FakePlatform) {
    let channel = telegram_channel(app, fake).await;
    let update = json!({"update_id": 1, "message": {"message_id": 5, "date": 1_700_000_000,
        "text": "Do you ship to Berlin?", "from": {"id": 77, "is_bot": false, "first_name": "Ada"},
        "chat": {"id": 77, "type": "private", "first_name": "Ada"}}});
    assert_eq!(
        post_tg(app, channel, Some(SECRET), &update).await,
        StatusCode::OK
    );
    app.wait_count(
        "SELECT count(*) FROM ai_suggestions WHERE status = 'pending'",
        1,
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM ai_suggestions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    fake.script("sendmessage", 400, json!({"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"}));
    let (status, _) = op
        .post(&format!("/api/v1/suggestions/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.wait_count("SELECT count(*) FROM outbox WHERE status = 'failed'", 1)
        .await;
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_a_replay_really_sends() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let fake = FakePlatform::telegram().await;
    let op = operator(&app).await;
    // Telegram refuses the send for good: a dead letter, visible with its error.
    fail_a_send(&app, &op, &fake).await;
    let (_, dead) = op.get("/api/v1/dead-letters").await;
    let dead = dead["dead_letters"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("empty"),
        "{dead:?}"
    );

    let (status, _) = op
        .post(
            &format!(
                "/api/v1/dead-letters/{}/replay",
                dead[0]["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let sent = fake.wait_for("sendmessage", 2, WAIT).await;
    assert_eq!(sent[1].body["chat_id"], 77);
    app.wait_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 1)
        .await;
    let (_, dead) = op.get("/api/v1/dead-letters").await;
    assert!(dead["dead_letters"].as_array().unwrap().is_empty());
    let (status, _) = op
        .post(
            &format!("/api/v1/dead-letters/{}/replay", Uuid::now_v7()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A Telegram channel on a fake platform, whose chat `chat_id` is the demo shop's operators'
/// chat.
async fn telegram_operators_chat(app: &TestApp, chat_id: i64) -> FakePlatform {
    let fake = FakePlatform::telegram().await;
    telegram_channel(app, &fake).await;
    let demo = tenant(app, "demo").await;
    let settings =
        json!({"operators": {"telegram_channel": "telegram test", "telegram_chat_id": chat_id}});
    app.services
        .store
        .apply_settings(
            demo,
            &settings,
            switchboard_store::Write::Merge,
            "test",
            None,
        )
        .await
        .unwrap();
    fake
}

#[tokio::test]
async fn what_a_customer_adds_while_waiting_for_a_person_reaches_the_operators_chat() {
    const OPERATORS: i64 = -100_501;
    let app = TestApp::spawn().await;
    let fake = telegram_operators_chat(&app, OPERATORS).await;
    let visitor = "w1-visitor-7f3a9c2e";
    app.post_chat(visitor, "c1", "This is unacceptable, I want to complain")
        .await;
    let escalated = fake.wait_for("sendmessage", 1, WAIT).await;
    assert!(
        escalated[0].body["text"]
            .as_str()
            .unwrap()
            .contains("Escalated")
    );
    // The customer picks an answer (sent like typed text) while waiting.
    app.post_chat(visitor, "c2", "Rest of the EU").await;
    app.handled(&format!("{visitor}:c2"), 1).await;
    let notices = fake.wait_for("sendmessage", 2, WAIT).await;
    let forwarded = notices
        .iter()
        .find(|n| n.body["text"].as_str().unwrap().contains("Rest of the EU"))
        .expect("the pick is forwarded");
    assert_eq!(forwarded.body["chat_id"], OPERATORS);
    app.settled().await;
    assert_eq!(
        app.count("SELECT count(*) FROM operator_notifications WHERE message_id IS NOT NULL")
            .await,
        1,
        "once, for the message that came after the escalation"
    );
}

/// The notice to the operators' chat is leased, not locked: while the platform call hangs,
/// no transaction holds the row, and the notice is still posted and recorded once.
#[tokio::test]
async fn a_notice_holds_no_lock_while_the_platform_call_runs() {
    const OPERATORS: i64 = -100_502;
    let app = TestApp::spawn().await;
    let fake = telegram_operators_chat(&app, OPERATORS).await;
    fake.hold("sendmessage");
    app.post_chat(
        "w2-visitor-7f3a9c2e",
        "c1",
        "This is unacceptable, I want to complain",
    )
    .await;
    // The notice is at the platform, unanswered: the row is leased and not locked.
    fake.wait_for("sendmessage", 1, WAIT).await;
    assert_eq!(
        app.count("SELECT count(*) FROM operator_notifications WHERE leased_until > now()")
            .await,
        1
    );
    let mut tx = app.pool.begin().await.unwrap();
    let locked: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM operator_notifications FOR UPDATE NOWAIT")
            .fetch_all(&mut *tx)
            .await
            .expect("no transaction holds the notice's row during the call");
    assert_eq!(locked.len(), 1);
    tx.rollback().await.unwrap();
    fake.release("sendmessage");
    app.wait_count(
        "SELECT count(*) FROM operator_notifications
         WHERE status = 'sent' AND notice_message_id IS NOT NULL AND lease IS NULL",
        1,
    )
    .await;
    app.settled().await;
    assert_eq!(fake.requests("sendmessage").len(), 1);
}

#[tokio::test]
async fn approval_and_replies_from_the_operators_telegram_chat() {
    const OPERATORS: i64 = -100_500;
    // One delivery at a time, so that `inbound_drained` can tell the refused press is done.
    let mut config = test_config();
    config.amqp.prefetch = 1;
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    approvals_only(&app).await;
    let fake = FakePlatform::telegram().await;
    telegram_channel(&app, &fake).await;
    let demo = tenant(&app, "demo").await;
    let settings = json!({"operators": {"approval_ttl_minutes": 1440, "takeover_minutes": 30,
        "escalation_sla_minutes": 15, "telegram_channel": "telegram test", "telegram_chat_id": OPERATORS}});
    app.services
        .store
        .apply_settings(
            demo,
            &settings,
            switchboard_store::Write::Merge,
            "test",
            None,
        )
        .await
        .unwrap();
    let channel: Uuid = sqlx::query_scalar("SELECT id FROM channels WHERE kind = 'telegram'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.services
        .store
        .add_user(demo, "mia@demo.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    app.services
        .store
        .link_chat_account(
            demo,
            "mia@demo.example",
            switchboard_store::ChatPlatform::Telegram,
            4242,
        )
        .await
        .unwrap();

    // A draft needs approval: the operators' chat hears of it, with buttons.
    let first = pending_draft(&app, "g1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let notices = fake.wait_for("sendmessage", 1, WAIT).await;
    let notice = &notices[0].body;
    assert_eq!(notice["chat_id"], OPERATORS);
    assert!(
        notice["text"]
            .as_str()
            .unwrap()
            .contains("Do you ship to Berlin?")
    );
    assert!(notice["text"].as_str().unwrap().contains("confidence"));
    let buttons = notice["reply_markup"]["inline_keyboard"][0]
        .as_array()
        .unwrap();
    let data: Vec<&str> = buttons
        .iter()
        .map(|b| b["callback_data"].as_str().unwrap())
        .collect();
    assert_eq!(data, ["approve", "reject", "takeover"]);
    app.wait_count(
        "SELECT count(*) FROM operator_notifications WHERE notice_message_id IS NOT NULL",
        1,
    )
    .await;
    let message_id: i64 =
        sqlx::query_scalar("SELECT notice_message_id FROM operator_notifications")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let press = |update: i64, from: i64, data: &str, message: i64| {
        json!({"update_id": update, "callback_query": {"id": format!("cb-{update}"), "data": data,
            "from": {"id": from, "is_bot": false, "first_name": "Op"},
            "message": {"message_id": message, "date": 1, "chat": {"id": OPERATORS, "type": "supergroup", "title": "Ops"}, "text": "notice"}}})
    };

    // A stranger in the chat presses Approve: refused, nothing happens.
    assert_eq!(
        post_tg(
            &app,
            channel,
            Some(SECRET),
            &press(1, 999, "approve", message_id)
        )
        .await,
        StatusCode::OK
    );
    fake.wait_for("answercallbackquery", 1, WAIT).await;
    // The press left no trace: wait until the worker is past it.
    app.inbound_drained().await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM ai_suggestions WHERE id = '{first}' AND status = 'pending'"
        ))
        .await,
        1
    );
    assert!(fake.requests("editmessagetext").is_empty());

    // The linked operator presses Approve: the draft goes to the customer, and the notice
    // says who did it.
    assert_eq!(
        post_tg(
            &app,
            channel,
            Some(SECRET),
            &press(2, 4242, "approve", message_id)
        )
        .await,
        StatusCode::OK
    );
    let t = app
        .wait_transcript("g1-visitor-7f3a9c2e", WAIT, |t| {
            by_role(t, "assistant").len() == 1
        })
        .await;
    assert!(by_role(&t, "assistant")[0]["text"].as_str().unwrap().len() > 10);
    let edits = fake.wait_for("editmessagetext", 1, WAIT).await;
    assert_eq!(edits[0].body["message_id"], message_id);
    assert!(
        edits[0].body["text"]
            .as_str()
            .unwrap()
            .contains("Approved by mia@demo.example")
    );
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM human_actions h JOIN users u ON u.id = h.user_id WHERE h.suggestion_id = '{first}' AND u.telegram_user_id = 4242"))
            .await,
        1
    );

    // A reply to the next notice goes to the customer as the operator's own words.
    pending_draft(&app, "g2-visitor-7f3a9c2e", "How much is the coffee mug?").await;
    app.wait_count(
        "SELECT count(*) FROM operator_notifications WHERE notice_message_id IS NOT NULL",
        2,
    )
    .await;
    let second: i64 = sqlx::query_scalar(
        "SELECT notice_message_id FROM operator_notifications ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let reply = json!({"update_id": 3, "message": {"message_id": 9001, "date": 1_700_000_000,
        "text": "The mug is 12 EUR today, Mia here.",
        "from": {"id": 4242, "is_bot": false, "first_name": "Mia"},
        "chat": {"id": OPERATORS, "type": "supergroup", "title": "Ops"},
        "reply_to_message": {"message_id": second, "date": 1, "text": "notice",
            "from": {"id": 1, "is_bot": true, "first_name": "Shop", "username": "shop_bot"},
            "chat": {"id": OPERATORS, "type": "supergroup", "title": "Ops"}}}});
    assert_eq!(
        post_tg(&app, channel, Some(SECRET), &reply).await,
        StatusCode::OK
    );
    let t = app
        .wait_transcript("g2-visitor-7f3a9c2e", WAIT, |t| {
            by_role(t, "operator").len() == 1
        })
        .await;
    assert_eq!(
        by_role(&t, "operator")[0]["text"],
        "The mug is 12 EUR today, Mia here."
    );
    // The operators' chat is not a customer: nothing of it was stored as a conversation.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM customers WHERE external_id = '{OPERATORS}'"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn approved_sends_go_out_at_once_unless_the_tenant_wants_a_delay() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    app.exec(
        "INSERT INTO human_delay_settings (tenant_id, enabled, min_delay_ms, max_delay_ms)
         SELECT id, true, 3000, 3000 FROM tenants",
    )
    .await;
    let op = operator(&app).await;
    let due = |id: Uuid| {
        sqlx::query_scalar::<_, f64>(
            "SELECT extract(epoch FROM due_at - created_at)::float8 FROM outbox WHERE suggestion_id = $1",
        )
        .bind(id)
        .fetch_one(&app.pool)
    };
    let now = pending_draft(&app, "d1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    op.post(&format!("/api/v1/suggestions/{now}/approve"), json!({}))
        .await;
    assert!(due(now).await.unwrap() < 0.5, "no human delay by default");

    let (_, mut settings) = op.get("/api/v1/settings").await;
    let admin = sign_in(
        &app,
        tenant(&app, "demo").await,
        "admin@demo.example",
        Role::Admin,
    )
    .await;
    settings["operators"]["delay_approved_sends"] = json!(true);
    let res = app
        .http
        .put(format!("{}/api/v1/settings", app.base))
        .bearer_auth(&admin.token)
        .json(&json!({"operators": settings["operators"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let later = pending_draft(&app, "d2-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    op.post(&format!("/api/v1/suggestions/{later}/approve"), json!({}))
        .await;
    let waited = due(later).await.unwrap();
    assert!(
        (2.9..3.5).contains(&waited),
        "the tenant's delay applies: {waited}"
    );
}

/// A reply over Telegram's 4096 characters goes out in parts; when a later part fails, the
/// retry sends only what had not gone out.
#[tokio::test]
async fn a_long_reply_resumes_after_the_parts_that_went_out() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &json!({"update_id": 1, "message": {"message_id": 1, "date": 1_700_000_000,
            "chat": {"id": 300, "type": "private", "first_name": "Customer"},
            "from": {"id": 300, "is_bot": false, "first_name": "Customer"},
            "text": "Do you ship to Berlin?"}}),
    )
    .await;
    fake.wait_for("sendmessage", 1, WAIT).await;
    let conv: Uuid = sqlx::query_scalar("SELECT id FROM conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let text = format!(
        "{}{}",
        "We ship to Berlin. ".repeat(200),
        "Parcels take two days. ".repeat(100)
    );
    fake.script(
        "sendmessage",
        200,
        json!({"ok": true, "result": {"message_id": 77, "date": 1_700_000_000, "text": "…",
            "chat": {"id": 300, "type": "private", "first_name": "Customer"}}}),
    );
    fake.script(
        "sendmessage",
        429,
        json!({"ok": false, "error_code": 429,
        "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
    );
    let (status, _) = operator(&app)
        .await
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": text}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let sent = fake.wait_for("sendmessage", 4, WAIT).await;
    let parts: Vec<&str> = sent[1..]
        .iter()
        .map(|r| r.body["text"].as_str().unwrap())
        .collect();
    assert_ne!(parts[0], parts[1]);
    assert_eq!(
        parts[1], parts[2],
        "the retry sent only the part that failed"
    );
    assert_eq!(format!("{} {}", parts[0], parts[1]), text.trim());
    assert!(parts.iter().all(|p| p.encode_utf16().count() <= 4096));
    app.wait_count(
        "SELECT count(*) FROM messages WHERE role = 'operator' AND external_id = '300:77'",
        1,
    )
    .await;
    app.settled().await;
    assert_eq!(fake.requests("sendmessage").len(), 4, "nothing went twice");
}

/// The console's dead letters show the tenant's inbound jobs the workers gave up on (ids
/// and reasons, no text), and none of another tenant's.
#[tokio::test]
async fn the_console_lists_the_tenants_own_dead_inbound_jobs() {
    let app = TestApp::spawn().await;
    let op = operator(&app).await;
    let demo = tenant(&app, "demo").await;
    let channel = app.webchat_channel().await;
    for tenant in [demo, Uuid::now_v7()] {
        let env = json!({"v": 1, "kind": "no-such-kind", "trace_id": Uuid::now_v7(),
                         "tenant_id": tenant, "channel_id": channel, "payload": {"text": "secret"}});
        app.services
            .publisher
            .publish(switchboard_bus::INBOUND, env.to_string().as_bytes())
            .await
            .unwrap();
    }
    let start = std::time::Instant::now();
    while switchboard_bus::dead_letters(&app.config.amqp, switchboard_bus::INBOUND, 10)
        .await
        .unwrap()
        .len()
        < 2
    {
        assert!(start.elapsed() < WAIT, "the jobs never died");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = op.get("/api/v1/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    let inbound = body["inbound"].as_array().unwrap();
    assert_eq!(inbound.len(), 1, "only the demo shop's: {body}");
    assert!(
        inbound[0]["reason"].as_str().unwrap().contains("envelope"),
        "the worker's reason: {body}"
    );
    assert_eq!(inbound[0]["jobs"][0]["tenant_id"], demo.to_string());
    assert!(!body.to_string().contains("secret"), "no message text");
}

#[tokio::test]
async fn the_cli_lists_and_replays_failed_sends_and_dead_inbound_jobs() {
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let fake = FakePlatform::telegram().await;
    let op = operator(&app).await;
    fail_a_send(&app, &op, &fake).await;
    // A job no worker can read dies on the broker.
    app.services
        .publisher
        .publish(switchboard_bus::INBOUND, b"not an envelope")
        .await
        .unwrap();
    let mut inbound = vec![];
    for _ in 0..100 {
        inbound = switchboard_bus::dead_letters(&app.config.amqp, switchboard_bus::INBOUND, 10)
            .await
            .unwrap();
        if !inbound.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(inbound.len(), 1);

    let list = |args: &'static [&'static str]| {
        let config = app.config.clone();
        async move {
            let (ok, out, err) = crate::cli::switchboard(args, &config).await;
            assert!(ok, "{err}");
            serde_json::from_str::<Value>(&out).unwrap()
        }
    };
    let all = list(&["dlq", "list"]).await;
    assert_eq!(all["outbound"].as_array().unwrap().len(), 1, "{all}");
    let failed = &all["outbound"][0];
    assert!(failed["last_error"].as_str().unwrap().contains("empty"));
    assert_eq!(failed["channel"], "telegram");
    assert!(failed.get("text").is_none(), "no message text is printed");
    assert_eq!(all["inbound"].as_array().unwrap().len(), 1, "{all}");
    assert!(
        all["inbound"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unparsable envelope")
    );
    assert_eq!(all["inbound"][0]["jobs"][0]["unparsable"], true);
    // The unreadable job names no tenant, so the demo shop's list leaves it out.
    let demo = list(&["dlq", "list", "--tenant", "demo"]).await;
    assert_eq!(demo["outbound"].as_array().unwrap().len(), 1);
    assert!(demo["inbound"].as_array().unwrap().is_empty(), "{demo}");

    // Replayed from the command line, the send really goes out, audited as the admin's.
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    let (ok, out, err) = crate::cli::switchboard(&["dlq", "replay", &failed_id], &app.config).await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["replayed"],
        failed_id.as_str()
    );
    let sent = fake.wait_for("sendmessage", 2, WAIT).await;
    assert_eq!(sent[1].body["chat_id"], 77);
    app.wait_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 1)
        .await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE actor_type = 'admin' AND action = 'replay'"
        )
        .await,
        1
    );
    let (ok, _, err) = crate::cli::switchboard(&["dlq", "replay", &failed_id], &app.config).await;
    assert!(!ok && err.contains("not a dead letter"), "{err}");

    // The inbound job goes back on the work queue, and dies again for the same reason.
    let (ok, out, err) =
        crate::cli::switchboard(&["dlq", "replay", "--inbound"], &app.config).await;
    assert!(ok, "{err}");
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            done["replayed_messages"].as_u64(),
            done["replayed_jobs"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let (ok, _, err) = crate::cli::switchboard(&["dlq", "replay"], &app.config).await;
    assert!(!ok && err.contains("required"), "{err}");
}

async fn login(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let r = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// Users are a shop's own: another shop may add an address this one uses and learns
/// nothing by it, each account signs in to its own shop, and a password that opens
/// accounts in two shops must name the shop.
#[tokio::test]
async fn users_are_per_shop_and_tell_nothing_across_shops() {
    let app = TestApp::spawn().await;
    let demo = tenant(&app, "demo").await;
    let other = other_tenant(&app).await;
    let store = &app.services.store;
    let other_password = "another-long-passphrase-9";
    store
        .add_user(demo, "ada@shop.example", Role::Owner, PASSWORD)
        .await
        .unwrap();
    store
        .add_user(other, "ada@shop.example", Role::Operator, other_password)
        .await
        .expect("another shop adds the address without learning it is used");
    let again = store
        .add_user(demo, "ada@shop.example", Role::Viewer, PASSWORD)
        .await
        .unwrap_err();
    assert!(again.to_string().contains("this shop"), "{again}");

    let (status, body) = login(
        &app,
        json!({"email": "ada@shop.example", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["tenant_id"], demo.to_string());
    let (status, body) = login(
        &app,
        json!({"email": "ada@shop.example", "password": other_password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["tenant_id"], other.to_string());

    // One password for two shops' accounts: the shop must be named.
    store
        .add_user(demo, "bo@shop.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    store
        .add_user(other, "bo@shop.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    // Asked to choose, again and again: no account is locked by it.
    for _ in 0..6 {
        let (status, _) = login(
            &app,
            json!({"email": "bo@shop.example", "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
    // Signing in to one shop again and again does not count against the other's account.
    for _ in 0..6 {
        let (status, _) = login(
            &app,
            json!({"email": "ada@shop.example", "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE failed_logins > 0 OR locked_until IS NOT NULL")
            .await,
        0,
        "no account counts those sign-ins as failures"
    );
    let (status, body) = login(
        &app,
        json!({"email": "bo@shop.example", "password": PASSWORD, "tenant": "other"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["tenant_id"], other.to_string());
    for wrong in [
        json!({"email": "bo@shop.example", "password": "not-the-password-1"}),
        json!({"email": "bo@shop.example", "password": PASSWORD, "tenant": "no-such-shop"}),
    ] {
        assert_eq!(login(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
    }
}

/// Admins manage the shop's accounts: roles, disabling (sessions end, held conversations go
/// back to the shop), new passwords, removal (the address may be added again); admins
/// cannot touch owners, nobody disables themselves, the last owner stays, and everything is
/// audited.
#[tokio::test]
async fn admins_manage_the_shops_accounts_and_the_last_owner_stays() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    approvals_only(&app).await;
    let demo = tenant(&app, "demo").await;
    let other = other_tenant(&app).await;
    let owner = sign_in(&app, demo, "owner@demo.example", Role::Owner).await;
    let admin = sign_in(&app, demo, "admin@demo.example", Role::Admin).await;
    let op = sign_in(&app, demo, "op@demo.example", Role::Operator).await;
    let stranger = sign_in(&app, other, "boss@other.example", Role::Owner).await;
    let id_of = |list: &Value, email: &str| -> String {
        list.as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap_or_else(|| panic!("{email} in {list}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    assert_eq!(op.get("/api/v1/users").await.0, StatusCode::FORBIDDEN);
    let (status, list) = admin.get("/api/v1/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    let (owner_id, op_id) = (
        id_of(&list, "owner@demo.example"),
        id_of(&list, "op@demo.example"),
    );
    let admin_id = id_of(&list, "admin@demo.example");
    // Another shop's accounts are not found.
    let (status, _) = stranger
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{op_id}"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The operator holds a conversation.
    let suggestion = pending_draft(&app, "acct-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let conv = conversation_of(&app, suggestion).await;
    let (status, _) = op
        .post(&format!("/api/v1/conversations/{conv}/takeover"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    // An admin cannot touch an owner or an admin, nor make one; nobody disables themselves.
    for (path, body) in [
        (
            format!("/api/v1/users/{owner_id}"),
            json!({"disabled": true}),
        ),
        (format!("/api/v1/users/{op_id}"), json!({"role": "owner"})),
        (format!("/api/v1/users/{op_id}"), json!({"role": "admin"})),
        (
            format!("/api/v1/users/{admin_id}"),
            json!({"disabled": true}),
        ),
    ] {
        let (status, body) = admin.send(Method::PATCH, &path, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (status, body) = admin
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{op_id}"),
            Some(json!({"colour": "red"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Disabled: signed out, cannot sign in, the conversation is nobody's again.
    let (status, body) = admin
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{op_id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["disabled"], true);
    assert_eq!(op.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(
            &app,
            json!({"email": "op@demo.example", "password": PASSWORD})
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM conversations WHERE id = '{conv}' AND assigned_user_id IS NULL
             AND operator_active_until IS NULL"
        ))
        .await,
        1
    );
    // Enabled again with a new password, and a new role: one change at a time.
    let (status, body) = admin
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{op_id}"),
            Some(json!({"disabled": false, "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for change in [json!({"disabled": false}), json!({"role": "viewer"})] {
        let (status, body) = admin
            .send(
                Method::PATCH,
                &format!("/api/v1/users/{op_id}"),
                Some(change),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = admin
        .post(
            &format!("/api/v1/users/{op_id}/password"),
            json!({"password": "12345678"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a weak password is refused: {body}"
    );
    let (status, body) = admin
        .post(
            &format!("/api/v1/users/{op_id}/password"),
            json!({"password": "a fresh start for mia"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = login(
        &app,
        json!({"email": "op@demo.example", "password": "a fresh start for mia"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["role"], "viewer");

    // The last owner stays: not demoted, not removed, until there is another.
    for (method, body) in [
        (Method::PATCH, Some(json!({"role": "admin"}))),
        (Method::DELETE, None),
    ] {
        let (status, body) = owner
            .send(method, &format!("/api/v1/users/{owner_id}"), body)
            .await;
        assert!(
            status == StatusCode::CONFLICT || status == StatusCode::FORBIDDEN,
            "{status} {body}"
        );
    }
    let (status, _) = owner
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = owner
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{owner_id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "with another owner it may step down: {body}"
    );

    // Removed: gone from the list, its address free for a new account.
    let (status, _) = admin
        .send(Method::DELETE, &format!("/api/v1/users/{op_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = admin.get("/api/v1/users").await;
    assert!(!list.to_string().contains("op@demo.example"), "{list}");
    let (status, body) = admin
        .post(
            "/api/v1/users",
            json!({"email": "op@demo.example", "role": "operator", "password": "yet another long passphrase"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE target_type = 'user' AND tenant_id = $1 ORDER BY id",
    )
    .bind(demo)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for a in [
        "user.disable",
        "user.enable",
        "user.role",
        "user.password_reset",
        "user.remove",
        "add_user",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    let details: Value = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'user.password_reset' AND tenant_id = $1",
    )
    .bind(demo)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        !details.to_string().contains("fresh start"),
        "no password in the audit log"
    );
}
