//! The ETA of every remaining stop of an order, from the drive times the router
//! gives on the current metric, played forward on a timeline: the truck's own
//! pace, hours-of-service breaks, appointment windows and dwell, then the
//! uncertainty window from the calibrator.
//!
//! The window is not an offset around the ETA: the uncertain parts (driving and
//! dwell) are stretched to their 10th and 90th percentiles and the whole timeline
//! is played again, so a drive that may or may not run into the end of the
//! driver's 11 hours gets a p90 after the 10-hour reset, and an early truck's p10
//! still waits for its window.
//!
//! A pure function of its input and `now`: the tracker calls it on every fix, so
//! it does no routing and allocates only its output.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::calibrate::{Calibrator, OwnQuantiles};
use super::config::EtaConfig;
use super::hos::{HosClocks, HosRules, HosStop};
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
    /// How long the truck has made no progress towards its next stop, seconds
    /// (0 when it is moving on; see [`super::StallConfig`]).
    pub stalled_s: f64,
    /// The share of its time the truck is expected to stand in stalls from
    /// here on, from its own finished ones ([`super::StallConfig::share`]):
    /// the window's upper end plays the drive at this door-to-door pace.
    pub stall_share: f64,
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
    /// The drive from the truck to this stop at free flow, seconds: the
    /// naive baseline (no traffic, pace, breaks, dwell or waits) that
    /// accuracy reports set beside the ETA, as `tracker eta-eval` does.
    pub free_flow_s: f64,
    /// Hours-of-service stops on the way here, seconds.
    pub hos_break_s: f64,
    /// Dwell at earlier stops on the way here, seconds.
    pub dwell_s: f64,
    /// Waiting for appointment windows, at earlier stops and this one, seconds.
    pub wait_s: f64,
    /// The truck reaches the stop after its window closes.
    pub late: bool,
    pub reasons: Vec<EtaReason>,
    /// The window before the fleet's learned coverage scale
    /// ([`Calibrator::window_scales`]), as distances of its ends from `eta`,
    /// seconds (lower, upper; both ≥ 0): what the arrival is scored against.
    #[serde(default)]
    pub unscaled_s: (f64, f64),
}

/// One stop on a played timeline, in seconds after now.
#[derive(Debug, Clone, Copy, Default)]
struct Reached {
    arrival_s: f64,
    /// After any wait for the window.
    served_s: f64,
    drive_s: f64,
    hos_break_s: f64,
    dwell_s: f64,
    wait_s: f64,
}

/// What a timeline is played with: the input, the hours-of-service rules, the
/// truck's pace, and the dwell at stops that have none of their own (the
/// fleet's, learned by the calibrator).
struct Timeline<'a> {
    input: &'a EtaInput<'a>,
    rules: &'a HosRules,
    pace: f64,
    default_dwell_s: f64,
}

impl Timeline<'_> {
    /// Plays the timeline with driving and dwell stretched by `stretch`, the
    /// truck held where it is for `hold_s` first (the rest of a stall), up to
    /// and including stop `last` (all stops when `None`).
    fn play(&self, stretch: f64, hold_s: f64, last: Option<usize>) -> Vec<Reached> {
        let (input, rules, pace, default_dwell_s) =
            (self.input, self.rules, self.pace, self.default_dwell_s);
        let mut hos = input.hos;
        let mut hos_stops: Vec<HosStop> = Vec::new();
        let n = input.legs.len().min(input.stops.len());
        let n = last.map_or(n, |k| (k + 1).min(n));
        let mut reached = Vec::with_capacity(n);
        let mut t_s = 0.0;
        if let Some(departs) = input.departs_at {
            let dwell_left_s = seconds(departs - input.now).max(0.0) * stretch;
            hos.rest(rules, dwell_left_s);
            t_s += dwell_left_s;
        }
        if hold_s > 0.0 {
            hos.rest(rules, hold_s);
            t_s += hold_s;
        }
        let mut r = Reached::default();
        for (i, (leg, stop)) in input.legs.iter().zip(input.stops).take(n).enumerate() {
            let leg_drive_s = leg.drive_s.max(0.0) * pace * stretch;
            hos_stops.clear();
            t_s += hos.drive(rules, leg_drive_s, &mut hos_stops);
            r.hos_break_s += hos_stops.iter().map(|s| s.duration_s).sum::<f64>();
            r.drive_s += leg_drive_s;
            r.arrival_s = t_s;
            if let Some(window) = stop.window
                && !stop.early_allowed
            {
                let opens_s = seconds(window.from - input.now);
                if t_s < opens_s {
                    let wait = opens_s - t_s;
                    r.wait_s += wait;
                    t_s += wait;
                    hos.rest(rules, wait);
                }
            }
            r.served_s = t_s;
            reached.push(r);
            if i + 1 < n {
                let dwell = stop.dwell_s.unwrap_or(default_dwell_s).max(0.0) * stretch;
                r.dwell_s += dwell;
                t_s += dwell;
                hos.rest(rules, dwell);
            }
        }
        reached
    }
}

/// The ETAs of the remaining stops; stops beyond the legs given get none.
pub fn estimate_stops(
    input: &EtaInput<'_>,
    config: &EtaConfig,
    calibrator: &Calibrator,
) -> Vec<StopEta> {
    let pace = if input.pace_factor.is_finite() && input.pace_factor > 0.0 {
        input.pace_factor
    } else {
        1.0
    };
    // A stand the hours of service call for (a driver out of hours or due
    // for a break) is planned by the rules, which know when it ends; any
    // other stand is held as a stall.
    let clocks = &input.hos;
    let rest_due =
        clocks.drive_left_s <= 0.0 || clocks.window_left_s <= 0.0 || clocks.until_break_s <= 0.0;
    let (hold_s, hold_p90_s) = if rest_due {
        (0.0, 0.0)
    } else {
        calibrator.stall_hold_s(&config.stall, input.stalled_s)
    };
    // The upper end drives at the truck's door-to-door pace (its stand rate),
    // except while a stall is held: the hold speaks for the stand in progress.
    let stand_share = if hold_p90_s > 0.0 {
        0.0
    } else {
        input.stall_share.clamp(0.0, 0.95)
    };
    let timeline = Timeline {
        input,
        rules: &config.hos,
        pace,
        default_dwell_s: calibrator.dwell_s(&config.dwell),
    };
    let median = timeline.play(1.0, hold_s, None);
    let floor_s = calibrator.config().min_half_width_s;
    let (mut distance_m, mut traffic_s, mut free_s) = (0.0, 0.0, 0.0);
    let mut etas = Vec::with_capacity(median.len());
    for (k, (r, leg)) in median.iter().zip(input.legs).enumerate() {
        distance_m += leg.distance_m.max(0.0);
        traffic_s += leg.drive_s - leg.free_flow_s;
        free_s += leg.free_flow_s;

        // The percentiles of the uncertain part, played through the timeline.
        let uncertain_s = r.drive_s + r.dwell_s;
        let (lo, hi) = calibrator.stretches(uncertain_s, input.own);
        let hi = hi / (1.0 - stand_share);
        // The lower end has the truck leave now; the upper end holds it as a
        // long stand would.
        let at = |stretch: f64, hold_s: f64| {
            timeline
                .play(stretch, hold_s, Some(k))
                .get(k)
                .map_or(r.served_s, |x| x.served_s)
        };
        // Rests are planned to the minute, not to the second: they widen the
        // window a little on both sides, and a truck in its 10-hour reset gets
        // minutes rather than the bare floor.
        let rest_spread_s = calibrator.config().rest_spread * r.hos_break_s;
        let p10_s = (at(lo, 0.0).min(r.served_s - floor_s) - rest_spread_s).max(0.0);
        let p90_s = at(hi, hold_p90_s).max(r.served_s + floor_s) + rest_spread_s;
        // Then each side scaled by how the fleet's windows at this horizon
        // covered (never narrower than the floor, never before now).
        let unscaled_s = (r.served_s - p10_s, p90_s - r.served_s);
        let (lower_scale, upper_scale) = calibrator.window_scales(uncertain_s);
        let p10_s = (r.served_s - lower_scale * unscaled_s.0)
            .min(r.served_s - floor_s)
            .max(0.0);
        let p90_s = (r.served_s + upper_scale * unscaled_s.1).max(r.served_s + floor_s);

        let mut reasons = Vec::new();
        if traffic_s.abs() >= config.traffic_reason_min_s
            && traffic_s.abs() >= config.traffic_reason_min_share * free_s
        {
            reasons.push(EtaReason::Traffic);
        }
        if r.hos_break_s > 0.0 {
            reasons.push(EtaReason::HosBreak);
        }
        if r.dwell_s > 0.0 {
            reasons.push(EtaReason::Dwell);
        }
        if r.wait_s > 0.0 {
            reasons.push(EtaReason::WindowWait);
        }
        let stop = &input.stops[k];
        let arrival = input.now + millis(r.arrival_s);
        let eta = input.now + millis(r.served_s);
        // An early truck that must wait is not served before the window opens,
        // however early it comes.
        let opens = stop.window.filter(|_| !stop.early_allowed).map(|w| w.from);
        let p10 = (input.now + millis(p10_s))
            .max(opens.unwrap_or(input.now))
            .min(eta);
        etas.push(StopEta {
            eta,
            p10,
            p90: (input.now + millis(p90_s)).max(eta),
            arrival,
            drive_s: r.drive_s,
            distance_m,
            traffic_s,
            free_flow_s: free_s,
            hos_break_s: r.hos_break_s,
            dwell_s: r.dwell_s,
            wait_s: r.wait_s,
            late: stop.window.is_some_and(|w| arrival > w.to),
            reasons,
            unscaled_s,
        });
    }
    etas
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn millis(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0).round() as i64)
}
