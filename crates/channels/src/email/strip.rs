//! The customer's own words in a mail body: the quoted conversation and the signature cut
//! away. Line-based and language-aware enough for the common clients (Gmail, Apple Mail,
//! Outlook, Thunderbird, Yahoo, AOL, mobile mail apps), in English, German, French, Spanish,
//! Italian, Portuguese, Dutch, Scandinavian and Russian forms. It never fails: when nothing
//! would be left, the whole text is returned instead.

/// The reply part of `text`: quoted replies ("On … wrote:" and what follows, `>` lines,
/// "-----Original Message-----" and "From:/Sent:/To:/Subject:" blocks) and the signature
/// ("-- ", "Sent from my iPhone", "Get Outlook for …") removed, trimmed. Falls back to the
/// whole (tidied) text when stripping leaves nothing.
pub fn customer_words(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let own = cut_signature(own_lines(&lines));
    let out = tidy(&own);
    if !out.is_empty() {
        return out;
    }
    // Tidying drops trailing rules; a text that is nothing but one is still what was said.
    let all = tidy(&lines);
    if all.is_empty() {
        text.trim().to_owned()
    } else {
        all
    }
}

/// The lines the sender wrote: above the first quote header (top posting) or, when nothing
/// is above it, the unquoted lines after it (bottom posting). `>` lines are dropped.
///
/// A forwarded message is kept whole: it is what the customer wants us to read, not a
/// quote of our own words. Only the forwarder's signature above it goes.
fn own_lines<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let header = find_quote_header(lines, 0);
    let forward = lines
        .iter()
        .position(|l| !is_quoted(l) && is_forward_marker(l.trim()));
    if let Some(f) = forward
        && header.is_none_or(|(h, _)| f < h)
    {
        let mut own = cut_signature(lines[..f].to_vec());
        own.push("");
        own.extend_from_slice(&lines[f..]);
        return own;
    }
    let Some((start, len)) = header else {
        return lines.iter().copied().filter(|l| !is_quoted(l)).collect();
    };
    let above: Vec<&str> = lines[..start]
        .iter()
        .copied()
        .filter(|l| !is_quoted(l))
        .collect();
    if above.iter().any(|l| !l.trim().is_empty()) {
        return above;
    }
    // Bottom posting: the answer sits under the quote, up to the next quote header.
    let after = start + len;
    let end = find_quote_header(lines, after).map_or(lines.len(), |(s, _)| s);
    lines
        .get(after..end)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|l| !is_quoted(l))
        .collect()
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// The first quote header at or after `from`: its line index and how many lines it spans.
fn find_quote_header(lines: &[&str], from: usize) -> Option<(usize, usize)> {
    let mut text_above = false;
    for i in from..lines.len() {
        if let Some(n) = quote_header_at(lines, i, text_above) {
            return Some((i, n));
        }
        text_above |= lines.get(i).is_some_and(|l| is_own_text(l));
    }
    None
}

/// A line the sender may have written: not blank, quoted, a separator or a header field.
fn is_own_text(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty()
        && !is_quoted(t)
        && !is_rule(t)
        && !is_original_message(t)
        && !is_forward_marker(t)
        && header_field(t).is_none()
}

/// `-----`, `_____`, `=====`, `*****`.
fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t.chars().count() >= 3 && t.chars().all(|c| matches!(c, '-' | '_' | '=' | '*'))
}

/// Whether a quote header starts at line `i`, and how many lines it spans. Outlook-style
/// headers ("-----Original Message-----", "From:/Sent:/To:") only count below the
/// sender's own text: at the very top they are a forward or a form's fields, kept whole.
fn quote_header_at(lines: &[&str], i: usize, text_above: bool) -> Option<usize> {
    let line = *lines.get(i)?;
    if is_quoted(line) {
        return None;
    }
    let t = line.trim();
    if t.is_empty() {
        return None;
    }
    if text_above && is_original_message(t) {
        return Some(1);
    }
    if let Some(n) = text_above.then(|| header_block_at(lines, i)).flatten() {
        return Some(n);
    }
    if is_attribution(t) {
        return Some(1);
    }
    // An attribution wrapped over two or three lines ("On …, Name <a@b>" / "wrote:"). The
    // first line must look like the start of one, so a sentence just above a real
    // attribution is never swallowed.
    if !leads_attribution(t) || t.ends_with(['.', '!', '?']) {
        return None;
    }
    let mut joined = t.to_string();
    for span in 2..=3 {
        let next = lines.get(i + span - 1)?.trim();
        if next.is_empty() || next.starts_with('>') || leads_attribution(next) {
            return None;
        }
        joined.push(' ');
        joined.push_str(next);
        if joined.chars().count() > 300 {
            return None;
        }
        if is_attribution(&joined) {
            return Some(span);
        }
    }
    None
}

/// "-----Original Message-----", "----- Original Message -----", "-----Ursprüngliche
/// Nachricht-----", "-------- Message d'origine --------" …
fn is_original_message(t: &str) -> bool {
    const MARKERS: &[&str] = &[
        "original message",
        "original",
        "ursprüngliche nachricht",
        "originalnachricht",
        "message d'origine",
        "message d’origine",
        "message original",
        "mensaje original",
        "messaggio originale",
        "oorspronkelijk bericht",
        "mensagem original",
        "ursprungligt meddelande",
        "opprinnelig melding",
        "oprindelig meddelelse",
        "alkuperäinen viesti",
        "исходное сообщение",
        "reply message",
    ];
    if !(t.starts_with("--") || t.starts_with("__") || t.starts_with("==")) {
        return false;
    }
    let inner = t
        .trim_matches(|c: char| c == '-' || c == '_' || c == '=' || c == '*' || c.is_whitespace())
        .to_lowercase();
    MARKERS.contains(&inner.as_str())
}

/// "---------- Forwarded message ---------", "Begin forwarded message:" and translations.
fn is_forward_marker(t: &str) -> bool {
    const MARKERS: &[&str] = &[
        "forwarded message",
        "forwarded message follows",
        "begin forwarded message",
        "weitergeleitete nachricht",
        "message transféré",
        "message transfere",
        "mensaje reenviado",
        "messaggio inoltrato",
        "mensagem encaminhada",
        "doorgestuurd bericht",
        "vidarebefordrat meddelande",
        "пересылаемое сообщение",
        "начало переадресованного сообщения",
    ];
    let inner = t
        .trim_matches(|c: char| c == '-' || c == '_' || c == '=' || c == '*' || c.is_whitespace())
        .trim_end_matches(':')
        .trim()
        .to_lowercase();
    t.chars().count() < 80 && MARKERS.contains(&inner.as_str())
}

/// Words opening an attribution line: "On …", "Am …", "Le …", "El …", "Op …", "Il …",
/// "Em …", "Den …", "W dniu …", or a date.
fn leads_attribution(t: &str) -> bool {
    const LEADS: &[&str] = &[
        "on ", "am ", "le ", "el ", "op ", "il ", "em ", "den ", "dne ", "w dniu ", "dnia ", "в ",
    ];
    let lower = t.to_lowercase();
    lower.chars().next().is_some_and(|c| c.is_ascii_digit())
        || LEADS.iter().any(|l| lower.starts_with(l))
}

/// "On Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:" and its translations, or
/// "Thu, 26 Jun 2014 14:00:51 +0400 от Alexander <a@example.com>:".
fn is_attribution(t: &str) -> bool {
    /// Verbs that end the attribution, right before the colon.
    const FINAL: &[&str] = &[
        "wrote",
        "writes",
        "a écrit",
        "a ecrit",
        "escribió",
        "escribio",
        "ha scritto",
        "scrisse",
        "escreveu",
        "schreef",
        "geschreven",
        "schrieb",
        "skrev",
        "skrifaði",
        "napisał",
        "napisała",
        "napisal",
        "napsal",
        "написал",
        "написала",
        "написал(а)",
        "пишет",
        "kirjoitti",
        "írta",
        "yazdı",
    ];
    /// Verbs that come before the sender's name: "Am … schrieb Name <a@b>:".
    const INNER: &[&str] = &["schrieb", "skrev", "schreef"];
    if t.chars().count() > 300 {
        return false;
    }
    let lower = t.to_lowercase();
    let Some(body) = lower
        .trim_end()
        .strip_suffix([':', '：'])
        .map(str::trim_end)
    else {
        return false;
    };
    let has_digit = body.chars().any(|c| c.is_ascii_digit());
    let evidence = has_digit || body.contains('@') || leads_attribution(body);
    let ends_with_verb = FINAL.iter().any(|v| {
        body.strip_suffix(v)
            .is_some_and(|before| before.chars().last().is_none_or(|c| !c.is_alphanumeric()))
    });
    if ends_with_verb && evidence {
        return true;
    }
    let inner_verb = body
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| INNER.contains(&w));
    if inner_verb && leads_attribution(body) && (has_digit || body.contains('@')) {
        return true;
    }
    // "<date> <time> от/from Name <address>:" (mail.ru and friends).
    body.ends_with('>') && body.contains('@') && has_time(body)
}

/// Whether `s` holds something like `14:00`.
fn has_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(4).any(|w| {
        w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit() && w[3].is_ascii_digit()
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    From,
    Date,
    To,
    Cc,
    Subject,
}

/// The header field a line of a quoted header block names ("From: …", "*Sent:* …",
/// "Отправлено: …").
fn header_field(line: &str) -> Option<Field> {
    const FIELDS: &[(&str, Field)] = &[
        ("from", Field::From),
        ("von", Field::From),
        ("de", Field::From),
        ("van", Field::From),
        ("da", Field::From),
        ("od", Field::From),
        ("från", Field::From),
        ("fra", Field::From),
        ("lähettäjä", Field::From),
        ("feladó", Field::From),
        ("kimden", Field::From),
        ("от", Field::From),
        ("发件人", Field::From),
        ("寄件者", Field::From),
        ("差出人", Field::From),
        ("sent", Field::Date),
        ("date", Field::Date),
        ("gesendet", Field::Date),
        ("datum", Field::Date),
        ("envoyé", Field::Date),
        ("envoyé le", Field::Date),
        ("enviado", Field::Date),
        ("enviado el", Field::Date),
        ("enviada", Field::Date),
        ("fecha", Field::Date),
        ("data", Field::Date),
        ("inviato", Field::Date),
        ("verzonden", Field::Date),
        ("skickat", Field::Date),
        ("sendt", Field::Date),
        ("lähetetty", Field::Date),
        ("отправлено", Field::Date),
        ("дата", Field::Date),
        ("发送时间", Field::Date),
        ("日期", Field::Date),
        ("送信日時", Field::Date),
        ("to", Field::To),
        ("an", Field::To),
        ("à", Field::To),
        ("a", Field::To),
        ("para", Field::To),
        ("aan", Field::To),
        ("till", Field::To),
        ("til", Field::To),
        ("komu", Field::To),
        ("do", Field::To),
        ("vastaanottaja", Field::To),
        ("címzett", Field::To),
        ("kime", Field::To),
        ("кому", Field::To),
        ("收件人", Field::To),
        ("宛先", Field::To),
        ("cc", Field::Cc),
        ("kopie", Field::Cc),
        ("копия", Field::Cc),
        ("subject", Field::Subject),
        ("betreff", Field::Subject),
        ("objet", Field::Subject),
        ("asunto", Field::Subject),
        ("assunto", Field::Subject),
        ("oggetto", Field::Subject),
        ("onderwerp", Field::Subject),
        ("ämne", Field::Subject),
        ("emne", Field::Subject),
        ("aihe", Field::Subject),
        ("tárgy", Field::Subject),
        ("konu", Field::Subject),
        ("temat", Field::Subject),
        ("předmět", Field::Subject),
        ("тема", Field::Subject),
        ("主题", Field::Subject),
        ("主旨", Field::Subject),
        ("件名", Field::Subject),
    ];
    let t = line.trim().trim_start_matches('*');
    let colon = t.find([':', '：'])?;
    let key = t[..colon]
        .trim()
        .trim_end_matches('*')
        .trim()
        .to_lowercase();
    if key.is_empty() || key.chars().count() > 20 {
        return None;
    }
    FIELDS.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

/// A quoted header block starting at line `i` ("From: … / Sent: … / To: … / Subject: …",
/// in any order, a wrapped line allowed between fields): its length in lines. Needs at
/// least three fields, one of them the sender and one the recipient, date or subject.
fn header_block_at(lines: &[&str], i: usize) -> Option<usize> {
    header_field(lines.get(i)?)?;
    let mut fields = Vec::new();
    let mut end = i;
    let mut j = i;
    // Real blocks have a handful of fields; the cap keeps a long run of "To:" lines linear.
    while let Some(line) = lines.get(j).filter(|_| j < i + 16) {
        if is_quoted(line) {
            break;
        }
        match header_field(line) {
            Some(f) => {
                fields.push(f);
                end = j + 1;
            }
            None => {
                // A long To: or Subject: wrapped onto the next line.
                let continues = !line.trim().is_empty()
                    && j > i
                    && lines.get(j + 1).is_some_and(|n| header_field(n).is_some());
                if !continues {
                    break;
                }
            }
        }
        j += 1;
    }
    let has = |f: Field| fields.contains(&f);
    let enough = fields.len() >= 3
        && has(Field::From)
        && (has(Field::Date) || has(Field::To) || has(Field::Subject));
    enough.then_some(end - i)
}

/// Drops the signature: from a "-- " delimiter or a "Sent from my iPhone"-style line on.
fn cut_signature(lines: Vec<&str>) -> Vec<&str> {
    match lines.iter().position(|l| is_signature_start(l)) {
        Some(at) => lines[..at].to_vec(),
        None => lines,
    }
}

fn is_signature_start(line: &str) -> bool {
    const MOBILE: &[&str] = &[
        "sent from my ",
        "sent from mail for ",
        "sent from outlook",
        "sent from yahoo mail",
        "sent from the all new aol app",
        "sent from aol mobile",
        "sent from samsung",
        "sent from gmail",
        "sent from proton mail",
        "sent from protonmail",
        "sent from mobile",
        "sent from iphone",
        "sent from ipad",
        "sent with sparrow",
        "sent via blackberry",
        "sent from blackberry",
        "sent on the go",
        "get outlook for ",
        "envoyé de mon ",
        "envoyé depuis mon ",
        "enviado desde mi ",
        "enviado do meu ",
        "enviado desde outlook",
        "von meinem ",
        "gesendet von meinem ",
        "gesendet mit ",
        "verstuurd vanaf mijn ",
        "inviato da ",
        "inviato dal mio ",
        "отправлено с ",
        "отправлено из ",
        "skickat från min ",
    ];
    if line.trim_end() == "--" {
        return true;
    }
    let t = line.trim();
    if t.chars().count() > 80 {
        return false;
    }
    let lower = t.to_lowercase();
    MOBILE.iter().any(|p| lower.starts_with(p))
}

/// Trailing spaces off every line, blank and separator lines off both ends, runs of blank
/// lines squeezed to one.
fn tidy(lines: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for line in lines {
        let line = line.trim_end();
        let blank = line.trim().is_empty();
        if blank && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(if blank { "" } else { line });
    }
    while out.last().is_some_and(|l| l.is_empty() || is_rule(l)) {
        out.pop();
    }
    out.join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::customer_words;

    /// Found by fuzzing: a body that is only a rule was stripped to nothing.
    #[test]
    fn a_text_of_nothing_but_a_rule_is_kept() {
        assert_eq!(customer_words("_____________"), "_____________");
    }

    #[test]
    fn plain_text_is_kept_and_trimmed() {
        assert_eq!(
            customer_words("  Hello,\n\nmy order is late.  \n\n"),
            "Hello,\n\nmy order is late."
        );
    }

    #[test]
    fn on_wrote_and_everything_after_goes() {
        let t = "Thanks, that helped.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:\n\n> Hi\n> there\n\nmore quoted stuff";
        assert_eq!(customer_words(t), "Thanks, that helped.");
    }

    #[test]
    fn wrapped_on_wrote_goes() {
        let t = "Yes please.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <m@example.com>\nwrote:\n> Hi";
        assert_eq!(customer_words(t), "Yes please.");
        let ru =
            "Hello\n02.04.2012 14:20 пользователь \"bob@x.org\" <\nbob@x.org> написал:\n\n> Hi";
        assert_eq!(customer_words(ru), "Hello");
    }

    #[test]
    fn a_sentence_above_a_wrapped_attribution_stays() {
        let t = "Order 12345 is late\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <m@example.com>\nwrote:\n> Hi";
        assert_eq!(customer_words(t), "Order 12345 is late");
    }

    #[test]
    fn non_english_attributions() {
        for header in [
            "Am 03.04.2012 um 16:19 schrieb Bob <bob@example.com>:",
            "Le 3 avr. 2012 à 16:19, Bob <bob@example.com> a écrit :",
            "El mar., 3 abr. 2012 a las 16:19, Bob (<bob@example.com>) escribió:",
            "Il giorno 3 apr 2012, alle ore 16:19, Bob <bob@example.com> ha scritto:",
            "Em 3 de abr de 2012, às 16:19, Bob <bob@example.com> escreveu:",
            "Op 3 apr. 2012 om 16:19 heeft Bob <bob@example.com> het volgende geschreven:",
            "Den 3 apr. 2012 kl. 16:19 skrev Bob <bob@example.com>:",
            "3 апреля 2012 г., 16:19 пользователь Bob <bob@example.com> написал:",
            "Thu, 26 Jun 2014 14:00:51 +0400 от Alexander L <abc@example.com>:",
        ] {
            let t = format!("Danke!\n\n{header}\n> Hallo");
            assert_eq!(customer_words(&t), "Danke!", "{header}");
        }
    }

    #[test]
    fn quoted_lines_go_even_without_a_header() {
        assert_eq!(
            customer_words("> what size?\nLarge.\n> colour?\nBlue."),
            "Large.\nBlue."
        );
    }

    #[test]
    fn a_colon_sentence_is_not_an_attribution() {
        let t = "Here is what he wrote:\nthe parcel was empty.";
        assert_eq!(customer_words(t), t);
    }

    #[test]
    fn outlook_original_message_goes() {
        let t = "Please cancel.\n\n-----Original Message-----\nFrom: Shop <s@example.com>\nSent: Monday\nTo: me\nSubject: Your order\n\nHi";
        assert_eq!(customer_words(t), "Please cancel.");
        let t = "Bitte stornieren.\n\n-----Ursprüngliche Nachricht-----\nVon: Shop\nGesendet: Montag\nAn: mich\nBetreff: Bestellung";
        assert_eq!(customer_words(t), "Bitte stornieren.");
    }

    #[test]
    fn outlook_header_block_goes() {
        let t = "Allo!\n\n________________________________\nFrom: Shop [mailto:s@example.com]\nSent: March-09-12 4:22 PM\nTo: Dan Le\nSubject: Your Loop\n\nHi Dan";
        assert_eq!(customer_words(t), "Allo!");
        let bold = "Sure.\n\n*From:* Shop <s@example.com>\n*Sent:* Monday\n*To:* me\n*Subject:* hi";
        assert_eq!(customer_words(bold), "Sure.");
        let ru = "Hi. I am fine.\nОт: Alexander L\nОтправлено: четверг, 26 июня 2014 г. 15:05\nКому: Alex\n\nHello!";
        assert_eq!(customer_words(ru), "Hi. I am fine.");
        let wrapped = "Hello\nFrom: bob <b@example.com>\nTo: a@example.com; c@example.com;\nd@example.com\nSubject: Test\n\nHi";
        assert_eq!(customer_words(wrapped), "Hello");
    }

    #[test]
    fn header_fields_at_the_top_are_kept() {
        let form = "From: Berlin\nTo: Paris\nDate: 5 May\nPlease book two seats.";
        assert_eq!(customer_words(form), form);
        let fw = "-----Original Message-----\nFrom: Shop\nSent: Monday\nTo: me\nSubject: Order\n\nShipped.";
        assert_eq!(customer_words(fw), fw);
    }

    #[test]
    fn a_single_to_line_is_not_a_header_block() {
        let t = "From: the warehouse\nthe box came back.";
        assert_eq!(customer_words(t), t);
    }

    #[test]
    fn a_forward_is_kept_whole() {
        let t = "See below, it never came.\n\n-- \nAnn\n\n---------- Forwarded message ---------\nFrom: Shop <s@example.com>\nDate: Mon\nSubject: Shipped\nTo: ann@example.com\n\nYour order shipped.\n> quoted in the forward";
        assert_eq!(
            customer_words(t),
            "See below, it never came.\n\n---------- Forwarded message ---------\nFrom: Shop <s@example.com>\nDate: Mon\nSubject: Shipped\nTo: ann@example.com\n\nYour order shipped.\n> quoted in the forward"
        );
        let apple = "FYI\n\nBegin forwarded message:\n\nFrom: Shop <s@example.com>\nSubject: Shipped\nDate: Mon\nTo: ann@example.com\n\nShipped.";
        assert!(customer_words(apple).ends_with("Shipped."));
        // A reply quoting a forward is still a reply.
        let reply = "Thanks!\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Shop <s@example.com> wrote:\n> ---------- Forwarded message ---------\n> x";
        assert_eq!(customer_words(reply), "Thanks!");
    }

    #[test]
    fn bottom_posting_keeps_the_answer() {
        let t = "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi \nHello";
        assert_eq!(customer_words(t), "Hello");
    }

    #[test]
    fn signatures_go() {
        assert_eq!(
            customer_words("Hello \n\n-- \nxxx\nSent with Sparrow"),
            "Hello"
        );
        assert_eq!(customer_words("Hello\n--\nBob, CEO"), "Hello");
        assert_eq!(
            customer_words("Where is it?\n\nSent from my iPhone"),
            "Where is it?"
        );
        assert_eq!(customer_words("Ok\n\nGet Outlook for Android"), "Ok");
        assert_eq!(customer_words("Ja\n\nVon meinem iPhone gesendet"), "Ja");
        assert_eq!(customer_words("Oui\n\nEnvoyé de mon iPhone"), "Oui");
        assert_eq!(customer_words("Sí\n\nEnviado desde mi iPhone"), "Sí");
    }

    #[test]
    fn a_sent_from_sentence_stays() {
        let t = "The parcel was sent from your warehouse in Leeds but never arrived, please check where it is.";
        assert_eq!(customer_words(t), t);
    }

    #[test]
    fn nothing_left_falls_back_to_everything() {
        let t = "> only a quote\n> nothing else";
        assert_eq!(customer_words(t), t);
        assert_eq!(customer_words("Sent from my iPhone"), "Sent from my iPhone");
        assert_eq!(customer_words(""), "");
    }

    #[test]
    fn crlf_and_blank_runs_are_tidied() {
        assert_eq!(customer_words("a\r\n\r\n\r\n\r\nb\r\n"), "a\n\nb");
    }
}
