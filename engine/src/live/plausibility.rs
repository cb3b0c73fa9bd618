//! Physical plausibility per vehicle: a fix farther from the vehicle's last good
//! fix than a truck can drive in the time between them is an outlier (a GPS
//! glitch, a mis-keyed unit, a spoofed feed), not a new place. Outliers are not
//! shown, not matched and not used by the ETA; the engine hands them back so the
//! caller can count and dead-letter them (`implausible_jump`).
//!
//! A truck that really was moved while its feed was off (on a trailer, a ferry,
//! a long tunnel, a unit swapped between trucks) reports a run of fixes that
//! agree with each other at the new place: [`JumpFilter::confirm_fixes`] of them
//! in a row move the vehicle there, from the fix that completes the run.

use chrono::{DateTime, Utc};
use road_graph::{LatLon, haversine_m};

use crate::error::{Error, Result};

/// The plausibility settings. No `Default`: [`JumpRules::TRUCK`] is the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JumpRules {
    /// Faster than this between two fixes is not a truck, m/s.
    pub max_speed_mps: f64,
    /// Distance forgiven before the speed is judged, metres: two fixes seconds
    /// apart differ by GPS noise alone, and urban-canyon noise reaches 100 m.
    pub noise_m: f64,
    /// Consistent fixes in a row at a new place that relocate the vehicle.
    pub confirm_fixes: usize,
}

impl JumpRules {
    /// 200 km/h with 250 m of noise forgiven; three consistent fixes relocate.
    pub const TRUCK: JumpRules = JumpRules {
        max_speed_mps: 200.0 / 3.6,
        noise_m: 250.0,
        confirm_fixes: 3,
    };

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |setting, reason: String| Err(Error::InvalidConfig { setting, reason });
        if !(self.max_speed_mps.is_finite() && self.max_speed_mps > 0.0) {
            return bad(
                "plausibility.max_speed_mps",
                format!("must be a positive number, got {}", self.max_speed_mps),
            );
        }
        if !(self.noise_m.is_finite() && self.noise_m >= 0.0) {
            return bad(
                "plausibility.noise_m",
                format!("must be zero or more, got {}", self.noise_m),
            );
        }
        if !(1..=100).contains(&self.confirm_fixes) {
            return bad(
                "plausibility.confirm_fixes",
                format!("must be 1 to 100, got {}", self.confirm_fixes),
            );
        }
        Ok(())
    }

    /// The implied speed from `a` to `b` beyond the forgiven noise, m/s; `None`
    /// when it is plausible.
    fn excess(&self, a: &Seen, b: &Seen) -> Option<f64> {
        let distance_m = (haversine_m(a.place, b.place) - self.noise_m).max(0.0);
        let dt_s = ((b.time - a.time).num_milliseconds() as f64 / 1000.0).max(1.0);
        let speed_mps = distance_m / dt_s;
        (speed_mps > self.max_speed_mps).then_some(speed_mps)
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    time: DateTime<Utc>,
    place: LatLon,
}

/// What the filter made of a fix.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Plausible from the last good fix (or the first one seen).
    Good,
    /// The fix completes a run at a new place: the vehicle was moved.
    Relocated,
    /// Not possible for a truck; the detail says why.
    Outlier(String),
}

/// One vehicle's memory of where it plausibly is.
#[derive(Debug, Clone, Default)]
pub(crate) struct JumpFilter {
    last_good: Option<Seen>,
    /// Outliers that agree with each other, oldest first.
    run: Vec<Seen>,
}

impl JumpFilter {
    /// Judges a fix newer than every fix judged before.
    pub(crate) fn judge(
        &mut self,
        time: DateTime<Utc>,
        place: LatLon,
        rules: &JumpRules,
    ) -> Verdict {
        let seen = Seen { time, place };
        let Some(last) = self.last_good else {
            self.last_good = Some(seen);
            return Verdict::Good;
        };
        let Some(speed_mps) = rules.excess(&last, &seen) else {
            self.last_good = Some(seen);
            self.run.clear();
            return Verdict::Good;
        };
        let continues_run = self
            .run
            .last()
            .is_some_and(|prev| rules.excess(prev, &seen).is_none());
        if !continues_run {
            self.run.clear();
        }
        self.run.push(seen);
        if self.run.len() >= rules.confirm_fixes {
            self.last_good = Some(seen);
            self.run.clear();
            return Verdict::Relocated;
        }
        Verdict::Outlier(format!(
            "{:.0} m from the vehicle's last good fix {:.0} s earlier: {:.0} km/h (limit {:.0})",
            haversine_m(last.place, place),
            (time - last.time).num_milliseconds() as f64 / 1000.0,
            speed_mps * 3.6,
            rules.max_speed_mps * 3.6,
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0)
            .single()
            .expect("time")
    }

    /// About 300 km north of Baltimore.
    const FAR: LatLon = LatLon {
        lat: 42.0,
        lon: -76.6,
    };
    const HOME: LatLon = LatLon {
        lat: 39.29,
        lon: -76.61,
    };

    #[test]
    fn a_single_fix_300_km_away_is_an_outlier_and_the_truck_stays() {
        let rules = JumpRules::TRUCK;
        let mut f = JumpFilter::default();
        assert_eq!(f.judge(at(0), HOME, &rules), Verdict::Good);
        assert!(matches!(f.judge(at(30), FAR, &rules), Verdict::Outlier(_)));
        // Back home: plausible from the last good fix, so the glitch is forgotten.
        assert_eq!(f.judge(at(60), HOME, &rules), Verdict::Good);
        assert!(matches!(f.judge(at(90), FAR, &rules), Verdict::Outlier(_)));
    }

    #[test]
    fn a_run_of_consistent_fixes_at_a_new_place_relocates_the_truck() {
        let rules = JumpRules::TRUCK;
        let mut f = JumpFilter::default();
        f.judge(at(0), HOME, &rules);
        assert!(matches!(f.judge(at(30), FAR, &rules), Verdict::Outlier(_)));
        assert!(matches!(f.judge(at(60), FAR, &rules), Verdict::Outlier(_)));
        assert_eq!(f.judge(at(90), FAR, &rules), Verdict::Relocated);
        assert_eq!(f.judge(at(120), FAR, &rules), Verdict::Good);
    }

    #[test]
    fn fast_driving_and_gps_noise_are_not_jumps() {
        let rules = JumpRules::TRUCK;
        let mut f = JumpFilter::default();
        f.judge(at(0), HOME, &rules);
        // 100 km/h for an hour is about 0.9° of latitude.
        let later = LatLon {
            lat: HOME.lat + 0.9,
            lon: HOME.lon,
        };
        assert_eq!(f.judge(at(3600), later, &rules), Verdict::Good);
        // 200 m of noise one second later.
        let noisy = LatLon {
            lat: later.lat + 0.0018,
            lon: later.lon,
        };
        assert_eq!(f.judge(at(3601), noisy, &rules), Verdict::Good);
    }

    #[test]
    fn outliers_that_disagree_with_each_other_never_relocate() {
        let rules = JumpRules::TRUCK;
        let mut f = JumpFilter::default();
        f.judge(at(0), HOME, &rules);
        for (i, lat) in [42.0, 35.0, 42.0, 35.0, 42.0].into_iter().enumerate() {
            let place = LatLon { lat, lon: -76.6 };
            let verdict = f.judge(at(30 * (i as i64 + 1)), place, &rules);
            assert!(matches!(verdict, Verdict::Outlier(_)), "{i}: {verdict:?}");
        }
    }
}
