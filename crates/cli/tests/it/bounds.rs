//! Every outbound wait has an end: database statements and idle transactions, Redis
//! commands, and HTTP calls (the last in `switchboard-http`'s own test).

use std::time::Duration;

use switchboard_runtime::Services;

use crate::helpers::{TestApp, test_config};

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
