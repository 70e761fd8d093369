//! One whole evaluation: may the bot speak, what does the engine decide, and when and how
//! does an automatic reply go out. The AI worker and `switchboard decide` both call
//! [`evaluate`], so an admin's experiment shows exactly what production would do.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::decision::{
    BlockReason, ChannelState, ConversationState, Decision, DecisionInput, DraftSignals, Penalty,
    Silence, decide, may_speak,
};
use crate::delay::{DelayPlan, HumanDelaySettings, NightMode, plan_delay};
use crate::hours::{UnknownTimezone, WorkingHours};
use crate::settings::{DecisionSettings, Flags, Policies};

/// Everything the engine looks at. Optional parts take the seed defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(default)]
    pub customer_text: String,
    pub draft: DraftSignals,
    /// Set when drafting failed (LLM error, timeout, unparsable answer): always ESCALATE.
    #[serde(default)]
    pub draft_error: Option<String>,
    #[serde(default)]
    pub settings: DecisionSettings,
    #[serde(default)]
    pub flags: Flags,
    #[serde(default)]
    pub policies: Policies,
    pub conversation: ConversationState,
    pub channel: ChannelState,
    pub now: DateTime<Utc>,
    #[serde(default)]
    pub working_hours: WorkingHours,
    #[serde(default)]
    pub human_delay: HumanDelaySettings,
    /// Whether this conversation already got tonight's automatic night reply.
    #[serde(default)]
    pub night_auto_reply_sent: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Set when the bot may not speak at all (rule 1): nothing else applies then.
    pub silent: Option<Silence>,
    pub decision: Option<Decision>,
    pub confidence: f64,
    pub autosend_eligible: bool,
    pub autosend_block_reason: Option<BlockReason>,
    pub penalties: Vec<Penalty>,
    pub explanations: Vec<String>,
    pub within_working_hours: bool,
    /// For AUTO_SEND: how long the reply waits.
    pub delay: Option<DelayPlan>,
    /// Night mode AUTO_REPLY: the text to send at once.
    pub night_auto_reply: Option<String>,
    /// The key naming tonight, for "once per conversation per night".
    pub night_key: Option<String>,
}

pub fn evaluate(case: &Case, rng: &mut impl Rng) -> Result<Verdict, UnknownTimezone> {
    let open = case.working_hours.is_open(case.now)?;
    let night_key = if open {
        None
    } else {
        Some(case.working_hours.night_key(case.now)?)
    };
    if let Err(silence) = may_speak(&case.conversation) {
        return Ok(Verdict {
            silent: Some(silence),
            decision: None,
            confidence: 0.0,
            autosend_eligible: false,
            autosend_block_reason: None,
            penalties: vec![],
            explanations: vec![format!(
                "the bot may not speak: {silence:?}; no draft is made"
            )],
            within_working_hours: open,
            delay: None,
            night_auto_reply: None,
            night_key,
        });
    }
    if let Some(error) = &case.draft_error {
        return Ok(Verdict {
            silent: None,
            decision: Some(Decision::Escalate),
            confidence: 0.0,
            autosend_eligible: false,
            autosend_block_reason: None,
            penalties: vec![],
            explanations: vec![format!(
                "ESCALATE: drafting failed, so nothing unvetted is sent: {error}"
            )],
            within_working_hours: open,
            delay: None,
            night_auto_reply: None,
            night_key,
        });
    }
    let mut outcome = decide(&DecisionInput {
        customer_text: &case.customer_text,
        draft: &case.draft,
        settings: &case.settings,
        flags: &case.flags,
        policies: &case.policies,
        conversation: case.conversation,
        channel: case.channel,
    });
    let mut night_auto_reply = None;
    let night_mode = case.human_delay.night_mode;
    if outcome.decision == Decision::AutoSend && !open && night_mode != NightMode::Delay {
        outcome.decision = Decision::NeedApproval;
        outcome.autosend_eligible = false;
        outcome.autosend_block_reason = Some(BlockReason::NightMode);
        outcome.explanations.push(format!(
            "NEED_APPROVAL: outside working hours, night mode {} sends nothing on its own",
            night_mode.as_str()
        ));
        if night_mode == NightMode::AutoReply && !case.night_auto_reply_sent {
            night_auto_reply = case.human_delay.night_auto_reply_text.clone();
        }
    }
    let delay = (outcome.decision == Decision::AutoSend).then(|| {
        plan_delay(
            &case.draft.reply,
            &case.human_delay,
            case.flags.human_delay_enabled,
            !open,
            rng,
        )
    });
    if let Some(d) = &delay {
        outcome.explanations.push(if d.enabled {
            format!("the reply waits {} ms before it goes out", d.delay_ms)
        } else {
            "the human delay is off: the reply goes out at once".into()
        });
    }
    Ok(Verdict {
        silent: None,
        decision: Some(outcome.decision),
        confidence: outcome.confidence,
        autosend_eligible: outcome.autosend_eligible,
        autosend_block_reason: outcome.autosend_block_reason,
        penalties: outcome.penalties,
        explanations: outcome.explanations,
        within_working_hours: open,
        delay,
        night_auto_reply,
        night_key,
    })
}
