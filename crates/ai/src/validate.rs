//! A model's answer is a claim, not a fact: every field is checked before the engine sees it.

use std::collections::HashSet;

use switchboard_core::knowledge::Source;

use crate::INTENTS;
use crate::openai::wire::{DraftAnswer, MAX_CHOICE_CHARS, MAX_CHOICES, SelfCheckAnswer};

fn score(name: &str, x: f64) -> Result<f64, String> {
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{name} {x} is outside 0..1"))
    }
}

pub fn draft(answer: &DraftAnswer, sources: &[Source]) -> Result<(), String> {
    if answer.reply.trim().is_empty() && !answer.need_handoff {
        return Err("the reply is empty".into());
    }
    if !INTENTS.contains(&answer.intent.as_str()) {
        return Err(format!(
            "intent {:?} is not one of {}",
            answer.intent,
            INTENTS.join(", ")
        ));
    }
    score("intent_score", answer.intent_score)?;
    if answer.choices.len() > MAX_CHOICES {
        return Err(format!(
            "{} choices are more than {MAX_CHOICES}",
            answer.choices.len()
        ));
    }
    if let Some(c) = answer
        .choices
        .iter()
        .find(|c| c.trim().is_empty() || c.chars().count() > MAX_CHOICE_CHARS)
    {
        return Err(format!(
            "choice {c:?} is empty or longer than {MAX_CHOICE_CHARS} characters"
        ));
    }
    let known: HashSet<&str> = sources.iter().map(|s| s.reference.as_str()).collect();
    if let Some(bad) = answer
        .used_sources
        .iter()
        .find(|s| !known.contains(s.as_str()))
    {
        return Err(format!(
            "the reply cites {bad:?}, which was not among the sources given"
        ));
    }
    Ok(())
}

pub fn self_check(answer: &SelfCheckAnswer) -> Result<f64, String> {
    score("self_check_score", answer.self_check_score)
}

/// Numbers in the reply (prices, days, percentages) that no source contains. Small models
/// invent prices; this catches it whatever the model's own self-check says.
pub fn ungrounded_numbers(reply: &str, sources: &[Source]) -> Vec<String> {
    let mut known = String::new();
    for s in sources {
        known.push_str(&s.title);
        known.push(' ');
        known.push_str(&s.body);
        if let Some(p) = &s.product {
            known.push_str(&format!(" {} {} {}", p.price, p.currency, p.stock));
        }
    }
    let numbers = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
            .map(|t| t.trim_matches(|c| c == '.' || c == ','))
            .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
            .map(|t| t.replace(',', "."))
            .collect()
    };
    let known: HashSet<String> = numbers(&known).into_iter().collect();
    let mut out: Vec<String> = numbers(reply)
        .into_iter()
        .filter(|n| !known.contains(n))
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Source {
        Source {
            reference: "doc:1".into(),
            title: "Shipping".into(),
            body: "Delivery costs 4,90 EUR and takes 1-2 days.".into(),
            coverage: 1.0,
            rank: 1.0,
            product: None,
        }
    }

    fn answer(intent: &str, score: f64, cites: &[&str]) -> DraftAnswer {
        DraftAnswer {
            reply: "x".into(),
            intent: intent.into(),
            intent_score: score,
            questions_to_ask: vec![],
            used_sources: cites.iter().map(|s| (*s).to_owned()).collect(),
            missing_fields: vec![],
            need_handoff: false,
            choices: vec![],
            lead: Default::default(),
        }
    }

    #[test]
    fn catches_out_of_range_and_inconsistent_fields() {
        assert!(draft(&answer("shipping", 0.9, &["doc:1"]), &[src()]).is_ok());
        assert!(
            draft(&answer("shipping", 6.0, &[]), &[src()])
                .unwrap_err()
                .contains("intent_score 6")
        );
        assert!(
            draft(&answer("weather", 0.9, &[]), &[src()])
                .unwrap_err()
                .contains("weather")
        );
        assert!(
            draft(&answer("price", 0.9, &["doc:9"]), &[src()])
                .unwrap_err()
                .contains("doc:9")
        );
        let mut many = answer("shipping", 0.9, &[]);
        many.choices = (0..11).map(|i| i.to_string()).collect();
        assert!(draft(&many, &[src()]).unwrap_err().contains("11 choices"));
        many.choices = vec!["A choice far longer than twenty-four characters".into()];
        assert!(
            draft(&many, &[src()])
                .unwrap_err()
                .contains("longer than 24")
        );
        assert!(
            self_check(&SelfCheckAnswer {
                self_check_score: -1.0,
                reasons: vec![],
                need_handoff: false
            })
            .is_err()
        );
    }

    #[test]
    fn finds_invented_numbers() {
        assert!(ungrounded_numbers("It costs 4.90 EUR and takes 1-2 days.", &[src()]).is_empty());
        assert_eq!(
            ungrounded_numbers("It costs 19.99 EUR.", &[src()]),
            vec!["19.99"]
        );
    }
}
