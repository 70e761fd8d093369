//! A lead: the contact details a customer gives in a conversation, kept on their customer
//! record for the shop to follow up.

use serde::{Deserialize, Serialize};

/// What a customer told the shop about themselves. Every field is optional; an empty
/// string counts as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lead {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// What they are after, in their words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interest: Option<String>,
}

/// The field names, in the order an export prints them.
pub const LEAD_FIELDS: [&str; 5] = ["name", "email", "phone", "company", "interest"];

/// No field may hold more than this many characters: a lead is a line, not a letter.
const MAX_FIELD_CHARS: usize = 200;

impl Lead {
    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_none())
    }

    /// Each field by name, in [`LEAD_FIELDS`] order.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("name", self.name.as_deref()),
            ("email", self.email.as_deref()),
            ("phone", self.phone.as_deref()),
            ("company", self.company.as_deref()),
            ("interest", self.interest.as_deref()),
        ]
    }

    /// The same lead with each value trimmed and cut to a line's length, and empty values
    /// dropped.
    pub fn cleaned(self) -> Self {
        let clean = |v: Option<String>| {
            v.map(|s| {
                s.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(MAX_FIELD_CHARS)
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
        };
        Self {
            name: clean(self.name),
            email: clean(self.email),
            phone: clean(self.phone),
            company: clean(self.company),
            interest: clean(self.interest),
        }
    }

    /// This lead's fields, each one this lead lacks taken from `other`.
    pub fn or(self, other: Lead) -> Self {
        Self {
            name: self.name.or(other.name),
            email: self.email.or(other.email),
            phone: self.phone.or(other.phone),
            company: self.company.or(other.company),
            interest: self.interest.or(other.interest),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cleaning_drops_blanks_and_folds_space() {
        let lead = Lead {
            name: Some("  Anna \n Schmidt ".into()),
            email: Some(" ".into()),
            ..Lead::default()
        }
        .cleaned();
        assert_eq!(lead.name.as_deref(), Some("Anna Schmidt"));
        assert_eq!(lead.email, None);
        assert!(!lead.is_empty());
        assert_eq!(
            serde_json::to_value(&lead).unwrap(),
            serde_json::json!({"name": "Anna Schmidt"})
        );
        assert!(Lead::default().cleaned().is_empty());
    }
}
