//! Opt-out: a customer who writes a stop word gets one confirmation and then silence until
//! they write a start word.

pub use switchboard_store::ConsentWord;
use switchboard_store::{StoreError, TenantSettings};
use uuid::Uuid;

use switchboard_runtime::Services;

/// (language, stop words, start words, stop confirmation, start confirmation)
type Words = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
    &'static str,
);

const WORDS: &[Words] = &[
    (
        "en",
        &[
            "stop",
            "unsubscribe",
            "stop all",
            "opt out",
            "optout",
            "end",
            "quit",
        ],
        &["start", "unstop", "subscribe"],
        "You have been unsubscribed and will get no more automatic messages here. Write START to undo this.",
        "Welcome back! You will get our replies here again.",
    ),
    (
        "de",
        &["stopp", "stop", "abmelden", "abbestellen"],
        &["start", "anmelden"],
        "Sie wurden abgemeldet und erhalten hier keine automatischen Nachrichten mehr. Schreiben Sie START, um das rückgängig zu machen.",
        "Willkommen zurück! Sie erhalten unsere Antworten hier wieder.",
    ),
    (
        "fr",
        &["stop", "arret", "arrêt", "desabonner", "désabonner"],
        &["start", "commencer"],
        "Vous êtes désabonné et ne recevrez plus de messages automatiques ici. Écrivez START pour annuler.",
        "Bon retour ! Vous recevrez à nouveau nos réponses ici.",
    ),
    (
        "es",
        &["stop", "baja", "parar", "cancelar suscripcion"],
        &["start", "alta"],
        "Has cancelado la suscripción y no recibirás más mensajes automáticos aquí. Escribe START para deshacerlo.",
        "¡Bienvenido de nuevo! Volverás a recibir nuestras respuestas aquí.",
    ),
];

fn words(language: &str) -> &'static Words {
    WORDS.iter().find(|w| w.0 == language).unwrap_or(&WORDS[0])
}

/// The whole message, not a word inside it, must be the keyword: "stop sending me the wrong
/// size" is a complaint, not an opt-out. English words work in every language.
pub fn consent_word(text: &str, language: &str) -> Option<ConsentWord> {
    let t = text
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    [words(language), &WORDS[0]].into_iter().find_map(|w| {
        if w.1.contains(&t.as_str()) {
            Some(ConsentWord::Stop)
        } else if w.2.contains(&t.as_str()) {
            Some(ConsentWord::Start)
        } else {
            None
        }
    })
}

/// Queues the one confirmation of a change `store_inbound` recorded with the message, and
/// drops what waited to be sent. A stop word from a customer already opted out changes
/// nothing and is not answered; a start word from one who never opted out is answered like
/// any other message (false). Idempotent per message: a redelivery finds the confirmation
/// and does nothing.
pub async fn apply(
    s: &Services,
    tenant_id: Uuid,
    conversation_id: Uuid,
    message_id: Uuid,
    word: ConsentWord,
    settings: &TenantSettings,
) -> Result<bool, StoreError> {
    let mut tx = s.store.begin_draft(tenant_id, conversation_id).await?;
    let key = format!("consent:{message_id}");
    if tx.has_outbox_key(&key).await? {
        return Ok(true);
    }
    if !tx.consent_changed_by(message_id).await? {
        return Ok(word == ConsentWord::Stop);
    }
    let w = words(&settings.language);
    let confirmation = match word {
        ConsentWord::Stop => w.3,
        ConsentWord::Start => w.4,
    };
    tx.supersede_waiting("the customer changed their consent")
        .await?;
    tx.enqueue(None, &key, message_id, confirmation, 0).await?;
    tx.commit().await?;
    tracing::info!(?word, "consent changed");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_keyword_counts() {
        assert_eq!(consent_word("STOP", "en"), Some(ConsentWord::Stop));
        assert_eq!(
            consent_word(" Unsubscribe! ", "en"),
            Some(ConsentWord::Stop)
        );
        assert_eq!(consent_word("abmelden", "de"), Some(ConsentWord::Stop));
        assert_eq!(consent_word("stop", "de"), Some(ConsentWord::Stop));
        assert_eq!(consent_word("START", "fr"), Some(ConsentWord::Start));
        assert_eq!(consent_word("stop sending the wrong size", "en"), None);
        assert_eq!(consent_word("abmelden", "en"), None);
    }
}
