//! The human-delay planner of design section 5.

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayProfile {
    pub base_min_ms: u64,
    pub base_max_ms: u64,
    pub typing_chars_per_sec: f64,
    pub jitter_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    pub short: DelayProfile,
    pub medium: DelayProfile,
    pub long: DelayProfile,
}

impl Default for Profiles {
    fn default() -> Self {
        let p = |base_min_ms, base_max_ms, typing_chars_per_sec, jitter_ms| DelayProfile {
            base_min_ms,
            base_max_ms,
            typing_chars_per_sec,
            jitter_ms,
        };
        Self {
            short: p(2000, 4000, 40.0, 500),
            medium: p(4000, 8000, 35.0, 1000),
            long: p(8000, 15000, 30.0, 2000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NightMode {
    /// Multiply the delay by `night_delay_multiplier`.
    Delay,
    /// Send `night_auto_reply_text` once per conversation per night; drafts need approval.
    AutoReply,
    /// No automatic sending at night; drafts need approval.
    Disable,
}

impl NightMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NightMode::Delay => "DELAY",
            NightMode::AutoReply => "AUTO_REPLY",
            NightMode::Disable => "DISABLE",
        }
    }
}

impl std::str::FromStr for NightMode {
    type Err = switchboard_core::UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "DELAY" => Ok(NightMode::Delay),
            "AUTO_REPLY" => Ok(NightMode::AutoReply),
            "DISABLE" => Ok(NightMode::Disable),
            _ => Err(switchboard_core::UnknownValue::new("night mode", s)),
        }
    }
}

/// `human_delay_settings`; `Default` is the seed of design section 5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HumanDelaySettings {
    pub enabled: bool,
    pub profiles: Profiles,
    pub short_max_chars: usize,
    pub medium_max_chars: usize,
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    pub night_mode: NightMode,
    pub night_delay_multiplier: f64,
    pub night_auto_reply_text: Option<String>,
    pub typing_indicator_enabled: bool,
}

impl Default for HumanDelaySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            profiles: Profiles::default(),
            short_max_chars: 80,
            medium_max_chars: 300,
            min_delay_ms: 3000,
            max_delay_ms: 120_000,
            night_mode: NightMode::Delay,
            night_delay_multiplier: 3.0,
            night_auto_reply_text: None,
            typing_indicator_enabled: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid human-delay settings: {0}")]
pub struct InvalidDelaySettings(pub String);

impl HumanDelaySettings {
    pub fn validate(&self) -> Result<(), InvalidDelaySettings> {
        let bad = |m: &str| Err(InvalidDelaySettings(m.to_owned()));
        if self.min_delay_ms > self.max_delay_ms {
            return bad("min_delay_ms must not exceed max_delay_ms");
        }
        if self.short_max_chars > self.medium_max_chars {
            return bad("short_max_chars must not exceed medium_max_chars");
        }
        for p in [
            &self.profiles.short,
            &self.profiles.medium,
            &self.profiles.long,
        ] {
            if p.base_min_ms > p.base_max_ms {
                return bad("a profile's base_min_ms must not exceed its base_max_ms");
            }
            if !(p.typing_chars_per_sec.is_finite() && p.typing_chars_per_sec > 0.0) {
                return bad("typing_chars_per_sec must be a positive number");
            }
        }
        if !(self.night_delay_multiplier.is_finite() && self.night_delay_multiplier >= 1.0) {
            return bad("night_delay_multiplier must be at least 1");
        }
        if self.night_mode == NightMode::AutoReply
            && self
                .night_auto_reply_text
                .as_deref()
                .is_none_or(|t| t.trim().is_empty())
        {
            return bad("night_mode AUTO_REPLY needs night_auto_reply_text");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProfileName {
    Short,
    Medium,
    Long,
}

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
