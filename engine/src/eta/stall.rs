//! A truck that has stopped making progress towards its stop: how long it may
//! stay put. Stands are heavy-tailed — most are a light or a queue, some are a
//! lunch, a few are a night — and the best guide to how long one lasts is how
//! long it has lasted: a truck that has stood for an hour is more likely to stand
//! another hour than one that stopped a minute ago. The window reads the stand
//! so far as a Lindy-type tail: the rest of it is planned at a share of its
//! length for the ETA and at larger shares for the upper end of the window,
//! while the lower end keeps "it leaves now".

use serde::{Deserialize, Serialize};

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
}

impl StallConfig {
    /// The rest of a stall of `stalled_s` so far at the ETA and at p90, seconds:
    /// nothing before `after_s`.
    pub fn hold_s(&self, stalled_s: f64) -> (f64, f64) {
        if !(stalled_s.is_finite() && stalled_s >= self.after_s && stalled_s > 0.0) {
            return (0.0, 0.0);
        }
        (self.median_share * stalled_s, self.p90_share * stalled_s)
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
    };

    #[test]
    fn a_short_stand_is_pace_and_a_long_one_is_held_in_proportion() {
        assert_eq!(CONFIG.hold_s(60.0), (0.0, 0.0));
        assert_eq!(CONFIG.hold_s(600.0), (300.0, 2400.0));
        assert_eq!(CONFIG.hold_s(f64::NAN), (0.0, 0.0));
    }
}
