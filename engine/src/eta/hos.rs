//! US hours of service for property-carrying drivers (49 CFR 395.3): at most 11 h
//! of driving and no driving after the 14th hour on duty, both reset by 10
//! consecutive hours off duty; a 30-minute break from driving after 8 h of
//! driving (any 30 minutes not driving, on or off duty, count).
//!
//! [`HosClocks`] are the three remaining clocks; [`HosClocks::drive`] plays a
//! stretch of driving forward and inserts the breaks and resets the rules demand,
//! which is how an ETA gets its `hos_break` time. [`HosEstimator`] keeps the clocks
//! of a driver from observed movement when the ELD does not report them.
//! The 60/70-hour weekly limits and the sleeper-berth split are not modelled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The limits, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HosRules {
    /// Driving allowed between resets (11 h).
    pub max_drive_s: f64,
    /// No driving after this much time since coming on duty (14 h).
    pub duty_window_s: f64,
    /// Driving allowed before a break (8 h).
    pub break_after_drive_s: f64,
    /// Length of the break (30 min).
    pub break_s: f64,
    /// Off duty that resets the 11- and 14-hour clocks (10 h).
    pub reset_s: f64,
}

impl HosRules {
    /// Property-carrying drivers in the US.
    pub const US_PROPERTY: HosRules = HosRules {
        max_drive_s: 11.0 * 3600.0,
        duty_window_s: 14.0 * 3600.0,
        break_after_drive_s: 8.0 * 3600.0,
        break_s: 1800.0,
        reset_s: 10.0 * 3600.0,
    };
}

/// What the rules still allow, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HosClocks {
    /// Driving left before a reset is needed (the 11-hour clock).
    pub drive_left_s: f64,
    /// Time left in the on-duty window (the 14-hour clock; runs on while stopped).
    pub window_left_s: f64,
    /// Driving left before the 30-minute break.
    pub until_break_s: f64,
    /// Time already spent not driving, just now: a break or reset in progress
    /// needs only the rest of it.
    #[serde(default)]
    pub resting_s: f64,
}

/// A stop the rules impose on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HosStopKind {
    /// The 30-minute break after 8 h of driving.
    Break,
    /// Ten hours off duty (the 11- or 14-hour clock ran out).
    Reset,
}

/// One imposed stop: it starts `start_s` after the start of the stretch played.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HosStop {
    pub kind: HosStopKind,
    pub start_s: f64,
    pub duration_s: f64,
}

impl HosClocks {
    /// A driver just off a 10-hour reset.
    pub fn fresh(rules: &HosRules) -> HosClocks {
        HosClocks {
            drive_left_s: rules.max_drive_s,
            window_left_s: rules.duty_window_s,
            until_break_s: rules.break_after_drive_s,
            resting_s: 0.0,
        }
    }

    /// Plays `drive_s` seconds of driving forward, inserting the breaks and resets
    /// the rules demand (appended to `stops`). Returns the elapsed time, driving
    /// and stops included.
    pub fn drive(&mut self, rules: &HosRules, drive_s: f64, stops: &mut Vec<HosStop>) -> f64 {
        let mut remaining_s = drive_s.max(0.0);
        let mut elapsed_s = 0.0;
        // Each pass either drives or takes one stop that restores some clock, so
        // the loop ends; the guard only protects against absurd rules.
        for _ in 0..10_000 {
            if remaining_s <= 0.0 {
                break;
            }
            let available_s = self
                .drive_left_s
                .min(self.window_left_s)
                .min(self.until_break_s);
            if available_s <= 0.0 {
                let kind = if self.drive_left_s <= 0.0 || self.window_left_s <= 0.0 {
                    HosStopKind::Reset
                } else {
                    HosStopKind::Break
                };
                let full_s = match kind {
                    HosStopKind::Reset => rules.reset_s,
                    HosStopKind::Break => rules.break_s,
                };
                let duration_s = (full_s - self.resting_s).max(0.0);
                stops.push(HosStop {
                    kind,
                    start_s: elapsed_s,
                    duration_s,
                });
                elapsed_s += duration_s;
                self.rest(rules, duration_s);
                continue;
            }
            let step_s = available_s.min(remaining_s);
            self.resting_s = 0.0;
            self.drive_left_s -= step_s;
            self.window_left_s -= step_s;
            self.until_break_s -= step_s;
            remaining_s -= step_s;
            elapsed_s += step_s;
        }
        elapsed_s
    }

    /// Time not driving (dwell at a stop, waiting for a window): the 14-hour clock
    /// runs on; 30 minutes count as the break; 10 hours are a reset.
    pub fn rest(&mut self, rules: &HosRules, duration_s: f64) {
        let duration_s = duration_s.max(0.0);
        self.resting_s += duration_s;
        if self.resting_s >= rules.reset_s {
            *self = HosClocks::fresh(rules);
            return;
        }
        self.window_left_s -= duration_s;
        if self.resting_s >= rules.break_s {
            self.until_break_s = rules.break_after_drive_s;
        }
    }
}

/// The clocks an ELD reports with a position, when it does: each replaces the
/// estimate of that clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HosReport {
    /// Driving left (the 11-hour clock), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive_left_s: Option<u32>,
    /// Time left in the on-duty window (the 14-hour clock), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_left_s: Option<u32>,
    /// Driving left before the 30-minute break, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_break_s: Option<u32>,
}

/// Settings of [`HosEstimator`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HosObservation {
    /// Between two fixes closer than this in time, the truck drove the whole
    /// interval when it moved; longer gaps are split by `gap_speed_mps`.
    pub max_gap_s: f64,
    /// Slower than this between two fixes is standing, m/s.
    pub moving_mps: f64,
    /// Assumed average speed while driving through a gap in the data, m/s.
    pub gap_speed_mps: f64,
}

/// The clocks of a driver, kept from observed movement. Without a history it
/// assumes the driver came on duty fresh at the first fix seen (the most
/// optimistic reading); the ELD's own figure, when the feed has it, replaces the
/// estimated 11-hour clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HosEstimator {
    rules: HosRules,
    observation: HosObservation,
    clocks: HosClocks,
    last_at: Option<DateTime<Utc>>,
    /// How long the truck has been standing, seconds.
    standing_s: f64,
    /// After a reset, the 14-hour clock starts only when driving resumes.
    off_duty: bool,
    driven_s: f64,
}

impl HosEstimator {
    pub fn new(rules: HosRules, observation: HosObservation) -> HosEstimator {
        HosEstimator {
            rules,
            observation,
            clocks: HosClocks::fresh(&rules),
            last_at: None,
            standing_s: 0.0,
            off_duty: true,
            driven_s: 0.0,
        }
    }

    /// A fix at `at`, `moved_m` metres (along the road) after the previous one,
    /// with whatever clocks the ELD reported.
    pub fn observe(&mut self, at: DateTime<Utc>, moved_m: f64, reported: HosReport) {
        let dt_s = self.last_at.map_or(0.0, |last| {
            ((at - last).num_milliseconds() as f64 / 1000.0).max(0.0)
        });
        if self.last_at.is_some_and(|last| at < last) {
            return;
        }
        self.last_at = Some(at);
        let moved_m = moved_m.max(0.0);
        let drive_s = if dt_s <= 0.0 {
            0.0
        } else if dt_s <= self.observation.max_gap_s {
            if moved_m / dt_s >= self.observation.moving_mps {
                dt_s
            } else {
                0.0
            }
        } else {
            (moved_m / self.observation.gap_speed_mps).min(dt_s)
        };
        let stand_s = dt_s - drive_s;
        if stand_s > 0.0 {
            self.standing_s += stand_s;
            if !self.off_duty {
                self.clocks.window_left_s -= stand_s;
            }
            if self.standing_s >= self.rules.reset_s {
                self.clocks = HosClocks::fresh(&self.rules);
                self.off_duty = true;
            } else if self.standing_s >= self.rules.break_s {
                self.clocks.until_break_s = self.rules.break_after_drive_s;
            }
        }
        if drive_s > 0.0 {
            self.standing_s = 0.0;
            self.off_duty = false;
            self.driven_s += drive_s;
            self.clocks.drive_left_s -= drive_s;
            self.clocks.window_left_s -= drive_s;
            self.clocks.until_break_s -= drive_s;
        }
        if let Some(s) = reported.drive_left_s {
            self.clocks.drive_left_s = f64::from(s);
        }
        if let Some(s) = reported.window_left_s {
            self.clocks.window_left_s = f64::from(s);
            self.off_duty = false;
        }
        if let Some(s) = reported.until_break_s {
            self.clocks.until_break_s = f64::from(s);
        }
    }

    /// The clocks now (never negative: a driver over the limit needs the stop at
    /// once).
    /// The rules the clocks are kept under.
    pub fn rules(&self) -> &HosRules {
        &self.rules
    }

    pub fn clocks(&self) -> HosClocks {
        HosClocks {
            drive_left_s: self.clocks.drive_left_s.max(0.0),
            window_left_s: self.clocks.window_left_s.max(0.0),
            until_break_s: self.clocks.until_break_s.max(0.0),
            resting_s: self.standing_s,
        }
    }

    /// Seconds the truck has been standing since it last moved.
    pub fn standing_s(&self) -> f64 {
        self.standing_s
    }

    /// Seconds of driving observed in all.
    pub fn driven_s(&self) -> f64 {
        self.driven_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: HosRules = HosRules::US_PROPERTY;

    #[test]
    fn nine_hours_of_driving_need_one_break_after_eight() {
        let mut clocks = HosClocks::fresh(&RULES);
        let mut stops = Vec::new();
        let elapsed = clocks.drive(&RULES, 9.0 * 3600.0, &mut stops);
        assert_eq!(stops.len(), 1);
        assert_eq!(stops[0].kind, HosStopKind::Break);
        assert_eq!(stops[0].start_s, 8.0 * 3600.0);
        assert_eq!(elapsed, 9.5 * 3600.0);
        assert_eq!(clocks.drive_left_s, 2.0 * 3600.0);
    }

    #[test]
    fn twelve_hours_of_driving_need_a_reset_after_eleven() {
        let mut clocks = HosClocks::fresh(&RULES);
        let mut stops = Vec::new();
        let elapsed = clocks.drive(&RULES, 12.0 * 3600.0, &mut stops);
        let kinds: Vec<HosStopKind> = stops.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [HosStopKind::Break, HosStopKind::Reset]);
        assert_eq!(
            stops[1].start_s,
            11.5 * 3600.0,
            "after 11 h of driving and the break"
        );
        assert_eq!(elapsed, 12.0 * 3600.0 + 1800.0 + 36000.0);
    }

    #[test]
    fn the_fourteen_hour_window_runs_on_while_standing() {
        let mut clocks = HosClocks::fresh(&RULES);
        clocks.rest(&RULES, 10.0 * 3600.0 - 1.0);
        let mut stops = Vec::new();
        // Four hours of window left, but five of driving to do.
        let elapsed = clocks.drive(&RULES, 5.0 * 3600.0, &mut stops);
        assert_eq!(stops.len(), 1);
        assert_eq!(stops[0].kind, HosStopKind::Reset);
        assert!((stops[0].start_s - (4.0 * 3600.0 + 1.0)).abs() < 1e-6);
        assert!((elapsed - (5.0 * 3600.0 + 36000.0)).abs() < 1e-6);
    }

    #[test]
    fn a_break_in_progress_needs_only_the_rest_of_it() {
        let mut clocks = HosClocks::fresh(&RULES);
        clocks.until_break_s = 0.0;
        clocks.resting_s = 1200.0;
        let mut stops = Vec::new();
        let elapsed = clocks.drive(&RULES, 600.0, &mut stops);
        assert_eq!(stops[0].duration_s, 600.0, "20 of the 30 minutes are done");
        assert_eq!(elapsed, 1200.0);
    }

    #[test]
    fn a_long_dwell_counts_as_the_break() {
        let mut clocks = HosClocks::fresh(&RULES);
        let mut stops = Vec::new();
        clocks.drive(&RULES, 7.0 * 3600.0, &mut stops);
        clocks.rest(&RULES, 2400.0);
        clocks.drive(&RULES, 3.0 * 3600.0, &mut stops);
        assert!(stops.is_empty(), "the 40-minute dwell was the break");
    }

    #[test]
    fn the_estimator_counts_driving_and_resets_after_a_long_stop() {
        let observation = HosObservation {
            max_gap_s: 300.0,
            moving_mps: 1.0,
            gap_speed_mps: 15.0,
        };
        let mut hos = HosEstimator::new(RULES, observation);
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        hos.observe(at(0), 0.0, HosReport::default());
        for minute in 1..=60 {
            hos.observe(at(minute * 60), 1200.0, HosReport::default());
        }
        let clocks = hos.clocks();
        assert_eq!(clocks.drive_left_s, 10.0 * 3600.0);
        assert_eq!(clocks.until_break_s, 7.0 * 3600.0);
        // Standing 40 minutes: the break is taken; the window runs on.
        for minute in 61..=100 {
            hos.observe(at(minute * 60), 0.0, HosReport::default());
        }
        assert_eq!(hos.clocks().until_break_s, 8.0 * 3600.0);
        assert_eq!(hos.clocks().window_left_s, 14.0 * 3600.0 - 100.0 * 60.0);
        // The ELD's figure wins for the 11-hour clock.
        let eld = HosReport {
            drive_left_s: Some(3600),
            ..HosReport::default()
        };
        hos.observe(at(100 * 60 + 1), 0.0, eld);
        assert_eq!(hos.clocks().drive_left_s, 3600.0);
        // Ten hours off: everything is fresh again.
        hos.observe(at(100 * 60 + 1 + 36_000), 0.0, HosReport::default());
        let clocks = hos.clocks();
        let fresh = HosClocks::fresh(&RULES);
        assert_eq!(
            (
                clocks.drive_left_s,
                clocks.window_left_s,
                clocks.until_break_s
            ),
            (fresh.drive_left_s, fresh.window_left_s, fresh.until_break_s)
        );
    }
}
