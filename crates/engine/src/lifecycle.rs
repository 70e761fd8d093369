//! The conversation status machine of design section 3.

use switchboard_core::ConversationStatus::{self, *};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a conversation cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: ConversationStatus,
    pub to: ConversationStatus,
}

/// Every move the rules allow; `closed` is final for the bot, and only an operator may
/// close. Any other move is refused.
pub fn transition(
    from: ConversationStatus,
    to: ConversationStatus,
) -> Result<ConversationStatus, IllegalTransition> {
    let allowed = match from {
        Active => matches!(
            to,
            WaitingCustomer | WaitingOperator | Escalated | Resolved | Closed
        ),
        WaitingCustomer | WaitingOperator => matches!(to, Active | Escalated | Resolved | Closed),
        Escalated => matches!(to, Active | Resolved | Closed),
        Resolved => matches!(to, Active | Closed),
        Closed => false,
    };
    if allowed {
        Ok(to)
    } else {
        Err(IllegalTransition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_transitions_and_nothing_else() {
        let ok = [
            (Active, WaitingCustomer),
            (Active, WaitingOperator),
            (Active, Escalated),
            (Active, Resolved),
            (WaitingCustomer, Active),
            (WaitingOperator, Escalated),
            (WaitingCustomer, Resolved),
            (Escalated, Active),
            (Escalated, Resolved),
            (Resolved, Active),
        ];
        for (from, to) in ok {
            assert_eq!(transition(from, to), Ok(to), "{from} -> {to}");
        }
        for to in ConversationStatus::ALL {
            assert!(transition(Closed, *to).is_err(), "closed is final");
        }
        let err = transition(Resolved, Escalated).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a conversation cannot go from resolved to escalated"
        );
        assert!(transition(Escalated, WaitingCustomer).is_err());
        assert!(transition(Active, Active).is_err());
    }
}
