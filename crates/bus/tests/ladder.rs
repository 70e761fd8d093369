//! The retry ladder and the dead letters, against the real RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;
use switchboard_bus::{BusConfig, Delivery, INBOUND, Outcome, Publisher, consume};
use tokio_util::sync::CancellationToken;

fn config(max_attempts: u32) -> BusConfig {
    let ns = format!(
        "sbt.bus.{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    BusConfig {
        url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        namespace: ns,
        prefetch: 4,
        retry_delays_ms: vec![300, 600],
        max_attempts,
        shutdown_grace_secs: 1,
        queue_expires_ms: 60_000,
    }
}

/// Runs `handler` over the queue until `done` says stop, recording each delivery.
async fn run(
    cfg: &BusConfig,
    handler: impl Fn(u32) -> Outcome + Send + Sync + 'static,
    done: impl Fn(&[(u32, Instant)]) -> bool,
) -> Vec<(u32, Instant)> {
    let seen: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let s = seen.clone();
    let task = tokio::spawn(consume(
        cfg.clone(),
        INBOUND,
        move |d: Delivery| {
            s.lock().unwrap().push((d.attempt, Instant::now()));
            let outcome = handler(d.attempt);
            async move { outcome }
        },
        shutdown.clone(),
    ));
    let start = Instant::now();
    loop {
        if done(&seen.lock().unwrap()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    task.await.unwrap();
    seen.lock().unwrap().clone()
}

async fn dead_letter(cfg: &BusConfig) -> Option<(Vec<u8>, String)> {
    let conn = lapin::Connection::connect(&cfg.url, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let got = ch
        .basic_get(
            cfg.dead_queue(INBOUND).into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()?;
    let error = match got
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-sb-error").cloned())
    {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => format!("{other:?}"),
    };
    Some((got.delivery.data.clone(), error))
}

#[tokio::test]
async fn a_retry_comes_back_after_its_delay() {
    let cfg = config(5);
    Publisher::new(cfg.clone())
        .publish(INBOUND, b"{\"n\":1}")
        .await
        .unwrap();
    let seen = run(
        &cfg,
        |attempt| {
            if attempt == 0 {
                Outcome::Retry("db down".into())
            } else {
                Outcome::Ack
            }
        },
        |s| s.len() >= 2,
    )
    .await;
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1]);
    assert!(
        seen[1].1 - seen[0].1 >= Duration::from_millis(300),
        "waited the first rung"
    );
    assert!(dead_letter(&cfg).await.is_none());
}

#[tokio::test]
async fn retries_end_in_the_dead_letters_with_the_reason() {
    let cfg = config(3);
    Publisher::new(cfg.clone())
        .publish(INBOUND, b"{\"n\":2}")
        .await
        .unwrap();
    let seen = run(
        &cfg,
        |_| Outcome::Retry("still down".into()),
        |s| s.len() >= 3,
    )
    .await;
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2]);
    let (body, error) = dead_letter(&cfg).await.expect("dead-lettered");
    assert_eq!(body, b"{\"n\":2}");
    assert_eq!(error, "still down");
}

#[tokio::test]
async fn a_poison_message_goes_straight_to_the_dead_letters() {
    let cfg = config(5);
    Publisher::new(cfg.clone())
        .publish(INBOUND, b"not json")
        .await
        .unwrap();
    let seen = run(
        &cfg,
        |_| Outcome::Dead("unparsable".into()),
        |s| !s.is_empty(),
    )
    .await;
    assert_eq!(seen.len(), 1);
    assert_eq!(dead_letter(&cfg).await.unwrap().1, "unparsable");
}

#[tokio::test]
async fn a_panicking_handler_is_retried() {
    let cfg = config(5);
    Publisher::new(cfg.clone())
        .publish(INBOUND, b"{}")
        .await
        .unwrap();
    let seen = run(
        &cfg,
        |attempt| {
            if attempt == 0 {
                panic!("bug")
            } else {
                Outcome::Ack
            }
        },
        |s| s.len() >= 2,
    )
    .await;
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1]);
}
