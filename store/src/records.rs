//! The rows both backends store, and their mapping to model types. SQLite
//! and PostgreSQL keep the same columns with the same text encodings (times
//! as RFC 3339 UTC text with milliseconds and a `Z`, enums by their names,
//! stop ETAs and geofences as JSON), so a row read by either backend becomes
//! a model value here, once; a value the model does not know is a permanent
//! store error naming it.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use engine::{OrderId, OrderStatus, StatusSource, StopKind, VehicleId};

use crate::error::{Error, Result};
use crate::model::{
    ApiKey, Customer, EtaRecord, EventKind, Order, OrderEvent, PodMeta, Scope, Stop, TenantId,
    Visibility, Window,
};

/// A time as stored: RFC 3339 UTC, milliseconds, `Z` (text order is time order).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::store_permanent(format!("bad time `{text}` in the database: {e}")))
}

pub(crate) fn parse_opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

fn corrupt(what: &str, value: &str) -> Error {
    Error::store_permanent(format!("unknown {what} `{value}` in the database"))
}

pub(crate) fn parse_status(text: &str) -> Result<OrderStatus> {
    OrderStatus::parse(text).ok_or_else(|| corrupt("status", text))
}

/// An `api_keys` row: id, tenant, name, prefix, scopes (comma-separated),
/// created, revoked.
pub(crate) type ApiKeyRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

pub(crate) fn finish_api_key(
    (id, tenant_id, name, prefix, scopes, created_at, revoked_at): ApiKeyRow,
) -> Result<ApiKey> {
    let scopes = scopes
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Scope::parse(s).ok_or_else(|| corrupt("scope", s)))
        .collect::<Result<Vec<_>>>()?;
    Ok(ApiKey {
        id,
        tenant_id: TenantId(tenant_id),
        name,
        prefix,
        scopes,
        created_at: parse_ts(&created_at)?,
        revoked_at: parse_opt_ts(revoked_at)?,
    })
}

/// An order row before its stops are attached.
#[derive(Debug)]
pub(crate) struct OrderRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) reference: String,
    pub(crate) customer_name: String,
    pub(crate) customer_email: Option<String>,
    pub(crate) vehicle_id: Option<String>,
    pub(crate) driver_name: Option<String>,
    pub(crate) status: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) tracking_active: bool,
}

pub(crate) fn finish_order(row: OrderRow, stops: Vec<Stop>) -> Result<Order> {
    Ok(Order {
        stops,
        id: OrderId(row.id),
        tenant_id: TenantId(row.tenant_id),
        reference: row.reference,
        customer: Customer {
            name: row.customer_name,
            email: row.customer_email,
        },
        vehicle_id: row.vehicle_id.map(VehicleId),
        driver_name: row.driver_name,
        status: parse_status(&row.status)?,
        tracking_active: row.tracking_active,
        created_at: parse_ts(&row.created_at)?,
        updated_at: parse_ts(&row.updated_at)?,
    })
}

/// A `stops` row, in the column order of [`STOP_COLUMNS`].
#[derive(Debug)]
pub(crate) struct StopRow {
    pub(crate) index: u32,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) time_zone: String,
    pub(crate) window_from: Option<String>,
    pub(crate) window_to: Option<String>,
    pub(crate) arrived_at: Option<String>,
    pub(crate) departed_at: Option<String>,
    pub(crate) eta_json: Option<String>,
    pub(crate) geofence_json: Option<String>,
    pub(crate) skipped_at: Option<String>,
    pub(crate) late_risk_since: Option<String>,
    pub(crate) late_risk_by_min: Option<i64>,
}

/// The columns a [`StopRow`] is read from, in its field order.
pub(crate) const STOP_COLUMNS: &str = "idx, kind, name, address, lat, lon, time_zone, \
     window_from, window_to, arrived_at, departed_at, eta_json, geofence_json, skipped_at, \
     late_risk_since, late_risk_by_min";

pub(crate) fn finish_stop(row: StopRow) -> Result<Stop> {
    let window = match (row.window_from, row.window_to) {
        (Some(from), Some(to)) => Some(Window {
            from: parse_ts(&from)?,
            to: parse_ts(&to)?,
        }),
        _ => None,
    };
    let eta = match row.eta_json {
        Some(json) => Some(
            serde_json::from_str::<EtaRecord>(&json)
                .map_err(|e| Error::store_permanent(format!("bad ETA in the database: {e}")))?,
        ),
        None => None,
    };
    let geofence = match row.geofence_json {
        Some(json) => Some(
            serde_json::from_str::<engine::Geofence>(&json).map_err(|e| {
                Error::store_permanent(format!("bad geofence in the database: {e}"))
            })?,
        ),
        None => None,
    };
    let late_by_min = row.late_risk_by_min;
    Ok(Stop {
        index: row.index,
        kind: StopKind::parse(&row.kind).ok_or_else(|| corrupt("stop kind", &row.kind))?,
        name: row.name,
        address: row.address,
        lat: row.lat,
        lon: row.lon,
        time_zone: row
            .time_zone
            .parse::<Tz>()
            .map_err(|_| corrupt("time zone", &row.time_zone))?,
        window,
        geofence,
        arrived_at: parse_opt_ts(row.arrived_at)?,
        departed_at: parse_opt_ts(row.departed_at)?,
        skipped_at: parse_opt_ts(row.skipped_at)?,
        eta,
        late_risk: parse_opt_ts(row.late_risk_since)?.map(|since| crate::alerts::LateRisk {
            since,
            by_min: late_by_min.unwrap_or(0),
        }),
    })
}

/// An `order_events` row, in the column order of [`EVENT_COLUMNS`].
#[derive(Debug)]
pub(crate) struct EventRow {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) status: Option<String>,
    pub(crate) at: String,
    pub(crate) note: Option<String>,
    pub(crate) source: String,
    pub(crate) stop_index: Option<u32>,
    pub(crate) recorded_at: String,
    pub(crate) visibility: String,
}

/// The columns an [`EventRow`] is read from, in its field order.
pub(crate) const EVENT_COLUMNS: &str =
    "id, kind, status, at, note, source, stop_idx, recorded_at, visibility";

pub(crate) fn finish_event(row: EventRow) -> Result<OrderEvent> {
    Ok(OrderEvent {
        id: row.id,
        kind: EventKind::parse(&row.kind).ok_or_else(|| corrupt("event kind", &row.kind))?,
        status: row.status.as_deref().map(parse_status).transpose()?,
        at: parse_ts(&row.at)?,
        note: row.note,
        source: StatusSource::parse(&row.source).ok_or_else(|| corrupt("source", &row.source))?,
        stop_index: row.stop_index,
        visibility: Visibility::parse(&row.visibility)
            .ok_or_else(|| corrupt("visibility", &row.visibility))?,
        recorded_at: parse_ts(&row.recorded_at)?,
    })
}

/// The columns of a POD's metadata; a row maps through [`finish_pod`].
pub(crate) const POD_COLUMNS: &str = "id, order_id, content_type, file_name, size_bytes, sha256, \
     signed_by, note, taken_at, uploaded_at";

/// A POD's metadata with its two times still as text.
pub(crate) fn finish_pod(
    (mut meta, taken_at, uploaded_at): (PodMeta, Option<String>, String),
) -> Result<PodMeta> {
    meta.taken_at = parse_opt_ts(taken_at)?;
    meta.uploaded_at = parse_ts(&uploaded_at)?;
    Ok(meta)
}
