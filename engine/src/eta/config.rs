//! The ETA's settings: default dwell, the hours-of-service rules, when traffic is
//! worth naming as a reason, how the truck's pace is carried forward and how its
//! driving is read from fixes. One plain struct, checked once.

use serde::{Deserialize, Serialize};

use super::dwell::DwellConfig;
use super::hos::{HosObservation, HosRules};
use super::pace::PaceConfig;
use super::stall::StallConfig;
use crate::error::{Error, Result};

/// Settings of the ETA. No `Default`: [`EtaConfig::TRUCK`] is the starting point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EtaConfig {
    /// Dwell at an intermediate stop when the stop has none of its own: the
    /// default, and how the fleet's own dwells take over from it.
    pub dwell: DwellConfig,
    pub hos: HosRules,
    /// How driving and standing are read from fixes when the ELD has no clocks.
    pub hos_observation: HosObservation,
    /// `traffic` is a reason when live traffic moves the drive by at least this
    /// many seconds and this share of the free-flow drive.
    pub traffic_reason_min_s: f64,
    pub traffic_reason_min_share: f64,
    pub pace: PaceConfig,
    /// How a truck that stopped making progress is held in the ETA and its
    /// window.
    pub stall: StallConfig,
}

impl EtaConfig {
    /// US property-carrying trucks: 45-minute dwell until the fleet shows its own, the FMCSA rules, traffic
    /// named from 2 minutes and 5 %.
    pub const TRUCK: EtaConfig = EtaConfig {
        dwell: DwellConfig {
            default_s: 2700.0,
            learn_capacity: 500,
            prior_dwells: 5.0,
            min_s: 60.0,
            max_s: 86_400.0,
        },
        hos: HosRules::US_PROPERTY,
        hos_observation: HosObservation {
            max_gap_s: 300.0,
            moving_mps: 1.0,
            gap_speed_mps: 15.0,
        },
        traffic_reason_min_s: 120.0,
        traffic_reason_min_share: 0.05,
        pace: PaceConfig {
            memory_s: 1800.0,
            prior_s: 300.0,
            persistence: 0.9,
            min_ratio: 0.2,
            max_ratio: 10.0,
        },
        stall: StallConfig {
            after_s: 120.0,
            progress_m: 50.0,
            median_share: 0.0,
            p90_share: 9.0,
            calibrate_while_stalled: false,
            learn_capacity: 1000,
            prior_stalls: 5.0,
            learned_median: false,
            share_prior_s: 1800.0,
            max_share: 0.8,
        },
    };

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let positive: [(&'static str, f64); 10] = [
            ("hos.max_drive_s", self.hos.max_drive_s),
            ("hos.duty_window_s", self.hos.duty_window_s),
            ("hos.break_after_drive_s", self.hos.break_after_drive_s),
            ("hos.break_s", self.hos.break_s),
            ("hos.reset_s", self.hos.reset_s),
            ("hos_observation.max_gap_s", self.hos_observation.max_gap_s),
            (
                "hos_observation.gap_speed_mps",
                self.hos_observation.gap_speed_mps,
            ),
            ("pace.memory_s", self.pace.memory_s),
            ("pace.min_ratio", self.pace.min_ratio),
            ("pace.max_ratio", self.pace.max_ratio),
        ];
        for (setting, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(
                    setting,
                    format!("must be a positive number, got {value}"),
                ));
            }
        }
        let non_negative: [(&'static str, f64); 14] = [
            ("dwell.default_s", self.dwell.default_s),
            ("dwell.min_s", self.dwell.min_s),
            ("dwell.max_s", self.dwell.max_s),
            ("dwell.prior_dwells", self.dwell.prior_dwells),
            ("traffic_reason_min_s", self.traffic_reason_min_s),
            ("traffic_reason_min_share", self.traffic_reason_min_share),
            ("pace.prior_s", self.pace.prior_s),
            ("stall.after_s", self.stall.after_s),
            ("stall.progress_m", self.stall.progress_m),
            ("stall.median_share", self.stall.median_share),
            ("stall.p90_share", self.stall.p90_share),
            ("stall.prior_stalls", self.stall.prior_stalls),
            ("stall.share_prior_s", self.stall.share_prior_s),
            (
                "hos_observation.moving_mps",
                self.hos_observation.moving_mps,
            ),
        ];
        for (setting, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(
                    setting,
                    format!("must be zero or more, got {value}"),
                ));
            }
        }
        if self.dwell.max_s < self.dwell.min_s {
            return Err(invalid(
                "dwell.max_s",
                "must be at least dwell.min_s".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.pace.persistence) {
            return Err(invalid("pace.persistence", "must be in 0..=1".into()));
        }
        if !(0.0..1.0).contains(&self.stall.max_share) {
            return Err(invalid("stall.max_share", "must be in 0..1".into()));
        }
        if self.stall.p90_share < self.stall.median_share {
            return Err(invalid(
                "stall.p90_share",
                "must be at least stall.median_share".into(),
            ));
        }
        if self.pace.min_ratio > 1.0 || self.pace.max_ratio < 1.0 {
            return Err(invalid(
                "pace.min_ratio",
                "the ratio bounds must surround 1".into(),
            ));
        }
        Ok(())
    }
}

fn invalid(setting: &'static str, reason: String) -> Error {
    Error::InvalidConfig { setting, reason }
}
