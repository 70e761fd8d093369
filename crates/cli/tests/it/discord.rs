//! Discord end to end against the fake Discord: the listener's Gateway session with
//! serenity, the backfill after a cut or a restart, leases between listeners, REST sends
//! through the dispatcher with Discord's limits, and the signed interactions endpoint.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::ChannelKind;
use switchboard_fakes::discord::{BOT_ID, FakeDiscord};
use uuid::Uuid;

use crate::helpers::{TestApp, role_process};

const WAIT: Duration = Duration::from_secs(30);
const CUSTOMER: &str = "3000000000000000001";
const DM: &str = "4000000000000000001";

pub async fn discord_channel(app: &TestApp, fake: &FakeDiscord, extra: Value) -> Uuid {
    let mut config = json!({
        "api_base_url": fake.base_url,
        "application_id": BOT_ID,
        "public_key": hex::encode(signing_key().verifying_key().to_bytes()),
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            config[k] = v;
        }
    }
    app.add_channel(
        ChannelKind::Discord,
        config,
        json!({"bot_token": "bot-token"}),
    )
    .await
}

fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
}

#[tokio::test]
async fn a_direct_message_is_answered_once_with_a_nonce() {
    let app = TestApp::spawn().await;
    let fake = FakeDiscord::start().await;
    discord_channel(&app, &fake, json!({})).await;
    fake.wait_identified(1, WAIT).await;
    let id = fake.customer_says(DM, CUSTOMER, "Do you ship to Berlin?", json!({}));
    let sent = fake.wait_bot_messages(DM, 1, WAIT).await;
    app.settled().await;
    assert_eq!(fake.bot_messages(DM).len(), 1, "answered once");
    let post = &fake.calls(&format!("POST /channels/{DM}/messages"))[0].body;
    assert_eq!(post["enforce_nonce"], true);
    assert!(
        post["nonce"]
            .as_str()
            .is_some_and(|n| !n.is_empty() && n.len() <= 25)
    );
    assert_eq!(post["message_reference"]["message_id"], id.as_str());
    assert!(
        sent[0]["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("ship")
    );
    // The bot's own message came back over the Gateway and was not taken for a customer's.
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE role = 'customer'")
            .await,
        1
    );
}

const GUILD: &str = "5000000000000000001";
const ROOM: &str = "5100000000000000001";
const THREAD: &str = "5200000000000000001";

fn mention() -> Value {
    json!({"mentions": [{"id": BOT_ID, "username": "shop", "discriminator": "0", "bot": true,
                          "global_name": null, "avatar": null}]})
}

#[tokio::test]
async fn guild_messages_need_a_mention_threads_are_apart_and_edits_and_deletes_are_kept() {
    let app = TestApp::spawn().await;
    let fake = FakeDiscord::start().await;
    fake.guild_channel(ROOM, GUILD);
    fake.guild_channel(THREAD, GUILD);
    discord_channel(&app, &fake, json!({})).await;
    fake.wait_identified(1, WAIT).await;

    let unaddressed = fake.customer_says(ROOM, CUSTOMER, "anyone here like pizza?", json!({}));
    let asked = fake.customer_says(
        ROOM,
        CUSTOMER,
        &format!("<@{BOT_ID}> Do you ship to Berlin?"),
        mention(),
    );
    app.handled(&format!("message:{asked}"), 1).await;
    // Events are handled in order: the first was judged before the second was queued.
    assert_eq!(
        app.handled_count(&format!("message:{unaddressed}")).await,
        0
    );
    let stored: String = sqlx::query_scalar("SELECT content FROM messages WHERE external_id = $1")
        .bind(&asked)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        stored, "Do you ship to Berlin?",
        "the mention is not part of the text"
    );
    fake.wait_bot_messages(ROOM, 1, WAIT).await;

    let in_thread = fake.customer_says(
        THREAD,
        CUSTOMER,
        &format!("<@{BOT_ID}> Do you ship to Berlin?"),
        mention(),
    );
    fake.wait_bot_messages(THREAD, 1, WAIT).await;
    app.settled().await;
    let conversations: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.external_id, count(*) FROM messages m JOIN conversations v ON v.id = m.conversation_id
           JOIN customers c ON c.id = v.customer_id WHERE m.role = 'customer'
          GROUP BY c.external_id ORDER BY c.external_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        conversations,
        vec![(ROOM.to_owned(), 1), (THREAD.to_owned(), 1)],
        "the thread is a conversation of its own"
    );
    assert_eq!(fake.bot_messages(ROOM).len(), 1);

    fake.customer_edits(
        THREAD,
        &in_thread,
        &format!("<@{BOT_ID}> Do you ship to Paris?"),
    );
    app.wait_count(
        &format!("SELECT count(*) FROM messages WHERE external_id = '{in_thread}' AND content = 'Do you ship to Paris?' AND edited_at IS NOT NULL"),
        1,
    )
    .await;
    fake.dispatch(
        "MESSAGE_DELETE",
        json!({"id": asked, "channel_id": ROOM, "guild_id": GUILD}),
    );
    app.wait_count(
        &format!("SELECT count(*) FROM messages WHERE external_id = '{asked}' AND metadata ? 'deleted_at'"),
        1,
    )
    .await;
}

/// A reply over 2,000 characters goes out in parts; a 429 on the second part is waited
/// out for its `retry_after`, with no request in between, and the part goes once.
#[tokio::test]
async fn a_long_reply_goes_in_parts_and_a_429_is_waited_out() {
    let app = TestApp::spawn().await;
    let fake = FakeDiscord::start().await;
    discord_channel(&app, &fake, json!({})).await;
    fake.wait_identified(1, WAIT).await;
    fake.customer_says(DM, CUSTOMER, "Do you ship to Berlin?", json!({}));
    fake.wait_bot_messages(DM, 1, WAIT).await;
    app.settled().await;
    let conv: Uuid = sqlx::query_scalar("SELECT id FROM conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let before = fake.calls(&format!("POST /channels/{DM}/messages")).len();

    let text = format!(
        "{}{}",
        "We ship to Berlin. ".repeat(80),
        "Parcels take two days. ".repeat(40)
    );
    fake.script(200, json!({"id": fake.next_id(), "channel_id": DM}), vec![]);
    fake.script(
        429,
        json!({"message": "You are being rate limited.", "retry_after": 1.2, "global": false}),
        vec![
            ("retry-after", "2".into()),
            ("x-ratelimit-scope", "user".into()),
        ],
    );
    let (status, _) = crate::operators::operator(&app)
        .await
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": text}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    fake.wait_bot_messages(DM, 2, WAIT).await;
    app.settled().await;
    let posts = fake.calls(&format!("POST /channels/{DM}/messages"));
    let posts = &posts[before..];
    assert_eq!(posts.len(), 3, "part one, part two refused, part two again");
    let content = |i: usize| posts[i].body["content"].as_str().unwrap().to_owned();
    assert!(content(0).chars().count() <= 2000 && content(1).chars().count() <= 2000);
    assert_eq!(content(1), content(2));
    assert_eq!(format!("{} {}", content(0), content(1)), text.trim());
    assert_eq!(
        posts[1].body["nonce"], posts[2].body["nonce"],
        "the retry is the same send"
    );
    assert_ne!(posts[0].body["nonce"], posts[1].body["nonce"]);
    let waited = posts[2].at - posts[1].at;
    assert!(
        waited >= Duration::from_millis(1200),
        "retry_after was honoured: {waited:?}"
    );
}

/// The interactions endpoint: Ed25519 checked first (401), a ping answered, a malformed
/// body refused with the reason, and a button press queued before it is acknowledged.
#[tokio::test]
async fn signed_interactions_are_verified_and_a_button_press_is_answered() {
    use ed25519_dalek::Signer;
    let app = TestApp::spawn().await;
    let fake = FakeDiscord::start().await;
    let channel = discord_channel(&app, &fake, json!({})).await;
    let url = format!("{}/webhooks/discord/{channel}", app.base);
    let post = |body: String, signature: Option<String>| {
        let mut req = app
            .http
            .post(&url)
            .header("x-signature-timestamp", "1700000000")
            .header("content-type", "application/json")
            .body(body.clone());
        let sig = signature.unwrap_or_else(|| {
            hex::encode(
                signing_key()
                    .sign(format!("1700000000{body}").as_bytes())
                    .to_bytes(),
            )
        });
        req = req.header("x-signature-ed25519", sig);
        req.send()
    };
    let ping = json!({"id": "1", "type": 1, "application_id": BOT_ID, "token": "t"}).to_string();
    let forged = hex::encode([0u8; 64]);
    assert_eq!(
        post(ping.clone(), Some(forged)).await.unwrap().status(),
        401
    );
    let pong = post(ping, None).await.unwrap();
    assert_eq!(pong.status(), 200);
    assert_eq!(pong.json::<Value>().await.unwrap(), json!({"type": 1}));
    let bad = post("{\"type\":".into(), None).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("malformed"));

    let press = json!({"id": "6000000000000000001", "type": 3, "token": "tok", "channel_id": DM,
        "application_id": BOT_ID,
        "user": {"id": CUSTOMER, "username": "ada", "global_name": "Ada"},
        "data": {"custom_id": "c0:Do you ship to Berlin?", "component_type": 2},
        "message": {"id": "6100000000000000001", "channel_id": DM}});
    let ack = post(press.to_string(), None).await.unwrap();
    assert_eq!(ack.status(), 200);
    assert_eq!(ack.json::<Value>().await.unwrap(), json!({"type": 6}));
    app.handled("interaction:6000000000000000001", 1).await;
    let reply = fake.wait_bot_messages(DM, 1, WAIT).await;
    assert!(
        reply[0]["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("ship")
    );
    let text: String = sqlx::query_scalar(
        "SELECT content FROM messages WHERE external_id = 'interaction:6000000000000000001'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(text, "Do you ship to Berlin?");
}

/// A button pressed over the Gateway is queued, acknowledged within Discord's time with a
/// deferred update, and answered.
#[tokio::test]
async fn a_button_pressed_over_the_gateway_is_acknowledged_and_answered() {
    let app = TestApp::spawn().await;
    let fake = FakeDiscord::start().await;
    fake.guild_channel(ROOM, GUILD);
    discord_channel(&app, &fake, json!({})).await;
    fake.wait_identified(1, WAIT).await;
    let pressed = fake.press(ROOM, &fake.next_id(), "c1:Do you ship to Berlin?", CUSTOMER);
    let reply = fake.wait_bot_messages(ROOM, 1, WAIT).await;
    assert!(
        reply[0]["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("ship")
    );
    let acks = fake.calls(&format!(
        "POST /interactions/{pressed}/tok{pressed}/callback"
    ));
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].body, json!({"type": 6}));
}

/// Messages sent while the connection was cut are read by the backfill after the client
/// identifies again, and each is answered once.
#[tokio::test]
async fn what_arrives_while_the_connection_is_cut_is_answered_once_after_it() {
    let app = TestApp::spawn().await;
    let fake = FakeDiscord::start().await;
    discord_channel(&app, &fake, json!({})).await;
    fake.wait_identified(1, WAIT).await;
    const OTHER: &str = "4000000000000000002";
    fake.customer_says(DM, CUSTOMER, "Do you ship to Berlin?", json!({}));
    fake.customer_says(
        OTHER,
        "3000000000000000002",
        "Do you ship to Berlin?",
        json!({}),
    );
    fake.wait_bot_messages(DM, 1, WAIT).await;
    fake.wait_bot_messages(OTHER, 1, WAIT).await;
    app.settled().await;

    fake.refuse_connections();
    fake.drop_connections();
    let missed = [
        fake.customer_says(DM, CUSTOMER, "How long does a parcel take?", json!({})),
        fake.customer_says(
            OTHER,
            "3000000000000000002",
            "How long does a parcel take?",
            json!({}),
        ),
    ];
    fake.accept_connections();
    fake.wait_identified(2, WAIT).await;
    for id in &missed {
        app.handled(&format!("message:{id}"), 1).await;
    }
    fake.wait_bot_messages(DM, 2, WAIT).await;
    fake.wait_bot_messages(OTHER, 2, WAIT).await;
    app.settled().await;
    assert_eq!(fake.bot_messages(DM).len(), 2);
    assert_eq!(fake.bot_messages(OTHER).len(), 2);
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE role = 'customer'")
            .await,
        4,
        "the messages read again by the backfill were stored once"
    );
}

/// Two listener processes: one holds the bot's Gateway session, the other stands by.
/// The holder is killed (SIGKILL: no lease given back, no goodbye to Discord); the standby
/// takes the lapsed lease within seconds, identifies, and the backfill answers what came
/// meanwhile, once.
#[tokio::test]
async fn a_standby_listener_takes_over_from_a_killed_one_and_misses_nothing() {
    let parts = switchboard::Parts {
        listener: false,
        ..switchboard::Parts::ALL
    };
    let app = TestApp::spawn_with(crate::helpers::test_config(), parts).await;
    let fake = FakeDiscord::start().await;
    let channel = discord_channel(&app, &fake, json!({})).await;
    let mut first = role_process(&app, "listener");
    fake.wait_identified(1, WAIT).await;
    let _second = role_process(&app, "listener");
    fake.customer_says(DM, CUSTOMER, "Do you ship to Berlin?", json!({}));
    fake.wait_bot_messages(DM, 1, WAIT).await;
    app.settled().await;
    // The reading of the DM is on record (the cursor moves a moment after the event).
    app.wait_count(
        &format!("SELECT count(*) FROM channel_cursors WHERE channel_id = '{channel}' AND discord_last_ids ? '{DM}'"),
        1,
    )
    .await;
    assert_eq!(
        fake.identifies(),
        1,
        "the standby did not connect while the lease was held"
    );

    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let missed = fake.customer_says(DM, CUSTOMER, "How long does a parcel take?", json!({}));
    fake.wait_identified(2, WAIT).await;
    app.handled(&format!("message:{missed}"), 1).await;
    fake.wait_bot_messages(DM, 2, WAIT).await;
    app.settled().await;
    assert_eq!(fake.bot_messages(DM).len(), 2, "each message answered once");
    assert_eq!(
        app.count("SELECT count(*) FROM channel_leases").await,
        1,
        "one lease, the standby's"
    );
    let fence: i64 = sqlx::query_scalar("SELECT fence FROM channel_leases")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(fence, 2, "the standby holds the second fence");
}

/// The lease rules every listener keeps, for Telegram and IMAP as for Discord: one holder
/// at a time, a lapsed lease taken with a higher fence, and the old holder's renewals and
/// cursor writes refused from then on.
#[tokio::test]
async fn a_holder_that_lost_its_lease_can_neither_renew_it_nor_move_the_cursor() {
    let app = TestApp::spawn_with(crate::helpers::test_config(), switchboard::Parts::GATEWAY).await;
    let fake = FakeDiscord::start().await;
    let channel = discord_channel(&app, &fake, json!({})).await;
    let tenant = app.services.store.tenant_id("demo").await.unwrap();
    let store = &app.services.store;
    let ttl = Duration::from_secs(9);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let first = store
        .acquire_channel_lease(channel, a, ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .acquire_channel_lease(channel, b, ttl)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.renew_channel_lease(&first, ttl).await.unwrap());
    store.set_telegram_offset(tenant, &first, 10).await.unwrap();

    // The holder stops renewing (paused, cut off): its lease lapses and B takes it.
    app.exec("UPDATE channel_leases SET expires_at = now() - interval '1 second'")
        .await;
    let second = store
        .acquire_channel_lease(channel, b, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.fence, first.fence + 1);
    assert!(!store.renew_channel_lease(&first, ttl).await.unwrap());
    assert!(matches!(
        store.set_telegram_offset(tenant, &first, 5).await,
        Err(switchboard_store::StoreError::LeaseLost)
    ));
    assert!(matches!(
        store.set_imap_cursor(tenant, &first, 1, 5).await,
        Err(switchboard_store::StoreError::LeaseLost)
    ));
    store
        .set_telegram_offset(tenant, &second, 11)
        .await
        .unwrap();
    assert_eq!(store.telegram_offset(channel).await.unwrap(), Some(11));

    // A Discord cursor only moves forward, and only for the holder.
    let cursor = |last: &str| switchboard_store::DiscordCursor {
        last: last.into(),
        guild: None,
    };
    store
        .set_discord_cursor(tenant, &second, DM, &cursor("200"))
        .await
        .unwrap();
    store
        .set_discord_cursor(tenant, &second, DM, &cursor("150"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_discord_cursor(tenant, &first, DM, &cursor("300"))
            .await,
        Err(switchboard_store::StoreError::LeaseLost)
    ));
    assert_eq!(
        store.discord_cursors(channel, "1").await.unwrap()[DM],
        cursor("200")
    );
    // Channels read long ago are forgotten.
    assert!(
        store
            .discord_cursors(channel, "201")
            .await
            .unwrap()
            .is_empty()
    );

    // Given back, the lease is free at once, and its next holder's fence is higher still:
    // its cursor writes go through.
    store.release_channel_lease(&second).await.unwrap();
    let third = store
        .acquire_channel_lease(channel, a, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.fence, second.fence + 1);
    store.set_telegram_offset(tenant, &third, 12).await.unwrap();
    // Even a lease row removed by hand does not bring an old fence back.
    app.exec("DELETE FROM channel_leases").await;
    let fourth = store
        .acquire_channel_lease(channel, b, ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(fourth.fence > third.fence);
    store
        .set_telegram_offset(tenant, &fourth, 13)
        .await
        .unwrap();
    assert_eq!(store.telegram_offset(channel).await.unwrap(), Some(13));
}

/// The operators' room on Discord: notices with Approve, Reject and Take over buttons that
/// only linked operators can press, and a reply to a notice that reaches the customer.
#[tokio::test]
async fn operators_approve_and_reply_from_a_discord_room() {
    const MIA: &str = "7000000000000000001";
    let mut config = crate::helpers::test_config();
    config.amqp.prefetch = 1;
    let app = TestApp::spawn_with(config, switchboard::Parts::ALL).await;
    crate::operators::approvals_only(&app).await;
    let fake = FakeDiscord::start().await;
    fake.guild_channel(ROOM, GUILD);
    discord_channel(&app, &fake, json!({})).await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    let store = &app.services.store;
    let settings = json!({"operators": {"discord_channel": "discord test", "discord_room": ROOM}});
    store
        .apply_settings(
            demo,
            &settings,
            switchboard_store::Write::Merge,
            "test",
            None,
        )
        .await
        .unwrap();
    let doc = store.settings_doc(demo).await.unwrap();
    let ops = doc.operators.unwrap();
    assert_eq!(ops.discord_room.as_deref(), Some(ROOM));
    assert_eq!(ops.telegram_chat_id, None);
    store
        .add_user(
            demo,
            "mia@demo.example",
            switchboard_store::Role::Operator,
            "correct horse battery staple 42",
        )
        .await
        .unwrap();
    store
        .link_chat_account(
            demo,
            "mia@demo.example",
            switchboard_store::ChatPlatform::Discord,
            MIA.parse().unwrap(),
        )
        .await
        .unwrap();
    fake.wait_identified(1, WAIT).await;

    fake.customer_says(DM, CUSTOMER, "Do you ship to Berlin?", json!({}));
    let notice = fake.wait_bot_messages(ROOM, 1, WAIT).await.remove(0);
    assert!(
        notice["content"]
            .as_str()
            .unwrap()
            .contains("Do you ship to Berlin?")
    );
    let ids: Vec<&str> = notice["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["approve", "reject", "takeover"]);
    let notice_id = notice["id"].as_str().unwrap().to_owned();
    app.wait_count(
        &format!(
            "SELECT count(*) FROM operator_notifications WHERE notice_message_id = {notice_id}"
        ),
        1,
    )
    .await;

    // A stranger presses Approve: acknowledged, refused, nothing changes.
    let stranger = fake.press(ROOM, &notice_id, "approve", "7000000000000000009");
    app.inbound_drained().await;
    assert_eq!(
        fake.calls(&format!("POST /interactions/{stranger}/")).len(),
        1,
        "every press is acknowledged"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM ai_suggestions WHERE status = 'pending'")
            .await,
        1
    );
    assert!(fake.bot_messages(DM).is_empty());

    // Mia presses Approve: the draft goes to the customer, and the notice says who did it.
    fake.press(ROOM, &notice_id, "approve", MIA);
    let sent = fake.wait_bot_messages(DM, 1, WAIT).await;
    assert!(sent[0]["content"].as_str().unwrap().len() > 10);
    app.wait_count(
        &format!("SELECT count(*) FROM human_actions h JOIN users u ON u.id = h.user_id WHERE u.discord_user_id = {MIA} AND h.action = 'approve'"),
        1,
    )
    .await;
    let edits = fake
        .wait_calls(
            &format!("PATCH /channels/{ROOM}/messages/{notice_id}"),
            1,
            WAIT,
        )
        .await;
    assert!(
        edits[0].body["content"]
            .as_str()
            .unwrap()
            .contains("Approved by mia@demo.example")
    );

    // A reply to the next notice goes to that customer as Mia's own words.
    const OTHER: &str = "4000000000000000002";
    fake.customer_says(
        OTHER,
        "3000000000000000002",
        "How much is the coffee mug?",
        json!({}),
    );
    let notices = fake.wait_bot_messages(ROOM, 2, WAIT).await;
    let second = notices[1].clone();
    fake.customer_says(
        ROOM,
        MIA,
        "The mug is 12 EUR today, Mia here.",
        json!({"type": 19, "message_reference": {"message_id": second["id"], "channel_id": ROOM, "guild_id": GUILD},
               "referenced_message": second}),
    );
    let to_customer = fake.wait_bot_messages(OTHER, 1, WAIT).await;
    assert_eq!(
        to_customer[0]["content"],
        "The mug is 12 EUR today, Mia here."
    );
    app.settled().await;
    assert_eq!(
        fake.bot_messages(OTHER).len(),
        1,
        "only Mia's words went out"
    );
}

/// While an automatic reply waits its human delay, the customer sees Discord's typing
/// indicator; the reply follows it.
#[tokio::test]
async fn typing_shows_while_a_reply_waits_its_human_delay() {
    let app = TestApp::spawn().await;
    app.exec("INSERT INTO human_delay_settings (tenant_id, enabled, min_delay_ms, max_delay_ms) SELECT id, true, 1500, 1500 FROM tenants").await;
    let fake = FakeDiscord::start().await;
    discord_channel(&app, &fake, json!({})).await;
    fake.wait_identified(1, WAIT).await;
    fake.customer_says(DM, CUSTOMER, "Do you ship to Berlin?", json!({}));
    fake.wait_bot_messages(DM, 1, WAIT).await;
    let typing = fake.calls(&format!("POST /channels/{DM}/typing"));
    let sent = fake.calls(&format!("POST /channels/{DM}/messages"));
    assert!(!typing.is_empty(), "typing was shown");
    assert!(typing[0].at < sent[0].at, "before the reply");
}
