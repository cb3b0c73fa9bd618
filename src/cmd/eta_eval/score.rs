//! Scoring of predictions against real arrivals: mean and 90th-percentile
//! absolute error, bias, p10–p90 coverage and the window's median width (a
//! window that covers by being days wide covers nothing a customer can use),
//! overall and by horizon (the real
//! time left to the arrival, as the contract asks), next to the free-flow
//! baseline, with the number of traces behind each horizon.
//!
//! Coverage is also given by predicted horizon (the ETA's own time to go), which
//! is what the window promises: bucketed by the real time to go, the long
//! horizons collect the predictions that turned out too early — a trip that
//! parks for two hours lands there whatever its window said — so they are
//! covered less than the window's 80 % even when it is calibrated.
//!
//! Coverage is given per prediction and per trace (`trace_coverage`: each
//! trace's share of covered predictions, averaged over the traces, each trace
//! weighing the same). A trace's predictions in one bucket are mostly all
//! covered or all missed, so per prediction a bucket's coverage is in effect
//! the share of its longest traces that were covered; per trace it is what the
//! calibrator aims at, which weighs trips, not fixes.

use serde_json::{Value, json};

/// Horizon buckets (actual time to arrival): the engine's, which the
/// analytics API shares.
pub(super) use engine::HORIZONS_S;

/// Errors of all predictions and by horizon.
#[derive(Debug, Clone)]
pub(super) struct Scores {
    pub(super) overall: Errors,
    pub(super) by_horizon: Vec<Errors>,
    /// By the predicted time to go.
    pub(super) by_predicted: Vec<Errors>,
}

impl Scores {
    pub(super) fn new() -> Scores {
        Scores {
            overall: Errors::default(),
            by_horizon: vec![Errors::default(); HORIZONS_S.len() + 1],
            by_predicted: vec![Errors::default(); HORIZONS_S.len() + 1],
        }
    }

    /// Adds one trace's errors by real and by predicted horizon; returns the
    /// trace's own total, counted as one trace.
    pub(super) fn add(&mut self, by_horizon: &[Errors], by_predicted: &[Errors]) -> Errors {
        let mut all = Errors::default();
        for (b, errors) in by_horizon.iter().enumerate() {
            self.by_horizon[b].extend_trace(errors);
            all.extend(errors);
        }
        for (b, errors) in by_predicted.iter().enumerate() {
            self.by_predicted[b].extend_trace(errors);
        }
        let mut own = Errors::default();
        own.extend_trace(&all);
        self.overall.extend(&own);
        own
    }

    pub(super) fn to_json(&self) -> Value {
        let buckets = |by: &[Errors]| -> Vec<Value> {
            by.iter()
                .enumerate()
                .filter(|(_, e)| e.n() > 0)
                .map(|(b, e)| {
                    let mut v = e.summary();
                    v["max_s"] = HORIZONS_S.get(b).map_or(Value::Null, |&m| json!(m));
                    v
                })
                .collect()
        };
        json!({
            "fixes": self.overall.n(),
            "overall": self.overall.summary(),
            "horizons": buckets(&self.by_horizon),
            "horizons_predicted": buckets(&self.by_predicted),
        })
    }
}

/// Errors of one set of predictions.
#[derive(Debug, Default, Clone)]
pub(super) struct Errors {
    ours_s: Vec<f64>,
    baseline_s: Vec<f64>,
    /// p90 minus p10, seconds.
    widths_s: Vec<f64>,
    covered: usize,
    /// One per trace with at least one prediction here: its share of covered
    /// predictions here.
    trace_coverages: Vec<f64>,
}

impl Errors {
    pub(super) fn push(&mut self, ours_s: f64, baseline_s: f64, covered: bool, width_s: f64) {
        self.ours_s.push(ours_s);
        self.baseline_s.push(baseline_s);
        self.widths_s.push(width_s);
        self.covered += usize::from(covered);
    }

    pub(super) fn extend(&mut self, other: &Errors) {
        self.ours_s.extend(&other.ours_s);
        self.baseline_s.extend(&other.baseline_s);
        self.widths_s.extend(&other.widths_s);
        self.covered += other.covered;
        self.trace_coverages.extend(&other.trace_coverages);
    }

    /// Adds one trace's errors, counting the trace.
    fn extend_trace(&mut self, trace: &Errors) {
        if trace.n() > 0 {
            self.extend(trace);
            self.trace_coverages
                .push(trace.covered as f64 / trace.n() as f64);
        }
    }

    pub(super) fn n(&self) -> usize {
        self.ours_s.len()
    }

    pub(super) fn summary(&self) -> Value {
        let n = self.n().max(1) as f64;
        json!({
            "n": self.n(),
            "traces": self.trace_coverages.len(),
            "mae_s": round1(mean_abs(&self.ours_s)),
            "baseline_mae_s": round1(mean_abs(&self.baseline_s)),
            "p90_abs_error_s": round1(p90_abs(&self.ours_s)),
            "baseline_p90_abs_error_s": round1(p90_abs(&self.baseline_s)),
            "mean_error_s": round1(self.ours_s.iter().sum::<f64>() / n),
            "coverage": (self.covered as f64 / n * 1000.0).round() / 1000.0,
            "trace_coverage": (mean(&self.trace_coverages) * 1000.0).round() / 1000.0,
            "median_width_s": round1(median(&self.widths_s)),
        })
    }
}

fn mean_abs(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|v| v.abs()).sum::<f64>() / values.len() as f64
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn p90_abs(values: &[f64]) -> f64 {
    let mut abs: Vec<f64> = values.iter().map(|v| v.abs()).collect();
    abs.sort_by(f64::total_cmp);
    abs.get(((abs.len() as f64 * 0.9).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

pub(super) fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The horizon bucket of a real time to arrival.
pub(super) fn bucket(actual_s: f64) -> usize {
    engine::horizon_bucket(actual_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two trips end in the same bucket: a short one, always covered, and a
    /// long one, never. Per prediction the long trip outweighs the short one;
    /// per trace they weigh the same.
    #[test]
    fn a_long_missed_trip_outweighs_a_short_covered_one_only_per_prediction() {
        let mut scores = Scores::new();
        let trip = |predictions: usize, covered: bool| {
            let mut by_horizon = vec![Errors::default(); HORIZONS_S.len() + 1];
            for _ in 0..predictions {
                by_horizon[0].push(10.0, 20.0, covered, 60.0);
            }
            by_horizon
        };
        let none = vec![Errors::default(); HORIZONS_S.len() + 1];
        let short = scores.add(&trip(1, true), &none).summary();
        assert_eq!(short["traces"], 1);
        assert_eq!(short["trace_coverage"], 1.0);
        let long = scores.add(&trip(3, false), &none).summary();
        assert_eq!(long["n"], 3);
        assert_eq!(long["trace_coverage"], 0.0);
        let doc = scores.to_json();
        let first = &doc["horizons"][0];
        assert_eq!(first["n"], 4);
        assert_eq!(first["traces"], 2);
        assert_eq!(first["coverage"], 0.25);
        assert_eq!(first["trace_coverage"], 0.5);
        assert_eq!(doc["overall"]["trace_coverage"], 0.5);
    }
}
