//! The public view of an order, as JSON: what `GET /api/v1/track/{code}` returns,
//! what the WebSocket snapshot carries, and the pieces its deltas are made of. One
//! place builds them so the page, the JSON API and the live updates never disagree.
//!
//! The public view leaves out everything a stranger holding the link should not
//! see: the customer's name and e-mail, the vehicle and driver, internal ids. The
//! live location is shown only while the order is under way. Its timeline holds
//! public entries only (the store reads [`TrackView::events`] that way).
//!
//! Times that age are judged against a [`ViewClock`]: the truck's feed is
//! `live`, `stale` (no fix for the clock's `stale_after_s`) or `none`, and an
//! ETA already past for a stop not yet reached is `overdue`, never a future
//! arrival.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::contract::{
    EtaHistoryPointView, EtaView, EventView, FeedView, ProgressView, PublicOrderView,
    PublicPodView, PublicPrivacyView, StopView, VehicleView, WindowView,
};
use crate::model::{
    EtaRecord, Order, OrderEvent, PodMeta, Stop, StopState, TrackView, VehicleFix, Verdict,
};
use crate::privacy::{LocationPrivacy, public_position};

/// RFC 3339 UTC with seconds, as the HTTP contract says (the store's own).
pub(crate) use crate::model::rfc3339;

/// When a view is built, and how old a truck's last fix may be before its feed
/// counts as stale (`tracker serve --stale-after-s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ViewClock {
    pub(crate) now: DateTime<Utc>,
    pub(crate) stale_after_s: u64,
}

/// The truck's feed as the page should judge it: `live` while its last fix is
/// at most `stale_after_s` old, `stale` after, `none` without a fix to show
/// (none received, or the order not under way, when the truck is not shown).
pub(crate) fn feed_view(last_fix_at: Option<DateTime<Utc>>, clock: ViewClock) -> FeedView {
    let Some(last_fix_at) = last_fix_at else {
        return FeedView {
            state: "none".to_owned(),
            last_fix_at: None,
            last_fix_age_s: None,
            stale_after_s: clock.stale_after_s,
        };
    };
    let age_s = (clock.now - last_fix_at).num_seconds().max(0);
    let stale = u64::try_from(age_s).unwrap_or(0) > clock.stale_after_s;
    FeedView {
        state: if stale { "stale" } else { "live" }.to_owned(),
        last_fix_at: Some(rfc3339(last_fix_at)),
        last_fix_age_s: Some(age_s),
        stale_after_s: clock.stale_after_s,
    }
}

/// [`feed_view`] as JSON.
pub(crate) fn feed_json(last_fix_at: Option<DateTime<Utc>>, clock: ViewClock) -> Value {
    json!(feed_view(last_fix_at, clock))
}

/// Whether a stop's ETA has passed without the stop being reached.
pub(crate) fn overdue(stop: &Stop, eta: &EtaRecord, now: DateTime<Utc>) -> bool {
    stop.arrived_at.is_none() && eta.eta < now
}

/// The status steps of the progress indicator, in order, with their labels.
pub(crate) const PROGRESS: [(&str, &str); 6] = [
    ("created", "Created"),
    ("dispatched", "Dispatched"),
    ("picked_up", "Picked up"),
    ("in_transit", "In transit"),
    ("out_for_delivery", "Out for delivery"),
    ("delivered", "Delivered"),
];

/// Index in [`PROGRESS`] reached by an order: the furthest of what its stops
/// say (a pickup left is picked up, every pickup left or skipped is in transit,
/// a delivery reached is out for delivery) and what its status says. Stop
/// states only move forward, so the indicator never goes back, not even when
/// the status goes to `at_pickup` for a second pickup.
pub(crate) fn progress_step(order: &Order) -> usize {
    use engine::OrderStatus as S;
    use engine::StopKind as K;
    let by_status = match order.status {
        S::Created | S::Cancelled => 0,
        S::Dispatched | S::AtPickup => 1,
        S::PickedUp => 2,
        S::OutForDelivery | S::AtDelivery => 4,
        S::Delivered => 5,
    };
    if order.status == S::Created || order.status == S::Cancelled {
        return by_status;
    }
    let done = |s: &Stop| matches!(s.state(), StopState::Departed | StopState::Skipped);
    let pickups = || order.stops.iter().filter(|s| s.kind == K::Pickup);
    let delivery_reached = order.stops.iter().any(|s| {
        s.kind == K::Delivery && matches!(s.state(), StopState::Arrived | StopState::Departed)
    });
    let by_stops = if delivery_reached {
        4
    } else if pickups().any(|s| s.state() == StopState::Departed) {
        if pickups().all(done) { 3 } else { 2 }
    } else {
        1
    };
    by_status.max(by_stops)
}

/// Human label of a status.
pub(crate) fn status_label(status: engine::OrderStatus) -> &'static str {
    use engine::OrderStatus as S;
    match status {
        S::Created => "Created",
        S::Dispatched => "Dispatched",
        S::AtPickup => "At pickup",
        S::PickedUp => "Picked up, in transit",
        S::OutForDelivery => "Out for delivery",
        S::AtDelivery => "At delivery",
        S::Delivered => "Delivered",
        S::Cancelled => "Cancelled",
    }
}

/// Below this distance between two fixes, a bearing between them is noise.
const MIN_BEARING_STEP_M: f64 = 15.0;

/// Where a truck is heading: its fix's own heading, else the bearing from
/// the point before it (`previous`, its last trail point) when the two are
/// far enough apart to say; `None` otherwise.
pub(crate) fn heading_deg(fix: &VehicleFix, previous: Option<(f64, f64)>) -> Option<f64> {
    if let Some(h) = fix.heading_deg.filter(|h| h.is_finite()) {
        return Some(h.rem_euclid(360.0));
    }
    let (lat, lon) = previous?;
    let from = road_graph::LatLon::new(lat, lon);
    let to = road_graph::LatLon::new(fix.lat, fix.lon);
    (road_graph::haversine_m(from, to) >= MIN_BEARING_STEP_M)
        .then(|| road_graph::bearing_deg(from, to).rem_euclid(360.0))
}

/// The truck exactly, as its tenant sees it.
pub(crate) fn vehicle_view(fix: &VehicleFix) -> VehicleView {
    VehicleView {
        lat: fix.lat,
        lon: fix.lon,
        at: rfc3339(fix.at),
        speed_mps: fix.speed_mps,
        heading_deg: fix.heading_deg,
        approximate: false,
        area_resolution: None,
    }
}

/// The truck as the public sees it: under the tenant's location privacy
/// ([`crate::privacy::public_position`]) with `pending_stops` still ahead.
/// An approximate position carries no speed and no heading (they would help
/// place the truck inside its area) and says `"approximate": true`; an exact
/// one carries its heading, from the fix or from `previous`.
pub(crate) fn public_vehicle_view(
    fix: &VehicleFix,
    privacy: &LocationPrivacy,
    pending_stops: &[(f64, f64)],
    previous: Option<(f64, f64)>,
) -> VehicleView {
    let shown = public_position(fix.lat, fix.lon, privacy, pending_stops);
    if shown.approximate {
        return VehicleView {
            lat: shown.lat,
            lon: shown.lon,
            at: rfc3339(fix.at),
            speed_mps: None,
            heading_deg: None,
            approximate: true,
            area_resolution: Some(privacy.cell_resolution),
        };
    }
    VehicleView {
        heading_deg: heading_deg(fix, previous),
        ..vehicle_view(fix)
    }
}

/// [`public_vehicle_view`] as JSON (the live messages).
pub(crate) fn vehicle_json(
    fix: &VehicleFix,
    privacy: &LocationPrivacy,
    pending_stops: &[(f64, f64)],
    previous: Option<(f64, f64)>,
) -> Value {
    json!(public_vehicle_view(fix, privacy, pending_stops, previous))
}

/// The (lat, lon) of an order's stops still ahead: where privacy shows the
/// exact position.
pub(crate) fn pending_stops(order: &Order) -> Vec<(f64, f64)> {
    order
        .stops
        .iter()
        .filter(|s| s.state() == StopState::Pending)
        .map(|s| (s.lat, s.lon))
        .collect()
}

/// A line of `[lon, lat]` pairs (the road driven, the route ahead) as the
/// public may see it: each point under the same rule as the truck, so with
/// privacy on, points far from the stops ahead become their area's centre
/// (the route ahead starts where the truck is: left exact, it would give the
/// truck away), and repeats of one centre in a row are dropped.
pub(crate) fn public_line(
    line: &[[f64; 2]],
    privacy: &LocationPrivacy,
    pending: &[(f64, f64)],
) -> Vec<[f64; 2]> {
    if !privacy.enabled {
        return line.to_vec();
    }
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(line.len());
    for &[lon, lat] in line {
        let shown = public_position(lat, lon, privacy, pending);
        let point = [shown.lon, shown.lat];
        if out.last() != Some(&point) {
            out.push(point);
        }
    }
    out
}

/// An ETA as the public sees it: its route ahead under the tenant's privacy.
pub(crate) fn public_eta_view(
    eta: &EtaRecord,
    overdue: bool,
    privacy: &LocationPrivacy,
    pending: &[(f64, f64)],
) -> EtaView {
    let mut view = eta_view(eta, overdue);
    view.route = public_line(&view.route, privacy, pending);
    view
}

/// An ETA; `overdue` when its time has passed and its stop is not reached
/// (see [`overdue`]).
pub(crate) fn eta_view(eta: &EtaRecord, overdue: bool) -> EtaView {
    EtaView {
        stop_index: eta.stop_index,
        at: rfc3339(eta.eta),
        overdue,
        p10: rfc3339(eta.p10),
        p90: rfc3339(eta.p90),
        updated_at: rfc3339(eta.computed_at),
        reasons: eta.reasons.iter().map(|r| r.as_str().to_owned()).collect(),
        remaining_distance_m: eta.remaining_distance_m,
        remaining_drive_s: eta.remaining_drive_s,
        route: eta.route.clone(),
    }
}

/// A window in the stop's local time, e.g. `Tue 25 Nov, 08:00–10:00 EST`.
pub(crate) fn window_label(stop: &Stop) -> Option<String> {
    let window = stop.window?;
    let from = window.from.with_timezone(&stop.time_zone);
    let to = window.to.with_timezone(&stop.time_zone);
    let same_day = from.date_naive() == to.date_naive();
    Some(if same_day {
        format!(
            "{}–{} {}",
            from.format("%a %-d %b, %H:%M"),
            to.format("%H:%M"),
            to.format("%Z")
        )
    } else {
        format!(
            "{} – {} {}",
            from.format("%a %-d %b %H:%M"),
            to.format("%a %-d %b %H:%M"),
            to.format("%Z")
        )
    })
}

/// The abbreviation of a stop's zone at a time (`EST`, `EDT`; a numeric
/// offset such as `+03` where the zone has no letters).
pub(crate) fn tz_abbrev(t: DateTime<Utc>, stop: &Stop) -> String {
    t.with_timezone(&stop.time_zone).format("%Z").to_string()
}

/// A time in a stop's local zone, e.g. `Tue 25 Nov, 09:41 EST`.
pub(crate) fn local_label(t: DateTime<Utc>, stop: &Stop) -> String {
    t.with_timezone(&stop.time_zone)
        .format("%a %-d %b, %H:%M %Z")
        .to_string()
}

/// A stop without its ETA (`eta` is `None`; the order and the public view
/// each decide which ETA to show).
pub(crate) fn stop_view(stop: &Stop) -> StopView {
    StopView {
        index: stop.index,
        kind: stop.kind.as_str().to_owned(),
        name: stop.name.clone(),
        address: stop.address.clone(),
        lat: stop.lat,
        lon: stop.lon,
        time_zone: stop.time_zone.name().to_owned(),
        // The zone's abbreviation at the window's start (`EST`), for pages
        // that show the window's times in the stop's local time.
        tz_abbrev: stop.window.map(|w| tz_abbrev(w.from, stop)),
        window: stop.window.map(|w| WindowView {
            from: rfc3339(w.from),
            to: rfc3339(w.to),
            local: window_label(stop),
        }),
        state: stop.state().as_str().to_owned(),
        arrived_at: stop.arrived_at.map(rfc3339),
        departed_at: stop.departed_at.map(rfc3339),
        skipped_at: stop.skipped_at.map(rfc3339),
        verdict: stop.verdict().map(|v| v.as_str().to_owned()),
        late_by_min: match stop.verdict() {
            Some(Verdict::Late { minutes }) => Some(minutes),
            _ => None,
        },
        eta: None,
    }
}

/// A timeline entry as the public sees it (no id, no visibility).
pub(crate) fn event_view(event: &OrderEvent) -> EventView {
    EventView {
        id: None,
        at: rfc3339(event.at),
        kind: event.kind.as_str().to_owned(),
        status: event.status.map(|s| s.as_str().to_owned()),
        label: event.status.map(|s| status_label(s).to_owned()),
        note: event.note.clone(),
        source: event.source.as_str().to_owned(),
        stop_index: event.stop_index,
        visibility: None,
    }
}

/// [`event_view`] as JSON.
pub(crate) fn event_json(event: &OrderEvent) -> Value {
    json!(event_view(event))
}

/// A POD file's public metadata. Its `url` needs the tracking code, which the
/// store does not keep: with no code (the `status` deltas every viewer of the
/// order shares) it is `null`, and a client builds `/t/{code}/pod/{id}` from
/// the code it holds.
pub(crate) fn pod_view(pod: &PodMeta, code: Option<&str>) -> PublicPodView {
    PublicPodView {
        id: pod.id.clone(),
        content_type: pod.content_type.clone(),
        file_name: pod.file_name.clone(),
        size_bytes: pod.size_bytes,
        signed_by: pod.signed_by.clone(),
        note: pod.note.clone(),
        taken_at: pod.taken_at.map(rfc3339),
        uploaded_at: rfc3339(pod.uploaded_at),
        url: code.map(|code| format!("/t/{code}/pod/{}", pod.id)),
    }
}

/// The ETA shown on the page: the latest one for the next stop not yet reached.
pub(crate) fn shown_eta(order: &Order) -> Option<&EtaRecord> {
    if !order.shows_live_location() {
        return None;
    }
    order.next_stop().and_then(|s| s.eta.as_ref())
}

/// When the order was delivered (the `delivered` event's time).
pub(crate) fn delivered_at(view: &TrackView) -> Option<DateTime<Utc>> {
    view.events
        .iter()
        .rev()
        .find(|e| e.status == Some(engine::OrderStatus::Delivered))
        .map(|e| e.at)
}

/// The full public view of an order, as seen through `code` when the caller
/// holds it (see [`pod_view`]).
pub(crate) fn public_view(
    view: &TrackView,
    code: Option<&str>,
    clock: ViewClock,
) -> PublicOrderView {
    let order = &view.order;
    let live = order.shows_live_location();
    let finished = order.status.is_final();
    let shown_vehicle = if live { view.vehicle.as_ref() } else { None };
    let pending = pending_stops(order);
    let previous = view
        .trail
        .iter()
        .rev()
        .find(|p| shown_vehicle.is_some_and(|v| p.at < v.at))
        .map(|p| (p.lat, p.lon));
    let eta = order.next_stop().zip(shown_eta(order)).map(|(stop, eta)| {
        public_eta_view(eta, overdue(stop, eta, clock.now), &view.privacy, &pending)
    });
    PublicOrderView {
        reference: order.reference.clone(),
        status: order.status.as_str().to_owned(),
        status_label: status_label(order.status).to_owned(),
        progress: ProgressView {
            steps: PROGRESS.iter().map(|(k, _)| (*k).to_owned()).collect(),
            reached: progress_step(order),
        },
        stops: order
            .stops
            .iter()
            .map(|stop| {
                // The ETA of every stop still ahead, while the order is live.
                let ahead = live && stop.state() == StopState::Pending;
                StopView {
                    eta: stop.eta.as_ref().filter(|_| ahead).map(|e| {
                        public_eta_view(e, overdue(stop, e, clock.now), &view.privacy, &pending)
                    }),
                    ..stop_view(stop)
                }
            })
            .collect(),
        next_stop_index: order.next_stop().map(|s| s.index),
        vehicle: shown_vehicle.map(|v| public_vehicle_view(v, &view.privacy, &pending, previous)),
        trail: if live {
            let driven: Vec<[f64; 2]> = view.trail.iter().map(|p| [p.lon, p.lat]).collect();
            public_line(&driven, &view.privacy, &pending)
        } else {
            Vec::new()
        },
        privacy: PublicPrivacyView {
            approximate_far_from_stops: view.privacy.enabled,
        },
        feed: feed_view(shown_vehicle.map(|v| v.at), clock),
        eta,
        events: view.events.iter().map(event_view).collect(),
        delivered_at: delivered_at(view).map(rfc3339),
        pod: if finished {
            view.pods.iter().map(|p| pod_view(p, code)).collect()
        } else {
            Vec::new()
        },
        live,
        updated_at: rfc3339(order.updated_at),
        eta_history_stop_index: view.eta_history.as_ref().map(|h| h.stop_index),
        eta_history: view.eta_history.as_ref().map_or_else(Vec::new, |h| {
            h.points
                .iter()
                .map(|p| EtaHistoryPointView {
                    at: rfc3339(p.at),
                    eta: rfc3339(p.eta),
                    p10: rfc3339(p.p10),
                    p90: rfc3339(p.p90),
                })
                .collect()
        }),
        actual_arrival: view
            .eta_history
            .as_ref()
            .and_then(|h| h.actual_arrival)
            .map(rfc3339),
    }
}

/// [`public_view`] as JSON (the page's renderer and the live messages read it so).
pub(crate) fn track_json(view: &TrackView, code: Option<&str>, clock: ViewClock) -> Value {
    json!(public_view(view, code, clock))
}
