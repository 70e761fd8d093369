//! Contact details found by pattern in what a customer wrote. Every customer message is
//! read this way as it is stored, whichever provider drafts (and whether or not anything
//! is drafted); the LLM provider adds its own reading with its draft. Patterns miss more
//! than they invent: a name needs "my name is" (or the like) and
//! capitals, a company a legal form or "I work for", a phone number a leading `+` or a
//! word such as "phone" before it.

use std::sync::LazyLock;

use regex::Regex;
use switchboard_core::Lead;

/// Patterns are constants, so a failure to compile is a bug the tests catch; in
/// production a pattern that would not compile simply matches nothing.
fn pattern(re: &str) -> Option<Regex> {
    Regex::new(re).ok()
}

static EMAIL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
});

static PHONE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(
        r"(?i)(?:\b(?:phone(?: number)?|call(?: me)?(?: on| at)?|tel|telephone|mobile(?: number)?|cell|my number|whatsapp|reach me(?: on| at)?|telefon\w*|handy\w*|meine nummer)\b(?:\s+(?:is|ist))?[\s:.-]{0,5})?(\+?\d[\d \-./()]{5,}\d)",
    )
});

static NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(
        r"(?i:\bmy name is|\bmy name's|\bi am|\bi'm|\bthis is|\bich heiße|\bich heisse|\bmein name ist)\s+(\p{Lu}[\p{L}'-]+(?:\s+\p{Lu}[\p{L}'-]+)?)",
    )
});

static COMPANY_FORM: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(
        r"\b(\p{Lu}[\p{L}\d&'-]*(?:\s+\p{Lu}[\p{L}\d&'-]*){0,3}\s+(?:(?:GmbH|AG|UG|KG|LLC|BV|SAS|SARL)\b|(?:Ltd|Inc|Corp)\b\.?|S\.A\.))",
    )
});

static COMPANY_CUE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(
        r"(?i:\b(?:i|we) work (?:for|at)|\bour company(?: is| called)?|\bmy company(?: is| called)?|\bich arbeite bei|\bunsere firma(?: ist| heißt)?)\s+(\p{Lu}[\p{L}\d&'-]*(?:\s+\p{Lu}[\p{L}\d&'-]*){0,3})",
    )
});

static INTEREST: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(
        r"(?i)\b(?:(?:i am|i'm|we are|we're) (?:interested in|looking for)|(?:i|we) (?:need|want|would like)|(?:i|we)'d like|wir brauchen|ich brauche|wir suchen|ich suche|interesse an)\s+([^.!?\n]{3,120})",
    )
});

/// Words that follow "I am" or "this is" without being a name.
const NOT_NAMES: &[&str] = &[
    "looking",
    "interested",
    "not",
    "sorry",
    "here",
    "back",
    "happy",
    "still",
    "trying",
    "just",
    "from",
    "so",
    "very",
    "writing",
    "asking",
    "calling",
    "the",
    "a",
    "an",
    "in",
    "at",
    "with",
    "on",
    "also",
    "really",
    "sure",
    "fine",
    "good",
    "ok",
    "okay",
    "glad",
    "urgent",
    "important",
    "unacceptable",
    "ridiculous",
    "terrible",
    "great",
    "about",
    "regarding",
    "it",
    "my",
    "your",
    "our",
];

fn first(re: &LazyLock<Option<Regex>>, text: &str) -> Option<String> {
    re.as_ref()?
        .captures(text)
        .and_then(|c| c.get(1).or_else(|| c.get(0)))
        .map(|m| m.as_str().trim().to_owned())
}

/// A phone number has 7 to 15 digits and either a leading `+` or a word like "phone"
/// right before it, so order numbers, dates and prices are not taken for one.
fn phone(text: &str) -> Option<String> {
    let re = PHONE.as_ref()?;
    re.captures_iter(text).find_map(|c| {
        let number = c.get(1)?.as_str().trim();
        let digits = number.chars().filter(char::is_ascii_digit).count();
        let cued = c
            .get(0)
            .is_some_and(|whole| whole.start() < c.get(1).map_or(0, |m| m.start()));
        ((7..=15).contains(&digits) && (cued || number.starts_with('+'))).then(|| number.to_owned())
    })
}

fn name(text: &str) -> Option<String> {
    let re = NAME.as_ref()?;
    re.captures_iter(text).find_map(|c| {
        let found = c.get(1)?.as_str();
        let head = found.split_whitespace().next().unwrap_or_default();
        (!NOT_NAMES.contains(&head.to_lowercase().as_str())).then(|| found.to_owned())
    })
}

/// The contact details in `text`, line by line with a later line's word winning (a burst
/// holds several messages, and "actually, my email is…" corrects the one before). What the
/// customer is after counts only beside a contact detail, so an ordinary question is not
/// a lead.
pub fn extract_lead(text: &str) -> Lead {
    let mut lead = Lead::default();
    let mut interest = None;
    for line in text.lines() {
        let found = Lead {
            name: name(line),
            email: first(&EMAIL, line),
            phone: phone(line),
            company: first(&COMPANY_FORM, line).or_else(|| first(&COMPANY_CUE, line)),
            interest: None,
        };
        lead = found.or(lead);
        interest = first(&INTEREST, line).or(interest);
    }
    if !lead.is_empty() {
        lead.interest = interest;
    }
    lead.cleaned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for re in [
            &EMAIL,
            &PHONE,
            &NAME,
            &COMPANY_FORM,
            &COMPANY_CUE,
            &INTEREST,
        ] {
            assert!(re.is_some());
        }
    }

    #[test]
    fn a_customer_who_introduces_themselves_is_a_lead() {
        let lead = extract_lead(
            "Hi, my name is Anna Schmidt from Lichtwerk GmbH. We need 40 brass desk lamps for \
             our new office. You can reach me at anna.schmidt@lichtwerk.example or call \
             +49 30 1234 5678.",
        );
        assert_eq!(lead.name.as_deref(), Some("Anna Schmidt"));
        assert_eq!(
            lead.email.as_deref(),
            Some("anna.schmidt@lichtwerk.example")
        );
        assert_eq!(lead.phone.as_deref(), Some("+49 30 1234 5678"));
        assert_eq!(lead.company.as_deref(), Some("Lichtwerk GmbH"));
        assert_eq!(
            lead.interest.as_deref(),
            Some("40 brass desk lamps for our new office")
        );
    }

    #[test]
    fn cues_and_other_languages() {
        let lead = extract_lead("I'm Tom. I work for Acme Lighting, phone 030 987 6543");
        assert_eq!(
            extract_lead("my phone number is 0171 2345678")
                .phone
                .as_deref(),
            Some("0171 2345678")
        );
        assert_eq!(
            extract_lead("Meine Telefonnummer ist 030 1234567")
                .phone
                .as_deref(),
            Some("030 1234567")
        );
        assert_eq!(lead.name.as_deref(), Some("Tom"));
        assert_eq!(lead.company.as_deref(), Some("Acme Lighting"));
        assert_eq!(lead.phone.as_deref(), Some("030 987 6543"));
        let de = extract_lead("Hallo, ich heiße Jürgen Weiß, meine Mail ist j.weiss@example.de");
        assert_eq!(de.name.as_deref(), Some("Jürgen Weiß"));
        assert_eq!(de.email.as_deref(), Some("j.weiss@example.de"));
    }

    #[test]
    fn a_later_message_corrects_an_earlier_one() {
        let lead = extract_lead(
            "My email is old@example.com, I am Kim Park.\nSorry, it is kim@example.org actually.",
        );
        assert_eq!(lead.email.as_deref(), Some("kim@example.org"));
        assert_eq!(lead.name.as_deref(), Some("Kim Park"));
    }

    #[test]
    fn ordinary_questions_are_not_leads() {
        for text in [
            "I am looking for a blue mug, is it in stock?",
            "Where is order 123456789? I paid 1299.00 EUR on 2026-11-30.",
            "I want to return my lamp, I'm not happy with it.",
            "Is the notebook available?",
            "Can you tell me when order 1234567 ships?",
            "Cancellation of order 12345678, please",
            "The hotel 0012345678 booking and my phone case, order 20261130",
            "Ich bin Kunde seit 2019 und ich bin Neukunde",
            "This is Urgent!",
            "PLEASE CALL ME AGAIN",
            "Is the Apple Watch SE in stock?",
        ] {
            assert!(
                extract_lead(text).is_empty(),
                "{text}: {:?}",
                extract_lead(text)
            );
        }
    }
}
