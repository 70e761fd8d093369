use switchboard_core::knowledge::Source;

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
         missing_fields lists information you need from the customer. Reply with JSON only.\n\
         Knowledge:\n{}",
        INTENTS.join(", "),
        sources_block(req.sources)
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
