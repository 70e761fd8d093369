//! Channel credentials are `SecretString`s: never printed by `Debug`, zeroed on drop. They
//! are written out only to be encrypted (the CLI stores them sealed), through these.

use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;

pub fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

pub fn expose_opt<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_some(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use crate::{email, telegram, whatsapp};

    /// Every credential prints redacted, and survives the trip through the sealed JSON.
    #[test]
    fn credentials_never_print_and_round_trip() {
        let tg: telegram::Secrets =
            serde_json::from_str(r#"{"bot_token":"123:SECRET-A","secret_token":"SECRET-B"}"#)
                .unwrap();
        let wa: whatsapp::Secrets = serde_json::from_str(
            r#"{"access_token":"SECRET-C","app_secret":"SECRET-D","verify_token":"SECRET-E"}"#,
        )
        .unwrap();
        let mail: email::Secrets = serde_json::from_str(
            r#"{"imap_user":"u","imap_password":"SECRET-F","smtp_user":"u","smtp_password":"SECRET-G"}"#,
        )
        .unwrap();
        let printed = format!("{tg:?} {wa:?} {mail:?}");
        assert!(!printed.contains("SECRET"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");

        let again: telegram::Secrets =
            serde_json::from_value(serde_json::to_value(&tg).unwrap()).unwrap();
        assert_eq!(again.bot_token.expose_secret(), "123:SECRET-A");
        let again: email::Secrets =
            serde_json::from_value(serde_json::to_value(&mail).unwrap()).unwrap();
        assert_eq!(
            again.smtp_password.as_ref().map(|p| p.expose_secret()),
            Some("SECRET-G")
        );
        let none: email::Secrets =
            serde_json::from_str(r#"{"imap_user":"u","imap_password":"p"}"#).unwrap();
        assert!(serde_json::to_value(&none).unwrap()["smtp_password"].is_null());
    }
}
