//! Live evidence per edge: the last few fleet samples of an edge in a fixed ring,
//! and the robust estimate made from them (recent samples only, outliers rejected
//! around the median, a minimum count, weights that halve with age).
//!
//! Memory: only edges the fleet drove recently have a ring (72 bytes each, plus the
//! map's own overhead); the model drops rings whose samples all left the window.

use super::config::TrafficConfig;

/// Samples kept per edge. Eight recent passages are enough for a median with
/// outlier rejection; older ones carry little weight after the half-life anyway.
pub(crate) const SAMPLES_PER_EDGE: usize = 8;

/// One passage: when it ended and how fast it went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sample {
    /// Unix seconds of the exit (fits in 32 bits until 2106).
    at_s: u32,
    /// Centimetres per second (up to 655 m/s).
    speed_cmps: u16,
}

/// The recent samples of one edge, newest overwriting oldest.
#[derive(Debug, Clone, Default)]
pub(crate) struct EdgeSamples {
    samples: [Sample; SAMPLES_PER_EDGE],
    len: u8,
    next: u8,
}

/// A live estimate: pace (seconds per metre) and how much evidence backs it, in
/// fresh-sample equivalents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LiveEstimate {
    pub(crate) pace_s_per_m: f64,
    pub(crate) weight: f64,
    pub(crate) samples: usize,
}

pub(crate) fn unix_s(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

impl EdgeSamples {
    pub(crate) fn push(&mut self, at_s: i64, speed_mps: f64) {
        let sample = Sample {
            at_s: at_s.clamp(0, i64::from(u32::MAX)) as u32,
            speed_cmps: (speed_mps * 100.0).round().clamp(1.0, f64::from(u16::MAX)) as u16,
        };
        self.samples[usize::from(self.next)] = sample;
        self.next = ((usize::from(self.next) + 1) % SAMPLES_PER_EDGE) as u8;
        self.len = (usize::from(self.len) + 1).min(SAMPLES_PER_EDGE) as u8;
    }

    /// The newest sample's time, unix seconds.
    pub(crate) fn newest_s(&self) -> i64 {
        self.samples[..usize::from(self.len)]
            .iter()
            .map(|s| i64::from(s.at_s))
            .max()
            .unwrap_or(i64::MIN)
    }

    /// The robust estimate at `now_s`, or `None` when too few usable samples are
    /// in the window.
    pub(crate) fn estimate(&self, now_s: i64, config: &TrafficConfig) -> Option<LiveEstimate> {
        let mut speeds = [0.0f64; SAMPLES_PER_EDGE];
        let mut ages = [0.0f64; SAMPLES_PER_EDGE];
        let mut n = 0;
        for s in &self.samples[..usize::from(self.len)] {
            let age_s = (now_s - i64::from(s.at_s)) as f64;
            // A sample from the future (a replay running behind) counts as fresh.
            if age_s <= config.window_s {
                speeds[n] = f64::from(s.speed_cmps) / 100.0;
                ages[n] = age_s.max(0.0);
                n += 1;
            }
        }
        if n < config.min_samples {
            return None;
        }
        let mut sorted = speeds;
        let mid = median(&mut sorted[..n]);
        let mut deviations = [0.0f64; SAMPLES_PER_EDGE];
        for (d, v) in deviations.iter_mut().zip(&speeds[..n]) {
            *d = (v - mid).abs();
        }
        // 1.4826 scales the MAD to a standard deviation for normal data; the floor
        // (10 % of the median) keeps identical samples from rejecting a slightly
        // different one.
        let spread = (median(&mut deviations[..n]) * 1.4826).max(0.1 * mid);
        let limit = config.outlier_mads * spread;
        let mut weight = 0.0;
        let mut weighted_pace = 0.0;
        let mut kept = 0;
        for i in 0..n {
            if (speeds[i] - mid).abs() > limit {
                continue;
            }
            let w = 0.5f64.powf(ages[i] / config.half_life_s);
            weight += w;
            weighted_pace += w / speeds[i];
            kept += 1;
        }
        if kept < config.min_samples || weight <= 0.0 {
            return None;
        }
        Some(LiveEstimate {
            pace_s_per_m: weighted_pace / weight,
            weight,
            samples: kept,
        })
    }
}

/// Median of a non-empty slice (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn config() -> TrafficConfig {
        TrafficConfig::fleet(Tz::UTC)
    }

    #[test]
    fn one_sample_is_not_enough_and_two_agreeing_are() {
        let mut edge = EdgeSamples::default();
        edge.push(1000, 10.0);
        assert!(edge.estimate(1000, &config()).is_none());
        edge.push(1010, 10.0);
        let estimate = edge.estimate(1010, &config()).expect("two samples");
        assert!((1.0 / estimate.pace_s_per_m - 10.0).abs() < 1e-9);
        assert_eq!(estimate.samples, 2);
    }

    #[test]
    fn a_truck_that_stopped_on_the_edge_is_an_outlier() {
        let mut edge = EdgeSamples::default();
        for (i, v) in [12.0, 11.5, 12.5, 12.0, 1.0].into_iter().enumerate() {
            edge.push(1000 + i as i64, v);
        }
        let estimate = edge.estimate(1005, &config()).expect("enough samples");
        assert_eq!(estimate.samples, 4, "the 1 m/s passage is rejected");
        assert!(1.0 / estimate.pace_s_per_m > 11.0);
    }

    #[test]
    fn old_samples_leave_the_window_and_recent_ones_weigh_more() {
        let mut edge = EdgeSamples::default();
        edge.push(0, 5.0);
        edge.push(0, 5.0);
        assert!(
            edge.estimate(1801, &config()).is_none(),
            "both older than the window"
        );
        let fresh = edge.estimate(0, &config()).expect("fresh").weight;
        let aged = edge.estimate(600, &config()).expect("aged").weight;
        assert!((fresh - 2.0).abs() < 1e-9);
        assert!((aged - 1.0).abs() < 1e-9, "one half-life halves the weight");
    }

    #[test]
    fn the_ring_keeps_the_newest_samples() {
        let mut edge = EdgeSamples::default();
        for i in 0..20 {
            edge.push(i, 1.0 + i as f64);
        }
        assert_eq!(edge.newest_s(), 19);
        let estimate = edge.estimate(19, &config()).expect("full ring");
        assert_eq!(estimate.samples, SAMPLES_PER_EDGE);
    }
}
