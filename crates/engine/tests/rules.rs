//! The rule table of design section 4: at least one case for every rule, gate, penalty and
//! block reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use switchboard_core::{ChannelKind, ConversationStatus, Mode};
use switchboard_engine::{
    BlockReason, Case, ChannelState, ConversationState, Decision, DraftSignals, HumanDelaySettings,
    NightMode, Silence, Verdict, evaluate,
};

/// A confident shipping answer in an auto-sending tenant, during working hours.
fn base() -> Case {
    let mut c = Case {
        customer_text: "Do you ship to Berlin?".into(),
        draft_error: None,
        draft: DraftSignals {
            reply: "We ship with DHL.".into(),
            intent: "shipping".into(),
            intent_score: 0.9,
            similarity_score: 0.9,
            self_check_score: 0.9,
            self_check_need_handoff: false,
            self_check_reasons: vec![],
            used_sources: vec!["doc:1".into()],
            source_conflicts: vec![],
            missing_fields: vec![],
            choices: vec![],
        },
        settings: Default::default(),
        flags: Default::default(),
        policies: Default::default(),
        conversation: ConversationState {
            mode: Mode::SemiAuto,
            status: ConversationStatus::Active,
            operator_takeover_active: false,
            consent_revoked: false,
        },
        channel: ChannelState {
            kind: ChannelKind::Webchat,
            free_form_window_open: true,
        },
        // Monday 10:00 UTC.
        now: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        working_hours: Default::default(),
        human_delay: Default::default(),
        night_auto_reply_sent: false,
    };
    c.settings.autosend_allowed = true;
    c
}

fn run(c: &Case) -> Verdict {
    evaluate(c, &mut StdRng::seed_from_u64(42)).unwrap()
}

fn decision(c: &Case) -> (Option<Decision>, Option<BlockReason>) {
    let v = run(c);
    (v.decision, v.autosend_block_reason)
}

#[test]
fn confident_and_allowed_auto_sends() {
    let v = run(&base());
    assert_eq!(v.decision, Some(Decision::AutoSend));
    assert!(v.autosend_eligible);
    assert!((v.confidence - 0.9).abs() < 1e-9);
    assert_eq!(
        v.delay.unwrap().delay_ms,
        0,
        "the seed keeps the human delay off"
    );
}

#[test]
fn rule_1_the_bot_may_not_speak() {
    for (status, silence) in [
        (ConversationStatus::Escalated, Silence::StatusEscalated),
        (
            ConversationStatus::WaitingOperator,
            Silence::StatusWaitingOperator,
        ),
        (ConversationStatus::Closed, Silence::StatusClosed),
    ] {
        let mut c = base();
        c.conversation.status = status;
        let v = run(&c);
        assert_eq!((v.silent, v.decision), (Some(silence), None));
    }
    let mut c = base();
    c.conversation.operator_takeover_active = true;
    assert_eq!(run(&c).silent, Some(Silence::OperatorTakeover));
    let mut c = base();
    c.conversation.consent_revoked = true;
    assert_eq!(run(&c).silent, Some(Silence::ConsentRevoked));
}

#[test]
fn a_failed_draft_always_escalates() {
    let mut c = base();
    c.flags.decision_engine_enabled = false;
    c.draft_error = Some("the LLM did not answer within 20s".into());
    let v = run(&c);
    assert_eq!(v.decision, Some(Decision::Escalate));
    assert!(v.explanations[0].contains("did not answer"));
}

#[test]
fn rule_2_engine_off_needs_approval() {
    let mut c = base();
    c.flags.decision_engine_enabled = false;
    assert_eq!(decision(&c), (Some(Decision::NeedApproval), None));
    // Even a forced-handoff intent: the engine is off.
    c.draft.intent = "complaint".into();
    assert_eq!(decision(&c).0, Some(Decision::NeedApproval));
}

#[test]
fn rule_3_must_escalate() {
    let mut c = base();
    c.draft.self_check_need_handoff = true;
    c.draft.self_check_reasons = vec!["legal question".into()];
    let v = run(&c);
    assert_eq!(v.decision, Some(Decision::Escalate));
    assert!(v.explanations.last().unwrap().contains("legal question"));

    let mut c = base();
    c.draft.intent = "discount".into();
    assert_eq!(decision(&c).0, Some(Decision::Escalate));

    let mut c = base();
    c.draft.intent = "shipping".into();
    c.policies.always_escalate_intents = vec!["shipping".into()];
    assert_eq!(decision(&c).0, Some(Decision::Escalate));

    let mut c = base();
    c.policies.forbidden_topics = vec!["lawsuit".into()];
    c.customer_text = "I will file a LAWSUIT unless you ship today".into();
    let v = run(&c);
    assert_eq!(v.decision, Some(Decision::Escalate));
    assert!(v.explanations.last().unwrap().contains("lawsuit"));
}

#[test]
fn rule_4_low_confidence_escalates() {
    let mut c = base();
    c.draft.similarity_score = 0.1;
    c.draft.intent_score = 0.3;
    c.draft.self_check_score = 0.3;
    let v = run(&c);
    assert_eq!(v.decision, Some(Decision::Escalate));
    assert!(v.confidence < 0.40);
}

#[test]
fn rule_5_every_gate_has_its_block_reason() {
    let mut c = base();
    c.flags.ai_autosend_enabled = false;
    assert_eq!(
        decision(&c),
        (Some(Decision::NeedApproval), Some(BlockReason::FlagOff))
    );

    let mut c = base();
    c.flags.channels.insert(ChannelKind::Webchat, false);
    assert_eq!(
        decision(&c),
        (Some(Decision::NeedApproval), Some(BlockReason::FlagOff))
    );

    let mut c = base();
    c.settings.autosend_allowed = false;
    assert_eq!(
        decision(&c),
        (Some(Decision::NeedApproval), Some(BlockReason::SettingOff))
    );

    let mut c = base();
    c.conversation.mode = Mode::Learning;
    assert_eq!(
        decision(&c),
        (
            Some(Decision::NeedApproval),
            Some(BlockReason::ModeLearning)
        )
    );

    let mut c = base();
    c.settings.intents_autosend_allowed = vec!["price".into()];
    assert_eq!(
        decision(&c),
        (
            Some(Decision::NeedApproval),
            Some(BlockReason::IntentNotAllowed)
        )
    );
    // Auto mode sends any intent that is not forced to handoff.
    c.conversation.mode = Mode::Auto;
    assert_eq!(decision(&c).0, Some(Decision::AutoSend));

    let mut c = base();
    c.channel.free_form_window_open = false;
    assert_eq!(
        decision(&c),
        (
            Some(Decision::NeedApproval),
            Some(BlockReason::WindowClosed)
        )
    );
}

#[test]
fn rule_6_in_between_needs_approval_without_a_block_reason() {
    let mut c = base();
    c.draft.similarity_score = 0.5;
    c.draft.intent_score = 0.6;
    c.draft.self_check_score = 0.6;
    let v = run(&c);
    assert_eq!(
        (v.decision, v.autosend_block_reason),
        (Some(Decision::NeedApproval), None)
    );
    assert!(v.confidence >= 0.40 && v.confidence < 0.80);
}

#[test]
fn penalties_are_recorded_and_subtracted() {
    let mut c = base();
    c.draft.source_conflicts = vec!["doc:1 says 2 days, doc:2 says 5".into()];
    c.draft.missing_fields = vec!["order_number".into(), "country".into()];
    c.draft.used_sources.clear();
    let v = run(&c);
    let codes: Vec<&str> = v.penalties.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "SOURCE_CONFLICT",
            "MISSING_FIELD",
            "MISSING_FIELD",
            "NO_SOURCES"
        ]
    );
    let total: f64 = v.penalties.iter().map(|p| p.value).sum();
    assert!((v.confidence - (0.9 - total)).abs() < 1e-9);
    assert_eq!(
        v.decision,
        Some(Decision::Escalate),
        "0.9 - 0.6 is below t_escalate"
    );
}

#[test]
fn weights_change_the_confidence() {
    let mut c = base();
    c.draft.similarity_score = 1.0;
    c.draft.intent_score = 0.0;
    c.draft.self_check_score = 0.0;
    assert!((run(&c).confidence - 0.45).abs() < 1e-9);
    c.settings.weights.similarity = 1.0;
    c.settings.weights.intent = 0.0;
    c.settings.weights.self_check = 0.0;
    assert!((run(&c).confidence - 1.0).abs() < 1e-9);
}

#[test]
fn night_modes() {
    let night = Utc.with_ymd_and_hms(2026, 11, 23, 22, 0, 0).unwrap();
    let mut c = base();
    c.now = night;
    c.human_delay = HumanDelaySettings {
        enabled: true,
        ..Default::default()
    };
    let v = run(&c);
    assert_eq!(v.decision, Some(Decision::AutoSend));
    assert_eq!(v.delay.as_ref().unwrap().night_multiplier, 3.0);
    assert!(!v.within_working_hours);

    c.human_delay.night_mode = NightMode::Disable;
    assert_eq!(
        decision(&c),
        (Some(Decision::NeedApproval), Some(BlockReason::NightMode))
    );
    assert_eq!(run(&c).night_auto_reply, None);

    c.human_delay.night_mode = NightMode::AutoReply;
    c.human_delay.night_auto_reply_text = Some("We are closed; we answer tomorrow at 9.".into());
    let v = run(&c);
    assert_eq!(
        (v.decision, v.autosend_block_reason),
        (Some(Decision::NeedApproval), Some(BlockReason::NightMode))
    );
    assert_eq!(
        v.night_auto_reply.as_deref(),
        Some("We are closed; we answer tomorrow at 9.")
    );
    c.night_auto_reply_sent = true;
    assert_eq!(
        run(&c).night_auto_reply,
        None,
        "once per conversation per night"
    );
}

#[test]
fn a_case_round_trips_through_json() {
    let c = base();
    let json = serde_json::to_string(&c).unwrap();
    let back: Case = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    let err = serde_json::from_str::<Case>(&json.replace("\"now\"", "\"nwo\"")).unwrap_err();
    assert!(err.to_string().contains("nwo"));
}
