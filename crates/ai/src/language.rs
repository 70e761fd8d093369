//! Which language a customer writes in, and which one the reply is in: the customer's when
//! the shop answers in it, the shop's first language otherwise (and the draft says so).

use whatlang::{Detector, Lang};

/// ISO 639-1 codes of the languages told apart, with whatlang's names for them.
const CODES: &[(&str, Lang)] = &[
    ("en", Lang::Eng),
    ("de", Lang::Deu),
    ("fr", Lang::Fra),
    ("es", Lang::Spa),
    ("it", Lang::Ita),
    ("nl", Lang::Nld),
    ("pt", Lang::Por),
    ("pl", Lang::Pol),
    ("sv", Lang::Swe),
    ("da", Lang::Dan),
    ("nb", Lang::Nob),
    ("fi", Lang::Fin),
    ("cs", Lang::Ces),
    ("tr", Lang::Tur),
    ("ru", Lang::Rus),
    ("uk", Lang::Ukr),
];

fn code(lang: Lang) -> Option<&'static str> {
    CODES.iter().find(|(_, l)| *l == lang).map(|(c, _)| *c)
}

/// Words so common in a language that two of them in a short question give it away,
/// where trigram statistics (whatlang) need more text than "Do you ship to Berlin?".
const FUNCTION_WORDS: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the", "is", "are", "do", "does", "you", "your", "to", "how", "what", "can", "my",
            "of", "and", "it", "for", "have", "has", "i", "we", "when", "where", "which", "will",
            "there", "this", "be", "any", "much", "long",
        ],
    ),
    (
        "de",
        &[
            "der", "die", "das", "ist", "sind", "und", "ich", "sie", "wie", "nach", "nicht",
            "gibt", "es", "ein", "eine", "mit", "was", "haben", "kann", "ihr", "mein", "meine",
            "wann", "wo", "noch", "auch", "für", "lange", "viel", "kostet", "dauert", "bei",
        ],
    ),
    (
        "fr",
        &[
            "le", "la", "les", "est", "et", "je", "vous", "pour", "une", "des", "que", "pas",
            "avec", "combien", "comment", "mon", "ma", "mes", "quand", "où", "il", "du", "au",
        ],
    ),
    (
        "es",
        &[
            "el", "los", "las", "es", "y", "yo", "usted", "para", "una", "que", "no", "con",
            "cuánto", "cómo", "mi", "cuándo", "dónde", "del", "hay", "puedo", "tienen",
        ],
    ),
    (
        "it",
        &[
            "il", "lo", "gli", "è", "e", "io", "per", "una", "che", "non", "con", "quanto", "come",
            "mio", "quando", "dove", "della", "avete", "posso",
        ],
    ),
    (
        "nl",
        &[
            "de", "het", "een", "is", "en", "ik", "u", "jullie", "voor", "niet", "met", "hoe",
            "wat", "mijn", "wanneer", "waar", "kan", "hebben", "naar", "lang",
        ],
    ),
];

/// The language whose common words the text uses most: at least two, and more than any
/// other language's.
fn by_function_words(text: &str) -> Option<&'static str> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut scores: Vec<(&str, usize)> = FUNCTION_WORDS
        .iter()
        .map(|(code, list)| {
            let hits = words.iter().filter(|w| list.contains(&w.as_str())).count();
            (*code, hits)
        })
        .collect();
    scores.sort_by_key(|s| std::cmp::Reverse(s.1));
    match scores.as_slice() {
        [(code, best), (_, next), ..] if *best >= 2 && best > next => Some(code),
        _ => None,
    }
}

/// The language of `text` (ISO 639-1) when it can be told: by whatlang when it is sure,
/// else by common words; `None` for a text too short to tell ("hello", "ok").
pub fn detect(text: &str) -> Option<&'static str> {
    let all = Detector::with_allowlist(CODES.iter().map(|(_, l)| *l).collect());
    if let Some(info) = all.detect(text)
        && info.is_reliable()
    {
        return code(info.lang());
    }
    by_function_words(text)
}

/// The language a reply is in, and why it is not the customer's when it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLanguage {
    pub code: String,
    /// Set when the customer wrote in a language the shop does not answer in.
    pub unmatched: Option<String>,
}

/// The customer's language if the shop answers in it, else the shop's first.
pub fn reply_language(customer: Option<&str>, shop: &[String]) -> ReplyLanguage {
    let primary = shop.first().map_or("en", String::as_str);
    match customer {
        Some(c) if shop.iter().any(|s| s == c) => ReplyLanguage {
            code: c.to_owned(),
            unmatched: None,
        },
        Some(c) => ReplyLanguage {
            code: primary.to_owned(),
            unmatched: Some(format!(
                "the customer writes in {c}, which the shop does not answer in; the reply is in {primary}"
            )),
        },
        None => ReplyLanguage {
            code: primary.to_owned(),
            unmatched: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn questions_are_told_apart() {
        for (text, lang) in [
            ("Wie lange dauert der Versand nach München?", Some("de")),
            ("Gibt es die Tasse in blau?", Some("de")),
            ("How long does shipping to Munich take?", Some("en")),
            ("Do you ship to Berlin?", Some("en")),
            // Too little to tell: the reply is in the shop's first language.
            ("is teh watter botle in stok?", None),
            (
                "Combien de temps faut-il pour livrer une commande à Paris?",
                Some("fr"),
            ),
            ("¿Cuánto cuesta el envío a Madrid?", Some("es")),
            ("hello", None),
        ] {
            assert_eq!(detect(text), lang, "{text}");
        }
    }

    #[test]
    fn the_languages_told_apart_are_the_ones_settings_accept() {
        let here: Vec<&str> = CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(here, switchboard_core::settings::DETECTED_LANGUAGES);
    }

    #[test]
    fn the_reply_is_in_the_customers_language_when_the_shop_has_it() {
        let both = shop(&["en", "de"]);
        assert_eq!(reply_language(Some("de"), &both).code, "de");
        let fr = reply_language(Some("fr"), &both);
        assert_eq!(fr.code, "en");
        assert!(fr.unmatched.unwrap().contains("fr"));
        assert_eq!(reply_language(None, &both).code, "en");
    }
}
