//! What a tracker gives out besides the ETA itself: published updates (only when
//! the ETA moved enough, or the last one is old), their log records, and the
//! calibration material — ETA samples taken at a steady cadence and closed at the
//! arrival, and progress checkpoints closed when the truck passes them.

use chrono::{DateTime, Utc};

use super::{
    MAX_CHECKPOINTS, MAX_SAMPLES, Published, Sample, TrackingContext, VehicleTracker, millis,
    reason_flags, seconds, trip_key,
};
use crate::eta::{Calibrator, Horizon, StopEta};
use crate::events::EtaUpdate;
use crate::tracking::log::{Checkpoint, ClosedBy, ClosedPrediction, PredictionRecord};
use crate::tracking::vehicle::TrackerOutput;

/// Driving (at the truck's pace) after which progress checkpoints are set,
/// seconds.
const CHECKPOINT_DRIVES_S: [f64; 7] = [300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0];

impl VehicleTracker {
    /// Keeps the current arrival predictions, to close at the arrival;
    /// `teaches_errors`: whether their errors teach the calibrator's
    /// percentiles as well as their windows' coverage.
    pub(super) fn sample(&mut self, now: DateTime<Utc>, etas: &[StopEta], teaches_errors: bool) {
        for (k, eta) in etas.iter().enumerate() {
            let Some(state) = self.stops.get_mut(self.next + k) else {
                break;
            };
            if state.samples.len() == MAX_SAMPLES {
                state.samples.pop_front();
            }
            state.samples.push_back(Sample {
                predicted_at: now,
                arrival: eta.arrival,
                uncertain_s: eta.drive_s + eta.dwell_s,
                p10: eta.p10,
                p90: eta.p90,
                eta: eta.eta,
                unscaled_s: eta.unscaled_s,
                teaches_errors,
            });
        }
    }

    /// Sets checkpoints ahead: after each horizon, at the truck's pace, this
    /// much drive should be left to the next stop. Expressed in drive left rather
    /// than as a place, they survive re-routes, and a truck that wanders or loops
    /// reaches them late, as it reaches the stop late.
    pub(super) fn set_checkpoints(&mut self, ctx: &TrackingContext<'_>, now: DateTime<Utc>) {
        if self.departs_at.is_some() || self.checkpoints.len() >= MAX_CHECKPOINTS {
            return;
        }
        let (Some(leg), Some(pos)) = (self.legs.first(), self.pos) else {
            return;
        };
        let graph = ctx.router.graph();
        let factor = self.pace.factor(&self.config.eta.pace);
        let left_s = leg.left(graph, pos).time_s;
        let clocks = self.hos.clocks();
        let trip = trip_key(&self.order_id, self.first_stop_index + self.next as u32);
        let stalled_through_s = self.stalled_through_s(now);
        let mut stops = Vec::new();
        for drive_s in CHECKPOINT_DRIVES_S {
            let target_left_s = left_s - drive_s / factor;
            // Beyond the stop the samples closed at the arrival cover it.
            if target_left_s <= 0.0 {
                break;
            }
            // The time to get there as the ETA sees it: the drive at the
            // truck's pace and any hours-of-service stop on the way.
            let mut played = clocks;
            let predicted = Horizon {
                to_go_s: played.drive(&self.config.eta.hos, drive_s, &mut stops),
                uncertain_s: drive_s,
                trip,
            };
            let (lower_s, upper_s) = ctx.calibrator.window_s(predicted);
            let cp = Checkpoint {
                set_at: now,
                target_left_s,
                predicted,
                lower_s,
                upper_s,
                stalled_through_s,
            };
            // Ordered by the drive left, largest (reached first) at the front.
            let at = self
                .checkpoints
                .iter()
                .position(|c| c.target_left_s < target_left_s)
                .unwrap_or(self.checkpoints.len());
            self.checkpoints.insert(at, cp);
        }
    }

    /// Closes the checkpoints reached between the previous fix (`left_before_s`
    /// of drive left, at `prev_t`) and now (`left_now_s`).
    pub(super) fn close_checkpoints(
        &mut self,
        calibrator: &Calibrator,
        left_before_s: f64,
        left_now_s: f64,
        prev_t: DateTime<Utc>,
        now: DateTime<Utc>,
        out: &mut TrackerOutput,
    ) {
        let stalled_through_s = self.stalled_through_s(now);
        while let Some(cp) = self.checkpoints.front().copied() {
            if cp.target_left_s < left_now_s {
                break;
            }
            self.checkpoints.pop_front();
            // Reached between the two fixes: interpolate in drive left.
            let share = if left_before_s > left_now_s {
                ((left_before_s - cp.target_left_s) / (left_before_s - left_now_s)).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let reached = prev_t + millis(seconds(now - prev_t) * share);
            let actual_s = seconds(reached - cp.set_at).max(0.0);
            let error_s = actual_s - cp.predicted.to_go_s;
            let stalled_s = (stalled_through_s - cp.stalled_through_s).max(0.0);
            self.own
                .record(calibrator, cp.predicted, (actual_s - stalled_s).max(0.0));
            out.closed.push(ClosedPrediction {
                predicted: cp.predicted,
                actual_to_go_s: actual_s,
                covered: error_s >= cp.lower_s && error_s <= cp.upper_s,
                source: ClosedBy::Checkpoint,
            });
        }
    }

    /// Recomputes the vehicle's own error percentiles, counting the checkpoints
    /// it is already late for. Both leave the truck's stalls out: the stall
    /// hold plans the current one, and a stand is not a pace to scale every
    /// horizon by.
    pub(super) fn refresh_own(&mut self, calibrator: &Calibrator, now: DateTime<Utc>) {
        let stalled_through_s = self.stalled_through_s(now);
        let overdue: Vec<f64> = self
            .checkpoints
            .iter()
            .filter_map(|cp| {
                let stalled_s = (stalled_through_s - cp.stalled_through_s).max(0.0);
                let elapsed_s = seconds(now - cp.set_at) - stalled_s;
                (elapsed_s > cp.predicted.to_go_s)
                    .then(|| calibrator.relative_error(cp.predicted, elapsed_s))
                    .flatten()
            })
            .collect();
        self.own.refresh(&overdue);
    }

    /// Publishes the ETAs that moved by `publish_min_change_s`, changed their
    /// reasons, or were last published `publish_max_interval_s` ago.
    pub(super) fn publish(
        &mut self,
        ctx: &TrackingContext<'_>,
        now: DateTime<Utc>,
        etas: &[StopEta],
        out: &mut TrackerOutput,
    ) {
        let graph = ctx.router.graph();
        for (k, eta) in etas.iter().enumerate() {
            let reasons = reason_flags(&eta.reasons);
            let Some(state) = self.stops.get_mut(self.next + k) else {
                break;
            };
            let due = match state.last_published {
                None => true,
                Some(last) => {
                    seconds(eta.eta - last.eta).abs() >= self.config.publish_min_change_s
                        || seconds(now - last.predicted_at) >= self.config.publish_max_interval_s
                        || last.reasons != reasons
                }
            };
            if !due {
                continue;
            }
            let stop_index = self.first_stop_index + (self.next + k) as u32;
            let route = match (k, self.legs.first(), self.pos) {
                (0, Some(leg), Some(pos)) => {
                    leg.geometry_from(graph, pos, self.config.route_points)
                }
                _ => Vec::new(),
            };
            out.updates.push(EtaUpdate {
                order_id: self.order_id.clone(),
                stop_index,
                eta: eta.eta,
                p10: eta.p10,
                p90: eta.p90,
                remaining_distance_m: eta.distance_m,
                remaining_drive_s: eta.drive_s,
                reasons: eta.reasons.clone(),
                computed_at: now,
                free_flow_drive_s: Some(eta.free_flow_s),
                route,
            });
            out.predictions.push(PredictionRecord {
                order_id: self.order_id.clone(),
                stop_index,
                predicted_at: now,
                eta: eta.eta,
                p10: eta.p10,
                p90: eta.p90,
                horizon_s: seconds(eta.eta - now),
            });
            state.last_published = Some(Published {
                predicted_at: now,
                eta: eta.eta,
                reasons,
            });
            self.counters.published += 1;
        }
    }
}
