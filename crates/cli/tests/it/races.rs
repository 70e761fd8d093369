//! The races of exactly-once: each test drives the real app into the interleaving that
//! once sent a reply twice, answered a STOP, lost a message or sent a stale reply, waits
//! until the system has settled, and then counts.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::helpers::{TestApp, test_config};
use crate::operators::operator;
use crate::platforms::{SECRET, post_tg, telegram_channel};
use switchboard_fakes::FakePlatform;

/// The app, its demo tenant drafting with `llm`: one attempt per call, and time enough for
/// the slowest answer a test scripts.
async fn drafting_with(llm: &FakeLlm) -> TestApp {
    let mut config = test_config();
    config.llm.timeout_ms = 120_000;
    config.llm.max_retries = 0;
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    sqlx::query(
        "INSERT INTO llm_settings (tenant_id, provider, base_url, model)
         SELECT id, 'openai', $1, 'fake-model' FROM tenants",
    )
    .bind(&llm.base_url)
    .execute(&app.pool)
    .await
    .unwrap();
    app
}

/// Around the clock, and every AUTO_SEND reply waits `ms` with the typing indicator.
async fn fixed_delay(app: &TestApp, ms: i32) {
    app.exec("UPDATE tenants SET working_hours_start = '00:00', working_hours_end = '23:59:59', working_days = '{1,2,3,4,5,6,7}'").await;
    app.exec(&format!(
        "INSERT INTO human_delay_settings (tenant_id, enabled, min_delay_ms, max_delay_ms)
         SELECT id, true, {ms}, {ms} FROM tenants"
    ))
    .await;
}

/// The AUTO_SEND draft that answers the visitor's message, once it waits for its delay.
async fn queued_draft(app: &TestApp, visitor: &str, text: &str) -> Uuid {
    let (status, _) = app
        .post_chat(visitor, &Uuid::new_v4().to_string(), text)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let sql = format!(
        "SELECT count(*) FROM ai_suggestions s JOIN conversations c ON c.id = s.conversation_id
         JOIN customers cu ON cu.id = c.customer_id
         WHERE cu.external_id = '{visitor}' AND s.decision = 'AUTO_SEND'"
    );
    app.wait_count(&sql, 1).await;
    sqlx::query_scalar(
        "SELECT s.id FROM ai_suggestions s JOIN conversations c ON c.id = s.conversation_id
         JOIN customers cu ON cu.id = c.customer_id WHERE cu.external_id = $1",
    )
    .bind(visitor)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn sent_to(app: &TestApp, visitor: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
         JOIN customers cu ON cu.id = c.customer_id
         WHERE cu.external_id = '{visitor}' AND m.role <> 'customer'"
    ))
    .await
}

/// An AUTO_SEND draft waiting out its delay is not an approval request: the console does
/// not offer it, and an operator who approves it anyway takes over its one send, and one
/// who rejects it stops that send.
#[tokio::test]
async fn approving_an_auto_send_draft_while_it_waits_sends_once() {
    let app = TestApp::spawn().await;
    fixed_delay(&app, 4000).await;
    let op = operator(&app).await;

    let approved = queued_draft(&app, "q1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let (_, listed) = op.get("/api/v1/suggestions?status=pending").await;
    assert!(
        listed["suggestions"].as_array().unwrap().is_empty(),
        "a queued AUTO_SEND draft is not offered for approval: {listed}"
    );
    let (status, body) = op
        .post(
            &format!("/api/v1/suggestions/{approved}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let rejected = queued_draft(&app, "q2-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let (status, body) = op
        .post(
            &format!("/api/v1/suggestions/{rejected}/reject"),
            json!({"reason": "wrong tone"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    app.settled().await;
    assert_eq!(
        sent_to(&app, "q1-visitor-7f3a9c2e").await,
        1,
        "approved while waiting: one send"
    );
    assert_eq!(
        sent_to(&app, "q2-visitor-7f3a9c2e").await,
        0,
        "rejected while waiting: none"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .await,
        1
    );
}

/// A worker that stored a STOP and died before confirming it, while the customer's earlier
/// reply waits its human delay: the reply never goes out (the opt-out is stored with the
/// message, not a step later), nothing is drafted for the STOP, and the redelivery
/// confirms it once. The fault suite once saw a reply slip out in that gap.
#[tokio::test]
async fn a_stop_stored_before_a_crash_stops_the_waiting_reply_and_is_confirmed_on_redelivery() {
    let app = TestApp::spawn().await;
    fixed_delay(&app, 2500).await;
    let visitor = "s1-visitor-7f3a9c2e";
    let waiting = queued_draft(&app, visitor, "Do you ship to Berlin?").await;
    let tenant = app.services.store.tenant_id("demo").await.unwrap();
    let channel = app.webchat_channel().await;
    let body = json!({"visitor_id": visitor, "client_message_id": "c1", "text": "STOP"});
    let ev = switchboard_channels::webchat::inbound::normalize(
        tenant,
        channel,
        body.to_string().as_bytes(),
        chrono::Utc::now(),
    )
    .unwrap();
    let switchboard_core::InboundBody::Message(msg) = &ev.body else {
        panic!("a message");
    };
    // What the dead worker got done: the message is stored, nothing after it.
    let stored = app
        .services
        .store
        .store_inbound(&ev, msg, Some(switchboard_store::ConsentWord::Stop))
        .await
        .unwrap();
    assert!(!stored.duplicate);
    app.wait_count(
        &format!("SELECT count(*) FROM outbox WHERE suggestion_id = '{waiting}' AND status = 'superseded'"),
        1,
    )
    .await;
    assert_eq!(sent_to(&app, visitor).await, 0, "nothing after the STOP");

    // The broker redelivers the job.
    let (status, _) = app.post_chat(visitor, "c1", "STOP").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let confirmation = format!("consent:{}", stored.message_id);
    app.wait_count(
        &format!("SELECT count(*) FROM outbox WHERE idempotency_key = '{confirmation}' AND status = 'sent'"),
        1,
    )
    .await;
    app.settled().await;
    assert_eq!(
        app.count("SELECT count(*) FROM ai_suggestions").await,
        1,
        "the question's draft alone: a STOP is never drafted"
    );
    assert_eq!(sent_to(&app, visitor).await, 1, "the confirmation alone");
    assert_eq!(
        app.count("SELECT count(*) FROM consents WHERE status = 'revoked'")
            .await,
        1
    );
}

/// A customer writes while a long reply is still going out part by part. The reply is
/// recorded after that message; the message is still unanswered and gets its own draft.
#[tokio::test]
async fn a_message_during_a_slow_multi_part_send_gets_its_own_draft() {
    let app = TestApp::spawn().await;
    fixed_delay(&app, 0).await;
    app.exec("UPDATE decision_settings SET autosend_allowed = false")
        .await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    let update = |id: i64, text: &str| {
        json!({"update_id": id, "message": {"message_id": id, "date": 1_700_000_000,
            "chat": {"id": 300, "type": "private", "first_name": "Customer"},
            "from": {"id": 300, "is_bot": false, "first_name": "Customer"}, "text": text}})
    };
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &update(1, "Do you ship to Berlin?"),
    )
    .await;
    app.wait_count(
        "SELECT count(*) FROM ai_suggestions WHERE status = 'pending'",
        1,
    )
    .await;
    let first: Uuid = sqlx::query_scalar("SELECT id FROM ai_suggestions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // The next message's quiet window outlasts the send, so its draft is made after the
    // reply is recorded.
    app.exec("UPDATE decision_settings SET debounce_quiet_ms = 2000")
        .await;

    fake.hold("sendmessage");
    let long = "We ship to Berlin in two days. ".repeat(200);
    let (status, _) = operator(&app)
        .await
        .post(
            &format!("/api/v1/suggestions/{first}/approve"),
            json!({"text": long}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    fake.wait_for("sendmessage", 1, std::time::Duration::from_secs(15))
        .await;
    // The first part is with Telegram; the customer writes meanwhile.
    post_tg(&app, channel, Some(SECRET), &update(2, "And to Munich?")).await;
    app.wait_count("SELECT count(*) FROM messages WHERE role = 'customer'", 2)
        .await;
    fake.release("sendmessage");

    app.settled().await;
    let second: Uuid = sqlx::query_scalar(
        "SELECT id FROM messages WHERE role = 'customer' ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM ai_suggestions WHERE based_on_message_id = '{second}'"
        ))
        .await,
        1,
        "the message that arrived during the send was drafted"
    );
    let parts = fake
        .requests("sendmessage")
        .iter()
        .filter(|r| r.body["text"].as_str().unwrap().starts_with("We ship"))
        .count();
    assert_eq!(parts, 2, "the reply went out in its two parts, once");
}

/// A replayed dead letter faces the staleness checks like any reply: the customer wrote
/// again since, so it no longer goes out.
#[tokio::test]
async fn a_replayed_reply_the_customer_has_moved_past_is_not_sent() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    let update = |id: i64, text: &str| {
        json!({"update_id": id, "message": {"message_id": id, "date": 1_700_000_000,
            "chat": {"id": 301, "type": "private", "first_name": "Customer"},
            "from": {"id": 301, "is_bot": false, "first_name": "Customer"}, "text": text}})
    };
    fake.script(
        "sendmessage",
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"}),
    );
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &update(1, "Do you ship to Berlin?"),
    )
    .await;
    app.wait_count("SELECT count(*) FROM outbox WHERE status = 'failed'", 1)
        .await;
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &update(2, "Do you ship to Munich?"),
    )
    .await;
    app.wait_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 1)
        .await;

    let dead: Uuid = sqlx::query_scalar("SELECT id FROM outbox WHERE status = 'failed'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, _) = operator(&app)
        .await
        .post(&format!("/api/v1/dead-letters/{dead}/replay"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.settled().await;
    let (status, why): (String, Option<String>) =
        sqlx::query_as("SELECT status, last_error FROM outbox WHERE id = $1")
            .bind(dead)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status, "superseded", "{why:?}");
    assert_eq!(fake.requests("sendmessage").len(), 2);
}

/// Resolving a conversation takes back the reply still waiting out its delay.
#[tokio::test]
async fn resolving_a_conversation_stops_its_waiting_reply() {
    let app = TestApp::spawn().await;
    fixed_delay(&app, 4000).await;
    let draft = queued_draft(&app, "r1-visitor-7f3a9c2e", "Do you ship to Berlin?").await;
    let conversation: Uuid =
        sqlx::query_scalar("SELECT conversation_id FROM ai_suggestions WHERE id = $1")
            .bind(draft)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let (status, body) = operator(&app)
        .await
        .post(
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.settled().await;
    assert_eq!(sent_to(&app, "r1-visitor-7f3a9c2e").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE status = 'superseded'")
            .await,
        1
    );
}

/// A slow LLM holds no lock: while the first message's draft is still with the LLM, the
/// customer's next message is stored and scheduled at once. (The draft used to run inside
/// the transaction holding the conversation's row, so the next message waited for the LLM.)
#[tokio::test]
async fn a_slow_llm_holds_up_no_message_of_its_conversation() {
    let mut slow = Scripted::json(json!({
        "reply": "Yes, we do.", "intent": "shipping", "intent_score": 0.9,
        "questions_to_ask": [], "used_sources": [], "missing_fields": [], "need_handoff": false
    }));
    slow.delay = std::time::Duration::from_secs(60);
    let fake = FakeLlm::start(vec![slow]).await;
    let app = drafting_with(&fake).await;

    app.post_chat("l1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    fake.wait_called().await;
    app.post_chat("l1-visitor-7f3a9c2e", "c2", "And to Munich?")
        .await;
    app.wait_count(
        "SELECT count(*) FROM inbound_receipts WHERE provider_event_id = 'l1-visitor-7f3a9c2e:c2' AND handled > 0",
        1,
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM ai_suggestions").await,
        0,
        "the first draft is still with the LLM"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM pending_drafts").await,
        1,
        "the new message moved the schedule on"
    );
}

/// The customer edits their message while its draft is with the LLM. The draft no longer
/// answers what they wrote, so it is thrown away and the edited burst drafted again; it is
/// never dropped with nothing drafted at all.
#[tokio::test]
async fn a_message_edited_while_drafted_is_drafted_again() {
    let answer = |reply: &str| {
        Scripted::json(json!({
            "reply": reply, "intent": "shipping", "intent_score": 0.9, "questions_to_ask": [],
            "used_sources": [], "missing_fields": [], "need_handoff": false,
            "self_check_score": 0.9, "reasons": ["checked"]
        }))
    };
    let mut slow = answer("Yes, to Berlin.");
    slow.delay = std::time::Duration::from_secs(2);
    let fake_llm = FakeLlm::start(vec![slow, answer("Yes, to Munich.")]).await;
    let app = drafting_with(&fake_llm).await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    let chat = json!({"id": 302, "type": "private", "first_name": "Customer"});
    let from = json!({"id": 302, "is_bot": false, "first_name": "Customer"});
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &json!({"update_id": 1, "message": {
        "message_id": 1, "date": 1_700_000_000, "chat": chat, "from": from,
        "text": "Do you ship to Berlin?"}}),
    )
    .await;
    fake_llm.wait_called().await;
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &json!({"update_id": 2, "edited_message": {
        "message_id": 1, "date": 1_700_000_000, "edit_date": 1_700_000_010, "chat": chat,
        "from": from, "text": "Do you ship to Munich?"}}),
    )
    .await;
    app.wait_count(
        "SELECT count(*) FROM inbound_receipts WHERE provider_event_id = 'update:2' AND handled > 0",
        1,
    )
    .await;
    app.wait_count("SELECT count(*) FROM ai_suggestions", 1)
        .await;
    app.settled().await;
    let drafts: Vec<String> = sqlx::query_scalar("SELECT draft FROM ai_suggestions")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(drafts, ["Yes, to Munich."], "drafted again from the edit");
}

/// A send that takes longer than its lease stays its dispatcher's: the lease is renewed
/// while the platform thinks, so another send loop does not send the reply again (and a
/// dispatcher that dies frees its sends after one short lease, not after the send timeout).
#[tokio::test]
async fn a_send_slower_than_its_lease_goes_out_once() {
    let mut config = test_config();
    config.dispatcher.lease_ms = 600;
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    fake.hold("sendmessage");
    let update = crate::platforms::tg_update(1, 4242, 1, "Do you ship to Berlin?");
    assert_eq!(
        post_tg(&app, channel, Some(SECRET), &update).await,
        StatusCode::OK
    );
    fake.wait_for("sendmessage", 1, std::time::Duration::from_secs(15))
        .await;
    // The send is with Telegram; wait until its lease has been renewed three times, which
    // is past the lease it was claimed with.
    let mut seen = std::collections::HashSet::new();
    let start = std::time::Instant::now();
    while seen.len() < 4 {
        let until: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT leased_until FROM outbox WHERE status = 'pending'")
                .fetch_optional(&app.pool)
                .await
                .unwrap()
                .flatten();
        seen.extend(until);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the lease was not renewed: {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    fake.release("sendmessage");
    app.settled().await;
    assert_eq!(fake.requests("sendmessage").len(), 1, "sent once");
}

/// A STOP that arrives while a long reply goes out part by part ends the reply there: the
/// parts not yet sent stay unsent, and the transcript holds what the customer received.
#[tokio::test]
async fn a_stop_during_a_long_reply_stops_its_remaining_parts() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    let update = |id: i64, text: &str| crate::platforms::tg_update(id, 301, id, text);
    post_tg(&app, channel, Some(SECRET), &update(1, "Hello")).await;
    app.handled("update:1", 1).await;
    app.settled().await;
    let conversation: Uuid = sqlx::query_scalar("SELECT id FROM conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let before = fake.requests("sendmessage").len();

    fake.hold("sendmessage");
    let long = format!(
        "{} {}",
        "First part. ".repeat(300).trim(),
        "Second part. ".repeat(300).trim()
    );
    let (status, _) = operator(&app)
        .await
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": long}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    fake.wait_for(
        "sendmessage",
        before + 1,
        std::time::Duration::from_secs(15),
    )
    .await;
    // The first part is with Telegram; the customer opts out meanwhile.
    post_tg(&app, channel, Some(SECRET), &update(2, "STOP")).await;
    app.wait_count("SELECT count(*) FROM consents WHERE status = 'revoked'", 1)
        .await;
    fake.release("sendmessage");
    app.handled("update:2", 1).await;
    app.settled().await;

    let parts: Vec<String> = fake.requests("sendmessage")[before..]
        .iter()
        .map(|r| r.body["text"].as_str().unwrap().to_owned())
        .filter(|t| t.contains("part."))
        .collect();
    assert_eq!(parts.len(), 1, "only the part already under way went out");
    let recorded: String = sqlx::query_scalar(
        "SELECT content FROM messages WHERE role = 'operator' AND conversation_id = $1",
    )
    .bind(conversation)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded, parts[0], "the transcript holds what was received");
}

/// One claim leases many due replies, but at most one per conversation and none of a
/// conversation whose reply is going out: a conversation's replies never go side by side,
/// and a reply waiting behind another holds no lease that could run out while it waits.
#[tokio::test]
async fn a_claim_takes_one_reply_per_conversation_at_a_time() {
    let no_dispatcher = switchboard::Parts {
        dispatcher: false,
        ..switchboard::Parts::ALL
    };
    let app = TestApp::spawn_with(test_config(), no_dispatcher).await;
    let store = &app.services.store;
    let tenant = store.tenant_id("demo").await.unwrap();
    let channel = app.webchat_channel().await;
    let mut stored = Vec::new();
    for visitor in ["claim-visitor-a-5e1f0c9d", "claim-visitor-b-77d2a4e1"] {
        let body = json!({"visitor_id": visitor, "client_message_id": "c1", "text": "Hello?"});
        let ev = switchboard_channels::webchat::inbound::normalize(
            tenant,
            channel,
            body.to_string().as_bytes(),
            chrono::Utc::now(),
        )
        .unwrap();
        let switchboard_core::InboundBody::Message(msg) = &ev.body else {
            panic!("a message");
        };
        stored.push(store.store_inbound(&ev, msg, None).await.unwrap());
    }
    let (a, b) = (&stored[0], &stored[1]);
    for (s, keys) in [(a, &["a1", "a2"][..]), (b, &["b1"][..])] {
        let mut tx = store.begin_draft(tenant, s.conversation_id).await.unwrap();
        for key in keys {
            tx.enqueue(None, key, s.message_id, key, 0).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let hold = std::time::Duration::from_secs(15);

    // A concurrent claim has locked the first conversation's first reply and not committed:
    // this claim skips it, and must not take that conversation's second reply instead.
    let mut other = app.pool.begin().await.unwrap();
    sqlx::query(
        "SELECT id FROM outbox WHERE conversation_id = $1
         ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE",
    )
    .bind(a.conversation_id)
    .fetch_one(&mut *other)
    .await
    .unwrap();
    let first = store.claim_due(Uuid::now_v7(), hold, 10).await.unwrap();
    let conversations: Vec<Uuid> = first
        .iter()
        .map(|c| c.item.message.conversation_id)
        .collect();
    assert_eq!(
        conversations,
        [b.conversation_id],
        "only the other conversation's reply"
    );
    other.rollback().await.unwrap();

    let second = store.claim_due(Uuid::now_v7(), hold, 10).await.unwrap();
    let texts: Vec<&str> = second
        .iter()
        .map(|c| c.item.message.text.as_str())
        .collect();
    assert_eq!(
        texts,
        ["a1"],
        "the first conversation's replies go in order"
    );
    assert!(
        store
            .claim_due(Uuid::now_v7(), hold, 10)
            .await
            .unwrap()
            .is_empty(),
        "the other reply of the first conversation waits for the one going out"
    );
    assert_eq!(store.next_send_due().await.unwrap(), None);

    let mut taken = Vec::new();
    for claim in first.into_iter().chain(second) {
        taken.push(claim.item.message.text.clone());
        assert!(claim.sent(None).await.unwrap());
    }
    let next = store.claim_due(Uuid::now_v7(), hold, 10).await.unwrap();
    assert_eq!(next.len(), 1, "then the first conversation's other reply");
    assert_eq!(next[0].item.message.conversation_id, a.conversation_id);
    taken.push(next[0].item.message.text.clone());
    taken.sort();
    assert_eq!(taken, ["a1", "a2", "b1"]);
}
