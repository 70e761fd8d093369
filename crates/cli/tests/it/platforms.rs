//! Telegram and WhatsApp end to end: real webhooks into the real app, replies out to local
//! fakes of the platforms' APIs.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::ChannelKind;
use uuid::Uuid;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use switchboard::Parts;

use crate::helpers::{TestApp, test_config};
use switchboard_fakes::FakePlatform;

// Generous: a loaded CI machine runs two suites of these at once; a pass takes a few seconds.
const WAIT: Duration = Duration::from_secs(30);
pub const SECRET: &str = "tg-secret-token";
const APP_SECRET: &str = "wa-app-secret";
const PHONE: &str = "PN1";

pub async fn telegram_channel(app: &TestApp, fake: &FakePlatform) -> Uuid {
    app.add_channel(
        ChannelKind::Telegram,
        json!({"api_base_url": fake.base_url, "bot_username": "shop_bot"}),
        json!({"bot_token": "123:ABC", "secret_token": SECRET}),
    )
    .await
}

pub async fn whatsapp_channel(app: &TestApp, fake: &FakePlatform, template: Option<Value>) -> Uuid {
    app.add_channel(
        ChannelKind::Whatsapp,
        json!({"api_base_url": fake.base_url, "phone_number_id": PHONE, "reengagement_template": template}),
        json!({"access_token": "wa-token", "app_secret": APP_SECRET, "verify_token": "wa-verify"}),
    )
    .await
}

pub fn tg_update(update_id: i64, chat: i64, message_id: i64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {
        "message_id": message_id, "date": 1_700_000_000, "text": text,
        "from": {"id": chat, "is_bot": false, "first_name": "Ada"},
        "chat": {"id": chat, "type": "private", "first_name": "Ada"}}})
}

pub async fn post_tg(
    app: &TestApp,
    channel: Uuid,
    secret: Option<&str>,
    body: &Value,
) -> StatusCode {
    let mut req = app
        .http
        .post(format!("{}/webhooks/telegram/{channel}", app.base))
        .json(body);
    if let Some(s) = secret {
        req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
    }
    req.send().await.unwrap().status()
}

pub fn wa_message(from: &str, id: &str, text: &str) -> Value {
    json!({"from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": text}})
}

pub fn wa_body(messages: Vec<Value>, statuses: Vec<Value>) -> Vec<u8> {
    let contacts: Vec<Value> = messages
        .iter()
        .map(|m| json!({"wa_id": m["from"], "profile": {"name": "Customer"}}))
        .collect();
    serde_json::to_vec(
        &json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE},
            "contacts": contacts, "messages": messages, "statuses": statuses}}]}]}),
    )
    .unwrap()
}

pub fn sign(body: &[u8]) -> String {
    switchboard_fakes::whatsapp_signature(APP_SECRET, body)
}

async fn post_wa(
    app: &TestApp,
    channel: Uuid,
    body: &[u8],
    signature: Option<String>,
) -> StatusCode {
    let mut req = app
        .http
        .post(format!("{}/webhooks/whatsapp/{channel}", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("X-Hub-Signature-256", s);
    }
    req.send().await.unwrap().status()
}

/// A config whose worker takes one inbound delivery at a time, for tests that repeat a
/// webhook: a repeat that comes while the first copy is still on its way is queued too,
/// and `inbound_drained` then tells when every copy is done.
fn one_at_a_time() -> switchboard_runtime::Config {
    let mut config = test_config();
    config.amqp.prefetch = 1;
    config
}

/// One signed WhatsApp text message from `from`, accepted.
async fn customer_writes(app: &TestApp, channel: Uuid, from: &str, id: &str, text: &str) {
    let body = wa_body(vec![wa_message(from, id, text)], vec![]);
    assert_eq!(
        post_wa(app, channel, &body, Some(sign(&body))).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_telegram_update_gets_one_reply_with_typing_first() {
    let app = TestApp::spawn_with(one_at_a_time(), Parts::ALL).await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    app.exec("UPDATE tenants SET working_hours_start = '00:00', working_hours_end = '23:59:59', working_days = '{1,2,3,4,5,6,7}'").await;
    app.exec("INSERT INTO human_delay_settings (tenant_id, enabled, min_delay_ms, max_delay_ms) SELECT id, true, 1500, 1500 FROM tenants").await;

    let update = tg_update(5001, 4242, 77, "Do you ship to Berlin?");
    for _ in 0..3 {
        // Telegram retries a webhook it thinks failed: one reply all the same.
        assert_eq!(
            post_tg(&app, channel, Some(SECRET), &update).await,
            StatusCode::OK
        );
    }
    let sent = fake.wait_for("sendmessage", 1, WAIT).await;
    assert_eq!(sent[0].body["chat_id"], 4242);
    assert!(sent[0].body["text"].as_str().unwrap().contains("DHL"));
    assert_eq!(sent[0].body["reply_parameters"]["message_id"], 77);
    let typing = fake.requests("sendchataction");
    assert!(
        !typing.is_empty() && typing[0].at < sent[0].at,
        "typing comes first"
    );
    assert_eq!(typing[0].body["action"], "typing");
    app.handled("update:5001", 1).await;
    app.inbound_drained().await;
    app.settled().await;
    assert_eq!(fake.requests("sendmessage").len(), 1);
    let external: String =
        sqlx::query_scalar("SELECT external_id FROM messages WHERE role = 'assistant'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(external, "4242:1001");
}

#[tokio::test]
async fn telegram_webhooks_refuse_bad_secrets_and_bodies() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    let update = tg_update(1, 1, 1, "hi");
    assert_eq!(
        post_tg(&app, channel, None, &update).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_tg(&app, channel, Some("wrong"), &update).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_tg(&app, Uuid::now_v7(), Some(SECRET), &update).await,
        StatusCode::NOT_FOUND
    );
    let r = app
        .http
        .post(format!("{}/webhooks/telegram/{channel}", app.base))
        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .body("{\"update_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An update kind we do not handle is acknowledged, not failed.
    let boost = json!({"update_id": 2, "chat_boost": {"chat": {"id": 1, "type": "channel"}}});
    assert_eq!(
        post_tg(&app, channel, Some(SECRET), &boost).await,
        StatusCode::OK
    );
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
}

#[tokio::test]
async fn a_429_is_waited_out_and_a_blocked_user_fails_fast() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    fake.script(
        "sendmessage",
        429,
        json!({"ok": false, "error_code": 429,
        "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
    );
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &tg_update(1, 100, 1, "Do you ship to Berlin?"),
    )
    .await;
    let sent = fake.wait_for("sendmessage", 2, WAIT).await;
    assert!(
        sent[1].at - sent[0].at >= Duration::from_millis(950),
        "retry_after was obeyed"
    );
    app.wait_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 1)
        .await;

    fake.script("sendmessage", 403, json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}));
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &tg_update(2, 200, 1, "Do you ship to Berlin?"),
    )
    .await;
    fake.wait_for("sendmessage", 3, WAIT).await;
    let start = std::time::Instant::now();
    loop {
        let row: Option<(String, i32, String)> = sqlx::query_as(
            "SELECT o.status, o.attempts, o.last_error FROM outbox o JOIN conversations c ON c.id = o.conversation_id
             JOIN customers cu ON cu.id = c.customer_id WHERE cu.external_id = '200' AND o.status <> 'pending'",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if let Some((status, attempts, error)) = row {
            assert_eq!((status.as_str(), attempts), ("failed", 1));
            assert!(error.contains("blocked"), "{error}");
            break;
        }
        assert!(start.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM customers WHERE external_id = '200' AND unreachable")
            .await,
        1
    );
    app.handled("update:2", 1).await;
    app.settled().await;
    assert_eq!(
        fake.requests("sendmessage").len(),
        3,
        "no retry for a blocked user"
    );
}

#[tokio::test]
async fn whatsapp_verification_and_signatures() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::whatsapp().await;
    let channel = whatsapp_channel(&app, &fake, None).await;
    let url = format!("{}/webhooks/whatsapp/{channel}", app.base);
    let ok = app
        .http
        .get(&url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "wa-verify"),
            ("hub.challenge", "1158201444"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let bad = app
        .http
        .get(&url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "nope"),
            ("hub.challenge", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);

    let body = wa_body(
        vec![wa_message(
            "491700000001",
            "wamid.in.1",
            "Do you ship to Berlin?",
        )],
        vec![],
    );
    assert_eq!(
        post_wa(&app, channel, &body, None).await,
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    assert_eq!(
        post_wa(&app, channel, &tampered, Some(sign(&body))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_wa(&app, channel, b"[]", Some(sign(b"[]"))).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
}

#[tokio::test]
async fn a_whatsapp_batch_with_two_messages_and_a_status_is_handled() {
    let app = TestApp::spawn_with(one_at_a_time(), Parts::ALL).await;
    let fake = FakePlatform::whatsapp().await;
    let channel = whatsapp_channel(&app, &fake, None).await;
    let send = format!("{PHONE}/messages");

    // A first exchange gives us an outbound message whose status the batch reports.
    customer_writes(
        &app,
        channel,
        "491700000001",
        "wamid.in.1",
        "Do you ship to Berlin?",
    )
    .await;
    let sent = fake.wait_for(&send, 1, WAIT).await;
    assert_eq!(sent[0].body["to"], "491700000001");
    assert_eq!(sent[0].body["context"]["message_id"], "wamid.in.1");
    app.wait_count(
        "SELECT count(*) FROM messages WHERE external_id = 'wamid.out.1'",
        1,
    )
    .await;

    let batch = wa_body(
        vec![
            wa_message("491700000002", "wamid.in.2", "Do you ship to Berlin?"),
            wa_message("491700000003", "wamid.in.3", "How much is the coffee mug?"),
        ],
        vec![
            json!({"id": "wamid.out.1", "status": "read", "timestamp": "1700000001", "recipient_id": "491700000001"}),
        ],
    );
    for _ in 0..3 {
        assert_eq!(
            post_wa(&app, channel, &batch, Some(sign(&batch))).await,
            StatusCode::OK
        );
    }
    let sent = fake.wait_for(&send, 3, WAIT).await;
    let mut to: Vec<String> = sent[1..]
        .iter()
        .map(|r| r.body["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["491700000002", "491700000003"]);
    let status: String = sqlx::query_scalar(
        "SELECT delivery_status FROM messages WHERE external_id = 'wamid.out.1'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "read");
    for job in [
        "msg:wamid.in.2",
        "msg:wamid.in.3",
        "status:wamid.out.1:read",
    ] {
        app.handled(job, 1).await;
    }
    app.inbound_drained().await;
    app.settled().await;
    assert_eq!(
        fake.requests(&send).len(),
        3,
        "the repeated batch gave no new reply"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE role = 'customer'")
            .await,
        3
    );
}

/// A platform's retry of a message already queued is answered 200 without a new job; a
/// new message is queued.
#[tokio::test]
async fn a_repeat_of_a_queued_webhook_makes_no_new_job() {
    let config = test_config();
    let parts = Parts {
        ai_worker: false,
        ..Parts::ALL
    };
    let app = TestApp::spawn_with(config.clone(), parts).await;
    let fake = FakePlatform::whatsapp().await;
    let channel = whatsapp_channel(&app, &fake, None).await;
    let first = wa_body(
        vec![wa_message("491700000009", "wamid.rep.1", "Hi")],
        vec![],
    );
    for _ in 0..3 {
        assert_eq!(
            post_wa(&app, channel, &first, Some(sign(&first))).await,
            StatusCode::OK
        );
    }
    let second = wa_body(
        vec![wa_message("491700000009", "wamid.rep.2", "Hi")],
        vec![],
    );
    assert_eq!(
        post_wa(&app, channel, &second, Some(sign(&second))).await,
        StatusCode::OK
    );
    let conn = lapin::Connection::connect(&config.amqp.url, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let queue = config.amqp.queue(switchboard_bus::INBOUND);
    let jobs = ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count();
    assert_eq!(jobs, 2, "one job per message, none for the repeats");
}

/// Webhooks that arrive together share broker messages (group commit); each message in
/// them is still stored once and answered once, and a repeat is still dropped.
#[tokio::test]
async fn webhooks_arriving_together_each_get_one_reply() {
    let app = TestApp::spawn_with(one_at_a_time(), Parts::ALL).await;
    let fake = FakePlatform::whatsapp().await;
    let channel = whatsapp_channel(&app, &fake, None).await;
    let send = format!("{PHONE}/messages");
    let bodies: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            wa_body(
                vec![wa_message(
                    &format!("4917000010{i:02}"),
                    &format!("wamid.together.{i}"),
                    "Do you ship to Berlin?",
                )],
                vec![],
            )
        })
        .collect();
    // Every body twice, all at once: 60 requests in flight.
    let posts = bodies
        .iter()
        .chain(&bodies)
        .map(|b| post_wa(&app, channel, b, Some(sign(b))));
    let statuses = futures::future::join_all(posts).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );

    let sent = fake.wait_for(&send, 30, WAIT).await;
    let mut to: Vec<String> = sent
        .iter()
        .map(|r| r.body["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 30, "every customer answered");
    for i in 0..30 {
        app.handled(&format!("msg:wamid.together.{i}"), 1).await;
    }
    app.inbound_drained().await;
    app.settled().await;
    assert_eq!(fake.requests(&send).len(), 30, "and nobody twice");
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE role = 'customer'")
            .await,
        30
    );
}

#[tokio::test]
async fn a_closed_window_holds_the_draft_and_131047_sends_the_template() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::whatsapp().await;
    let channel = whatsapp_channel(
        &app,
        &fake,
        Some(json!({"name": "reopen_chat", "language": "en"})),
    )
    .await;
    let send = format!("{PHONE}/messages");
    app.exec("UPDATE decision_settings SET debounce_quiet_ms = 1500")
        .await;

    // Meta reports, while the message waits for its quiet window, that this customer's
    // window is closed: the draft is held for approval.
    customer_writes(
        &app,
        channel,
        "491700000009",
        "wamid.in.9",
        "Do you ship to Berlin?",
    )
    .await;
    while app.count("SELECT count(*) FROM messages").await == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed = wa_body(
        vec![],
        vec![
            json!({"id": "wamid.old", "status": "failed", "timestamp": "1700000002",
        "recipient_id": "491700000009", "errors": [{"code": 131047, "title": "Re-engagement message"}]}),
        ],
    );
    assert_eq!(
        post_wa(&app, channel, &failed, Some(sign(&failed))).await,
        StatusCode::OK
    );
    let start = std::time::Instant::now();
    let (decision, reason) = loop {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT decision, autosend_block_reason FROM ai_suggestions")
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if let Some(r) = row {
            break r;
        }
        assert!(start.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (decision.as_str(), reason.as_deref()),
        ("NEED_APPROVAL", Some("WINDOW_CLOSED"))
    );
    assert!(fake.requests(&send).is_empty());

    // A send that meets 131047 fails with the reason and the template goes out instead.
    fake.script(&send, 400, json!({"error": {"message": "Re-engagement message", "type": "OAuthException", "code": 131047,
        "error_data": {"details": "More than 24 hours have passed"}}}));
    customer_writes(
        &app,
        channel,
        "491700000010",
        "wamid.in.10",
        "Do you ship to Berlin?",
    )
    .await;
    let sent = fake.wait_for(&send, 2, WAIT).await;
    assert_eq!(sent[1].body["type"], "template");
    assert_eq!(sent[1].body["template"]["name"], "reopen_chat");
    app.wait_count(
        "SELECT count(*) FROM outbox WHERE status = 'failed' AND last_error LIKE '%24 hours%'",
        1,
    )
    .await;
}

#[tokio::test]
async fn one_chat_gets_at_most_one_message_a_second_even_from_two_dispatchers() {
    let app = TestApp::spawn().await;
    // A second dispatcher with its own connections: another process as far as limits go.
    let other = switchboard_runtime::Services::connect(app.config.clone())
        .await
        .unwrap();
    tokio::spawn(switchboard_dispatcher::run(other, app.shutdown.clone()));
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &tg_update(1, 555, 1, "Do you ship to Berlin?"),
    )
    .await;
    fake.wait_for("sendmessage", 1, WAIT).await;

    app.exec(
        "INSERT INTO outbox (id, tenant_id, conversation_id, channel_id, message_id, role, body, idempotency_key)
         SELECT gen_random_uuid(), c.tenant_id, c.id, c.channel_id, gen_random_uuid(), 'operator', 'update ' || n, 'burst:' || n
         FROM conversations c, generate_series(1, 4) n",
    )
    .await;
    let sent = fake.wait_for("sendmessage", 5, WAIT).await;
    let times: Vec<_> = sent[1..].iter().map(|r| r.at).collect();
    // Slots are reserved a second apart; what arrives here may jitter by scheduling.
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(900),
            "two messages {gap:?} apart reached one chat"
        );
    }
    assert!(
        times[3] - times[0] >= Duration::from_millis(2900),
        "four messages took at least three seconds"
    );
}

#[tokio::test]
async fn telegram_error_responses_map_to_what_the_dispatcher_must_do() {
    use switchboard_channels::telegram::outbound::TelegramAdapter;
    use switchboard_core::{ChannelAdapter, OutboundMessage, SendError};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/telegram/api_responses");
    let fixture = |name: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(dir.join(format!("teloxide__response__{name}.json"))).unwrap(),
        )
        .unwrap()
    };
    let fake = FakePlatform::telegram().await;
    let adapter =
        TelegramAdapter::new(reqwest::Client::new(), &"1:T".into(), &fake.base_url).unwrap();
    let msg = OutboundMessage {
        message_id: Uuid::nil(),
        tenant_id: Uuid::nil(),
        channel_id: Uuid::nil(),
        conversation_id: Uuid::nil(),
        recipient: "42".into(),
        part: 0,
        text: "hi".into(),
        reply_to_external_id: None,
        choices: vec![],
        human_sent: false,
        role: "assistant".into(),
        reply_context: serde_json::Value::Null,
    };
    fake.script("sendmessage", 400, fixture("migrate"));
    assert_eq!(
        adapter.send(&msg).await,
        Err(SendError::Moved {
            recipient: "123456".into()
        })
    );
    fake.script("sendmessage", 429, fixture("retry_after"));
    assert!(matches!(adapter.send(&msg).await,
        Err(SendError::Retryable { retry_after: Some(d), .. }) if d == Duration::from_secs(123456)));
    fake.script("sendmessage", 403, fixture("smoke_err"));
    assert!(
        matches!(adapter.send(&msg).await, Err(SendError::Unreachable { reason }) if reason.contains("blocked"))
    );
    // `true` is no message: a broken answer is worth retrying, never a silent success.
    fake.script("sendmessage", 200, fixture("smoke_ok"));
    assert!(matches!(
        adapter.send(&msg).await,
        Err(SendError::Retryable { .. })
    ));
    fake.script("sendchataction", 200, fixture("smoke_ok"));
    assert_eq!(adapter.typing(&msg).await, Ok(()));
}

#[tokio::test]
async fn a_long_polled_update_gets_one_reply_and_the_offset_survives_a_restart() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::telegram().await;
    let ok = |updates: Value| json!({"ok": true, "result": updates});
    // One real update, and one Telegram sent that nobody can parse: it is stepped over.
    fake.script("getupdates", 200, ok(json!([tg_update(9001, 777, 5, "Do you ship to Berlin?"), {"update_id": 9002, "message": {"junk": true}}])));
    let channel = app
        .add_channel(
            ChannelKind::Telegram,
            json!({"api_base_url": fake.base_url, "long_polling": true}),
            json!({"bot_token": "123:ABC", "secret_token": SECRET}),
        )
        .await;
    let sent = fake.wait_for("sendmessage", 1, WAIT).await;
    assert_eq!(sent[0].body["chat_id"], 777);
    let polls = fake.wait_for("getupdates", 2, WAIT).await;
    assert_eq!(polls[0].body.get("offset"), None);
    assert_eq!(
        polls[1].body["offset"], 9003,
        "the offset moves past the whole batch"
    );
    let offset: i64 =
        sqlx::query_scalar("SELECT telegram_offset FROM channel_cursors WHERE channel_id = $1")
            .bind(channel)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(offset, 9003);

    // A restarted listener carries on from the stored offset, and the update is not answered again.
    let restarted = switchboard_runtime::Services::connect(app.config.clone())
        .await
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let fresh = FakePlatform::telegram().await;
    app.exec(&format!(
        "UPDATE channels SET config = config || '{{\"api_base_url\": \"{}\"}}'",
        fresh.base_url
    ))
    .await;
    app.shutdown.cancel();
    tokio::spawn(switchboard_listener::run(restarted, stop.clone()));
    let polls = fresh.wait_for("getupdates", 1, WAIT).await;
    assert_eq!(polls[0].body["offset"], 9003);
    stop.cancel();
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE role = 'customer'")
            .await,
        1
    );
}

#[tokio::test]
async fn telegram_buttons_edits_and_migrated_groups() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;

    // A button press is answered with answerCallbackQuery and handled like a message.
    let press = json!({"update_id": 10, "callback_query": {"id": "cbq-1", "data": "Do you ship to Berlin?",
        "from": {"id": 31, "is_bot": false, "first_name": "Ada"},
        "message": {"message_id": 3, "date": 1, "chat": {"id": 31, "type": "private"}, "text": "Pick one"}}});
    assert_eq!(
        post_tg(&app, channel, Some(SECRET), &press).await,
        StatusCode::OK
    );
    let answered = fake.wait_for("answercallbackquery", 1, WAIT).await;
    assert_eq!(answered[0].body["callback_query_id"], "cbq-1");
    fake.wait_for("sendmessage", 1, WAIT).await;

    // An edit changes the stored text and starts no new turn.
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &tg_update(11, 31, 4, "How much is the coffee mug?"),
    )
    .await;
    fake.wait_for("sendmessage", 2, WAIT).await;
    let edit = json!({"update_id": 12, "edited_message": {"message_id": 4, "date": 1, "edit_date": 2,
        "text": "Do you ship to Paris?", "from": {"id": 31, "is_bot": false, "first_name": "Ada"},
        "chat": {"id": 31, "type": "private"}}});
    assert_eq!(
        post_tg(&app, channel, Some(SECRET), &edit).await,
        StatusCode::OK
    );
    app.wait_count("SELECT count(*) FROM messages WHERE external_id = '31:4' AND content = 'Do you ship to Paris?' AND edited_at IS NOT NULL", 1).await;
    app.handled("update:12", 1).await;
    app.settled().await;
    assert_eq!(
        fake.requests("sendmessage").len(),
        2,
        "an edit is no new turn"
    );

    // A group that became a supergroup: the reply follows it to the new chat id. Nothing
    // else may be on its way out, or it could meet the scripted answer instead.
    app.wait_count(
        "SELECT CASE WHEN count(*) = 0 THEN 1::bigint ELSE 0 END FROM outbox WHERE status = 'pending'",
        1,
    )
    .await;
    fake.script("sendmessage", 400, json!({"ok": false, "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat", "parameters": {"migrate_to_chat_id": -100777}}));
    post_tg(
        &app,
        channel,
        Some(SECRET),
        &tg_update(13, 88, 9, "Do you ship to Berlin?"),
    )
    .await;
    // The first try goes to the old group id and meets the migration; the retry follows.
    let start = std::time::Instant::now();
    let sent = loop {
        let sent = fake.requests("sendmessage");
        if sent.iter().any(|r| r.body["chat_id"] == -100777) {
            break sent;
        }
        assert!(
            start.elapsed() < WAIT,
            "no send reached the supergroup: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let old = sent
        .iter()
        .position(|r| r.body["chat_id"] == 88)
        .expect("a first try to the old id");
    let new = sent
        .iter()
        .position(|r| r.body["chat_id"] == -100777)
        .unwrap();
    assert!(old < new);
    app.wait_count(
        "SELECT count(*) FROM customers WHERE external_id = '-100777'",
        1,
    )
    .await;
}

#[tokio::test]
async fn a_draft_that_offers_choices_goes_out_as_buttons() {
    use crate::fake_llm::{FakeLlm, Scripted};
    let app = TestApp::spawn().await;
    let wa = FakePlatform::whatsapp().await;
    let channel = whatsapp_channel(&app, &wa, None).await;
    let (doc, body): (String, String) = sqlx::query_as(
        "SELECT 'doc:' || id::text, body FROM knowledge_docs WHERE title = 'Shipping and delivery'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let llm = FakeLlm::start(vec![
        Scripted::json(json!({"reply": body, "intent": "shipping", "intent_score": 0.9, "questions_to_ask": [],
            "used_sources": [doc], "missing_fields": [], "need_handoff": false, "choices": ["Germany", "Rest of the EU"]})),
        Scripted::json(json!({"self_check_score": 1.0, "reasons": [], "need_handoff": false})),
    ])
    .await;
    sqlx::query("INSERT INTO llm_settings (tenant_id, provider, base_url, model) SELECT id, 'openai', $1, 'm' FROM tenants")
        .bind(&llm.base_url)
        .execute(&app.pool)
        .await
        .unwrap();
    customer_writes(
        &app,
        channel,
        "491700000020",
        "wamid.in.20",
        "Do you ship to Berlin?",
    )
    .await;
    let sent = wa.wait_for(&format!("{PHONE}/messages"), 1, WAIT).await;
    let i = &sent[0].body["interactive"];
    assert_eq!(sent[0].body["type"], "interactive");
    assert_eq!(i["type"], "button");
    assert_eq!(i["body"]["text"], body.as_str());
    assert_eq!(
        i["action"]["buttons"][1]["reply"]["title"],
        "Rest of the EU"
    );
    assert_eq!(sent[0].body["context"]["message_id"], "wamid.in.20");
}

/// A webhook for a channel of another kind is an unknown channel (404), not a server
/// error: the web chat has no Telegram secret to check.
#[tokio::test]
async fn a_webhook_to_a_channel_of_another_kind_is_404() {
    let app = TestApp::spawn().await;
    let webchat = app.webchat_channel().await;
    let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 1_700_000_000,
        "chat": {"id": 1, "type": "private", "first_name": "A"}, "text": "hi"}});
    for _ in 0..2 {
        assert_eq!(
            post_tg(&app, webchat, Some(SECRET), &update).await,
            StatusCode::NOT_FOUND
        );
    }
    let res = app
        .http
        .post(format!("{}/webhooks/whatsapp/{webchat}", app.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// A body for another number, signed with the app secret several numbers (and tenants)
/// share, is not stored in this channel; the body for this number beside it is.
#[tokio::test]
async fn a_whatsapp_body_for_another_number_is_not_stored_here() {
    let app = TestApp::spawn().await;
    let fake = FakePlatform::whatsapp().await;
    let channel = whatsapp_channel(&app, &fake, None).await;
    let foreign = String::from_utf8(wa_body(
        vec![wa_message("491700000009", "wamid.foreign", "Not for you")],
        vec![],
    ))
    .unwrap()
    .replace(PHONE, "PN-OTHER");
    let mut doc: Value = serde_json::from_str(&foreign).unwrap();
    let ours: Value = serde_json::from_slice(&wa_body(
        vec![wa_message(
            "491700000001",
            "wamid.ours",
            "Do you ship to Berlin?",
        )],
        vec![],
    ))
    .unwrap();
    doc["entry"]
        .as_array_mut()
        .unwrap()
        .push(ours["entry"][0].clone());
    let body = serde_json::to_vec(&doc).unwrap();
    assert_eq!(
        post_wa(&app, channel, &body, Some(sign(&body))).await,
        StatusCode::OK
    );
    app.handled("msg:wamid.ours", 1).await;
    app.settled().await;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT content FROM messages WHERE role = 'customer'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, ["Do you ship to Berlin?"]);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM inbound_receipts WHERE provider_event_id = 'msg:wamid.foreign'"
        )
        .await,
        0
    );
}
