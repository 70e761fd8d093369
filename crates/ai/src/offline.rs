use std::collections::HashSet;

use switchboard_core::knowledge::Source;
use switchboard_engine::DraftSignals;

use crate::intent::{Intent, classify};
use crate::language::ReplyLanguage;

pub const PROVIDER: &str = "offline";

/// Below this share of the question's terms a source is not taken to answer it.
const MIN_COVERAGE: f64 = 0.34;

const GREETINGS: &[&str] = &[
    "/start",
    "hi",
    "hello",
    "hey",
    "hallo",
    "good morning",
    "good afternoon",
    "good evening",
    "hi there",
    "hello there",
];
const GREETING_SOURCE: &str = "builtin:greeting";

/// What the responder says in its own words, in each language it speaks.
struct Phrases {
    greeting: &'static str,
    no_answer: &'static str,
    pick_one: &'static str,
    /// `{title}`, `{price}`, `{currency}` are filled in.
    price: &'static str,
    in_stock: &'static str,
    out_of_stock: &'static str,
}

const PHRASES: &[(&str, Phrases)] = &[
    (
        "en",
        Phrases {
            greeting: "Hello! How can I help you today?",
            no_answer: "Thanks for your message! I don't have a confident answer to that yet, so a colleague will take a look.",
            pick_one: "Thanks for your message! I'm not sure I understood: is it about one of these? Otherwise a colleague will take a look.",
            price: "The {title} costs {price} {currency}.",
            in_stock: "It is in stock.",
            out_of_stock: "It is currently out of stock.",
        },
    ),
    (
        "de",
        Phrases {
            greeting: "Hallo! Wie kann ich Ihnen helfen?",
            no_answer: "Danke für Ihre Nachricht! Darauf habe ich noch keine sichere Antwort, deshalb sieht sich das ein Kollege an.",
            pick_one: "Danke für Ihre Nachricht! Ich bin nicht sicher, ob ich Sie richtig verstehe: Geht es um eines davon? Sonst sieht sich das ein Kollege an.",
            price: "{title}: {price} {currency}.",
            in_stock: "Vorrätig.",
            out_of_stock: "Derzeit nicht vorrätig.",
        },
    ),
    (
        "fr",
        Phrases {
            greeting: "Bonjour ! Comment puis-je vous aider ?",
            no_answer: "Merci pour votre message ! Je n'ai pas encore de réponse sûre, un collègue va s'en occuper.",
            pick_one: "Merci pour votre message ! Je ne suis pas sûr d'avoir compris : s'agit-il de l'un de ces sujets ? Sinon, un collègue va s'en occuper.",
            price: "{title} : {price} {currency}.",
            in_stock: "En stock.",
            out_of_stock: "Actuellement en rupture de stock.",
        },
    ),
    (
        "es",
        Phrases {
            greeting: "¡Hola! ¿En qué puedo ayudarle?",
            no_answer: "¡Gracias por su mensaje! Todavía no tengo una respuesta segura, así que un compañero lo revisará.",
            pick_one: "¡Gracias por su mensaje! No estoy seguro de haberle entendido: ¿se trata de alguno de estos temas? Si no, un compañero lo revisará.",
            price: "{title}: {price} {currency}.",
            in_stock: "Disponible.",
            out_of_stock: "Agotado por ahora.",
        },
    ),
];

/// The responder's phrases in `lang`, or in English with the reason when it has none
/// in that language.
fn phrases(lang: &str) -> (&'static Phrases, Option<String>) {
    match PHRASES.iter().find(|(code, _)| *code == lang) {
        Some((_, p)) => (p, None),
        None => (
            &PHRASES[0].1,
            Some(format!(
                "the offline responder has no phrases in {lang}; its own words are in en"
            )),
        ),
    }
}

/// A message that is nothing but a greeting gets a greeting back, not an escalation.
fn is_greeting(text: &str) -> bool {
    let t = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    GREETINGS.contains(&t.as_str())
}

/// The words of the product phrases: they count as grounded.
fn template_words() -> impl Iterator<Item = String> {
    PHRASES
        .iter()
        .flat_map(|(_, p)| [p.price, p.in_stock, p.out_of_stock])
        .flat_map(|t| words(t).collect::<Vec<_>>())
}

/// A reply that is not in the customer's language, or quotes a source in another one,
/// has its self-check held at this, which lowers its confidence.
const OTHER_LANGUAGE_CHECK: f64 = 0.5;

/// Drafts a reply from the best retrieved source, quoting it rather than inventing
/// anything, in `lang`: its own words in that language, and among sources that answer
/// equally well one written in it. The similarity is the source's coverage of the
/// question; the self-check measures how much of the reply is found in the cited source,
/// and says when the reply cannot be in the customer's language.
pub fn respond(question: &str, sources: &[Source], lang: &ReplyLanguage) -> DraftSignals {
    let mut d = draft(question, sources, lang);
    let quoted = d
        .used_sources
        .first()
        .and_then(|r| sources.iter().find(|s| &s.reference == r))
        .filter(|s| s.product.is_none());
    // A document quoted as it is uses none of the responder's own words.
    let no_phrases = match quoted {
        Some(_) => None,
        None => phrases(&lang.code).1,
    };
    let quoted_language = quoted
        .and_then(|s| document_language(&s.body))
        .filter(|l| *l != lang.code)
        .map(|l| {
            format!(
                "the source quoted is in {l}, the reply should be in {}",
                lang.code
            )
        });
    let cannot: Vec<String> = [lang.unmatched.clone(), no_phrases, quoted_language]
        .into_iter()
        .flatten()
        .collect();
    if !cannot.is_empty() {
        d.self_check_score = d.self_check_score.min(OTHER_LANGUAGE_CHECK);
        d.self_check_reasons.extend(cannot);
    }
    d
}

/// A document's language, when it is long enough to tell: a short body ("Flat rate 4.90
/// EUR.") says too little to be held against the reply.
fn document_language(body: &str) -> Option<&'static str> {
    (body.chars().count() >= 40)
        .then(|| crate::language::detect(body))
        .flatten()
}

fn draft(question: &str, sources: &[Source], lang: &ReplyLanguage) -> DraftSignals {
    let (say, _) = phrases(&lang.code);
    if is_greeting(question) {
        return DraftSignals {
            reply: say.greeting.into(),
            intent: Intent::Other.as_str().into(),
            intent_score: 1.0,
            similarity_score: 1.0,
            self_check_score: 1.0,
            self_check_need_handoff: false,
            self_check_reasons: vec![],
            used_sources: vec![GREETING_SOURCE.into()],
            source_conflicts: vec![],
            missing_fields: vec![],
            choices: vec![],
        };
    }
    let (intent, intent_score) = classify(question);
    // The best source; only a document written in another language than the reply's gives
    // way, to one that answers as well and is written in it.
    let best = sources
        .iter()
        .find(|s| s.coverage >= MIN_COVERAGE)
        .map(|first| {
            let foreign = first.product.is_none()
                && document_language(&first.body).is_some_and(|l| l != lang.code);
            if !foreign {
                return first;
            }
            sources
                .iter()
                .filter(|s| s.coverage >= first.coverage && s.product.is_none())
                .find(|s| document_language(&s.body) == Some(lang.code.as_str()))
                .unwrap_or(first)
        });
    let Some(source) = best else {
        // Sources that touch the question are offered as answers to pick: a pick comes
        // back as a message naming the topic, which then matches it well.
        let choices: Vec<String> = sources
            .iter()
            .filter(|s| s.coverage > 0.0)
            .take(3)
            .map(|s| short(&s.title))
            .collect();
        return DraftSignals {
            reply: if choices.is_empty() {
                say.no_answer.into()
            } else {
                say.pick_one.into()
            },
            intent: intent.as_str().into(),
            intent_score,
            similarity_score: sources.first().map_or(0.0, |s| s.coverage),
            self_check_score: 0.0,
            self_check_need_handoff: false,
            self_check_reasons: vec!["no knowledge source answers the question".into()],
            used_sources: vec![],
            source_conflicts: vec![],
            missing_fields: vec![],
            choices,
        };
    };

    let mut missing_fields = Vec::new();
    let mut reasons = Vec::new();
    let reply = match &source.product {
        Some(p) => {
            let stock = if p.stock > 0 {
                say.in_stock
            } else {
                say.out_of_stock
            };
            let mut reply = format!(
                "{} {stock}",
                say.price
                    .replace("{title}", &source.title)
                    .replace("{price}", &p.price)
                    .replace("{currency}", &p.currency)
            );
            // The colour or size asked about, as the catalogue has it, and what it does
            // not confirm as missing: never a silent omission.
            for (k, v) in crate::attributes::asked_columns(question, &p.attributes) {
                let mut key = k.replace('_', " ");
                if let Some(first) = key.get(..1) {
                    key = first.to_uppercase() + &key[1..];
                }
                reply.push_str(&format!(" {key}: {v}."));
            }
            let described = format!("{}\n{}", source.title, source.body);
            for (field, why) in crate::attributes::unconfirmed(question, &p.attributes, &described)
            {
                missing_fields.push(field);
                reasons.push(why);
            }
            reply
        }
        None => {
            // A policy page cannot say whether a product is in stock: the customer has
            // not named one we could find.
            if intent == Intent::Availability {
                missing_fields.push("product".to_owned());
            }
            source.body.clone()
        }
    };
    let grounding = grounding(&reply, source);
    DraftSignals {
        reply,
        intent: intent.as_str().into(),
        intent_score,
        similarity_score: source.coverage.clamp(0.0, 1.0),
        self_check_score: grounding,
        self_check_need_handoff: false,
        self_check_reasons: if grounding < 1.0 {
            reasons.push(format!(
                "{:.0}% of the reply is not found in {}",
                (1.0 - grounding) * 100.0,
                source.reference
            ));
            reasons
        } else {
            reasons
        },
        used_sources: vec![source.reference.clone()],
        source_conflicts: vec![],
        missing_fields,
        choices: vec![],
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric() && c != '.' && c != ',')
        .map(|w| w.trim_matches(|c| c == '.' || c == ',').to_lowercase())
        .filter(|w| !w.is_empty())
}

/// The share of the reply's words found in the source (or in the product template).
fn grounding(reply: &str, source: &Source) -> f64 {
    let mut known: HashSet<String> = words(&source.title).chain(words(&source.body)).collect();
    if let Some(p) = &source.product {
        known.extend(words(&p.price));
        known.extend(words(&p.currency));
    }
    known.extend(template_words());
    let reply_words: Vec<String> = words(reply).collect();
    if reply_words.is_empty() {
        return 0.0;
    }
    let found = reply_words.iter().filter(|w| known.contains(*w)).count();
    found as f64 / reply_words.len() as f64
}

/// A title cut to what a button holds.
fn short(title: &str) -> String {
    title
        .chars()
        .take(crate::openai::wire::MAX_CHOICE_CHARS)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use switchboard_core::knowledge::Product;

    use super::*;

    fn en() -> ReplyLanguage {
        crate::language::reply_language(Some("en"), &["en".to_owned(), "de".to_owned()])
    }

    fn in_lang(customer: &str) -> ReplyLanguage {
        crate::language::reply_language(Some(customer), &["en".to_owned(), "de".to_owned()])
    }

    fn doc(coverage: f64) -> Source {
        Source {
            reference: "doc:1".into(),
            title: "Shipping".into(),
            body: "We ship with DHL in 1-2 days.".into(),
            coverage,
            rank: 0.1,
            product: None,
        }
    }

    #[test]
    fn quotes_the_best_source_and_scores_it() {
        let d = respond("Do you ship to Berlin?", &[doc(1.0)], &en());
        assert_eq!(d.reply, "We ship with DHL in 1-2 days.");
        assert_eq!(d.intent, "shipping");
        assert_eq!(d.used_sources, vec!["doc:1"]);
        assert_eq!(d.similarity_score, 1.0);
        assert_eq!(d.self_check_score, 1.0);
    }

    #[test]
    fn a_weak_match_cites_nothing_and_fails_the_self_check() {
        let d = respond("Do you ship to Mars?", &[doc(0.2)], &en());
        assert!(d.used_sources.is_empty());
        assert_eq!(d.similarity_score, 0.2);
        assert_eq!(d.self_check_score, 0.0);
    }

    #[test]
    fn a_vague_question_offers_the_topics_it_touches() {
        let mut returns = doc(0.2);
        returns.title = "Returns and refunds within thirty days".into();
        let d = respond(
            "What about my package thing?",
            &[doc(0.25), returns, doc(0.0)],
            &en(),
        );
        assert_eq!(d.choices, vec!["Shipping", "Returns and refunds with"]);
        assert!(d.reply.contains("one of these"));
        let d = respond("Do you sell cars?", &[doc(0.0)], &en());
        assert!(d.choices.is_empty());
    }

    #[test]
    fn a_bare_greeting_is_greeted() {
        let d = respond("Hello!", &[], &en());
        assert_eq!(d.reply, "Hello! How can I help you today?");
        assert_eq!(d.used_sources, vec![GREETING_SOURCE]);
        assert!(!is_greeting("hello, where is my order?"));
    }

    #[test]
    fn product_answers_carry_price_and_stock() {
        let mug = Source {
            reference: "product:MUG".into(),
            title: "Coffee mug".into(),
            body: "A mug.".into(),
            coverage: 0.67,
            rank: 0.1,
            product: Some(Product {
                price: "14.90".into(),
                currency: "EUR".into(),
                stock: 0,
                attributes: [("colour".to_owned(), "white".to_owned())].into(),
            }),
        };
        let d = respond("How much is the mug?", &[mug], &en());
        assert_eq!(
            d.reply,
            "The Coffee mug costs 14.90 EUR. It is currently out of stock."
        );
        assert_eq!(d.intent, "price");
        assert_eq!(d.self_check_score, 1.0);
        assert!(d.missing_fields.is_empty());
    }

    #[test]
    fn a_colour_the_catalogue_lacks_is_a_missing_field() {
        let mug = Source {
            reference: "product:MUG".into(),
            title: "Coffee mug".into(),
            body: "A mug.\nColour: white.".into(),
            coverage: 0.67,
            rank: 0.1,
            product: Some(Product {
                price: "14.90".into(),
                currency: "EUR".into(),
                stock: 3,
                attributes: [("colour".to_owned(), "white".to_owned())].into(),
            }),
        };
        let d = respond(
            "Do you have the mug in blue?",
            std::slice::from_ref(&mug),
            &en(),
        );
        assert_eq!(
            d.reply,
            "The Coffee mug costs 14.90 EUR. It is in stock. Colour: white."
        );
        assert_eq!(d.missing_fields, vec!["colour blue"]);
        assert!(d.self_check_reasons[0].contains("white"), "{d:?}");
        assert_eq!(d.self_check_score, 1.0, "what it says is grounded");
        let d = respond("Do you have the mug in white?", &[mug], &en());
        assert!(d.missing_fields.is_empty());
    }

    #[test]
    fn a_german_question_gets_german_words_and_the_german_source() {
        let mut english = doc(0.8);
        english.body = "We ship every order with DHL, and delivery takes one or two days.".into();
        let mut german = doc(0.8);
        german.reference = "doc:2".into();
        german.title = "Versand".into();
        german.body =
            "Wir versenden jede Bestellung mit DHL, der Versand dauert ein bis zwei Tage.".into();
        let d = respond(
            "Wie lange dauert der Versand nach München?",
            &[english, german],
            &in_lang("de"),
        );
        assert_eq!(d.used_sources, vec!["doc:2"]);
        assert_eq!(d.self_check_score, 1.0, "{:?}", d.self_check_reasons);
        let d = respond("Hallo", &[], &in_lang("de"));
        assert_eq!(d.reply, "Hallo! Wie kann ich Ihnen helfen?");
    }

    #[test]
    fn a_language_the_shop_does_not_answer_in_is_said_in_the_scores() {
        let d = respond("Do you ship to Berlin?", &[doc(1.0)], &in_lang("fr"));
        assert_eq!(d.reply, "We ship with DHL in 1-2 days.");
        assert!(d.self_check_score <= OTHER_LANGUAGE_CHECK);
        assert!(
            d.self_check_reasons
                .iter()
                .any(|r| r.contains("writes in fr")),
            "{:?}",
            d.self_check_reasons
        );
        let mut german = doc(1.0);
        german.body =
            "Wir versenden jede Bestellung mit DHL, der Versand dauert ein bis zwei Tage.".into();
        let d = respond("Do you ship to Berlin?", &[german], &en());
        assert!(d.self_check_score <= OTHER_LANGUAGE_CHECK);
        assert!(
            d.self_check_reasons
                .iter()
                .any(|r| r.contains("source quoted is in de")),
            "{:?}",
            d.self_check_reasons
        );
    }
}
