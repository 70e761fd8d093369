//! What operators do: approve, edit or reject drafts, write to the customer, and move
//! conversations through the lifecycle. The rules live here; the store locks and writes.
//! Every action locks the conversation first (then the draft, then its outbox row), so a
//! double click or two operators at once act once, and each is audited.

use serde_json::json;
use switchboard_core::{ConversationStatus, Role, SuggestionStatus};
use switchboard_store::{
    Approval, ConversationAction, OperatorSend, Store, StoreError, TenantSettings, User,
};
use uuid::Uuid;

type Result<T> = std::result::Result<T, StoreError>;

fn conflict<T>(why: impl Into<String>) -> Result<T> {
    Err(StoreError::Conflict(why.into()))
}

/// The lifecycle's rule, as a conflict the operator is shown.
fn transition(from: ConversationStatus, to: ConversationStatus) -> Result<ConversationStatus> {
    switchboard_engine::transition(from, to).map_err(|e| StoreError::Conflict(e.to_string()))
}

/// The tenant's delay settings for approved sends, when it wants them to wait a
/// human-like delay as well. Read before any lock is taken.
async fn approved_delay(store: &Store, tenant_id: Uuid) -> Result<Option<TenantSettings>> {
    if !store.delays_approved_sends(tenant_id).await? {
        return Ok(None);
    }
    Ok(Some(store.tenant_settings(tenant_id).await?))
}

fn delay_ms(settings: Option<&TenantSettings>, text: &str) -> u64 {
    settings.map_or(0, |t| {
        switchboard_engine::plan_delay(
            text,
            &t.human_delay,
            t.flags.human_delay_enabled,
            false,
            &mut rand::rng(),
        )
        .delay_ms
    })
}

/// Sends the draft, or the operator's edit of it, exactly as given. Approving again
/// queues nothing new; a draft that was superseded, rejected or has expired is refused.
/// An AUTO_SEND draft still waiting out its delay is taken over: its one reply becomes
/// the operator's, rather than a second send beside it.
pub async fn approve(
    store: &Store,
    user: &User,
    id: Uuid,
    edited: Option<&str>,
) -> Result<Approval> {
    let delay_settings = approved_delay(store, user.tenant_id).await?;
    let (mut c, p) = store.lock_suggestion(user.tenant_id, id).await?;
    use SuggestionStatus::*;
    match p.status {
        Approved | Edited | Sent => {
            let text = c.approved_text(id).await?.unwrap_or(p.draft);
            return Ok(Approval {
                suggestion_id: id,
                conversation_id: c.conversation_id,
                status: p.status,
                text,
                already: true,
            });
        }
        Superseded => {
            return conflict(
                "this draft was superseded: the customer wrote again, and a newer draft replaces it",
            );
        }
        Rejected => return conflict("this draft was rejected"),
        Expired => return conflict("this draft has expired"),
        Pending | Queued => {}
    }
    // The approval time limit is for drafts waiting for an operator; a queued draft is
    // already on its way.
    if let (Pending, Some(why)) = (p.status, &p.expired_why) {
        c.set_suggestion_status(id, Expired).await?;
        c.commit().await?;
        return conflict(format!("this draft has expired: {why}"));
    }
    if c.status == ConversationStatus::Closed {
        return conflict("the conversation is closed");
    }
    // An escalation goes to a person because the bot's answer was not good enough: its
    // suggested text may start the operator's reply, but is never sent with one click.
    if p.escalated && edited.is_none() {
        return conflict(
            "an escalated conversation's suggested reply is not sent as it is: send your own text (it may start from the suggestion)",
        );
    }
    let edited = edited.map(|t| t.replace('\0', ""));
    let text = edited
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or(&p.draft)
        .to_owned();
    if text.trim().is_empty() {
        return Err(StoreError::Invalid(
            "the draft is empty: send your own text with it".into(),
        ));
    }
    let is_edit = text != p.draft;
    let delay_ms = delay_ms(delay_settings.as_ref(), &text);
    let status = if is_edit { Edited } else { Approved };
    let send = OperatorSend {
        suggestion_id: Some(id),
        key: format!("approval:{id}"),
        role: if is_edit {
            Role::Operator
        } else {
            Role::Assistant
        },
        body: &text,
        user_id: user.id,
        with_choices: !is_edit,
        delay_ms,
    };
    if p.status == Queued {
        c.take_over_queued_reply(id, Some(&send)).await?;
    } else {
        c.queue_operator_send(&send).await?;
    }
    c.set_suggestion_status(id, status).await?;
    let action = if is_edit { "edit" } else { "approve" };
    c.human_action(
        user,
        Some(id),
        action,
        Some(&p.draft),
        is_edit.then_some(text.as_str()),
        None,
    )
    .await?;
    c.training_sample(user, &p, Some(&text), status, None)
        .await?;
    // The escalation this draft answered is dealt with by sending it.
    c.handle_escalations_of(id, user).await?;
    c.touch().await?;
    let conversation_id = c.conversation_id;
    c.audit(
        user,
        action,
        "ai_suggestion",
        Some(id),
        json!({"conversation_id": conversation_id}),
    )
    .await?;
    c.commit().await?;
    Ok(Approval {
        suggestion_id: id,
        conversation_id,
        status,
        text,
        already: false,
    })
}

/// Rejects a draft waiting for an operator, or stops an AUTO_SEND draft's reply that still
/// waits out its delay. The reason teaches later drafts.
pub async fn reject(store: &Store, user: &User, id: Uuid, reason: &str) -> Result<Uuid> {
    let (mut c, p) = store.lock_suggestion(user.tenant_id, id).await?;
    match p.status {
        SuggestionStatus::Rejected => return Ok(c.conversation_id),
        SuggestionStatus::Pending => {}
        SuggestionStatus::Queued => c.take_over_queued_reply(id, None).await?,
        other => {
            return conflict(format!(
                "this draft is {other} and can no longer be rejected"
            ));
        }
    }
    c.set_suggestion_status(id, SuggestionStatus::Rejected)
        .await?;
    c.human_action(user, Some(id), "reject", Some(&p.draft), None, Some(reason))
        .await?;
    c.training_sample(user, &p, None, SuggestionStatus::Rejected, Some(reason))
        .await?;
    c.touch().await?;
    let conversation_id = c.conversation_id;
    c.audit(
        user,
        "reject",
        "ai_suggestion",
        Some(id),
        json!({"conversation_id": conversation_id, "reason": reason}),
    )
    .await?;
    c.commit().await?;
    Ok(conversation_id)
}

/// The operator writes to the customer. This is a takeover: the bot stays quiet until it
/// is released or the tenant's takeover time runs out, and waiting drafts are dropped.
/// `key` makes a redelivered request (a Telegram reply seen twice) send once.
pub async fn operator_message(
    store: &Store,
    user: &User,
    conversation_id: Uuid,
    text: &str,
    key: Option<String>,
) -> Result<Uuid> {
    // PostgreSQL cannot store a NUL, and no customer needs one.
    let text = text.replace('\0', "");
    let text = text.trim();
    if text.is_empty() {
        return Err(StoreError::Invalid("the message is empty".into()));
    }
    let mut c = store
        .lock_conversation(user.tenant_id, conversation_id)
        .await?;
    let status = match c.status {
        ConversationStatus::Closed => {
            return conflict(
                "the conversation is closed; reopen is not possible, the customer's next message starts a new one",
            );
        }
        ConversationStatus::Resolved => ConversationStatus::Active,
        s => s,
    };
    c.take_over(user, status).await?;
    c.handle_open_escalation(user).await?;
    let message_id = c
        .queue_operator_send(&OperatorSend {
            suggestion_id: None,
            key: key.unwrap_or_else(|| format!("operator:{}", Uuid::now_v7())),
            role: Role::Operator,
            body: text,
            user_id: user.id,
            with_choices: false,
            delay_ms: 0,
        })
        .await?;
    c.human_action(user, None, "message", None, Some(text), None)
        .await?;
    c.audit(
        user,
        "message",
        "conversation",
        Some(conversation_id),
        json!({"message_id": message_id}),
    )
    .await?;
    c.commit().await?;
    Ok(message_id)
}

const ACTIONS: [ConversationAction; 5] = [
    ConversationAction::Takeover,
    ConversationAction::Release,
    ConversationAction::Resolve,
    ConversationAction::Close,
    ConversationAction::Reopen,
];

/// Whether the lifecycle lets an operator make `action` on a conversation in `status`
/// (`takeover_active`: an operator holds it now), and if not, why.
pub fn action_allowed(
    action: ConversationAction,
    status: ConversationStatus,
    takeover_active: bool,
) -> Result<()> {
    use ConversationStatus::*;
    match action {
        ConversationAction::Takeover if matches!(status, Closed | Resolved) => {
            conflict(format!("a {status} conversation cannot be taken over"))
        }
        ConversationAction::Takeover => Ok(()),
        ConversationAction::Release
            if !takeover_active && !matches!(status, Escalated | WaitingOperator) =>
        {
            conflict("there is no takeover or escalation to release")
        }
        ConversationAction::Release => Ok(()),
        ConversationAction::Reopen if status != Resolved => conflict(format!(
            "only a resolved conversation can be reopened; this one is {status}"
        )),
        ConversationAction::Reopen => transition(status, Active).map(drop),
        ConversationAction::Resolve => transition(status, Resolved).map(drop),
        ConversationAction::Close => transition(status, Closed).map(drop),
    }
}

/// The moves an operator may make now, for the console to offer only those.
pub fn allowed_actions(status: ConversationStatus, takeover_active: bool) -> Vec<&'static str> {
    ACTIONS
        .into_iter()
        .filter(|a| action_allowed(*a, status, takeover_active).is_ok())
        .map(ConversationAction::as_str)
        .collect()
}

/// Moves a conversation as the lifecycle allows; anything else is a conflict.
pub async fn conversation_action(
    store: &Store,
    user: &User,
    id: Uuid,
    action: ConversationAction,
) -> Result<()> {
    use ConversationStatus::*;
    let mut c = store.lock_conversation(user.tenant_id, id).await?;
    let from = c.status;
    action_allowed(action, from, c.takeover_active)?;
    match action {
        ConversationAction::Takeover => {
            c.take_over(user, from).await?;
            c.handle_open_escalation(user).await?;
            c.human_action(user, None, "takeover", None, None, None)
                .await?;
        }
        ConversationAction::Release => {
            // The bot may answer again: escalated or waiting conversations become active.
            let to = if matches!(from, Escalated | WaitingOperator) {
                transition(from, Active)?
            } else {
                from
            };
            c.end_takeover().await?;
            c.set_status(to).await?;
            c.handle_open_escalation(user).await?;
            c.human_action(user, None, "release", None, None, None)
                .await?;
        }
        ConversationAction::Resolve | ConversationAction::Close | ConversationAction::Reopen => {
            let to = match action {
                ConversationAction::Resolve => Resolved,
                ConversationAction::Close => Closed,
                _ => Active,
            };
            let to = transition(from, to)?;
            c.end_takeover().await?;
            c.set_status(to).await?;
            if to == Closed || to == Resolved {
                // Nothing drafted for a finished conversation may go out any more.
                c.supersede_waiting(&format!("the conversation was {to}"))
                    .await?;
                c.handle_open_escalation(user).await?;
            }
        }
    }
    c.touch().await?;
    c.audit(
        user,
        action.as_str(),
        "conversation",
        Some(id),
        json!({"from": from.as_str()}),
    )
    .await?;
    c.commit().await?;
    Ok(())
}

/// Hands a conversation to the operators without a draft (a mail too large to read whole,
/// drafting that failed on every attempt): it goes to `escalated` where the lifecycle
/// allows, with an escalation event. `key` names what caused it, so a redelivery or a
/// second give-up opens nothing twice; the id comes back with whether this call opened it.
pub async fn escalate_without_draft(
    store: &Store,
    tenant_id: Uuid,
    conversation_id: Uuid,
    key: &str,
    reason: &str,
    summary: &str,
) -> Result<(Uuid, bool)> {
    let mut c = store.lock_conversation(tenant_id, conversation_id).await?;
    let Some(id) = c.open_escalation(key, reason, summary).await? else {
        // Opened under this key before, or the conversation has one open: that one stands.
        return Ok((c.existing_escalation(key).await?, false));
    };
    if switchboard_engine::transition(c.status, ConversationStatus::Escalated).is_ok() {
        c.set_status(ConversationStatus::Escalated).await?;
    }
    c.touch().await?;
    c.commit().await?;
    Ok((id, true))
}

#[cfg(test)]
mod tests {
    use switchboard_core::ConversationStatus::*;

    use super::allowed_actions;

    #[test]
    fn only_the_moves_the_lifecycle_allows_are_offered() {
        assert_eq!(
            allowed_actions(Active, false),
            ["takeover", "resolve", "close"]
        );
        assert_eq!(
            allowed_actions(Active, true),
            ["takeover", "release", "resolve", "close"]
        );
        assert_eq!(
            allowed_actions(Escalated, false),
            ["takeover", "release", "resolve", "close"]
        );
        assert_eq!(allowed_actions(Resolved, false), ["close", "reopen"]);
        assert!(allowed_actions(Closed, false).is_empty());
    }
}
