//! `bash bench/engine/run`: full `evaluate` calls (rules, penalties, gates, night modes in
//! the tenant's time zone, and the human-delay plan), by day and by night. The engine is
//! not the pipeline's bottleneck; this guards against it becoming one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use rand::SeedableRng;
use switchboard_engine::{Case, evaluate};

fn case(now: &str) -> Case {
    serde_json::from_value(serde_json::json!({
        "customer_text": "Is the mug in stock?",
        "draft": {"reply": "Yes, the mug is in stock.", "intent": "availability", "intent_score": 0.9,
                  "similarity_score": 0.95, "self_check_score": 1.0, "used_sources": ["product:MUG-01"]},
        "settings": {"autosend_allowed": true},
        "conversation": {"mode": "auto", "status": "active"},
        "channel": {"kind": "webchat", "free_form_window_open": true},
        "now": now,
        "working_hours": {"timezone": "Europe/Berlin", "start": "09:00:00", "end": "18:00:00", "days": [1, 2, 3, 4, 5]},
        "human_delay": {"enabled": true, "night_mode": "DELAY"}
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for (name, now) in [
        ("day", "2026-11-23T10:00:00Z"),
        ("night", "2026-11-23T22:30:00Z"),
    ] {
        let case = case(now);
        // The path measured: a decision with a delay plan, not an early return.
        let verdict = evaluate(&case, &mut rng).unwrap();
        assert!(
            verdict.decision.is_some() && verdict.silent.is_none(),
            "{verdict:?}"
        );
        g.bench_function(name, |b| {
            b.iter(|| evaluate(black_box(&case), &mut rng).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
