//! Turning request JSON into model values, one field at a time, so that every
//! error names the exact field (`stops[1].window.to`) and says what is wrong.
//! Unknown fields in orders and status updates are refused: a misspelt field that
//! is silently ignored is worse than an error.
//!
//! An order must also make sense (422, naming the field): no stop at 0,0 (a
//! failed geocode), a pickup first, windows that can be met in the stops'
//! order, and (with a map, [`on_the_map`]) every stop near a truck road. A stop
//! without a time zone gets the zone of its coordinates (`zones`).

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use engine::{OrderStatus, StatusSource, StopKind, VehicleId};
use serde_json::{Map, Value};

use crate::error::AppError;
use crate::model::{
    Customer, EventKind, NewEvent, NewOrder, NewStop, OrderPatch, Visibility, Window,
};
use crate::view::rfc3339;

const MAX_STOPS: usize = 50;
/// Both coordinates this close to 0 are "null island", a failed geocode.
const NULL_ISLAND_DEG: f64 = 1e-6;
/// The farthest the road index is searched around a stop, metres; beyond it
/// the message gives a lower bound.
const ROAD_SEARCH_CAP_M: f64 = 50_000.0;
const MAX_WINDOW_DAYS: i64 = 31;
/// Device clocks run a little ahead at times; more than this is a bad clock.
const MAX_FUTURE_S: i64 = 300;

/// A JSON object being read, with its path for error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn obj<'a>(value: &'a Value, path: &str) -> Result<Obj<'a>, AppError> {
    match value {
        Value::Object(map) => Ok(Obj {
            map,
            path: path.to_owned(),
        }),
        _ => Err(AppError::invalid(
            if path.is_empty() { "body" } else { path },
            "must be a JSON object",
        )),
    }
}

impl<'a> Obj<'a> {
    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn only(&self, allowed: &[&str]) -> Result<(), AppError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(AppError::invalid(
                self.field(unknown),
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// The value, treating JSON `null` as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn opt_str(&self, key: &str, max_chars: usize) -> Result<Option<String>, AppError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let text = value
            .as_str()
            .ok_or_else(|| AppError::invalid(self.field(key), "must be a string"))?
            .trim();
        if text.chars().count() > max_chars {
            return Err(AppError::invalid(
                self.field(key),
                format!("longer than {max_chars} characters"),
            ));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(AppError::invalid(
                self.field(key),
                "contains control characters",
            ));
        }
        Ok(Some(text.to_owned()))
    }

    fn req_str(&self, key: &str, max_chars: usize) -> Result<String, AppError> {
        match self.opt_str(key, max_chars)? {
            Some(text) if !text.is_empty() => Ok(text),
            Some(_) => Err(AppError::invalid(self.field(key), "must not be empty")),
            None => Err(AppError::invalid(self.field(key), "is required")),
        }
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>, AppError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| AppError::invalid(self.field(key), "must be a number")),
        }
    }

    fn req_f64(&self, key: &str) -> Result<f64, AppError> {
        self.opt_f64(key)?
            .ok_or_else(|| AppError::invalid(self.field(key), "is required"))
    }

    fn opt_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, AppError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let text = value
            .as_str()
            .ok_or_else(|| AppError::invalid(self.field(key), "must be an RFC 3339 time string"))?;
        DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                AppError::invalid(
                    self.field(key),
                    format!("`{text}` is not an RFC 3339 time ({e}); e.g. 2025-11-25T14:00:00Z"),
                )
            })
    }

    fn req_time(&self, key: &str) -> Result<DateTime<Utc>, AppError> {
        self.opt_time(key)?
            .ok_or_else(|| AppError::invalid(self.field(key), "is required"))
    }

    fn opt_u32(&self, key: &str) -> Result<Option<u32>, AppError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    AppError::invalid(self.field(key), "must be a non-negative integer")
                }),
        }
    }
}

fn vehicle_id(text: String, field: &str) -> Result<VehicleId, AppError> {
    if text.len() > 64 || text.chars().any(char::is_whitespace) {
        return Err(AppError::invalid(
            field,
            "must be 1-64 characters without spaces",
        ));
    }
    Ok(VehicleId(text))
}

fn customer(value: &Value, path: &str) -> Result<Customer, AppError> {
    let c = obj(value, path)?;
    c.only(&["name", "email"])?;
    let email = c.opt_str("email", 254)?.filter(|e| !e.is_empty());
    if let Some(email) = &email {
        let valid = email
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        if !valid {
            return Err(AppError::invalid(
                c.field("email"),
                format!("`{email}` is not an e-mail address"),
            ));
        }
    }
    Ok(Customer {
        name: c.req_str("name", 200)?,
        email,
    })
}

fn window(value: &Value, path: &str) -> Result<Window, AppError> {
    let w = obj(value, path)?;
    w.only(&["from", "to"])?;
    let from = w.req_time("from")?;
    let to = w.req_time("to")?;
    if to < from {
        return Err(AppError::invalid(w.field("to"), "is before `from`"));
    }
    if to - from > Duration::days(MAX_WINDOW_DAYS) {
        return Err(AppError::invalid(
            w.field("to"),
            format!("the window is longer than {MAX_WINDOW_DAYS} days"),
        ));
    }
    Ok(Window { from, to })
}

fn stop(value: &Value, path: &str) -> Result<NewStop, AppError> {
    let s = obj(value, path)?;
    s.only(&[
        "kind",
        "name",
        "address",
        "lat",
        "lon",
        "time_zone",
        "window",
        "geofence",
    ])?;
    let kind_text = s.req_str("kind", 20)?;
    let kind = StopKind::parse(&kind_text).ok_or_else(|| {
        AppError::invalid(
            s.field("kind"),
            format!("`{kind_text}`: expected pickup or delivery"),
        )
    })?;
    let lat = s.req_f64("lat")?;
    if !(-90.0..=90.0).contains(&lat) {
        return Err(AppError::invalid(
            s.field("lat"),
            format!("{lat} is outside -90..90"),
        ));
    }
    let lon = s.req_f64("lon")?;
    if !(-180.0..=180.0).contains(&lon) {
        return Err(AppError::invalid(
            s.field("lon"),
            format!("{lon} is outside -180..180"),
        ));
    }
    if lat.abs() < NULL_ISLAND_DEG && lon.abs() < NULL_ISLAND_DEG {
        return Err(AppError::unprocessable(
            "null_island",
            s.field("lat"),
            "the stop is at 0,0, which is what a failed geocode gives, not a place; \
             send the stop's real coordinates",
        ));
    }
    let time_zone = match s.opt_str("time_zone", 64)? {
        None => crate::zones::zone_at(lat, lon),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            AppError::invalid(
                s.field("time_zone"),
                format!("`{name}` is not an IANA time zone (e.g. America/New_York)"),
            )
        })?,
    };
    Ok(NewStop {
        kind,
        name: s.req_str("name", 200)?,
        address: s.opt_str("address", 500)?.unwrap_or_default(),
        lat,
        lon,
        time_zone,
        window: s
            .get("window")
            .map(|w| window(w, &s.field("window")))
            .transpose()?,
        geofence: s
            .get("geofence")
            .map(|g| geofence(g, &s.field("geofence")))
            .transpose()?,
    })
}

/// A stop's fence: `{"radius_m": 300}` or `{"polygon": [[lon, lat], …]}`.
fn geofence(value: &Value, field: &str) -> Result<engine::Geofence, AppError> {
    let fence: engine::Geofence = serde_json::from_value(value.clone()).map_err(|_| {
        AppError::invalid(
            field,
            "expected {\"radius_m\": metres} or {\"polygon\": [[lon, lat], …]}",
        )
    })?;
    match fence.problem() {
        Some(problem) => Err(AppError::invalid(field, problem)),
        None => Ok(fence),
    }
}

fn stops(value: &Value, path: &str) -> Result<Vec<NewStop>, AppError> {
    let items = value
        .as_array()
        .ok_or_else(|| AppError::invalid(path, "must be an array of stops"))?;
    if items.len() > MAX_STOPS {
        return Err(AppError::invalid(
            path,
            format!("more than {MAX_STOPS} stops"),
        ));
    }
    let parsed = items
        .iter()
        .enumerate()
        .map(|(i, item)| stop(item, &format!("{path}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let has = |kind: StopKind| parsed.iter().any(|s| s.kind == kind);
    if !has(StopKind::Pickup) || !has(StopKind::Delivery) {
        return Err(AppError::invalid(
            path,
            "needs at least one pickup and one delivery stop",
        ));
    }
    in_a_drivable_order(&parsed, path)?;
    Ok(parsed)
}

/// The stops are visited in the order given: the first must be a pickup
/// (a delivery before every pickup has nothing to deliver), no window may
/// close before an earlier stop's window opens, and no pickup's window (one
/// listed after the last delivery, the others are covered by the rule before)
/// may open after the last delivery's has closed: its freight would never be
/// delivered.
fn in_a_drivable_order(stops: &[NewStop], path: &str) -> Result<(), AppError> {
    if let Some(first) = stops.first()
        && first.kind == StopKind::Delivery
    {
        let pickup = stops
            .iter()
            .position(|s| s.kind == StopKind::Pickup)
            .unwrap_or(0);
        return Err(AppError::unprocessable(
            "delivery_before_pickup",
            format!("{path}[0].kind"),
            format!(
                "a delivery comes before every pickup (the first pickup is {path}[{pickup}]); \
                 stops are visited in the order given"
            ),
        ));
    }
    let windows: Vec<(usize, &Window)> = stops
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.window.as_ref().map(|w| (i, w)))
        .collect();
    // The latest opening so far: a later stop's window must not close before it.
    let mut latest_open: Option<(usize, DateTime<Utc>)> = None;
    for &(i, w) in &windows {
        if let Some((j, from)) = latest_open
            && w.to < from
        {
            return Err(AppError::unprocessable(
                "window_order",
                format!("{path}[{i}].window.to"),
                format!(
                    "the window closes at {}, before the window of {path}[{j}], an earlier \
                     stop, opens at {}; stops are visited in the order given",
                    rfc3339(w.to),
                    rfc3339(from)
                ),
            ));
        }
        if latest_open.is_none_or(|(_, from)| w.from > from) {
            latest_open = Some((i, w.from));
        }
    }
    let last_delivery = windows
        .iter()
        .rev()
        .find(|(i, _)| stops[*i].kind == StopKind::Delivery);
    if let Some(&(d, delivery)) = last_delivery
        && let Some(&(p, pickup)) = windows
            .iter()
            .find(|(i, w)| stops[*i].kind == StopKind::Pickup && w.from > delivery.to)
    {
        return Err(AppError::unprocessable(
            "window_order",
            format!("{path}[{p}].window.from"),
            format!(
                "the pickup window opens at {}, after the last delivery's window \
                 ({path}[{d}]) closes at {}",
                rfc3339(pickup.from),
                rfc3339(delivery.to)
            ),
        ));
    }
    Ok(())
}

/// Every stop within `max_m` of a truck road of the map (the road the
/// engine's router snaps the stop to, [`road_distance_m`]): a stop farther off
/// can never get an ETA. The message gives the distance; for a stop beyond the
/// search radius, a lower bound (the distance to the map's box, or the
/// radius).
pub(crate) fn on_the_map(
    stops: &[NewStop],
    graph: &road_graph::RoadGraph,
    max_m: f64,
    path: &str,
) -> Result<(), AppError> {
    let search_m = (max_m * 10.0).min(ROAD_SEARCH_CAP_M).max(max_m);
    let mut map_box = None;
    for (i, stop) in stops.iter().enumerate() {
        let p = road_graph::LatLon::new(stop.lat, stop.lon);
        let distance = road_distance_m(graph, p, search_m);
        if distance.is_some_and(|d| d <= max_m) {
            continue;
        }
        let how_far = match distance {
            Some(d) => format!("is {} from the nearest truck road of the map", metres(d)),
            None => {
                let bbox = *map_box.get_or_insert_with(|| graph.bbox());
                let outside_m = distance_to_box_m(p, &bbox);
                format!(
                    "is more than {} from any truck road of the map",
                    metres(outside_m.max(search_m))
                )
            }
        };
        return Err(AppError::unprocessable(
            "stop_off_map",
            format!("{path}[{i}].lat"),
            format!(
                "({}, {}) {how_far}; at most {} is accepted (a wrong geocode, or a place \
                 this server's map does not cover)",
                stop.lat,
                stop.lon,
                metres(max_m)
            ),
        ));
    }
    Ok(())
}

/// How far `p` is from where the engine's router would snap it
/// ([`engine::Snap::nearest`], the road a route to the stop ends on), when a
/// road is within `radius_m`.
fn road_distance_m(
    graph: &road_graph::RoadGraph,
    p: road_graph::LatLon,
    radius_m: f64,
) -> Option<f64> {
    let snap = engine::Snap::nearest(graph, p, radius_m)?;
    snap.candidates()
        .iter()
        .map(|c| road_graph::haversine_m(p, graph.point_along_edge(c.edge, c.offset_m)))
        .reduce(f64::min)
}

/// A distance for people: metres below 10 km, kilometres above.
fn metres(m: f64) -> String {
    if m < 10_000.0 {
        format!("{} m", m.round())
    } else {
        format!("{} km", (m / 1000.0).round())
    }
}

/// How far a point is from a box (0 inside it).
fn distance_to_box_m(p: road_graph::LatLon, bbox: &road_graph::BBox) -> f64 {
    // An empty map has no box to measure from (and `clamp` needs min ≤ max).
    let ordered = |min: f64, max: f64| {
        matches!(
            min.partial_cmp(&max),
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        )
    };
    if !ordered(bbox.min_lat, bbox.max_lat) || !ordered(bbox.min_lon, bbox.max_lon) {
        return 0.0;
    }
    let nearest = road_graph::LatLon::new(
        p.lat.clamp(bbox.min_lat, bbox.max_lat),
        p.lon.clamp(bbox.min_lon, bbox.max_lon),
    );
    road_graph::haversine_m(p, nearest)
}

/// `POST /api/v1/orders`.
pub(crate) fn new_order(body: &Value) -> Result<NewOrder, AppError> {
    let o = obj(body, "")?;
    o.only(&[
        "reference",
        "customer",
        "vehicle_id",
        "driver_name",
        "stops",
    ])?;
    Ok(NewOrder {
        reference: o.req_str("reference", 100)?,
        customer: customer(
            o.get("customer")
                .ok_or_else(|| AppError::invalid("customer", "is required"))?,
            "customer",
        )?,
        vehicle_id: o
            .opt_str("vehicle_id", 64)?
            .filter(|v| !v.is_empty())
            .map(|v| vehicle_id(v, "vehicle_id"))
            .transpose()?,
        driver_name: o.opt_str("driver_name", 200)?.filter(|d| !d.is_empty()),
        stops: stops(
            o.get("stops")
                .ok_or_else(|| AppError::invalid("stops", "is required"))?,
            "stops",
        )?,
    })
}

/// `PATCH /api/v1/orders/{id}`: absent fields stay, `null` clears optional ones.
pub(crate) fn order_patch(body: &Value) -> Result<OrderPatch, AppError> {
    let o = obj(body, "")?;
    o.only(&[
        "reference",
        "customer",
        "vehicle_id",
        "driver_name",
        "stops",
    ])?;
    let patch = OrderPatch {
        reference: if o.has("reference") {
            Some(o.req_str("reference", 100)?)
        } else {
            None
        },
        customer: match o.get("customer") {
            Some(c) => Some(customer(c, "customer")?),
            None if o.has("customer") => {
                return Err(AppError::invalid("customer", "cannot be removed"));
            }
            None => None,
        },
        vehicle_id: if o.has("vehicle_id") {
            Some(
                o.opt_str("vehicle_id", 64)?
                    .filter(|v| !v.is_empty())
                    .map(|v| vehicle_id(v, "vehicle_id"))
                    .transpose()?,
            )
        } else {
            None
        },
        driver_name: if o.has("driver_name") {
            Some(o.opt_str("driver_name", 200)?.filter(|d| !d.is_empty()))
        } else {
            None
        },
        stops: match o.get("stops") {
            Some(s) => Some(stops(s, "stops")?),
            None if o.has("stops") => return Err(AppError::invalid("stops", "cannot be removed")),
            None => None,
        },
    };
    if patch.is_empty() {
        return Err(AppError::invalid("body", "no field to change"));
    }
    Ok(patch)
}

/// `POST /api/v1/orders/{id}/status`: a status move, or an `exception` or `note`
/// entry that does not move the status.
pub(crate) fn status_update(body: &Value, now: DateTime<Utc>) -> Result<NewEvent, AppError> {
    let o = obj(body, "")?;
    o.only(&["status", "at", "note", "source", "stop_index", "visibility"])?;
    let status_text = o.req_str("status", 40)?;
    let (kind, status) = match status_text.as_str() {
        "exception" => (EventKind::Exception, None),
        "note" => (EventKind::Note, None),
        other => {
            let status = OrderStatus::parse(other).ok_or_else(|| {
                let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
                AppError::invalid(
                    "status",
                    format!(
                        "`{other}`: expected one of {}, exception, note",
                        names.join(", ")
                    ),
                )
            })?;
            (EventKind::Status, Some(status))
        }
    };
    let note = o.opt_str("note", 2000)?.filter(|n| !n.is_empty());
    if kind != EventKind::Status && note.is_none() {
        return Err(AppError::invalid(
            "note",
            format!("is required for `{status_text}`"),
        ));
    }
    let at = o.opt_time("at")?.unwrap_or(now);
    if at > now + Duration::seconds(MAX_FUTURE_S) {
        return Err(AppError::invalid("at", "is in the future"));
    }
    let source = match o.opt_str("source", 20)? {
        None => StatusSource::Dispatcher,
        Some(text) => match text.as_str() {
            "dispatcher" => StatusSource::Dispatcher,
            "driver" => StatusSource::Driver,
            _ => {
                return Err(AppError::invalid(
                    "source",
                    format!("`{text}`: expected dispatcher or driver"),
                ));
            }
        },
    };
    // Internal unless said otherwise: what a driver types ("gate code 4471")
    // must not reach the customer's page by default.
    let visibility = match o.opt_str("visibility", 20)? {
        None => Visibility::Internal,
        Some(text) => Visibility::parse(&text).ok_or_else(|| {
            AppError::invalid(
                "visibility",
                format!("`{text}`: expected public or internal"),
            )
        })?,
    };
    Ok(NewEvent {
        kind,
        status,
        at,
        note,
        source,
        stop_index: o.opt_u32("stop_index")?,
        visibility,
    })
}

/// `POST /api/v1/orders/{id}/eta`: an ETA from the tenant's own planning system
/// (used until, or alongside, the engine's).
pub(crate) fn external_eta(
    body: &Value,
    order: engine::OrderId,
    now: DateTime<Utc>,
) -> Result<engine::EtaUpdate, AppError> {
    let o = obj(body, "")?;
    o.only(&[
        "stop_index",
        "eta",
        "p10",
        "p90",
        "reasons",
        "remaining_distance_m",
        "remaining_drive_s",
        "route",
    ])?;
    let stop_index = o
        .opt_u32("stop_index")?
        .ok_or_else(|| AppError::invalid("stop_index", "is required"))?;
    let eta = o.req_time("eta")?;
    let p10 = o.opt_time("p10")?.unwrap_or(eta);
    let p90 = o.opt_time("p90")?.unwrap_or(eta);
    if p10 > eta {
        return Err(AppError::invalid("p10", "is after `eta`"));
    }
    if p90 < eta {
        return Err(AppError::invalid("p90", "is before `eta`"));
    }
    let mut reasons = Vec::new();
    if let Some(list) = o.get("reasons") {
        let items = list
            .as_array()
            .ok_or_else(|| AppError::invalid("reasons", "must be an array"))?;
        for (i, item) in items.iter().enumerate() {
            let reason = match item.as_str() {
                Some("traffic") => engine::EtaReason::Traffic,
                Some("hos_break") => engine::EtaReason::HosBreak,
                Some("dwell") => engine::EtaReason::Dwell,
                Some("window_wait") => engine::EtaReason::WindowWait,
                _ => {
                    return Err(AppError::invalid(
                        format!("reasons[{i}]"),
                        "expected traffic, hos_break, dwell or window_wait",
                    ));
                }
            };
            reasons.push(reason);
        }
    }
    let mut route = Vec::new();
    if let Some(points) = o.get("route") {
        let items = points
            .as_array()
            .ok_or_else(|| AppError::invalid("route", "must be an array of [lon, lat] pairs"))?;
        if items.len() > 10_000 {
            return Err(AppError::invalid("route", "more than 10000 points"));
        }
        for (i, item) in items.iter().enumerate() {
            let pair = item.as_array().filter(|p| p.len() == 2);
            let lon = pair
                .and_then(|p| p[0].as_f64())
                .filter(|x| (-180.0..=180.0).contains(x));
            let lat = pair
                .and_then(|p| p[1].as_f64())
                .filter(|x| (-90.0..=90.0).contains(x));
            match (lon, lat) {
                (Some(lon), Some(lat)) => route.push([lon, lat]),
                _ => {
                    return Err(AppError::invalid(
                        format!("route[{i}]"),
                        "expected [lon, lat]",
                    ));
                }
            }
        }
    }
    let non_negative = |key: &str| -> Result<f64, AppError> {
        let x = o.opt_f64(key)?.unwrap_or(0.0);
        if x < 0.0 {
            return Err(AppError::invalid(key, "must not be negative"));
        }
        Ok(x)
    };
    Ok(engine::EtaUpdate {
        order_id: order,
        stop_index,
        eta,
        p10,
        p90,
        remaining_distance_m: non_negative("remaining_distance_m")?,
        remaining_drive_s: non_negative("remaining_drive_s")?,
        reasons,
        computed_at: now,
        // A dispatcher's ETA has no route of ours behind it, so no baseline.
        free_flow_drive_s: None,
        route,
    })
}

/// Fuzzing of the request validators with proptest: no body, however mangled,
/// makes them panic; each is a value or a 4xx naming a field. A valid order
/// with one field replaced by arbitrary JSON is the main source of cases (it
/// reaches the deep checks); the counts add up to over 100 k per run
/// (`TRACKER_FUZZ_CASES` scales them).
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn cases(default: u32) -> u32 {
        std::env::var("TRACKER_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,16}".prop_map(Value::from),
            Just(Value::from("2025-11-25T13:00:00Z")),
            Just(Value::from("pickup")),
            Just(Value::from("America/New_York")),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        "[a-z_]{1,8}",
                        Just("kind".to_owned()),
                        Just("lat".to_owned()),
                        Just("window".to_owned()),
                        Just("from".to_owned()),
                        Just("to".to_owned()),
                        Just("name".to_owned()),
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn valid_order() -> Value {
        json!({
            "reference": "LOAD-1",
            "customer": {"name": "Receiver Inc", "email": "ops@example.com"},
            "vehicle_id": "TRUCK-1",
            "driver_name": "Sam",
            "stops": [
                {"kind": "pickup", "name": "A", "address": "1 Main St", "lat": 39.27, "lon": -76.60,
                 "time_zone": "America/New_York",
                 "window": {"from": "2025-11-25T13:00:00Z", "to": "2025-11-25T15:00:00Z"}},
                {"kind": "delivery", "name": "B", "lat": 39.28, "lon": -76.57,
                 "window": {"from": "2025-11-25T18:00:00Z", "to": "2025-11-25T20:00:00Z"}}
            ]
        })
    }

    /// Every place a value can be replaced in a valid order, as JSON pointers.
    fn pointers() -> Vec<String> {
        fn walk(value: &Value, at: String, out: &mut Vec<String>) {
            out.push(at.clone());
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        walk(v, format!("{at}/{k}"), out);
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        walk(v, format!("{at}/{i}"), out);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&valid_order(), String::new(), &mut out);
        out
    }

    fn check(body: &Value) -> Result<(), TestCaseError> {
        let now = chrono::Utc::now();
        for result in [
            new_order(body).map(drop),
            order_patch(body).map(drop),
            status_update(body, now).map(drop),
        ] {
            if let Err(err) = result {
                prop_assert!(err.status.is_client_error(), "{err:?}");
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(80_000)))]

        #[test]
        fn an_order_with_one_value_replaced_is_parsed_or_refused(which in any::<usize>(), value in any_json()) {
            let mut body = valid_order();
            let all = pointers();
            let pointer = &all[which % all.len()];
            if pointer.is_empty() {
                body = value;
            } else if let Some(slot) = body.pointer_mut(pointer) {
                *slot = value;
            }
            check(&body)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(30_000)))]

        #[test]
        fn arbitrary_json_bodies_are_refused_without_panicking(body in any_json()) {
            check(&body)?;
        }
    }
}
