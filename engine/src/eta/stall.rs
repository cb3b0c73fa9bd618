//! A truck that has stopped making progress towards its stop: how long it may
//! stay put. Stands are heavy-tailed — most are a light or a queue, some are a
//! lunch, a few are a night — and the best guide to how long one lasts is how
//! long it has lasted: a truck that has stood for an hour is more likely to stand
//! another hour than one that stopped a minute ago. The window reads the rest of
//! a stand that has lasted `s` from the fleet's finished stands that lasted
//! longer than `s` ([`StallTail`]), and, where there are few of those, from a
//! Lindy-type prior: the rest at a share of the stand so far. The rest is planned
//! in the ETA at its median (when `learned_median` is set) and at its 90th
//! percentile for the upper end of the window, while the lower end keeps "it
//! leaves now".

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::calibrate::quantile;

/// Settings of the stall hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StallConfig {
    /// A truck counts as stalled once it has made no progress towards its stop
    /// for this long, seconds (shorter stands are lights and queues: the pace
    /// carries them).
    pub after_s: f64,
    /// Progress that ends a stall: this many metres (of the route left) nearer
    /// the stop than where the stall began.
    pub progress_m: f64,
    /// The rest of the stand planned in the ETA, as a share of its length so
    /// far.
    pub median_share: f64,
    /// The rest of the stand at the window's upper end, as a share of its
    /// length so far (a Pareto tail of shape 1 puts its 90th percentile at 9).
    pub p90_share: f64,
    /// Whether predictions made while stalled teach the fleet's calibrator.
    pub calibrate_while_stalled: bool,
    /// Finished stalls the fleet keeps to learn from (the newest; 0: the
    /// shares alone).
    pub learn_capacity: usize,
    /// The shares weigh as much as this many finished stalls that lasted
    /// longer than the current one so far.
    pub prior_stalls: f64,
    /// Whether the ETA plans the learned median of the rest of a stall (the
    /// window's upper end always takes the learned 90th percentile).
    pub learned_median: bool,
    /// The truck's own stall rate: its finished stalls over its time on the
    /// trip, shrunk as if it had also been tracked this many seconds more
    /// without a stall.
    pub share_prior_s: f64,
    /// The stall rate is taken as at most this share of the time (a truck
    /// that stood 9 hours in 10 is not planned to stand 9 hours per hour of
    /// driving).
    pub max_share: f64,
}

impl StallConfig {
    /// Whether a stand of `stalled_s` so far is a stall.
    pub fn is_stall(&self, stalled_s: f64) -> bool {
        stalled_s.is_finite() && stalled_s >= self.after_s && stalled_s > 0.0
    }

    /// The share of its time a truck that stood `stalled_total_s` in
    /// `tracked_s` is expected to stand from here on (shrunk and capped).
    pub fn share(&self, stalled_total_s: f64, tracked_s: f64) -> f64 {
        let share = stalled_total_s / (tracked_s.max(0.0) + self.share_prior_s);
        if share.is_finite() {
            share.clamp(0.0, self.max_share)
        } else {
            0.0
        }
    }

    /// The prior's rest of a stall of `stalled_s` so far at the ETA and at
    /// p90, seconds: nothing before `after_s`.
    pub fn hold_s(&self, stalled_s: f64) -> (f64, f64) {
        if !self.is_stall(stalled_s) {
            return (0.0, 0.0);
        }
        (self.median_share * stalled_s, self.p90_share * stalled_s)
    }
}

/// The lengths of the fleet's finished stalls (the newest `learn_capacity`),
/// kept sorted: the stalls that lasted longer than `s` say how a stall that
/// has lasted `s` goes on. A stall ends when the truck makes progress again or
/// reaches its stop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StallTail {
    /// In the order they ended.
    lengths_s: VecDeque<f32>,
    /// The same, ascending (not saved: rebuilt by [`StallTail::reindex`]).
    #[serde(skip)]
    sorted: Vec<f32>,
}

impl StallTail {
    /// Rebuilds the sorted lengths from the saved ones, dropping what cannot
    /// be a stall length: for a tail read back from a save.
    pub(crate) fn reindex(&mut self) {
        self.lengths_s.retain(|l| l.is_finite() && *l > 0.0);
        self.sorted = self.lengths_s.iter().copied().collect();
        self.sorted.sort_by(f32::total_cmp);
    }

    /// Records a finished stall of `length_s` (ignored when shorter than a
    /// stall or not a number).
    pub fn record(&mut self, config: &StallConfig, length_s: f64) {
        if config.learn_capacity == 0 || !config.is_stall(length_s) {
            return;
        }
        while self.lengths_s.len() >= config.learn_capacity {
            let Some(oldest) = self.lengths_s.pop_front() else {
                break;
            };
            let at = self.sorted.partition_point(|&l| l < oldest);
            if self.sorted.get(at) == Some(&oldest) {
                self.sorted.remove(at);
            } else {
                // Out of step (a tail deserialized without `reindex`).
                self.reindex();
            }
        }
        let length = length_s as f32;
        self.lengths_s.push_back(length);
        let at = self.sorted.partition_point(|&l| l < length);
        self.sorted.insert(at, length);
    }

    /// Finished stalls kept.
    pub fn len(&self) -> usize {
        self.lengths_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths_s.is_empty()
    }

    /// The rest of a stall of `stalled_s` so far at the ETA and at p90,
    /// seconds: the median and 90th percentile of what the longer finished
    /// stalls had still to go at `stalled_s`, blended with the prior shares by
    /// how many there are. Nothing before `after_s`; the ETA's part is the
    /// prior's unless `learned_median` is set.
    pub fn hold_s(&self, config: &StallConfig, stalled_s: f64) -> (f64, f64) {
        let prior = config.hold_s(stalled_s);
        if !config.is_stall(stalled_s) {
            return prior;
        }
        let from = self.sorted.partition_point(|&l| f64::from(l) <= stalled_s);
        let longer = &self.sorted[from..];
        if longer.is_empty() {
            return prior;
        }
        let n = longer.len() as f64;
        let w = n / (n + config.prior_stalls.max(0.0));
        let rest = |q: f64| (quantile(longer, q) - stalled_s).max(0.0);
        let median = if config.learned_median {
            (1.0 - w) * prior.0 + w * rest(0.5)
        } else {
            prior.0
        };
        let p90 = (1.0 - w) * prior.1 + w * rest(0.9);
        (median, p90.max(median))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: StallConfig = StallConfig {
        after_s: 120.0,
        progress_m: 50.0,
        median_share: 0.5,
        p90_share: 4.0,
        calibrate_while_stalled: false,
        learn_capacity: 100,
        prior_stalls: 5.0,
        learned_median: true,
        share_prior_s: 1800.0,
        max_share: 0.8,
    };

    #[test]
    fn a_short_stand_is_pace_and_a_long_one_is_held_in_proportion() {
        assert_eq!(CONFIG.hold_s(60.0), (0.0, 0.0));
        assert_eq!(CONFIG.hold_s(600.0), (300.0, 2400.0));
        assert_eq!(CONFIG.hold_s(f64::NAN), (0.0, 0.0));
    }

    #[test]
    fn a_truck_that_has_stood_much_is_expected_to_stand_again_in_proportion() {
        // Half an hour standing in an hour and a half, with the half-hour
        // prior: a quarter of the time.
        assert_eq!(CONFIG.share(1800.0, 5400.0), 0.25);
        assert_eq!(CONFIG.share(0.0, 5400.0), 0.0);
        // A night's stand in a day and a bit is capped.
        assert_eq!(CONFIG.share(20.0 * 3600.0, 21.0 * 3600.0), 0.8);
        assert_eq!(CONFIG.share(f64::NAN, 60.0), 0.0);
    }

    #[test]
    fn the_fleets_finished_stalls_say_how_a_stall_goes_on() {
        let mut tail = StallTail::default();
        // Before any data, the prior.
        assert_eq!(tail.hold_s(&CONFIG, 600.0), (300.0, 2400.0));
        // Fifteen lights and queues of 3 minutes, and fifteen lunches of an
        // hour: a truck standing 2 minutes may be either, one standing 10
        // minutes is at lunch.
        for _ in 0..15 {
            tail.record(&CONFIG, 180.0);
            tail.record(&CONFIG, 3600.0);
        }
        tail.record(&CONFIG, 60.0);
        assert_eq!(tail.len(), 30, "a minute is not a stall");
        let (median, p90) = tail.hold_s(&CONFIG, 600.0);
        // 15 lunches against the prior's 5: three quarters of 3,000 s to go.
        assert!(
            (median - (0.25 * 300.0 + 0.75 * 3000.0)).abs() < 1e-6,
            "{median}"
        );
        assert!(
            (p90 - (0.25 * 2400.0 + 0.75 * 3000.0)).abs() < 1e-6,
            "{p90}"
        );
        let (short_median, short_p90) = tail.hold_s(&CONFIG, 150.0);
        assert!(
            short_median < median && short_p90 > 2000.0,
            "{short_median} {short_p90}"
        );
        // Past every finished stall, the prior again.
        assert_eq!(tail.hold_s(&CONFIG, 7200.0), (3600.0, 28_800.0));
        // The capacity keeps the newest.
        for _ in 0..100 {
            tail.record(&CONFIG, 200.0);
        }
        assert_eq!(tail.len(), 100);
        assert_eq!(tail.hold_s(&CONFIG, 600.0), (300.0, 2400.0));
    }

    #[test]
    fn a_tail_read_back_without_its_index_still_records() {
        let mut tail = StallTail::default();
        for k in 0..100 {
            tail.record(&CONFIG, 200.0 + f64::from(k));
        }
        let saved = serde_json::to_string(&tail).expect("serializes");
        let mut back: StallTail = serde_json::from_str(&saved).expect("parses");
        back.record(&CONFIG, 5000.0);
        assert_eq!(back.len(), 100);
        assert!(back.hold_s(&CONFIG, 4000.0).1 > 0.0);
        back.reindex();
        let mut fresh = tail.clone();
        fresh.record(&CONFIG, 5000.0);
        assert_eq!(back, fresh);
    }
}
