//! Bad input through every public endpoint (the web chat, the Telegram and the WhatsApp
//! webhooks) gets a clear 400, 401 or 413, and nothing of it is stored or queued.

use reqwest::StatusCode;
use switchboard::Parts;
use switchboard_fakes::FakePlatform;

use crate::helpers::{TestApp, test_config};
use crate::platforms::{
    SECRET, sign, telegram_channel, tg_update, wa_body, wa_message, whatsapp_channel,
};

/// What each endpoint receives, and how a request to it is authenticated.
enum Endpoint {
    Webchat,
    Telegram(uuid::Uuid),
    /// Signed with the app secret over the body sent, unless the case signs another.
    Whatsapp(uuid::Uuid),
}

impl Endpoint {
    async fn post(&self, app: &TestApp, body: Vec<u8>, signed_over: Option<&[u8]>) -> StatusCode {
        let req = match self {
            Endpoint::Webchat => app
                .http
                .post(format!("{}/api/webchat/demo/messages", app.base)),
            Endpoint::Telegram(ch) => app
                .http
                .post(format!("{}/webhooks/telegram/{ch}", app.base))
                .header("X-Telegram-Bot-Api-Secret-Token", SECRET),
            Endpoint::Whatsapp(ch) => app
                .http
                .post(format!("{}/webhooks/whatsapp/{ch}", app.base))
                .header("X-Hub-Signature-256", sign(signed_over.unwrap_or(&body))),
        };
        req.header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A valid body of this endpoint whose text is `text`.
    fn valid(&self, text: &str) -> Vec<u8> {
        match self {
            Endpoint::Webchat => serde_json::to_vec(
                &serde_json::json!({"visitor_id": "v-bad-input-0001", "client_message_id": "c1", "text": text}),
            )
            .unwrap(),
            Endpoint::Telegram(_) => serde_json::to_vec(&tg_update(1, 42, 1, text)).unwrap(),
            Endpoint::Whatsapp(_) => wa_body(vec![wa_message("491700000009", "wamid.bad.1", text)], vec![]),
        }
    }
}

#[tokio::test]
async fn bad_input_on_every_public_endpoint_is_refused_and_nothing_is_queued() {
    // The gateway alone: a job it queued would stay on the queue for the assertion below.
    let app = TestApp::spawn_with(test_config(), Parts::GATEWAY).await;
    let tg = FakePlatform::telegram().await;
    let wa = FakePlatform::whatsapp().await;
    let endpoints = [
        ("web chat", Endpoint::Webchat),
        (
            "Telegram",
            Endpoint::Telegram(telegram_channel(&app, &tg).await),
        ),
        (
            "WhatsApp",
            Endpoint::Whatsapp(whatsapp_channel(&app, &wa, None).await),
        ),
    ];
    let nested = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)).into_bytes();
    for (name, ep) in &endpoints {
        let valid = ep.valid("Do you ship to Berlin?");
        let huge = ep.valid(&"a".repeat(70 * 1024));
        let other = ep.valid("Another body altogether");
        let mut utf8 = ep.valid("caf");
        // The text's closing quote is the last quote in each valid body: break the
        // encoding just before it.
        let q = utf8.iter().rposition(|b| *b == b'"').unwrap();
        let text_end = utf8[..q].iter().rposition(|b| *b == b'f').unwrap() + 1;
        utf8.splice(text_end..text_end, [0xff, 0xfe]);
        let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
            (
                "malformed",
                b"{\"update_id\": ,}".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "truncated",
                valid[..valid.len() / 2].to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            ("deeply nested", nested.clone(), StatusCode::BAD_REQUEST),
            (
                "of the wrong shape",
                b"[1, 2, 3]".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            ("invalid UTF-8", utf8, StatusCode::BAD_REQUEST),
            ("huge", huge, StatusCode::PAYLOAD_TOO_LARGE),
        ];
        for (what, body, want) in cases {
            assert_eq!(
                ep.post(&app, body, None).await,
                want,
                "{name}: a {what} body"
            );
        }
        if let Endpoint::Whatsapp(_) = ep {
            assert_eq!(
                ep.post(&app, valid.clone(), Some(&other)).await,
                StatusCode::UNAUTHORIZED,
                "{name}: a signature over another body"
            );
        }
    }
    // A guessable visitor id would open someone else's transcript: refused on a post and
    // on a read.
    let (status, body) = app.post_chat("1", "c1", "hi").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("random id"),
        "{body}"
    );
    let read = app
        .http
        .get(format!(
            "{}/api/webchat/demo/messages?visitor_id=alice",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count("SELECT count(*) FROM inbound_receipts").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
    let stats = switchboard_bus::queue_stats(&app.config.amqp, switchboard_bus::INBOUND)
        .await
        .unwrap();
    assert!(
        stats.iter().all(|q| q.messages == 0),
        "nothing was queued: {stats:?}"
    );
    // The count above can see a queued job: a good message stays there for it.
    assert_eq!(
        endpoints[0]
            .1
            .post(&app, endpoints[0].1.valid("hi"), None)
            .await,
        StatusCode::ACCEPTED
    );
    let main = app.config.amqp.queue(switchboard_bus::INBOUND);
    let start = std::time::Instant::now();
    loop {
        let queued = switchboard_bus::queue_stats(&app.config.amqp, switchboard_bus::INBOUND)
            .await
            .unwrap()
            .into_iter()
            .find(|q| q.queue == main)
            .map_or(0, |q| q.messages);
        if queued == 1 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the good message never showed on the queue"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
