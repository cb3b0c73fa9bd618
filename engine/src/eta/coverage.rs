//! The window's coverage, learned by horizon: where the fleet's arrivals fell
//! in the windows it was given, and the scale that makes the next windows hold
//! 80 % of arrivals at that horizon.
//!
//! The percentiles of the errors ([`super::Calibrator::quantiles`]) are only
//! part of a published window: the truck's own errors widen it, a stall's tail
//! holds its upper end, rests spread it. What comes out covers more or less
//! than the 80 % the p10–p90 promises, and by how much depends on the horizon
//! (near the stop a stall's tail weighs more against the little drive left).
//! So every published window closed at an arrival is scored against the window
//! as it was before this scale (the *unscaled* window): the score is the
//! arrival's offset from the ETA as a share of the unscaled half-width on its
//! side, negative when early. The scale for a side is then the trip-weighted
//! percentile of the scores (the 90th for the upper end, minus the 10th for the
//! lower end): split conformal calibration, run online. Scores are measured
//! against the unscaled window, so the scale never feeds back on itself, and an
//! arrival only teaches windows published after it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::calibrate::{CalibrationConfig, Horizon};
use super::trips::{TripBucket, blended_quantiles};

/// Where one arrival fell in a window published before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowOutcome {
    /// The prediction the window was published with (its horizon and trip).
    pub predicted: Horizon,
    /// The arrival minus the ETA, as a share of the unscaled window's
    /// half-width on that side: in −1..=1 when the unscaled window held it.
    pub score: f64,
}

impl WindowOutcome {
    /// The outcome of a window whose unscaled ends lay `unscaled_s` (lower,
    /// upper; both ≥ 0) seconds from the ETA, for an arrival `error_s` after
    /// the ETA (negative: before). `None` for nonsense.
    pub fn new(predicted: Horizon, error_s: f64, unscaled_s: (f64, f64)) -> Option<WindowOutcome> {
        let (lower_s, upper_s) = unscaled_s;
        if !(error_s.is_finite() && lower_s.is_finite() && upper_s.is_finite()) {
            return None;
        }
        // A side of under a second (a lower end clipped at now) scores an
        // arrival on it against one second, not against nothing.
        let side_s = if error_s >= 0.0 { upper_s } else { lower_s };
        Some(WindowOutcome {
            predicted,
            score: error_s / side_s.max(1.0),
        })
    }
}

/// The scores per horizon bucket (the calibrator's buckets, by the uncertain
/// part of the prediction).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct CoverageScales {
    buckets: Vec<TripBucket>,
}

/// A window is never stretched by more than this: a bucket whose windows
/// missed wildly says the windows are wrong, and a hundredfold window says
/// nothing to a customer either.
const MAX_SCALE: f64 = 20.0;

impl CoverageScales {
    pub(super) fn new(n_buckets: usize) -> CoverageScales {
        CoverageScales {
            buckets: vec![TripBucket::default(); n_buckets],
        }
    }

    /// Records closed windows; `bucket_of` maps a prediction's uncertain
    /// seconds to its bucket. A trip keeps at most `trip_full_samples` scores
    /// per bucket and call, evenly spread over its own (one arrival closes
    /// every window the trip was given, hundreds at a short horizon), so a
    /// bucket's capacity holds many trips rather than the last few.
    pub(super) fn record_all(
        &mut self,
        config: &CalibrationConfig,
        bucket_of: impl Fn(f64) -> usize,
        outcomes: impl IntoIterator<Item = WindowOutcome>,
    ) {
        let mut groups: Vec<((usize, u64), Vec<f64>)> = Vec::new();
        let mut index: HashMap<(usize, u64), usize> = HashMap::new();
        for outcome in outcomes {
            if !(outcome.score.is_finite() && outcome.predicted.uncertain_s.is_finite()) {
                continue;
            }
            let key = (
                bucket_of(outcome.predicted.uncertain_s.max(0.0)),
                outcome.predicted.trip,
            );
            let at = *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[at].1.push(outcome.score);
        }
        let keep = config.trip_full_samples.max(1.0) as usize;
        let mut touched = vec![false; self.buckets.len()];
        for ((b, trip), scores) in groups {
            let Some(bucket) = self.buckets.get_mut(b) else {
                continue;
            };
            let n = scores.len();
            let kept = n.min(keep);
            for i in 0..kept {
                bucket.push(scores[i * n / kept], trip, config.capacity);
            }
            touched[b] = true;
        }
        let full = config.trip_full_samples;
        for (bucket, _) in self.buckets.iter_mut().zip(touched).filter(|(_, t)| *t) {
            bucket.refresh(full);
        }
    }

    /// The scales of the lower and upper half-widths for bucket `b`: `(1, 1)`
    /// before any outcome, then the scores' 10th and 90th percentiles, blended
    /// with the shorter buckets' and that prior.
    pub(super) fn scales(&self, config: &CalibrationConfig, b: usize) -> (f64, f64) {
        let upto = (b + 1).min(self.buckets.len());
        let (q10, q90) = blended_quantiles(&self.buckets[..upto], (-1.0, 1.0), config.prior_trips);
        ((-q10).clamp(0.0, MAX_SCALE), q90.clamp(0.0, MAX_SCALE))
    }

    /// Trips behind bucket `b`'s scores.
    pub(super) fn trips(&self, b: usize) -> usize {
        self.buckets.get(b).map_or(0, TripBucket::trips)
    }

    /// Checked against the number of buckets it is to serve (a save made
    /// before the scales were learned has none: it starts afresh), cleaned.
    pub(super) fn restored(mut self, config: &CalibrationConfig) -> Option<CoverageScales> {
        let n = config.bucket_max_s.len() + 1;
        if self.buckets.is_empty() {
            return Some(CoverageScales::new(n));
        }
        if self.buckets.len() != n {
            return None;
        }
        for bucket in &mut self.buckets {
            bucket.sanitize(config.capacity, config.trip_full_samples);
        }
        Some(self)
    }
}
