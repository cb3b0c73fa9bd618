//! The ETA of every remaining stop of an order, from the drive times the router
//! gives on the current metric, played forward on a timeline: the truck's own
//! pace, hours-of-service breaks, appointment windows and dwell, then the
//! uncertainty window from the calibrator.
//!
//! A pure function of its input and `now`: the tracker calls it on every fix, so
//! it does no routing and no allocation beyond its output.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::calibrate::{Calibrator, OwnQuantiles};
use super::config::EtaConfig;
use super::hos::{HosClocks, HosStop};
use super::window::StopPlan;
use crate::events::EtaReason;

/// The drive to one stop from the previous one (or from the truck for the first).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    /// Drive time on the current (traffic) metric, seconds.
    pub drive_s: f64,
    /// Drive time of the same path at free flow, seconds.
    pub free_flow_s: f64,
    pub distance_m: f64,
}

/// Everything the ETA depends on.
#[derive(Debug, Clone, Copy)]
pub struct EtaInput<'a> {
    pub now: DateTime<Utc>,
    /// One leg per remaining stop, in order.
    pub legs: &'a [Leg],
    pub stops: &'a [StopPlan],
    pub hos: HosClocks,
    /// The truck's pace against the metric (see [`super::PaceEstimator`]).
    pub pace_factor: f64,
    /// The truck is at a stop until then (dwell in progress); `None` when driving.
    pub departs_at: Option<DateTime<Utc>>,
    /// The vehicle's own error percentiles, blended into the fleet's window.
    pub own: Option<&'a OwnQuantiles>,
}

/// The predicted arrival at one stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopEta {
    /// When the stop can be served: the arrival, or the window's opening for an
    /// early truck that must wait.
    pub eta: DateTime<Utc>,
    pub p10: DateTime<Utc>,
    pub p90: DateTime<Utc>,
    /// When the truck reaches the stop (before any wait).
    pub arrival: DateTime<Utc>,
    /// Remaining driving and distance from the truck to this stop (pace applied).
    pub drive_s: f64,
    pub distance_m: f64,
    /// Live traffic against free flow on the way here, seconds (negative when
    /// faster).
    pub traffic_s: f64,
    /// Hours-of-service stops on the way here, seconds.
    pub hos_break_s: f64,
    /// Dwell at earlier stops on the way here, seconds.
    pub dwell_s: f64,
    /// Waiting for appointment windows, at earlier stops and this one, seconds.
    pub wait_s: f64,
    /// The truck reaches the stop after its window closes.
    pub late: bool,
    pub reasons: Vec<EtaReason>,
}

/// The ETAs of the remaining stops; stops beyond the legs given get none.
pub fn estimate_stops(
    input: &EtaInput<'_>,
    config: &EtaConfig,
    calibrator: &Calibrator,
) -> Vec<StopEta> {
    let rules = &config.hos;
    let pace = if input.pace_factor.is_finite() && input.pace_factor > 0.0 {
        input.pace_factor
    } else {
        1.0
    };
    let mut hos = input.hos;
    let mut hos_stops: Vec<HosStop> = Vec::new();
    // Seconds after `now` on the timeline.
    let mut t_s = 0.0;
    if let Some(departs) = input.departs_at {
        let dwell_left_s = seconds(departs - input.now).max(0.0);
        hos.rest(rules, dwell_left_s);
        t_s += dwell_left_s;
    }
    let (mut drive_s, mut distance_m, mut traffic_s, mut free_s) = (0.0, 0.0, 0.0, 0.0);
    let (mut hos_break_s, mut dwell_s, mut wait_s) = (0.0, 0.0, 0.0);
    let mut etas = Vec::with_capacity(input.legs.len().min(input.stops.len()));
    for (i, (leg, stop)) in input.legs.iter().zip(input.stops).enumerate() {
        let leg_drive_s = leg.drive_s.max(0.0) * pace;
        hos_stops.clear();
        let elapsed_s = hos.drive(rules, leg_drive_s, &mut hos_stops);
        hos_break_s += hos_stops.iter().map(|s| s.duration_s).sum::<f64>();
        t_s += elapsed_s;
        drive_s += leg_drive_s;
        distance_m += leg.distance_m.max(0.0);
        traffic_s += leg.drive_s - leg.free_flow_s;
        free_s += leg.free_flow_s;

        let arrival_s = t_s;
        let arrival = input.now + millis(arrival_s);
        let mut eta = arrival;
        let mut late = false;
        if let Some(window) = stop.window {
            if !stop.early_allowed && arrival < window.from {
                let wait = seconds(window.from - arrival);
                wait_s += wait;
                t_s += wait;
                hos.rest(rules, wait);
                eta = window.from;
            }
            late = arrival > window.to;
        }

        // The window is learned on arrival times; an early truck that waits is
        // served at the opening however early it comes.
        let (lower_s, upper_s) = calibrator.window_with_s(arrival_s, input.own);
        let mut p10 = arrival + millis(lower_s);
        let mut p90 = arrival + millis(upper_s);
        if let Some(window) = stop.window.filter(|_| !stop.early_allowed) {
            p10 = p10.max(window.from);
            p90 = p90.max(window.from);
        }

        let mut reasons = Vec::new();
        if traffic_s.abs() >= config.traffic_reason_min_s
            && traffic_s.abs() >= config.traffic_reason_min_share * free_s
        {
            reasons.push(EtaReason::Traffic);
        }
        if hos_break_s > 0.0 {
            reasons.push(EtaReason::HosBreak);
        }
        if dwell_s > 0.0 {
            reasons.push(EtaReason::Dwell);
        }
        if wait_s > 0.0 {
            reasons.push(EtaReason::WindowWait);
        }
        etas.push(StopEta {
            eta,
            p10: p10.min(eta),
            p90: p90.max(eta),
            arrival,
            drive_s,
            distance_m,
            traffic_s,
            hos_break_s,
            dwell_s,
            wait_s,
            late,
            reasons,
        });

        // Dwell before leaving for the next stop.
        if i + 1 < input.legs.len().min(input.stops.len()) {
            let dwell = stop.dwell_s.unwrap_or(config.default_dwell_s).max(0.0);
            dwell_s += dwell;
            t_s += dwell;
            hos.rest(rules, dwell);
        }
    }
    etas
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn millis(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0).round() as i64)
}
