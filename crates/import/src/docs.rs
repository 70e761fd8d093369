//! Documents split by their headings, each section a knowledge document with its heading
//! as title (under its parents: "Shipping › Costs"), so retrieval finds the paragraph that
//! answers, not a whole handbook. FAQs come as question/answer pairs: a CSV file with
//! `question` and `answer` columns, or Markdown with each question a heading.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

use crate::ImportError;

/// A titled part of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub body: String,
}

/// The sections of a file, by its extension: `.md`/`.markdown`, `.html`/`.htm`, `.txt`,
/// and `.csv` for FAQs (one section per row, the question as title, the answer as body).
/// `name` is the file's name; a section before any heading takes the file's name (without
/// its extension) as title. Sections without text are dropped.
pub fn sections(name: &str, content: &str) -> Result<Vec<Section>, ImportError> {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let stem = stem.rsplit(['/', '\\']).next().unwrap_or(stem);
    let title = stem.replace(['-', '_'], " ");
    let found = match ext.to_ascii_lowercase().as_str() {
        "md" | "markdown" => markdown(&title, content),
        "html" | "htm" => markdown(&title, &html_as_markdown(content)),
        "txt" | "text" => vec![Section {
            title,
            body: content.trim().to_owned(),
        }],
        "csv" => faqs(content)?,
        _ => {
            return Err(ImportError::UnknownKind {
                file: name.to_owned(),
                expected: "Markdown, HTML, plain text or an FAQ's CSV",
            });
        }
    };
    Ok(found
        .into_iter()
        .filter(|s| !s.body.trim().is_empty())
        .collect())
}

/// An FAQ's CSV: a header row naming `question` and `answer` (any order, other columns
/// ignored), then one pair a row. A row missing either is an error naming the row, so a
/// half-read file never replaces a good one.
fn faqs(content: &str) -> Result<Vec<Section>, ImportError> {
    let records = crate::catalog::csv_records(content.as_bytes())?;
    records
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            let mut take = |k: &str| {
                r.remove(k).ok_or_else(|| {
                    ImportError::Invalid(format!(
                        "row {}: no {k} (an FAQ's CSV has question and answer columns)",
                        i + 1
                    ))
                })
            };
            Ok(Section {
                title: take("question")?,
                body: take("answer")?,
            })
        })
        .collect()
}

fn level(l: HeadingLevel) -> usize {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

fn markdown(file_title: &str, content: &str) -> Vec<Section> {
    let mut out = Vec::new();
    // The headings above the current one, by level.
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut heading: Option<(usize, String)> = None;
    let mut body = String::new();
    let title_of = |path: &[(usize, String)]| {
        if path.is_empty() {
            file_title.to_owned()
        } else {
            path.iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" › ")
        }
    };
    for event in Parser::new(content) {
        match event {
            Event::Start(Tag::Heading { level: l, .. }) => {
                out.push(Section {
                    title: title_of(&path),
                    body: std::mem::take(&mut body).trim().to_owned(),
                });
                heading = Some((level(l), String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((l, text)) = heading.take() {
                    path.retain(|(pl, _)| *pl < l);
                    path.push((l, text.trim().to_owned()));
                }
            }
            Event::Text(t) | Event::Code(t) => match &mut heading {
                Some((_, h)) => h.push_str(&t),
                None => body.push_str(&t),
            },
            Event::SoftBreak | Event::HardBreak => body.push('\n'),
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock | TagEnd::TableRow) => {
                body.push('\n')
            }
            Event::End(TagEnd::TableCell) => body.push_str(" | "),
            Event::Start(Tag::Item) => body.push_str("- "),
            _ => {}
        }
    }
    out.push(Section {
        title: title_of(&path),
        body: body.trim().to_owned(),
    });
    out
}

/// HTML with its headings as Markdown headings and the rest as text, so both kinds split
/// alike.
fn html_as_markdown(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::new();
    let mut at = 0;
    while let Some(found) = next_heading(&lower, at) {
        let (start, level) = found;
        let Some(open_end) = lower[start..].find('>').map(|i| start + i + 1) else {
            break;
        };
        let close = format!("</h{level}");
        let Some(close_at) = lower[open_end..].find(&close).map(|i| open_end + i) else {
            break;
        };
        out.push_str(&text(&html[at..start]));
        let title = text(&html[open_end..close_at]).replace('\n', " ");
        out.push_str(&format!("\n\n{} {}\n\n", "#".repeat(level), title.trim()));
        at = lower[close_at..]
            .find('>')
            .map_or(html.len(), |i| close_at + i + 1);
    }
    out.push_str(&text(&html[at..]));
    out
}

/// Where the next `<h1>`…`<h6>` opens, and its level.
fn next_heading(lower: &str, from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(i) = lower[at..].find("<h") {
        let start = at + i;
        let b = lower.as_bytes();
        if let (Some(d), Some(after)) = (b.get(start + 2), b.get(start + 3))
            && (b'1'..=b'6').contains(d)
            && (*after == b'>' || after.is_ascii_whitespace())
        {
            return Some((start, usize::from(d - b'0')));
        }
        at = start + 2;
    }
    None
}

/// An HTML fragment's text, with Markdown's own characters escaped so the text is not
/// read as Markdown.
fn text(fragment: &str) -> String {
    switchboard_channels::email::inbound::html_to_text(fragment)
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with('#') || t.starts_with('>') {
                format!("\\{t}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn markdown_splits_by_headings_under_their_parents() {
        let md = "Intro before any heading.\n\n# Shipping\n\nWe ship with DHL.\n\n## Costs\n\n\
                  - Germany: 4.90 EUR\n- EU: 9.90 EUR\n\n```\n# not a heading\n```\n\n# Returns\n\n30 days.\n";
        let s = sections("shop-handbook.md", md).unwrap();
        let titles: Vec<&str> = s.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            ["shop handbook", "Shipping", "Shipping › Costs", "Returns"]
        );
        assert!(s[2].body.contains("Germany: 4.90 EUR"));
        assert!(s[2].body.contains("# not a heading"), "code stays text");
        assert_eq!(s[3].body, "30 days.");
    }

    #[test]
    fn html_splits_like_markdown() {
        let html = "<html><body><h1 class=x>Returns &amp; refunds</h1><p>Within <b>30</b> days.</p>\
                    <H2>Exchanges</H2><p># keep this</p><p>Any size.</p></body></html>";
        let s = sections("returns.HTML", html).unwrap();
        assert_eq!(s[0].title, "Returns & refunds");
        assert!(s[0].body.contains("Within 30 days."), "{:?}", s[0]);
        assert_eq!(s[1].title, "Returns & refunds › Exchanges");
        assert!(s[1].body.contains("# keep this"), "{:?}", s[1]);
    }

    #[test]
    fn an_faq_csv_is_one_section_per_pair() {
        let csv = "Answer,Question,Topic\n\
                   \"Within 30 days, unused.\",Can I send something back?,returns\n\
                   DHL in 2-3 days.,\"How long does shipping take, roughly?\",\n";
        let s = sections("faq.CSV", csv).unwrap();
        assert_eq!(
            s,
            [
                Section {
                    title: "Can I send something back?".into(),
                    body: "Within 30 days, unused.".into()
                },
                Section {
                    title: "How long does shipping take, roughly?".into(),
                    body: "DHL in 2-3 days.".into()
                }
            ]
        );
        let err = sections("faq.csv", "question,answer\nIs it free?,\n").unwrap_err();
        assert!(err.to_string().contains("row 1: no answer"), "{err}");
    }

    #[test]
    fn text_is_one_section_and_other_kinds_are_refused() {
        let s = sections("docs/opening_hours.txt", " Mon-Fri 9-18.\n").unwrap();
        assert_eq!(
            s,
            [Section {
                title: "opening hours".into(),
                body: "Mon-Fri 9-18.".into()
            }]
        );
        assert!(sections("logo.png", "").is_err());
        assert!(sections("empty.md", "# Title only\n").unwrap().is_empty());
    }
}
