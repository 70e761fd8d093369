use serde::{Deserialize, Serialize};
use switchboard_core::{ChannelKind, ConversationStatus, Mode};

use crate::settings::{DecisionSettings, Flags, Policies};
pub use switchboard_core::{Decision, DraftSignals};

/// Why an otherwise confident draft may not go out on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BlockReason {
    FlagOff,
    SettingOff,
    ModeLearning,
    IntentNotAllowed,
    WindowClosed,
    /// Outside working hours with night mode AUTO_REPLY or DISABLE (design section 5).
    NightMode,
}

impl BlockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::FlagOff => "FLAG_OFF",
            BlockReason::SettingOff => "SETTING_OFF",
            BlockReason::ModeLearning => "MODE_LEARNING",
            BlockReason::IntentNotAllowed => "INTENT_NOT_ALLOWED",
            BlockReason::WindowClosed => "WINDOW_CLOSED",
            BlockReason::NightMode => "NIGHT_MODE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationState {
    pub mode: Mode,
    pub status: ConversationStatus,
    #[serde(default)]
    pub operator_takeover_active: bool,
    #[serde(default)]
    pub consent_revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelState {
    pub kind: ChannelKind,
    /// Can free-form text go out now? Only WhatsApp's 24-hour window ever says no.
    pub free_form_window_open: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    pub customer_text: &'a str,
    pub draft: &'a DraftSignals,
    pub settings: &'a DecisionSettings,
    pub flags: &'a Flags,
    pub policies: &'a Policies,
    pub conversation: ConversationState,
    pub channel: ChannelState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Penalty {
    pub code: String,
    pub message: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionOutcome {
    pub decision: Decision,
    pub confidence: f64,
    pub autosend_eligible: bool,
    pub autosend_block_reason: Option<BlockReason>,
    pub penalties: Vec<Penalty>,
    pub explanations: Vec<String>,
}

/// Rule 1: the bot may not speak at all; the message is stored and no draft is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Silence {
    StatusEscalated,
    StatusWaitingOperator,
    StatusClosed,
    OperatorTakeover,
    ConsentRevoked,
}

pub fn may_speak(conversation: &ConversationState) -> Result<(), Silence> {
    match conversation.status {
        ConversationStatus::Escalated => return Err(Silence::StatusEscalated),
        ConversationStatus::WaitingOperator => return Err(Silence::StatusWaitingOperator),
        ConversationStatus::Closed => return Err(Silence::StatusClosed),
        _ => {}
    }
    if conversation.operator_takeover_active {
        return Err(Silence::OperatorTakeover);
    }
    if conversation.consent_revoked {
        return Err(Silence::ConsentRevoked);
    }
    Ok(())
}

fn clamp01(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The weighted mean of the three scores, less the penalties, within [0, 1].
fn confidence(input: &DecisionInput<'_>) -> (f64, Vec<Penalty>) {
    let d = input.draft;
    let w = &input.settings.weights;
    let p = &input.settings.penalties;
    let mean = w.similarity * clamp01(d.similarity_score)
        + w.intent * clamp01(d.intent_score)
        + w.self_check * clamp01(d.self_check_score);
    let mut penalties = Vec::new();
    if !d.source_conflicts.is_empty() {
        penalties.push(Penalty {
            code: "SOURCE_CONFLICT".into(),
            message: format!("sources disagree: {}", d.source_conflicts.join(", ")),
            value: p.source_conflict,
        });
    }
    for field in &d.missing_fields {
        penalties.push(Penalty {
            code: "MISSING_FIELD".into(),
            message: format!("the answer needs {field}, which the customer has not given"),
            value: p.missing_field,
        });
    }
    if d.used_sources.is_empty() {
        penalties.push(Penalty {
            code: "NO_SOURCES".into(),
            message: "the reply cites no knowledge source".into(),
            value: p.no_sources,
        });
    }
    let total: f64 = penalties.iter().map(|x| x.value).sum();
    (clamp01(mean - total), penalties)
}

fn contains_any<'a>(list: &'a [String], intent: &str) -> Option<&'a String> {
    list.iter().find(|x| x.eq_ignore_ascii_case(intent))
}

/// The first forbidden topic the customer's text mentions, matched case-insensitively.
fn forbidden_topic<'a>(policies: &'a Policies, text: &str) -> Option<&'a String> {
    let text = text.to_lowercase();
    policies
        .forbidden_topics
        .iter()
        .find(|t| !t.trim().is_empty() && text.contains(&t.trim().to_lowercase()))
}

fn first_failed_gate(input: &DecisionInput<'_>) -> Option<BlockReason> {
    if !input.flags.ai_autosend_enabled || !input.flags.channel_enabled(input.channel.kind) {
        return Some(BlockReason::FlagOff);
    }
    if !input.settings.autosend_allowed {
        return Some(BlockReason::SettingOff);
    }
    match input.conversation.mode {
        Mode::Learning => return Some(BlockReason::ModeLearning),
        Mode::SemiAuto
            if contains_any(
                &input.settings.intents_autosend_allowed,
                &input.draft.intent,
            )
            .is_none() =>
        {
            return Some(BlockReason::IntentNotAllowed);
        }
        _ => {}
    }
    if !input.channel.free_form_window_open {
        return Some(BlockReason::WindowClosed);
    }
    None
}

/// Rules 2 to 6 of design section 4, first match wins. Rule 1 is [`may_speak`], which the
/// caller checks before it drafts anything.
pub fn decide(input: &DecisionInput<'_>) -> DecisionOutcome {
    let (confidence, penalties) = confidence(input);
    let mut explanations = vec![format!(
        "confidence {confidence:.2} = weighted mean of similarity {:.2}, intent {:.2} and self-check {:.2}{}",
        clamp01(input.draft.similarity_score),
        clamp01(input.draft.intent_score),
        clamp01(input.draft.self_check_score),
        if penalties.is_empty() {
            String::new()
        } else {
            format!(
                " less penalties {}",
                penalties
                    .iter()
                    .map(|p| format!("{} {:.2}", p.code, p.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )];
    let gate = first_failed_gate(input);
    let reached_auto = confidence >= input.settings.t_auto;
    let outcome = |decision, block: Option<BlockReason>, explanations| DecisionOutcome {
        decision,
        confidence,
        autosend_eligible: decision == Decision::AutoSend,
        autosend_block_reason: block,
        penalties: penalties.clone(),
        explanations,
    };

    if !input.flags.decision_engine_enabled {
        explanations.push("DECISION_ENGINE_ENABLED is off: every draft needs approval".into());
        return outcome(Decision::NeedApproval, None, explanations);
    }

    let d = input.draft;
    let must_escalate = if d.self_check_need_handoff {
        Some(format!(
            "the self-check asks for a human{}",
            if d.self_check_reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", d.self_check_reasons.join("; "))
            }
        ))
    } else if let Some(i) = contains_any(&input.settings.intents_force_handoff, &d.intent) {
        Some(format!("intent {i} is always handed to a human"))
    } else if let Some(i) = contains_any(&input.policies.always_escalate_intents, &d.intent) {
        Some(format!("policy always escalates intent {i}"))
    } else {
        forbidden_topic(input.policies, input.customer_text)
            .map(|t| format!("the message touches the forbidden topic {t:?}"))
    };
    if let Some(why) = must_escalate {
        explanations.push(format!("ESCALATE: {why}"));
        return outcome(Decision::Escalate, None, explanations);
    }

    if confidence < input.settings.t_escalate {
        explanations.push(format!(
            "ESCALATE: confidence {confidence:.2} is below t_escalate {:.2}",
            input.settings.t_escalate
        ));
        return outcome(Decision::Escalate, None, explanations);
    }

    if reached_auto {
        match gate {
            None => {
                explanations.push(format!(
                    "AUTO_SEND: confidence {confidence:.2} reaches t_auto {:.2} and every gate passes",
                    input.settings.t_auto
                ));
                return outcome(Decision::AutoSend, None, explanations);
            }
            Some(reason) => {
                explanations.push(format!(
                    "NEED_APPROVAL: confidence {confidence:.2} reaches t_auto {:.2} but auto-send is blocked by {}",
                    input.settings.t_auto,
                    reason.as_str()
                ));
                return outcome(Decision::NeedApproval, Some(reason), explanations);
            }
        }
    }
    explanations.push(format!(
        "NEED_APPROVAL: confidence {confidence:.2} lies between t_escalate {:.2} and t_auto {:.2}",
        input.settings.t_escalate, input.settings.t_auto
    ));
    outcome(Decision::NeedApproval, None, explanations)
}
