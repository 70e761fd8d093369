//! Pure parsing and normalization of one inbound mail (RFC 5322 bytes as IMAP hands them
//! over) into a customer message. No I/O: the listener fetches, this decides what the mail
//! says, who wrote it, what it answers, and whether it is a robot we must never answer.

use chrono::{DateTime, Utc};
use mail_parser::decoders::html::add_html_token;
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde_json::json;
use sha2::{Digest, Sha256};
use switchboard_core::{
    Attachment, ChannelKind, ChannelRef, CustomerMessage, InboundBody, InboundEvent, Normalized,
    Sender,
};

use super::strip::customer_words;
use crate::InboundError;

pub struct InboundConfig {
    pub max_bytes: usize,
    pub own_domain: String,
}

/// One raw mail → exactly one customer-message event, or why it cannot be one (empty input,
/// no header section, no usable sender address).
///
/// Robots (auto-replies, bulk and list mail, bounces, our own messages coming back) still
/// produce an event; `metadata.email.no_reply` names the reason, and nothing may answer them.
///
/// A mail over `cfg.max_bytes` (the listener fetches at most one byte more) is parsed as far
/// as it goes; its `text` and `full_text` are cut to `max_bytes` bytes (at a char boundary)
/// and `truncated` is set, so an operator reads it. A text part that comes only after a
/// large attachment may be missing from such a mail.
pub fn normalize(
    ch: ChannelRef,
    cfg: &InboundConfig,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<Normalized, InboundError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(InboundError::Malformed("empty message".into()));
    }
    // mail-parser never panics in release builds, but some broken MIME trees reach its
    // `debug_assert!(false, …)` recovery paths; debug builds must not die on them either.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .map_err(|_| InboundError::Malformed("MIME structure too broken to parse".into()))?;
    let msg = parsed
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| InboundError::Malformed("not an email: no header section".into()))?;

    let from = first_mailbox(msg.from());
    let reply_to = first_mailbox(msg.reply_to());
    let Some(sender) = reply_to.clone().or_else(|| from.clone()) else {
        return Err(InboundError::Invalid {
            field: "from",
            reason: "no usable sender address in From or Reply-To".into(),
        });
    };
    // From's display name only names the Reply-To mailbox when it is the same address:
    // a form mailer's "Website <noreply@…>" is not the customer.
    let name = sender.name.clone().or_else(|| {
        from.as_ref()
            .filter(|f| f.address == sender.address)
            .and_then(|f| f.name.clone())
    });

    let message_id = msg.message_id().map(clean_id).filter(|id| !id.is_empty());
    let external_id = match &message_id {
        Some(id) => id.clone(),
        None => format!("sha256:{}", sha256_hex(raw)),
    };
    let provider_event_id = match &message_id {
        Some(id) => format!("message-id:{id}"),
        None => external_id.clone(),
    };
    let in_reply_to = ids(msg.in_reply_to());
    let references = ids(msg.references());

    let body = body_text(&msg);
    let mut full_text = clean(&body.text);
    let mut text = customer_words(&full_text);
    let mut truncated = false;
    if raw.len() > cfg.max_bytes || full_text.len() > cfg.max_bytes {
        truncated = true;
        cut(&mut full_text, cfg.max_bytes);
        cut(&mut text, cfg.max_bytes);
    }

    let from_addr = from.as_ref().unwrap_or(&sender).address.clone();
    let to: Vec<String> = msg
        .all_to()
        .flat_map(Address::iter)
        .filter_map(|a| a.address())
        .map(|a| clean(a.trim()).to_lowercase())
        .filter(|a| !a.is_empty())
        .collect();
    let date = msg
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| DateTime::parse_from_rfc3339(&d.to_rfc3339()).ok())
        .map(|d| d.to_rfc3339());

    let email = json!({
        "message_id": external_id,
        "subject": clean(msg.subject().unwrap_or_default().trim()),
        "in_reply_to": in_reply_to,
        "references": references,
        "from": from_addr,
        "to": to,
        "full_text": full_text,
        "truncated": truncated,
        "html_only": body.html_only,
        "no_reply": no_reply(&msg, cfg, from.as_ref(), message_id.as_deref()),
        "date": date,
    });
    let mut metadata = serde_json::Map::new();
    metadata.insert("email".into(), email);

    let message = CustomerMessage {
        external_message_id: external_id,
        sender: Sender {
            external_id: sender.address,
            name,
        },
        text,
        attachments: attachments(&msg),
        reply_to_external_id: in_reply_to.first().cloned(),
        metadata,
    };
    Ok(Normalized {
        events: vec![InboundEvent {
            tenant_id: ch.tenant_id,
            channel_id: ch.channel_id,
            channel_kind: ChannelKind::Email,
            provider_event_id,
            received_at: now,
            body: InboundBody::Message(message),
        }],
        ignored: vec![],
    })
}

#[derive(Debug, Clone)]
struct Mailbox {
    /// Lowercased.
    address: String,
    name: Option<String>,
}

/// The first address in a From/Reply-To field that looks deliverable (`local@domain`).
fn first_mailbox(field: Option<&Address<'_>>) -> Option<Mailbox> {
    field?.iter().find_map(|a| {
        let address = a.address()?.trim().trim_matches(['<', '>']).to_lowercase();
        let (local, domain) = address.rsplit_once('@')?;
        if local.is_empty()
            || domain.is_empty()
            || address.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return None;
        }
        let name = a
            .name()
            .map(|n| clean(n.trim().trim_matches('"').trim()))
            .filter(|n| !n.is_empty() && n.to_lowercase() != address);
        Some(Mailbox { address, name })
    })
}

/// A Message-ID as mail-parser returns it, without stray brackets or spaces.
fn clean_id(id: &str) -> String {
    clean(id.trim().trim_matches(['<', '>']).trim())
}

/// `s` without control characters other than newline and tab: undecodable charsets leave
/// escape bytes behind, and a NUL is refused by PostgreSQL text and JSONB.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect()
}

/// The ids of an In-Reply-To or References field, in order.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let all: Vec<String> = match value {
        HeaderValue::Text(id) => vec![clean_id(id)],
        HeaderValue::TextList(list) => list.iter().map(|id| clean_id(id)).collect(),
        _ => vec![],
    };
    all.into_iter().filter(|id| !id.is_empty()).collect()
}

fn sha256_hex(raw: &[u8]) -> String {
    Sha256::digest(raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Shortens `s` to at most `max` bytes, at a char boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let at = (0..=max)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(at);
    }
}

struct Body {
    text: String,
    /// The text came from HTML alone: there was no usable text/plain part.
    html_only: bool,
}

/// The readable body: the text/plain parts mail-parser picked as the body (its choice in
/// multipart/alternative), HTML ones converted; when those say nothing, the HTML bodies.
fn body_text(msg: &Message<'_>) -> Body {
    let mut parts = Vec::new();
    let mut any_plain = false;
    for part in msg.text_bodies() {
        match &part.body {
            PartType::Text(t) if !t.trim().is_empty() => {
                any_plain = true;
                parts.push(t.to_string());
            }
            PartType::Html(h) => parts.push(html_to_text(h)),
            _ => {}
        }
    }
    let mut text = parts.join("\n\n");
    let mut html_only = !any_plain && !parts.is_empty();
    if text.trim().is_empty() {
        let html: Vec<String> = msg
            .html_bodies()
            .filter_map(|p| match &p.body {
                PartType::Html(h) => Some(html_to_text(h)),
                _ => None,
            })
            .collect();
        if !html.is_empty() {
            text = html.join("\n\n");
            html_only = true;
        }
    }
    Body {
        text: text.trim().to_string(),
        html_only: html_only && !text.trim().is_empty(),
    }
}

/// One entry per attachment part, metadata only.
fn attachments(msg: &Message<'_>) -> Vec<Attachment> {
    msg.attachments()
        .enumerate()
        // A multipart here is a container mail-parser could not split, not a file.
        .filter(|(_, part)| {
            part.content_type()
                .is_none_or(|ct| !ct.ctype().eq_ignore_ascii_case("multipart"))
        })
        .map(|(i, part)| {
            let mime = part.content_type().map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
                None => ct.ctype().to_lowercase(),
            });
            let kind = match mime.as_deref().and_then(|m| m.split('/').next()) {
                Some("image") => "image",
                Some("audio") => "audio",
                Some("video") => "video",
                _ => "document",
            };
            let name = part
                .attachment_name()
                .map(|n| clean(n.trim()))
                .filter(|n| !n.is_empty());
            Attachment {
                kind: kind.into(),
                file_id: name.clone().unwrap_or_else(|| format!("part-{i}")),
                mime_type: mime,
                name,
            }
        })
        .collect()
}

/// A top-level header's raw value, unfolded and trimmed.
fn header(msg: &Message<'_>, name: &'static str) -> Option<String> {
    msg.header_raw(name)
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Why nothing may answer this mail (RFC 3834 and common practice), first match wins; `None`
/// for a mail a person wrote.
fn no_reply(
    msg: &Message<'_>,
    cfg: &InboundConfig,
    from: Option<&Mailbox>,
    message_id: Option<&str>,
) -> Option<&'static str> {
    let lower = |name: &'static str| header(msg, name).map(|v| v.to_lowercase());
    let present = |name: &'static str| msg.header(name).is_some();

    if lower("Auto-Submitted")
        .is_some_and(|v| v.split([';', '(']).next().is_some_and(|t| t.trim() != "no"))
    {
        return Some("auto-submitted");
    }
    if lower("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "list" | "junk")) {
        return Some("precedence");
    }
    let suppress = lower("X-Auto-Response-Suppress").is_some_and(|v| {
        v.split([',', ' '])
            .any(|t| matches!(t.trim(), "all" | "oof" | "autoreply"))
    });
    let apple_vacation = lower("X-Apple-Action").is_some_and(|v| v.contains("vacation"));
    let autoreply_flag =
        |name: &'static str| lower(name).is_some_and(|v| v != "no" && v != "false");
    if autoreply_flag("X-Autoreply")
        || autoreply_flag("X-Autorespond")
        || autoreply_flag("X-Autogenerated")
        || suppress
        || apple_vacation
    {
        return Some("auto-reply");
    }
    if present("List-Id") || present("List-Unsubscribe") {
        return Some("mailing-list");
    }
    let null_return_path = header(msg, "Return-Path").is_some_and(|v| v.replace(' ', "") == "<>");
    let daemon = from.is_some_and(|f| {
        f.address
            .split('@')
            .next()
            .is_some_and(|local| matches!(local, "mailer-daemon" | "postmaster"))
    });
    let report = msg.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    if null_return_path || daemon || report {
        return Some("bounce");
    }
    let own = message_id
        .and_then(|id| id.rsplit_once('@'))
        .is_some_and(|(local, domain)| {
            domain.eq_ignore_ascii_case(cfg.own_domain.trim()) && local.starts_with("sb.")
        });
    if own {
        return Some("own-message");
    }
    None
}

/// Readable text from an HTML body: tags and `<head>`/`<style>`/`<script>` dropped,
/// entities decoded, whitespace collapsed, block elements on their own lines, `<br>` kept,
/// and `<blockquote>` lines marked with `> ` so the quote stripper sees them as quoted.
pub fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = HtmlText::default();
    let mut i = 0;
    while i < html.len() {
        let Some(lt) = html[i..].find('<').map(|p| i + p) else {
            out.text(&html[i..]);
            break;
        };
        out.text(&html[i..lt]);
        i = lt;
        if lower[i..].starts_with("<!--") {
            i = lower[i + 4..]
                .find("-->")
                .map_or(html.len(), |p| i + 4 + p + 3);
            continue;
        }
        let next = html.as_bytes().get(i + 1).copied().unwrap_or(b' ');
        if !(next.is_ascii_alphabetic() || next == b'/' || next == b'!' || next == b'?') {
            // A lone "<" in text.
            out.text("<");
            i += 1;
            continue;
        }
        let Some(end) = tag_end(html, i) else {
            break;
        };
        let inner = &lower[i + 1..end];
        let closing = inner.starts_with('/');
        let tag: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        i = end + 1;
        if !closing
            && matches!(
                tag.as_str(),
                "style" | "script" | "title" | "template" | "head"
            )
        {
            if let Some(p) = lower[i..].find(&format!("</{tag}")) {
                i += p;
            }
            continue;
        }
        out.tag(&tag, closing);
    }
    out.finish()
}

/// Where the tag opened at `start` ends (its `>`), skipping quoted attribute values.
fn tag_end(html: &str, start: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (off, &b) in html.as_bytes().get(start + 1..)?.iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(start + 1 + off),
            _ => {}
        }
    }
    None
}

#[derive(Default)]
struct HtmlText {
    out: String,
    quote_depth: usize,
    pre_depth: usize,
    at_line_start: bool,
    pending_space: bool,
    started: bool,
}

impl HtmlText {
    fn tag(&mut self, tag: &str, closing: bool) {
        match tag {
            "br" => self.newline(),
            "blockquote" => {
                self.block();
                self.quote_depth = if closing {
                    self.quote_depth.saturating_sub(1)
                } else {
                    self.quote_depth + 1
                };
            }
            "pre" => {
                self.block();
                self.pre_depth = if closing {
                    self.pre_depth.saturating_sub(1)
                } else {
                    self.pre_depth + 1
                };
            }
            "li" if !closing => {
                self.block();
                self.push_str("- ");
            }
            "td" | "th" if !closing => self.pending_space = true,
            "p" | "div" | "tr" | "li" | "ul" | "ol" | "dl" | "dt" | "dd" | "table" | "hr"
            | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "address" | "article" | "aside"
            | "center" | "fieldset" | "figure" | "figcaption" | "footer" | "form" | "header"
            | "main" | "nav" | "section" | "body" | "html" => self.block(),
            _ => {}
        }
    }

    /// Text between tags: entities decoded, whitespace collapsed (kept inside `<pre>`).
    fn text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let decoded = decode_entities(raw);
        for c in decoded.chars() {
            match c {
                '\n' if self.pre_depth > 0 => self.newline(),
                '\r' => {}
                ' ' | '\t' | '\n' | '\x0c' if self.pre_depth == 0 => self.pending_space = true,
                '\u{a0}' => self.push_char(' '),
                c => self.push_char(c),
            }
        }
    }

    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            self.push_char(c);
        }
    }

    fn push_char(&mut self, c: char) {
        if self.at_line_start || !self.started {
            for _ in 0..self.quote_depth {
                self.out.push_str("> ");
            }
            self.at_line_start = false;
            self.started = true;
        } else if self.pending_space {
            self.out.push(' ');
        }
        self.pending_space = false;
        self.out.push(c);
    }

    fn newline(&mut self) {
        if !self.started && self.quote_depth == 0 {
            self.started = true;
        }
        self.out.push('\n');
        self.at_line_start = true;
        self.pending_space = false;
    }

    /// Starts a new line unless one was just started.
    fn block(&mut self) {
        if !self.at_line_start && self.started {
            self.newline();
        }
        self.pending_space = false;
    }

    fn finish(self) -> String {
        let mut lines: Vec<&str> = Vec::new();
        for line in self.out.lines() {
            let line = line.trim_end();
            let blank = line.trim_start_matches(['>', ' ']).is_empty();
            if blank && lines.last().is_none_or(|l| l.is_empty()) {
                continue;
            }
            lines.push(if blank { "" } else { line });
        }
        lines.join("\n").trim().to_string()
    }
}

/// `&amp;`, `&nbsp;`, `&#233;`, `&#x2019;` and the rest of the HTML5 named entities.
fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let entity = rest
            .char_indices()
            .skip(1)
            .take(32)
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '#'))
            .filter(|&(_, c)| c == ';')
            .map(|(semi, _)| &rest[..=semi]);
        match entity {
            Some(e) if e.len() > 2 => {
                add_html_token(&mut out, e.as_bytes(), false);
                rest = &rest[e.len()..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::Value;
    use uuid::Uuid;

    const CH: ChannelRef = ChannelRef {
        tenant_id: Uuid::nil(),
        channel_id: Uuid::nil(),
    };

    fn cfg() -> InboundConfig {
        InboundConfig {
            max_bytes: 1024 * 1024,
            own_domain: "shop.example".into(),
        }
    }

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!(
            "From: Ann Customer <Ann@Example.com>\r\nTo: support@shop.example\r\nSubject: Order\r\n{headers}\r\n{body}"
        )
        .into_bytes()
    }

    fn run(cfg: &InboundConfig, raw: &[u8]) -> CustomerMessage {
        let n = normalize(CH, cfg, raw, Utc::now()).unwrap();
        assert_eq!(n.events.len(), 1);
        match n.events.into_iter().next().unwrap().body {
            InboundBody::Message(m) => m,
            other => panic!("not a message: {other:?}"),
        }
    }

    fn email(m: &CustomerMessage) -> &serde_json::Map<String, Value> {
        m.metadata["email"].as_object().unwrap()
    }

    fn reason(headers: &str) -> Value {
        email(&run(&cfg(), &mail(headers, "Hello")))
            .get("no_reply")
            .cloned()
            .unwrap()
    }

    #[test]
    fn a_plain_mail_is_one_message() {
        let raw = mail(
            "Message-ID: <abc@example.com>\r\nIn-Reply-To: <sb.1@shop.example>\r\nReferences: <x@y> <sb.1@shop.example>\r\nDate: Mon, 2 Apr 2012 18:22:10 +0400\r\n",
            "Where is my parcel?\r\n\r\nOn Mon, Apr 2, 2012 at 6:26 PM, Shop <support@shop.example> wrote:\r\n> Your order shipped\r\n",
        );
        let n = normalize(CH, &cfg(), &raw, Utc::now()).unwrap();
        let ev = &n.events[0];
        assert_eq!(ev.channel_kind, ChannelKind::Email);
        assert_eq!(ev.provider_event_id, "message-id:abc@example.com");
        let InboundBody::Message(m) = &ev.body else {
            panic!()
        };
        assert_eq!(m.external_message_id, "abc@example.com");
        assert_eq!(m.sender.external_id, "ann@example.com");
        assert_eq!(m.sender.name.as_deref(), Some("Ann Customer"));
        assert_eq!(m.text, "Where is my parcel?");
        assert_eq!(m.reply_to_external_id.as_deref(), Some("sb.1@shop.example"));
        let e = email(m);
        assert_eq!(e["message_id"], "abc@example.com");
        assert_eq!(e["subject"], "Order");
        assert_eq!(e["in_reply_to"], json!(["sb.1@shop.example"]));
        assert_eq!(e["references"], json!(["x@y", "sb.1@shop.example"]));
        assert_eq!(e["from"], "ann@example.com");
        assert_eq!(e["to"], json!(["support@shop.example"]));
        assert!(
            e["full_text"]
                .as_str()
                .unwrap()
                .contains("> Your order shipped")
        );
        assert_eq!(e["truncated"], false);
        assert_eq!(e["html_only"], false);
        assert_eq!(e["no_reply"], Value::Null);
        assert_eq!(e["date"], "2012-04-02T18:22:10+04:00");
    }

    #[test]
    fn reply_to_wins_over_from() {
        let m = run(
            &cfg(),
            &mail("Reply-To: \"Ann Home\" <ANN@home.example>\r\n", "Hi"),
        );
        assert_eq!(m.sender.external_id, "ann@home.example");
        assert_eq!(m.sender.name.as_deref(), Some("Ann Home"));
        assert_eq!(email(&m)["from"], "ann@example.com");
    }

    #[test]
    fn a_form_mailers_name_is_not_the_customers() {
        let raw = b"From: Website <noreply@shop.example>\r\nReply-To: ann@example.com\r\n\r\nHi";
        let m = run(&cfg(), raw);
        assert_eq!(m.sender.external_id, "ann@example.com");
        assert_eq!(m.sender.name, None);
        let raw = b"From: Ann <ann@example.com>\r\nReply-To: ANN@example.com\r\n\r\nHi";
        assert_eq!(run(&cfg(), raw).sender.name.as_deref(), Some("Ann"));
    }

    #[test]
    fn without_message_id_the_id_is_the_sha256_of_the_bytes() {
        let raw = mail("", "Hi");
        let n = normalize(CH, &cfg(), &raw, Utc::now()).unwrap();
        let want = format!("sha256:{:x}", Sha256::digest(&raw));
        assert_eq!(want.len(), "sha256:".len() + 64);
        assert_eq!(n.events[0].provider_event_id, want);
        let InboundBody::Message(m) = &n.events[0].body else {
            panic!()
        };
        assert_eq!(m.external_message_id, want);
        assert_eq!(email(m)["message_id"], want.as_str());
    }

    #[test]
    fn oversized_mail_is_cut_at_a_char_boundary_and_flagged() {
        let body = "é".repeat(100);
        let raw = mail("Content-Type: text/plain; charset=utf-8\r\n", &body);
        let small = InboundConfig {
            max_bytes: 51,
            own_domain: "shop.example".into(),
        };
        let m = run(&small, &raw);
        assert_eq!(m.text, "é".repeat(25));
        let e = email(&m);
        assert_eq!(e["full_text"], "é".repeat(25));
        assert_eq!(e["truncated"], true);
        assert_eq!(email(&run(&cfg(), &raw))["truncated"], false);
    }

    #[test]
    fn each_no_reply_reason() {
        assert_eq!(reason(""), Value::Null);
        assert_eq!(reason("Auto-Submitted: auto-replied\r\n"), "auto-submitted");
        assert_eq!(
            reason("Auto-Submitted: auto-generated (failure)\r\n"),
            "auto-submitted"
        );
        assert_eq!(reason("Auto-Submitted: No\r\n"), Value::Null);
        assert_eq!(reason("Precedence: bulk\r\n"), "precedence");
        assert_eq!(reason("Precedence: LIST\r\n"), "precedence");
        assert_eq!(reason("Precedence: junk\r\n"), "precedence");
        assert_eq!(reason("Precedence: first-class\r\n"), Value::Null);
        assert_eq!(reason("X-Autoreply: yes\r\n"), "auto-reply");
        assert_eq!(reason("X-Autorespond: Out of office\r\n"), "auto-reply");
        assert_eq!(
            reason("X-Auto-Response-Suppress: OOF, AutoReply\r\n"),
            "auto-reply"
        );
        assert_eq!(reason("X-Auto-Response-Suppress: All\r\n"), "auto-reply");
        assert_eq!(reason("X-Auto-Response-Suppress: DR, RN\r\n"), Value::Null);
        assert_eq!(reason("X-Apple-Action: VACATION\r\n"), "auto-reply");
        assert_eq!(reason("List-Id: <shop.lists.example>\r\n"), "mailing-list");
        assert_eq!(
            reason("List-Unsubscribe: <mailto:u@example.com>\r\n"),
            "mailing-list"
        );
        assert_eq!(reason("Return-Path: <>\r\n"), "bounce");
        assert_eq!(reason("Return-Path: <ann@example.com>\r\n"), Value::Null);
        assert_eq!(
            reason(
                "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
            ),
            "bounce"
        );
        assert_eq!(
            reason("Message-ID: <sb.0f6c@Shop.Example>\r\n"),
            "own-message"
        );
        assert_eq!(
            reason("Message-ID: <sb.0f6c@other.example>\r\n"),
            Value::Null
        );
        assert_eq!(
            reason("Message-ID: <xsb.0f6c@shop.example>\r\n"),
            Value::Null
        );
        // First match wins.
        assert_eq!(
            reason("Message-ID: <sb.1@shop.example>\r\nAuto-Submitted: auto-replied\r\n"),
            "auto-submitted"
        );
        for daemon in ["MAILER-DAEMON@mx.example", "postmaster@mx.example"] {
            let raw = format!("From: {daemon}\r\nSubject: x\r\n\r\nfailed");
            assert_eq!(email(&run(&cfg(), raw.as_bytes()))["no_reply"], "bounce");
        }
    }

    #[test]
    fn html_only_mail_is_converted() {
        let raw = mail(
            "Content-Type: text/html; charset=utf-8\r\n",
            "<html><head><style>p{color:red}</style><title>t</title></head><body><div>Hi&nbsp;there,</div><div>my order &amp; invoice</div><div><br></div><div>Thanks,</div><div>Ann</div><div class=\"gmail_quote\">On Mon, Apr 2, 2012 at 6:26 PM, Shop &lt;s@shop.example&gt; wrote:<br><blockquote>Your order<br>shipped</blockquote></div></body></html>",
        );
        let m = run(&cfg(), &raw);
        assert_eq!(m.text, "Hi there,\nmy order & invoice\n\nThanks,\nAnn");
        let e = email(&m);
        assert_eq!(e["html_only"], true);
        assert!(
            e["full_text"]
                .as_str()
                .unwrap()
                .contains("> Your order\n> shipped")
        );
    }

    #[test]
    fn attachments_are_described() {
        let raw = mail(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n",
            "--b\r\nContent-Type: text/plain\r\n\r\nSee attached\r\n--b\r\nContent-Type: image/png; name=\"a.png\"\r\nContent-Disposition: attachment; filename=\"a.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b\r\nContent-Type: audio/ogg; name=v.ogg\r\n\r\nxx\r\n--b--\r\n",
        );
        let m = run(&cfg(), &raw);
        assert_eq!(m.text, "See attached");
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
                ("image", "a.png", Some("image/png"), Some("a.png")),
                ("document", "part-1", Some("application/pdf"), None),
                ("audio", "v.ogg", Some("audio/ogg"), Some("v.ogg")),
            ]
        );
    }

    #[test]
    fn what_is_not_a_mail_is_refused() {
        for raw in [&b""[..], b"  \r\n", b"\r\n\r\njust a body"] {
            let err = normalize(CH, &cfg(), raw, Utc::now()).unwrap_err();
            assert!(!err.to_string().is_empty());
        }
        let err = normalize(CH, &cfg(), b"Subject: hi\r\n\r\nno sender", Utc::now()).unwrap_err();
        assert!(
            matches!(err, InboundError::Invalid { field: "from", .. }),
            "{err}"
        );
        let err = normalize(CH, &cfg(), b"From: root\r\n\r\nno domain", Utc::now()).unwrap_err();
        assert!(
            matches!(err, InboundError::Invalid { field: "from", .. }),
            "{err}"
        );
    }

    #[test]
    fn html_entities_and_stray_brackets_do_not_break_the_converter() {
        assert_eq!(
            html_to_text("a < b &amp;&amp c &#233;&#x2019; &bogus; <b>d</b>"),
            "a < b &&amp c é’ &bogus; d"
        );
        assert_eq!(
            html_to_text("<p>x</p><p>y<br>z</p><!-- c --><script>s()</script>"),
            "x\ny\nz"
        );
        assert_eq!(html_to_text("<div title='>'>q</div><div"), "q");
        assert_eq!(html_to_text("<pre>a\n  b</pre>c"), "a\n  b\nc");
        assert_eq!(
            html_to_text("<ul><li>one</li><li>two</li></ul>"),
            "- one\n- two"
        );
    }
}
