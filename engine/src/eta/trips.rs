//! Percentiles where every trip weighs the same: the calibrator's errors and
//! the window's coverage scores both come in runs (one truck's predictions a
//! minute apart tell one story many times), so a bucket of them is read trip
//! by trip, and a bucket backed by few trips leans on its shorter neighbour and
//! a prior.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The newest values of one horizon bucket, each with the trip it came from,
/// and their trip-weighted 10th and 90th percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct TripBucket {
    /// The newest values and the trip each came from.
    errors: VecDeque<(f32, u64)>,
    /// Percentiles of `errors`, each trip weighing the same, refreshed by
    /// [`TripBucket::refresh`].
    q10: f64,
    q90: f64,
    /// Distinct trips among `errors`.
    trips: usize,
    recorded: u64,
}

impl TripBucket {
    /// Keeps `value` of `trip`, dropping the oldest beyond `capacity`. The
    /// percentiles wait for [`TripBucket::refresh`].
    pub(super) fn push(&mut self, value: f64, trip: u64, capacity: usize) {
        while self.errors.len() >= capacity.max(1) {
            self.errors.pop_front();
        }
        self.errors.push_back((value as f32, trip));
        self.recorded += 1;
    }

    /// Drops non-finite values and those beyond `capacity` (a save read back),
    /// then refreshes.
    pub(super) fn sanitize(&mut self, capacity: usize, full: f64) {
        self.errors.retain(|(e, _)| e.is_finite());
        while self.errors.len() > capacity {
            self.errors.pop_front();
        }
        self.refresh(full);
    }

    /// Recomputes the trip count and the percentiles, every trip weighing the
    /// same whatever its number of values once it has `full` of them.
    pub(super) fn refresh(&mut self, full: f64) {
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for &(_, trip) in &self.errors {
            *counts.entry(trip).or_default() += 1;
        }
        self.trips = counts.len();
        let mut weighted: Vec<(f32, f64)> = self
            .errors
            .iter()
            .map(|&(e, trip)| (e, 1.0 / (counts[&trip] as f64).max(full)))
            .collect();
        weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.q10 = weighted_quantile(&weighted, 0.1);
        self.q90 = weighted_quantile(&weighted, 0.9);
    }

    pub(super) fn len(&self) -> usize {
        self.errors.len()
    }

    pub(super) fn trips(&self) -> usize {
        self.trips
    }

    pub(super) fn recorded(&self) -> u64 {
        self.recorded
    }
}

/// The 10th and 90th percentiles of the last of `buckets` (shortest horizon
/// first), each blended with what the one before says, and the first with
/// `prior`: `prior_trips` is how many trips the prior (or the shorter
/// neighbour) weighs against a bucket's own. Long horizons are rarer, and what
/// is measured relative to the time to go changes slowly with it, so an empty
/// bucket borrows from its neighbour rather than from a guess.
pub(super) fn blended_quantiles(
    buckets: &[TripBucket],
    prior: (f64, f64),
    prior_trips: f64,
) -> (f64, f64) {
    let k = prior_trips;
    let mut q = prior;
    for bucket in buckets.iter().filter(|b| b.trips > 0) {
        let n = bucket.trips as f64;
        q = (
            (k * q.0 + n * bucket.q10) / (k + n),
            (k * q.1 + n * bucket.q90) / (k + n),
        );
    }
    q
}

/// Quantile of values sorted ascending with weights: each value stands at the
/// middle of its weight on the cumulative scale, linear in between.
fn weighted_quantile(sorted: &[(f32, f64)], q: f64) -> f64 {
    let total: f64 = sorted.iter().map(|&(_, w)| w).sum();
    if sorted.is_empty() || total <= 0.0 {
        return 0.0;
    }
    let target = q * total;
    let mut cumulative = 0.0;
    let mut previous: Option<(f64, f64)> = None;
    for &(value, weight) in sorted {
        let at = cumulative + weight / 2.0;
        cumulative += weight;
        let value = f64::from(value);
        if at >= target {
            return match previous {
                Some((p_at, p_value)) if at > p_at => {
                    p_value + (value - p_value) * (target - p_at) / (at - p_at)
                }
                _ => value,
            };
        }
        previous = Some((at, value));
    }
    previous.map_or(0.0, |(_, v)| v)
}
