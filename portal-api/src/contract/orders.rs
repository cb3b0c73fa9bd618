//! The bodies of the orders API (`POST /api/v1/orders`, `PATCH
//! /api/v1/orders/{id}`, `…/status`, `…/eta`) and their domain checks: each
//! `check` turns a body serde has read into the model's value, or a 4xx naming
//! the field. An order must also make sense (422, naming the field): no stop at
//! 0,0 (a failed geocode), a pickup first, windows that can be met in the
//! stops' order. A stop without a time zone gets the zone of its coordinates
//! (`zones`). Whether each stop is near a road needs the map: `api/map_check.rs`.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use engine::{OrderStatus, StatusSource, StopKind, VehicleId};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::{object, objects, optional_object, optional_objects, optional_text, required_text};
use crate::error::AppError;
use crate::model::{
    Customer, EventKind, NewEvent, NewOrder, NewStop, OrderPatch, Visibility, Window,
};
use crate::view::rfc3339;

const MAX_STOPS: usize = 50;
/// Both coordinates this close to 0 are "null island", a failed geocode.
const NULL_ISLAND_DEG: f64 = 1e-6;
const MAX_WINDOW_DAYS: i64 = 31;
/// Device clocks run a little ahead at times; more than this is a bad clock.
const MAX_FUTURE_S: i64 = 300;
const MAX_ROUTE_POINTS: usize = 10_000;

/// `POST /api/v1/orders`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrderBody {
    /// The broker's load number.
    #[schema(min_length = 1, max_length = 100, example = "LOAD-123")]
    pub reference: String,
    #[serde(deserialize_with = "object")]
    pub customer: CustomerBody,
    /// The ELD unit that carries the load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub vehicle_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub driver_name: Option<String>,
    /// Visited in the order given: a pickup first, at least one delivery.
    #[schema(min_items = 2, max_items = 50)]
    #[serde(deserialize_with = "objects")]
    pub stops: Vec<StopBody>,
}

/// The broker's customer; never shown on the public page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 254)]
    pub email: Option<String>,
}

/// The kind of a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopKindName {
    Pickup,
    Delivery,
}

/// One stop of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    pub kind: StopKindName,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub address: Option<String>,
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
    /// An IANA zone (`America/New_York`); by default the zone of the point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64, example = "America/New_York")]
    pub time_zone: Option<String>,
    #[serde(
        default,
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<WindowBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<GeofenceBody>)]
    pub geofence: Option<serde_json::Value>,
}

/// An appointment window, RFC 3339 instants; at most 31 days long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowBody {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A stop's own fence: a circle (`radius_m`, up to 5000) or the yard's
/// outline as `[lon, lat]` corners (at least 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub enum GeofenceBody {
    #[serde(rename = "radius_m")]
    RadiusM(f64),
    #[serde(rename = "polygon")]
    Polygon(Vec<[f64; 2]>),
}

/// `PATCH /api/v1/orders/{id}`: absent fields stay as they are, `null`
/// clears `vehicle_id` and `driver_name`; `stops` replaces the list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPatchBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 100)]
    pub reference: Option<String>,
    #[serde(
        default,
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub customer: Option<CustomerBody>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable, max_length = 64)]
    pub vehicle_id: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable, max_length = 200)]
    pub driver_name: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "optional_objects",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(min_items = 2, max_items = 50)]
    pub stops: Option<Vec<StopBody>>,
}

/// A field that is present (`Some`), even as `null` (`Some(None)`).
fn present<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// What `POST /api/v1/orders/{id}/status` records: a status, or an
/// `exception` or `note` entry that does not move the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusName {
    Created,
    Dispatched,
    AtPickup,
    PickedUp,
    OutForDelivery,
    AtDelivery,
    Delivered,
    Cancelled,
    Exception,
    Note,
}

/// `POST /api/v1/orders/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdateBody {
    pub status: StatusName,
    /// When it happened; now by default; not more than 5 minutes ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Required for `exception` and `note`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 2000)]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_index: Option<u32>,
    /// `internal` by default: what a driver types must not reach the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<VisibilityName>,
}

/// Who reported a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceName {
    Dispatcher,
    Driver,
}

/// Who may see an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisibilityName {
    Public,
    Internal,
}

/// Why an ETA is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EtaReasonName {
    Traffic,
    HosBreak,
    Dwell,
    WindowWait,
}

/// `POST /api/v1/orders/{id}/eta`: an ETA from the tenant's own planning
/// system (used until, or alongside, the engine's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalEtaBody {
    pub stop_index: u32,
    pub eta: DateTime<Utc>,
    /// Not after `eta`; `eta` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p10: Option<DateTime<Utc>>,
    /// Not before `eta`; `eta` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<EtaReasonName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0)]
    pub remaining_distance_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0)]
    pub remaining_drive_s: Option<f64>,
    /// The planned route as `[lon, lat]` pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 10000)]
    pub route: Vec<[f64; 2]>,
}

fn vehicle_id(text: Option<&str>, field: &str) -> Result<Option<VehicleId>, AppError> {
    let Some(text) = optional_text(text, field, 64)? else {
        return Ok(None);
    };
    if text.chars().any(char::is_whitespace) {
        return Err(AppError::invalid(
            field,
            "must be 1-64 characters without spaces",
        ));
    }
    Ok(Some(VehicleId(text)))
}

impl CustomerBody {
    fn check(&self, path: &str) -> Result<Customer, AppError> {
        let email = optional_text(self.email.as_deref(), &format!("{path}.email"), 254)?;
        if let Some(email) = &email {
            let valid = email
                .split_once('@')
                .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
            if !valid {
                return Err(AppError::invalid(
                    format!("{path}.email"),
                    format!("`{email}` is not an e-mail address"),
                ));
            }
        }
        Ok(Customer {
            name: required_text(&self.name, &format!("{path}.name"), 200)?,
            email,
        })
    }
}

impl WindowBody {
    fn check(&self, path: &str) -> Result<Window, AppError> {
        let (from, to) = (self.from, self.to);
        if to < from {
            return Err(AppError::invalid(format!("{path}.to"), "is before `from`"));
        }
        if to - from > Duration::days(MAX_WINDOW_DAYS) {
            return Err(AppError::invalid(
                format!("{path}.to"),
                format!("the window is longer than {MAX_WINDOW_DAYS} days"),
            ));
        }
        Ok(Window { from, to })
    }
}

impl StopBody {
    fn check(&self, path: &str) -> Result<NewStop, AppError> {
        let field = |key: &str| format!("{path}.{key}");
        let (lat, lon) = (self.lat, self.lon);
        if !(-90.0..=90.0).contains(&lat) {
            return Err(AppError::invalid(
                field("lat"),
                format!("{lat} is outside -90..90"),
            ));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(AppError::invalid(
                field("lon"),
                format!("{lon} is outside -180..180"),
            ));
        }
        if lat.abs() < NULL_ISLAND_DEG && lon.abs() < NULL_ISLAND_DEG {
            return Err(AppError::unprocessable(
                "null_island",
                field("lat"),
                "the stop is at 0,0, which is what a failed geocode gives, not a place; \
                 send the stop's real coordinates",
            ));
        }
        let time_zone = match optional_text(self.time_zone.as_deref(), &field("time_zone"), 64)? {
            None => crate::zones::zone_at(lat, lon),
            Some(name) => name.parse::<Tz>().map_err(|_| {
                AppError::invalid(
                    field("time_zone"),
                    format!("`{name}` is not an IANA time zone (e.g. America/New_York)"),
                )
            })?,
        };
        Ok(NewStop {
            kind: match self.kind {
                StopKindName::Pickup => StopKind::Pickup,
                StopKindName::Delivery => StopKind::Delivery,
            },
            name: required_text(&self.name, &field("name"), 200)?,
            address: optional_text(self.address.as_deref(), &field("address"), 500)?
                .unwrap_or_default(),
            lat,
            lon,
            time_zone,
            window: self.window.map(|w| w.check(&field("window"))).transpose()?,
            geofence: self
                .geofence
                .as_ref()
                .filter(|g| !g.is_null())
                .map(|g| geofence(g, &field("geofence")))
                .transpose()?,
        })
    }
}

/// A stop's fence: `{"radius_m": 300}` or `{"polygon": [[lon, lat], …]}`.
fn geofence(value: &serde_json::Value, field: &str) -> Result<engine::Geofence, AppError> {
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

fn check_stops(stops: &[StopBody], path: &str) -> Result<Vec<NewStop>, AppError> {
    if stops.len() > MAX_STOPS {
        return Err(AppError::invalid(
            path,
            format!("more than {MAX_STOPS} stops"),
        ));
    }
    let parsed = stops
        .iter()
        .enumerate()
        .map(|(i, stop)| stop.check(&format!("{path}[{i}]")))
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

impl NewOrderBody {
    /// The order this body asks for, or a 4xx naming the field.
    pub(crate) fn check(&self) -> Result<NewOrder, AppError> {
        Ok(NewOrder {
            reference: required_text(&self.reference, "reference", 100)?,
            customer: self.customer.check("customer")?,
            vehicle_id: vehicle_id(self.vehicle_id.as_deref(), "vehicle_id")?,
            driver_name: optional_text(self.driver_name.as_deref(), "driver_name", 200)?,
            stops: check_stops(&self.stops, "stops")?,
        })
    }
}

impl OrderPatchBody {
    /// The change this body asks for; an empty one is refused.
    pub(crate) fn check(&self) -> Result<OrderPatch, AppError> {
        let patch = OrderPatch {
            reference: self
                .reference
                .as_deref()
                .map(|r| required_text(r, "reference", 100))
                .transpose()?,
            customer: self
                .customer
                .as_ref()
                .map(|c| c.check("customer"))
                .transpose()?,
            vehicle_id: self
                .vehicle_id
                .as_ref()
                .map(|v| vehicle_id(v.as_deref(), "vehicle_id"))
                .transpose()?,
            driver_name: self
                .driver_name
                .as_ref()
                .map(|d| optional_text(d.as_deref(), "driver_name", 200))
                .transpose()?,
            stops: self
                .stops
                .as_deref()
                .map(|s| check_stops(s, "stops"))
                .transpose()?,
        };
        if patch.is_empty() {
            return Err(AppError::invalid("body", "no field to change"));
        }
        Ok(patch)
    }
}

impl StatusUpdateBody {
    /// The event this body records, as of `now`.
    pub(crate) fn check(&self, now: DateTime<Utc>) -> Result<NewEvent, AppError> {
        let (kind, status) = match self.status {
            StatusName::Exception => (EventKind::Exception, None),
            StatusName::Note => (EventKind::Note, None),
            named => {
                let text = serde_json::to_value(named)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let status = OrderStatus::parse(&text)
                    .ok_or_else(|| AppError::invalid("status", format!("`{text}`: unknown")))?;
                (EventKind::Status, Some(status))
            }
        };
        let note = optional_text(self.note.as_deref(), "note", 2000)?;
        if kind != EventKind::Status && note.is_none() {
            return Err(AppError::invalid(
                "note",
                format!("is required for `{}`", kind.as_str()),
            ));
        }
        let at = self.at.unwrap_or(now);
        if at > now + Duration::seconds(MAX_FUTURE_S) {
            return Err(AppError::invalid("at", "is in the future"));
        }
        Ok(NewEvent {
            kind,
            status,
            at,
            note,
            source: match self.source {
                None | Some(SourceName::Dispatcher) => StatusSource::Dispatcher,
                Some(SourceName::Driver) => StatusSource::Driver,
            },
            stop_index: self.stop_index,
            // Internal unless said otherwise: what a driver types ("gate code
            // 4471") must not reach the customer's page by default.
            visibility: match self.visibility {
                None | Some(VisibilityName::Internal) => Visibility::Internal,
                Some(VisibilityName::Public) => Visibility::Public,
            },
        })
    }
}

impl ExternalEtaBody {
    /// The ETA update this body gives for `order`, computed at `now`.
    pub(crate) fn check(
        &self,
        order: engine::OrderId,
        now: DateTime<Utc>,
    ) -> Result<engine::EtaUpdate, AppError> {
        let eta = self.eta;
        let p10 = self.p10.unwrap_or(eta);
        let p90 = self.p90.unwrap_or(eta);
        if p10 > eta {
            return Err(AppError::invalid("p10", "is after `eta`"));
        }
        if p90 < eta {
            return Err(AppError::invalid("p90", "is before `eta`"));
        }
        if self.route.len() > MAX_ROUTE_POINTS {
            return Err(AppError::invalid(
                "route",
                format!("more than {MAX_ROUTE_POINTS} points"),
            ));
        }
        if let Some(i) = self
            .route
            .iter()
            .position(|[lon, lat]| !(-180.0..=180.0).contains(lon) || !(-90.0..=90.0).contains(lat))
        {
            return Err(AppError::invalid(
                format!("route[{i}]"),
                "expected [lon, lat]",
            ));
        }
        let non_negative = |value: Option<f64>, key: &str| -> Result<f64, AppError> {
            let x = value.unwrap_or(0.0);
            if x < 0.0 {
                return Err(AppError::invalid(key, "must not be negative"));
            }
            Ok(x)
        };
        Ok(engine::EtaUpdate {
            order_id: order,
            stop_index: self.stop_index,
            eta,
            p10,
            p90,
            remaining_distance_m: non_negative(self.remaining_distance_m, "remaining_distance_m")?,
            remaining_drive_s: non_negative(self.remaining_drive_s, "remaining_drive_s")?,
            reasons: self
                .reasons
                .iter()
                .map(|r| match r {
                    EtaReasonName::Traffic => engine::EtaReason::Traffic,
                    EtaReasonName::HosBreak => engine::EtaReason::HosBreak,
                    EtaReasonName::Dwell => engine::EtaReason::Dwell,
                    EtaReasonName::WindowWait => engine::EtaReason::WindowWait,
                })
                .collect(),
            computed_at: now,
            // A dispatcher's ETA has no route of ours behind it, so no baseline.
            free_flow_drive_s: None,
            route: self.route.clone(),
        })
    }
}
