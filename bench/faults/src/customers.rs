//! The customers: who writes on which channel, what, and how the platforms deliver it
//! (webhooks repeated and out of order, each retried until the gateway takes it, as the
//! platforms do).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use uuid::Uuid;

pub const TG_SECRET: &str = "faults-tg-secret";
pub const WA_APP_SECRET: &str = "faults-wa-secret";
pub const WA_PHONE: &str = "PNFAULTS";
pub const STOP: &str = "STOP";

/// A question the demo shop's built-in responder answers on its own.
pub const AUTO: &str = "Do you ship to Berlin?";
/// One it drafts for an operator to approve.
pub const APPROVE: &str = "What is your return policy?";
/// One it hands to an operator.
pub const ESCALATE: &str = "I want a refund, my order arrived broken";
/// What a customer the operator took over writes next.
pub const FOLLOW_UP: &str = "Are you still there?";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Webchat,
    Telegram,
    Whatsapp,
    Email,
}

impl Channel {
    pub fn kind(self) -> &'static str {
        match self {
            Channel::Webchat => "webchat",
            Channel::Telegram => "telegram",
            Channel::Whatsapp => "whatsapp",
            Channel::Email => "email",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Asks one question and expects one answer (or an operator).
    Plain,
    /// Asks, then writes STOP: nothing but the opt-out's confirmation may follow the STOP.
    Stop,
    /// Asks; an operator takes the conversation over; writes again: no automatic reply may
    /// follow the takeover.
    Held,
}

/// One message as the customer sent it: when the first attempt left, and when the
/// gateway (or the mailbox) first took it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub text: String,
    pub first_attempt: Instant,
    pub accepted: Option<Instant>,
}

pub struct Customer {
    pub channel: Channel,
    pub kind: Kind,
    /// The customer's id on the channel: visitor id, chat id, WhatsApp id or address.
    pub external: String,
    pub question: &'static str,
    pub sent: Mutex<Vec<Sent>>,
}

impl Customer {
    pub fn messages(&self) -> usize {
        match self.kind {
            Kind::Plain => 1,
            Kind::Stop | Kind::Held => 2,
        }
    }
}

/// Customers until they write `messages` messages in all: the web chat, Telegram and
/// WhatsApp share most of them, email a tenth; one in twenty opts out and one in twenty
/// is taken over (not on email, where neither is driven here).
pub fn make(messages: usize, run: &str) -> Vec<Arc<Customer>> {
    let mut rng = rand::rng();
    let mut out = Vec::new();
    let mut total = 0;
    let mut i = 0usize;
    while total < messages {
        let channel = match i % 10 {
            0..=2 => Channel::Webchat,
            3..=5 => Channel::Telegram,
            6..=8 => Channel::Whatsapp,
            _ => Channel::Email,
        };
        let mut kind = match rng.random_range(0..20) {
            0 if channel != Channel::Email => Kind::Stop,
            1 if channel != Channel::Email => Kind::Held,
            _ => Kind::Plain,
        };
        if total + 2 > messages {
            kind = Kind::Plain;
        }
        let question = match rng.random_range(0..10) {
            0..=6 => AUTO,
            7..=8 => APPROVE,
            _ => ESCALATE,
        };
        let external = match channel {
            Channel::Webchat => format!("v-{}", Uuid::new_v4().simple()),
            Channel::Telegram => (7_000_000_000i64 + i as i64).to_string(),
            Channel::Whatsapp => (49_150_000_000_000i64 + i as i64).to_string(),
            Channel::Email => format!("c{i}.{run}@customer.example"),
        };
        let c = Customer {
            channel,
            kind,
            external,
            question,
            sent: Mutex::default(),
        };
        total += c.messages();
        out.push(Arc::new(c));
        i += 1;
    }
    out
}

/// Where the customers' platforms deliver.
#[derive(Clone)]
pub struct Targets {
    pub http: reqwest::Client,
    pub gateway: String,
    /// The operator's session, shared by everything the operator does, as one console
    /// would: signing in again for each action made so many sign-ins that a PostgreSQL
    /// restart cut five short, and the account locked (see the README's fault suite).
    pub operator_token: std::sync::Arc<tokio::sync::Mutex<Option<String>>>,
    pub telegram: Uuid,
    pub whatsapp: Uuid,
    pub email_folder: String,
}

/// A message id unique in the run, for the platform's own message and update ids.
fn next_id() -> i64 {
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Targets {
    /// Sends message `text` of `c`, repeating platform webhooks, and records when it was
    /// first taken.
    pub async fn send(&self, c: &Customer, text: &str) {
        let first_attempt = Instant::now();
        let idx = {
            let mut sent = c.sent.lock().unwrap_or_else(|p| p.into_inner());
            sent.push(Sent {
                text: text.into(),
                first_attempt,
                accepted: None,
            });
            sent.len() - 1
        };
        let id = next_id();
        let accepted = match c.channel {
            Channel::Webchat => {
                let body = json!({"visitor_id": c.external, "client_message_id": format!("m{id}"), "text": text});
                self.webhook(
                    &format!("{}/api/webchat/demo/messages", self.gateway),
                    body.to_string().into_bytes(),
                    vec![],
                    1,
                )
                .await
            }
            Channel::Telegram => {
                let chat: i64 = c.external.parse().unwrap_or_default();
                let update = json!({"update_id": id, "message": {
                    "message_id": id, "date": 1_700_000_000, "text": text,
                    "from": {"id": chat, "is_bot": false, "first_name": "Ada"},
                    "chat": {"id": chat, "type": "private", "first_name": "Ada"}}});
                self.webhook(
                    &format!("{}/webhooks/telegram/{}", self.gateway, self.telegram),
                    update.to_string().into_bytes(),
                    vec![("X-Telegram-Bot-Api-Secret-Token", TG_SECRET.to_owned())],
                    copies(),
                )
                .await
            }
            Channel::Whatsapp => {
                let body = whatsapp_body(&c.external, &format!("wamid.faults.{id}"), text);
                let signature = sign(&body);
                self.webhook(
                    &format!("{}/webhooks/whatsapp/{}", self.gateway, self.whatsapp),
                    body,
                    vec![("X-Hub-Signature-256", signature)],
                    copies(),
                )
                .await
            }
            Channel::Email => {
                let mail = format!(
                    "From: Customer <{from}>\r\nTo: Shop Support <support@shop.example>\r\n\
                     Subject: A question\r\nMessage-ID: <faults.{id}@customer.example>\r\n\
                     Date: Thu, 03 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
                     Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
                    from = c.external
                );
                deliver_mail(&self.email_folder, &mail, copies()).await
            }
        };
        let mut sent = c.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent[idx].accepted = Some(accepted);
    }

    /// Delivers `copies` copies of a webhook, each after a random delay of up to 1.5 s (so
    /// copies and neighbouring messages overtake each other), each retried until the
    /// gateway answers 2xx; returns when the first copy was taken.
    async fn webhook(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: Vec<(&'static str, String)>,
        copies: usize,
    ) -> Instant {
        let deliveries = (0..copies).map(|n| {
            let (url, body, headers) = (url.to_owned(), body.clone(), headers.clone());
            async move {
                if n > 0 {
                    let ms = rand::rng().random_range(0..1500);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                self.deliver(&url, body, &headers).await
            }
        });
        let taken = futures::future::join_all(deliveries).await;
        taken.into_iter().min().unwrap_or_else(Instant::now)
    }

    /// One delivery, retried with a growing pause while the gateway is away or answers
    /// 5xx or 429, as the platforms retry. A 4xx other than 429 is a bug of the product
    /// or of this bench, and stops the run.
    async fn deliver(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&'static str, String)],
    ) -> Instant {
        let mut pause = Duration::from_millis(100);
        loop {
            let mut req = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return Instant::now(),
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {}
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    eprintln!("FATAL: {url} answered {status}: {text}");
                    std::process::exit(2);
                }
                Err(_) => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// One delivery of most webhooks, two or three of some: the platforms deliver at least once.
fn copies() -> usize {
    match rand::rng().random_range(0..10) {
        0 => 3,
        1..=2 => 2,
        _ => 1,
    }
}

fn whatsapp_body(from: &str, id: &str, text: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": WA_PHONE},
            "contacts": [{"wa_id": from, "profile": {"name": "Customer"}}],
            "messages": [{"from": from, "id": id, "timestamp": "1700000000", "type": "text",
                          "text": {"body": text}}]}}]}]})
    .to_string()
    .into_bytes()
}

fn sign(body: &[u8]) -> String {
    switchboard_fakes::whatsapp_signature(WA_APP_SECRET, body)
}

pub const IMAP_PORT: u16 = 10143;

/// Appends the mail to the support mailbox `copies` times, as a customer's server (and a
/// re-sending one) would deliver it; retried until the mailbox takes it.
async fn deliver_mail(folder: &str, raw: &str, copies: usize) -> Instant {
    let mut first = None;
    for _ in 0..copies {
        loop {
            match append(folder, raw).await {
                Ok(()) => break,
                Err(e) => {
                    eprintln!("appending a mail failed ({e:#}); retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        first.get_or_insert_with(Instant::now);
    }
    first.unwrap_or_else(Instant::now)
}

pub async fn imap() -> anyhow::Result<async_imap::Session<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", IMAP_PORT)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    client
        .login("support", "support")
        .await
        .map_err(|(e, _)| anyhow::anyhow!(e))
}

async fn append(folder: &str, raw: &str) -> anyhow::Result<()> {
    let mut s = imap().await?;
    s.append(folder, None, None, raw.as_bytes()).await?;
    s.logout().await?;
    Ok(())
}

/// What the fake platforms and the SMTP server received: (customer, text, when).
pub type Received = Vec<(String, String, Instant)>;

/// Every mail the SMTP server kept for this run's customers, keyed by its Message-ID so a
/// mail sent twice counts twice.
pub fn mails(run: &str, started: (Instant, std::time::SystemTime)) -> Received {
    let mut out = Vec::new();
    let suffix = format!(".{run}@customer.example");
    for dir in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(std::path::Path::new(SMTP_MAILDIR).join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let raw = std::fs::read(e.path()).unwrap_or_default();
            let head = String::from_utf8_lossy(&raw[..raw.len().min(8192)]).into_owned();
            let header = |name: &str| {
                head.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with(name))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            };
            let Some(to) = header("x-rcptto:") else {
                continue;
            };
            if !to.to_ascii_lowercase().ends_with(&suffix) {
                continue;
            }
            let id = header("message-id:").unwrap_or_default();
            let at = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(started.1).ok())
                .map_or(started.0, |d| started.0 + d);
            out.push((to.to_ascii_lowercase(), id, at));
        }
    }
    out
}

pub const SMTP_MAILDIR: &str = "/var/lib/switchboard-mail/smtp";

/// The replies the fakes received, by customer: Telegram's sendMessage by chat, WhatsApp's
/// outgoing messages (not read receipts or typing) by recipient.
pub fn platform_replies(
    telegram: &switchboard_fakes::FakePlatform,
    whatsapp: &switchboard_fakes::FakePlatform,
) -> Received {
    let mut out = Vec::new();
    for r in telegram.requests("sendmessage") {
        let chat = match &r.body["chat_id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push((chat, r.body["text"].as_str().unwrap_or("").to_owned(), r.at));
    }
    for r in whatsapp.requests(&format!("{WA_PHONE}/messages")) {
        if r.body.get("status").is_some() || !r.body["type"].is_string() {
            continue;
        }
        let text = r.body["text"]["body"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| r.body.to_string());
        out.push((r.body["to"].as_str().unwrap_or("").to_owned(), text, r.at));
    }
    out
}
