//! The orders the live engine tracks, as the store knows them ([`ActiveOrder`]),
//! and what the engine keeps per order: the [`VehicleTracker`] of its remaining
//! stops, the stop the truck is standing at, and the stop and status machine
//! that turns the truck's raw fixes in and out of the stops' fences into
//! arrivals, departures and status changes.
//!
//! Each stop is `pending`, then `arrived` (inside its fence, slow, for
//! `arrival_after_s`), then `departed` (outside it for `departure_after_s`);
//! or `skipped`, when a later stop is reached while it is pending. The order's
//! status follows: `at_pickup` / `at_delivery` on arriving, `picked_up` on
//! leaving a pickup, `out_for_delivery` on leaving a delivery that is not the
//! last stop, `delivered` on leaving the last stop.
//!
//! The store and the engine both move an order: dispatchers and drivers through
//! the API, the engine through its geofences. The store wins: a refresh adopts
//! every arrival, departure and skip recorded there, and the geofences only
//! ever watch stops still pending, so they never re-fire a stop marked by hand
//! nor move the status backwards (every move is checked by
//! [`OrderStatus::transition`]).

use chrono::{DateTime, Utc};
use road_graph::LatLon;
use serde::{Deserialize, Serialize};

use super::geofence::{FenceClocks, Geofence, inside, seconds};
use crate::eta::{AppointmentWindow, StopPlan};
use crate::events::{StatusChange, StatusSource};
use crate::order::{OrderId, OrderStatus, StopKind};
use crate::position::{TenantId, VehicleId, VehicleKey};
use crate::routing::Router;
use crate::tracking::{TrackedStop, TrackerConfig, TrackerOutput, VehicleTracker};

/// An order in progress with a vehicle assigned, as the store has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveOrder {
    pub order_id: OrderId,
    /// The order's tenant: only this tenant's positions of `vehicle_id` move it.
    pub tenant_id: TenantId,
    pub vehicle_id: VehicleId,
    pub status: OrderStatus,
    /// In the order's sequence; a stop's index is its place here.
    pub stops: Vec<ActiveStop>,
}

impl ActiveOrder {
    /// The truck that carries it.
    pub fn vehicle_key(&self) -> VehicleKey {
        VehicleKey::new(self.tenant_id.clone(), self.vehicle_id.clone())
    }
}

/// One stop of an [`ActiveOrder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveStop {
    pub kind: StopKind,
    pub position: LatLon,
    pub window: Option<AppointmentWindow>,
    /// The stop's own fence (else a circle of the tracker's
    /// `geofence_radius_m`).
    #[serde(default)]
    pub geofence: Option<Geofence>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub departed_at: Option<DateTime<Utc>>,
    /// Passed over without a visit.
    #[serde(default)]
    pub skipped_at: Option<DateTime<Utc>>,
}

impl ActiveStop {
    /// Not reached, left or skipped yet.
    pub fn is_pending(&self) -> bool {
        self.arrived_at.is_none() && self.departed_at.is_none() && self.skipped_at.is_none()
    }
}

/// What makes a tracker obsolete when it changes: the vehicle and the stops'
/// places, fences and windows (not their arrivals, which the tracker follows).
fn same_plan(a: &ActiveOrder, b: &ActiveOrder) -> bool {
    a.tenant_id == b.tenant_id
        && a.vehicle_id == b.vehicle_id
        && a.stops.len() == b.stops.len()
        && a.stops.iter().zip(&b.stops).all(|(x, y)| {
            x.kind == y.kind
                && x.position == y.position
                && x.window == y.window
                && x.geofence == y.geofence
        })
}

/// The engine's state of one order.
#[derive(Debug, Clone)]
pub(crate) struct OrderState {
    /// The order as the engine last knew it (status and stop states include
    /// the engine's own moves).
    pub(crate) order: ActiveOrder,
    /// `None` once every stop is reached (or when a stop is off the map).
    pub(crate) tracker: Option<VehicleTracker>,
    /// The stop the truck is standing at: reached, not yet left.
    pub(crate) at_stop: Option<u32>,
    config: TrackerConfig,
    clocks: FenceClocks,
}

/// Why an order cannot be tracked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Untrackable(pub(crate) String);

impl OrderState {
    /// The state of a newly seen order: a tracker from its first pending stop.
    /// The tracker does not notice arrivals itself: the fences do.
    pub(crate) fn new(
        router: &Router,
        order: ActiveOrder,
        config: TrackerConfig,
        early_allowed: bool,
    ) -> (OrderState, Option<Untrackable>) {
        let config = TrackerConfig {
            detect_arrival: false,
            ..config
        };
        let first = first_pending(&order);
        let remaining: Vec<TrackedStop> = order.stops[first..]
            .iter()
            .map(|s| TrackedStop {
                position: s.position,
                plan: StopPlan {
                    window: s.window,
                    early_allowed,
                    dwell_s: None,
                },
            })
            .collect();
        let mut problem = None;
        let tracker = if remaining.is_empty() {
            None
        } else {
            match VehicleTracker::new(
                router,
                order.order_id.clone(),
                first as u32,
                &remaining,
                config,
            ) {
                Ok(t) => Some(t),
                Err(e) => {
                    problem = Some(Untrackable(e.to_string()));
                    None
                }
            }
        };
        let at_stop = standing_at(&order, first);
        let clocks = FenceClocks::new(order.stops.len());
        (
            OrderState {
                order,
                tracker,
                at_stop,
                config,
                clocks,
            },
            problem,
        )
    }

    /// Whether `fresh` (from the store) has the same plan as what is tracked.
    pub(crate) fn same_plan(&self, fresh: &ActiveOrder) -> bool {
        same_plan(&self.order, fresh)
    }

    /// Adopts what moved in the store since the engine read it: a status the
    /// current one may move to, arrivals, departures and skips recorded there
    /// (by hand: they win over the fences). Returns what the tracker closed on
    /// arrivals it learnt this way.
    pub(crate) fn refresh(&mut self, fresh: &ActiveOrder) -> TrackerOutput {
        let mut out = TrackerOutput::default();
        if fresh.status != self.order.status && self.order.status.transition(fresh.status).is_ok() {
            self.order.status = fresh.status;
        }
        for (mine, theirs) in self.order.stops.iter_mut().zip(&fresh.stops) {
            if theirs.arrived_at.is_some() {
                mine.arrived_at = theirs.arrived_at;
            }
            if theirs.departed_at.is_some() {
                mine.departed_at = theirs.departed_at;
            }
            if theirs.skipped_at.is_some() && mine.arrived_at.is_none() {
                mine.skipped_at = theirs.skipped_at;
            }
        }
        let first = first_pending(&self.order);
        // A dispatcher or driver moved the order on: so does the tracker.
        if let Some(tracker) = self.tracker.as_mut() {
            while let Some(k) = tracker.next_stop_index().filter(|&k| (k as usize) < first) {
                match self.order.stops[k as usize].arrived_at {
                    Some(at) => tracker.arrive(at, &mut out),
                    None => tracker.skip(),
                }
            }
        }
        let standing = standing_at(&self.order, first);
        if standing != self.at_stop {
            if standing.is_none()
                && let (Some(tracker), Some(k)) = (self.tracker.as_mut(), self.at_stop)
                && let Some(at) = self.order.stops[k as usize].departed_at
            {
                tracker.depart(at, &mut out);
            }
            self.at_stop = standing;
            self.clocks.outside_since = None;
        }
        if self.tracker.as_ref().is_some_and(VehicleTracker::done) {
            self.tracker = None;
        }
        out
    }

    /// Runs the fences on one raw fix of the truck (matched or not: a yard is
    /// off the road): the departure from the stop it stands at, the arrival
    /// at a pending one. Returns the status changes, in order; what the
    /// tracker closed goes to `out`.
    pub(crate) fn on_raw_fix(
        &mut self,
        at: DateTime<Utc>,
        position: LatLon,
        reported_mps: Option<f64>,
        out: &mut TrackerOutput,
    ) -> Vec<StatusChange> {
        let mut changes = Vec::new();
        let speed_mps = self.clocks.speed_mps(at, position, reported_mps);
        let slow = speed_mps.is_some_and(|v| v <= self.config.arrival_max_speed_mps);
        if let Some(k) = self.at_stop {
            if self.inside(k as usize, position) {
                self.clocks.outside_since = None;
            } else {
                if self.clocks.outside_since.is_none()
                    && let Some(tracker) = self.tracker.as_mut()
                {
                    // Out of the yard: the ETAs no longer plan the dwell
                    // there (the departure itself waits for the debounce).
                    tracker.leaving();
                }
                let since = *self.clocks.outside_since.get_or_insert(at);
                if seconds(since, at) >= self.config.departure_after_s {
                    changes.extend(self.depart(k, since, out));
                }
            }
        }
        let first = first_pending(&self.order);
        let mut reached = None;
        for j in first..self.order.stops.len() {
            let watched = self.order.stops[j].is_pending() && self.inside(j, position) && slow;
            let clock = &mut self.clocks.slow_inside_since[j];
            if !watched {
                *clock = None;
                continue;
            }
            let since = *clock.get_or_insert(at);
            let need_s = if j == first {
                self.config.arrival_after_s
            } else {
                self.config.skip_after_s
            };
            if reached.is_none() && seconds(since, at) >= need_s {
                reached = Some((j, since));
            }
        }
        if let Some((j, since)) = reached {
            if let Some(k) = self.at_stop {
                changes.extend(self.depart(k, since, out));
            }
            for i in first..j {
                self.skip(i, since);
            }
            changes.extend(self.arrive(j as u32, since, out));
        }
        changes
    }

    fn inside(&self, k: usize, p: LatLon) -> bool {
        let stop = &self.order.stops[k];
        inside(
            stop.geofence.as_ref(),
            stop.position,
            p,
            self.config.geofence_radius_m,
        )
    }

    /// Stop `k` is passed over: the tracker moves past it, no status.
    fn skip(&mut self, k: usize, at: DateTime<Utc>) {
        self.order.stops[k].skipped_at = Some(at);
        self.clocks.slow_inside_since[k] = None;
        if let Some(tracker) = self.tracker.as_mut()
            && tracker.next_stop_index() == Some(k as u32)
        {
            tracker.skip();
        }
    }

    /// The truck reached stop `k` at `at`: the tracker closes its predictions
    /// and moves on; the status change, when the order may take it.
    fn arrive(
        &mut self,
        k: u32,
        at: DateTime<Utc>,
        out: &mut TrackerOutput,
    ) -> Option<StatusChange> {
        if let Some(tracker) = self.tracker.as_mut() {
            while tracker.next_stop_index().is_some_and(|i| i < k) {
                tracker.skip();
            }
            if tracker.next_stop_index() == Some(k) {
                tracker.arrive(at, out);
            }
            if tracker.done() {
                self.tracker = None;
            }
        }
        let stop = self.order.stops.get_mut(k as usize)?;
        stop.arrived_at.get_or_insert(at);
        self.clocks.slow_inside_since[k as usize] = None;
        self.clocks.outside_since = None;
        self.at_stop = Some(k);
        let (to, note) = match stop.kind {
            StopKind::Pickup => (OrderStatus::AtPickup, "Arrived at the pickup."),
            StopKind::Delivery => (OrderStatus::AtDelivery, "Arrived at the delivery."),
        };
        self.move_to(to, at, k, note)
    }

    /// The truck left stop `k` at `at`: a pickup left is `picked_up`, a
    /// delivery left `out_for_delivery`, the last stop left `delivered`.
    fn depart(
        &mut self,
        k: u32,
        at: DateTime<Utc>,
        out: &mut TrackerOutput,
    ) -> Option<StatusChange> {
        let last = k as usize + 1 == self.order.stops.len();
        let stop = self.order.stops.get_mut(k as usize)?;
        stop.departed_at.get_or_insert(at);
        let kind = stop.kind;
        self.at_stop = None;
        self.clocks.outside_since = None;
        if let Some(tracker) = self.tracker.as_mut() {
            tracker.depart(at, out);
        }
        let (to, note) = match (kind, last) {
            (_, true) => (OrderStatus::Delivered, "Left the last stop: delivered."),
            (StopKind::Pickup, false) => (OrderStatus::PickedUp, "Left the pickup with the load."),
            (StopKind::Delivery, false) => (
                OrderStatus::OutForDelivery,
                "Left the delivery, on to the next stop.",
            ),
        };
        self.move_to(to, at, k, note)
    }

    fn move_to(
        &mut self,
        to: OrderStatus,
        at: DateTime<Utc>,
        stop_index: u32,
        note: &str,
    ) -> Option<StatusChange> {
        if self.order.status == to || self.order.status.transition(to).is_err() {
            return None;
        }
        self.order.status = to;
        Some(StatusChange {
            order_id: self.order.order_id.clone(),
            status: to,
            at,
            stop_index: Some(stop_index),
            note: Some(note.to_owned()),
            source: StatusSource::Geofence,
        })
    }
}

/// The index of the first stop neither reached, left nor skipped (the stop
/// count when there is none). Stops before it are done with, even one left
/// pending behind a later one marked by hand.
fn first_pending(order: &ActiveOrder) -> usize {
    order
        .stops
        .iter()
        .rposition(|s| !s.is_pending())
        .map_or(0, |k| k + 1)
}

/// The stop the truck stands at when the first pending one is `first`: the
/// one before it, if reached and not left.
fn standing_at(order: &ActiveOrder, first: usize) -> Option<u32> {
    first
        .checked_sub(1)
        .filter(|&k| order.stops[k].arrived_at.is_some() && order.stops[k].departed_at.is_none())
        .map(|k| k as u32)
}
