use switchboard_core::knowledge::{Example, Source};

use crate::INTENTS;

/// How the tenant wants to sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    pub shop_name: String,
    /// ISO 639-1 code of the language to answer in.
    pub language: String,
    pub tone: String,
    /// Formal address ("Sie", "vous") rather than informal.
    pub formal: bool,
    pub persona: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// `customer`, `assistant` or `operator`.
    pub role: String,
    pub text: String,
}

pub struct DraftRequest<'a> {
    pub persona: &'a Persona,
    /// The customer's unanswered messages, joined.
    pub question: &'a str,
    /// The recent conversation before them, oldest first.
    pub history: &'a [Turn],
    pub sources: &'a [Source],
    /// What operators made of earlier drafts for similar messages.
    pub examples: &'a [Example],
}

/// Longest excerpt of an example's texts in the prompt, in characters.
const EXAMPLE_CHARS: usize = 600;

fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(EXAMPLE_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Operators' verdicts as guidance. Their facts may be stale (a price has changed since),
/// so they steer tone and judgement while facts still come only from the knowledge.
fn examples_block(examples: &[Example]) -> String {
    let (rejected, approved): (Vec<&Example>, Vec<&Example>) =
        examples.iter().partition(|e| e.rejected.is_some());
    let mut out = String::new();
    if !approved.is_empty() {
        out.push_str(
            "\nReplies operators approved for similar messages. Follow their tone and judgement, \
             but take facts only from the knowledge above, since these may be out of date:",
        );
        for e in approved {
            out.push_str(&format!(
                "\n- customer: {}\n  approved reply: {}",
                clip(&e.customer),
                clip(&e.reply)
            ));
        }
    }
    if !rejected.is_empty() {
        out.push_str("\nDrafts operators rejected for similar messages, and why. Do not repeat these mistakes:");
        for e in rejected {
            out.push_str(&format!(
                "\n- customer: {}\n  rejected draft: {}\n  reason: {}",
                clip(&e.customer),
                clip(&e.reply),
                clip(e.rejected.as_deref().unwrap_or_default())
            ));
        }
    }
    out
}

fn sources_block(sources: &[Source]) -> String {
    if sources.is_empty() {
        return "(no knowledge matched the question)".into();
    }
    sources
        .iter()
        .map(|s| {
            let facts = s.product.as_ref().map_or(String::new(), |p| {
                format!(
                    " [price {} {}, {} in stock]",
                    p.price,
                    p.currency,
                    p.stock.max(0)
                )
            });
            format!(
                "- id: {}\n  title: {}{facts}\n  text: {}",
                s.reference, s.title, s.body
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn draft_messages(req: &DraftRequest<'_>) -> (String, String) {
    let p = req.persona;
    let address = if p.formal { "formal" } else { "informal" };
    let mut system = format!(
        "You are the customer-service assistant of {shop}. Answer in the language with ISO code \
         {lang}, in a {tone} tone, using {address} address.",
        shop = p.shop_name,
        lang = p.language,
        tone = p.tone,
    );
    if let Some(persona) = &p.persona {
        system.push(' ');
        system.push_str(persona);
    }
    system.push_str(&format!(
        "\nUse only facts from the knowledge below; never invent prices, dates or policies. \
         If the knowledge does not answer the question, say so briefly and set need_handoff. \
         Classify the intent as one of: {}. intent_score is your confidence in that intent, \
         between 0 and 1. used_sources lists the ids of the knowledge entries your reply relies on. \
         missing_fields lists information you need from the customer. lead holds the contact \
         details the customer gave about themselves in these messages (name, email, phone, \
         company, and interest: what they are after), each an empty string when not given. \
         Reply with JSON only.\n\
         Knowledge:\n{}{}",
        INTENTS.join(", "),
        sources_block(req.sources),
        examples_block(req.examples)
    ));
    let history = req
        .history
        .iter()
        .map(|t| format!("{}: {}", t.role, t.text))
        .collect::<Vec<_>>()
        .join("\n");
    let user = if history.is_empty() {
        format!("Customer message:\n{}", req.question)
    } else {
        format!(
            "Conversation so far:\n{history}\n\nNew customer message:\n{}",
            req.question
        )
    };
    (system, user)
}

pub fn self_check_messages(req: &DraftRequest<'_>, reply: &str) -> (String, String) {
    let system = format!(
        "You check a customer-service reply against the knowledge it may use. Score from 0 to 1 \
         how fully every statement in the reply is supported by the knowledge (1: all supported, \
         0: unsupported or invented). List your reasons. Set need_handoff if a human must answer. \
         Reply with JSON only.\nKnowledge:\n{}",
        sources_block(req.sources)
    );
    let user = format!(
        "Customer message:\n{}\n\nReply to check:\n{reply}",
        req.question
    );
    (system, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(customer: &str, reply: &str, rejected: Option<&str>) -> Example {
        Example {
            customer: customer.into(),
            reply: reply.into(),
            rejected: rejected.map(Into::into),
        }
    }

    #[test]
    fn operators_verdicts_guide_but_do_not_inform() {
        assert_eq!(examples_block(&[]), "");
        let block = examples_block(&[
            example("Ship to Berlin?", "Yes, with DHL in 2 days.", None),
            example(
                "Ship to Bern?",
                "Yes, tomorrow.",
                Some("we do not ship to Switzerland"),
            ),
        ]);
        let approved = block.find("approved reply: Yes, with DHL in 2 days.");
        let rejected =
            block.find("rejected draft: Yes, tomorrow.\n  reason: we do not ship to Switzerland");
        assert!(approved.is_some() && rejected.is_some(), "{block}");
        assert!(
            block.contains("take facts only from the knowledge"),
            "{block}"
        );
        let long = "x".repeat(EXAMPLE_CHARS + 10);
        let block = examples_block(&[example(&long, "ok", None)]);
        assert!(
            block.contains(&format!("{}…", "x".repeat(EXAMPLE_CHARS))),
            "{block}"
        );
        assert!(!block.contains(&long));
    }
}
