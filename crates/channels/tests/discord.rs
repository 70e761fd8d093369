//! Every Gateway payload in fixtures/discord (written from Discord's API documentation, see
//! fixtures/discord/SOURCES.md) is normalized or ignored by kind, never a panic; a
//! representative set is checked field by field, and the REST and HTTP paths are checked to
//! read the same messages and interactions the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use switchboard_channels::InboundError;
use switchboard_channels::discord::inbound::{
    InboundConfig, normalize_interaction, normalize_message, normalize_payload, parse_interaction,
    parse_payload,
};
use switchboard_channels::discord::outbound::read_message;
use switchboard_channels::telegram::inbound::GroupMode;
use switchboard_core::{
    ChannelKind, ChannelRef, CustomerMessage, InboundBody, InboundEvent, Normalized,
};
use uuid::Uuid;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/discord");

const BOT: &str = "1100000000000000001";

const CH: ChannelRef = ChannelRef {
    tenant_id: Uuid::nil(),
    channel_id: Uuid::nil(),
};

fn cfg() -> InboundConfig {
    InboundConfig {
        bot_user_id: BOT.into(),
        group_mode: Default::default(),
    }
}

/// One instant for every run, so the Gateway, REST and HTTP paths can be compared whole.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 9, 30, 10, 30, 0).unwrap()
}

fn files() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(Path::new(FIXTURES))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {FIXTURES}");
    out
}

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(format!("{name}.json"))).unwrap()
}

/// The payload's `d`, as JSON.
fn data(name: &str) -> Value {
    serde_json::from_slice::<Value>(&raw(name)).unwrap()["d"].clone()
}

fn normalize_with(cfg: &InboundConfig, body: &[u8]) -> Result<Normalized, InboundError> {
    normalize_payload(CH, cfg, &parse_payload(body)?, now())
}

/// Runs every file through the Gateway path; returns file name → outcome. A panic fails the
/// test, and so does an outcome with neither events nor an ignored kind.
fn all() -> BTreeMap<String, Result<Normalized, InboundError>> {
    files()
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let out = normalize_with(&cfg(), &std::fs::read(&path).unwrap());
            match &out {
                Ok(n) => assert!(
                    !n.events.is_empty() || !n.ignored.is_empty(),
                    "{name}: neither events nor ignored kinds"
                ),
                Err(e) => assert!(
                    !e.to_string().is_empty(),
                    "{name}: an error without a reason"
                ),
            }
            (name, out)
        })
        .collect()
}

fn outcome(name: &str) -> Normalized {
    normalize_with(&cfg(), &raw(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn one(name: &str) -> InboundEvent {
    let n = outcome(name);
    assert_eq!(n.events.len(), 1, "{name}: {n:?}");
    assert!(n.ignored.is_empty(), "{name}: {n:?}");
    let ev = n.events[0].clone();
    assert_eq!(
        (ev.tenant_id, ev.channel_id, ev.channel_kind, ev.received_at),
        (Uuid::nil(), Uuid::nil(), ChannelKind::Discord, now()),
        "{name}"
    );
    ev
}

fn message(ev: &InboundEvent) -> CustomerMessage {
    match &ev.body {
        InboundBody::Message(m) => m.clone(),
        other => panic!("expected a message, got {other:?}"),
    }
}

fn ignored(name: &str) -> Vec<String> {
    let n = outcome(name);
    assert!(n.events.is_empty(), "{name}: {n:?}");
    n.ignored
}

#[test]
fn every_fixture_is_normalized_or_ignored() {
    let out = all();
    assert_eq!(out.len(), 30);
    for (name, o) in &out {
        assert!(o.is_ok(), "{name}: {o:?}");
    }
    // Every dispatch names its event and counts up; control payloads have neither.
    for path in files() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let p = parse_payload(&std::fs::read(&path).unwrap()).unwrap();
        if name.starts_with("gateway_") {
            assert!(p.op != 0 && p.t.is_none() && p.s.is_none(), "{name}");
        } else {
            assert!(p.op == 0 && p.t.is_some() && p.s.is_some(), "{name}");
        }
    }
}

#[test]
fn a_direct_message_is_read_whole() {
    let ev = one("message_create_dm_text");
    assert_eq!(ev.provider_event_id, "message:1290000000000001001");
    let m = message(&ev);
    assert_eq!(m.external_message_id, "1290000000000001001");
    assert_eq!(
        m.sender.external_id, "1290000000000000100",
        "the DM channel"
    );
    assert_eq!(m.sender.name.as_deref(), Some("Mason"));
    assert_eq!(m.text, "Hi, where is my order #1234?");
    assert!(m.attachments.is_empty());
    assert_eq!(m.reply_to_external_id, None);
    assert_eq!(m.metadata["from_user_id"], "53908099506183680");
    assert!(!m.metadata.contains_key("guild_id"));

    // The documentation's own example message, which has no guild_id: read as a DM.
    let m = message(&one("message_create_docs_example_message"));
    assert_eq!(
        (
            m.text.as_str(),
            m.sender.external_id.as_str(),
            m.sender.name.as_deref()
        ),
        ("Supa Hot", "290926798999357250", Some("Mason"))
    );
}

#[test]
fn guild_messages_are_read_when_they_address_the_bot() {
    let m = message(&one("message_create_guild_mention"));
    assert_eq!(
        m.text, "my parcel hasn't arrived yet",
        "the mention is removed"
    );
    assert_eq!(m.sender.external_id, "290926798999357250");
    assert_eq!(m.sender.name.as_deref(), Some("nelly"), "no global name");
    assert_eq!(m.metadata["guild_id"], "290926798626357999");
    assert_eq!(m.metadata["from_user_id"], "80351110224678912");

    assert_eq!(
        ignored("message_create_guild_no_mention"),
        ["guild_message"]
    );

    // A reply to the bot's message, without a ping: the referenced message tells.
    let m = message(&one("message_create_guild_reply_to_bot"));
    assert_eq!(m.text, "It's order #1234");
    assert_eq!(
        m.reply_to_external_id.as_deref(),
        Some("1290000000000000999")
    );

    // A thread is a channel of its own: replies go to the thread.
    let m = message(&one("message_create_thread_mention"));
    assert_eq!(m.sender.external_id, "1290000000000000300");
    assert_eq!(m.text, "following up on my refund here");
    assert_eq!(m.metadata["guild_id"], "290926798626357999");
}

#[test]
fn attachments_embeds_and_stickers() {
    let m = message(&one("message_create_dm_image_attachment"));
    assert_eq!(m.text, "this is what arrived");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(
        (
            a.kind.as_str(),
            a.file_id.as_str(),
            a.mime_type.as_deref(),
            a.name.as_deref()
        ),
        (
            "photo",
            "1290000000000002001",
            Some("image/jpeg"),
            Some("parcel.jpg")
        )
    );

    let m = message(&one("message_create_dm_voice_message"));
    assert_eq!(m.text, "");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(
        (a.kind.as_str(), a.file_id.as_str(), a.mime_type.as_deref()),
        ("voice", "1290000000000002002", Some("audio/ogg"))
    );

    let m = message(&one("message_create_dm_embed_only"));
    assert_eq!(m.text, "Order #1234\nStatus: out for delivery");
    assert!(m.attachments.is_empty());

    let m = message(&one("message_create_dm_sticker"));
    assert_eq!(m.text, "");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(
        (
            a.kind.as_str(),
            a.file_id.as_str(),
            a.name.as_deref(),
            a.mime_type.as_deref()
        ),
        ("sticker", "749054660769218631", Some("Wave"), None)
    );
}

#[test]
fn robots_webhooks_and_system_messages_are_ignored() {
    assert_eq!(
        ignored("message_create_guild_from_bot"),
        ["message.from_bot"]
    );
    assert_eq!(ignored("message_create_guild_webhook"), ["message.webhook"]);
    assert_eq!(
        ignored("message_create_guild_system_user_join"),
        ["message.system"]
    );
}

#[test]
fn edits_deletes_and_reactions() {
    let ev = one("message_update_content");
    assert_eq!(
        ev.provider_event_id,
        "edit:1290000000000001001:2024-09-30T10:26:40.456000+00:00"
    );
    match ev.body {
        InboundBody::Edit {
            external_message_id,
            text,
        } => assert_eq!(
            (external_message_id.as_str(), text.as_str()),
            ("1290000000000001001", "Hi, where is my order #1235?")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ignored("message_update_embed_partial"),
        ["message_update.partial"]
    );

    let ev = one("message_delete");
    assert_eq!(ev.provider_event_id, "delete:1290000000000001001");
    assert_eq!(
        ev.body,
        InboundBody::Delete {
            external_message_id: "1290000000000001001".into()
        }
    );

    for (name, message_id, channel, emoji, who) in [
        (
            "message_reaction_add_unicode",
            "1290000000000000998",
            "1290000000000000100",
            Some("🔥"),
            None,
        ),
        (
            "message_reaction_add_custom",
            "1290000000000000999",
            "290926798999357250",
            Some("LUL:41771983429993937"),
            Some("Nells"),
        ),
        (
            "message_reaction_add_custom_name_null",
            "1290000000000000999",
            "290926798999357250",
            Some("41771983429993937"),
            Some("Nells"),
        ),
        (
            "message_reaction_remove",
            "1290000000000000998",
            "1290000000000000100",
            None,
            None,
        ),
    ] {
        let ev = one(name);
        assert!(
            ev.provider_event_id
                .starts_with(&format!("reaction:{message_id}:")),
            "{name}: {}",
            ev.provider_event_id
        );
        match ev.body {
            InboundBody::Reaction {
                external_message_id,
                sender,
                emoji: got,
            } => {
                assert_eq!(external_message_id, message_id, "{name}");
                assert_eq!(got.as_deref(), emoji, "{name}");
                assert_eq!(sender.external_id, channel, "{name}");
                assert_eq!(sender.name.as_deref(), who, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_button_press_is_the_choice_typed() {
    for (name, id, channel, user, guild) in [
        (
            "interaction_create_button_guild",
            "1290000000000003001",
            "290926798999357250",
            "80351110224678912",
            Some("290926798626357999"),
        ),
        (
            "interaction_create_button_dm",
            "1290000000000003002",
            "1290000000000000100",
            "53908099506183680",
            None,
        ),
    ] {
        let ev = one(name);
        assert_eq!(ev.provider_event_id, format!("interaction:{id}"), "{name}");
        let m = message(&ev);
        assert_eq!(m.text, "Track my order", "{name}");
        assert_eq!(m.external_message_id, format!("interaction:{id}"), "{name}");
        assert_eq!(m.sender.external_id, channel, "{name}");
        let pressed = data(name)["message"]["id"].as_str().unwrap().to_owned();
        assert_eq!(m.reply_to_external_id, Some(pressed), "{name}");
        assert_eq!(m.metadata["from_user_id"], user, "{name}");
        assert_eq!(m.metadata["interaction_id"], id, "{name}");
        assert_eq!(
            m.metadata.get("guild_id").and_then(Value::as_str),
            guild,
            "{name}"
        );
        assert!(m.attachments.is_empty(), "{name}");
    }
    assert_eq!(
        message(&one("interaction_create_button_guild"))
            .sender
            .name
            .as_deref(),
        Some("Nells"),
        "the member's nickname"
    );
    assert_eq!(
        ignored("interaction_create_slash_command"),
        ["interaction.command"]
    );
}

#[test]
fn gateway_control_payloads_are_ignored() {
    assert_eq!(ignored("ready"), ["ready"]);
    assert_eq!(ignored("gateway_heartbeat_ack"), ["op_11"]);
    assert_eq!(ignored("gateway_hello"), ["op_10"]);
    assert_eq!(ignored("gateway_reconnect"), ["op_7"]);
    assert_eq!(ignored("gateway_invalid_session"), ["op_9"]);
}

#[test]
fn group_mode_decides_which_guild_messages_are_read() {
    let all = InboundConfig {
        group_mode: GroupMode::All,
        ..cfg()
    };
    let n = normalize_with(&all, &raw("message_create_guild_no_mention")).unwrap();
    assert_eq!(n.events.len(), 1, "{n:?}");
    let m = message(&n.events[0]);
    assert_eq!(m.text, "anyone else having delivery issues today?");
    assert_eq!(m.sender.external_id, "290926798999357250");

    let ignore = InboundConfig {
        group_mode: GroupMode::Ignore,
        ..cfg()
    };
    for name in [
        "message_create_guild_mention",
        "message_create_guild_reply_to_bot",
        "message_create_thread_mention",
    ] {
        let n = normalize_with(&ignore, &raw(name)).unwrap();
        assert!(n.events.is_empty(), "{name}: {n:?}");
        assert_eq!(n.ignored, ["guild_message"], "{name}");
    }
    // Direct messages are always read.
    let n = normalize_with(&ignore, &raw("message_create_dm_text")).unwrap();
    assert_eq!(n.events.len(), 1, "{n:?}");
}

/// A message as `GET /channels/{id}/messages` returns it: no Gateway extras (`member`,
/// `channel_type`, the members of `mentions`); `guild_id` stays only if `keep_guild`, as the
/// backfill sets it from the channel.
fn rest_form(d: &Value, keep_guild: bool) -> Value {
    let mut m = d.clone();
    let o = m.as_object_mut().unwrap();
    o.remove("member");
    o.remove("channel_type");
    if !keep_guild {
        o.remove("guild_id");
    }
    if let Some(mentions) = o.get_mut("mentions").and_then(Value::as_array_mut) {
        for u in mentions {
            u.as_object_mut().unwrap().remove("member");
        }
    }
    m
}

#[test]
fn rest_messages_normalize_like_gateway_ones() {
    let mut seen = 0;
    for path in files() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        let p = parse_payload(&body).unwrap();
        if p.t.as_deref() != Some("MESSAGE_CREATE") {
            continue;
        }
        seen += 1;
        let gateway = normalize_payload(CH, &cfg(), &p, now()).unwrap();

        // The dispatch's `d` as it is, and in the REST form with the guild kept.
        for d in [p.d.clone(), rest_form(&p.d, true)] {
            let m = read_message(&d).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(m.guild_id.as_deref(), p.d["guild_id"].as_str(), "{name}");
            assert_eq!(
                normalize_message(CH, &cfg(), &m, now()),
                gateway,
                "{name}: the REST path reads it differently"
            );
        }
        // Without the guild (what the REST API itself says), it still parses.
        let m = read_message(&rest_form(&p.d, false)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.guild_id, None, "{name}");
        assert_eq!(m.id, p.d["id"].as_str().unwrap(), "{name}");
    }
    assert_eq!(seen, 14);
}

#[test]
fn http_interactions_normalize_like_gateway_ones() {
    for name in [
        "interaction_create_button_guild",
        "interaction_create_button_dm",
        "interaction_create_slash_command",
    ] {
        let body = serde_json::to_vec(&data(name)).unwrap();
        let i = parse_interaction(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            normalize_interaction(CH, &cfg(), &i, now()),
            outcome(name),
            "{name}"
        );
    }
}

/// The documentation gives MESSAGE_UPDATE as a whole message object. An embed unfurled (or
/// a pin) sends the message again with its content unchanged and `edited_timestamp` still
/// null: that is not an edit.
#[test]
fn an_update_of_a_message_never_edited_is_not_an_edit() {
    let n = outcome("message_update_embed_resolved");
    assert!(
        n.events
            .iter()
            .all(|e| !matches!(e.body, InboundBody::Edit { .. })),
        "an unfurl became an edit: {n:?}"
    );
    assert!(!n.ignored.is_empty(), "{n:?}");
}

/// A forwarded message (message_reference type 1, flag HAS_SNAPSHOT) has no content of its
/// own: what was forwarded is in `message_snapshots`, and the reference points at the
/// original in another channel, not at a message replied to.
#[test]
fn a_forwarded_message_is_read_from_its_snapshot() {
    let n = outcome("message_create_dm_forward");
    assert_eq!(n.events.len(), 1, "the forward was dropped: {n:?}");
    let m = message(&n.events[0]);
    assert_eq!(m.text, "Your order #1234 has been dispatched");
    assert_eq!(m.reply_to_external_id, None);
    assert_eq!(m.metadata.get("forwarded"), Some(&Value::Bool(true)));
}
