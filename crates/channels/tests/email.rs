//! Every mail in ../shared/fixtures/email is normalized into one event or refused with a
//! clear error, never a panic; quoted replies, HTML replies, charsets and robots are checked
//! one by one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::{Map, Value};
use switchboard_channels::InboundError;
use switchboard_channels::email::inbound::{InboundConfig, normalize};
use switchboard_core::{ChannelKind, ChannelRef, CustomerMessage, InboundBody, Normalized};
use uuid::Uuid;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/email"
);

const CH: ChannelRef = ChannelRef {
    tenant_id: Uuid::nil(),
    channel_id: Uuid::nil(),
};

fn root() -> &'static Path {
    let root = Path::new(FIXTURES);
    assert!(
        root.is_dir(),
        "the shared fixtures must sit beside the checkout: {}",
        root.display()
    );
    root
}

/// Files under `dir` (recursively) whose name ends with `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn cfg() -> InboundConfig {
    InboundConfig {
        max_bytes: 1024 * 1024,
        own_domain: "shop.example".into(),
    }
}

fn norm(raw: &[u8]) -> Result<Normalized, InboundError> {
    normalize(CH, &cfg(), raw, Utc::now())
}

/// The one customer message a mail normalizes to.
fn message(raw: &[u8]) -> CustomerMessage {
    let n = norm(raw).unwrap();
    assert_eq!(n.events.len(), 1);
    let ev = n.events.into_iter().next().unwrap();
    assert_eq!(ev.channel_kind, ChannelKind::Email);
    match ev.body {
        InboundBody::Message(m) => m,
        other => panic!("not a message: {other:?}"),
    }
}

fn fixture(name: &str) -> CustomerMessage {
    message(&std::fs::read(root().join(name)).unwrap())
}

fn email(m: &CustomerMessage) -> &Map<String, Value> {
    m.metadata["email"].as_object().unwrap()
}

fn full_text(m: &CustomerMessage) -> &str {
    email(m)["full_text"].as_str().unwrap()
}

/// Whether the header section of `raw` has a From field holding an `local@domain` address.
fn has_from_address(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let header = text.split("\n\n").next().unwrap_or_default();
    let unfolded = header.replace("\n ", " ").replace("\n\t", " ");
    unfolded.lines().any(|l| {
        l.len() > 5
            && l[..5].eq_ignore_ascii_case("from:")
            && l[5..].split(['<', '>', ' ', '"', ',']).any(|w| {
                w.split_once('@')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            })
    })
}

#[test]
fn every_fixture_normalizes_or_is_refused_never_panics() {
    let all = files(root(), "eml");
    assert!(all.len() > 50, "only {} .eml fixtures", all.len());
    let mut panicked = Vec::new();
    let mut normalized = 0;
    let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut wrongly_refused = Vec::new();
    for path in &all {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let raw = std::fs::read(path).unwrap();
        match catch_unwind(AssertUnwindSafe(|| norm(&raw))) {
            Err(_) => panicked.push(name),
            Ok(Ok(n)) => {
                assert_eq!(n.events.len(), 1, "{name}: {n:?}");
                assert!(n.ignored.is_empty(), "{name}");
                let InboundBody::Message(m) = &n.events[0].body else {
                    panic!("{name}: not a message");
                };
                assert!(m.sender.external_id.contains('@'), "{name}");
                assert!(!m.external_message_id.is_empty(), "{name}");
                normalized += 1;
            }
            Ok(Err(e)) => {
                let reason = e.to_string();
                assert!(!reason.trim().is_empty(), "{name}: empty error");
                if has_from_address(&raw) {
                    wrongly_refused.push(format!("{name}: {reason}"));
                }
                refused.entry(reason).or_default().push(name);
            }
        }
    }
    let refused_count: usize = refused.values().map(Vec::len).sum();
    println!(
        "email fixtures: {} files, {normalized} normalized, {refused_count} refused, {} panicked",
        all.len(),
        panicked.len()
    );
    for (reason, names) in &refused {
        println!("  refused ({}): {reason}", names.len());
    }
    assert!(panicked.is_empty(), "panicked on: {panicked:?}");
    assert!(
        wrongly_refused.is_empty(),
        "refused although From has an address: {wrongly_refused:#?}"
    );
    let with_from = all
        .iter()
        .filter(|p| has_from_address(&std::fs::read(p).unwrap()))
        .count();
    assert_eq!(
        normalized, with_from,
        "every mail with a From address normalizes"
    );
    assert!(
        normalized > refused_count,
        "{normalized} normalized, {refused_count} refused"
    );
}

#[test]
fn talon_replies_keep_only_the_customer_words() {
    // (file, the customer's words, a piece of the quote that must be gone)
    let cases = [
        ("talon_reply_quoted__android.eml", "Hello", "написал"),
        ("talon_reply_quoted__aol.eml", "Hello", "Original Message"),
        ("talon_reply_quoted__apple_mail.eml", "Hello", "bob wrote:"),
        ("talon_reply_quoted__apple_mail_2.eml", "Hello", "Hi there!"),
        (
            "talon_reply_quoted__comcast.eml",
            "Hello",
            "Original Message",
        ),
        ("talon_reply_quoted__gmail.eml", "Hello", "Megan One"),
        ("talon_reply_quoted__hotmail.eml", "Hello", "Subject: Test"),
        (
            "talon_reply_quoted__iphone.eml",
            "Hello",
            "Sent from my iPhone",
        ),
        (
            "talon_reply_quoted__outlook.eml",
            "Hello",
            "The manager's comment",
        ),
        (
            "talon_reply_quoted__sparrow.eml",
            "Hello",
            "Sent with Sparrow",
        ),
        (
            "talon_reply_quoted__thunderbird.eml",
            "Hello",
            "Megan One wrote:",
        ),
        ("talon_reply_quoted__yahoo.eml", "Hello", "Original Message"),
    ];
    let on_disk: Vec<String> = files(root(), "eml")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("talon_"))
        .collect();
    let covered: Vec<String> = cases.iter().map(|c| c.0.to_string()).collect();
    assert_eq!(on_disk, covered, "every talon sample has an expectation");

    for (file, words, quoted) in cases {
        let m = fixture(file);
        assert_eq!(m.text, words, "{file}");
        assert!(!m.text.contains(quoted), "{file}");
        assert!(
            full_text(&m).contains(quoted),
            "{file}: the full text keeps the quote"
        );
        assert_eq!(email(&m)["html_only"], false, "{file}");
    }

    // talon's own expectation for sparrow keeps the signature; ours drops it, so its text,
    // sent as a mail, strips to the same words.
    let expected =
        std::fs::read_to_string(root().join("talon_reply_quoted__sparrow.expected_reply_text.txt"))
            .unwrap();
    assert!(expected.starts_with("Hello"));
    let raw = format!("From: xxx <xxx@gmail.com>\r\nSubject: Re: Test\r\n\r\n{expected}");
    let m = message(raw.as_bytes());
    assert_eq!(m.text, "Hello");
    assert!(full_text(&m).contains("Sent with Sparrow"));
}

#[test]
fn talon_threading_headers_are_kept() {
    let m = fixture("talon_reply_quoted__apple_mail_2.eml");
    let parent = "CABzQGhkMXDxUt_tSVQcg=43aniUhtsVfCZVzu-PG0kwS_uzqMw@mail.gmail.com";
    assert_eq!(
        m.external_message_id,
        "68001B29-8EA4-444C-A894-0537D2CA5208@tictail.com"
    );
    assert_eq!(m.reply_to_external_id.as_deref(), Some(parent));
    let e = email(&m);
    assert_eq!(e["in_reply_to"], serde_json::json!([parent]));
    assert_eq!(e["references"], serde_json::json!([parent]));
    assert_eq!(e["from"], "adam@tictail.com");
    assert_eq!(e["to"], serde_json::json!(["tgwizard@gmail.com"]));
    assert_eq!(e["subject"], "Re: Hello there");
    assert_eq!(e["date"], "2015-08-22T19:22:20+02:00");
    assert_eq!(m.sender.name.as_deref(), Some("Adam Renberg"));

    // No Message-ID: the id is the hash of the bytes.
    let outlook = fixture("talon_reply_quoted__outlook.eml");
    assert!(outlook.external_message_id.starts_with("sha256:"));
    assert_eq!(outlook.external_message_id.len(), "sha256:".len() + 64);
}

/// The HTML-only replies in `html_reply_bodies/` (talon's html_replies fixtures) carry no
/// expected-output file; talon's tests expect "Hi. I am fine.\n\nThanks,\nAlex" for each,
/// compared with whitespace removed. Sent as an HTML-only mail they must strip to that.
#[test]
fn html_reply_bodies_keep_only_the_reply() {
    let bodies = files(&root().join("html_reply_bodies"), "html");
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    for path in bodies {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let html = std::fs::read_to_string(&path).unwrap();
        let raw = format!(
            "From: Alex <alex.l@example.com>\r\nTo: abc@example.com\r\nSubject: Re: Test message\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}"
        );
        let m = message(raw.as_bytes());
        let words: Vec<&str> = m.text.split_whitespace().collect();
        assert_eq!(
            words,
            ["Hi.", "I", "am", "fine.", "Thanks,", "Alex"],
            "{name}: {:?}",
            m.text
        );
        assert!(
            m.text.starts_with("Hi. I am fine.\n"),
            "{name}: {:?}",
            m.text
        );
        assert!(m.text.ends_with("Thanks,\nAlex"), "{name}: {:?}", m.text);
        let e = email(&m);
        assert_eq!(e["html_only"], true, "{name}");
        let full = full_text(&m);
        assert!(full.contains("Hello! How are you?"), "{name}: {full:?}");
        assert!(
            !full.contains('<') || full.contains("<abc@example.com>"),
            "{name}: tags left: {full:?}"
        );
        assert!(!full.contains("margin"), "{name}: style left: {full:?}");
    }
}

#[test]
fn single_byte_charsets_are_decoded() {
    // windows-1252, quoted-printable body.
    let m = fixture("mailparser_thirdparty_019__30_plaintext_html_embedded_image_attachment.eml");
    assert_eq!(
        email(&m)["subject"],
        "30 plaintext + (HTML + embedded image) + attachment"
    );
    assert_eq!(m.text, "Search for hähä");

    // Windows-1252 "=92" is a right single quote.
    let m = fixture("sisimai_bounce_dsn__lhost-office365-01__undeliverable__nyaan.eml");
    assert_eq!(email(&m)["subject"], "Undeliverable: Nyaan");
    assert!(
        full_text(&m).contains("The email address wasn’t found"),
        "{}",
        full_text(&m)
    );

    // ISO-8859-1, 8bit HTML body.
    let m = fixture("mikelmail_error_emails_content_transfer_encoding_with_8bits.eml");
    assert_eq!(email(&m)["subject"], "The Original Advantage #e13011");
    assert_eq!(email(&m)["html_only"], true);
    assert!(
        m.text.contains("©2001 PROVANTAGE Corporation"),
        "{}",
        m.text
    );

    // windows-1251 encoded word in the sender's name.
    let m = fixture("mikelmail_plain_emails_raw_email_bad_time.eml");
    assert_eq!(email(&m)["subject"], "[0]: XXXXXXX XXXXX XXXXX !");
    assert_eq!(m.sender.name.as_deref(), Some("Атиковa"));
    assert_eq!(m.sender.external_id, "yusuf75thu@auracom.net");

    // ISO-8859-1 attachment name, UTF-8 encoded-word subject.
    let m = fixture("mikelmail_attachment_emails_attachment_nonascii_filename.eml");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].name.as_deref(), Some("ciële.txt"));
    let m = fixture("mikelmail_multi_charset_japanese.eml");
    assert_eq!(email(&m)["subject"], "まみむめも");
    assert_eq!(m.text, "かきくえこ");
    assert!(full_text(&m).contains("Rails, RSpec and Life blog"));
}

/// Multi-byte East Asian charsets, which mail-parser decodes with its `full_encoding`
/// feature (encoding_rs); without it these bodies would come out as U+FFFD.
#[test]
fn multi_byte_charsets_are_decoded() {
    let m = fixture("mikelmail_multi_charset_japanese_shift_jis.eml");
    assert_eq!(email(&m)["subject"], "test");
    assert!(m.text.starts_with("あいうえお"), "{}", m.text);
    assert!(
        m.text.contains("このメールはテスト用のメールです。"),
        "{}",
        m.text
    );

    let m = fixture("mikelmail_multi_charset_japanese_iso_2022.eml");
    assert_eq!(email(&m)["subject"], "まみむめも");
    assert_eq!(m.text, "すみません。");

    let m = fixture("mikelmail_multi_charset_ks_c_5601_1987.eml");
    assert_eq!(m.text, "스티해");

    let m = fixture("mikelmail_plain_emails_raw_email.eml");
    assert_eq!(email(&m)["subject"], "NOTE: 한국말로 하는 것");
    assert!(m.text.contains("제 이름은 Jamis입니다."), "{}", m.text);
}

#[test]
fn every_sisimai_robot_is_flagged() {
    let expected = [
        ("sisimai_abuse_report_arf__arf-01", "bounce"),
        ("sisimai_autoreply__rfc3834-01", "auto-submitted"),
        ("sisimai_autoreply__rfc3834-02", "auto-reply"),
        ("sisimai_autoreply__rfc3834-03", "auto-reply"),
        ("sisimai_autoreply__rfc3834-04", "auto-reply"),
        ("sisimai_autoreply__rfc3834-05", "auto-submitted"),
        ("sisimai_autoreply__rfc3834-06", "auto-submitted"),
        (
            "sisimai_bounce_dsn__lhost-exchange2007-05",
            "auto-submitted",
        ),
        ("sisimai_bounce_dsn__lhost-exim-01", "auto-submitted"),
        ("sisimai_bounce_dsn__lhost-gmail-01", "bounce"),
        ("sisimai_bounce_dsn__lhost-office365-01", "auto-submitted"),
        ("sisimai_bounce_dsn__lhost-postfix-01", "auto-submitted"),
        ("sisimai_bounce_dsn__rfc3464-01", "auto-submitted"),
        (
            "sisimai_list_bounce__lhost-googlegroups-01",
            "auto-submitted",
        ),
    ];
    let mut unflagged = Vec::new();
    let mut seen = 0;
    for path in files(root(), "eml") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("sisimai_") {
            continue;
        }
        seen += 1;
        let m = message(&std::fs::read(&path).unwrap());
        let reason = email(&m)["no_reply"].clone();
        if reason.is_null() {
            unflagged.push(name.clone());
            continue;
        }
        let want = expected
            .iter()
            .find(|(prefix, _)| name.starts_with(&format!("{prefix}__")))
            .map(|(_, r)| *r);
        assert_eq!(reason.as_str(), want, "{name}");
    }
    assert!(
        unflagged.is_empty(),
        "robots not recognised: {unflagged:#?}"
    );
    assert_eq!(seen, expected.len());
}

#[test]
fn people_are_not_flagged_as_robots() {
    for path in files(root(), "eml") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("talon_") {
            assert_eq!(email(&fixture(&name))["no_reply"], Value::Null, "{name}");
        }
    }
    // A mailing-list post and a bulk mail are robots too.
    let list = fixture("mailparser_thirdparty_014__shapelib_need_some_help.eml");
    assert_eq!(email(&list)["no_reply"], "precedence");
}

#[test]
fn attachments_are_listed_without_bytes() {
    let m = fixture("mailparser_thirdparty_018__29_html_embedded_image_attachment.eml");
    let got: Vec<_> = m
        .attachments
        .iter()
        .map(|a| {
            (
                a.kind.as_str(),
                a.file_id.as_str(),
                a.mime_type.as_deref(),
                a.name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "image",
                "kigaaldcbanejcbi.png",
                Some("image/png"),
                Some("kigaaldcbanejcbi.png")
            ),
            (
                "image",
                "attach2.png",
                Some("image/png"),
                Some("attach2.png")
            ),
        ]
    );
    assert_eq!(m.text, "Search for höhö");
    assert_eq!(email(&m)["html_only"], true);

    let m = fixture("mailparser_rfc_000__a_multipart_example.eml");
    let kinds: Vec<_> = m
        .attachments
        .iter()
        .map(|a| (a.kind.as_str(), a.file_id.as_str()))
        .collect();
    assert_eq!(kinds[..2], [("audio", "part-0"), ("image", "part-1")]);

    let m = fixture("mikelmail_attachment_emails_attachment_only_email.eml");
    assert_eq!(m.text, "");
    assert_eq!(m.attachments[0].name.as_deref(), Some("blah.gz"));
    assert_eq!(
        m.attachments[0].mime_type.as_deref(),
        Some("application/x-gzip")
    );
}

#[test]
fn forwarded_mail_is_kept_whole() {
    let m = fixture("mikelmail_attachment_emails_attachment_with_encoded_name.eml");
    assert!(m.text.starts_with("We should not include these files"));
    assert!(m.text.contains("---------- Forwarded message ----------"));
    assert!(
        m.text
            .ends_with("Test attachments oddly encoded with japanese charset.")
    );
}

#[test]
fn big_mail_is_truncated_not_refused() {
    let raw = std::fs::read(
        root().join("mikelmail_error_emails_content_transfer_encoding_with_8bits.eml"),
    )
    .unwrap();
    let cfg = InboundConfig {
        max_bytes: 1000,
        own_domain: "shop.example".into(),
    };
    let n = normalize(CH, &cfg, &raw, Utc::now()).unwrap();
    let InboundBody::Message(m) = &n.events[0].body else {
        panic!()
    };
    let e = email(m);
    assert_eq!(e["truncated"], true);
    assert!(
        m.text.len() <= 1000 && m.text.len() > 900,
        "{}",
        m.text.len()
    );
    let full = e["full_text"].as_str().unwrap();
    assert!(full.len() <= 1000 && full.starts_with("December 04, 2001"));
}
