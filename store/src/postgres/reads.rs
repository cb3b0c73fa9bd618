//! Reading records out of PostgreSQL: the queries behind the read side of
//! [`crate::Store`], generic over a client or a transaction (the writes read
//! back what they wrote inside their transaction). Rows become model values
//! through `store::records`, the mapping SQLite uses too.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::{OrderId, VehicleId, VehicleKey};
use tokio_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::UNKNOWN_CURSOR;
use crate::branding::{Branding, LogoMeta};
use crate::error::{Error, Result};
use crate::model::{
    ApiKey, EtaHistory, ListQuery, Order, OrderEvent, PodMeta, Stop, Tenant, TenantId, TrackView,
    TrackerMemoryRecord, TrailPoint, VehicleFix,
};
use crate::privacy::LocationPrivacy;
use crate::records::{
    ApiKeyRow, EVENT_COLUMNS, EventRow, OrderRow, POD_COLUMNS, STOP_COLUMNS, StopRow,
    finish_api_key, finish_event, finish_order, finish_pod, finish_stop, parse_opt_ts, parse_ts,
};
use crate::rules::{TRAIL_POINTS, history_stop};

/// Query parameters, as tokio-postgres takes them.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A stop index or count as stored (`BIGINT`) back into the model's `u32`.
pub(super) fn index_of(value: i64) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| Error::store_permanent(format!("stop index {value} out of range")))
}

const API_KEY_COLUMNS: &str =
    "k.id, k.tenant_id, k.name, k.prefix, k.scopes, k.created_at, k.revoked_at";

fn api_key_row(r: &Row) -> Result<ApiKeyRow> {
    Ok((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
    ))
}

pub(super) async fn api_key_by_hash<C: GenericClient + Sync>(
    c: &C,
    hash: &str,
) -> Result<Option<(Tenant, ApiKey)>> {
    let sql = format!(
        "SELECT {API_KEY_COLUMNS}, t.name, t.created_at FROM api_keys k \
         JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
    );
    let Some(r) = c.query_opt(&sql, &[&hash]).await? else {
        return Ok(None);
    };
    let key = finish_api_key(api_key_row(&r)?)?;
    let tenant = Tenant {
        id: key.tenant_id.clone(),
        name: r.try_get(7)?,
        created_at: parse_ts(r.try_get(8)?)?,
    };
    Ok(Some((tenant, key)))
}

pub(super) async fn api_keys<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
) -> Result<Vec<ApiKey>> {
    if tenant_where(c, "id = $1", tenant.as_str()).await?.is_none() {
        return Err(Error::NotFound("tenant"));
    }
    let sql = format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.tenant_id = $1 \
         ORDER BY k.created_at, k.seq"
    );
    c.query(&sql, &[&tenant.as_str()])
        .await?
        .iter()
        .map(|r| finish_api_key(api_key_row(r)?))
        .collect()
}

pub(super) async fn api_key_of_tenant<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<ApiKey>> {
    let sql =
        format!("SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.id = $1 AND k.tenant_id = $2");
    c.query_opt(&sql, &[&id, &tenant.as_str()])
        .await?
        .map(|r| finish_api_key(api_key_row(&r)?))
        .transpose()
}

pub(super) async fn tenant_by_name<C: GenericClient + Sync>(
    c: &C,
    name: &str,
) -> Result<Option<Tenant>> {
    tenant_where(c, "name = $1", name).await
}

pub(super) async fn tenant_by_id<C: GenericClient + Sync>(
    c: &C,
    id: &TenantId,
) -> Result<Option<Tenant>> {
    tenant_where(c, "id = $1", id.as_str()).await
}

async fn tenant_where<C: GenericClient + Sync>(
    c: &C,
    condition: &str,
    value: &str,
) -> Result<Option<Tenant>> {
    let sql = format!(
        "SELECT id, name, created_at FROM tenants WHERE {condition} \
         ORDER BY created_at, id LIMIT 1"
    );
    c.query_opt(&sql, &[&value])
        .await?
        .map(|r| {
            Ok(Tenant {
                id: TenantId(r.try_get(0)?),
                name: r.try_get(1)?,
                created_at: parse_ts(r.try_get(2)?)?,
            })
        })
        .transpose()
}

const ORDER_COLUMNS: &str = "o.id, o.tenant_id, o.reference, o.customer_name, o.customer_email, \
     o.vehicle_id, o.driver_name, o.status, o.created_at, o.updated_at, \
     EXISTS (SELECT 1 FROM tracking_codes t WHERE t.order_id = o.id AND t.revoked_at IS NULL)";

fn order_row(r: &Row) -> Result<OrderRow> {
    Ok(OrderRow {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        reference: r.try_get(2)?,
        customer_name: r.try_get(3)?,
        customer_email: r.try_get(4)?,
        vehicle_id: r.try_get(5)?,
        driver_name: r.try_get(6)?,
        status: r.try_get(7)?,
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
        tracking_active: r.try_get(10)?,
    })
}

async fn stops<C: GenericClient + Sync>(c: &C, order: &str) -> Result<Vec<Stop>> {
    let sql = format!("SELECT {STOP_COLUMNS} FROM stops WHERE order_id = $1 ORDER BY idx");
    c.query(&sql, &[&order])
        .await?
        .iter()
        .map(|r| {
            finish_stop(StopRow {
                index: index_of(r.try_get(0)?)?,
                kind: r.try_get(1)?,
                name: r.try_get(2)?,
                address: r.try_get(3)?,
                lat: r.try_get(4)?,
                lon: r.try_get(5)?,
                time_zone: r.try_get(6)?,
                window_from: r.try_get(7)?,
                window_to: r.try_get(8)?,
                arrived_at: r.try_get(9)?,
                departed_at: r.try_get(10)?,
                eta_json: r.try_get(11)?,
                geofence_json: r.try_get(12)?,
                skipped_at: r.try_get(13)?,
                late_risk_since: r.try_get(14)?,
                late_risk_by_min: r.try_get(15)?,
            })
        })
        .collect()
}

/// Orders from their rows, each with its stops.
async fn finish_orders<C: GenericClient + Sync>(c: &C, rows: Vec<Row>) -> Result<Vec<Order>> {
    let mut orders = Vec::with_capacity(rows.len());
    for r in &rows {
        let row = order_row(r)?;
        let stops = stops(c, &row.id).await?;
        orders.push(finish_order(row, stops)?);
    }
    Ok(orders)
}

async fn one_order<C: GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Order>> {
    let rows = c.query(sql, params).await?;
    Ok(finish_orders(c, rows).await?.into_iter().next())
}

/// Any tenant's order (for the engine and the public page).
pub(super) async fn order_any<C: GenericClient + Sync>(
    c: &C,
    id: &OrderId,
) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE o.id = $1");
    one_order(c, &sql, &[&id.as_str()]).await
}

/// An order if it belongs to `tenant`; another tenant's order is "not there".
pub(super) async fn order_of_tenant<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    id: &OrderId,
) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE o.id = $1 AND o.tenant_id = $2");
    one_order(c, &sql, &[&id.as_str(), &tenant.as_str()]).await
}

pub(super) async fn list_orders<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    q: &ListQuery,
) -> Result<Vec<Order>> {
    // The cursor must be one of the caller's own orders, with the answer an
    // unknown id gets (as on SQLite: a cursor cannot probe other tenants).
    if let Some(after) = &q.after {
        let own = c
            .query_opt(
                "SELECT 1 FROM orders WHERE id = $1 AND tenant_id = $2",
                &[&after.as_str(), &tenant.as_str()],
            )
            .await?;
        if own.is_none() {
            return Err(Error::invalid("after", UNKNOWN_CURSOR));
        }
    }
    let status = q.status.map(|s| s.as_str());
    let vehicle = q.vehicle_id.as_ref().map(|v| v.as_str());
    let after = q.after.as_ref().map(|a| a.as_str());
    let limit = i64::from(q.limit);
    // Every filter is a parameter that may be NULL, so one statement serves
    // every combination.
    let mut sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders o WHERE o.tenant_id = $1 \
         AND ($2::text IS NULL OR o.status = $2) \
         AND ($3::text IS NULL OR o.reference = $3) \
         AND ($4::text IS NULL OR o.vehicle_id = $4) \
         AND ($5::text IS NULL OR o.seq < (SELECT seq FROM orders WHERE id = $5))"
    );
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
    sql.push_str(" ORDER BY o.seq DESC LIMIT $6");
    let rows = c
        .query(
            &sql,
            &[
                &tenant.as_str(),
                &status,
                &q.reference,
                &vehicle,
                &after,
                &limit,
            ],
        )
        .await?;
    finish_orders(c, rows).await
}

pub(super) async fn events<C: GenericClient + Sync>(
    c: &C,
    order: &OrderId,
) -> Result<Vec<OrderEvent>> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM order_events WHERE order_id = $1 ORDER BY at, seq");
    c.query(&sql, &[&order.as_str()])
        .await?
        .iter()
        .map(|r| {
            let stop: Option<i64> = r.try_get(6)?;
            finish_event(EventRow {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                status: r.try_get(2)?,
                at: r.try_get(3)?,
                note: r.try_get(4)?,
                source: r.try_get(5)?,
                stop_index: stop.map(index_of).transpose()?,
                recorded_at: r.try_get(7)?,
                visibility: r.try_get(8)?,
            })
        })
        .collect()
}

fn pod_meta(r: &Row) -> Result<PodMeta> {
    let size_bytes: i64 = r.try_get(4)?;
    finish_pod((
        PodMeta {
            id: r.try_get(0)?,
            order_id: OrderId(r.try_get(1)?),
            content_type: r.try_get(2)?,
            file_name: r.try_get(3)?,
            size_bytes: u64::try_from(size_bytes).unwrap_or(0),
            sha256: r.try_get(5)?,
            signed_by: r.try_get(6)?,
            note: r.try_get(7)?,
            taken_at: None,
            uploaded_at: DateTime::<Utc>::MIN_UTC,
        },
        r.try_get(8)?,
        r.try_get(9)?,
    ))
}

async fn pods<C: GenericClient + Sync>(c: &C, order: &OrderId) -> Result<Vec<PodMeta>> {
    let sql =
        format!("SELECT {POD_COLUMNS} FROM pod_files WHERE order_id = $1 ORDER BY uploaded_at, id");
    c.query(&sql, &[&order.as_str()])
        .await?
        .iter()
        .map(pod_meta)
        .collect()
}

pub(super) async fn pod_by_id<C: GenericClient + Sync>(
    c: &C,
    order: &OrderId,
    pod_id: &str,
) -> Result<Option<PodMeta>> {
    let sql = format!("SELECT {POD_COLUMNS} FROM pod_files WHERE order_id = $1 AND id = $2");
    c.query_opt(&sql, &[&order.as_str(), &pod_id])
        .await?
        .map(|r| pod_meta(&r))
        .transpose()
}

pub(super) async fn pod_file<C: GenericClient + Sync>(
    c: &C,
    order: &OrderId,
    pod_id: &str,
) -> Result<Option<(PodMeta, Vec<u8>)>> {
    let sql = format!("SELECT {POD_COLUMNS}, data FROM pod_files WHERE order_id = $1 AND id = $2");
    c.query_opt(&sql, &[&order.as_str(), &pod_id])
        .await?
        .map(|r| Ok((pod_meta(&r)?, r.try_get(10)?)))
        .transpose()
}

pub(super) async fn order_by_code_hash<C: GenericClient + Sync>(
    c: &C,
    hash: &str,
) -> Result<Option<OrderId>> {
    c.query_opt(
        "SELECT order_id FROM tracking_codes WHERE code_hash = $1 AND revoked_at IS NULL",
        &[&hash],
    )
    .await?
    .map(|r| Ok(OrderId(r.try_get(0)?)))
    .transpose()
}

async fn vehicle_fix<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    vehicle: &VehicleId,
) -> Result<Option<VehicleFix>> {
    c.query_opt(
        "SELECT at, lat, lon, speed_mps, heading_deg FROM vehicle_positions \
         WHERE tenant_id = $1 AND vehicle_id = $2",
        &[&tenant.as_str(), &vehicle.as_str()],
    )
    .await?
    .map(|r| {
        Ok(VehicleFix {
            vehicle_id: vehicle.clone(),
            at: parse_ts(r.try_get(0)?)?,
            lat: r.try_get(1)?,
            lon: r.try_get(2)?,
            speed_mps: r.try_get(3)?,
            heading_deg: r.try_get(4)?,
        })
    })
    .transpose()
}

/// The newest [`TRAIL_POINTS`] of an order's trail, oldest first.
async fn trail<C: GenericClient + Sync>(c: &C, id: &OrderId) -> Result<Vec<TrailPoint>> {
    let limit = TRAIL_POINTS as i64;
    let mut points = c
        .query(
            "SELECT at, lat, lon FROM position_trail WHERE order_id = $1 \
             ORDER BY at DESC LIMIT $2",
            &[&id.as_str(), &limit],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(TrailPoint {
                at: parse_ts(r.try_get(0)?)?,
                lat: r.try_get(1)?,
                lon: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    points.reverse();
    Ok(points)
}

/// The predictions of one stop in time order, and its actual arrival.
async fn eta_history<C: GenericClient + Sync>(
    c: &C,
    order: &OrderId,
    stop: u32,
) -> Result<EtaHistory> {
    let rows = c
        .query(
            "SELECT predicted_at, eta, p10, p90, actual_arrival FROM eta_predictions \
             WHERE order_id = $1 AND stop_idx = $2 ORDER BY predicted_at, id",
            &[&order.as_str(), &i64::from(stop)],
        )
        .await?;
    let mut points = Vec::with_capacity(rows.len());
    let mut actual_arrival = None;
    for r in &rows {
        points.push(crate::analytics::EtaPoint {
            at: parse_ts(r.try_get(0)?)?,
            eta: parse_ts(r.try_get(1)?)?,
            p10: parse_ts(r.try_get(2)?)?,
            p90: parse_ts(r.try_get(3)?)?,
        });
        if let Some(t) = parse_opt_ts(r.try_get(4)?)? {
            actual_arrival = Some(t);
        }
    }
    Ok(EtaHistory {
        stop_index: stop,
        points: crate::analytics::thin_history(&points, crate::analytics::HISTORY_STEP_S),
        actual_arrival,
    })
}

/// The tenant's brand, logo metadata included (not its bytes); the default
/// when never set.
pub(super) async fn branding<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
) -> Result<Branding> {
    let Some(r) = c
        .query_opt(
            "SELECT display_name, primary_color, support_phone, support_email, support_url, \
                    logo_type, logo_sha256, logo_width, logo_height, length(logo)::BIGINT \
             FROM tenant_branding WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?
    else {
        return Ok(Branding::default());
    };
    let dimension = |i: usize| -> Result<u32> {
        let v: Option<i64> = r.try_get(i)?;
        Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
    };
    let logo = match (
        r.try_get::<_, Option<String>>(5)?,
        r.try_get::<_, Option<String>>(6)?,
    ) {
        (Some(content_type), Some(sha256)) => Some(LogoMeta {
            content_type,
            sha256,
            width_px: dimension(7)?,
            height_px: dimension(8)?,
            size_bytes: usize::try_from(r.try_get::<_, Option<i64>>(9)?.unwrap_or(0)).unwrap_or(0),
        }),
        _ => None,
    };
    Ok(Branding {
        display_name: r.try_get(0)?,
        primary_color: r.try_get(1)?,
        support_phone: r.try_get(2)?,
        support_email: r.try_get(3)?,
        support_url: r.try_get(4)?,
        logo,
    })
}

/// The tenant's location privacy (off when never set).
pub(super) async fn privacy<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
) -> Result<LocationPrivacy> {
    let Some(r) = c
        .query_opt(
            "SELECT enabled, exact_within_m, cell_resolution FROM tenant_privacy \
             WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?
    else {
        return Ok(LocationPrivacy::default());
    };
    privacy_of_row(&r)
}

/// What publishing a batch's positions or ETAs needs, read in the batch's
/// transaction with two statements: the location privacy of each order's
/// tenant (off when never set) and, for each order whose tenant has it on,
/// the (lat, lon) of its pending stops in stop order.
pub(super) async fn privacy_and_pending<C: GenericClient + Sync>(
    c: &C,
    orders: &[(&TenantId, &OrderId)],
) -> Result<(
    HashMap<TenantId, LocationPrivacy>,
    HashMap<OrderId, Vec<(f64, f64)>>,
)> {
    let mut privacy: HashMap<TenantId, LocationPrivacy> = orders
        .iter()
        .map(|(tenant, _)| ((*tenant).clone(), LocationPrivacy::default()))
        .collect();
    let mut pending: HashMap<OrderId, Vec<(f64, f64)>> = HashMap::new();
    if privacy.is_empty() {
        return Ok((privacy, pending));
    }
    let mut tenants: Vec<&str> = privacy.keys().map(TenantId::as_str).collect();
    tenants.sort_unstable();
    for row in c
        .query(
            "SELECT enabled, exact_within_m, cell_resolution, tenant_id FROM tenant_privacy \
             WHERE tenant_id = ANY($1)",
            &[&tenants],
        )
        .await?
    {
        privacy.insert(TenantId(row.try_get(3)?), privacy_of_row(&row)?);
    }
    // Only tenants with privacy on pay for stops.
    let mut private: Vec<&str> = orders
        .iter()
        .filter(|(tenant, _)| privacy.get(*tenant).is_some_and(|p| p.enabled))
        .map(|(_, order)| order.as_str())
        .collect();
    private.sort_unstable();
    private.dedup();
    if private.is_empty() {
        return Ok((privacy, pending));
    }
    for order in &private {
        pending.insert(OrderId((*order).to_owned()), Vec::new());
    }
    for row in c
        .query(
            "SELECT order_id, lat, lon FROM stops WHERE order_id = ANY($1) \
             AND arrived_at IS NULL AND departed_at IS NULL AND skipped_at IS NULL \
             ORDER BY order_id, idx",
            &[&private],
        )
        .await?
    {
        pending
            .entry(OrderId(row.try_get(0)?))
            .or_default()
            .push((row.try_get(1)?, row.try_get(2)?));
    }
    Ok((privacy, pending))
}

/// A row of `enabled, exact_within_m, cell_resolution` from `tenant_privacy`.
pub(super) fn privacy_of_row(r: &tokio_postgres::Row) -> Result<LocationPrivacy> {
    let resolution: i64 = r.try_get(2)?;
    Ok(LocationPrivacy {
        enabled: r.try_get(0)?,
        exact_within_m: r.try_get(1)?,
        cell_resolution: u8::try_from(resolution).map_err(|_| {
            Error::store_permanent(format!("cell resolution {resolution} out of range"))
        })?,
    })
}

pub(super) async fn track_view<C: GenericClient + Sync>(
    c: &C,
    id: &OrderId,
) -> Result<Option<TrackView>> {
    let Some(order) = order_any(c, id).await? else {
        return Ok(None);
    };
    let vehicle = match &order.vehicle_id {
        Some(v) => vehicle_fix(c, &order.tenant_id, v).await?,
        None => None,
    };
    let eta_history = match history_stop(&order) {
        Some(stop) => Some(eta_history(c, id, stop).await?),
        None => None,
    };
    Ok(Some(TrackView {
        trail: trail(c, id).await?,
        branding: branding(c, &order.tenant_id).await?,
        privacy: privacy(c, &order.tenant_id).await?,
        eta_history,
        events: events(c, id)
            .await?
            .iter()
            .filter_map(OrderEvent::public)
            .collect(),
        pods: pods(c, id).await?,
        vehicle,
        order,
    }))
}

pub(super) async fn active_orders<C: GenericClient + Sync>(c: &C) -> Result<Vec<Order>> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders o WHERE o.vehicle_id IS NOT NULL \
         AND o.status NOT IN ('created', 'delivered', 'cancelled') ORDER BY o.seq"
    );
    let rows = c.query(&sql, &[]).await?;
    finish_orders(c, rows).await
}

pub(super) async fn vehicle_times<C: GenericClient + Sync>(
    c: &C,
    vehicles: &[VehicleKey],
) -> Result<Vec<Option<DateTime<Utc>>>> {
    // One round trip for the whole batch: the keys go as two arrays, and
    // each answer comes back at its position.
    let tenants: Vec<&str> = vehicles.iter().map(|v| v.tenant_id.as_str()).collect();
    let ids: Vec<&str> = vehicles.iter().map(|v| v.vehicle_id.as_str()).collect();
    let rows = c
        .query(
            "SELECT k.n, p.at FROM unnest($1::text[], $2::text[]) WITH ORDINALITY \
                 AS k(tenant_id, vehicle_id, n) \
             JOIN vehicle_positions p \
               ON p.tenant_id = k.tenant_id AND p.vehicle_id = k.vehicle_id",
            &[&tenants, &ids],
        )
        .await?;
    let mut times = vec![None; vehicles.len()];
    for r in &rows {
        let n: i64 = r.try_get(0)?;
        let at: String = r.try_get(1)?;
        if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| times.get_mut(i)) {
            *slot = Some(parse_ts(&at)?);
        }
    }
    Ok(times)
}

pub(super) async fn tracker_memories<C: GenericClient + Sync>(
    c: &C,
    vehicles: &[VehicleKey],
) -> Result<Vec<TrackerMemoryRecord>> {
    let tenants: Vec<&str> = vehicles.iter().map(|v| v.tenant_id.as_str()).collect();
    let ids: Vec<&str> = vehicles.iter().map(|v| v.vehicle_id.as_str()).collect();
    let rows = c
        .query(
            "SELECT m.tenant_id, m.vehicle_id, m.order_id, m.state, m.applied_through, \
                    m.saved_at \
             FROM unnest($1::text[], $2::text[]) AS k(tenant_id, vehicle_id) \
             JOIN tracker_memories m \
               ON m.tenant_id = k.tenant_id AND m.vehicle_id = k.vehicle_id \
             ORDER BY m.tenant_id, m.vehicle_id, m.order_id",
            &[&tenants, &ids],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TrackerMemoryRecord {
                tenant_id: TenantId(r.try_get(0)?),
                vehicle_id: VehicleId(r.try_get(1)?),
                order_id: OrderId(r.try_get(2)?),
                state: r.try_get(3)?,
                applied_through: parse_ts(r.try_get(4)?)?,
                saved_at: parse_ts(r.try_get(5)?)?,
            })
        })
        .collect()
}

pub(super) async fn learned<C: GenericClient + Sync>(
    c: &C,
    name: &str,
) -> Result<Option<(String, DateTime<Utc>)>> {
    c.query_opt(
        "SELECT state, saved_at FROM learned_state WHERE name = $1",
        &[&name],
    )
    .await?
    .map(|r| Ok((r.try_get(0)?, parse_ts(r.try_get(1)?)?)))
    .transpose()
}

pub(super) async fn outbox_pending<C: GenericClient + Sync>(c: &C) -> Result<u64> {
    let n: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL",
            &[],
        )
        .await?
        .try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The `limit` most recent dead letters, newest first.
pub(super) async fn recent_dead_letters<C: GenericClient + Sync>(
    c: &C,
    limit: usize,
) -> Result<Vec<crate::model::StoredDeadLetter>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    c.query(
        r#"SELECT id, tenant_id, origin, topic, partition, "offset", size_bytes, reason, detail,
                  payload, key, received_at
           FROM dead_letters ORDER BY id DESC LIMIT $1"#,
        &[&limit],
    )
    .await?
    .iter()
    .map(|r| {
        let tenant: Option<String> = r.try_get(1)?;
        let size: i64 = r.try_get(6)?;
        Ok(crate::model::StoredDeadLetter {
            id: r.try_get(0)?,
            letter: crate::model::NewDeadLetter {
                tenant_id: tenant.map(TenantId),
                origin: r.try_get(2)?,
                topic: r.try_get(3)?,
                partition: r.try_get(4)?,
                offset: r.try_get(5)?,
                size_bytes: u64::try_from(size).unwrap_or(0),
                reason: r.try_get(7)?,
                detail: r.try_get(8)?,
                payload: r.try_get(9)?,
                key: r.try_get(10)?,
                received_at: parse_ts(r.try_get(11)?)?,
            },
        })
    })
    .collect()
}
