//! The uncertainty window: p10 and p90 of the arrival from the errors measured so
//! far, by horizon.
//!
//! Every closed prediction (a published ETA and the actual arrival, or a
//! progress checkpoint along the route) gives an error relative to the time it
//! had to go. The calibrator keeps the latest errors per horizon bucket and reads
//! their 10th and 90th percentiles, so that about 80 % of arrivals fall inside the
//! window if tomorrow's errors look like today's. Before there is data a prior
//! stands in (ETAs run late more often than early), and the data takes over as
//! trips arrive (shrinkage by a pseudo-count).
//!
//! Errors are counted by trip, not by sample: one truck's checkpoints a minute
//! apart are one story told many times (a truck that parks for two hours makes
//! every one of its predictions late), so each trip weighs the same in a
//! bucket's percentiles, and a bucket backed by two trips leans on its shorter
//! neighbour and the prior however many samples those trips closed.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::coverage::{CoverageScales, WindowOutcome};
use super::dwell::{DwellConfig, DwellHistory};
use super::stall::{StallConfig, StallTail};
use super::trips::{TripBucket, blended_quantiles};
use crate::error::{Error, Result};

/// Settings of the [`Calibrator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationConfig {
    /// Upper bounds of the horizon buckets (predicted seconds to go), ascending;
    /// longer horizons fall in the last bucket.
    pub bucket_max_s: Vec<f64>,
    /// Errors kept per bucket (the newest).
    pub capacity: usize,
    /// Prior 10th and 90th percentiles of the relative error (actual minus
    /// predicted time to go, over the predicted time to go).
    pub prior_q10: f64,
    pub prior_q90: f64,
    /// The prior (and, for longer buckets, the next shorter bucket) weighs as
    /// much as this many trips' errors.
    pub prior_trips: f64,
    /// A trip weighs in full in a bucket once it has closed this many errors
    /// there, and in proportion below: a trip seen twice in a bucket (a
    /// round trip's first fixes, a few minutes' of a long drive) is a
    /// glimpse, not a whole story.
    pub trip_full_samples: f64,
    /// Errors are relative to the time to go, but at least this many seconds: a
    /// truck one minute out is not "50 % late" when it is 30 s late.
    pub min_scale_s: f64,
    /// The window reaches at least this far on each side of the ETA, seconds
    /// (clocks, sampling and the last metres make nothing surer than that).
    pub min_half_width_s: f64,
    /// Hours-of-service rests in a prediction widen the window by this share
    /// of their length on each side: a 10-hour reset ends when the driver gets
    /// going, which the clocks know to the minute, not to the second.
    pub rest_spread: f64,
    /// Errors kept per vehicle ([`OwnErrors`]).
    pub own_capacity: usize,
    /// A vehicle's own errors weigh `n / (n + own_prior_samples)` against the
    /// fleet's.
    pub own_prior_samples: f64,
    /// Whether published windows are scaled, by horizon, by where the fleet's
    /// arrivals fell in the windows it was given before ([`super::coverage`]).
    /// Off: on the Kubicka tracks it brought coverage nearer 80 % at some
    /// horizons but made the short windows several times wider (heavy tails
    /// of late arrivals near the stop), see BENCHMARKS.md. The outcomes are
    /// learned either way. Absent from settings saved before it existed: off.
    #[serde(default)]
    pub learn_window: bool,
}

impl CalibrationConfig {
    /// Buckets at 5, 15, 30 min, 1, 2, 4, 8, 24 h; a prior of −10 % / +20 %.
    pub fn standard() -> CalibrationConfig {
        CalibrationConfig {
            bucket_max_s: vec![
                300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0,
            ],
            capacity: 1000,
            prior_q10: -0.10,
            prior_q90: 0.20,
            prior_trips: 3.0,
            trip_full_samples: 30.0,
            min_scale_s: 180.0,
            min_half_width_s: 30.0,
            rest_spread: 0.02,
            own_capacity: 64,
            own_prior_samples: 10.0,
            learn_window: false,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let invalid = |setting: &'static str, reason: &str| Error::InvalidConfig {
            setting,
            reason: reason.to_string(),
        };
        if self.bucket_max_s.is_empty()
            || self
                .bucket_max_s
                .windows(2)
                .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return Err(invalid(
                "bucket_max_s",
                "must be a non-empty ascending list",
            ));
        }
        if self.capacity == 0 || self.own_capacity == 0 {
            return Err(invalid("capacity", "must be at least 1"));
        }
        if !(self.prior_q10 <= 0.0 && self.prior_q90 >= 0.0 && self.prior_q10 > -1.0) {
            return Err(invalid("prior_q10", "the prior needs -1 < q10 <= 0 <= q90"));
        }
        if !(self.prior_trips >= 0.0
            && self.min_scale_s > 0.0
            && self.min_half_width_s >= 0.0
            && self.trip_full_samples >= 1.0)
        {
            return Err(invalid(
                "min_scale_s",
                "must be positive (and prior_trips not negative)",
            ));
        }
        if !(0.0..=1.0).contains(&self.rest_spread) {
            return Err(invalid("rest_spread", "must be in 0..=1"));
        }
        Ok(())
    }
}

/// The p10/p90 window per horizon, learned online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrator {
    config: CalibrationConfig,
    buckets: Vec<TripBucket>,
    /// The fleet's finished stalls: how long a stand goes on.
    stalls: StallTail,
    /// The fleet's finished dwells at stops it left again (absent from saves
    /// made before it was learned).
    #[serde(default)]
    dwells: DwellHistory,
    /// Where arrivals fell in the windows published before them, by horizon
    /// (absent from saves made before it was learned).
    #[serde(default)]
    coverage: CoverageScales,
}

/// What a bucket says now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketSummary {
    pub max_s: Option<f64>,
    pub samples: usize,
    pub trips: usize,
    pub q10: f64,
    pub q90: f64,
    /// The scales of the window's lower and upper half-widths at this
    /// horizon, and the trips whose arrivals taught them.
    pub lower_scale: f64,
    pub upper_scale: f64,
    pub window_trips: usize,
}

impl Calibrator {
    pub fn new(config: CalibrationConfig) -> Result<Calibrator> {
        config.validate()?;
        let n_buckets = config.bucket_max_s.len() + 1;
        Ok(Calibrator {
            config,
            buckets: vec![TripBucket::default(); n_buckets],
            stalls: StallTail::default(),
            dwells: DwellHistory::default(),
            coverage: CoverageScales::new(n_buckets),
        })
    }

    fn bucket_of(&self, horizon_s: f64) -> usize {
        self.config
            .bucket_max_s
            .partition_point(|&max| max < horizon_s)
    }

    fn scale_s(&self, horizon_s: f64) -> f64 {
        horizon_s.max(self.config.min_scale_s)
    }

    pub fn config(&self) -> &CalibrationConfig {
        &self.config
    }

    /// The error the calibrator measures: actual minus predicted time to go,
    /// relative to the uncertain part of the prediction (at least
    /// `min_scale_s`). `None` for nonsense.
    pub fn relative_error(&self, predicted: Horizon, actual_to_go_s: f64) -> Option<f64> {
        (predicted.to_go_s.is_finite()
            && predicted.uncertain_s.is_finite()
            && actual_to_go_s.is_finite()
            && predicted.to_go_s >= 0.0)
            .then(|| (actual_to_go_s - predicted.to_go_s) / self.scale_s(predicted.uncertain_s))
    }

    /// Records one closed prediction: what it predicted and the time it actually
    /// took, seconds.
    pub fn record(&mut self, predicted: Horizon, actual_to_go_s: f64) {
        self.record_all([(predicted, actual_to_go_s)]);
    }

    /// [`Calibrator::record`] for many outcomes, the percentiles refreshed once
    /// per bucket at the end (a live engine closes hundreds per batch).
    pub fn record_all(&mut self, outcomes: impl IntoIterator<Item = (Horizon, f64)>) {
        let mut touched = vec![false; self.buckets.len()];
        for (predicted, actual_to_go_s) in outcomes {
            let Some(error) = self.relative_error(predicted, actual_to_go_s) else {
                continue;
            };
            let b = self.bucket_of(predicted.uncertain_s.max(0.0));
            let capacity = self.config.capacity;
            // Always there, unless a calibrator was deserialized without
            // `restored`: then it learns nothing rather than panicking.
            let Some(bucket) = self.buckets.get_mut(b) else {
                continue;
            };
            bucket.push(error, predicted.trip, capacity);
            touched[b] = true;
        }
        let full = self.config.trip_full_samples;
        for (bucket, _) in self
            .buckets
            .iter_mut()
            .zip(touched)
            .filter(|(_, touched)| *touched)
        {
            bucket.refresh(full);
        }
    }

    /// The relative 10th and 90th percentiles for a horizon, data blended with
    /// what the next shorter horizon says (and the shortest with the prior): long
    /// horizons are rarer, and errors relative to the time to go change slowly
    /// with it, so an empty bucket borrows from its neighbour rather than from a
    /// guess.
    pub fn quantiles(&self, horizon_s: f64) -> (f64, f64) {
        let upto = (self.bucket_of(horizon_s) + 1).min(self.buckets.len());
        blended_quantiles(
            &self.buckets[..upto],
            (self.config.prior_q10, self.config.prior_q90),
            self.config.prior_trips,
        )
    }

    /// Records where arrivals fell in the windows published before them (see
    /// [`super::coverage`]).
    pub fn record_windows(&mut self, outcomes: impl IntoIterator<Item = WindowOutcome>) {
        let bucket_max_s = &self.config.bucket_max_s;
        let bucket_of = |horizon_s: f64| bucket_max_s.partition_point(|&max| max < horizon_s);
        self.coverage.record_all(&self.config, bucket_of, outcomes);
    }

    /// The scales of a window's lower and upper half-widths for a prediction
    /// whose uncertain part is `uncertain_s`: learned from where the fleet's
    /// arrivals fell in the windows at that horizon, `(1, 1)` before any did
    /// (or with `learn_window` off).
    pub fn window_scales(&self, uncertain_s: f64) -> (f64, f64) {
        if !self.config.learn_window {
            return (1.0, 1.0);
        }
        self.coverage
            .scales(&self.config, self.bucket_of(uncertain_s.max(0.0)))
    }

    /// The percentiles of the uncertain part of a prediction (driving and dwell,
    /// `uncertain_s` seconds), as stretch factors of it: `(p10, p90)`, e.g.
    /// `(0.9, 1.25)`. The ETA plays its timeline again at each, so thresholds
    /// (a break, the end of the 11 hours, a window) move the window as they
    /// would move the arrival.
    pub fn stretches(&self, uncertain_s: f64, own: Option<&OwnQuantiles>) -> (f64, f64) {
        let uncertain_s = uncertain_s.max(0.0);
        let (q10, q90) = self.quantiles_with(uncertain_s, own);
        let relative = self.scale_s(uncertain_s) / uncertain_s.max(1.0);
        (
            (1.0 + q10 * relative).max(0.05),
            (1.0 + q90 * relative).max(1.0),
        )
    }

    /// The fleet's percentiles with the vehicle's own widened in.
    fn quantiles_with(&self, horizon_s: f64, own: Option<&OwnQuantiles>) -> (f64, f64) {
        let (mut q10, mut q90) = self.quantiles(horizon_s);
        if let Some(own) = own.filter(|o| o.samples > 0.0) {
            // Only ever wider: a handful of a steady truck's errors is a noisy
            // estimate, and the fleet's window is the better one for it.
            let w = own.samples / (own.samples + self.config.own_prior_samples);
            q10 = q10.min((1.0 - w) * q10 + w * own.q10);
            q90 = q90.max((1.0 - w) * q90 + w * own.q90);
        }
        (q10, q90)
    }

    /// The window around a prediction, as offsets from the ETA in seconds:
    /// `(lower <= 0, upper >= 0)`. The window always contains the ETA, and its
    /// lower end is never before now.
    pub fn window_s(&self, predicted: Horizon) -> (f64, f64) {
        self.window_with_s(predicted, None)
    }

    /// The window, with the vehicle's own errors blended in: a truck whose
    /// predictions have been far off gets a wider window than the fleet's.
    pub fn window_with_s(&self, predicted: Horizon, own: Option<&OwnQuantiles>) -> (f64, f64) {
        let horizon_s = predicted.uncertain_s.max(0.0);
        let (q10, q90) = self.quantiles_with(horizon_s, own);
        let scale_s = self.scale_s(horizon_s);
        let floor_s = self.config.min_half_width_s;
        let lower = (q10 * scale_s)
            .min(-floor_s)
            .max(-predicted.to_go_s.max(0.0));
        let upper = (q90 * scale_s).max(floor_s);
        (lower.min(0.0), upper)
    }

    pub fn summary(&self) -> Vec<BucketSummary> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let max_s = self.config.bucket_max_s.get(i).copied();
                let horizon = max_s.unwrap_or(f64::INFINITY);
                let (q10, q90) = self.quantiles(horizon.min(1e12));
                let (lower_scale, upper_scale) = self.window_scales(horizon.min(1e12));
                BucketSummary {
                    max_s,
                    samples: b.len(),
                    trips: b.trips(),
                    q10,
                    q90,
                    lower_scale,
                    upper_scale,
                    window_trips: self.coverage.trips(i),
                }
            })
            .collect()
    }

    /// A calibrator read back from a save (see `LiveEngine::restore_calibrator`),
    /// checked against the settings it is to serve under and with everything
    /// derived recomputed from the kept errors: refused when it was learned
    /// with other settings (its buckets would mean other horizons) or does not
    /// hold together.
    pub fn restored(mut self, config: &CalibrationConfig) -> Result<Calibrator> {
        let refuse = |reason: &str| Error::InvalidConfig {
            setting: "calibration",
            reason: format!("the saved calibrator {reason}"),
        };
        if &self.config != config {
            return Err(refuse("was learned with other settings"));
        }
        if self.buckets.len() != config.bucket_max_s.len() + 1 {
            return Err(refuse("has the wrong number of horizon buckets"));
        }
        for bucket in &mut self.buckets {
            bucket.sanitize(config.capacity, config.trip_full_samples);
        }
        self.coverage = self
            .coverage
            .restored(config)
            .ok_or_else(|| refuse("has the wrong number of window buckets"))?;
        self.stalls.reindex();
        self.dwells.sanitize();
        Ok(self)
    }

    /// Records a finished stall of one of the fleet's trucks, seconds.
    pub fn record_stall(&mut self, config: &StallConfig, length_s: f64) {
        self.stalls.record(config, length_s);
    }

    /// The rest of a stall of `stalled_s` so far at the ETA and at p90,
    /// seconds (see [`StallTail::hold_s`]).
    pub fn stall_hold_s(&self, config: &StallConfig, stalled_s: f64) -> (f64, f64) {
        self.stalls.hold_s(config, stalled_s)
    }

    /// Records a finished dwell at a stop a truck left again, seconds.
    pub fn record_dwell(&mut self, config: &DwellConfig, length_s: f64) {
        self.dwells.record(config, length_s);
    }

    /// The dwell to plan at a stop with none of its own, seconds (see
    /// [`DwellHistory::dwell_s`]).
    pub fn dwell_s(&self, config: &DwellConfig) -> f64 {
        self.dwells.dwell_s(config)
    }

    /// The finished dwells the calibrator learns from.
    pub fn dwells(&self) -> &DwellHistory {
        &self.dwells
    }

    /// The finished stalls the calibrator learns from.
    pub fn stalls(&self) -> &StallTail {
        &self.stalls
    }

    /// Closed predictions recorded in all.
    pub fn recorded(&self) -> u64 {
        self.buckets.iter().map(TripBucket::recorded).sum()
    }
}

/// What a prediction said: the time to go, and the part of it that is
/// uncertain — driving and dwell, not the legal rests or the wait for a window,
/// which are known to the minute. Errors are relative to the uncertain part and
/// bucketed by it, so a drive of one hour before a 10-hour reset is judged as a
/// one-hour drive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Horizon {
    pub to_go_s: f64,
    pub uncertain_s: f64,
    /// The trip that made the prediction (a key of vehicle, order and stop):
    /// the calibrator weighs trips, not samples.
    pub trip: u64,
}

impl Horizon {
    /// A prediction that is all driving, on trip 0.
    pub fn drive(to_go_s: f64) -> Horizon {
        Horizon {
            to_go_s,
            uncertain_s: to_go_s,
            trip: 0,
        }
    }

    /// The same prediction, made on `trip`.
    pub fn on_trip(self, trip: u64) -> Horizon {
        Horizon { trip, ..self }
    }
}

/// A vehicle's own recent errors, in the calibrator's relative terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnErrors {
    errors: VecDeque<f32>,
    quantiles: Option<OwnQuantiles>,
}

/// Percentiles of one vehicle's errors and how many back them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OwnQuantiles {
    pub q10: f64,
    pub q90: f64,
    pub samples: f64,
}

impl OwnErrors {
    pub fn new() -> OwnErrors {
        OwnErrors::default()
    }

    /// Records one of the vehicle's closed predictions.
    pub fn record(&mut self, calibrator: &Calibrator, predicted: Horizon, actual_to_go_s: f64) {
        let Some(error) = calibrator.relative_error(predicted, actual_to_go_s) else {
            return;
        };
        if self.errors.len() >= calibrator.config.own_capacity {
            self.errors.pop_front();
        }
        self.errors.push_back(error as f32);
    }

    /// Recomputes the percentiles. `overdue` are lower bounds of errors not yet
    /// known (predictions whose time has passed without the truck getting
    /// there): a truck parked for an hour is already that late.
    pub fn refresh(&mut self, overdue: &[f64]) {
        let mut sorted: Vec<f32> = self.errors.iter().copied().collect();
        sorted.extend(overdue.iter().map(|&e| e as f32));
        if sorted.is_empty() {
            self.quantiles = None;
            return;
        }
        sorted.sort_by(f32::total_cmp);
        self.quantiles = Some(OwnQuantiles {
            q10: quantile(&sorted, 0.1),
            q90: quantile(&sorted, 0.9),
            samples: sorted.len() as f64,
        });
    }

    pub fn quantiles(&self) -> Option<&OwnQuantiles> {
        self.quantiles.as_ref()
    }
}

/// Linear-interpolated quantile of sorted values.
pub(super) fn quantile(sorted: &[f32], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => f64::from(sorted[0]),
        n => {
            let pos = q * (n - 1) as f64;
            let i = pos.floor() as usize;
            let frac = pos - i as f64;
            let a = f64::from(sorted[i]);
            let b = f64::from(sorted[(i + 1).min(n - 1)]);
            a + (b - a) * frac
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_holds_before_data_and_the_data_takes_over() {
        let mut cal = Calibrator::new(CalibrationConfig::standard()).expect("valid");
        let (lower, upper) = cal.window_s(Horizon::drive(3000.0));
        assert!((lower + 300.0).abs() < 1e-9 && (upper - 600.0).abs() < 1e-9);
        let (lower, upper) = cal.window_s(Horizon::drive(100.0));
        assert_eq!(
            (lower, upper),
            (-30.0, 36.0),
            "never narrower than 30 s each way; relative to at least 3 minutes"
        );
        // Errors uniform in -5 % .. +5 % from 50 trips: the window narrows
        // towards ±4 %.
        for i in 0..1000 {
            let rel = -0.05 + 0.1 * (i as f64 / 999.0);
            cal.record(Horizon::drive(3000.0).on_trip(i % 50), 3000.0 * (1.0 + rel));
        }
        let (q10, q90) = cal.quantiles(3000.0);
        assert!(
            (q10 + 0.04).abs() < 0.01 && (q90 - 0.04).abs() < 0.01,
            "{q10} {q90}"
        );
        // Shorter horizons still have the prior; longer ones borrow.
        assert_eq!(cal.quantiles(100.0), (-0.10, 0.20));
        let (q10, q90) = cal.quantiles(20_000.0);
        assert!(
            (q10 + 0.04).abs() < 0.01 && (q90 - 0.04).abs() < 0.01,
            "{q10} {q90}"
        );
    }

    #[test]
    fn one_trip_is_one_voice_however_many_errors_it_closes() {
        let config = CalibrationConfig::standard();
        let prior_q90 = config.prior_q90;
        let mut cal = Calibrator::new(config).expect("valid");
        // One truck parks for hours: all of its 500 checkpoints are 3× late.
        for _ in 0..500 {
            cal.record(Horizon::drive(3000.0).on_trip(100), 12_000.0);
        }
        let (_, q90) = cal.quantiles(3000.0);
        assert!(
            q90 > prior_q90 && q90 < 1.0,
            "one trip moves the window, but does not make it: {q90}"
        );
        // Nineteen trips on time, a few errors each: the late truck is one in
        // twenty, not 500 in 557.
        for trip in 0..19 {
            for i in 0..3 {
                let rel = -0.05 + 0.05 * f64::from(i);
                cal.record(Horizon::drive(3000.0).on_trip(trip), 3000.0 * (1.0 + rel));
            }
        }
        let summary = cal.summary();
        assert_eq!((summary[3].samples, summary[3].trips), (557, 20));
        // Three errors are a glimpse of a trip (a tenth of a full voice), so
        // the late truck still leans on the window ...
        let (_, glimpsed_q90) = cal.quantiles(3000.0);
        // ... until the on-time trips have closed enough to weigh in full.
        for trip in 0..19 {
            for i in 0..27 {
                let rel = -0.05 + 0.1 * f64::from(i) / 26.0;
                cal.record(Horizon::drive(3000.0).on_trip(trip), 3000.0 * (1.0 + rel));
            }
        }
        let (q10, q90) = cal.quantiles(3000.0);
        assert!(q10 < 0.0 && q90 < 0.3, "{q10} {q90}");
        assert!(glimpsed_q90 > q90, "{glimpsed_q90} {q90}");
    }

    #[test]
    fn a_saved_calibrator_comes_back_as_it_was_and_only_under_its_own_settings() {
        let config = CalibrationConfig {
            learn_window: true,
            ..CalibrationConfig::standard()
        };
        let stall = crate::eta::EtaConfig::TRUCK.stall;
        let mut cal = Calibrator::new(config.clone()).expect("valid");
        for trip in 0..20 {
            for i in 0..40 {
                let late = 1.0 + 0.01 * f64::from(i);
                cal.record(Horizon::drive(3000.0).on_trip(trip), 3000.0 * late);
            }
            cal.record_stall(&stall, 600.0 + 60.0 * trip as f64);
            cal.record_windows((0..10).map(|i| WindowOutcome {
                predicted: Horizon::drive(3000.0).on_trip(trip),
                score: 0.2 * f64::from(i) - 0.5,
            }));
        }
        let saved = serde_json::to_string(&cal).expect("serializes");
        let back: Calibrator = serde_json::from_str(&saved).expect("parses");
        let back = back.restored(&config).expect("same settings");
        assert_eq!(
            back.window_s(Horizon::drive(3000.0)),
            cal.window_s(Horizon::drive(3000.0))
        );
        assert_eq!(back.summary(), cal.summary());
        assert_eq!(back.stalls().len(), 20);
        assert_eq!(
            back.window_scales(3000.0),
            cal.window_scales(3000.0),
            "the window's scales are kept"
        );
        assert_ne!(cal.window_scales(3000.0), (1.0, 1.0));
        // A save from before the scales were learned comes back unscaled.
        let mut old: serde_json::Value = serde_json::from_str(&saved).expect("parses");
        old.as_object_mut().expect("object").remove("coverage");
        let old: Calibrator = serde_json::from_value(old).expect("parses");
        let old = old.restored(&config).expect("same settings");
        assert_eq!(old.window_scales(3000.0), (1.0, 1.0));
        assert_eq!(
            back.stall_hold_s(&stall, 900.0),
            cal.stall_hold_s(&stall, 900.0),
            "the stall tail is rebuilt"
        );

        let mut other = config.clone();
        other.bucket_max_s.pop();
        let parsed: Calibrator = serde_json::from_str(&saved).expect("parses");
        assert!(
            parsed.restored(&other).is_err(),
            "other buckets, other horizons"
        );
        let mut broken: serde_json::Value = serde_json::from_str(&saved).expect("parses");
        broken["buckets"].as_array_mut().expect("buckets").pop();
        let mut broken: Calibrator = serde_json::from_value(broken).expect("parses");
        // Used as read, without `restored`: it answers and learns, it does
        // not panic.
        broken.record(Horizon::drive(200_000.0), 250_000.0);
        assert!(broken.window_s(Horizon::drive(200_000.0)).1 > 0.0);
        assert!(broken.restored(&config).is_err(), "a bucket short");
    }

    #[test]
    fn the_window_never_starts_before_now() {
        let mut cal = Calibrator::new(CalibrationConfig::standard()).expect("valid");
        for _ in 0..100 {
            cal.record(Horizon::drive(60.0), 0.0);
        }
        let (lower, _) = cal.window_s(Horizon::drive(60.0));
        assert!(lower >= -60.0);
    }
}
