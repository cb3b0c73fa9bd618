//! How long the fleet's trucks stay at the stops they leave again (pickups and
//! other intermediate stops): the dwell an ETA plans at a stop that has none
//! of its own. Dwell is skewed — most loads take half an hour, a few take
//! half a day — so the learned value is the median of the newest finished
//! dwells, blended in log space with the configured default, which weighs as
//! `prior_dwells` of them: a fleet that loads in five minutes is planned at
//! five minutes once it has shown it a few dozen times, not after one lucky
//! stop. Per location and per shipper is for later; the fleet's is the
//! default they will lean on.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::calibrate::quantile;

/// Settings of the learned dwell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DwellConfig {
    /// Dwell at an intermediate stop when the stop has none of its own and
    /// nothing is learned yet, seconds.
    pub default_s: f64,
    /// Finished dwells kept to learn from (the newest; 0: the default alone).
    pub learn_capacity: usize,
    /// The default weighs as much as this many finished dwells.
    pub prior_dwells: f64,
    /// Dwells shorter than this are a truck passing by its stop, not a stop,
    /// seconds; longer than `max_s` are a truck parked for the weekend.
    pub min_s: f64,
    pub max_s: f64,
}

/// The fleet's finished dwells (the newest `learn_capacity`), in the order
/// they ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DwellHistory {
    lengths_s: VecDeque<f32>,
    /// The median of `lengths_s`, refreshed when one is recorded (not saved:
    /// `sanitize` refreshes it): the ETA reads it on every fix.
    #[serde(skip)]
    median_s: Option<f64>,
}

impl DwellHistory {
    /// Records a finished dwell (ignored when outside `min_s..=max_s` or not
    /// a number).
    pub fn record(&mut self, config: &DwellConfig, length_s: f64) {
        if config.learn_capacity == 0
            || !(length_s.is_finite() && length_s >= config.min_s && length_s <= config.max_s)
        {
            return;
        }
        while self.lengths_s.len() >= config.learn_capacity {
            self.lengths_s.pop_front();
        }
        self.lengths_s.push_back(length_s as f32);
        self.median_s = Some(self.median_now());
    }

    fn median_now(&self) -> f64 {
        let mut sorted: Vec<f32> = self.lengths_s.iter().copied().collect();
        sorted.sort_by(f32::total_cmp);
        quantile(&sorted, 0.5)
    }

    /// Finished dwells kept.
    pub fn len(&self) -> usize {
        self.lengths_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths_s.is_empty()
    }

    /// The dwells kept, seconds, oldest first.
    pub fn lengths_s(&self) -> impl Iterator<Item = f64> + '_ {
        self.lengths_s.iter().map(|&l| f64::from(l))
    }

    /// The dwell to plan at a stop with none of its own, seconds.
    pub fn dwell_s(&self, config: &DwellConfig) -> f64 {
        let default_s = config.default_s.max(0.0);
        if self.lengths_s.is_empty() || default_s <= 0.0 {
            return default_s;
        }
        // Refreshed on every record; computed here only for a history read
        // back without `sanitize`.
        let median_s = self.median_s.unwrap_or_else(|| self.median_now()).max(1.0);
        let n = self.lengths_s.len() as f64;
        let k = config.prior_dwells.max(0.0);
        let log = (k * default_s.ln() + n * median_s.ln()) / (k + n);
        if log.is_finite() {
            log.exp()
        } else {
            default_s
        }
    }

    /// Drops what cannot be a dwell (for a history read back from a save).
    pub(crate) fn sanitize(&mut self) {
        self.lengths_s.retain(|l| l.is_finite() && *l > 0.0);
        self.median_s = (!self.lengths_s.is_empty()).then(|| self.median_now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: DwellConfig = DwellConfig {
        default_s: 2700.0,
        learn_capacity: 100,
        prior_dwells: 5.0,
        min_s: 60.0,
        max_s: 86_400.0,
    };

    #[test]
    fn the_default_holds_until_the_fleet_has_shown_its_own_dwell() {
        let mut history = DwellHistory::default();
        assert_eq!(history.dwell_s(&CONFIG), 2700.0);
        history.record(&CONFIG, 300.0);
        let one = history.dwell_s(&CONFIG);
        assert!(one > 1500.0, "one quick load is not a habit: {one}");
        for _ in 0..99 {
            history.record(&CONFIG, 300.0);
        }
        let many = history.dwell_s(&CONFIG);
        assert!(many > 300.0 && many < 400.0, "a hundred are: {many}");
    }

    #[test]
    fn drive_bys_and_weekends_are_not_dwells_and_the_oldest_make_room() {
        let mut history = DwellHistory::default();
        history.record(&CONFIG, 20.0);
        history.record(&CONFIG, 3.0 * 86_400.0);
        history.record(&CONFIG, f64::NAN);
        assert!(history.is_empty());
        for k in 0..150 {
            history.record(&CONFIG, 600.0 + f64::from(k));
        }
        assert_eq!(history.len(), 100);
        let dwell = history.dwell_s(&CONFIG);
        assert!(dwell > 600.0 && dwell < 900.0, "{dwell}");
    }
}
