use std::collections::HashSet;

use switchboard_core::knowledge::Source;
use switchboard_engine::DraftSignals;

use crate::intent::{Intent, classify};

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
const GREETING_REPLY: &str = "Hello! How can I help you today?";
const GREETING_SOURCE: &str = "builtin:greeting";

/// A message that is nothing but a greeting gets a greeting back, not an escalation.
fn is_greeting(text: &str) -> bool {
    let t = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    GREETINGS.contains(&t.as_str())
}

/// Words the product template adds around the facts; they count as grounded.
const TEMPLATE_WORDS: &[&str] = &[
    "the",
    "costs",
    "it",
    "is",
    "in",
    "stock",
    "currently",
    "out",
    "of",
];

/// Drafts a reply from the best retrieved source, quoting it rather than inventing
/// anything. The similarity is the source's coverage of the question; the self-check
/// measures how much of the reply is found in the cited source.
pub fn respond(question: &str, sources: &[Source]) -> DraftSignals {
    if is_greeting(question) {
        return DraftSignals {
            reply: GREETING_REPLY.into(),
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
    let best = sources.iter().find(|s| s.coverage >= MIN_COVERAGE);
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
                "Thanks for your message! I don't have a confident answer to that yet, so a colleague will take a look.".into()
            } else {
                "Thanks for your message! I'm not sure I understood: is it about one of these? Otherwise a colleague will take a look.".into()
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
                "It is in stock."
            } else {
                "It is currently out of stock."
            };
            let mut reply = format!(
                "The {} costs {} {}. {stock}",
                source.title, p.price, p.currency
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
            for (field, why) in
                crate::attributes::unconfirmed(question, &p.attributes, &source.body)
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
    known.extend(TEMPLATE_WORDS.iter().map(|w| (*w).to_owned()));
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
        let d = respond("Do you ship to Berlin?", &[doc(1.0)]);
        assert_eq!(d.reply, "We ship with DHL in 1-2 days.");
        assert_eq!(d.intent, "shipping");
        assert_eq!(d.used_sources, vec!["doc:1"]);
        assert_eq!(d.similarity_score, 1.0);
        assert_eq!(d.self_check_score, 1.0);
    }

    #[test]
    fn a_weak_match_cites_nothing_and_fails_the_self_check() {
        let d = respond("Do you ship to Mars?", &[doc(0.2)]);
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
        );
        assert_eq!(d.choices, vec!["Shipping", "Returns and refunds with"]);
        assert!(d.reply.contains("one of these"));
        let d = respond("Do you sell cars?", &[doc(0.0)]);
        assert!(d.choices.is_empty());
    }

    #[test]
    fn a_bare_greeting_is_greeted() {
        let d = respond("Hello!", &[]);
        assert_eq!(d.reply, GREETING_REPLY);
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
        let d = respond("How much is the mug?", &[mug]);
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
        let d = respond("Do you have the mug in blue?", std::slice::from_ref(&mug));
        assert_eq!(
            d.reply,
            "The Coffee mug costs 14.90 EUR. It is in stock. Colour: white."
        );
        assert_eq!(d.missing_fields, vec!["colour blue"]);
        assert!(d.self_check_reasons[0].contains("white"), "{d:?}");
        assert_eq!(d.self_check_score, 1.0, "what it says is grounded");
        let d = respond("Do you have the mug in white?", &[mug]);
        assert!(d.missing_fields.is_empty());
    }
}
