//! The orders the live engine tracks, as the store knows them ([`ActiveOrder`]),
//! and what the engine keeps per order: the [`VehicleTracker`] of its remaining
//! stops, the stop the truck is standing at, and the geofence rules that turn
//! arrivals and departures into status changes.
//!
//! The store and the engine both move an order: dispatchers and drivers through
//! the API, the engine through its geofences. A refresh from the store adopts
//! what moved there (a forward status, an arrival recorded by hand) without
//! undoing what the engine did since the store was read.

use chrono::{DateTime, Utc};
use road_graph::{LatLon, haversine_m};
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActiveStop {
    pub kind: StopKind,
    pub position: LatLon,
    pub window: Option<AppointmentWindow>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub departed_at: Option<DateTime<Utc>>,
}

/// What makes a tracker obsolete when it changes: the vehicle and the stops'
/// places and windows (not their arrivals, which the tracker follows).
fn same_plan(a: &ActiveOrder, b: &ActiveOrder) -> bool {
    a.tenant_id == b.tenant_id
        && a.vehicle_id == b.vehicle_id
        && a.stops.len() == b.stops.len()
        && a.stops
            .iter()
            .zip(&b.stops)
            .all(|(x, y)| x.kind == y.kind && x.position == y.position && x.window == y.window)
}

/// The engine's state of one order.
#[derive(Debug, Clone)]
pub(crate) struct OrderState {
    /// The order as the engine last knew it (status and arrivals include the
    /// engine's own moves).
    pub(crate) order: ActiveOrder,
    /// `None` once every stop is reached (or when a stop is off the map).
    pub(crate) tracker: Option<VehicleTracker>,
    /// The stop the truck is standing at: reached, not yet left.
    pub(crate) at_stop: Option<u32>,
}

/// Why an order cannot be tracked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Untrackable(pub(crate) String);

impl OrderState {
    /// The state of a newly seen order: a tracker from its first stop not yet
    /// reached.
    pub(crate) fn new(
        router: &Router,
        order: ActiveOrder,
        config: TrackerConfig,
        early_allowed: bool,
    ) -> (OrderState, Option<Untrackable>) {
        let first = order
            .stops
            .iter()
            .position(|s| s.arrived_at.is_none())
            .unwrap_or(order.stops.len());
        let at_stop = first
            .checked_sub(1)
            .filter(|&k| order.stops[k].departed_at.is_none())
            .map(|k| k as u32);
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
        (
            OrderState {
                order,
                tracker,
                at_stop,
            },
            problem,
        )
    }

    /// Whether `fresh` (from the store) has the same plan as what is tracked.
    pub(crate) fn same_plan(&self, fresh: &ActiveOrder) -> bool {
        same_plan(&self.order, fresh)
    }

    /// Adopts what moved in the store since the engine read it: a status the
    /// current one may move to, arrivals and departures recorded there. Returns
    /// what the tracker closed on arrivals it learnt this way.
    pub(crate) fn refresh(&mut self, fresh: &ActiveOrder) -> TrackerOutput {
        let mut out = TrackerOutput::default();
        if fresh.status != self.order.status && self.order.status.transition(fresh.status).is_ok() {
            self.order.status = fresh.status;
        }
        for (k, stop) in fresh.stops.iter().enumerate() {
            let mine = &mut self.order.stops[k];
            if let Some(at) = stop.arrived_at
                && mine.arrived_at.is_none()
            {
                mine.arrived_at = Some(at);
                // A dispatcher or driver reported it: the tracker moves on.
                if let Some(tracker) = self.tracker.as_mut() {
                    while tracker.next_stop_index().is_some_and(|i| i as usize <= k) {
                        tracker.arrive(at, &mut out);
                    }
                }
                if stop.departed_at.is_none() {
                    self.at_stop = Some(k as u32);
                }
            }
            if stop.departed_at.is_some() {
                mine.departed_at = stop.departed_at;
                if self.at_stop == Some(k as u32) {
                    self.at_stop = None;
                }
            }
        }
        if self.tracker.as_ref().is_some_and(VehicleTracker::done) {
            self.tracker = None;
        }
        out
    }

    /// The status change for reaching stop `k`, when the order may take it.
    pub(crate) fn arrived(&mut self, k: u32, at: DateTime<Utc>) -> Option<StatusChange> {
        let stop = self.order.stops.get_mut(k as usize)?;
        stop.arrived_at.get_or_insert(at);
        self.at_stop = Some(k);
        let to = match stop.kind {
            StopKind::Pickup => OrderStatus::AtPickup,
            StopKind::Delivery => OrderStatus::AtDelivery,
        };
        let note = match stop.kind {
            StopKind::Pickup => "Arrived at the pickup.",
            StopKind::Delivery => "Arrived at the delivery.",
        };
        self.move_to(to, at, k, note)
    }

    /// Checks whether the truck, now at `point`, has left the stop it stood at;
    /// the status change for leaving it, when there is one: a pickup left is
    /// `picked_up`, the last stop left (a delivery) is `delivered`.
    pub(crate) fn maybe_departed(
        &mut self,
        point: LatLon,
        at: DateTime<Utc>,
        radius_m: f64,
    ) -> Option<StatusChange> {
        let k = self.at_stop?;
        let last = k as usize + 1 == self.order.stops.len();
        let stop = self.order.stops.get_mut(k as usize)?;
        if haversine_m(point, stop.position) <= radius_m {
            return None;
        }
        stop.departed_at.get_or_insert(at);
        let kind = stop.kind;
        self.at_stop = None;
        match (kind, last) {
            (StopKind::Pickup, _) => self.move_to(
                OrderStatus::PickedUp,
                at,
                k,
                "Left the pickup with the load.",
            ),
            (StopKind::Delivery, true) => self.move_to(
                OrderStatus::Delivered,
                at,
                k,
                "Left the delivery stop: delivered.",
            ),
            (StopKind::Delivery, false) => None,
        }
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
