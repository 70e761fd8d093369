use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use reqwest::StatusCode;
use serde_json::Value;
use switchboard::Parts;
use switchboard_bus::Delivery;

use crate::helpers::{TestApp, by_role, test_config};

// Generous: a loaded CI machine runs two suites of these at once; a pass takes a few seconds.
const WAIT: Duration = Duration::from_secs(30);

async fn doc_body(app: &TestApp, title: &str) -> (String, String) {
    sqlx::query_as("SELECT 'doc:' || id::text, body FROM knowledge_docs WHERE title = $1")
        .bind(title)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_question_gets_exactly_one_reply_from_the_matching_document() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post_chat(
            "v1-visitor-7f3a9c2e",
            "c1",
            "How much is shipping to Berlin?",
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let t = app
        .wait_transcript("v1-visitor-7f3a9c2e", WAIT, |t| {
            !by_role(t, "assistant").is_empty()
        })
        .await;
    let (reference, expected) = doc_body(&app, "Shipping and delivery").await;
    assert_eq!(by_role(&t, "assistant")[0]["text"], expected.as_str());

    let (decision, sources, based_on_customer): (String, Value, bool) = sqlx::query_as(
        "SELECT s.decision, s.used_sources, m.role = 'customer' FROM ai_suggestions s
         JOIN messages m ON m.id = s.based_on_message_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(decision, "AUTO_SEND");
    assert_eq!(sources, serde_json::json!([reference]));
    assert!(based_on_customer);

    // Nothing else trickles out later.
    app.handled("v1-visitor-7f3a9c2e:c1", 1).await;
    app.settled().await;
    let t = app.transcript("v1-visitor-7f3a9c2e").await;
    assert_eq!(by_role(&t, "assistant").len(), 1, "{t:#?}");
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_repeated_client_message_id_yields_one_message_and_one_reply() {
    // One delivery at a time, so that `inbound_drained` can tell every copy is done: a
    // repeat that comes while the first copy is still on its way is queued too.
    let mut config = test_config();
    config.amqp.prefetch = 1;
    let app = TestApp::spawn_with(config, Parts::ALL).await;
    for _ in 0..3 {
        let (status, _) = app
            .post_chat("v2-visitor-7f3a9c2e", "same-id", "Do you ship to Berlin?")
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    app.wait_transcript("v2-visitor-7f3a9c2e", WAIT, |t| {
        !by_role(t, "assistant").is_empty()
    })
    .await;

    // Past the Redis fast path (key gone, as after an expiry or a Redis restart), the
    // worker's receipt still recognises the message.
    let mut redis = app.services.redis.clone();
    let key = format!(
        "sb:dedup:{}:v2-visitor-7f3a9c2e:same-id",
        app.webchat_channel().await
    );
    let deleted: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let (status, body) = app
        .post_chat("v2-visitor-7f3a9c2e", "same-id", "Do you ship to Berlin?")
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("queued"))
    );

    // The first copy and this one ran to their end, and no copy is left.
    app.handled("v2-visitor-7f3a9c2e:same-id", 2).await;
    app.inbound_drained().await;
    app.settled().await;
    let t = app.transcript("v2-visitor-7f3a9c2e").await;
    assert_eq!(by_role(&t, "customer").len(), 1, "{t:#?}");
    assert_eq!(by_role(&t, "assistant").len(), 1, "{t:#?}");
    assert_eq!(app.count("SELECT count(*) FROM inbound_receipts").await, 1);
}

#[tokio::test]
async fn replies_in_a_conversation_keep_their_order() {
    let app = TestApp::spawn().await;
    let questions = [
        "Do you ship to Berlin?",
        "How can I return an item?",
        "Which payment methods do you accept?",
    ];
    for (i, q) in questions.iter().enumerate() {
        let (status, _) = app
            .post_chat("v3-visitor-7f3a9c2e", &format!("c{i}"), q)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        app.wait_transcript("v3-visitor-7f3a9c2e", WAIT, |t| {
            by_role(t, "assistant").len() == i + 1
        })
        .await;
    }
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT m.role, m.content, r.content FROM messages m LEFT JOIN messages r ON r.id = m.in_reply_to
         ORDER BY m.created_at",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let roles: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        roles,
        [
            "customer",
            "assistant",
            "customer",
            "assistant",
            "customer",
            "assistant"
        ]
    );
    for pair in rows.chunks(2) {
        assert_eq!(
            pair[1].2.as_deref(),
            Some(pair[0].1.as_str()),
            "a reply answers the message before it"
        );
    }
    let t = app.transcript("v3-visitor-7f3a9c2e").await;
    assert!(t[3]["text"].as_str().unwrap().contains("return"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let app = TestApp::spawn().await;
    let post = |body: String, tenant: &'static str| {
        app.http
            .post(format!("{}/api/webchat/{tenant}/messages", app.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Another site's plain form post (no CORS preflight) is not a visitor's message.
    let r = app
        .http
        .post(format!("{}/api/webchat/demo/messages", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("visitor_id=v&client_message_id=c&text=hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = post("{\"visitor_id\": ".into(), "demo").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("EOF")
    );

    let r = post(
        r#"{"visitor_id":"v-visitor-7f3a9c2e","text":"hi"}"#.into(),
        "demo",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("client_message_id")
    );

    let big = format!(
        r#"{{"visitor_id":"v-visitor-7f3a9c2e","client_message_id":"c","text":"{}"}}"#,
        "a".repeat(70 * 1024)
    );
    assert_eq!(
        post(big, "demo").await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let ok =
        r#"{"visitor_id":"v-visitor-7f3a9c2e","client_message_id":"c","text":"hi"}"#.to_owned();
    assert_eq!(
        post(ok, "no-such-shop").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let page = app
        .http
        .get(format!("{}/chat/no-such-shop", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
}

#[tokio::test]
async fn a_broker_that_is_down_gives_503_and_nothing_is_half_stored() {
    let mut config = test_config();
    config.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let app = TestApp::spawn_with(config, Parts::ALL).await;
    for _ in 0..2 {
        // The second try must not be mistaken for a duplicate of the first.
        let (status, body) = app
            .post_chat("v5-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let mut redis = app.services.redis.clone();
    let key = format!(
        "sb:dedup:{}:v5-visitor-7f3a9c2e:c1",
        app.webchat_channel().await
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the dedup claim is released");
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM inbound_receipts").await, 0);
    let ready = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json::<Value>().await.unwrap()["broker"], "down");
}

#[tokio::test]
async fn a_worker_killed_between_commit_and_ack_still_gives_one_reply() {
    let config = test_config();
    let app = TestApp::spawn_with(
        config.clone(),
        Parts {
            gateway: true,
            ai_worker: false,
            dispatcher: true,
            listener: true,
        },
    )
    .await;
    let (status, _) = app
        .post_chat("v6-visitor-7f3a9c2e", "c1", "Do you ship to Berlin?")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // A worker takes the message, commits everything, and dies before its ack.
    let conn = lapin::Connection::connect(&config.amqp.url, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = config.amqp.queue(switchboard_bus::INBOUND);
    let got = ch
        .basic_get(queue.clone().into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("the message is queued");
    let outcome = switchboard_ai_worker::handle(
        &app.services,
        &tokio::sync::Notify::new(),
        Delivery {
            body: got.delivery.data.clone(),
            attempt: 0,
            redelivered: false,
        },
    )
    .await;
    assert_eq!(outcome, switchboard_bus::Outcome::Ack);
    conn.close(320, "worker killed".into()).await.unwrap();
    // What it committed includes when to draft: the wait is in PostgreSQL, not in the
    // delivery that went back to the queue.
    assert_eq!(app.count("SELECT count(*) FROM pending_drafts").await, 1);

    // The restarted worker drafts the scheduled conversation, gets the redelivery,
    // recognises it, and acks it.
    let shutdown = app.shutdown.clone();
    tokio::spawn(switchboard_ai_worker::run(app.services.clone(), shutdown));
    app.wait_transcript("v6-visitor-7f3a9c2e", WAIT, |t| {
        by_role(t, "assistant").len() == 1
    })
    .await;
    let check = lapin::Connection::connect(&config.amqp.url, Default::default())
        .await
        .unwrap();
    let cch = check.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let mut drained = false;
    for _ in 0..100 {
        let q = cch
            .queue_declare(queue.clone().into(), passive, FieldTable::default())
            .await
            .unwrap();
        if q.message_count() == 0 && q.consumer_count() == 1 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(drained, "the redelivered message was consumed");
    // Handled by the killed worker and again, to its end, as the redelivery.
    app.handled("v6-visitor-7f3a9c2e:c1", 2).await;
    app.settled().await;
    let t = app.transcript("v6-visitor-7f3a9c2e").await;
    assert_eq!(by_role(&t, "customer").len(), 1, "{t:#?}");
    assert_eq!(by_role(&t, "assistant").len(), 1, "{t:#?}");
    assert_eq!(app.count("SELECT count(*) FROM ai_suggestions").await, 1);
}

#[tokio::test]
async fn the_event_stream_carries_the_reply() {
    let app = TestApp::spawn().await;
    let mut events = app
        .http
        .get(format!("{}/api/webchat/demo/events", app.base))
        .query(&[("visitor_id", "v7-visitor-7f3a9c2e")])
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let topic = format!(
        "webchat:{}:v7-visitor-7f3a9c2e",
        app.webchat_channel().await
    );
    app.live_ready(&topic, &mut events).await;
    app.post_chat("v7-visitor-7f3a9c2e", "c1", "What are your opening hours?")
        .await;
    let mut seen = String::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(chunk) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("\"role\":\"assistant\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{seen}");
    assert!(seen.contains("Monday to Friday"), "{seen}");
    assert!(
        seen.contains("\"role\":\"customer\""),
        "the visitor's own message is echoed: {seen}"
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_widget_are_served() {
    let app = TestApp::spawn().await;
    let get = |p: &'static str| app.http.get(format!("{}{p}", app.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    app.post_chat("v8-visitor-7f3a9c2e", "c1", "hello").await;
    app.wait_count("SELECT count(*) FROM messages WHERE role = 'customer'", 1)
        .await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sb_inbound_total"), "{metrics}");
    assert!(
        metrics.contains(r#"sb_queue_lag_seconds{queue="inbound""#),
        "{metrics}"
    );
    let page = get("/chat/demo").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"const slug = "demo""#));
}

#[tokio::test]
async fn the_widget_shows_the_shops_welcome_as_text() {
    let app = TestApp::spawn_with(test_config(), Parts::GATEWAY).await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    let page = || async {
        app.http
            .get(format!("{}/chat/demo", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(
        page()
            .await
            .contains(r#"<template id="welcome"></template>"#)
    );
    let welcome = "Hi! Ask us about <b>lamps</b> & mugs.";
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
    let err = app
        .services
        .store
        .apply_settings(
            demo,
            &serde_json::json!({"webchat": {"welcome_message": "  "}}),
            switchboard_store::Write::Merge,
            "test",
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("welcome_message"), "{err}");
    let html = page().await;
    assert!(
        html.contains(
            r#"<template id="welcome">Hi! Ask us about &lt;b&gt;lamps&lt;/b&gt; &amp; mugs.</template>"#
        ),
        "the admin's text, escaped"
    );
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let app = TestApp::spawn().await;
    switchboard_store::Store::migrate(&app.config.database.url)
        .await
        .unwrap();
    switchboard_store::Store::migrate(&app.config.database.url)
        .await
        .unwrap();
    assert_eq!(
        app.count("SELECT count(*) FROM tenants WHERE slug = 'demo'")
            .await,
        1
    );
}

#[tokio::test]
async fn one_address_posting_too_fast_gets_429() {
    let mut config = test_config();
    config.server.public_rate_per_ip = 1;
    config.server.public_burst_per_ip = 3;
    let app = TestApp::spawn_with(config, Parts::ALL).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let (status, _) = app
            .post_chat("flood-visitor-7f3a9c2e", &format!("c{i}"), "hello?")
            .await;
        statuses.push(status);
    }
    let limited: Vec<_> = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        statuses[..3].iter().all(|s| *s == StatusCode::ACCEPTED),
        "the burst passes: {statuses:?}"
    );
    assert!(limited.len() >= 2, "the flood is cut: {statuses:?}");
    let mut refused = None;
    for _ in 0..5 {
        let res = app
            .http
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&serde_json::json!({"email": "x@demo.example", "password": "whatever pass"}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(res);
        }
    }
    let refused = refused.expect("sign-in shares the per-address limit");
    assert_eq!(refused.headers()["retry-after"], "1");
}

/// Reading the transcript costs the database, so it shares the per-address limit with
/// posts and streams; and over https the session cookie is `Secure`.
#[tokio::test]
async fn the_transcript_is_limited_per_address_and_cookies_are_secure_over_https() {
    let mut config = crate::helpers::test_config();
    config.server.public_rate_per_ip = 1;
    config.server.public_burst_per_ip = 5;
    config.server.public_url = "https://shop.example".into();
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    let tenant = app.services.store.tenant_id("demo").await.unwrap();
    app.services
        .store
        .add_user(
            tenant,
            "secure@demo.example",
            switchboard_store::Role::Operator,
            "correct horse battery",
        )
        .await
        .unwrap();
    let res = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&serde_json::json!({"email": "secure@demo.example", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let res = app
            .http
            .get(format!("{}/api/webchat/demo/messages", app.base))
            .query(&[("visitor_id", "t1-visitor-7f3a9c2e")])
            .send()
            .await
            .unwrap();
        statuses.push(res.status());
    }
    assert!(
        statuses.contains(&reqwest::StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

/// Open event streams are capped per address (429 past the cap), and every stream ends
/// when the gateway shuts down, so it stops within its grace instead of waiting on them.
#[tokio::test]
async fn event_streams_are_capped_and_end_at_shutdown() {
    let mut config = crate::helpers::test_config();
    config.server.max_streams_per_ip = 2;
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    let open = |visitor: &'static str| {
        app.http
            .get(format!("{}/api/webchat/demo/events", app.base))
            .query(&[("visitor_id", visitor)])
            .send()
    };
    let first = open("e1-visitor-7f3a9c2e").await.unwrap();
    let second = open("e2-visitor-7f3a9c2e").await.unwrap();
    assert_eq!(first.status(), reqwest::StatusCode::OK);
    assert_eq!(second.status(), reqwest::StatusCode::OK);
    let third = open("e3-visitor-7f3a9c2e").await.unwrap();
    assert_eq!(third.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);

    app.shutdown.cancel();
    let mut body = first.bytes_stream();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended when the gateway shut down");
}

/// Pages back through `path` (`?…&limit=2&before=…`) until the first message; the ids of
/// every page, oldest first.
async fn paged(app: &TestApp, path: &str, token: Option<&str>) -> Vec<String> {
    let mut ids = Vec::new();
    let mut before = String::new();
    loop {
        let mut req = app.http.get(format!("{}{path}&limit=2{before}", app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        let got: Vec<String> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(got.len() <= 2, "a page holds at most its limit");
        ids.splice(0..0, got);
        match page["before"].as_str() {
            Some(id) => before = format!("&before={id}"),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn transcripts_and_conversations_come_in_pages() {
    let app = TestApp::spawn().await;
    // Two exchanges, each a message the demo shop answers on its own and its reply.
    for (i, text) in ["Hello", "Do you ship to Berlin?"].iter().enumerate() {
        app.post_chat("v-pages-visitor-7f3a9c2e", &format!("c{i}"), text)
            .await;
        app.handled(&format!("v-pages-visitor-7f3a9c2e:c{i}"), 1)
            .await;
        app.settled().await;
    }
    let transcript = app.transcript("v-pages-visitor-7f3a9c2e").await;
    assert_eq!(
        by_role(&transcript, "assistant").len(),
        2,
        "two questions and their replies: {transcript:#?}"
    );
    let all: Vec<String> = transcript
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        paged(
            &app,
            "/api/webchat/demo/messages?visitor_id=v-pages-visitor-7f3a9c2e",
            None
        )
        .await,
        all
    );

    let op = crate::operators::operator(&app).await;
    let conversation: uuid::Uuid = sqlx::query_scalar("SELECT id FROM conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (_, whole) = op
        .get(&format!("/api/v1/conversations/{conversation}/messages"))
        .await;
    assert!(
        whole["before"].is_null(),
        "one page holds them all by default"
    );
    let whole: Vec<String> = whole["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(whole, all);
    assert_eq!(
        paged(
            &app,
            &format!("/api/v1/conversations/{conversation}/messages?x=1"),
            Some(&op.token)
        )
        .await,
        all
    );
}

/// Behind a reverse proxy every visitor has the proxy's address: the proxy's
/// `X-Forwarded-For` tells them apart, but only from a proxy the configuration trusts; a
/// client writing the header itself gains nothing.
#[tokio::test]
async fn the_per_address_limit_believes_only_trusted_proxies() {
    async fn post(app: &TestApp, from: &str, n: u32) -> StatusCode {
        app.http
            .post(format!("{}/api/webchat/demo/messages", app.base))
            .header("x-forwarded-for", from)
            .json(&serde_json::json!({"visitor_id": "v-proxy-0001-7f3a9c", "client_message_id": format!("c{n}"), "text": "hi"}))
            .send()
            .await
            .unwrap()
            .status()
    }
    let mut config = test_config();
    config.server.public_rate_per_ip = 1;
    config.server.public_burst_per_ip = 1;
    let direct = TestApp::spawn_with(config.clone(), Parts::GATEWAY).await;
    assert_eq!(post(&direct, "203.0.113.1", 1).await, StatusCode::ACCEPTED);
    assert_eq!(
        post(&direct, "203.0.113.2", 2).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a header from an untrusted peer is ignored"
    );

    config.server.trusted_proxies = vec!["127.0.0.1".into()];
    let proxied = TestApp::spawn_with(config, Parts::GATEWAY).await;
    assert_eq!(post(&proxied, "203.0.113.1", 1).await, StatusCode::ACCEPTED);
    assert_eq!(post(&proxied, "203.0.113.2", 2).await, StatusCode::ACCEPTED);
    assert_eq!(
        post(&proxied, "203.0.113.1", 3).await,
        StatusCode::TOO_MANY_REQUESTS,
        "each client behind the proxy has its own limit"
    );
}

/// The widget's page tells browsers who may frame it: the gateway itself, and the sites
/// the shop allowed; an origin that is not one is refused when saved.
#[tokio::test]
async fn the_widget_may_be_framed_only_where_the_shop_allows() {
    let app = TestApp::spawn_with(test_config(), Parts::GATEWAY).await;
    let page = || async {
        let r = app
            .http
            .get(format!("{}/chat/demo", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let h = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        (h("content-security-policy"), h("x-frame-options"))
    };
    assert_eq!(
        page().await,
        (
            Some("frame-ancestors 'self'".to_owned()),
            Some("SAMEORIGIN".to_owned())
        )
    );

    let tenant = app.services.store.tenant_id("demo").await.unwrap();
    let doc = |origins: &[&str]| serde_json::json!({"webchat": {"allowed_origins": origins}});
    app.services
        .store
        .apply_settings(
            tenant,
            &doc(&["https://shop.example", "https://*.shop.example:8443"]),
            switchboard_store::Write::Merge,
            "test",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        page().await,
        (
            Some(
                "frame-ancestors 'self' https://shop.example https://*.shop.example:8443"
                    .to_owned()
            ),
            None
        )
    );
    for bad in [
        "shop.example",
        "https://shop.example/path",
        "https://a.b; script-src *",
        "javascript://x",
    ] {
        let err = app
            .services
            .store
            .apply_settings(
                tenant,
                &doc(&[bad]),
                switchboard_store::Write::Merge,
                "test",
                None,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not an origin"), "{bad}: {err}");
    }
}
