//! One truck on one order: where it is on its route, how fast it has been going,
//! what its hours-of-service clocks say, and the ETAs of its remaining stops —
//! advanced fix by fix, re-routing only when needed and publishing only when the
//! ETA moved.
//!
//! Per matched fix: locate the truck on its current route (or notice it left
//! it); feed its pace and its hours of service; close the checkpoints it passed;
//! notice a stop reached; re-time the route when the metric changed (re-route
//! when the change is material, when the truck is off route, or when the route is
//! old); compute the ETAs; publish those that moved.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use road_graph::{LatLon, haversine_m};
use serde::{Deserialize, Serialize};

mod memory;
mod publish;

pub use memory::{Resumed, TrackerMemory};

use super::config::TrackerConfig;
use super::leg::{LegPosition, RoutedLeg};
use super::log::{ArrivalRecord, Checkpoint, ClosedBy, ClosedPrediction, PredictionRecord};
use crate::error::{Error, Result};
use crate::eta::{
    Calibrator, EtaConfig, EtaInput, Horizon, HosEstimator, HosReport, Leg, OwnErrors,
    PaceEstimator, StopEta, StopPlan, WindowOutcome, estimate_stops,
};
use crate::events::{EtaReason, EtaUpdate};
use crate::matching::MatchedPoint;
use crate::order::OrderId;
use crate::routing::{Metric, Router, Snap};

/// Open checkpoints kept per vehicle at most.
const MAX_CHECKPOINTS: usize = 256;
/// Calibration samples kept per stop (to close on arrival) at most.
const MAX_SAMPLES: usize = 2000;

/// A metric with a generation number: the traffic loop bumps the generation every
/// time it customizes the router with a new metric, and trackers re-time their
/// routes when they see a new one.
#[derive(Debug, Clone)]
pub struct MetricVersion {
    pub generation: u64,
    pub metric: Arc<Metric>,
}

/// What a tracker reads on every fix: the router, the metric it was customized
/// with, and the fleet's calibrator.
#[derive(Debug, Clone, Copy)]
pub struct TrackingContext<'a> {
    pub router: &'a Router,
    pub metric: &'a MetricVersion,
    pub calibrator: &'a Calibrator,
}

/// A fix as the tracker needs it: time, raw position, the matcher's (provisional)
/// place on the road, and the ELD's hours-of-service clocks when reported
/// (`Position::hos_drive_remaining_s` is the 11-hour clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VehicleFix {
    pub time: DateTime<Utc>,
    pub position: LatLon,
    pub matched: Option<MatchedPoint>,
    pub hos: HosReport,
}

/// An order stop to track: where it is and its plan (window, early, dwell).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackedStop {
    pub position: LatLon,
    pub plan: StopPlan,
}

/// Why the tracker routed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RerouteReason {
    /// The first fix (or the first routable one).
    Start,
    /// The truck is not on its route ahead.
    OffRoute,
    /// A new metric changed the remaining drive materially.
    MetricChanged,
    /// The route is older than the maximum age.
    MaxAge,
    /// A stop was reached; on to the next.
    StopReached,
}

/// What one fix produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackerOutput {
    /// The current ETA of every remaining stop, with its index in the order.
    pub etas: Vec<(u32, StopEta)>,
    /// The ETAs that moved enough to publish.
    pub updates: Vec<EtaUpdate>,
    /// One log record per published update.
    pub predictions: Vec<PredictionRecord>,
    pub arrivals: Vec<ArrivalRecord>,
    /// Predictions whose outcome became known: for `Calibrator::record`.
    pub closed: Vec<ClosedPrediction>,
    /// Stalls that ended (the truck made progress again or reached its
    /// stop), their lengths in seconds: for `Calibrator::record_stall`.
    pub stalls_s: Vec<f64>,
    /// Dwells that ended (the truck left a stop it had reached, for a next
    /// one), their lengths in seconds: for `Calibrator::record_dwell`.
    pub dwells_s: Vec<f64>,
    /// Where the arrivals fell in the windows published before them: for
    /// `Calibrator::record_windows`.
    pub windows: Vec<WindowOutcome>,
    pub rerouted: Option<RerouteReason>,
}

impl TrackerOutput {
    /// Teaches the fleet's calibrator what this output closed: predictions
    /// whose outcome is known, stalls and dwells that ended.
    pub fn teach(&self, calibrator: &mut Calibrator, config: &EtaConfig) {
        calibrator.record_all(self.closed.iter().map(|c| (c.predicted, c.actual_to_go_s)));
        for &stall_s in &self.stalls_s {
            calibrator.record_stall(&config.stall, stall_s);
        }
        for &dwell_s in &self.dwells_s {
            calibrator.record_dwell(&config.dwell, dwell_s);
        }
        calibrator.record_windows(self.windows.iter().copied());
    }
}

/// Running counts, for metrics and for the efficiency figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerCounters {
    pub fixes: u64,
    pub unmatched: u64,
    pub routes: u64,
    pub reroutes_off_route: u64,
    pub reroutes_metric: u64,
    pub reroutes_age: u64,
    /// Routes re-timed on a new metric without a new query.
    pub retimed: u64,
    pub published: u64,
    pub arrivals: u64,
    /// Fixes from which no route to the next stop was found.
    pub unroutable: u64,
}

/// The last ETA published for a stop.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Published {
    predicted_at: DateTime<Utc>,
    eta: DateTime<Utc>,
    reasons: [bool; 4],
}

/// An ETA taken at the sampling cadence, to close at the arrival: sampled by
/// time rather than by publication, so the calibrator does not over-count the
/// moments when the ETA moves a lot (those are published often).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    predicted_at: DateTime<Utc>,
    arrival: DateTime<Utc>,
    /// Driving and dwell in the prediction (the calibrator's scale).
    uncertain_s: f64,
    p10: DateTime<Utc>,
    p90: DateTime<Utc>,
    eta: DateTime<Utc>,
    /// The window before the coverage scale ([`StopEta::unscaled_s`]).
    unscaled_s: (f64, f64),
    /// Whether its error teaches the calibrator's percentiles (not while
    /// stalled, see `StallConfig::calibrate_while_stalled`); its window's
    /// outcome always does.
    teaches_errors: bool,
}

/// An intermediate stop the truck has reached and not left yet: its dwell,
/// measured from the arrival to the last fix within the departure radius.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct AtStop {
    position: LatLon,
    arrived_at: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    /// The stop's own dwell, when its plan has one (else the fleet's).
    planned_s: Option<f64>,
}

#[derive(Debug, Clone)]
struct StopState {
    stop: TrackedStop,
    /// The stop's access point: the road nearest its point.
    snap: Snap,
    /// From the access point to the stop's point (through the yard) at the
    /// yard speed, seconds; driven in and, for the next leg, out again.
    yard_s: f64,
    last_published: Option<Published>,
    samples: VecDeque<Sample>,
}

/// The tracker of one truck on one order.
#[derive(Debug, Clone)]
pub struct VehicleTracker {
    order_id: OrderId,
    config: TrackerConfig,
    first_stop_index: u32,
    stops: Vec<StopState>,
    /// Index (in `stops`) of the next stop to reach.
    next: usize,
    /// `legs[0]`: truck to `stops[next]`; `legs[k]`: `stops[next + k - 1]` to
    /// `stops[next + k]`.
    legs: Vec<RoutedLeg>,
    /// The truck on `legs[0]`.
    pos: Option<LegPosition>,
    last_fix: Option<(DateTime<Utc>, LatLon)>,
    /// Standing time not yet given to the pace (it counts only if short).
    standing_s: f64,
    /// Where the truck stopped, while it stays within `standing_radius_m`.
    anchor: Option<(LatLon, DateTime<Utc>)>,
    /// Since when the truck has made no net progress towards its next stop.
    stall: StallClock,
    /// The finished stalls on this order, seconds in all.
    stalled_total_s: f64,
    /// The first fix on this order.
    tracked_since: Option<DateTime<Utc>>,
    pace: PaceEstimator,
    hos: HosEstimator,
    /// Dwelling at the stop just reached until then.
    departs_at: Option<DateTime<Utc>>,
    /// The intermediate stop just reached, while the truck is still there.
    at_stop: Option<AtStop>,
    checkpoints: VecDeque<Checkpoint>,
    last_checkpoint_at: Option<DateTime<Utc>>,
    /// This vehicle's own recent errors, for its window.
    own: OwnErrors,
    /// Taken up from a memory (see `resume`) and not routed since: the first
    /// route goes on with the stand and dwell the memory had.
    resumed: bool,
    counters: TrackerCounters,
}

impl VehicleTracker {
    /// A tracker for the remaining stops of an order (`first_stop_index` is the
    /// index of `stops[0]` in the order). Every stop must be near a road.
    pub fn new(
        router: &Router,
        order_id: OrderId,
        first_stop_index: u32,
        stops: &[TrackedStop],
        config: TrackerConfig,
    ) -> Result<VehicleTracker> {
        config.validate()?;
        let graph = router.graph();
        let states = stops
            .iter()
            .enumerate()
            .map(|(i, stop)| {
                let snap = Snap::nearest(graph, stop.position, config.stop_snap_radius_m).ok_or(
                    Error::StopOffRoad {
                        stop_index: first_stop_index + i as u32,
                        radius_m: config.stop_snap_radius_m,
                    },
                )?;
                let yard_m = graph
                    .nearest_edges(stop.position, config.stop_snap_radius_m, 1)
                    .first()
                    .map_or(0.0, |c| c.distance_m);
                Ok(StopState {
                    stop: *stop,
                    snap,
                    yard_s: yard_m / config.yard_speed_mps,
                    last_published: None,
                    samples: VecDeque::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(VehicleTracker {
            order_id,
            config,
            first_stop_index,
            stops: states,
            next: 0,
            legs: Vec::new(),
            pos: None,
            last_fix: None,
            standing_s: 0.0,
            anchor: None,
            stall: StallClock::default(),
            stalled_total_s: 0.0,
            tracked_since: None,
            pace: PaceEstimator::new(),
            hos: HosEstimator::new(config.eta.hos, config.eta.hos_observation),
            departs_at: None,
            at_stop: None,
            checkpoints: VecDeque::new(),
            last_checkpoint_at: None,
            own: OwnErrors::new(),
            resumed: false,
            counters: TrackerCounters::default(),
        })
    }

    pub fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    pub fn counters(&self) -> TrackerCounters {
        self.counters
    }

    /// Every stop reached.
    pub fn done(&self) -> bool {
        self.next >= self.stops.len()
    }

    /// The order index of the next stop to reach, if any.
    pub fn next_stop_index(&self) -> Option<u32> {
        (!self.done()).then(|| self.first_stop_index + self.next as u32)
    }

    /// The truck's pace against the metric so far (observed over predicted).
    pub fn pace(&self) -> &PaceEstimator {
        &self.pace
    }

    /// How long the truck has made no net progress towards its next stop at
    /// `now`, seconds.
    pub fn stalled_s(&self, now: DateTime<Utc>) -> f64 {
        self.stall.stalled_s(now)
    }

    /// The truck's stalls on this order up to `now`, finished and current,
    /// seconds in all: the vehicle's own errors leave them out (the stall
    /// hold plans a stand; a two-hour stand is not a pace).
    fn stalled_through_s(&self, now: DateTime<Utc>) -> f64 {
        let current_s = self.stall.stalled_s(now);
        let current_s = if self.config.eta.stall.is_stall(current_s) {
            current_s
        } else {
            0.0
        };
        self.stalled_total_s + current_s
    }

    /// A stall of `length_s` ended (if it was one).
    fn end_stall(&mut self, length_s: f64, out: &mut TrackerOutput) {
        if self.config.eta.stall.is_stall(length_s) {
            out.stalls_s.push(length_s);
            self.stalled_total_s += length_s;
        }
    }

    pub fn hos(&self) -> &HosEstimator {
        &self.hos
    }

    /// Heap memory of the tracker's routes, bytes.
    pub fn route_bytes(&self) -> usize {
        self.legs.iter().map(RoutedLeg::heap_bytes).sum()
    }

    /// Advances the tracker by one fix.
    pub fn on_fix(&mut self, ctx: &TrackingContext<'_>, fix: &VehicleFix) -> TrackerOutput {
        let mut out = TrackerOutput::default();
        if self.done() || self.last_fix.is_some_and(|(t, _)| fix.time <= t) {
            return out;
        }
        self.counters.fixes += 1;
        let now = fix.time;
        self.tracked_since.get_or_insert(now);
        if let Some(stop) = &mut self.at_stop
            && self.config.detect_arrival
        {
            if haversine_m(stop.position, fix.position) > self.config.departure_radius_m {
                out.dwells_s
                    .push(seconds(stop.last_seen - stop.arrived_at).max(0.0));
                self.at_stop = None;
            } else {
                stop.last_seen = now;
            }
        }
        let dt_s = self.last_fix.map(|(t, _)| seconds(now - t));
        let straight_m = self
            .last_fix
            .map_or(0.0, |(_, p)| haversine_m(p, fix.position));
        // Standing: still within a few metres of where the truck stopped (GPS
        // noise moves a parked truck's fixes, and its match, back and forth).
        // A truck passing by is not standing: it must stay near one place for
        // `standing_after_s` first. Once standing, it leaves only beyond twice
        // the radius: one noisy fix must not cut a long stop into short ones
        // (each of which would count as slow driving in the pace).
        let was_standing = match (self.anchor, self.last_fix) {
            (Some((_, since)), Some((last, _))) => {
                seconds(last - since) >= self.config.standing_after_s
            }
            _ => false,
        };
        let leave_m = if was_standing {
            2.0 * self.config.standing_radius_m
        } else {
            self.config.standing_radius_m
        };
        let near = self
            .anchor
            .is_some_and(|(a, _)| haversine_m(a, fix.position) < leave_m);
        if !near {
            self.anchor = Some((fix.position, now));
        }
        let standing = near
            && self
                .anchor
                .is_some_and(|(_, since)| seconds(now - since) >= self.config.standing_after_s);
        let Some(matched) = fix.matched else {
            self.counters.unmatched += 1;
            self.hos
                .observe(now, if standing { 0.0 } else { straight_m }, fix.hos);
            self.last_fix = Some((now, fix.position));
            return out;
        };
        let graph = Arc::clone(ctx.router.graph());

        if let Some(departs) = self.departs_at
            && self.next > 0
            && ((self.config.detect_arrival
                && haversine_m(matched.point, self.stops[self.next - 1].stop.position)
                    > self.config.departure_radius_m)
                || departs <= now)
        {
            self.departs_at = None;
            // The time at the dock was dwell, not slow driving.
            self.standing_s = 0.0;
        }

        // Where the truck is on its route, and what the route predicted for the
        // stretch since the last fix.
        let mut reroute = None;
        let mut moved_m = straight_m;
        let previous = self.pos;
        // The drive left to the stop at the last fix: the pace is progress
        // towards the stop, so a truck that wanders off or loops is slow too.
        let mut left_before_s = None;
        // Metres per route second of the leg's remaining part at the last fix.
        let mut route_mps = None;
        match (self.legs.first(), self.pos) {
            (Some(leg), Some(pos)) => {
                let left = leg.left(&graph, pos);
                left_before_s = Some(left.time_s);
                route_mps = (left.time_s > 0.0).then(|| left.distance_m / left.time_s);
                match leg.locate(matched.edge, matched.offset_m, pos, self.config.backtrack_m) {
                    Some(p) => {
                        let (a, b) = (leg.along(&graph, pos), leg.along(&graph, p));
                        moved_m = (b.distance_m - a.distance_m).max(0.0);
                        self.pos = Some(p);
                    }
                    None => reroute = Some(RerouteReason::OffRoute),
                }
            }
            _ => reroute = Some(RerouteReason::Start),
        }
        self.hos
            .observe(now, if standing { 0.0 } else { moved_m }, fix.hos);

        // A stop reached.
        let at_stop = self.config.detect_arrival
            && haversine_m(matched.point, self.stops[self.next].stop.position)
                <= self.config.arrival_radius_m;
        let near_end = self.config.detect_arrival
            && reroute.is_none()
            && match (self.legs.first(), self.pos) {
                (Some(leg), Some(pos)) => {
                    leg.left(&graph, pos).distance_m <= self.config.arrival_radius_m
                }
                _ => false,
            };
        if at_stop || near_end {
            self.arrive(now, &mut out);
            if self.done() {
                self.last_fix = Some((now, fix.position));
                return out;
            }
            reroute = Some(RerouteReason::StopReached);
            left_before_s = None;
        }

        // A new metric: re-time the route, re-route when the change is material.
        if reroute.is_none()
            && let (Some(pos), Some(first)) = (self.pos, self.legs.first())
            && first.generation != ctx.metric.generation
        {
            let before_s = first.left(&graph, pos).time_s;
            for leg in &mut self.legs {
                leg.time(&graph, &ctx.metric.metric, ctx.metric.generation);
            }
            let after_s = self.legs[0].left(&graph, pos).time_s;
            // Progress is measured on one metric.
            left_before_s = previous.map(|p| self.legs[0].left(&graph, p).time_s);
            let change_s = (after_s - before_s).abs();
            if !after_s.is_finite()
                || change_s
                    >= self
                        .config
                        .reroute_change_min_s
                        .max(self.config.reroute_change_share * before_s)
            {
                reroute = Some(RerouteReason::MetricChanged);
            } else {
                self.counters.retimed += 1;
            }
        }
        if reroute.is_none()
            && self
                .legs
                .first()
                .is_some_and(|leg| seconds(now - leg.routed_at) >= self.config.reroute_max_age_s)
        {
            reroute = Some(RerouteReason::MaxAge);
        }
        if let Some(reason) = reroute {
            if !self.route(ctx, &matched, now, reason) {
                self.counters.unroutable += 1;
                self.last_fix = Some((now, fix.position));
                return out;
            }
            out.rerouted = Some(reason);
        }
        if let (Some(dt), Some(before_s), Some(leg), Some(pos), Some((prev_t, _))) = (
            dt_s,
            left_before_s,
            self.legs.first(),
            self.pos,
            self.last_fix,
        ) {
            let left_now_s = leg.left(&graph, pos).time_s;
            self.close_checkpoints(ctx.calibrator, before_s, left_now_s, prev_t, now, &mut out);
            let mut progress_s = (before_s - left_now_s).max(0.0);
            if reroute == Some(RerouteReason::OffRoute)
                && let Some(mps) = route_mps.filter(|v| *v > 0.0)
            {
                // A new route may be shorter than what was left of the old one
                // (a better way from here): that is not the truck's progress.
                // It gets no more credit than the metres it moved.
                progress_s = progress_s.min(moved_m / mps);
            }
            self.observe_pace(dt, progress_s, moved_m, standing);
        }
        // A new stop starts the stall clock afresh (a tracker resumed after a
        // restart goes on with its own), and dwell at a stop is planned as
        // dwell, not as a stall.
        let stall = &self.config.eta.stall;
        let fresh_start = match reroute {
            Some(RerouteReason::StopReached) => true,
            Some(RerouteReason::Start) => !std::mem::take(&mut self.resumed),
            _ => false,
        };
        let ended_s = match (self.legs.first(), self.pos) {
            (Some(leg), Some(pos)) if self.departs_at.is_none() && !fresh_start => {
                let left_m = leg.left(&graph, pos).distance_m;
                self.stall.advance(left_m, now, stall.progress_m)
            }
            _ => std::mem::take(&mut self.stall).stalled_s(now),
        };
        self.end_stall(ended_s, &mut out);

        let etas = self.estimate(ctx, now);
        let every_s = self.config.checkpoint_every_s;
        if every_s > 0.0
            && self
                .last_checkpoint_at
                .is_none_or(|t| seconds(now - t) >= every_s)
        {
            self.last_checkpoint_at = Some(now);
            // A stalled truck's predictions carry the stall's own hold: the
            // fleet's calibrator learns from moving trucks (whose errors include
            // the stands still to come), not from the stand already seen.
            // Its windows are scored all the same: the coverage scale is
            // learned over the windows as published, stalled or not.
            let stall = &self.config.eta.stall;
            let stalled = self.stall.stalled_s(now) >= stall.after_s;
            let teaches_errors = !stalled || stall.calibrate_while_stalled;
            self.sample(now, &etas, teaches_errors);
            if teaches_errors {
                self.set_checkpoints(ctx, now);
            }
            self.refresh_own(ctx.calibrator, now);
        }
        self.publish(ctx, now, &etas, &mut out);
        out.etas = etas
            .into_iter()
            .enumerate()
            .map(|(k, eta)| (self.first_stop_index + (self.next + k) as u32, eta))
            .collect();
        self.last_fix = Some((now, fix.position));
        out
    }

    /// The next stop is reached at `at` (from a geofence, the driver app or the
    /// tracker itself): logs the arrival and closes its predictions.
    pub fn arrive(&mut self, at: DateTime<Utc>, out: &mut TrackerOutput) {
        // A stall that lasts until the stop ends there.
        let ended_s = std::mem::take(&mut self.stall).stalled_s(at);
        self.end_stall(ended_s, out);
        let stop_index = self.first_stop_index + self.next as u32;
        let trip = trip_key(&self.order_id, stop_index);
        let Some(state) = self.stops.get_mut(self.next) else {
            return;
        };
        for cp in self.checkpoints.drain(..) {
            let actual_s = seconds(at - cp.set_at);
            let error_s = actual_s - cp.predicted.to_go_s;
            out.closed.push(ClosedPrediction {
                predicted: cp.predicted,
                actual_to_go_s: actual_s,
                covered: error_s >= cp.lower_s && error_s <= cp.upper_s,
                source: ClosedBy::Checkpoint,
            });
        }
        for p in state.samples.drain(..) {
            let actual_s = seconds(at - p.predicted_at);
            let predicted = Horizon {
                to_go_s: seconds(p.arrival - p.predicted_at),
                uncertain_s: p.uncertain_s,
                trip,
            };
            if p.teaches_errors {
                out.closed.push(ClosedPrediction {
                    predicted,
                    actual_to_go_s: actual_s,
                    covered: p.p10 <= at && at <= p.p90,
                    source: ClosedBy::Arrival,
                });
            }
            out.windows.extend(WindowOutcome::new(
                predicted,
                seconds(at - p.eta),
                p.unscaled_s,
            ));
        }
        out.arrivals.push(ArrivalRecord {
            order_id: self.order_id.clone(),
            stop_index,
            arrived_at: at,
        });
        self.counters.arrivals += 1;
        let planned_s = state.stop.plan.dwell_s;
        let position = state.stop.position;
        let dwell_s = planned_s.unwrap_or(self.config.eta.dwell.default_s);
        self.next += 1;
        self.departs_at = (!self.done()).then(|| at + millis(dwell_s));
        self.at_stop = (!self.done()).then_some(AtStop {
            position,
            arrived_at: at,
            last_seen: at,
            planned_s,
        });
        if !self.legs.is_empty() {
            self.legs.remove(0);
        }
        self.pos = None;
    }

    /// The next stop is passed over without a visit (skipped by hand, or a
    /// later stop reached first): its predictions are dropped, not closed (they
    /// have no arrival to learn from), and the tracker moves on to the stop
    /// after it, routing afresh at the next fix.
    pub fn skip(&mut self) {
        let Some(state) = self.stops.get_mut(self.next) else {
            return;
        };
        state.samples.clear();
        self.checkpoints.clear();
        self.stall = StallClock::default();
        self.next += 1;
        self.departs_at = None;
        self.at_stop = None;
        if !self.legs.is_empty() {
            self.legs.remove(0);
        }
        self.pos = None;
    }

    /// The truck left the stop it reached at `at` (a geofence said so): its
    /// dwell there ends, and the time since is driving again.
    pub fn depart(&mut self, at: DateTime<Utc>, out: &mut TrackerOutput) {
        if let Some(stop) = self.at_stop.take() {
            out.dwells_s.push(seconds(at - stop.arrived_at).max(0.0));
        }
        self.departs_at = None;
        self.standing_s = 0.0;
    }

    /// The truck is on its way out of the stop it reached: the ETAs stop
    /// planning the rest of its dwell there (its dwell ends at `depart`).
    pub fn leaving(&mut self) {
        self.departs_at = None;
    }

    /// Whether the tracker has no route to its next stop yet (no fix since it
    /// started or moved on): [`VehicleTracker::prime`] gives it one.
    pub fn needs_route(&self) -> bool {
        !self.done() && self.pos.is_none()
    }

    /// Computes the ETAs at `now` from a fix the truck already sent (its last
    /// known position, when the order is dispatched to it or moved on by
    /// hand), even if the tracker saw it: no pace or hours are learnt from it,
    /// only a route and ETAs. A fix off the road (a yard) is taken from the
    /// road nearest it.
    pub fn prime(
        &mut self,
        ctx: &TrackingContext<'_>,
        fix: &VehicleFix,
        now: DateTime<Utc>,
    ) -> TrackerOutput {
        if !self.needs_route() || self.last_fix.is_some_and(|(t, _)| fix.time < t) {
            return TrackerOutput::default();
        }
        // The truck is taken to be where it last reported until now: the ETA
        // counts from now, not from the fix's time.
        let mut fix = VehicleFix {
            time: fix.time.max(now),
            ..*fix
        };
        if fix.matched.is_none() {
            // Of the roads nearest the yard (both ways, every road at a
            // corner), the one the way to the next stop starts on.
            let target = &self.stops[self.next].snap;
            fix.matched = ctx
                .router
                .graph()
                .nearest_edges(fix.position, self.config.stop_snap_radius_m, 8)
                .into_iter()
                .filter_map(|c| {
                    let from = Snap::on_edge(c.edge, c.offset_m);
                    let route = ctx.router.route(&from, target)?;
                    Some((route.duration_ms, c))
                })
                .min_by_key(|(duration_ms, _)| *duration_ms)
                .map(|(_, c)| MatchedPoint {
                    edge: c.edge,
                    offset_m: c.offset_m,
                    point: c.point,
                    distance_m: c.distance_m,
                    confidence: 1.0,
                });
        }
        // Not a fix of this tracker's: the next real one is taken as the first.
        let saved = self.last_fix.take();
        let out = self.on_fix(ctx, &fix);
        self.last_fix = saved;
        out
    }

    fn observe_pace(&mut self, dt_s: f64, predicted_s: f64, moved_m: f64, standing: bool) {
        let config = &self.config;
        if dt_s > config.pace_max_gap_s || self.departs_at.is_some() {
            // A gap says nothing of the pace, and neither does the time at the
            // stop just reached (loading, paperwork: planned as dwell).
            self.standing_s = 0.0;
            return;
        }
        if moved_m > dt_s * config.plausible_speed_mps + config.backtrack_m {
            // A jump of the matched position (a corrected match, a new chain),
            // not driving.
            return;
        }
        if standing {
            // Standing: it counts as pace only if the truck moves on soon (a
            // light, a queue), not if it parks.
            self.standing_s += dt_s;
            return;
        }
        if self.standing_s > 0.0 && self.standing_s <= config.pace_max_standing_s {
            self.pace.observe(&config.eta.pace, self.standing_s, 0.0);
        }
        self.standing_s = 0.0;
        self.pace.observe(&config.eta.pace, dt_s, predicted_s);
    }

    /// Routes leg 0 from the truck and, where missing or stale, the legs between
    /// stops. `false` when the next stop cannot be reached from here.
    fn route(
        &mut self,
        ctx: &TrackingContext<'_>,
        matched: &MatchedPoint,
        now: DateTime<Utc>,
        reason: RerouteReason,
    ) -> bool {
        let graph = ctx.router.graph();
        let from = Snap::on_edge(matched.edge, matched.offset_m);
        let Some(first) = ctx.router.route(&from, &self.stops[self.next].snap) else {
            self.legs.clear();
            self.pos = None;
            return false;
        };
        self.counters.routes += 1;
        match reason {
            RerouteReason::OffRoute => self.counters.reroutes_off_route += 1,
            RerouteReason::MetricChanged => self.counters.reroutes_metric += 1,
            RerouteReason::MaxAge => self.counters.reroutes_age += 1,
            RerouteReason::Start | RerouteReason::StopReached => {}
        }
        let refresh_all = matches!(reason, RerouteReason::MetricChanged | RerouteReason::MaxAge);
        let first = RoutedLeg::new(graph, &ctx.metric.metric, ctx.metric.generation, first, now);
        let mut legs = Vec::with_capacity(self.stops.len() - self.next);
        legs.push(first);
        let old: Vec<RoutedLeg> = self.legs.drain(..).skip(1).collect();
        for k in 1..self.stops.len() - self.next {
            let reuse = old.get(k - 1).filter(|_| !refresh_all).cloned();
            let leg = match reuse {
                Some(mut leg) => {
                    if leg.generation != ctx.metric.generation {
                        leg.time(graph, &ctx.metric.metric, ctx.metric.generation);
                    }
                    Some(leg)
                }
                None => {
                    let (a, b) = (
                        &self.stops[self.next + k - 1].snap,
                        &self.stops[self.next + k].snap,
                    );
                    ctx.router.route(a, b).map(|r| {
                        RoutedLeg::new(graph, &ctx.metric.metric, ctx.metric.generation, r, now)
                    })
                }
            };
            // A stop that cannot be reached from the previous one ends the ETAs
            // there; the stops before it still get theirs.
            let Some(leg) = leg else { break };
            legs.push(leg);
        }
        self.legs = legs;
        self.pos = Some(LegPosition {
            index: 0,
            offset_m: self.legs[0].route.from.offset_m,
        });
        true
    }

    fn estimate(&self, ctx: &TrackingContext<'_>, now: DateTime<Utc>) -> Vec<StopEta> {
        let graph = ctx.router.graph();
        let Some(pos) = self.pos else {
            return Vec::new();
        };
        let legs: Vec<Leg> = self
            .legs
            .iter()
            .enumerate()
            .map(|(k, leg)| {
                let along = if k == 0 {
                    leg.left(graph, pos)
                } else {
                    leg.total()
                };
                // Through the yard of the stop it ends at, and out of the one
                // it starts from.
                let into_s = self.stops[self.next + k].yard_s;
                let out_of_s = if k == 0 {
                    0.0
                } else {
                    self.stops[self.next + k - 1].yard_s
                };
                let yard_s = into_s + out_of_s;
                Leg {
                    drive_s: along.time_s + yard_s,
                    free_flow_s: along.free_s + yard_s,
                    distance_m: along.distance_m + yard_s * self.config.yard_speed_mps,
                }
            })
            .collect();
        let plans: Vec<StopPlan> = self.stops[self.next..]
            .iter()
            .map(|s| s.stop.plan)
            .collect();
        let input = EtaInput {
            now,
            legs: &legs,
            stops: &plans,
            hos: self.hos.clocks(),
            pace_factor: self.pace.factor(&self.config.eta.pace),
            departs_at: self.departs_at.and_then(|planned| {
                // A stop with no dwell of its own is planned at the fleet's.
                let departs = match self.at_stop {
                    Some(stop) if stop.planned_s.is_none() => {
                        stop.arrived_at + millis(ctx.calibrator.dwell_s(&self.config.eta.dwell))
                    }
                    _ => planned,
                };
                (departs > now).then_some(departs)
            }),
            own: self.own.quantiles(),
            stalled_s: self.stall.stalled_s(now),
            stall_share: self.config.eta.stall.share(
                self.stalled_total_s,
                self.tracked_since.map_or(0.0, |t| seconds(now - t)),
            ),
        };
        estimate_stops(&input, &self.config.eta, ctx.calibrator)
    }
}

/// When the truck last came nearer its stop: a stall is the time since it was
/// last `progress_m` nearer (along its route, whichever route) than at the
/// previous such moment, so standing, crawling round a yard and driving away
/// or in circles all count, and a short detour counts only until the truck is
/// back.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct StallClock {
    /// When, and the distance left then, metres.
    mark: Option<(DateTime<Utc>, f64)>,
}

impl StallClock {
    /// The truck is `left_m` from its stop at `now`: returns the length of the
    /// stand that this progress ends, seconds (0 when none).
    fn advance(&mut self, left_m: f64, now: DateTime<Utc>, progress_m: f64) -> f64 {
        if !left_m.is_finite() {
            return 0.0;
        }
        if self
            .mark
            .is_none_or(|(_, best_m)| left_m <= best_m - progress_m)
        {
            let ended_s = self.stalled_s(now);
            self.mark = Some((now, left_m));
            return ended_s;
        }
        0.0
    }

    fn stalled_s(&self, now: DateTime<Utc>) -> f64 {
        self.mark.map_or(0.0, |(t, _)| seconds(now - t).max(0.0))
    }
}

fn reason_flags(reasons: &[EtaReason]) -> [bool; 4] {
    [
        reasons.contains(&EtaReason::Traffic),
        reasons.contains(&EtaReason::HosBreak),
        reasons.contains(&EtaReason::Dwell),
        reasons.contains(&EtaReason::WindowWait),
    ]
}

/// The calibrator's key for one order stop's predictions: they are one trip,
/// not independent samples. Deterministic, so replays give the same windows.
pub(crate) fn trip_key(order_id: &OrderId, stop_index: u32) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    order_id.hash(&mut hasher);
    stop_index.hash(&mut hasher);
    hasher.finish()
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn millis(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0).round() as i64)
}
