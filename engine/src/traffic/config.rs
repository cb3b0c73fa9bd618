//! The traffic model's settings: how long a fleet sample counts, how fast live
//! evidence fades back to the learned profile, and which samples are not traffic at
//! all. One plain struct; the binary builds it (from [`TrafficConfig::fleet`] and
//! flags) and [`TrafficConfig::validate`] checks it once.

use chrono_tz::Tz;

use crate::error::{Error, Result};

/// Settings of the [`crate::TrafficModel`]. No `Default`: the caller knows the
/// map's time zone; [`TrafficConfig::fleet`] gives the settings for truck fleets.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficConfig {
    /// Samples older than this no longer count as live, seconds.
    pub window_s: f64,
    /// Live evidence loses half its weight every this many seconds, so an edge's
    /// speed slides back to its profile once the fleet stops driving it.
    pub half_life_s: f64,
    /// An edge needs at least this many samples (after outlier rejection) inside
    /// the window before its live estimate is used at all.
    pub min_samples: usize,
    /// Shrinkage: fresh evidence worth this many samples has half the say against
    /// the profile (weight `w / (w + prior_samples)`).
    pub prior_samples: f64,
    /// Samples farther than this many (scaled) median absolute deviations from an
    /// edge's median speed are outliers: a truck that stopped to deliver, or a
    /// matching mistake.
    pub outlier_mads: f64,
    /// Samples slower than this are a vehicle standing still, not traffic, km/h.
    pub min_speed_kph: f64,
    /// Samples faster than this are timing errors, km/h.
    pub max_speed_kph: f64,
    /// Passages shorter than this are too short to time, seconds.
    pub min_duration_s: f64,
    /// A passage must cover at least this share of its edge.
    pub min_coverage: f64,
    /// External feed values older than this are ignored, seconds.
    pub feed_max_age_s: f64,
    /// A fresh external feed value counts as this many fleet samples.
    pub feed_samples: f64,
    /// Profile cells (class and hour of week, or one edge) need this many samples
    /// of history to move half way from the default.
    pub profile_prior_samples: f64,
    /// The hour-of-week profile is re-learned from every accepted passage so
    /// far this often, seconds of device time (0: the profile stays as given).
    pub profile_relearn_every_s: f64,
    /// The map's time zone: the hour-of-week profile is learned and read in it.
    pub time_zone: Tz,
}

impl TrafficConfig {
    /// Settings for a truck fleet: samples count for 30 minutes, evidence halves
    /// every 10 minutes, two samples make a live estimate.
    pub fn fleet(time_zone: Tz) -> TrafficConfig {
        TrafficConfig {
            window_s: 1800.0,
            half_life_s: 600.0,
            min_samples: 2,
            prior_samples: 1.0,
            outlier_mads: 3.0,
            min_speed_kph: 2.0,
            max_speed_kph: 160.0,
            min_duration_s: 1.0,
            min_coverage: 0.5,
            feed_max_age_s: 900.0,
            feed_samples: 2.0,
            profile_prior_samples: 5.0,
            profile_relearn_every_s: 3600.0,
            time_zone,
        }
    }

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let positive: [(&'static str, f64); 6] = [
            ("window_s", self.window_s),
            ("half_life_s", self.half_life_s),
            ("outlier_mads", self.outlier_mads),
            ("max_speed_kph", self.max_speed_kph),
            ("feed_max_age_s", self.feed_max_age_s),
            ("prior_samples", self.prior_samples),
        ];
        for (setting, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(
                    setting,
                    format!("must be a positive number, got {value}"),
                ));
            }
        }
        let non_negative: [(&'static str, f64); 5] = [
            ("min_speed_kph", self.min_speed_kph),
            ("min_duration_s", self.min_duration_s),
            ("feed_samples", self.feed_samples),
            ("profile_prior_samples", self.profile_prior_samples),
            ("profile_relearn_every_s", self.profile_relearn_every_s),
        ];
        for (setting, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(
                    setting,
                    format!("must be zero or more, got {value}"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.min_coverage) {
            return Err(invalid(
                "min_coverage",
                format!("must be in 0..=1, got {}", self.min_coverage),
            ));
        }
        if self.min_speed_kph >= self.max_speed_kph {
            return Err(invalid(
                "min_speed_kph",
                "must be below max_speed_kph".into(),
            ));
        }
        if self.min_samples == 0 || self.min_samples > super::live::SAMPLES_PER_EDGE {
            return Err(invalid(
                "min_samples",
                format!("must be in 1..={}", super::live::SAMPLES_PER_EDGE),
            ));
        }
        Ok(())
    }
}

fn invalid(setting: &'static str, reason: String) -> Error {
    Error::InvalidConfig { setting, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_settings_are_valid_and_bad_ones_are_named() {
        let good = TrafficConfig::fleet(Tz::UTC);
        assert!(good.validate().is_ok());
        let mut bad = good.clone();
        bad.half_life_s = 0.0;
        let err = bad.validate().expect_err("zero half-life");
        assert!(err.to_string().contains("half_life_s"), "{err}");
        let mut bad = good;
        bad.min_samples = 99;
        assert!(
            bad.validate()
                .expect_err("too many")
                .to_string()
                .contains("min_samples")
        );
    }
}
