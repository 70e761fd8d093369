//! The human-delay settings of design section 5: pure data and its validation; the
//! engine plans with them.

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
    type Err = crate::UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "DELAY" => Ok(NightMode::Delay),
            "AUTO_REPLY" => Ok(NightMode::AutoReply),
            "DISABLE" => Ok(NightMode::Disable),
            _ => Err(crate::UnknownValue::new("night mode", s)),
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
