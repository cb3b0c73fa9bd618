//! The store's pure rules, applied by both backends inside their write
//! transactions: which stop a status is about, what it records at each stop,
//! when a geofence is behind the dispatcher, which fixes the trail keeps,
//! which stop the page's ETA history follows, and what a late-risk or
//! ETA-change alert writes. No SQL here: each backend reads what a rule
//! needs, calls it, and writes what it answers, so SQLite and PostgreSQL
//! cannot drift apart on behaviour.

use chrono::{DateTime, Utc};
use engine::{EtaUpdate, OrderStatus, StatusSource, StopKind};
use serde_json::json;

use super::records::ts;
use crate::alerts::LateRiskChange;
use crate::model::{
    EventKind, HoldRequest, NewEvent, Order, StopState, VehicleFix, VehicleHold, Visibility,
};
use crate::secrets::new_id;

/// A trail point is kept when this long has passed since the last kept one…
const TRAIL_MIN_INTERVAL_S: i64 = 30;
/// …or the truck moved this far.
const TRAIL_MIN_DISTANCE_M: f64 = 200.0;

/// Most trail points the public view carries: the newest ones.
pub(crate) const TRAIL_POINTS: usize = 500;

/// Statuses during which a vehicle's positions belong to the order, as an
/// SQL list (both dialects read it the same).
pub(crate) const LIVE_STATUSES: &str =
    "('dispatched','at_pickup','picked_up','out_for_delivery','at_delivery')";

/// The hand-over rule of [`crate::Store::hold_vehicles`] for one truck:
/// `current` is who holds it and when that holder was last heard from
/// (`None` if never). Answers what the asker gets and whether the hold is
/// to be written (the truck is the asker's now and was not before).
pub(crate) fn hold_outcome(
    request: &HoldRequest,
    current: Option<(&str, Option<DateTime<Utc>>)>,
) -> (VehicleHold, bool) {
    match current {
        None => (VehicleHold::Taken, true),
        Some((holder, _)) if holder == request.holder => (VehicleHold::Taken, false),
        Some((holder, heard)) => {
            let silent = heard.is_none_or(|at| at < request.silent_before);
            if silent || request.force {
                (
                    VehicleHold::TakenOver {
                        from: holder.to_owned(),
                    },
                    true,
                )
            } else {
                (
                    VehicleHold::HeldBy {
                        holder: holder.to_owned(),
                    },
                    false,
                )
            }
        }
    }
}

/// Which stop a status is about when the caller did not say: the next pending
/// pickup for `at_pickup`; for `picked_up` the pickup the truck stands at, else
/// the next pending pickup (left without an arrival on record); for
/// `at_delivery` the next pending delivery; for `out_for_delivery` the delivery
/// the truck stands at; for `delivered` the delivery it stands at, else the
/// next pending one.
pub(crate) fn implied_stop(order: &Order, status: OrderStatus) -> Option<u32> {
    let first = order
        .next_stop()
        .map_or(order.stops.len(), |s| s.index as usize);
    let next_pending = |kind: StopKind| {
        order.stops[first..]
            .iter()
            .find(|s| s.kind == kind)
            .map(|s| s.index)
    };
    let standing_at = |kind: StopKind| {
        order
            .stops
            .iter()
            .rev()
            .find(|s| s.kind == kind && s.state() == StopState::Arrived)
            .map(|s| s.index)
    };
    match status {
        OrderStatus::AtPickup => next_pending(StopKind::Pickup),
        OrderStatus::PickedUp => {
            standing_at(StopKind::Pickup).or_else(|| next_pending(StopKind::Pickup))
        }
        OrderStatus::AtDelivery => next_pending(StopKind::Delivery),
        OrderStatus::OutForDelivery => standing_at(StopKind::Delivery),
        OrderStatus::Delivered => {
            standing_at(StopKind::Delivery).or_else(|| next_pending(StopKind::Delivery))
        }
        _ => None,
    }
}

/// One write a status makes at a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMove {
    /// Passed while pending: `skipped_at`.
    Skip(u32),
    /// `arrived_at`, unless already set (then nothing, and no prediction
    /// learns a second arrival).
    Arrive(u32),
    /// `departed_at`, unless already set.
    Depart(u32),
}

/// What a status says of stop `k`: arriving (`at_pickup`, `at_delivery`),
/// leaving (`picked_up`, `out_for_delivery`) or both (`delivered`). Stops
/// before `k` are done with: those still pending are skipped, one still
/// stood at is left. In the order the writes are made.
pub(crate) fn stop_moves(order: &Order, to: OrderStatus, k: u32) -> Vec<StopMove> {
    let (arrives, departs) = match to {
        OrderStatus::AtPickup | OrderStatus::AtDelivery => (true, false),
        OrderStatus::PickedUp | OrderStatus::OutForDelivery => (false, true),
        OrderStatus::Delivered => (true, true),
        _ => return Vec::new(),
    };
    let mut moves = Vec::new();
    for earlier in order.stops.iter().filter(|s| s.index < k) {
        match earlier.state() {
            StopState::Pending => moves.push(StopMove::Skip(earlier.index)),
            StopState::Arrived => moves.push(StopMove::Depart(earlier.index)),
            StopState::Departed | StopState::Skipped => {}
        }
    }
    if arrives {
        moves.push(StopMove::Arrive(k));
    }
    if departs {
        moves.push(StopMove::Depart(k));
    }
    moves
}

/// A geofence move about a stop a dispatcher or driver already marked further
/// (the store wins): refused, so the fence never re-fires it.
pub(crate) fn geofence_behind(order: &Order, to: OrderStatus, k: u32) -> bool {
    let Some(stop) = order.stops.get(k as usize) else {
        return false;
    };
    match to {
        OrderStatus::AtPickup | OrderStatus::AtDelivery => stop.state() != StopState::Pending,
        _ => matches!(stop.state(), StopState::Departed | StopState::Skipped),
    }
}

/// Whether the trail keeps `fix`, given its last kept point (time as
/// stored, lat, lon): enough time passed or the truck moved far enough.
pub(crate) fn keeps_trail_point(last: Option<(&str, f64, f64)>, fix: &VehicleFix) -> bool {
    match last {
        None => true,
        Some((at, lat, lon)) => {
            let elapsed_s = DateTime::parse_from_rfc3339(at)
                .map(|t| (fix.at - t.with_timezone(&Utc)).num_seconds())
                .unwrap_or(i64::MAX);
            let moved_m = road_graph::haversine_m(
                road_graph::LatLon::new(lat, lon),
                road_graph::LatLon::new(fix.lat, fix.lon),
            );
            elapsed_s >= TRAIL_MIN_INTERVAL_S || moved_m >= TRAIL_MIN_DISTANCE_M
        }
    }
}

/// The stop the page's ETA history is about; once every stop is reached,
/// the last delivery, so the customer still sees how the estimate fared.
pub(crate) fn history_stop(order: &Order) -> Option<u32> {
    order.next_stop().map(|s| s.index).or_else(|| {
        order
            .stops
            .iter()
            .rev()
            .find(|s| s.kind == StopKind::Delivery)
            .map(|s| s.index)
    })
}

/// The timeline note and the `order.late_risk` outbox payload of a change
/// of a stop's late risk. The note is internal: the dispatcher's timeline
/// keeps the story, the customer's page does not, and a note triggers no
/// milestone e-mail.
pub(crate) fn late_risk_record(
    update: &EtaUpdate,
    change: LateRiskChange,
    now: DateTime<Utc>,
) -> (NewEvent, serde_json::Value) {
    let stop_no = update.stop_index + 1;
    let (kind, note, by_min, since) = match change {
        LateRiskChange::Raised(risk) => (
            "late_risk",
            format!(
                "Late risk: stop {stop_no} is predicted {} min past the end of its window.",
                risk.by_min
            ),
            Some(risk.by_min),
            risk.since,
        ),
        LateRiskChange::Cleared { since } => (
            "late_risk_cleared",
            format!("Late risk cleared: stop {stop_no} is predicted within its window again."),
            None,
            since,
        ),
    };
    let event = NewEvent {
        kind: EventKind::Note,
        status: None,
        at: now,
        note: Some(note),
        source: StatusSource::System,
        stop_index: Some(update.stop_index),
        visibility: Visibility::Internal,
    };
    let payload = json!({
        "order_id": update.order_id.as_str(),
        "event_id": new_id("alr_"),
        "kind": kind,
        "stop_idx": update.stop_index,
        "by_min": by_min,
        "since": ts(since),
        "at": ts(now),
    });
    (event, payload)
}

/// The `order.eta_changed` outbox payload for one subscriber.
pub(crate) fn eta_changed_payload(
    update: &EtaUpdate,
    subscriber: &str,
    previous: DateTime<Utc>,
    change_min: i64,
    now: DateTime<Utc>,
) -> serde_json::Value {
    json!({
        "order_id": update.order_id.as_str(),
        "event_id": new_id("eta_"),
        "subscriber_id": subscriber,
        "stop_idx": update.stop_index,
        "eta": ts(update.eta),
        "previous_eta": ts(previous),
        "change_min": change_min,
        "at": ts(now),
    })
}
