//! Reading records out of SQLite: rows to model types, and the queries behind the
//! read side of [`super::Store`]. Shared by the reader pool and the writer (which
//! reads back what it wrote inside its transaction).

use chrono::{DateTime, Utc};
use engine::{OrderId, VehicleId, VehicleKey};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::records::{
    ApiKeyRow, EVENT_COLUMNS, EventRow, OrderRow, POD_COLUMNS, STOP_COLUMNS, StopRow,
    finish_api_key, finish_event, finish_order, finish_pod, finish_stop, parse_opt_ts,
};
pub(crate) use super::records::{parse_ts, ts};
use super::rules::{TRAIL_POINTS, history_stop};
use crate::error::{Error, Result};
use crate::model::{
    ApiKey, EtaHistory, ListQuery, Order, OrderEvent, PodMeta, Stop, Tenant, TenantId, TrackView,
    TrackerMemoryRecord, TrailPoint, VehicleFix,
};

/// The tenant and key an API key hash belongs to, unless the key is revoked.
pub(crate) fn api_key_by_hash(c: &Connection, hash: &str) -> Result<Option<(Tenant, ApiKey)>> {
    let sql = format!(
        "SELECT {API_KEY_COLUMNS}, t.name, t.created_at FROM api_keys k \
         JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = ?1 AND k.revoked_at IS NULL"
    );
    let row = c
        .prepare_cached(&sql)?
        .query_row([hash], |r| {
            Ok((
                api_key_row(r)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
            ))
        })
        .optional()?;
    row.map(|(key, name, created_at)| {
        let key = finish_api_key(key)?;
        let tenant = Tenant {
            id: key.tenant_id.clone(),
            name,
            created_at: parse_ts(&created_at)?,
        };
        Ok((tenant, key))
    })
    .transpose()
}

/// A tenant's API keys, revoked ones included, oldest first.
pub(crate) fn api_keys(c: &Connection, tenant: &TenantId) -> Result<Vec<ApiKey>> {
    if tenant_where(c, "id = ?1", tenant.as_str())?.is_none() {
        return Err(Error::NotFound("tenant"));
    }
    let sql = format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.tenant_id = ?1 \
         ORDER BY k.created_at, k.rowid"
    );
    let raw = c
        .prepare(&sql)?
        .query_map([tenant.as_str()], api_key_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raw.into_iter().map(finish_api_key).collect()
}

/// One of a tenant's API keys; another tenant's is "not there".
pub(crate) fn api_key_of_tenant(
    c: &Connection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<ApiKey>> {
    let sql =
        format!("SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.id = ?1 AND k.tenant_id = ?2");
    let raw = c
        .query_row(&sql, params![id, tenant.as_str()], api_key_row)
        .optional()?;
    raw.map(finish_api_key).transpose()
}

const API_KEY_COLUMNS: &str =
    "k.id, k.tenant_id, k.name, k.prefix, k.scopes, k.created_at, k.revoked_at";

fn api_key_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

pub(crate) fn tenant_by_name(c: &Connection, name: &str) -> Result<Option<Tenant>> {
    tenant_where(c, "name = ?1", name)
}

fn tenant_where(c: &Connection, condition: &str, value: &str) -> Result<Option<Tenant>> {
    let sql = format!(
        "SELECT id, name, created_at FROM tenants WHERE {condition} ORDER BY created_at LIMIT 1"
    );
    let row = c
        .query_row(&sql, [value], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    row.map(|(id, name, created_at)| {
        Ok(Tenant {
            id: TenantId(id),
            name,
            created_at: parse_ts(&created_at)?,
        })
    })
    .transpose()
}

const ORDER_COLUMNS: &str = "o.id, o.tenant_id, o.reference, o.customer_name, o.customer_email, \
     o.vehicle_id, o.driver_name, o.status, o.created_at, o.updated_at, \
     EXISTS (SELECT 1 FROM tracking_codes t WHERE t.order_id = o.id AND t.revoked_at IS NULL)";

fn order_row(r: &Row<'_>) -> rusqlite::Result<OrderRow> {
    Ok(OrderRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        reference: r.get(2)?,
        customer_name: r.get(3)?,
        customer_email: r.get(4)?,
        vehicle_id: r.get(5)?,
        driver_name: r.get(6)?,
        status: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        tracking_active: r.get(10)?,
    })
}

fn finish_order_row(c: &Connection, row: OrderRow) -> Result<Order> {
    let stops = stops(c, &OrderId(row.id.clone()))?;
    finish_order(row, stops)
}

fn stops(c: &Connection, order: &OrderId) -> Result<Vec<Stop>> {
    let sql = format!("SELECT {STOP_COLUMNS} FROM stops WHERE order_id = ?1 ORDER BY idx");
    let mut stmt = c.prepare_cached(&sql)?;
    let raw = stmt
        .query_map([order.as_str()], |r| {
            Ok(StopRow {
                index: r.get(0)?,
                kind: r.get(1)?,
                name: r.get(2)?,
                address: r.get(3)?,
                lat: r.get(4)?,
                lon: r.get(5)?,
                time_zone: r.get(6)?,
                window_from: r.get(7)?,
                window_to: r.get(8)?,
                arrived_at: r.get(9)?,
                departed_at: r.get(10)?,
                eta_json: r.get(11)?,
                geofence_json: r.get(12)?,
                skipped_at: r.get(13)?,
                late_risk_since: r.get(14)?,
                late_risk_by_min: r.get(15)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raw.into_iter().map(finish_stop).collect()
}

/// Any tenant's order (for the engine and the public page).
pub(crate) fn order_any(c: &Connection, id: &OrderId) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE o.id = ?1");
    let row = c.query_row(&sql, [id.as_str()], order_row).optional()?;
    row.map(|r| finish_order_row(c, r)).transpose()
}

/// An order if it belongs to `tenant`; another tenant's order is "not there".
pub(crate) fn order_of_tenant(
    c: &Connection,
    tenant: &TenantId,
    id: &OrderId,
) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE o.id = ?1 AND o.tenant_id = ?2");
    let row = c
        .query_row(&sql, params![id.as_str(), tenant.as_str()], order_row)
        .optional()?;
    row.map(|r| finish_order_row(c, r)).transpose()
}

pub(crate) fn list_orders(c: &Connection, tenant: &TenantId, q: &ListQuery) -> Result<Vec<Order>> {
    // The cursor must be one of the caller's own orders. Another tenant's
    // order gets the very answer an id that never existed gets, so a cursor
    // cannot be used to probe which order ids exist.
    if let Some(after) = &q.after {
        let own: Option<i64> = c
            .prepare_cached("SELECT 1 FROM orders WHERE id = ?1 AND tenant_id = ?2")?
            .query_row(params![after.as_str(), tenant.as_str()], |r| r.get(0))
            .optional()?;
        if own.is_none() {
            return Err(Error::invalid("after", UNKNOWN_CURSOR));
        }
    }
    let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE o.tenant_id = ?1");
    if q.status.is_some() {
        sql.push_str(" AND o.status = ?2");
    }
    if q.reference.is_some() {
        sql.push_str(" AND o.reference = ?3");
    }
    if q.vehicle_id.is_some() {
        sql.push_str(" AND o.vehicle_id = ?4");
    }
    // The order's late risk as `Order::late_risk` judges it: a pending stop
    // at risk, the order not finished.
    if let Some(wanted) = q.late_risk {
        let at_risk = "EXISTS (SELECT 1 FROM stops s WHERE s.order_id = o.id \
             AND s.late_risk_since IS NOT NULL AND s.arrived_at IS NULL \
             AND s.departed_at IS NULL AND s.skipped_at IS NULL) \
             AND o.status NOT IN ('delivered', 'cancelled')";
        if wanted {
            sql.push_str(&format!(" AND {at_risk}"));
        } else {
            sql.push_str(&format!(" AND NOT ({at_risk})"));
        }
    }
    if q.after.is_some() {
        // Keyset pagination on insertion order: stable under inserts, no OFFSET
        // scans. (A PostgreSQL backend uses a sequence column the same way.)
        sql.push_str(" AND o.rowid < (SELECT rowid FROM orders WHERE id = ?5)");
    }
    sql.push_str(" ORDER BY o.rowid DESC LIMIT ?6");
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt
        .query_map(
            params![
                tenant.as_str(),
                q.status.map(|s| s.as_str()),
                q.reference,
                q.vehicle_id.as_ref().map(|v| v.as_str()),
                q.after.as_ref().map(|a| a.as_str()),
                q.limit,
            ],
            order_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(|r| finish_order_row(c, r)).collect()
}

/// Why a cursor is refused, whatever is wrong with it (malformed, unknown, or
/// another tenant's): one message, so the answer says nothing about which.
pub const UNKNOWN_CURSOR: &str = "not a cursor from a previous page of this listing";

/// An order's timeline, every entry (internal ones too: see
/// [`OrderEvent::public`] for what the public view keeps).
pub(crate) fn events(c: &Connection, order: &OrderId) -> Result<Vec<OrderEvent>> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM order_events WHERE order_id = ?1 ORDER BY at, rowid");
    let mut stmt = c.prepare_cached(&sql)?;
    let raw = stmt
        .query_map([order.as_str()], |r| {
            Ok(EventRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                status: r.get(2)?,
                at: r.get(3)?,
                note: r.get(4)?,
                source: r.get(5)?,
                stop_index: r.get(6)?,
                recorded_at: r.get(7)?,
                visibility: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raw.into_iter().map(finish_event).collect()
}

fn pod_meta(r: &Row<'_>) -> rusqlite::Result<(PodMeta, Option<String>, String)> {
    Ok((
        PodMeta {
            id: r.get(0)?,
            order_id: OrderId(r.get(1)?),
            content_type: r.get(2)?,
            file_name: r.get(3)?,
            size_bytes: r.get(4)?,
            sha256: r.get(5)?,
            signed_by: r.get(6)?,
            note: r.get(7)?,
            taken_at: None,
            uploaded_at: DateTime::<Utc>::MIN_UTC,
        },
        r.get(8)?,
        r.get(9)?,
    ))
}

pub(crate) fn pods(c: &Connection, order: &OrderId) -> Result<Vec<PodMeta>> {
    let sql =
        format!("SELECT {POD_COLUMNS} FROM pod_files WHERE order_id = ?1 ORDER BY uploaded_at");
    let mut stmt = c.prepare_cached(&sql)?;
    let raw = stmt
        .query_map([order.as_str()], pod_meta)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raw.into_iter().map(finish_pod).collect()
}

pub(crate) fn pod_by_id(c: &Connection, order: &OrderId, pod_id: &str) -> Result<Option<PodMeta>> {
    let sql = format!("SELECT {POD_COLUMNS} FROM pod_files WHERE order_id = ?1 AND id = ?2");
    let raw = c
        .query_row(&sql, params![order.as_str(), pod_id], pod_meta)
        .optional()?;
    raw.map(finish_pod).transpose()
}

pub(crate) fn pod_file(
    c: &Connection,
    order: &OrderId,
    pod_id: &str,
) -> Result<Option<(PodMeta, Vec<u8>)>> {
    let Some(meta) = pod_by_id(c, order, pod_id)? else {
        return Ok(None);
    };
    let data: Vec<u8> = c.query_row("SELECT data FROM pod_files WHERE id = ?1", [pod_id], |r| {
        r.get(0)
    })?;
    Ok(Some((meta, data)))
}

pub(crate) fn order_by_code_hash(c: &Connection, hash: &str) -> Result<Option<OrderId>> {
    Ok(c.query_row(
        "SELECT order_id FROM tracking_codes WHERE code_hash = ?1 AND revoked_at IS NULL",
        [hash],
        |r| r.get::<_, String>(0),
    )
    .optional()?
    .map(OrderId))
}

/// The latest position of a vehicle as seen by `tenant` (its own posts or the
/// engine's, whichever is newer).
pub(crate) fn vehicle_fix(
    c: &Connection,
    tenant: &TenantId,
    vehicle: &VehicleId,
) -> Result<Option<VehicleFix>> {
    let raw = c
        .query_row(
            "SELECT at, lat, lon, speed_mps, heading_deg FROM vehicle_positions \
             WHERE tenant_id = ?2 AND vehicle_id = ?1",
            params![vehicle.as_str(), tenant.as_str()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                ))
            },
        )
        .optional()?;
    raw.map(|(at, lat, lon, speed_mps, heading_deg)| {
        Ok(VehicleFix {
            vehicle_id: vehicle.clone(),
            at: parse_ts(&at)?,
            lat,
            lon,
            speed_mps,
            heading_deg,
        })
    })
    .transpose()
}

/// The newest [`TRAIL_POINTS`] of an order's trail, oldest first.
fn trail(c: &Connection, id: &OrderId) -> Result<Vec<TrailPoint>> {
    let mut stmt = c.prepare_cached(
        "SELECT at, lat, lon FROM position_trail WHERE order_id = ?1 ORDER BY at DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![id.as_str(), TRAIL_POINTS], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut points = rows
        .into_iter()
        .map(|(at, lat, lon)| {
            Ok(TrailPoint {
                at: parse_ts(&at)?,
                lat,
                lon,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    points.reverse();
    Ok(points)
}

pub(crate) fn track_view(c: &Connection, id: &OrderId) -> Result<Option<TrackView>> {
    let Some(order) = order_any(c, id)? else {
        return Ok(None);
    };
    let vehicle = match &order.vehicle_id {
        Some(v) => vehicle_fix(c, &order.tenant_id, v)?,
        None => None,
    };
    let history_stop = history_stop(&order);
    let eta_history = match history_stop {
        Some(stop_index) => {
            let (points, actual_arrival) = crate::analytics_store::eta_history(c, id, stop_index)?;
            Some(EtaHistory {
                stop_index,
                points: crate::analytics::thin_history(&points, crate::analytics::HISTORY_STEP_S),
                actual_arrival,
            })
        }
        None => None,
    };
    Ok(Some(TrackView {
        trail: trail(c, id)?,
        branding: super::settings::branding(c, &order.tenant_id)?,
        privacy: super::settings::privacy(c, &order.tenant_id)?,
        eta_history,
        events: events(c, id)?
            .iter()
            .filter_map(OrderEvent::public)
            .collect(),
        pods: pods(c, id)?,
        vehicle,
        order,
    }))
}

pub(crate) fn active_orders(c: &Connection) -> Result<Vec<Order>> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders o WHERE o.vehicle_id IS NOT NULL \
         AND o.status NOT IN ('created', 'delivered', 'cancelled') ORDER BY o.rowid"
    );
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt
        .query_map([], order_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(|r| finish_order_row(c, r)).collect()
}

pub(crate) fn vehicle_times(
    c: &Connection,
    vehicles: &[VehicleKey],
) -> Result<Vec<Option<DateTime<Utc>>>> {
    vehicles
        .iter()
        .map(|v| {
            parse_opt_ts(newest_fix_at(
                c,
                v.tenant_id.as_str(),
                v.vehicle_id.as_str(),
            )?)
        })
        .collect()
}

/// The device time of a vehicle's newest recorded fix, as stored.
pub(crate) fn newest_fix_at(c: &Connection, tenant: &str, vehicle: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached(
        "SELECT at FROM vehicle_positions WHERE tenant_id = ?1 AND vehicle_id = ?2",
    )?
    .query_row([tenant, vehicle], |r| r.get(0))
    .optional()?)
}

pub(crate) fn tracker_memories(
    c: &Connection,
    vehicles: &[VehicleKey],
) -> Result<Vec<TrackerMemoryRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT order_id, state, applied_through, saved_at FROM tracker_memories \
         WHERE tenant_id = ?1 AND vehicle_id = ?2 ORDER BY order_id",
    )?;
    let mut out = Vec::new();
    for v in vehicles {
        let rows = stmt.query_map([v.tenant_id.as_str(), v.vehicle_id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (order_id, state, applied_through, saved_at) = row?;
            out.push(TrackerMemoryRecord {
                tenant_id: v.tenant_id.clone(),
                vehicle_id: v.vehicle_id.clone(),
                order_id: OrderId(order_id),
                state,
                applied_through: parse_ts(&applied_through)?,
                saved_at: parse_ts(&saved_at)?,
            });
        }
    }
    Ok(out)
}

pub(crate) fn learned(c: &Connection, name: &str) -> Result<Option<(String, DateTime<Utc>)>> {
    let row: Option<(String, String)> = c
        .prepare_cached("SELECT state, saved_at FROM learned_state WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(state, at)| Ok((state, parse_ts(&at)?)))
        .transpose()
}
