//! The decision engine's settings (design section 4): weights, penalties, thresholds,
//! flags and policies. Pure data and its validation; the engine applies them.

use std::collections::BTreeMap;

use crate::ChannelKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub similarity: f64,
    pub intent: f64,
    pub self_check: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            similarity: 0.45,
            intent: 0.25,
            self_check: 0.30,
        }
    }
}

/// How much each penalty takes off the confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PenaltyValues {
    pub source_conflict: f64,
    pub missing_field: f64,
    pub no_sources: f64,
}

impl Default for PenaltyValues {
    fn default() -> Self {
        Self {
            source_conflict: 0.15,
            missing_field: 0.10,
            no_sources: 0.25,
        }
    }
}

/// A tenant's decision settings; `Default` is the seed of design section 4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionSettings {
    pub t_auto: f64,
    pub t_escalate: f64,
    pub autosend_allowed: bool,
    pub intents_autosend_allowed: Vec<String>,
    pub intents_force_handoff: Vec<String>,
    pub weights: Weights,
    pub penalties: PenaltyValues,
}

impl Default for DecisionSettings {
    fn default() -> Self {
        Self {
            t_auto: 0.80,
            t_escalate: 0.40,
            autosend_allowed: false,
            intents_autosend_allowed: ["price", "availability", "shipping", "other"]
                .map(String::from)
                .to_vec(),
            intents_force_handoff: ["discount", "complaint"].map(String::from).to_vec(),
            weights: Weights::default(),
            penalties: PenaltyValues::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid decision settings: {0}")]
pub struct InvalidSettings(pub String);

impl DecisionSettings {
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let bad = |m: String| Err(InvalidSettings(m));
        if !(0.0 <= self.t_escalate && self.t_escalate < self.t_auto && self.t_auto <= 1.0) {
            return bad(format!(
                "thresholds must satisfy 0 <= t_escalate < t_auto <= 1, got t_escalate {} and t_auto {}",
                self.t_escalate, self.t_auto
            ));
        }
        let w = &self.weights;
        if [w.similarity, w.intent, w.self_check]
            .iter()
            .any(|x| !x.is_finite() || *x < 0.0)
        {
            return bad("weights must be non-negative numbers".into());
        }
        let sum = w.similarity + w.intent + w.self_check;
        if (sum - 1.0).abs() > 1e-6 {
            return bad(format!("weights must sum to 1, got {sum}"));
        }
        let p = &self.penalties;
        if [p.source_conflict, p.missing_field, p.no_sources]
            .iter()
            .any(|x| !x.is_finite() || *x < 0.0 || *x > 1.0)
        {
            return bad("penalties must lie between 0 and 1".into());
        }
        Ok(())
    }
}

/// The feature flags the engine reads, already resolved (tenant value over global value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flags {
    pub decision_engine_enabled: bool,
    pub ai_autosend_enabled: bool,
    pub human_delay_enabled: bool,
    pub rag_enabled: bool,
    /// `CHANNEL_<KIND>_ENABLED`: automatic sending per channel kind; absent means on.
    pub channels: BTreeMap<ChannelKind, bool>,
}

impl Flags {
    pub const KEYS: [&'static str; 4] = [
        "DECISION_ENGINE_ENABLED",
        "AI_AUTOSEND_ENABLED",
        "HUMAN_DELAY_ENABLED",
        "RAG_ENABLED",
    ];

    pub fn channel_enabled(&self, kind: ChannelKind) -> bool {
        self.channels.get(&kind).copied().unwrap_or(true)
    }

    /// Sets a flag by its stored key; false for a key that is not a flag.
    pub fn set(&mut self, key: &str, on: bool) -> bool {
        match key {
            "DECISION_ENGINE_ENABLED" => self.decision_engine_enabled = on,
            "AI_AUTOSEND_ENABLED" => self.ai_autosend_enabled = on,
            "HUMAN_DELAY_ENABLED" => self.human_delay_enabled = on,
            "RAG_ENABLED" => self.rag_enabled = on,
            _ => match ChannelKind::ALL
                .into_iter()
                .find(|k| key == Self::channel_key(*k))
            {
                Some(kind) => {
                    self.channels.insert(kind, on);
                }
                None => return false,
            },
        }
        true
    }

    pub fn channel_key(kind: ChannelKind) -> String {
        format!("CHANNEL_{}_ENABLED", kind.as_str().to_uppercase())
    }

    /// Every key `set` accepts.
    pub fn all_keys() -> Vec<String> {
        Self::KEYS
            .iter()
            .map(|k| (*k).to_owned())
            .chain(ChannelKind::ALL.into_iter().map(Self::channel_key))
            .collect()
    }
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            decision_engine_enabled: true,
            ai_autosend_enabled: true,
            human_delay_enabled: true,
            rag_enabled: true,
            channels: BTreeMap::new(),
        }
    }
}

/// `ai_training_policies`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policies {
    pub always_escalate_intents: Vec<String>,
    pub forbidden_topics: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_defaults_are_valid() {
        assert_eq!(DecisionSettings::default().validate(), Ok(()));
    }

    #[test]
    fn refuses_bad_thresholds_and_weights() {
        let mut s = DecisionSettings {
            t_escalate: 0.8,
            ..Default::default()
        };
        assert!(s.validate().unwrap_err().0.contains("t_escalate < t_auto"));
        s.t_escalate = 0.4;
        s.weights.intent = 0.5;
        assert!(s.validate().unwrap_err().0.contains("sum to 1"));
        s.weights = Weights {
            similarity: 1.2,
            intent: -0.2,
            self_check: 0.0,
        };
        assert!(s.validate().unwrap_err().0.contains("non-negative"));
    }
}
