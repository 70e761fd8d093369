//! Replies over SMTP with lettre, threaded into the customer's conversation: our own
//! Message-ID, In-Reply-To and References as RFC 5322 builds them, one "Re:" at most, a
//! text and an HTML part, and `Auto-Submitted: auto-replied` on what the bot sent alone.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as SmtpTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use switchboard_core::{ChannelAdapter, ChannelKind, OutboundMessage, SendError, SendReceipt};

use secrecy::ExposeSecret;

use super::{Config, Secrets, Tls};

pub struct EmailAdapter {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

/// RFC 3834: marks a message sent without a human deciding to, so other robots do not answer it.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

/// The private CA's certificates, or why they are unusable.
pub(crate) fn ca_certificate(pem: &str) -> Result<Certificate, String> {
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("the CA file holds no PEM certificate".into());
    }
    Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("the CA file is unusable: {e}"))
}

impl EmailAdapter {
    pub fn new(cfg: &Config, secrets: &Secrets) -> Result<Self, String> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("bad from address {:?}: {e}", cfg.from))?;
        let tls = |host: &str| {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(pem) = &cfg.tls_ca_pem {
                params = params.add_root_certificate(ca_certificate(pem)?);
            }
            params
                .build()
                .map_err(|e| format!("TLS setup for {host}: {e}"))
        };
        let tls = match cfg.smtp_tls {
            Tls::None => SmtpTls::None,
            Tls::Starttls => SmtpTls::Required(tls(&cfg.smtp_host)?),
            Tls::Tls => SmtpTls::Wrapper(tls(&cfg.smtp_host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp_host)
            .port(cfg.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&secrets.smtp_user, &secrets.smtp_password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            domain: cfg.domain(),
        })
    }

    /// The reply as it goes on the wire, and its Message-ID (without brackets).
    pub fn build(&self, msg: &OutboundMessage) -> Result<(Message, String), SendError> {
        let permanent = |reason: String| SendError::Permanent { reason };
        let to: Mailbox = msg
            .recipient
            .parse()
            .map_err(|e| permanent(format!("bad recipient address: {e}")))?;
        // Fixed by the outbox row, so a retried send carries the same id.
        let id = format!("sb.{}@{}", msg.message_id, self.domain);
        let ctx = &msg.reply_context["email"];
        let subject = reply_subject(ctx["subject"].as_str().unwrap_or(""));
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{id}>")));
        if let Some(parent) = &msg.reply_to_external_id {
            builder = builder.in_reply_to(format!("<{parent}>"));
            let refs = references(ctx, parent);
            builder = builder.references(refs);
        }
        if !msg.human_sent {
            builder = builder.header(AutoSubmitted);
        }
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(msg.text.clone()),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html(&msg.text)),
            );
        let email = builder
            .multipart(body)
            .map_err(|e| permanent(format!("cannot build the mail: {e}")))?;
        Ok((email, id))
    }
}

/// "Re: " once, whatever the original already carried.
pub fn reply_subject(original: &str) -> String {
    let mut s = original.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let cut = ["re:", "aw:", "sv:", "fwd:", "re :"]
            .iter()
            .find(|p| lower.starts_with(**p) && !lower.starts_with("fwd:"))
            .map(|p| p.len());
        match cut {
            Some(n) => s = s[n..].trim_start(),
            None => break,
        }
    }
    if s.is_empty() {
        "Re: your message".into()
    } else {
        format!("Re: {s}")
    }
}

/// RFC 5322 3.6.4: the parent's References (or, lacking them, its single In-Reply-To),
/// followed by the parent's Message-ID.
fn references(ctx: &serde_json::Value, parent: &str) -> String {
    let ids = |key: &str| -> Vec<String> {
        ctx[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut chain = ids("references");
    if chain.is_empty() {
        let irt = ids("in_reply_to");
        if irt.len() == 1 {
            chain = irt;
        }
    }
    chain.retain(|id| id != parent);
    chain.push(parent.to_owned());
    chain
        .iter()
        .map(|id| format!("<{id}>"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A plain HTML rendering: escaped, paragraphs kept.
fn html(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let paragraphs: Vec<String> = escaped
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", p.trim().replace('\n', "<br>")))
        .collect();
    format!(
        "<!doctype html><html><body>{}</body></html>",
        paragraphs.join("")
    )
}

#[async_trait]
impl ChannelAdapter for EmailAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let (email, id) = self.build(msg)?;
        match self.transport.send(email).await {
            Ok(_) => Ok(SendReceipt {
                external_id: Some(id),
                pause: None,
            }),
            Err(e) if e.is_permanent() => Err(SendError::Permanent {
                reason: format!("the SMTP server refused the mail: {e}"),
            }),
            // 4xx, a dropped connection, a timeout: try again later.
            Err(e) => Err(SendError::Retryable {
                reason: format!("SMTP: {e}"),
                retry_after: None,
            }),
        }
    }

    async fn typing(&self, _: &OutboundMessage) -> Result<(), SendError> {
        Ok(())
    }

    fn typing_interval(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_re_only() {
        assert_eq!(reply_subject("Order 42"), "Re: Order 42");
        assert_eq!(reply_subject("Re: Order 42"), "Re: Order 42");
        assert_eq!(reply_subject("RE: re: AW: Order 42"), "Re: Order 42");
        assert_eq!(reply_subject("Fwd: Order 42"), "Re: Fwd: Order 42");
        assert_eq!(reply_subject("  "), "Re: your message");
    }

    #[test]
    fn references_follow_rfc_5322() {
        let ctx = json!({"references": ["a@x", "b@x"], "in_reply_to": ["b@x"]});
        assert_eq!(references(&ctx, "c@x"), "<a@x> <b@x> <c@x>");
        let ctx = json!({"references": [], "in_reply_to": ["b@x"]});
        assert_eq!(references(&ctx, "c@x"), "<b@x> <c@x>");
        assert_eq!(references(&json!({}), "c@x"), "<c@x>");
    }

    #[test]
    fn a_ca_file_without_a_usable_certificate_is_refused() {
        assert_eq!(
            ca_certificate("hello").err().as_deref(),
            Some("the CA file holds no PEM certificate")
        );
        let damaged = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(
            ca_certificate(damaged)
                .err()
                .is_some_and(|e| e.starts_with("the CA file is unusable")),
        );
    }

    #[test]
    fn only_what_the_bot_sent_alone_is_marked_auto_submitted() {
        let cfg = Config {
            imap_host: "imap.example".into(),
            imap_port: 993,
            imap_tls: Tls::Tls,
            mailbox: "INBOX".into(),
            smtp_host: "smtp.example".into(),
            smtp_port: 25,
            smtp_tls: Tls::None,
            from: "Shop <support@shop.example>".into(),
            max_bytes: 1000,
            poll_secs: 30,
            command_timeout_secs: 30,
            tls_ca_pem: None,
        };
        let secrets = Secrets {
            imap_user: "u".into(),
            imap_password: "p".into(),
            smtp_user: None,
            smtp_password: None,
        };
        let adapter = EmailAdapter::new(&cfg, &secrets).unwrap();
        let mut msg = OutboundMessage {
            message_id: uuid::Uuid::nil(),
            tenant_id: uuid::Uuid::nil(),
            channel_id: uuid::Uuid::nil(),
            conversation_id: uuid::Uuid::nil(),
            recipient: "ada@customer.example".into(),
            part: 0,
            text: "We ship to Berlin.".into(),
            reply_to_external_id: Some("m1@customer.example".into()),
            choices: vec![],
            human_sent: false,
            role: "assistant".into(),
            reply_context: json!({"email": {"subject": "Berlin?", "references": []}}),
        };
        let wire = |m: &OutboundMessage| {
            String::from_utf8(adapter.build(m).unwrap().0.formatted()).unwrap()
        };
        let bot = wire(&msg);
        assert!(bot.contains("Auto-Submitted: auto-replied"), "{bot}");
        assert!(bot.contains("Message-ID: <sb.00000000-0000-0000-0000-000000000000@shop.example>"));
        assert!(bot.contains("In-Reply-To: <m1@customer.example>"));
        assert!(bot.contains("Subject: Re: Berlin?"));
        msg.human_sent = true;
        assert!(!wire(&msg).contains("Auto-Submitted"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html("a <b>\n\nc & d"),
            "<!doctype html><html><body><p>a &lt;b&gt;</p><p>c &amp; d</p></body></html>"
        );
    }
}
