//! The human-delay planner of design section 5.

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use switchboard_core::settings::{
    DelayProfile, HumanDelaySettings, InvalidDelaySettings, NightMode, ProfileName, Profiles,
};

/// How long an auto-sent reply waits, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelayPlan {
    pub enabled: bool,
    pub profile: Option<ProfileName>,
    pub base_ms: u64,
    pub typing_ms: u64,
    pub jitter_ms: i64,
    pub night_multiplier: f64,
    pub delay_ms: u64,
    pub typing_indicator: bool,
}

impl DelayPlan {
    fn none() -> Self {
        Self {
            enabled: false,
            profile: None,
            base_ms: 0,
            typing_ms: 0,
            jitter_ms: 0,
            night_multiplier: 1.0,
            delay_ms: 0,
            typing_indicator: false,
        }
    }
}

/// `uniform(baseMin, baseMax) + chars / typingSpeed × 1000 + uniform(−jitter, +jitter)`,
/// multiplied at night in DELAY mode, clamped to `[min_delay_ms, max_delay_ms]`. Zero when
/// the delay is switched off by the setting or the `HUMAN_DELAY_ENABLED` flag.
pub fn plan_delay(
    reply: &str,
    settings: &HumanDelaySettings,
    flag_enabled: bool,
    after_hours: bool,
    rng: &mut impl Rng,
) -> DelayPlan {
    if !(settings.enabled && flag_enabled) {
        return DelayPlan::none();
    }
    let chars = reply.chars().count();
    let (name, p) = if chars <= settings.short_max_chars {
        (ProfileName::Short, &settings.profiles.short)
    } else if chars <= settings.medium_max_chars {
        (ProfileName::Medium, &settings.profiles.medium)
    } else {
        (ProfileName::Long, &settings.profiles.long)
    };
    let base_ms = rng.random_range(p.base_min_ms..=p.base_max_ms.max(p.base_min_ms));
    let typing_ms = (chars as f64 / p.typing_chars_per_sec * 1000.0).round() as u64;
    let j = i64::try_from(p.jitter_ms).unwrap_or(i64::MAX);
    let jitter_ms = rng.random_range(-j..=j);
    let multiplier = if after_hours && settings.night_mode == NightMode::Delay {
        settings.night_delay_multiplier
    } else {
        1.0
    };
    let raw = ((base_ms + typing_ms) as f64 + jitter_ms as f64) * multiplier;
    let delay_ms = (raw.max(0.0) as u64).clamp(
        settings.min_delay_ms,
        settings.max_delay_ms.max(settings.min_delay_ms),
    );
    DelayPlan {
        enabled: true,
        profile: Some(name),
        base_ms,
        typing_ms,
        jitter_ms,
        night_multiplier: multiplier,
        delay_ms,
        typing_indicator: settings.typing_indicator_enabled,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn on() -> HumanDelaySettings {
        HumanDelaySettings {
            enabled: true,
            ..Default::default()
        }
    }

    #[test]
    fn profile_follows_reply_length() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = on();
        let short = plan_delay(&"a".repeat(80), &s, true, false, &mut rng);
        let medium = plan_delay(&"a".repeat(81), &s, true, false, &mut rng);
        let long = plan_delay(&"a".repeat(301), &s, true, false, &mut rng);
        assert_eq!(short.profile, Some(ProfileName::Short));
        assert_eq!(medium.profile, Some(ProfileName::Medium));
        assert_eq!(long.profile, Some(ProfileName::Long));
        assert_eq!(short.typing_ms, 2000); // 80 chars at 40/s
        assert_eq!(long.typing_ms, 10033); // 301 chars at 30/s
    }

    #[test]
    fn the_formula_adds_base_typing_and_jitter() {
        let mut rng = StdRng::seed_from_u64(7);
        let p = plan_delay(&"a".repeat(200), &on(), true, false, &mut rng);
        assert!((4000..=8000).contains(&p.base_ms));
        assert!((-1000..=1000).contains(&p.jitter_ms));
        let expected = (p.base_ms + p.typing_ms) as i64 + p.jitter_ms;
        assert_eq!(p.delay_ms as i64, expected.clamp(3000, 120_000));
    }

    #[test]
    fn night_delay_multiplies_then_clamps() {
        let s = on();
        let day = plan_delay("hi", &s, true, false, &mut StdRng::seed_from_u64(3));
        let night = plan_delay("hi", &s, true, true, &mut StdRng::seed_from_u64(3));
        assert_eq!(night.night_multiplier, 3.0);
        let raw = ((day.base_ms + day.typing_ms) as f64 + day.jitter_ms as f64) * 3.0;
        assert_eq!(night.delay_ms, (raw as u64).clamp(3000, 120_000));
        let long_night = plan_delay(
            &"a".repeat(3000),
            &s,
            true,
            true,
            &mut StdRng::seed_from_u64(3),
        );
        assert_eq!(long_night.delay_ms, 120_000);
    }

    #[test]
    fn switched_off_means_zero() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            plan_delay("hi", &HumanDelaySettings::default(), true, false, &mut rng).delay_ms,
            0
        );
        assert_eq!(plan_delay("hi", &on(), false, false, &mut rng).delay_ms, 0);
    }

    #[test]
    fn validation_names_the_problem() {
        let mut s = on();
        s.min_delay_ms = 200_000;
        assert!(s.validate().is_err_and(|e| e.0.contains("min_delay_ms")));
        let s = HumanDelaySettings {
            night_mode: NightMode::AutoReply,
            ..on()
        };
        assert!(
            s.validate()
                .is_err_and(|e| e.0.contains("night_auto_reply_text"))
        );
        assert_eq!(HumanDelaySettings::default().validate(), Ok(()));
    }
}
