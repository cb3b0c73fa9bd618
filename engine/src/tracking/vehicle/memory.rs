//! What a tracker knows of its truck beyond the order's plan, so that it
//! outlives a restart: the truck's pace, its hours-of-service clocks as
//! observed, its stands (the current one, and how much of the trip it has
//! stood), its own prediction errors, and its last fix. A tracker rebuilt from
//! the order after a restart and given its [`TrackerMemory`] predicts as the
//! old one would have; without it, a driver ten hours into his day would be
//! planned to drive eleven more before a rest.
//!
//! Not kept: the route (the first fix routes afresh), the publish state (the
//! first ETA after a restart is published), and the predictions in flight
//! (samples and checkpoints: those open at a restart do not teach the
//! calibrator). The current stand and the dwell (at the stop just reached)
//! belong to the next stop and
//! are taken up only when the tracker's next stop is the same one, at the
//! same place.

use chrono::{DateTime, Utc};
use road_graph::LatLon;
use serde::{Deserialize, Serialize};

use super::{AtStop, StallClock, VehicleTracker};
use crate::eta::{HosEstimator, OwnErrors, PaceEstimator};
use crate::order::OrderId;

/// A tracker's memory of its truck (see the module docs). Serializable;
/// opaque to callers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerMemory {
    order_id: OrderId,
    /// The order index and place of the next stop when it was taken.
    next_stop: Option<(u32, LatLon)>,
    last_fix: Option<(DateTime<Utc>, LatLon)>,
    standing_s: f64,
    anchor: Option<(LatLon, DateTime<Utc>)>,
    /// Since when, and the distance left then (metres), without progress.
    stall: Option<(DateTime<Utc>, f64)>,
    stalled_total_s: f64,
    tracked_since: Option<DateTime<Utc>>,
    pace: PaceEstimator,
    hos: HosEstimator,
    departs_at: Option<DateTime<Utc>>,
    #[serde(default)]
    at_stop: Option<AtStop>,
    own: OwnErrors,
}

impl TrackerMemory {
    /// The order whose tracker this is.
    pub fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    /// The device time of the newest fix the tracker took (`None` before its
    /// first): how far the memory goes, so that an older save never replaces
    /// a newer one.
    pub fn applied_through(&self) -> Option<DateTime<Utc>> {
        self.last_fix.map(|(time, _)| time)
    }
}

/// What [`VehicleTracker::resume`] took up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// Everything: the next stop is the one the memory was taken on.
    Whole,
    /// The truck's pace, clocks, errors and last fix; not the stand or the
    /// dwell (the next stop changed meanwhile).
    TruckOnly,
    /// Nothing: another order's memory, or one taken under other
    /// hours-of-service rules.
    Refused,
}

impl VehicleTracker {
    /// The order index and place of the next stop: what a memory's stand and
    /// dwell belong to.
    fn next_stop(&self) -> Option<(u32, LatLon)> {
        self.stops
            .get(self.next)
            .map(|s| (self.first_stop_index + self.next as u32, s.stop.position))
    }

    /// The tracker's memory of its truck now.
    pub fn memory(&self) -> TrackerMemory {
        TrackerMemory {
            order_id: self.order_id.clone(),
            next_stop: self.next_stop(),
            last_fix: self.last_fix,
            standing_s: self.standing_s,
            anchor: self.anchor,
            stall: self.stall.mark,
            stalled_total_s: self.stalled_total_s,
            tracked_since: self.tracked_since,
            pace: self.pace,
            hos: self.hos.clone(),
            departs_at: self.departs_at,
            at_stop: self.at_stop,
            own: self.own.clone(),
        }
    }

    /// Takes up a memory of the same order, taken before a restart (by a
    /// tracker that may have been at an earlier stop). Call it on a fresh
    /// tracker, before its first fix.
    pub fn resume(&mut self, memory: TrackerMemory) -> Resumed {
        if memory.order_id != self.order_id || memory.hos.rules() != self.hos.rules() {
            return Resumed::Refused;
        }
        self.last_fix = memory.last_fix;
        self.standing_s = memory.standing_s;
        self.anchor = memory.anchor;
        self.stalled_total_s = memory.stalled_total_s;
        self.tracked_since = memory.tracked_since;
        self.pace = memory.pace;
        self.hos = memory.hos;
        self.own = memory.own;
        let next_stop = self.next_stop();
        if next_stop.is_some() && memory.next_stop == next_stop {
            self.stall = StallClock { mark: memory.stall };
            self.departs_at = memory.departs_at;
            self.at_stop = memory.at_stop;
            self.resumed = true;
            Resumed::Whole
        } else {
            Resumed::TruckOnly
        }
    }
}
