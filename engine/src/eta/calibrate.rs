//! The uncertainty window: p10 and p90 of the arrival from the errors measured so
//! far, by horizon.
//!
//! Every closed prediction (a published ETA and the actual arrival, or a
//! progress checkpoint along the route) gives an error relative to the time it
//! had to go. The calibrator keeps the latest errors per horizon bucket and reads
//! their 10th and 90th percentiles, so that about 80 % of arrivals fall inside the
//! window if tomorrow's errors look like today's. Before there is data a prior
//! stands in (ETAs run late more often than early), and the data takes over as
//! samples arrive (shrinkage by a pseudo-count).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Settings of the [`Calibrator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationConfig {
    /// Upper bounds of the horizon buckets (predicted seconds to go), ascending;
    /// longer horizons fall in the last bucket.
    pub bucket_max_s: Vec<f64>,
    /// Errors kept per bucket (the newest).
    pub capacity: usize,
    /// Prior 10th and 90th percentiles of the relative error (actual minus
    /// predicted time to go, over the predicted time to go).
    pub prior_q10: f64,
    pub prior_q90: f64,
    /// The prior weighs as much as this many measured errors.
    pub prior_samples: f64,
    /// Errors are relative to the time to go, but at least this many seconds: a
    /// truck one minute out is not "50 % late" when it is 30 s late.
    pub min_scale_s: f64,
    /// Errors kept per vehicle ([`OwnErrors`]).
    pub own_capacity: usize,
    /// A vehicle's own errors weigh `n / (n + own_prior_samples)` against the
    /// fleet's.
    pub own_prior_samples: f64,
}

impl CalibrationConfig {
    /// Buckets at 5, 15, 30 min, 1, 2, 4, 8, 24 h; a prior of −10 % / +20 %.
    pub fn standard() -> CalibrationConfig {
        CalibrationConfig {
            bucket_max_s: vec![
                300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0,
            ],
            capacity: 1000,
            prior_q10: -0.10,
            prior_q90: 0.20,
            prior_samples: 20.0,
            min_scale_s: 180.0,
            own_capacity: 64,
            own_prior_samples: 10.0,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let invalid = |setting: &'static str, reason: &str| Error::InvalidConfig {
            setting,
            reason: reason.to_string(),
        };
        if self.bucket_max_s.is_empty()
            || self
                .bucket_max_s
                .windows(2)
                .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return Err(invalid(
                "bucket_max_s",
                "must be a non-empty ascending list",
            ));
        }
        if self.capacity == 0 || self.own_capacity == 0 {
            return Err(invalid("capacity", "must be at least 1"));
        }
        if !(self.prior_q10 <= 0.0 && self.prior_q90 >= 0.0 && self.prior_q10 > -1.0) {
            return Err(invalid("prior_q10", "the prior needs -1 < q10 <= 0 <= q90"));
        }
        if !(self.prior_samples >= 0.0 && self.min_scale_s > 0.0) {
            return Err(invalid(
                "min_scale_s",
                "must be positive (and prior_samples not negative)",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Bucket {
    errors: VecDeque<f32>,
    /// Percentiles of `errors`, refreshed on every record.
    q10: f64,
    q90: f64,
    recorded: u64,
}

/// The p10/p90 window per horizon, learned online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrator {
    config: CalibrationConfig,
    buckets: Vec<Bucket>,
}

/// What a bucket says now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketSummary {
    pub max_s: Option<f64>,
    pub samples: usize,
    pub q10: f64,
    pub q90: f64,
}

impl Calibrator {
    pub fn new(config: CalibrationConfig) -> Result<Calibrator> {
        config.validate()?;
        let buckets = vec![Bucket::default(); config.bucket_max_s.len() + 1];
        Ok(Calibrator { config, buckets })
    }

    fn bucket_of(&self, horizon_s: f64) -> usize {
        self.config
            .bucket_max_s
            .partition_point(|&max| max < horizon_s)
    }

    fn scale_s(&self, horizon_s: f64) -> f64 {
        horizon_s.max(self.config.min_scale_s)
    }

    pub fn config(&self) -> &CalibrationConfig {
        &self.config
    }

    /// The error the calibrator measures: actual minus predicted time to go,
    /// relative to the predicted (at least `min_scale_s`). `None` for nonsense.
    pub fn relative_error(&self, predicted_to_go_s: f64, actual_to_go_s: f64) -> Option<f64> {
        (predicted_to_go_s.is_finite() && actual_to_go_s.is_finite() && predicted_to_go_s >= 0.0)
            .then(|| (actual_to_go_s - predicted_to_go_s) / self.scale_s(predicted_to_go_s))
    }

    /// Records one closed prediction: the time to go it predicted and the time it
    /// actually took, seconds.
    pub fn record(&mut self, predicted_to_go_s: f64, actual_to_go_s: f64) {
        let Some(error) = self.relative_error(predicted_to_go_s, actual_to_go_s) else {
            return;
        };
        let b = self.bucket_of(predicted_to_go_s);
        let capacity = self.config.capacity;
        let bucket = &mut self.buckets[b];
        if bucket.errors.len() == capacity {
            bucket.errors.pop_front();
        }
        bucket.errors.push_back(error as f32);
        bucket.recorded += 1;
        let mut sorted: Vec<f32> = bucket.errors.iter().copied().collect();
        sorted.sort_by(f32::total_cmp);
        bucket.q10 = quantile(&sorted, 0.1);
        bucket.q90 = quantile(&sorted, 0.9);
    }

    /// The relative 10th and 90th percentiles for a horizon, prior and data
    /// blended.
    pub fn quantiles(&self, horizon_s: f64) -> (f64, f64) {
        let bucket = &self.buckets[self.bucket_of(horizon_s)];
        let n = bucket.errors.len() as f64;
        let k = self.config.prior_samples;
        if n == 0.0 {
            return (self.config.prior_q10, self.config.prior_q90);
        }
        (
            (k * self.config.prior_q10 + n * bucket.q10) / (k + n),
            (k * self.config.prior_q90 + n * bucket.q90) / (k + n),
        )
    }

    /// The window around a predicted time to go, as offsets from the ETA in
    /// seconds: `(lower <= 0, upper >= 0)`. The window always contains the ETA,
    /// and its lower end is never before now.
    pub fn window_s(&self, horizon_s: f64) -> (f64, f64) {
        self.window_with_s(horizon_s, None)
    }

    /// The window, with the vehicle's own errors blended in: a truck whose
    /// predictions have been far off gets a wider window than the fleet's.
    pub fn window_with_s(&self, horizon_s: f64, own: Option<&OwnQuantiles>) -> (f64, f64) {
        let horizon_s = horizon_s.max(0.0);
        let (mut q10, mut q90) = self.quantiles(horizon_s);
        if let Some(own) = own.filter(|o| o.samples > 0.0) {
            let w = own.samples / (own.samples + self.config.own_prior_samples);
            q10 = (1.0 - w) * q10 + w * own.q10;
            q90 = (1.0 - w) * q90 + w * own.q90;
        }
        let scale_s = self.scale_s(horizon_s);
        let lower = (q10 * scale_s).min(0.0).max(-horizon_s);
        let upper = (q90 * scale_s).max(0.0);
        (lower, upper)
    }

    pub fn summary(&self) -> Vec<BucketSummary> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let max_s = self.config.bucket_max_s.get(i).copied();
                let horizon = max_s.unwrap_or(f64::INFINITY);
                let (q10, q90) = self.quantiles(horizon.min(1e12));
                BucketSummary {
                    max_s,
                    samples: b.errors.len(),
                    q10,
                    q90,
                }
            })
            .collect()
    }

    /// Closed predictions recorded in all.
    pub fn recorded(&self) -> u64 {
        self.buckets.iter().map(|b| b.recorded).sum()
    }
}

/// A vehicle's own recent errors, in the calibrator's relative terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnErrors {
    errors: VecDeque<f32>,
    quantiles: Option<OwnQuantiles>,
}

/// Percentiles of one vehicle's errors and how many back them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OwnQuantiles {
    pub q10: f64,
    pub q90: f64,
    pub samples: f64,
}

impl OwnErrors {
    pub fn new() -> OwnErrors {
        OwnErrors::default()
    }

    /// Records one of the vehicle's closed predictions.
    pub fn record(&mut self, calibrator: &Calibrator, predicted_to_go_s: f64, actual_to_go_s: f64) {
        let Some(error) = calibrator.relative_error(predicted_to_go_s, actual_to_go_s) else {
            return;
        };
        if self.errors.len() >= calibrator.config.own_capacity {
            self.errors.pop_front();
        }
        self.errors.push_back(error as f32);
    }

    /// Recomputes the percentiles. `overdue` are lower bounds of errors not yet
    /// known (predictions whose time has passed without the truck getting
    /// there): a truck parked for an hour is already that late.
    pub fn refresh(&mut self, overdue: &[f64]) {
        let mut sorted: Vec<f32> = self.errors.iter().copied().collect();
        sorted.extend(overdue.iter().map(|&e| e as f32));
        if sorted.is_empty() {
            self.quantiles = None;
            return;
        }
        sorted.sort_by(f32::total_cmp);
        self.quantiles = Some(OwnQuantiles {
            q10: quantile(&sorted, 0.1),
            q90: quantile(&sorted, 0.9),
            samples: sorted.len() as f64,
        });
    }

    pub fn quantiles(&self) -> Option<&OwnQuantiles> {
        self.quantiles.as_ref()
    }
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f32], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => f64::from(sorted[0]),
        n => {
            let pos = q * (n - 1) as f64;
            let i = pos.floor() as usize;
            let frac = pos - i as f64;
            let a = f64::from(sorted[i]);
            let b = f64::from(sorted[(i + 1).min(n - 1)]);
            a + (b - a) * frac
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_holds_before_data_and_the_data_takes_over() {
        let mut cal = Calibrator::new(CalibrationConfig::standard()).expect("valid");
        let (lower, upper) = cal.window_s(3000.0);
        assert!((lower + 300.0).abs() < 1e-9 && (upper - 600.0).abs() < 1e-9);
        // Errors uniform in -5 % .. +5 %: the window narrows towards ±4 %.
        for i in 0..1000 {
            let rel = -0.05 + 0.1 * (i as f64 / 999.0);
            cal.record(3000.0, 3000.0 * (1.0 + rel));
        }
        let (q10, q90) = cal.quantiles(3000.0);
        assert!(
            (q10 + 0.04).abs() < 0.01 && (q90 - 0.04).abs() < 0.01,
            "{q10} {q90}"
        );
        // Other horizons still have the prior.
        assert_eq!(cal.quantiles(100.0), (-0.10, 0.20));
    }

    #[test]
    fn the_window_never_starts_before_now() {
        let mut cal = Calibrator::new(CalibrationConfig::standard()).expect("valid");
        for _ in 0..100 {
            cal.record(60.0, 0.0);
        }
        let (lower, _) = cal.window_s(60.0);
        assert!(lower >= -60.0);
    }
}
