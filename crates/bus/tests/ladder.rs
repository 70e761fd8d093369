//! The retry ladder, the dead letters and jobs that share a message, against the real
//! RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use switchboard_bus::{
    BusConfig, Delivery, INBOUND, Outcome, Publisher, Replayed, consume, dead_letters, replay_dead,
};
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

/// A publisher whose connection and topology the broker has taken. The first publish of a
/// new namespace declares its queues, which a broker busy expiring other tests' queues can
/// take longer to do than one publish is given.
async fn publisher(cfg: &BusConfig) -> Publisher {
    let p = Publisher::new(cfg.clone());
    let start = Instant::now();
    while !p.ready().await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the broker never took the topology"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p
}

type Seen = (u32, Instant, Vec<u8>);

/// Runs `handler` over the queue until `done` says stop, recording each delivery; then
/// checks that nothing is left to deliver, so the deliveries returned are all there will be.
async fn run(
    cfg: &BusConfig,
    handler: impl Fn(u32, &[u8]) -> Outcome + Send + Sync + 'static,
    done: impl Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    run_until(cfg, handler, done, 0).await
}

/// As `run`, and also until the dead letters hold at least `dead` messages.
async fn run_until(
    cfg: &BusConfig,
    handler: impl Fn(u32, &[u8]) -> Outcome + Send + Sync + 'static,
    done: impl Fn(&[Seen]) -> bool,
    dead: u32,
) -> Vec<Seen> {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let s = seen.clone();
    let task = tokio::spawn(consume(
        cfg.clone(),
        INBOUND,
        move |d: Delivery| {
            s.lock()
                .unwrap()
                .push((d.attempt, Instant::now(), d.body.clone()));
            let outcome = handler(d.attempt, &d.body);
            async move { outcome }
        },
        shutdown.clone(),
    ));
    let start = Instant::now();
    loop {
        let handled = done(&seen.lock().unwrap());
        if handled && (dead == 0 || dead_count(cfg).await >= dead) {
            break;
        }
        // Generous: right after the integration tests, the broker spends tens of seconds
        // deleting their expired quorum queues, and everything it does waits behind that.
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    // The consumer has closed its channel, so an unacknowledged delivery is back on its
    // queue: with the queue and its retry rungs empty, no delivery is still to come.
    let stats = switchboard_bus::queue_stats(cfg, INBOUND).await.unwrap();
    for q in stats.iter().filter(|q| q.queue != cfg.dead_queue(INBOUND)) {
        assert_eq!(
            q.messages,
            0,
            "{} still holds messages; seen: {:?}",
            q.queue,
            seen.lock().unwrap()
        );
    }
    seen.lock().unwrap().clone()
}

/// How many dead letters wait.
async fn dead_count(cfg: &BusConfig) -> u32 {
    let stats = switchboard_bus::queue_stats(cfg, INBOUND).await.unwrap();
    stats
        .iter()
        .find(|q| q.queue == cfg.dead_queue(INBOUND))
        .map_or(0, |q| q.messages)
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
    publisher(&cfg)
        .await
        .publish(INBOUND, b"{\"n\":1}")
        .await
        .unwrap();
    let seen = run(
        &cfg,
        |attempt, _| {
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
    publisher(&cfg)
        .await
        .publish(INBOUND, b"{\"n\":2}")
        .await
        .unwrap();
    let seen = run(
        &cfg,
        |_, _| Outcome::Retry("still down".into()),
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
    publisher(&cfg)
        .await
        .publish(INBOUND, b"not json")
        .await
        .unwrap();
    let seen = run(
        &cfg,
        |_, _| Outcome::Dead("unparsable".into()),
        |s| !s.is_empty(),
    )
    .await;
    assert_eq!(seen.len(), 1);
    assert_eq!(dead_letter(&cfg).await.unwrap().1, "unparsable");
}

#[tokio::test]
async fn a_panicking_handler_is_retried() {
    let cfg = config(5);
    publisher(&cfg).await.publish(INBOUND, b"{}").await.unwrap();
    let seen = run(
        &cfg,
        |attempt, _| {
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

/// How many messages wait in the queue.
async fn queued(cfg: &BusConfig) -> u32 {
    let conn = lapin::Connection::connect(&cfg.url, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(cfg.queue(INBOUND).into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count()
}

/// Publishes `{"n":0}` … `{"n":count-1}` all at once, and returns how many messages the
/// broker got for them.
async fn publish_together(cfg: &BusConfig, count: u32) -> u32 {
    let publisher = publisher(cfg).await;
    let bodies: Vec<Vec<u8>> = (0..count)
        .map(|n| format!("{{\"n\":{n}}}").into_bytes())
        .collect();
    let results = join_all(bodies.iter().map(|b| publisher.publish(INBOUND, b))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    queued(cfg).await
}

fn n_of(body: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(body).unwrap()["n"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn jobs_published_together_share_messages_and_are_handled_one_by_one() {
    let cfg = config(5);
    let messages = publish_together(&cfg, 100).await;
    assert!(messages < 100, "{messages} messages for 100 jobs");
    let seen = run(&cfg, |_, _| Outcome::Ack, |s| s.len() >= 100).await;
    let mut handled: Vec<u64> = seen.iter().map(|s| n_of(&s.2)).collect();
    handled.sort_unstable();
    assert_eq!(handled, (0..100).collect::<Vec<_>>(), "each job once");
}

#[tokio::test]
async fn a_failing_job_of_a_shared_message_is_retried_or_dead_lettered_alone() {
    let cfg = config(5);
    let messages = publish_together(&cfg, 20).await;
    assert!(messages < 20, "{messages} messages for 20 jobs");
    let seen = run(
        &cfg,
        |attempt, body| match (n_of(body), attempt) {
            (7, 0) => Outcome::Retry("db down".into()),
            (3, _) => Outcome::Dead("poison".into()),
            _ => Outcome::Ack,
        },
        |s| s.len() >= 21,
    )
    .await;
    let attempts = |n| {
        seen.iter()
            .filter(|s| n_of(&s.2) == n)
            .map(|s| s.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(attempts(7), [0, 1], "the failed job came back alone");
    for n in (0..20).filter(|n| *n != 7) {
        assert_eq!(attempts(n), [0], "job {n} was handled once");
    }
    let (body, error) = dead_letter(&cfg).await.expect("dead-lettered");
    assert_eq!(
        (body.as_slice(), error.as_str()),
        (&b"{\"n\":3}"[..], "poison")
    );
    assert!(dead_letter(&cfg).await.is_none(), "only the poison job");
}

#[tokio::test]
async fn a_damaged_shared_message_goes_to_the_dead_letters_with_the_reason() {
    let cfg = config(5);
    publisher(&cfg).await;
    publish_damaged(&cfg).await;
    // The consumer has taken the message when it is in the dead letters.
    let seen = run_until(&cfg, |_, _| Outcome::Ack, |_| true, 1).await;
    assert!(seen.is_empty(), "no job reached the handler");
    let (body, error) = dead_letter(&cfg).await.expect("dead-lettered");
    assert_eq!(body, b"\x00\x00");
    assert_eq!(error, "a batch ends inside a length");
}

/// Puts a shared message on the queue that says it holds two jobs but does not.
async fn publish_damaged(cfg: &BusConfig) {
    let conn = lapin::Connection::connect(&cfg.url, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut headers = FieldTable::default();
    headers.insert("x-sb-batch".into(), AMQPValue::LongUInt(2));
    ch.basic_publish(
        "".into(),
        cfg.queue(INBOUND).into(),
        BasicPublishOptions::default(),
        b"\x00\x00",
        BasicProperties::default().with_headers(headers),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn dead_letters_are_listed_in_place_and_replayed_once_the_cause_is_fixed() {
    let cfg = config(5);
    let publisher = publisher(&cfg).await;
    publisher.publish(INBOUND, b"a").await.unwrap();
    publisher.publish(INBOUND, b"b").await.unwrap();
    publish_damaged(&cfg).await;
    run_until(
        &cfg,
        |_, _| Outcome::Dead("tenant not found".into()),
        |s| s.len() >= 2,
        3,
    )
    .await;

    let mut letters = dead_letters(&cfg, INBOUND, 10).await.unwrap();
    letters.sort_by(|a, b| a.jobs.cmp(&b.jobs));
    let summary: Vec<(String, Vec<Vec<u8>>)> = letters
        .iter()
        .map(|l| (l.reason.clone(), l.jobs.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "a batch ends inside a length".to_owned(),
                vec![b"\x00\x00".to_vec()]
            ),
            ("tenant not found".to_owned(), vec![b"a".to_vec()]),
            ("tenant not found".to_owned(), vec![b"b".to_vec()]),
        ]
    );
    assert_eq!(
        dead_letters(&cfg, INBOUND, 10).await.unwrap().len(),
        3,
        "reading leaves them in place"
    );
    assert_eq!(dead_letters(&cfg, INBOUND, 1).await.unwrap().len(), 1);

    // The cause is fixed: every job comes back with its attempts reset, once.
    let done = replay_dead(&cfg, INBOUND, 100).await.unwrap();
    assert_eq!(
        done,
        Replayed {
            letters: 3,
            jobs: 3
        }
    );
    let seen = run(&cfg, |_, _| Outcome::Ack, |s| s.len() >= 3).await;
    let mut bodies: Vec<(u32, Vec<u8>)> = seen.into_iter().map(|(a, _, b)| (a, b)).collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            (0, b"\x00\x00".to_vec()),
            (0, b"a".to_vec()),
            (0, b"b".to_vec())
        ]
    );
    assert!(dead_letters(&cfg, INBOUND, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_job_hears_when_the_broker_is_down() {
    let cfg = BusConfig {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".into(),
        ..config(5)
    };
    let publisher = Publisher::new(cfg);
    for _ in 0..2 {
        let bodies: Vec<Vec<u8>> = (0..20).map(|n| format!("{n}").into_bytes()).collect();
        let results = tokio::time::timeout(
            Duration::from_secs(20),
            join_all(bodies.iter().map(|b| publisher.publish(INBOUND, b))),
        )
        .await
        .expect("no publish hangs");
        assert!(results.iter().all(Result::is_err), "{results:?}");
    }
}
