//! Every payload in ../shared/fixtures is normalized or rejected with a clear error, never a
//! panic; a representative set is checked field by field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use switchboard_channels::{InboundError, telegram, whatsapp};
use switchboard_core::{ChannelRef, DeliveryStatus, InboundBody, InboundEvent, Normalized};
use uuid::Uuid;

fn fixtures() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    assert!(
        root.is_dir(),
        "the shared fixtures must sit beside the checkout: {}",
        root.display()
    );
    root
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {dir}");
    out
}

const CH: ChannelRef = ChannelRef {
    tenant_id: Uuid::nil(),
    channel_id: Uuid::nil(),
};

fn tg(body: &[u8]) -> Result<Normalized, InboundError> {
    let cfg = telegram::inbound::InboundConfig {
        bot_username: Some("shop_bot".into()),
        group_mode: Default::default(),
    };
    telegram::inbound::normalize(CH, &cfg, &telegram::inbound::parse(body)?, Utc::now())
}

fn wa(body: &[u8]) -> Result<Normalized, InboundError> {
    Ok(whatsapp::inbound::normalize(
        CH,
        &whatsapp::inbound::parse(body)?,
        Utc::now(),
    ))
}

/// Runs every file through `f`; returns file name → outcome. A panic fails the test.
fn all(
    dir: &str,
    wrap: bool,
    f: fn(&[u8]) -> Result<Normalized, InboundError>,
) -> BTreeMap<String, Result<Normalized, InboundError>> {
    files(dir)
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            let raw = std::fs::read(&path).unwrap();
            let body = if wrap {
                format!(
                    "{{\"update_id\": {}, \"message\": {}}}",
                    i + 1,
                    String::from_utf8_lossy(&raw)
                )
                .into_bytes()
            } else {
                raw
            };
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let out = f(&body);
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

fn one(outcomes: &BTreeMap<String, Result<Normalized, InboundError>>, name: &str) -> InboundEvent {
    let n = outcomes[name]
        .as_ref()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(n.events.len(), 1, "{name}: {n:?}");
    n.events[0].clone()
}

fn message(ev: &InboundEvent) -> &switchboard_core::CustomerMessage {
    match &ev.body {
        InboundBody::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn ignored(
    outcomes: &BTreeMap<String, Result<Normalized, InboundError>>,
    name: &str,
) -> Vec<String> {
    outcomes[name].as_ref().unwrap().ignored.clone()
}

#[test]
fn telegram_updates() {
    let out = all("telegram/updates", false, tg);
    assert_eq!(out.len(), 28);

    let ev = one(&out, "tgdocs_webhooks__text_start");
    assert_eq!(ev.provider_event_id, "update:10000");
    let m = message(&ev);
    assert_eq!(
        (m.text.as_str(), m.sender.external_id.as_str()),
        ("/start", "1111111")
    );
    assert_eq!(
        m.sender.name.as_deref(),
        Some("Test Firstname Test Lastname")
    );
    assert_eq!(m.external_message_id, "1111111:1365");
    assert_eq!(m.metadata["command"], "/start");

    let m = message(&one(&out, "tgdocs_webhooks__voice")).clone();
    assert_eq!(m.attachments[0].kind, "voice");
    assert_eq!(m.attachments[0].file_id, "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX");
    assert_eq!(
        message(&one(&out, "tgdocs_webhooks__document_pdf")).attachments[0]
            .mime_type
            .as_deref(),
        Some("application/pdf")
    );
    assert_eq!(
        message(&one(&out, "tgdocs_webhooks__reply_to_message"))
            .reply_to_external_id
            .as_deref(),
        Some("1111112:1334")
    );
    assert_eq!(
        message(&one(&out, "tgdocs_webhooks__forwarded_message")).metadata["forwarded"],
        true
    );

    match one(&out, "tgdocs_webhooks__edited_message").body {
        InboundBody::Edit {
            external_message_id,
            text,
        } => {
            assert_eq!(
                (external_message_id.as_str(), text.as_str()),
                ("1111111:1365", "Edited text")
            )
        }
        other => panic!("{other:?}"),
    }
    match one(&out, "teloxide__update__message_reaction_updated").body {
        InboundBody::Reaction {
            external_message_id,
            emoji,
            ..
        } => {
            assert_eq!(external_message_id, "-1002184233434:35");
            assert_eq!(emoji.as_deref(), Some("🌭"));
        }
        other => panic!("{other:?}"),
    }
    // Acknowledged and counted, never failed.
    assert_eq!(
        ignored(&out, "tgdocs_webhooks__inline_query"),
        ["inline_query"]
    );
    assert_eq!(
        ignored(&out, "teloxide__update__chat_boost_updated"),
        ["chat_boost"]
    );
    assert_eq!(
        ignored(&out, "teloxide__update__new_update_kind_error"),
        ["new_update_kind"]
    );
    assert_eq!(
        ignored(&out, "tgdocs_webhooks__callback_query_inline"),
        ["callback_query.inline"]
    );
    // A group message that does not address the bot.
    assert_eq!(
        ignored(&out, "teloxide__update__issue_1107"),
        ["group_message"]
    );
    assert!(out.values().all(Result::is_ok), "every update parses");
}

#[test]
fn telegram_message_objects_wrapped_as_updates() {
    let out = all("telegram/message_objects", true, tg);
    assert_eq!(out.len(), 54);
    let m = message(&one(&out, "aiogram__MESSAGE_WITH_PHOTO")).clone();
    assert_eq!(m.text, "photo description");
    assert_eq!(m.attachments.len(), 1, "only the largest photo size");
    assert_eq!(m.attachments[0].kind, "photo");
    let m = message(&one(&out, "aiogram__MESSAGE_WITH_CONTACT")).clone();
    assert_eq!(
        (
            m.attachments[0].kind.as_str(),
            m.attachments[0].file_id.as_str()
        ),
        ("contact", "88005553535")
    );
    let m = message(&one(&out, "aiogram__MESSAGE_WITH_VENUE")).clone();
    assert_eq!(
        m.attachments[0].name.as_deref(),
        Some("Venue Name, Venue Address")
    );
    assert_eq!(
        message(&one(&out, "aiogram__MESSAGE_WITH_STICKER")).attachments[0].kind,
        "sticker"
    );
    assert_eq!(
        message(&one(&out, "teloxide__message__de_text")).text,
        "Лол кек 😂"
    );
    assert_eq!(
        ignored(&out, "aiogram__MESSAGE_FROM_CHANNEL"),
        ["channel_post"]
    );
    assert_eq!(
        ignored(&out, "aiogram__MESSAGE_WITH_MIGRATE_TO_CHAT_ID"),
        ["message.service"]
    );
    // A callback query object is not a message: rejected, with the reason.
    let err = out["teloxide__callback_query_object__deserialize"]
        .as_ref()
        .unwrap_err();
    assert!(err.to_string().contains("message_id"), "{err}");
}

#[test]
fn whatsapp_webhooks() {
    let out = all("whatsapp", false, wa);
    assert_eq!(out.len(), 63);
    assert!(out.values().all(Result::is_ok), "every webhook parses");

    let ev = one(&out, "pywa_message__text");
    assert_eq!(ev.provider_event_id, "msg:wamid.xyzxyz");
    let m = message(&ev);
    assert_eq!(
        (m.text.as_str(), m.sender.external_id.as_str()),
        ("Body Text", "972987654321")
    );
    assert_eq!(m.sender.name.as_deref(), Some("Test Name"));

    let m = message(&one(&out, "pywa_message__document")).clone();
    assert_eq!(m.text, "caption");
    assert_eq!(m.attachments[0].name.as_deref(), Some("filename.pdf"));
    assert_eq!(
        message(&one(&out, "pywa_message__voice")).attachments[0].kind,
        "voice"
    );
    assert_eq!(
        message(&one(&out, "pywa_message__contacts"))
            .attachments
            .len(),
        3
    );
    assert_eq!(
        message(&one(&out, "pywa_message__reply"))
            .reply_to_external_id
            .as_deref(),
        Some("wamid.xyzxyz==")
    );
    let fwd = message(&one(&out, "pywa_message__forwarded")).clone();
    assert_eq!(
        (fwd.metadata["forwarded"].clone(), fwd.reply_to_external_id),
        (serde_json::json!(true), None)
    );
    let list = message(&one(&out, "pywa_callback_selection__callback")).clone();
    assert_eq!(
        (list.text.as_str(), list.metadata["choice_id"].as_str()),
        ("title", Some("callback_data"))
    );
    assert_eq!(
        message(&one(&out, "pywa_callback_button__quick_reply")).metadata["template_button_payload"],
        "callback_data"
    );
    assert!(
        message(&one(&out, "pywa_message__order"))
            .metadata
            .contains_key("order")
    );
    assert_eq!(
        message(&one(&out, "pywa_message__referral")).metadata["referral"]["headline"],
        "AD_TITLE"
    );
    assert_eq!(
        message(&one(&out, "pywa_message__unsupported")).attachments[0].kind,
        "unsupported"
    );

    for (name, emoji) in [
        ("pywa_message__reaction", Some("😮")),
        ("pywa_message__unreaction_empty", None),
    ] {
        match one(&out, name).body {
            InboundBody::Reaction {
                external_message_id,
                emoji: got,
                ..
            } => {
                assert_eq!(external_message_id, "wamid.yzxyzx=");
                assert_eq!(got.as_deref(), emoji, "{name}");
            }
            other => panic!("{other:?}"),
        }
    }
    match one(&out, "pywa_edited_message__image").body {
        InboundBody::Edit {
            external_message_id,
            ..
        } => assert!(external_message_id.starts_with("wamid.HBgLMTQxMjU1")),
        other => panic!("{other:?}"),
    }

    let ev = one(&out, "pywa_message_status__played");
    assert_eq!(ev.provider_event_id, "status:wamid.xyzxyz:played");
    let InboundBody::Status(s) = &ev.body else {
        panic!()
    };
    assert_eq!(s.status, DeliveryStatus::Read);
    let InboundBody::Status(s) = one(&out, "javaapi_webhook__reEngagementMessageError").body else {
        panic!()
    };
    assert_eq!(
        (s.status, s.error_code, s.window_closed),
        (DeliveryStatus::Failed, Some(131047), true)
    );
    let InboundBody::Status(s) = one(&out, "pywa_message_status__failed").body else {
        panic!()
    };
    assert_eq!(
        s.error.as_deref(),
        Some("User's number is part of an experiment")
    );
    assert!(!s.window_closed);

    assert_eq!(
        ignored(&out, "pywa_outgoing_message__text"),
        ["smb_message_echoes"]
    );
    assert_eq!(
        ignored(&out, "pywa_user_marketing_preferences__signup"),
        ["user_preferences"]
    );
    assert_eq!(
        ignored(&out, "pywa_system__identity_change"),
        ["message.system"]
    );
    assert_eq!(
        ignored(&out, "pywa_deleted_message__revoke"),
        ["message.revoke"]
    );
}

#[test]
fn whatsapp_rejects_what_is_not_a_webhook() {
    assert!(matches!(wa(b"{not json"), Err(InboundError::Malformed(_))));
    let err = wa(br#"{"object": "page", "entry": []}"#).unwrap_err();
    assert!(
        err.to_string().contains("whatsapp_business_account"),
        "{err}"
    );
}

#[test]
fn real_signatures_verify_and_one_changed_byte_fails() {
    let dir = fixtures().join("whatsapp/signature");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("pywa_real_signed_vector.json")).unwrap())
            .unwrap();
    let body = std::fs::read(dir.join(v["raw_body_file"].as_str().unwrap())).unwrap();
    let secret = v["app_secret"].as_str().unwrap();
    let sig = v["x_hub_signature_256"].as_str().unwrap();
    assert!(whatsapp::inbound::verify_signature(
        secret,
        &body,
        Some(sig)
    ));
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert!(!whatsapp::inbound::verify_signature(
        secret,
        &tampered,
        Some(sig)
    ));
    assert!(!whatsapp::inbound::verify_signature(
        "other-secret",
        &body,
        Some(sig)
    ));
    assert!(!whatsapp::inbound::verify_signature(secret, &body, None));
    assert!(!whatsapp::inbound::verify_signature(
        secret,
        &body,
        Some("sha256=zz")
    ));

    // Meta signs the bytes it sends, with non-ASCII escaped; decoding first breaks it.
    let u: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("whatsapp_api_js_unicode_vector.json")).unwrap(),
    )
    .unwrap();
    let secret = u["app_secret"].as_str().unwrap();
    let sig = u["x_hub_signature_256"].as_str().unwrap();
    let sent = u
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("body_bytes_signed"))
        .unwrap()
        .1
        .as_str()
        .unwrap();
    assert!(whatsapp::inbound::verify_signature(
        secret,
        sent.as_bytes(),
        Some(sig)
    ));
    let decoded = u["body_as_decoded_string"].as_str().unwrap();
    assert!(!whatsapp::inbound::verify_signature(
        secret,
        decoded.as_bytes(),
        Some(sig)
    ));
}

#[test]
fn telegram_secret_and_whatsapp_challenge() {
    assert!(telegram::inbound::verify_secret("s3cret", Some("s3cret")));
    assert!(!telegram::inbound::verify_secret("s3cret", Some("s3cre")));
    assert!(!telegram::inbound::verify_secret("s3cret", None));
    assert!(!telegram::inbound::verify_secret("", Some("")));
    use whatsapp::inbound::verify_challenge;
    assert_eq!(
        verify_challenge("tok", Some("subscribe"), Some("tok"), Some("1158201444")),
        Some("1158201444")
    );
    assert_eq!(
        verify_challenge("tok", Some("subscribe"), Some("bad"), Some("1")),
        None
    );
    assert_eq!(
        verify_challenge("tok", Some("unsubscribe"), Some("tok"), Some("1")),
        None
    );
}
