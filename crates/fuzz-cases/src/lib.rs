//! One function per fuzz target: it takes the fuzzer's bytes, runs the code under test, and
//! panics only when that code breaks one of its own promises (a panic inside it counts the
//! same). The cargo-fuzz targets in `fuzz/` call these on nightly; `tests/corpus.rs` replays
//! every committed corpus input and every crash on stable, in `cargo test`.

use chrono::{DateTime, TimeZone, Utc};
use rand::SeedableRng;
use switchboard_channels::{discord, email, split_message, telegram, whatsapp};
use switchboard_core::{ChannelRef, InboundBody, Normalized};
use uuid::Uuid;

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` call them.
pub const TARGETS: &[(&str, Target)] = &[
    ("telegram", telegram),
    ("whatsapp", whatsapp),
    ("discord", discord),
    ("email", email),
    ("email_text", email_text),
    ("split", split),
    ("decide", decide),
];

const CH: ChannelRef = ChannelRef {
    tenant_id: Uuid::nil(),
    channel_id: Uuid::nil(),
};

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0)
        .single()
        .unwrap_or_default()
}

/// Every event a normalizer makes carries text without NUL (the database refuses it) once
/// the edge has stripped it.
fn check(n: &Normalized) {
    for ev in &n.events {
        let mut ev = ev.clone();
        ev.strip_nul();
        if let InboundBody::Message(m) = &ev.body {
            assert!(!m.text.contains('\0'), "NUL survived stripping");
        }
    }
}

/// A Discord Gateway payload, and the same bytes as an HTTP interaction: parsed, then
/// normalized in mention mode with the bot's id, the path with the most branches.
pub fn discord(data: &[u8]) {
    let cfg = discord::inbound::InboundConfig {
        bot_user_id: "1100000000000000001".into(),
        group_mode: Default::default(),
    };
    if let Ok(p) = discord::inbound::parse_payload(data)
        && let Ok(n) = discord::inbound::normalize_payload(CH, &cfg, &p, now())
    {
        check(&n);
    }
    if let Ok(i) = discord::inbound::parse_interaction(data) {
        check(&discord::inbound::normalize_interaction(
            CH,
            &cfg,
            &i,
            now(),
        ));
    }
}

/// A Telegram webhook body: parsed, then normalized in a group with a bot username, the
/// path with the most branches.
pub fn telegram(data: &[u8]) {
    let Ok(update) = telegram::inbound::parse(data) else {
        return;
    };
    let cfg = telegram::inbound::InboundConfig {
        bot_username: Some("shop_bot".into()),
        group_mode: Default::default(),
    };
    if let Ok(n) = telegram::inbound::normalize(CH, &cfg, &update, now()) {
        check(&n);
    }
}

/// A WhatsApp Cloud API webhook body.
pub fn whatsapp(data: &[u8]) {
    if let Ok(hook) = whatsapp::inbound::parse(data) {
        check(&whatsapp::inbound::normalize(CH, &hook, now()));
    }
}

/// A raw mail as IMAP hands it over, with a small size limit so truncation runs too.
pub fn email(data: &[u8]) {
    let cfg = email::inbound::InboundConfig {
        max_bytes: 2048,
        own_domain: "shop.example".into(),
    };
    if let Ok(n) = email::inbound::normalize(CH, &cfg, data, now()) {
        check(&n);
        for ev in &n.events {
            if let InboundBody::Message(m) = &ev.body {
                assert!(m.text.len() <= cfg.max_bytes, "text over the size limit");
            }
        }
    }
}

/// An HTML body turned into text, and a text body's own words cut from quotes and
/// signatures; the stripper promises to leave something when there was something.
pub fn email_text(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let text = email::inbound::html_to_text(&input);
    let words = email::customer_words(&text);
    if !text.trim().is_empty() {
        assert!(!words.trim().is_empty(), "the stripper left nothing");
    }
    let _ = email::customer_words(&input);
}

/// A reply split for a platform's limit (the first two bytes choose it): every piece
/// within the limit and not empty, and no word lost or invented.
pub fn split(data: &[u8]) {
    let [a, b, rest @ ..] = data else { return };
    let limit = usize::from(u16::from_le_bytes([*a, *b]) % 4096) + 1;
    let text = String::from_utf8_lossy(rest);
    let parts = split_message(&text, limit);
    for p in &parts {
        // A single character wider than the limit is the one piece allowed over it.
        assert!(
            p.encode_utf16().count() <= limit || p.chars().count() == 1,
            "a piece over the limit"
        );
        assert!(!p.is_empty(), "an empty piece");
    }
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(
        squash(&parts.join(" ")),
        squash(&text),
        "the pieces are not the text"
    );
}

/// A decision case as `switchboard decide` reads it: parsed, validated, evaluated.
pub fn decide(data: &[u8]) {
    let Ok(case) = serde_json::from_slice::<switchboard_engine::Case>(data) else {
        return;
    };
    if case.settings.validate().is_err() || case.human_delay.validate().is_err() {
        return;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let _ = switchboard_engine::evaluate(&case, &mut rng);
}
