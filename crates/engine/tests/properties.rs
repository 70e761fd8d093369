//! Property tests of the engine's invariants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use switchboard_core::{ChannelKind, ConversationStatus, Mode};
use switchboard_engine::{
    BlockReason, Case, ChannelState, ConversationState, Decision, DraftSignals, HumanDelaySettings,
    NightMode, evaluate, plan_delay,
};

const INTENTS: &[&str] = &[
    "price",
    "availability",
    "shipping",
    "discount",
    "complaint",
    "other",
];

fn case() -> impl Strategy<Value = Case> {
    (
        (
            0.0..=1.0f64,
            0.0..=1.0f64,
            0.0..=1.0f64,
            any::<bool>(),
            0usize..INTENTS.len(),
        ),
        (
            prop::sample::select(Mode::ALL.to_vec()),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (any::<bool>(), any::<bool>(), 0u32..48, any::<bool>()),
        (0.0..0.5f64, 0.5..=1.0f64),
    )
        .prop_map(
            |(
                (sim, intent_score, check, handoff, intent),
                (mode, autosend_flag, setting, window, cited),
                (engine_on, channel_on, half_hour, delay_on),
                (t_escalate, t_auto),
            )| {
                let mut c = Case {
                    customer_text: "question".into(),
                    draft_error: None,
                    draft: DraftSignals {
                        reply: "answer".repeat(intent + 1),
                        intent: INTENTS[intent].into(),
                        intent_score,
                        similarity_score: sim,
                        self_check_score: check,
                        self_check_need_handoff: handoff,
                        self_check_reasons: vec![],
                        used_sources: if cited { vec!["doc:1".into()] } else { vec![] },
                        source_conflicts: vec![],
                        missing_fields: vec![],
                        choices: vec![],
                    },
                    settings: Default::default(),
                    flags: Default::default(),
                    policies: Default::default(),
                    conversation: ConversationState {
                        mode,
                        status: ConversationStatus::Active,
                        operator_takeover_active: false,
                        consent_revoked: false,
                    },
                    channel: ChannelState {
                        kind: ChannelKind::Webchat,
                        free_form_window_open: window,
                    },
                    now: Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
                        + chrono::Duration::minutes(30 * i64::from(half_hour)),
                    working_hours: Default::default(),
                    human_delay: HumanDelaySettings {
                        enabled: delay_on,
                        night_mode: NightMode::Delay,
                        ..Default::default()
                    },
                    night_auto_reply_sent: false,
                };
                c.settings.autosend_allowed = setting;
                c.settings.t_auto = t_auto;
                c.settings.t_escalate = t_escalate.min(t_auto - 0.01);
                c.flags.ai_autosend_enabled = autosend_flag;
                c.flags.decision_engine_enabled = engine_on;
                c.flags.channels.insert(ChannelKind::Webchat, channel_on);
                c
            },
        )
}

proptest! {
    #[test]
    fn learning_never_auto_sends(mut c in case(), seed in any::<u64>()) {
        c.conversation.mode = Mode::Learning;
        let v = evaluate(&c, &mut StdRng::seed_from_u64(seed)).unwrap();
        prop_assert_ne!(v.decision, Some(Decision::AutoSend));
    }

    #[test]
    fn forced_handoff_intents_always_escalate(mut c in case(), which in 0usize..2, seed in any::<u64>()) {
        c.flags.decision_engine_enabled = true;
        c.draft.intent = ["discount", "complaint"][which].into();
        let v = evaluate(&c, &mut StdRng::seed_from_u64(seed)).unwrap();
        prop_assert_eq!(v.decision, Some(Decision::Escalate));
    }

    #[test]
    fn auto_send_implies_every_gate_passed(c in case(), seed in any::<u64>()) {
        let v = evaluate(&c, &mut StdRng::seed_from_u64(seed)).unwrap();
        if v.decision == Some(Decision::AutoSend) {
            prop_assert!(c.flags.decision_engine_enabled);
            prop_assert!(c.flags.ai_autosend_enabled && c.flags.channel_enabled(c.channel.kind));
            prop_assert!(c.settings.autosend_allowed);
            prop_assert!(c.conversation.mode != Mode::Learning);
            prop_assert!(c.conversation.mode != Mode::SemiAuto
                || c.settings.intents_autosend_allowed.contains(&c.draft.intent));
            prop_assert!(c.channel.free_form_window_open);
            prop_assert!(v.confidence >= c.settings.t_auto);
            prop_assert!(!c.draft.self_check_need_handoff);
            prop_assert!(v.autosend_eligible && v.autosend_block_reason.is_none());
        }
        if v.autosend_block_reason.is_some() {
            prop_assert_eq!(v.decision, Some(Decision::NeedApproval));
            prop_assert!(v.confidence >= c.settings.t_auto
                || v.autosend_block_reason == Some(BlockReason::NightMode));
        }
    }

    #[test]
    fn the_delay_stays_inside_min_and_max(
        len in 0usize..5000, night in any::<bool>(), seed in any::<u64>(),
        min in 0u64..10_000, span in 0u64..200_000,
    ) {
        let s = HumanDelaySettings { enabled: true, min_delay_ms: min, max_delay_ms: min + span, ..Default::default() };
        let p = plan_delay(&"x".repeat(len), &s, true, night, &mut StdRng::seed_from_u64(seed));
        prop_assert!(p.delay_ms >= min && p.delay_ms <= min + span, "{} not in [{min}, {}]", p.delay_ms, min + span);
    }

    #[test]
    fn a_disabled_delay_is_zero(len in 0usize..5000, night in any::<bool>(), seed in any::<u64>(), setting in any::<bool>()) {
        let s = HumanDelaySettings { enabled: setting, ..Default::default() };
        // Off by the setting, or by the HUMAN_DELAY_ENABLED flag.
        let p = plan_delay(&"x".repeat(len), &s, !setting, night, &mut StdRng::seed_from_u64(seed));
        prop_assert_eq!(p.delay_ms, 0);
    }
}
