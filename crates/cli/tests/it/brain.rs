//! The brain through the web chat: delay and typing, escalation, learning mode, debounce,
//! supersession and opt-out.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;

use switchboard::Parts;

use crate::helpers::{TestApp, by_role, test_config};

// Generous: a loaded CI machine runs two suites of these at once; a pass takes a few seconds.
const WAIT: Duration = Duration::from_secs(30);

async fn exec(app: &TestApp, sql: &str) {
    sqlx::query(sql).execute(&app.pool).await.unwrap();
}

/// Working hours around the clock, so that night modes never interfere.
async fn always_open(app: &TestApp) {
    exec(app, "UPDATE tenants SET working_hours_start = '00:00', working_hours_end = '23:59:59', working_days = '{1,2,3,4,5,6,7}'").await;
}

/// A fixed human delay: min = max clamps the plan to exactly `ms`.
async fn fixed_delay(app: &TestApp, ms: i32) {
    always_open(app).await;
    exec(
        app,
        &format!(
            "INSERT INTO human_delay_settings (tenant_id, enabled, min_delay_ms, max_delay_ms)
             SELECT id, true, {ms}, {ms} FROM tenants"
        ),
    )
    .await;
}

#[tokio::test]
async fn a_confident_answer_waits_its_delay_with_typing_first() {
    let app = TestApp::spawn().await;
    fixed_delay(&app, 2000).await;
    let mut events = app
        .http
        .get(format!("{}/api/webchat/demo/events", app.base))
        .query(&[("visitor_id", "d1-visitor-7f3a9c2e")])
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let topic = format!(
        "webchat:{}:d1-visitor-7f3a9c2e",
        app.webchat_channel().await
    );
    app.live_ready(&topic, &mut events).await;
    let (status, _) = app
        .post_chat("d1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let mut seen = String::new();
    tokio::time::timeout(WAIT, async {
        while let Some(chunk) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("\"role\":\"assistant\"") {
                break;
            }
        }
    })
    .await
    .unwrap();
    let typing = seen.find("\"type\":\"typing\"").expect("a typing event");
    let reply = seen.find("\"role\":\"assistant\"").unwrap();
    assert!(typing < reply, "typing comes before the reply: {seen}");

    // The event can overtake the commit that records the message.
    app.wait_transcript("d1-visitor-7f3a9c2e", WAIT, |t| {
        !by_role(t, "assistant").is_empty()
    })
    .await;
    // The reply was scheduled with the planned delay and did not go out before it.
    let (planned, waited): (f64, f64) = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM o.due_at - o.created_at)::float8,
                EXTRACT(EPOCH FROM a.created_at - c.created_at)::float8
         FROM outbox o JOIN messages a ON a.id = o.message_id JOIN messages c ON c.id = o.in_reply_to",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!((planned - 2.0).abs() < 0.05, "planned {planned}");
    assert!(waited >= 2.0, "sent after {waited}s");
}

#[tokio::test]
async fn a_complaint_escalates_and_the_bot_then_stays_silent() {
    let app = TestApp::spawn().await;
    app.post_chat(
        "d2-visitor-7f3a9c2e",
        "c1",
        "My parcel arrived damaged and this is unacceptable",
    )
    .await;
    // The only message the customer gets is the tenant's holding message.
    let t = app
        .wait_transcript("d2-visitor-7f3a9c2e", WAIT, |t| {
            by_role(t, "assistant").len() == 1
        })
        .await;
    let holding: String = sqlx::query_scalar("SELECT holding_message FROM tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(by_role(&t, "assistant")[0]["text"], holding.as_str());

    let (status, reason, summary, suggested): (String, String, String, Option<String>) =
        sqlx::query_as(
            "SELECT c.status, e.reason, e.summary, e.suggested_response
         FROM escalation_events e JOIN conversations c ON c.id = e.conversation_id",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "escalated");
    assert!(reason.contains("complaint"), "{reason}");
    assert!(summary.contains("damaged"), "{summary}");
    assert!(suggested.is_some());

    app.post_chat("d2-visitor-7f3a9c2e", "c2", "Do you ship to Berlin?")
        .await;
    app.handled("d2-visitor-7f3a9c2e:c2", 1).await;
    app.settled().await;
    let t = app.transcript("d2-visitor-7f3a9c2e").await;
    assert_eq!(by_role(&t, "customer").len(), 2);
    assert_eq!(
        by_role(&t, "assistant").len(),
        1,
        "silent while escalated: {t:#?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM ai_suggestions").await,
        1,
        "no draft is made"
    );
}

#[tokio::test]
async fn learning_mode_never_sends_on_its_own() {
    let app = TestApp::spawn().await;
    exec(
        &app,
        "UPDATE decision_settings SET default_mode = 'learning'",
    )
    .await;
    app.post_chat("d3-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    app.wait_count("SELECT count(*) FROM ai_suggestions", 1)
        .await;
    let (decision, reason): (String, Option<String>) =
        sqlx::query_as("SELECT decision, autosend_block_reason FROM ai_suggestions")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (decision.as_str(), reason.as_deref()),
        ("NEED_APPROVAL", Some("MODE_LEARNING"))
    );
    app.handled("d3-visitor-7f3a9c2e:c1", 1).await;
    app.settled().await;
    assert!(by_role(&app.transcript("d3-visitor-7f3a9c2e").await, "assistant").is_empty());
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'decision'")
            .await,
        1
    );
}

#[tokio::test]
async fn three_quick_messages_get_one_reply() {
    let app = TestApp::spawn().await;
    for (i, text) in [
        "Hi,",
        "I live in Berlin.",
        "Do you ship there and what does it cost?",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = app
            .post_chat("d4-visitor-7f3a9c2e", &format!("c{i}"), text)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let t = app
        .wait_transcript("d4-visitor-7f3a9c2e", WAIT, |t| {
            !by_role(t, "assistant").is_empty()
        })
        .await;
    for i in 0..3 {
        app.handled(&format!("d4-visitor-7f3a9c2e:c{i}"), 1).await;
    }
    app.settled().await;
    let t2 = app.transcript("d4-visitor-7f3a9c2e").await;
    assert_eq!(by_role(&t2, "assistant").len(), 1, "{t2:#?}");
    assert!(
        by_role(&t, "assistant")[0]["text"]
            .as_str()
            .unwrap()
            .contains("DHL")
    );
    // The one draft answers the newest stored message (workers may store a burst's
    // messages in any order), and no message of the burst is left unanswered.
    let newest: bool = sqlx::query_scalar(
        "SELECT m.created_at = (SELECT max(created_at) FROM messages WHERE role = 'customer')
         FROM ai_suggestions s JOIN messages m ON m.id = s.based_on_message_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(newest);
    assert_eq!(app.count("SELECT count(*) FROM ai_suggestions").await, 1);
}

/// With one delivery and one draft at a time, a conversation waiting out its quiet window
/// still does not hold up the next customer: the wait is a row in PostgreSQL, and the
/// delivery was acknowledged when the message was stored.
#[tokio::test]
async fn a_conversation_waiting_to_go_quiet_holds_up_no_one() {
    let mut config = test_config();
    config.amqp.prefetch = 1;
    config.ai_worker.draft_concurrency = 1;
    let app = TestApp::spawn_with(config, Parts::ALL).await;
    exec(
        &app,
        "UPDATE decision_settings SET debounce_quiet_ms = 8000, debounce_cap_ms = 8000",
    )
    .await;
    app.post_chat("q1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    app.wait_count("SELECT count(*) FROM pending_drafts", 1)
        .await;
    app.post_chat(
        "q2-visitor-7f3a9c2e",
        "c1",
        "How much is shipping to Berlin?",
    )
    .await;
    app.wait_count("SELECT count(*) FROM pending_drafts", 2)
        .await;
    assert_eq!(
        app.count("SELECT count(*) FROM ai_suggestions").await,
        0,
        "the second customer was stored while the first conversation still waited"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE role = 'customer'")
            .await,
        2
    );
    for visitor in ["q1-visitor-7f3a9c2e", "q2-visitor-7f3a9c2e"] {
        app.wait_transcript(visitor, Duration::from_secs(30), |t| {
            by_role(t, "assistant").len() == 1
        })
        .await;
    }
    let mut left = -1;
    for _ in 0..100 {
        left = app.count("SELECT count(*) FROM pending_drafts").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "settled conversations leave the schedule");
}

/// A worker that died holding a conversation's lease delays its draft until the lease
/// runs out, even when the customer writes again; then another worker drafts the burst, once.
#[tokio::test]
async fn a_lease_left_by_a_dead_worker_runs_out_and_another_drafts() {
    let app = TestApp::spawn_with(
        test_config(),
        Parts {
            ai_worker: false,
            ..Parts::ALL
        },
    )
    .await;
    // A long window, so the first worker only stores and schedules.
    exec(
        &app,
        "UPDATE decision_settings SET debounce_quiet_ms = 8000, debounce_cap_ms = 8000",
    )
    .await;
    let conversation = {
        app.post_chat("l1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
            .await;
        let worker = app.services.clone();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let run = tokio::spawn(switchboard_ai_worker::run(worker, shutdown.clone()));
        app.wait_count("SELECT count(*) FROM pending_drafts", 1)
            .await;
        shutdown.cancel();
        run.await.unwrap();
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT conversation_id FROM pending_drafts")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    // Then it claimed the row, now due, and died holding the lease.
    exec(
        &app,
        "UPDATE decision_settings SET debounce_quiet_ms = 0, debounce_cap_ms = 0",
    )
    .await;
    sqlx::query(
        "UPDATE pending_drafts SET due_at = now(), lease = gen_random_uuid(),
                leased_until = clock_timestamp() + interval '4 seconds', attempts = 1",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let expiry: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT leased_until FROM pending_drafts")
            .fetch_one(&app.pool)
            .await
            .unwrap();

    tokio::spawn(switchboard_ai_worker::run(
        app.services.clone(),
        app.shutdown.clone(),
    ));
    // The customer writes again while the lease is live: the row moves on to the new
    // message but stays with its lease holder, so no second worker piles in meanwhile.
    app.post_chat("l1-visitor-7f3a9c2e", "c2", "And what does shipping cost?")
        .await;
    app.wait_count(
        "SELECT count(*) FROM pending_drafts WHERE generation = 1",
        1,
    )
    .await;
    let leased: bool = sqlx::query_scalar(
        "SELECT lease IS NOT NULL AND leased_until > clock_timestamp() FROM pending_drafts",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(leased, "the new message left the live lease alone");

    app.wait_transcript("l1-visitor-7f3a9c2e", WAIT, |t| {
        by_role(t, "assistant").len() == 1
    })
    .await;
    let (drafted, answered): (chrono::DateTime<chrono::Utc>, String) = sqlx::query_as(
        "SELECT s.created_at, m.content FROM ai_suggestions s JOIN messages m ON m.id = s.based_on_message_id
         WHERE s.conversation_id = $1",
    )
    .bind(conversation)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        drafted >= expiry,
        "drafted at {drafted}, lease ran until {expiry}"
    );
    assert_eq!(answered, "And what does shipping cost?");
    assert_eq!(app.count("SELECT count(*) FROM ai_suggestions").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM pending_drafts").await, 0);
}

#[tokio::test]
async fn a_message_during_the_delay_supersedes_the_pending_reply() {
    let app = TestApp::spawn().await;
    fixed_delay(&app, 3000).await;
    app.post_chat("d5-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    app.wait_count("SELECT count(*) FROM outbox WHERE status = 'pending'", 1)
        .await;
    app.post_chat("d5-visitor-7f3a9c2e", "c2", "And what does shipping cost?")
        .await;
    let t = app
        .wait_transcript("d5-visitor-7f3a9c2e", WAIT, |t| {
            !by_role(t, "assistant").is_empty()
        })
        .await;
    app.handled("d5-visitor-7f3a9c2e:c2", 1).await;
    app.settled().await;
    let t = if by_role(&t, "assistant").len() == 1 {
        app.transcript("d5-visitor-7f3a9c2e").await
    } else {
        t
    };
    let replies = by_role(&t, "assistant");
    assert_eq!(replies.len(), 1, "{t:#?}");
    let (superseded, sent): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'superseded'), count(*) FILTER (WHERE status = 'sent') FROM ai_suggestions",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((superseded, sent), (1, 1));
    let answered: String = sqlx::query_scalar(
        "SELECT c.content FROM messages a JOIN messages c ON c.id = a.in_reply_to WHERE a.role = 'assistant'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(answered, "And what does shipping cost?");
}

#[tokio::test]
async fn stop_silences_the_bot_until_start() {
    let app = TestApp::spawn().await;
    app.post_chat("d6-visitor-7f3a9c2e", "c1", "STOP").await;
    let t = app
        .wait_transcript("d6-visitor-7f3a9c2e", WAIT, |t| {
            by_role(t, "assistant").len() == 1
        })
        .await;
    assert!(
        by_role(&t, "assistant")[0]["text"]
            .as_str()
            .unwrap()
            .contains("unsubscribed")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM consents WHERE status = 'revoked'")
            .await,
        1
    );

    app.post_chat("d6-visitor-7f3a9c2e", "c2", "Do you ship to Berlin?")
        .await;
    app.handled("d6-visitor-7f3a9c2e:c2", 1).await;
    app.settled().await;
    assert_eq!(
        by_role(&app.transcript("d6-visitor-7f3a9c2e").await, "assistant").len(),
        1,
        "silent after STOP"
    );

    app.post_chat("d6-visitor-7f3a9c2e", "c3", "START").await;
    app.wait_transcript("d6-visitor-7f3a9c2e", WAIT, |t| {
        by_role(t, "assistant").len() == 2
    })
    .await;
    app.post_chat("d6-visitor-7f3a9c2e", "c4", "Do you ship to Berlin?")
        .await;
    let t = app
        .wait_transcript("d6-visitor-7f3a9c2e", WAIT, |t| {
            by_role(t, "assistant").len() == 3
        })
        .await;
    assert!(
        by_role(&t, "assistant")[2]["text"]
            .as_str()
            .unwrap()
            .contains("DHL")
    );
}

#[tokio::test]
async fn night_mode_auto_reply_answers_once_per_night_and_holds_drafts() {
    let app = TestApp::spawn().await;
    // No working day at all: it is always night.
    exec(&app, "UPDATE tenants SET working_days = '{}'").await;
    exec(
        &app,
        "INSERT INTO human_delay_settings (tenant_id, night_mode, night_auto_reply_text)
         SELECT id, 'AUTO_REPLY', 'We are closed and answer from 9:00.' FROM tenants",
    )
    .await;
    app.post_chat("n1-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    app.wait_transcript("n1-visitor-7f3a9c2e", WAIT, |t| {
        by_role(t, "assistant").len() == 1
    })
    .await;
    app.post_chat("n1-visitor-7f3a9c2e", "c2", "And what does shipping cost?")
        .await;
    app.wait_count("SELECT count(*) FROM ai_suggestions", 2)
        .await;
    app.handled("n1-visitor-7f3a9c2e:c2", 1).await;
    app.settled().await;
    let t = app.transcript("n1-visitor-7f3a9c2e").await;
    let replies = by_role(&t, "assistant");
    assert_eq!(
        replies.len(),
        1,
        "one night reply per conversation per night: {t:#?}"
    );
    assert_eq!(replies[0]["text"], "We are closed and answer from 9:00.");
    let held = app
        .count("SELECT count(*) FROM ai_suggestions WHERE decision = 'NEED_APPROVAL' AND autosend_block_reason = 'NIGHT_MODE'")
        .await;
    assert_eq!(held, 2);
}

#[tokio::test]
async fn operators_hear_about_an_escalation_at_once() {
    let app = TestApp::spawn().await;
    let client = redis::Client::open(app.config.redis.url.as_str()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    let tenant: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    pubsub
        .subscribe(format!("sb:live:operators:{tenant}"))
        .await
        .unwrap();
    app.post_chat(
        "o1-visitor-7f3a9c2e",
        "c1",
        "This is unacceptable, I want to complain",
    )
    .await;
    // The customer's message is announced first, then the escalation.
    let event = tokio::time::timeout(WAIT, async {
        loop {
            let msg = pubsub.on_message().next().await.unwrap();
            let event: serde_json::Value =
                serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
            if event["type"] != "message" {
                return event;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(event["type"], "escalation");
    let escalation: uuid::Uuid = sqlx::query_scalar("SELECT suggestion_id FROM escalation_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(event["suggestion_id"], escalation.to_string());
}

#[tokio::test]
async fn a_colour_the_catalogue_lacks_is_said_and_missing_not_left_out() {
    let app = TestApp::spawn().await;
    app.post_chat("d9-visitor-7f3a9c2e", "c1", "Do you have the mug in blue?")
        .await;
    app.handled("d9-visitor-7f3a9c2e:c1", 1).await;
    app.settled().await;
    let (draft, missing, decision): (String, serde_json::Value, String) =
        sqlx::query_as("SELECT draft, missing_fields, decision FROM ai_suggestions")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        draft.contains("Ceramic coffee mug") && draft.contains("Colour: white, charcoal."),
        "the colours it has are said: {draft}"
    );
    assert_eq!(missing, serde_json::json!(["colour blue"]));
    assert_ne!(
        decision, "AUTO_SEND",
        "a missing field is not sent on its own"
    );
}

#[tokio::test]
async fn a_customer_is_answered_in_their_language_when_the_shop_speaks_it() {
    let app = TestApp::spawn().await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    app.services
        .store
        .apply_settings(
            demo,
            &serde_json::json!({"profile": {"languages": ["de"]}}),
            switchboard_store::Write::Merge,
            "test",
            None,
        )
        .await
        .unwrap();
    let versand = "Wir versenden jede Bestellung mit DHL. Der Versand innerhalb Deutschlands dauert ein bis zwei Werktage.";
    let doc = app
        .services
        .store
        .add_document(demo, ("Versand", "", versand), "test")
        .await
        .unwrap();
    let ask = |visitor: &'static str, text: &'static str| {
        let app = &app;
        async move {
            app.post_chat(visitor, "c1", text).await;
            app.handled(&format!("{visitor}:c1"), 1).await;
            app.settled().await;
            let row: (String, serde_json::Value, f64, serde_json::Value) = sqlx::query_as(
                "SELECT s.draft, s.used_sources, s.self_check_score, s.explanations
                 FROM ai_suggestions s JOIN conversations c ON c.id = s.conversation_id
                 JOIN customers cu ON cu.id = c.customer_id WHERE cu.external_id = $1",
            )
            .bind(visitor)
            .fetch_one(&app.pool)
            .await
            .unwrap();
            row
        }
    };
    let (draft, sources, check, _) = ask(
        "la1-visitor-7f3a9c2e",
        "Wie lange dauert der Versand nach München?",
    )
    .await;
    assert_eq!(draft, versand);
    assert_eq!(sources, serde_json::json!([format!("doc:{}", doc.id)]));
    assert_eq!(check, 1.0);

    // French is not one of the shop's languages: answered in English, and the scores say so.
    let (_, _, check, reasons) = ask(
        "la2-visitor-7f3a9c2e",
        "Combien de temps faut-il pour livrer une commande à Berlin ?",
    )
    .await;
    assert!(check <= 0.5, "{check}");
    assert!(reasons.to_string().contains("writes in fr"), "{reasons}");
}
