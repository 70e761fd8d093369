//! Email against real servers: Dovecot serves the mailbox over IMAP and aiosmtpd receives
//! our replies (`.ci/mail-servers` installs and starts both). Each test reads its own
//! mailbox folder and recognises its replies by a customer address of its own.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mail_parser::{HeaderValue, MessageParser};
use switchboard::Parts;
use switchboard_core::ChannelKind;
use uuid::Uuid;

use crate::helpers::{TestApp, test_config};

const WAIT: Duration = Duration::from_secs(20);
const IMAP_PORT: u16 = 10143;
const IMAPS_PORT: u16 = 10993;
const SMTP_PORT: u16 = 10025;
const SUBMISSION_PORT: u16 = 10587;
const SMTPS_PORT: u16 = 10465;
const RECEIVED: &str = "/var/lib/switchboard-mail/smtp";
/// The CA of our own that signed the test servers' certificate.
const TEST_CA: &str = "/var/lib/switchboard-mail/tls/ca.pem";

async fn mail_servers() {
    static STARTED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    STARTED
        .get_or_init(|| async {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/mail-servers");
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("bash").arg(script).output()
            })
            .await
            .unwrap()
            .unwrap();
            assert!(
                out.status.success(),
                "the mail servers did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
        .await;
}

async fn imap() -> async_imap::Session<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", IMAP_PORT))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    client
        .login("support", "support")
        .await
        .map_err(|(e, _)| e)
        .unwrap()
}

/// A support mailbox folder of the test's own, and the customer who writes to it.
struct Mailbox {
    folder: String,
    customer: String,
}

impl Mailbox {
    async fn new() -> Self {
        Self::for_customer("ada").await
    }

    /// The SMTP server refuses `reject.*` for good and `tempfail.*` once.
    async fn for_customer(local: &str) -> Self {
        mail_servers().await;
        let id = Uuid::new_v4().simple().to_string();
        let folder = format!("t{id}");
        let mut s = imap().await;
        s.create(&folder).await.unwrap();
        s.logout().await.unwrap();
        Self {
            folder,
            customer: format!("{local}.{id}@customer.example"),
        }
    }

    /// Delivers a mail into the mailbox, as the customer's mail server would.
    async fn deliver(&self, raw: &str) {
        self.deliver_flagged(raw, None).await;
    }

    /// Delivers a mail with IMAP flags, such as `(\Seen)` for one someone already read.
    async fn deliver_flagged(&self, raw: &str, flags: Option<&str>) {
        let mut s = imap().await;
        s.append(
            &self.folder,
            flags,
            None,
            raw.replace('\n', "\r\n").as_bytes(),
        )
        .await
        .unwrap();
        s.logout().await.unwrap();
    }

    fn channel_config(&self) -> (serde_json::Value, serde_json::Value) {
        (
            serde_json::json!({"imap_host": "127.0.0.1", "imap_port": IMAP_PORT, "imap_tls": "none",
                "mailbox": self.folder, "smtp_host": "127.0.0.1", "smtp_port": SMTP_PORT, "smtp_tls": "none",
                "from": "Shop Support <support@shop.example>", "poll_secs": 1}),
            serde_json::json!({"imap_user": "support", "imap_password": "support"}),
        )
    }

    /// Every reply the SMTP server received for this customer, oldest first.
    fn replies(&self) -> Vec<Vec<u8>> {
        let mut found: Vec<(std::time::SystemTime, Vec<u8>)> = Vec::new();
        for dir in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(Path::new(RECEIVED).join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let raw = std::fs::read(e.path()).unwrap_or_default();
                let head = String::from_utf8_lossy(&raw[..raw.len().min(4096)]).to_lowercase();
                if head.contains(&format!("x-rcptto: {}", self.customer)) {
                    let at = e.metadata().and_then(|m| m.modified()).unwrap();
                    found.push((at, raw));
                }
            }
        }
        found.sort_by_key(|(at, _)| *at);
        found.into_iter().map(|(_, raw)| raw).collect()
    }

    async fn wait_replies(&self, n: usize) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let got = self.replies();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < WAIT,
                "{} of {n} replies arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn header(raw: &[u8], name: &str) -> String {
    let m = MessageParser::default().parse(raw).unwrap();
    match m.header(name) {
        Some(HeaderValue::Text(t)) => t.to_string(),
        Some(HeaderValue::TextList(l)) => l.join(" "),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn ids(raw: &[u8], name: &str) -> Vec<String> {
    let m = MessageParser::default().parse(raw).unwrap();
    match m.header(name) {
        Some(HeaderValue::Text(t)) => vec![t.to_string()],
        Some(HeaderValue::TextList(l)) => l.iter().map(|s| s.to_string()).collect(),
        _ => vec![],
    }
}

async fn email_channel(app: &TestApp, mailbox: &Mailbox) -> Uuid {
    let (config, secrets) = mailbox.channel_config();
    app.add_channel(ChannelKind::Email, config, secrets).await
}

/// A second email channel of the demo tenant (channel names are unique per tenant).
async fn email_channel_named(app: &TestApp, mailbox: &Mailbox, name: &str) -> Uuid {
    let (config, secrets) = mailbox.channel_config();
    add_email_channel(app, name, &config, &secrets).await
}

async fn add_email_channel(
    app: &TestApp,
    name: &str,
    config: &serde_json::Value,
    secrets: &serde_json::Value,
) -> Uuid {
    let cipher =
        switchboard_store::crypto::Cipher::from_base64(&app.config.security.master_key).unwrap();
    let tenant = app.services.store.tenant_id("demo").await.unwrap();
    let blob = cipher.encrypt(secrets.to_string().as_bytes());
    app.services
        .store
        .create_channel(tenant, ChannelKind::Email, name, config, Some(&blob))
        .await
        .unwrap()
}

fn customer_mail(customer: &str, id: &str, subject: &str, extra: &str, body: &str) -> String {
    format!(
        "From: Ada Lovelace <{customer}>\nTo: Shop Support <support@shop.example>\nSubject: {subject}\n\
         Message-ID: <{id}>\nDate: Sun, 22 Nov 2026 09:00:00 +0000\n{extra}MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
}

/// Both ways of securing each protocol, verified against the channel's private CA: IMAPS
/// with SMTP STARTTLS, and IMAP STARTTLS with SMTPS.
#[tokio::test]
async fn mail_over_tls_and_starttls_is_answered() {
    let implicit = Mailbox::for_customer("tls").await;
    let upgraded = Mailbox::for_customer("starttls").await;
    let app = TestApp::spawn().await;
    let ca = std::fs::read_to_string(TEST_CA).unwrap();
    for (mailbox, name, imap, smtp) in [
        (
            &implicit,
            "tls",
            ("tls", IMAPS_PORT),
            ("starttls", SUBMISSION_PORT),
        ),
        (
            &upgraded,
            "starttls",
            ("starttls", IMAP_PORT),
            ("tls", SMTPS_PORT),
        ),
    ] {
        let (mut config, secrets) = mailbox.channel_config();
        config["imap_tls"] = imap.0.into();
        config["imap_port"] = imap.1.into();
        config["smtp_tls"] = smtp.0.into();
        config["smtp_port"] = smtp.1.into();
        config["tls_ca_pem"] = ca.clone().into();
        add_email_channel(&app, name, &config, &secrets).await;
        let id = format!("{name}.{}@customer.example", Uuid::new_v4().simple());
        mailbox
            .deliver(&customer_mail(
                &mailbox.customer,
                &id,
                "Shipping to Berlin",
                "",
                "Do you ship to Berlin?",
            ))
            .await;
    }
    for mailbox in [&implicit, &upgraded] {
        let replies = mailbox.wait_replies(1).await;
        assert_eq!(header(&replies[0], "Subject"), "Re: Shipping to Berlin");
    }

    // Without the CA the SMTP server's certificate is refused, and the reply waits.
    let untrusted = Mailbox::for_customer("untrusted").await;
    let (mut config, secrets) = untrusted.channel_config();
    config["smtp_tls"] = "tls".into();
    config["smtp_port"] = SMTPS_PORT.into();
    let channel = add_email_channel(&app, "untrusted", &config, &secrets).await;
    untrusted
        .deliver(&customer_mail(
            &untrusted.customer,
            &format!("u.{}@customer.example", Uuid::new_v4().simple()),
            "Shipping to Berlin",
            "",
            "Do you ship to Berlin?",
        ))
        .await;
    app.wait_count(
        &format!(
            "SELECT count(*) FROM outbox WHERE channel_id = '{channel}' AND last_error LIKE '%certificate%'"
        ),
        1,
    )
    .await;
    assert!(untrusted.replies().is_empty());
}

#[tokio::test]
async fn a_mail_gets_one_threaded_reply_and_the_answer_stays_in_the_thread() {
    let mailbox = Mailbox::new().await;
    let app = TestApp::spawn().await;
    let channel = email_channel(&app, &mailbox).await;
    let first = format!("m1.{}@customer.example", Uuid::new_v4().simple());
    mailbox
        .deliver(&customer_mail(
            &mailbox.customer,
            &first,
            "Shipping to Berlin",
            "",
            "Do you ship to Berlin?\n\n-- \nAda Lovelace\nAnalytical Engines Ltd.",
        ))
        .await;

    let replies = mailbox.wait_replies(1).await;
    let reply = &replies[0];
    assert_eq!(header(reply, "Subject"), "Re: Shipping to Berlin");
    assert_eq!(ids(reply, "In-Reply-To"), vec![first.clone()]);
    assert_eq!(ids(reply, "References"), vec![first.clone()]);
    assert_eq!(header(reply, "Auto-Submitted"), "auto-replied");
    let ours = ids(reply, "Message-ID").pop().unwrap();
    assert!(
        ours.starts_with("sb.") && ours.ends_with("@shop.example"),
        "{ours}"
    );
    let parsed = MessageParser::default().parse(reply.as_slice()).unwrap();
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .to_lowercase()
            .contains("berlin")
    );
    assert!(parsed.body_html(0).unwrap().contains("<p>"));
    app.wait_count(
        &format!("SELECT count(*) FROM messages WHERE channel_id = '{channel}' AND role = 'assistant' AND external_id = '{ours}'"),
        1,
    )
    .await;

    let (words, full): (String, String) = sqlx::query_as(
        "SELECT content, metadata->'email'->>'full_text' FROM messages WHERE external_id = $1",
    )
    .bind(&first)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        words, "Do you ship to Berlin?",
        "the signature is not the customer's question"
    );
    assert!(
        full.contains("Analytical Engines"),
        "the full text is kept: {full}"
    );

    // The customer answers our reply: same conversation, and the answer to it continues
    // the References chain.
    let second = format!("m2.{}@customer.example", Uuid::new_v4().simple());
    mailbox
        .deliver(&customer_mail(
            &mailbox.customer,
            &second,
            "Re: Shipping to Berlin",
            &format!("In-Reply-To: <{ours}>\nReferences: <{first}> <{ours}>\n"),
            "And how much does shipping to Berlin cost?\n\nOn Sun, 22 Nov 2026, Shop Support wrote:\n> We ship to Berlin.",
        ))
        .await;
    let replies = mailbox.wait_replies(2).await;
    let again = &replies[1];
    assert_eq!(header(again, "Subject"), "Re: Shipping to Berlin");
    assert_eq!(ids(again, "In-Reply-To"), vec![second.clone()]);
    assert_eq!(
        ids(again, "References"),
        vec![first.clone(), ours.clone(), second.clone()]
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(DISTINCT conversation_id) FROM messages WHERE channel_id = '{channel}'"
        ))
        .await,
        1,
        "the answer landed in the same conversation"
    );
    let stored: String = sqlx::query_scalar("SELECT content FROM messages WHERE external_id = $1")
        .bind(&second)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        stored, "And how much does shipping to Berlin cost?",
        "quoted text is not the customer's"
    );

    // An RFC 3834 auto-reply and a bounce are stored and never answered.
    let auto = format!("a.{}@customer.example", Uuid::new_v4().simple());
    mailbox
        .deliver(&customer_mail(
            &mailbox.customer,
            &auto,
            "Auto: Re: Shipping to Berlin",
            &format!("Auto-Submitted: auto-replied\nIn-Reply-To: <{ours}>\n"),
            "I am out of the office until Monday.",
        ))
        .await;
    let bounce = format!("b.{}@mx.customer.example", Uuid::new_v4().simple());
    mailbox
        .deliver(&format!(
            "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\nTo: support@shop.example\n\
             Subject: Undelivered Mail Returned to Sender\nMessage-ID: <{bounce}>\nMIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\n\
             --b1\nContent-Type: text/plain\n\nThis is the mail system. Your message could not be delivered.\n\
             --b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.customer.example\n\n\
             Final-Recipient: rfc822; nobody@customer.example\nAction: failed\nStatus: 5.1.1\n\n--b1--\n"
        ))
        .await;
    app.wait_count(
        &format!("SELECT count(*) FROM messages WHERE external_id IN ('{auto}', '{bounce}')"),
        2,
    )
    .await;
    app.handled(&format!("message-id:{auto}"), 1).await;
    app.handled(&format!("message-id:{bounce}"), 1).await;
    app.settled().await;
    assert_eq!(mailbox.replies().len(), 2, "no answer to robots");
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM ai_suggestions s JOIN messages m ON m.id = s.based_on_message_id WHERE m.external_id IN ('{auto}', '{bounce}')"))
            .await,
        0
    );
}

#[tokio::test]
async fn a_listener_stopped_between_fetch_and_queue_answers_once_after_restart() {
    let mailbox = Mailbox::new().await;
    // The first listener fetches but cannot queue: its broker takes each connection and
    // drops it. Nothing else in that app talks to the broker, so a connection is the
    // listener trying to queue a mail it fetched.
    let broker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = broker.local_addr().unwrap().port();
    let tries = Arc::new(AtomicUsize::new(0));
    let refusing = tokio::spawn({
        let tries = tries.clone();
        async move {
            while let Ok((conn, _)) = broker.accept().await {
                tries.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        }
    });
    let mut broken = test_config();
    let good_amqp = broken.amqp.url.clone();
    broken.amqp.url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let listener_only = Parts {
        gateway: true,
        ai_worker: false,
        dispatcher: false,
        listener: true,
    };
    let mut first = TestApp::spawn_with(broken.clone(), listener_only).await;
    let channel = email_channel(&first, &mailbox).await;
    let id = format!("k.{}@customer.example", Uuid::new_v4().simple());
    mailbox
        .deliver(&customer_mail(
            &mailbox.customer,
            &id,
            "Berlin?",
            "",
            "Do you ship to Berlin?",
        ))
        .await;
    // The second try starts a pass after the one that failed to queue the mail: whatever
    // that pass did to the cursor is done.
    let start = Instant::now();
    while tries.load(Ordering::SeqCst) < 2 {
        assert!(
            start.elapsed() < WAIT,
            "the listener did not try to queue the mail twice"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cursor: Option<i64> =
        sqlx::query_scalar("SELECT imap_last_uid FROM channel_cursors WHERE channel_id = $1")
            .bind(channel)
            .fetch_optional(&first.pool)
            .await
            .unwrap();
    assert!(
        cursor.is_none_or(|c| c == 0),
        "the cursor passed a mail that was never queued: {cursor:?}"
    );
    first.stop().await;
    drop(first);
    refusing.abort();
    let event = format!("message-id:{id}");

    // Restarted with a working broker: the mail is answered, once.
    let mut fixed = broken.clone();
    fixed.amqp.url = good_amqp;
    let mut second = TestApp::spawn_with(fixed.clone(), Parts::ALL).await;
    mailbox.wait_replies(1).await;
    second.stop().await;
    let handled = second.handled_count(&event).await;
    // Losing the cursor's last write (a crash right after queueing) repeats nothing either.
    second
        .exec(&format!(
            "UPDATE channel_cursors SET imap_last_uid = 0 WHERE channel_id = '{channel}'"
        ))
        .await;
    drop(second);
    let mut third = TestApp::spawn_with(fixed, Parts::ALL).await;
    third
        .wait_count(&format!("SELECT count(*) FROM channel_cursors WHERE channel_id = '{channel}' AND imap_last_uid > 0"), 1)
        .await;
    // Queued again (the cursor moves after the broker's confirm), and handled again.
    third.handled(&event, handled + 1).await;
    third.settled().await;
    assert_eq!(mailbox.replies().len(), 1, "answered exactly once");
    third.stop().await;
    let handled = third.handled_count(&event).await;
    third
        .exec(&format!(
            "UPDATE channel_cursors SET imap_uidvalidity = 1 WHERE channel_id = '{channel}'"
        ))
        .await;
    // Nor does a mailbox renumbered (a new UIDVALIDITY) with the mail unread again.
    let mut s = imap().await;
    s.select(&mailbox.folder).await.unwrap();
    let seen = s.uid_search("SEEN").await.unwrap();
    assert_eq!(seen.len(), 1, "a queued mail is marked read");
    let _: Vec<_> = futures::TryStreamExt::try_collect(
        s.uid_store("1:*", "-FLAGS.SILENT (\\Seen)").await.unwrap(),
    )
    .await
    .unwrap();
    s.logout().await.unwrap();
    let fourth = TestApp::spawn_with(third.config.clone(), Parts::ALL).await;
    fourth
        .wait_count(&format!("SELECT count(*) FROM channel_cursors WHERE channel_id = '{channel}' AND imap_uidvalidity <> 1"), 1)
        .await;
    fourth.handled(&event, handled + 1).await;
    fourth.settled().await;
    assert_eq!(mailbox.replies().len(), 1, "a resync answers nothing twice");
    let mut s = imap().await;
    s.select(&mailbox.folder).await.unwrap();
    assert_eq!(
        s.uid_search("SEEN").await.unwrap().len(),
        1,
        "the resync read the unread mail again"
    );
    s.logout().await.unwrap();
    assert_eq!(
        third
            .count(&format!(
                "SELECT count(*) FROM messages WHERE external_id = '{id}'"
            ))
            .await,
        1
    );
}

/// Issue 12: the first sync answers the unread mail and nothing that was already read, even
/// read mail with a higher UID than an unread one; mail arriving later is still found.
#[tokio::test]
async fn the_first_sync_never_answers_read_mail_above_unread_mail() {
    let mailbox = Mailbox::new().await;
    let mail = |id: &str| {
        customer_mail(
            &mailbox.customer,
            id,
            "Shipping to Berlin",
            "",
            "Do you ship to Berlin?",
        )
    };
    let unread = format!("u.{}@customer.example", Uuid::new_v4().simple());
    let read = format!("r.{}@customer.example", Uuid::new_v4().simple());
    mailbox.deliver(&mail(&unread)).await;
    mailbox
        .deliver_flagged(&mail(&read), Some("(\\Seen)"))
        .await;
    let mut s = imap().await;
    s.select(&mailbox.folder).await.unwrap();
    let unread_uid = s
        .uid_search("UNSEEN")
        .await
        .unwrap()
        .into_iter()
        .max()
        .unwrap();
    let read_uid = s
        .uid_search("SEEN")
        .await
        .unwrap()
        .into_iter()
        .max()
        .unwrap();
    s.logout().await.unwrap();
    assert!(unread_uid < read_uid, "the read mail has the higher UID");

    let app = TestApp::spawn().await;
    let channel = email_channel(&app, &mailbox).await;
    let replies = mailbox.wait_replies(1).await;
    assert_eq!(ids(&replies[0], "In-Reply-To"), vec![unread.clone()]);
    // The first sync ends with the cursor past the read mail; left at the unread one, the
    // next pass would fetch the read mail and answer it.
    let start = Instant::now();
    loop {
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT imap_last_uid FROM channel_cursors WHERE channel_id = $1")
                .bind(channel)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if cursor.is_some_and(|c| c >= i64::from(read_uid)) {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the first sync left the cursor at {cursor:?}, below the read mail (UID {read_uid})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A mail arriving after the first sync is found by the next pass, which passes over the
    // read mail.
    let later = format!("l.{}@customer.example", Uuid::new_v4().simple());
    mailbox.deliver(&mail(&later)).await;
    let start = Instant::now();
    let replies = loop {
        let got = mailbox.replies();
        if got
            .iter()
            .any(|r| ids(r, "In-Reply-To") == vec![later.clone()])
        {
            break got;
        }
        assert!(start.elapsed() < WAIT, "the later mail was not answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM messages WHERE external_id IN ('{unread}', '{later}')"
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM messages WHERE external_id = '{read}'"
        ))
        .await,
        0,
        "the read mail was stored"
    );
    assert!(
        replies.iter().all(
            |r| !ids(r, "In-Reply-To").contains(&read) && !ids(r, "References").contains(&read)
        ),
        "the read mail was answered"
    );
}

#[tokio::test]
async fn smtp_refusals_fail_with_the_reason_and_deferrals_are_retried() {
    let refused = Mailbox::for_customer("reject").await;
    let deferred = Mailbox::for_customer("tempfail").await;
    let app = TestApp::spawn().await;
    email_channel(&app, &refused).await;
    email_channel_named(&app, &deferred, "second").await;
    for (m, n) in [(&refused, 1), (&deferred, 2)] {
        let id = format!("r{n}.{}@customer.example", Uuid::new_v4().simple());
        m.deliver(&customer_mail(
            &m.customer,
            &id,
            "Berlin",
            "",
            "Do you ship to Berlin?",
        ))
        .await;
    }
    // 451: tried again, then delivered.
    deferred.wait_replies(1).await;
    app.wait_count(
        &format!("SELECT count(*) FROM outbox o JOIN customers c ON c.id = (SELECT customer_id FROM conversations WHERE id = o.conversation_id) WHERE c.external_id = '{}' AND o.status = 'sent' AND o.attempts = 2", deferred.customer),
        1,
    )
    .await;
    // 550: failed for good, with the server's reason, visible as a dead letter.
    app.wait_count(
        &format!("SELECT count(*) FROM outbox o JOIN conversations v ON v.id = o.conversation_id JOIN customers c ON c.id = v.customer_id WHERE c.external_id = '{}' AND o.status = 'failed' AND o.last_error LIKE '%550%mailbox unavailable%'", refused.customer),
        1,
    )
    .await;
    assert!(refused.replies().is_empty());
}

#[tokio::test]
async fn a_mail_over_the_size_limit_goes_to_an_operator_truncated() {
    let mailbox = Mailbox::new().await;
    let app = TestApp::spawn().await;
    let (mut config, secrets) = mailbox.channel_config();
    config["max_bytes"] = serde_json::json!(2000);
    app.add_channel(ChannelKind::Email, config, secrets).await;
    let id = format!("big.{}@customer.example", Uuid::new_v4().simple());
    let body = format!(
        "Do you ship to Berlin?\n\n{}",
        "Here is my whole order history. ".repeat(200)
    );
    mailbox
        .deliver(&customer_mail(&mailbox.customer, &id, "Berlin", "", &body))
        .await;
    app.wait_count(
        "SELECT count(*) FROM escalation_events WHERE reason LIKE '%size limit%'",
        1,
    )
    .await;
    let (len, truncated): (i32, bool) = sqlx::query_as(
        "SELECT length(content), (metadata->'email'->>'truncated')::boolean FROM messages WHERE external_id = $1",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(truncated);
    assert!(len <= 2000, "stored truncated: {len}");
    assert_eq!(
        app.count("SELECT count(*) FROM conversations WHERE status = 'escalated'")
            .await,
        1
    );
    app.handled(&format!("message-id:{id}"), 1).await;
    app.settled().await;
    assert!(
        mailbox.replies().is_empty(),
        "no draft goes out for a mail nobody read whole"
    );
    assert_eq!(app.count("SELECT count(*) FROM ai_suggestions").await, 0);
}

/// An IMAP server that greets and then never answers: the listener gives up on the
/// command after the channel's `command_timeout_secs` and connects again, instead of
/// waiting on it for ever.
#[tokio::test]
async fn a_silent_imap_server_is_given_up_on_and_tried_again() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = socket.write_all(b"* OK IMAP4rev1 ready\r\n").await;
                let mut buf = [0u8; 1024];
                // Reads what the client sends and never answers it.
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    let app = TestApp::spawn().await;
    let config = serde_json::json!({"imap_host": "127.0.0.1", "imap_port": port, "imap_tls": "none",
        "smtp_host": "127.0.0.1", "smtp_port": SMTP_PORT, "smtp_tls": "none",
        "from": "Shop Support <support@shop.example>", "poll_secs": 1, "command_timeout_secs": 1});
    let secrets = serde_json::json!({"imap_user": "support", "imap_password": "support"});
    app.add_channel(ChannelKind::Email, config, secrets).await;
    let start = std::time::Instant::now();
    while connections.load(Ordering::SeqCst) < 2 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the listener still waits on the first connection"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
