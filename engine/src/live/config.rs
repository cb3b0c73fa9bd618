//! The live engine's settings: the matcher, tracker, traffic and calibration
//! settings it hands down, plus its own (how often the routing metric follows the
//! traffic model, when a silent vehicle is forgotten). One plain struct, checked
//! once.

use chrono_tz::Tz;

use super::plausibility::JumpRules;
use crate::error::{Error, Result};
use crate::eta::CalibrationConfig;
use crate::matching::MatcherConfig;
use crate::tracking::TrackerConfig;
use crate::traffic::TrafficConfig;

/// Settings of a [`crate::LiveEngine`]. No `Default`: the caller knows the map's
/// time zone; [`LiveConfig::truck`] is the starting point.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    pub matcher: MatcherConfig,
    pub tracker: TrackerConfig,
    pub traffic: TrafficConfig,
    pub calibration: CalibrationConfig,
    /// The routing metric is re-derived from the traffic model at most this
    /// often, seconds (of the `now` the caller passes).
    pub recustomize_every_s: f64,
    /// An edge whose time moved by more than this share counts as changed.
    pub metric_change_ratio: f64,
    /// A vehicle silent this long has its matched chain closed and its matcher
    /// state dropped, seconds.
    pub vehicle_idle_s: f64,
    /// Whether receivers take a truck before its appointment window opens (when
    /// not, an early truck's ETA is the window's opening, `window_wait`).
    pub early_allowed: bool,
    /// The fleet is split by vehicle id into this many shards that process a
    /// batch side by side (on the rayon pool). 1 keeps everything on the
    /// caller's thread; a run is deterministic for a given number.
    pub shards: usize,
    /// What a truck can physically do between two fixes; beyond it a fix is
    /// an outlier (`implausible_jump`).
    pub plausibility: JumpRules,
    /// An order dispatched to a truck whose last fix is at most this old gets
    /// its ETAs from that fix at once (a truck waiting in a yard may report
    /// once an hour), seconds.
    pub dispatch_fix_max_age_s: f64,
}

impl LiveConfig {
    /// Truck settings: the matcher, tracker and traffic settings for trucks,
    /// the metric re-derived every 10 s, vehicles forgotten after an hour of
    /// silence (their last fix kept six hours for orders dispatched to them),
    /// early arrivals taken, one shard.
    pub fn truck(time_zone: Tz) -> LiveConfig {
        LiveConfig {
            matcher: MatcherConfig::TRUCK,
            tracker: TrackerConfig::TRUCK,
            traffic: TrafficConfig::fleet(time_zone),
            calibration: CalibrationConfig::standard(),
            recustomize_every_s: 10.0,
            metric_change_ratio: 0.02,
            vehicle_idle_s: 3600.0,
            early_allowed: true,
            shards: 1,
            plausibility: JumpRules::TRUCK,
            dispatch_fix_max_age_s: 6.0 * 3600.0,
        }
    }

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.matcher.validate()?;
        self.tracker.validate()?;
        self.traffic.validate()?;
        self.calibration.validate()?;
        self.plausibility.validate()?;
        for (setting, value) in [
            ("recustomize_every_s", self.recustomize_every_s),
            ("vehicle_idle_s", self.vehicle_idle_s),
            ("dispatch_fix_max_age_s", self.dispatch_fix_max_age_s),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::InvalidConfig {
                    setting,
                    reason: format!("must be a positive number, got {value}"),
                });
            }
        }
        if !(1..=1024).contains(&self.shards) {
            return Err(Error::InvalidConfig {
                setting: "shards",
                reason: format!("must be 1 to 1024, got {}", self.shards),
            });
        }
        if !(self.metric_change_ratio.is_finite() && self.metric_change_ratio >= 0.0) {
            return Err(Error::InvalidConfig {
                setting: "metric_change_ratio",
                reason: format!("must be zero or more, got {}", self.metric_change_ratio),
            });
        }
        Ok(())
    }
}
