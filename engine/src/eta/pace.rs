//! The truck's own pace: how its observed driving time compares with what the
//! metric predicted for the same stretch. A truck that has run 20 % slower than
//! the metric so far is expected to keep doing so, in part: the ratio is shrunk
//! towards 1 until enough driving backs it, and only a share of it is carried
//! forward.

use serde::{Deserialize, Serialize};

/// Settings of [`PaceEstimator`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PaceConfig {
    /// Driving older than this (in predicted seconds) has faded to a third of its
    /// weight: the pace follows the roads the truck is on now.
    pub memory_s: f64,
    /// Shrinkage: this many predicted seconds of evidence give the ratio half its
    /// weight.
    pub prior_s: f64,
    /// Share of the (shrunk) deviation from 1 carried into the prediction.
    pub persistence: f64,
    /// Bounds of the ratio used (a truck stuck for a while is not a pace).
    pub min_ratio: f64,
    pub max_ratio: f64,
}

/// Observed against predicted driving time, with exponential forgetting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PaceEstimator {
    observed_s: f64,
    predicted_s: f64,
}

impl PaceEstimator {
    pub fn new() -> PaceEstimator {
        PaceEstimator::default()
    }

    /// The truck took `observed_s` to drive a stretch the metric timed at
    /// `predicted_s`.
    pub fn observe(&mut self, config: &PaceConfig, observed_s: f64, predicted_s: f64) {
        // Standing time (nothing predicted, time observed) counts: a truck that
        // waits at lights is slow.
        if !(observed_s.is_finite() && predicted_s.is_finite())
            || observed_s < 0.0
            || predicted_s < 0.0
        {
            return;
        }
        let keep = (-predicted_s / config.memory_s).exp();
        self.observed_s = self.observed_s * keep + observed_s;
        self.predicted_s = self.predicted_s * keep + predicted_s;
    }

    /// Observed over predicted time so far (`None` before any driving).
    pub fn ratio(&self) -> Option<f64> {
        (self.predicted_s > 0.0).then(|| self.observed_s / self.predicted_s)
    }

    /// Predicted seconds of evidence (after forgetting).
    pub fn evidence_s(&self) -> f64 {
        self.predicted_s
    }

    /// The factor to apply to the metric's drive times ahead.
    pub fn factor(&self, config: &PaceConfig) -> f64 {
        let Some(ratio) = self.ratio() else {
            return 1.0;
        };
        let ratio = ratio.clamp(config.min_ratio, config.max_ratio);
        let weight = self.predicted_s / (self.predicted_s + config.prior_s);
        // In log space, so "twice as slow" and "twice as fast" weigh the same.
        (weight * config.persistence * ratio.ln()).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: PaceConfig = PaceConfig {
        memory_s: 1800.0,
        prior_s: 300.0,
        persistence: 0.8,
        min_ratio: 0.5,
        max_ratio: 2.0,
    };

    #[test]
    fn a_slow_truck_is_expected_to_stay_slow_in_part() {
        let mut pace = PaceEstimator::new();
        assert_eq!(pace.factor(&CONFIG), 1.0);
        for _ in 0..240 {
            pace.observe(&CONFIG, 12.0, 10.0);
        }
        let factor = pace.factor(&CONFIG);
        assert!((pace.ratio().expect("driven") - 1.2).abs() < 1e-9);
        assert!(factor > 1.1 && factor < 1.2, "{factor}");
    }

    #[test]
    fn little_evidence_moves_the_factor_little() {
        let mut pace = PaceEstimator::new();
        pace.observe(&CONFIG, 20.0, 10.0);
        assert!(pace.factor(&CONFIG) < 1.05);
    }
}
