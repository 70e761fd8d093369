//! Every outbound wait has an end: database statements and idle transactions, Redis
//! commands, and HTTP calls (the last in `switchboard-http`'s own test). And input the
//! database cannot store (a NUL character) is made storable at the edge, not accepted and
//! then lost.

use std::time::Duration;

use switchboard_runtime::Services;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, test_config};
use crate::operators::operator;
use crate::platforms::{SECRET, post_tg, telegram_channel};
use switchboard_fakes::FakePlatform;

#[tokio::test]
async fn database_sessions_carry_statement_and_idle_transaction_timeouts() {
    let app = TestApp::spawn().await;
    let statement: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let idle: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((statement.as_str(), idle.as_str()), ("30s", "1min"));
}

/// A Redis that accepts connections and never answers: commands fail after the response
/// timeout instead of hanging every dedup claim.
#[tokio::test]
async fn a_stalled_redis_answers_with_an_error_not_never() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = test_config();
    config.redis.url = format!("redis://{addr}");
    // The guard only keeps a broken build from hanging the suite: the product gives up on
    // the first connection after eight seconds, and on a command after two.
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        match Services::connect(config).await {
            Err(e) => Err(e.to_string()),
            Ok(s) => {
                let mut redis = s.redis.clone();
                redis::cmd("GET")
                    .arg("k")
                    .query_async::<Option<String>>(&mut redis)
                    .await
                    .map_err(|e| e.to_string())
                    .map(|_| ())
            }
        }
    })
    .await
    .expect("the Redis call ended");
    assert!(outcome.is_err(), "a silent Redis cannot have answered");
}

/// A NUL in a customer's text is taken out, and the message is stored and answered; in a
/// visitor id it is refused with the reason; in an operator's message or an inbox search it
/// is taken out too. None of them is a 500 or a message lost.
#[tokio::test]
async fn a_nul_character_is_taken_out_at_the_edge_not_lost() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post_chat("n1-visitor-7f3a9c2e", "c1", "Do you ship\u{0} to Berlin?")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.handled("n1-visitor-7f3a9c2e:c1", 1).await;

    let fake = FakePlatform::telegram().await;
    let channel = telegram_channel(&app, &fake).await;
    let update = json!({"update_id": 7, "message": {"message_id": 7, "date": 1_700_000_000,
        "chat": {"id": 70, "type": "private", "first_name": "A\u{0}da"},
        "from": {"id": 70, "is_bot": false, "first_name": "A\u{0}da"},
        "text": "Do you ship to\u{0} Munich?"}});
    assert_eq!(
        post_tg(&app, channel, Some(SECRET), &update).await,
        StatusCode::OK
    );
    app.handled("update:7", 1).await;
    app.settled().await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM messages WHERE role = 'customer'
             AND content IN ('Do you ship to Berlin?', 'Do you ship to Munich?')"
        )
        .await,
        2,
        "both stored, without the NUL"
    );

    let res = app
        .http
        .get(format!("{}/api/webchat/demo/messages", app.base))
        .query(&[("visitor_id", "n\u{0}1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let op = operator(&app).await;
    let conversation: uuid::Uuid = sqlx::query_scalar(
        "SELECT c.id FROM conversations c JOIN customers cu ON cu.id = c.customer_id
         WHERE cu.external_id = 'n1-visitor-7f3a9c2e'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let (status, body) = op
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": "We do\u{0}."}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = op.get("/api/v1/conversations?q=Ber%00lin").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Anywhere else a NUL reaches the database (a sign-in address, a setting), it is the
    // caller's input that cannot be stored: 400 with the reason, not a server error.
    let res = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": "op\u{0}@demo.example", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("NUL"));
}

/// A statement the database cut off at its timeout is a dependency's moment of trouble
/// (503, retry), not a server error.
#[tokio::test]
async fn a_statement_cut_off_by_its_timeout_is_unavailable_not_an_error() {
    let app = TestApp::spawn().await;
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL statement_timeout = '20ms'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("SELECT pg_sleep(2)")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    let err = switchboard_store::StoreError::from(err);
    assert!(err.is_unavailable(), "{err}");
}
