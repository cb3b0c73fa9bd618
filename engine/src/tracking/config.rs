//! The tracker's settings: when to re-route, when to publish, when a stop counts as
//! reached, how often to set progress checkpoints for calibration. One plain
//! struct, checked once.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::eta::EtaConfig;

/// Settings of a [`crate::VehicleTracker`]. No `Default`:
/// [`TrackerConfig::TRUCK`] is the starting point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackerConfig {
    /// Re-route at least this often, seconds, even on route with an unchanged
    /// metric (a faster way may have opened).
    pub reroute_max_age_s: f64,
    /// Re-route when a new metric changes the remaining drive by at least this
    /// share of it and at least `reroute_change_min_s` seconds; smaller changes
    /// only re-time the current route.
    pub reroute_change_share: f64,
    pub reroute_change_min_s: f64,
    /// Movement backwards along the route tolerated as GPS noise, metres.
    pub backtrack_m: f64,
    /// Publish an ETA when it moved by at least this many seconds ...
    pub publish_min_change_s: f64,
    /// ... or when the last one is this old, seconds.
    pub publish_max_interval_s: f64,
    /// Whether the tracker notices arrivals itself (within `arrival_radius_m`);
    /// when not, only [`crate::VehicleTracker::arrive`] ends a stop.
    pub detect_arrival: bool,
    /// A stop is reached within this many metres (along the route or straight).
    pub arrival_radius_m: f64,
    /// A truck this far from the stop it reached has left it, metres.
    pub departure_radius_m: f64,
    /// Stops are snapped to a road within this many metres.
    pub stop_snap_radius_m: f64,
    /// A truck whose fixes stay this close to one place for `standing_after_s`
    /// is standing, metres (GPS noise is not movement).
    pub standing_radius_m: f64,
    pub standing_after_s: f64,
    /// Standing longer than this is a stop, not pace, seconds. Kept below the
    /// 30-minute hours-of-service break, which the ETA plans on its own.
    pub pace_max_standing_s: f64,
    /// Fixes further apart than this do not feed the pace, seconds.
    pub pace_max_gap_s: f64,
    /// Faster than this between two fixes is a jump of the match, not driving,
    /// m/s.
    pub plausible_speed_mps: f64,
    /// A progress checkpoint is set at most this often, seconds (0: none).
    pub checkpoint_every_s: f64,
    /// At most this many points of the remaining route go into an `EtaUpdate`
    /// (for drawing; 0: none).
    pub route_points: usize,
    /// A stop's facility, when its order gives no geofence of its own: a circle
    /// of this radius round the stop's point, metres. A geocoded warehouse lies
    /// in its yard, typically 100–300 m from the street the truck waits on.
    pub geofence_radius_m: f64,
    /// A truck inside a fence at most this fast is standing or manoeuvring in
    /// the yard, not driving through, m/s.
    pub arrival_max_speed_mps: f64,
    /// Arrived: inside the next stop's fence and slow for this long, seconds.
    pub arrival_after_s: f64,
    /// Departed: outside the fence of the stop it stood at for this long,
    /// seconds.
    pub departure_after_s: f64,
    /// A later stop than the next one is arrived at (the stops between are
    /// skipped) only after standing in its fence this long, seconds: a queue
    /// near a later stop on the way must not skip the next one.
    pub skip_after_s: f64,
    /// Between a stop's point and its access point (the nearest road), the
    /// truck drives at this speed, m/s (10 km/h: yards, gates, docks).
    pub yard_speed_mps: f64,
    pub eta: EtaConfig,
}

impl TrackerConfig {
    /// Trucks: re-route every 10 minutes or on a 10 % / 60 s change; publish on a
    /// 30 s move or every 5 minutes; stops reached within 50 m (the tracker on
    /// its own); facilities 250 m round, arrived after a minute standing in
    /// them, departed after a minute out of them (the live engine).
    pub const TRUCK: TrackerConfig = TrackerConfig {
        reroute_max_age_s: 600.0,
        reroute_change_share: 0.1,
        reroute_change_min_s: 60.0,
        backtrack_m: 30.0,
        publish_min_change_s: 30.0,
        publish_max_interval_s: 300.0,
        detect_arrival: true,
        arrival_radius_m: 50.0,
        departure_radius_m: 150.0,
        stop_snap_radius_m: 500.0,
        standing_radius_m: 25.0,
        standing_after_s: 30.0,
        pace_max_standing_s: 1200.0,
        pace_max_gap_s: 600.0,
        plausible_speed_mps: 45.0,
        checkpoint_every_s: 60.0,
        route_points: 200,
        geofence_radius_m: 250.0,
        arrival_max_speed_mps: 2.0,
        arrival_after_s: 60.0,
        departure_after_s: 60.0,
        skip_after_s: 300.0,
        yard_speed_mps: 10.0 / 3.6,
        eta: EtaConfig::TRUCK,
    };

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let positive: [(&'static str, f64); 12] = [
            ("reroute_max_age_s", self.reroute_max_age_s),
            ("publish_max_interval_s", self.publish_max_interval_s),
            ("arrival_radius_m", self.arrival_radius_m),
            ("departure_radius_m", self.departure_radius_m),
            ("stop_snap_radius_m", self.stop_snap_radius_m),
            ("standing_radius_m", self.standing_radius_m),
            ("pace_max_standing_s", self.pace_max_standing_s),
            ("pace_max_gap_s", self.pace_max_gap_s),
            ("plausible_speed_mps", self.plausible_speed_mps),
            ("geofence_radius_m", self.geofence_radius_m),
            ("arrival_max_speed_mps", self.arrival_max_speed_mps),
            ("yard_speed_mps", self.yard_speed_mps),
        ];
        for (setting, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(
                    setting,
                    format!("must be a positive number, got {value}"),
                ));
            }
        }
        let non_negative: [(&'static str, f64); 9] = [
            ("reroute_change_share", self.reroute_change_share),
            ("reroute_change_min_s", self.reroute_change_min_s),
            ("backtrack_m", self.backtrack_m),
            ("publish_min_change_s", self.publish_min_change_s),
            ("checkpoint_every_s", self.checkpoint_every_s),
            ("standing_after_s", self.standing_after_s),
            ("arrival_after_s", self.arrival_after_s),
            ("departure_after_s", self.departure_after_s),
            ("skip_after_s", self.skip_after_s),
        ];
        for (setting, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(
                    setting,
                    format!("must be zero or more, got {value}"),
                ));
            }
        }
        if self.departure_radius_m < self.arrival_radius_m {
            return Err(invalid(
                "departure_radius_m",
                "must be at least arrival_radius_m".into(),
            ));
        }
        if self.skip_after_s < self.arrival_after_s {
            return Err(invalid(
                "skip_after_s",
                "must be at least arrival_after_s".into(),
            ));
        }
        self.eta.validate()
    }
}

fn invalid(setting: &'static str, reason: String) -> Error {
    Error::InvalidConfig { setting, reason }
}
