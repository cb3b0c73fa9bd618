//! Writing records into SQLite. Every function here runs on the writer thread
//! inside a savepoint (see `sqlite.rs`), so each is atomic: the order, its stops,
//! its first tracking code, its first timeline entry and its outbox message are
//! written together or not at all. Secrets (API keys, tracking codes) are written
//! as their SHA-256 only.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use engine::{EtaUpdate, OrderId, OrderStatus, StatusSource, VehicleKey};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::position_batch;
use super::rows::{self, ts};
use super::rules::{self, LIVE_STATUSES, StopMove};
use crate::error::{Error, Result};
use crate::model::{
    ApiKey, Created, EtaRecorded, EventKind, HoldRequest, IdempotencyClaim, NewApiKey, NewEvent,
    NewOrder, NewPod, NewStop, Order, OrderEvent, OrderPatch, PodMeta, PositionOutcome,
    RecordedEta, Tenant, TenantId, TrackerMemoryRecord, VehicleFix, VehicleHold, Visibility,
};
use crate::secrets::{bytes_sha256, new_id, secret_hash};

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `Connection::execute` through the statement cache: the writer runs the same
/// few statements tens of thousands of times a second, and parsing them each
/// time was a quarter of its work.
fn exec(c: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(params)
}

pub(super) fn outbox(
    c: &Connection,
    tenant: &TenantId,
    topic: &str,
    payload: serde_json::Value,
) -> Result<()> {
    exec(
        c,
        "INSERT INTO outbox (tenant_id, topic, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![tenant.as_str(), topic, payload.to_string(), ts(now())],
    )?;
    Ok(())
}

/// A tenant and its first API key, together.
pub(crate) fn insert_tenant(c: &Connection, name: &str, first_key: &NewApiKey) -> Result<Tenant> {
    let tenant = Tenant {
        id: TenantId(new_id("ten_")),
        name: name.to_owned(),
        created_at: now(),
    };
    exec(
        c,
        "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![tenant.id.as_str(), name, ts(tenant.created_at)],
    )?;
    insert_api_key(c, &tenant.id, first_key)?;
    Ok(tenant)
}

pub(crate) fn insert_api_key(c: &Connection, tenant: &TenantId, key: &NewApiKey) -> Result<ApiKey> {
    let known: Option<i64> = c
        .query_row(
            "SELECT 1 FROM tenants WHERE id = ?1",
            [tenant.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_none() {
        return Err(Error::NotFound("tenant"));
    }
    let stored = ApiKey {
        id: new_id("key_"),
        tenant_id: tenant.clone(),
        name: key.name.clone(),
        prefix: key.prefix.clone(),
        scopes: key.scopes.clone(),
        created_at: now(),
        revoked_at: None,
    };
    let scopes: Vec<&str> = stored.scopes.iter().map(|s| s.as_str()).collect();
    exec(
        c,
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            stored.id,
            tenant.as_str(),
            stored.name,
            stored.prefix,
            key.key_hash,
            scopes.join(","),
            ts(stored.created_at),
        ],
    )?;
    Ok(stored)
}

/// Revokes one of the tenant's keys (revoking twice keeps the first time).
pub(crate) fn revoke_api_key(c: &Connection, tenant: &TenantId, id: &str) -> Result<ApiKey> {
    exec(
        c,
        "UPDATE api_keys SET revoked_at = ?1 \
         WHERE id = ?2 AND tenant_id = ?3 AND revoked_at IS NULL",
        params![ts(now()), id, tenant.as_str()],
    )?;
    rows::api_key_of_tenant(c, tenant, id)?.ok_or(Error::NotFound("API key"))
}

fn insert_stops(c: &Connection, order: &OrderId, stops: &[NewStop]) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO stops (order_id, idx, kind, name, address, lat, lon, time_zone, \
         window_from, window_to, geofence_json) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (idx, stop) in stops.iter().enumerate() {
        let geofence = stop
            .geofence
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::store_permanent(format!("geofence: {e}")))?;
        stmt.execute(params![
            order.as_str(),
            idx as u32,
            stop.kind.as_str(),
            stop.name,
            stop.address,
            stop.lat,
            stop.lon,
            stop.time_zone.name(),
            stop.window.map(|w| ts(w.from)),
            stop.window.map(|w| ts(w.to)),
            geofence,
        ])?;
    }
    Ok(())
}

fn insert_code(c: &Connection, order: &OrderId, code: &str) -> Result<()> {
    exec(
        c,
        "INSERT INTO tracking_codes (code_hash, order_id, created_at) VALUES (?1, ?2, ?3)",
        params![secret_hash(code), order.as_str(), ts(now())],
    )?;
    Ok(())
}

pub(super) fn insert_event(
    c: &Connection,
    order: &OrderId,
    event: &NewEvent,
) -> Result<OrderEvent> {
    let stored = OrderEvent {
        id: new_id("evt_"),
        kind: event.kind,
        status: event.status,
        at: event.at,
        note: event.note.clone(),
        source: event.source,
        stop_index: event.stop_index,
        visibility: event.visibility,
        recorded_at: now(),
    };
    exec(
        c,
        "INSERT INTO order_events (id, order_id, at, kind, status, note, source, stop_idx, \
         recorded_at, visibility) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            stored.id,
            order.as_str(),
            ts(stored.at),
            stored.kind.as_str(),
            stored.status.map(|s| s.as_str()),
            stored.note,
            stored.source.as_str(),
            stored.stop_index,
            ts(stored.recorded_at),
            stored.visibility.as_str(),
        ],
    )?;
    Ok(stored)
}

fn reload(c: &Connection, id: &OrderId) -> Result<Order> {
    rows::order_any(c, id)?.ok_or(Error::NotFound("order"))
}

pub(crate) fn insert_order(
    c: &Connection,
    tenant: &TenantId,
    order: &NewOrder,
    tracking_code: &str,
) -> Result<Order> {
    let id = OrderId(new_id("ord_"));
    let created_at = now();
    exec(
        c,
        "INSERT INTO orders (id, tenant_id, reference, customer_name, customer_email, \
         vehicle_id, driver_name, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![
            id.as_str(),
            tenant.as_str(),
            order.reference,
            order.customer.name,
            order.customer.email,
            order.vehicle_id.as_ref().map(|v| v.as_str()),
            order.driver_name,
            OrderStatus::Created.as_str(),
            ts(created_at),
        ],
    )?;
    insert_stops(c, &id, &order.stops)?;
    insert_code(c, &id, tracking_code)?;
    insert_event(
        c,
        &id,
        &NewEvent {
            kind: EventKind::Status,
            status: Some(OrderStatus::Created),
            at: created_at,
            note: None,
            source: StatusSource::System,
            stop_index: None,
            visibility: Visibility::Public,
        },
    )?;
    outbox(c, tenant, "order.created", json!({"order_id": id.as_str()}))?;
    reload(c, &id)
}

/// [`insert_order`] behind the idempotency and unique-reference checks, in
/// the writer's one savepoint: two retries racing with one key make one order.
/// Expired claims are deleted on the way (by the `created_at` index).
pub(crate) fn insert_order_once(
    c: &Connection,
    tenant: &TenantId,
    order: &NewOrder,
    tracking_code: &str,
    claim: Option<&IdempotencyClaim>,
    unique_reference: bool,
) -> Result<Created> {
    if let Some(claim) = claim {
        exec(
            c,
            "DELETE FROM idempotency_keys WHERE created_at < ?1",
            [ts(claim.not_before)],
        )?;
        let before: Option<(String, String, String)> = c
            .prepare_cached(
                "SELECT body_hash, order_id, sealed_code FROM idempotency_keys \
                 WHERE tenant_id = ?1 AND key_hash = ?2",
            )?
            .query_row(params![tenant.as_str(), claim.key_hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((body_hash, order_id, sealed_code)) = before {
            if body_hash != claim.body_hash {
                return Ok(Created::KeyReused);
            }
            let order = owned_order(c, tenant, &OrderId(order_id))?;
            return Ok(Created::Replayed { order, sealed_code });
        }
    }
    if unique_reference {
        let taken: Option<String> = c
            .prepare_cached(
                "SELECT id FROM orders WHERE tenant_id = ?1 AND reference = ?2 \
                 AND status <> 'cancelled' ORDER BY created_at LIMIT 1",
            )?
            .query_row(params![tenant.as_str(), order.reference], |r| r.get(0))
            .optional()?;
        if let Some(id) = taken {
            return Ok(Created::ReferenceTaken(OrderId(id)));
        }
    }
    let created = insert_order(c, tenant, order, tracking_code)?;
    if let Some(claim) = claim {
        exec(
            c,
            "INSERT INTO idempotency_keys (tenant_id, key_hash, body_hash, order_id, \
             sealed_code, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                tenant.as_str(),
                claim.key_hash,
                claim.body_hash,
                created.id.as_str(),
                claim.sealed_code,
                ts(created.created_at),
            ],
        )?;
    }
    Ok(Created::New(created))
}

fn owned_order(c: &Connection, tenant: &TenantId, id: &OrderId) -> Result<Order> {
    rows::order_of_tenant(c, tenant, id)?.ok_or(Error::NotFound("order"))
}

pub(crate) fn update_order(
    c: &Connection,
    tenant: &TenantId,
    id: &OrderId,
    patch: &OrderPatch,
) -> Result<Order> {
    let current = owned_order(c, tenant, id)?;
    let changes_operation = patch.vehicle_id.is_some() || patch.stops.is_some();
    if current.status.is_final() && changes_operation {
        return Err(Error::Conflict {
            code: "order_finished",
            message: format!(
                "the order is {}; its vehicle and stops can no longer change",
                current.status.as_str()
            ),
        });
    }
    if let Some(reference) = &patch.reference {
        exec(
            c,
            "UPDATE orders SET reference = ?1 WHERE id = ?2",
            params![reference, id.as_str()],
        )?;
    }
    if let Some(customer) = &patch.customer {
        exec(
            c,
            "UPDATE orders SET customer_name = ?1, customer_email = ?2 WHERE id = ?3",
            params![customer.name, customer.email, id.as_str()],
        )?;
    }
    if let Some(vehicle) = &patch.vehicle_id {
        exec(
            c,
            "UPDATE orders SET vehicle_id = ?1 WHERE id = ?2",
            params![vehicle.as_ref().map(|v| v.as_str()), id.as_str()],
        )?;
    }
    if let Some(driver) = &patch.driver_name {
        exec(
            c,
            "UPDATE orders SET driver_name = ?1 WHERE id = ?2",
            params![driver, id.as_str()],
        )?;
    }
    if let Some(stops) = &patch.stops {
        exec(c, "DELETE FROM stops WHERE order_id = ?1", [id.as_str()])?;
        insert_stops(c, id, stops)?;
        // Arrivals already recorded stay with the stop at the same position when
        // it is still the same kind of stop.
        for old in &current.stops {
            exec(
                c,
                "UPDATE stops SET arrived_at = ?1, departed_at = ?2, skipped_at = ?6 \
                 WHERE order_id = ?3 AND idx = ?4 AND kind = ?5",
                params![
                    old.arrived_at.map(ts),
                    old.departed_at.map(ts),
                    id.as_str(),
                    old.index,
                    old.kind.as_str(),
                    old.skipped_at.map(ts)
                ],
            )?;
        }
    }
    exec(
        c,
        "UPDATE orders SET updated_at = ?1 WHERE id = ?2",
        params![ts(now()), id.as_str()],
    )?;
    outbox(c, tenant, "order.updated", json!({"order_id": id.as_str()}))?;
    reload(c, id)
}

/// Makes the writes [`rules::stop_moves`] plans for a status at stop `k`.
fn record_stop_move(
    c: &Connection,
    order: &Order,
    to: OrderStatus,
    k: u32,
    at: DateTime<Utc>,
) -> Result<()> {
    for step in rules::stop_moves(order, to, k) {
        match step {
            StopMove::Skip(idx) => {
                exec(
                    c,
                    "UPDATE stops SET skipped_at = ?1 WHERE order_id = ?2 AND idx = ?3",
                    params![ts(at), order.id.as_str(), idx],
                )?;
            }
            StopMove::Arrive(idx) => record_arrival(c, &order.id, idx, at)?,
            StopMove::Depart(idx) => record_departure(c, &order.id, idx, at)?,
        }
    }
    Ok(())
}

fn record_arrival(c: &Connection, order: &OrderId, stop: u32, at: DateTime<Utc>) -> Result<()> {
    let updated = exec(
        c,
        "UPDATE stops SET arrived_at = ?1 WHERE order_id = ?2 AND idx = ?3 AND arrived_at IS NULL",
        params![ts(at), order.as_str(), stop],
    )?;
    if updated > 0 {
        // Close the loop for accuracy analytics: every prediction for this stop
        // learns the real arrival.
        exec(
            c,
            "UPDATE eta_predictions SET actual_arrival = ?1 WHERE order_id = ?2 AND stop_idx = ?3",
            params![ts(at), order.as_str(), stop],
        )?;
        super::daily::arrival_logged(c, order.as_str(), stop)?;
    }
    Ok(())
}

fn record_departure(c: &Connection, order: &OrderId, stop: u32, at: DateTime<Utc>) -> Result<()> {
    exec(
        c,
        "UPDATE stops SET departed_at = ?1 WHERE order_id = ?2 AND idx = ?3 AND departed_at IS NULL",
        params![ts(at), order.as_str(), stop],
    )?;
    Ok(())
}

pub(crate) fn add_event(
    c: &Connection,
    tenant: Option<&TenantId>,
    id: &OrderId,
    event: &NewEvent,
) -> Result<(Order, OrderEvent)> {
    let order = match tenant {
        Some(tenant) => owned_order(c, tenant, id)?,
        None => reload(c, id)?,
    };
    if let Some(stop) = event.stop_index
        && stop as usize >= order.stops.len()
    {
        return Err(Error::invalid(
            "stop_index",
            format!("the order has {} stops", order.stops.len()),
        ));
    }
    let mut stored_event = event.clone();
    if event.kind == EventKind::Status {
        let to = event
            .status
            .ok_or_else(|| Error::invalid("status", "missing"))?;
        let to = order.status.transition(to)?;
        let stop = event.stop_index.or_else(|| rules::implied_stop(&order, to));
        stored_event.stop_index = stop;
        if let Some(stop) = stop {
            if event.source == StatusSource::Geofence && rules::geofence_behind(&order, to, stop) {
                return Err(Error::Conflict {
                    code: "stop_already_marked",
                    message: format!(
                        "stop {stop} was already marked by hand; the geofence's `{}` is ignored",
                        to.as_str()
                    ),
                });
            }
            record_stop_move(c, &order, to, stop, event.at)?;
        }
        exec(
            c,
            "UPDATE orders SET status = ?1, updated_at = ?2 WHERE id = ?3",
            params![to.as_str(), ts(now()), id.as_str()],
        )?;
    }
    let stored = insert_event(c, id, &stored_event)?;
    outbox(
        c,
        &order.tenant_id,
        "order.event",
        json!({
            "order_id": id.as_str(),
            "event_id": stored.id,
            "kind": stored.kind.as_str(),
            "status": stored.status.map(|s| s.as_str()),
            "at": ts(stored.at),
            "note": stored.note,
        }),
    )?;
    Ok((reload(c, id)?, stored))
}

pub(crate) fn add_pod(
    c: &Connection,
    tenant: &TenantId,
    id: &OrderId,
    pod: &NewPod,
) -> Result<PodMeta> {
    owned_order(c, tenant, id)?;
    let pod_id = new_id("pod_");
    exec(
        c,
        "INSERT INTO pod_files (id, order_id, content_type, file_name, size_bytes, sha256, \
         signed_by, note, taken_at, uploaded_at, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            pod_id,
            id.as_str(),
            pod.content_type,
            pod.file_name,
            pod.data.len() as u64,
            bytes_sha256(&pod.data),
            pod.signed_by,
            pod.note,
            pod.taken_at.map(ts),
            ts(now()),
            pod.data,
        ],
    )?;
    outbox(
        c,
        tenant,
        "order.pod",
        json!({"order_id": id.as_str(), "pod_id": pod_id}),
    )?;
    rows::pod_by_id(c, id, &pod_id)?.ok_or(Error::NotFound("pod"))
}

/// Revokes the active code and, with `new_code`, issues a new one.
pub(crate) fn replace_code(
    c: &Connection,
    tenant: &TenantId,
    id: &OrderId,
    new_code: Option<&str>,
) -> Result<Order> {
    owned_order(c, tenant, id)?;
    exec(
        c,
        "UPDATE tracking_codes SET revoked_at = ?1 WHERE order_id = ?2 AND revoked_at IS NULL",
        params![ts(now()), id.as_str()],
    )?;
    if let Some(code) = new_code {
        insert_code(c, id, code)?;
    }
    reload(c, id)
}

/// Records a batch of positions (`Store::record_positions`), folded per
/// vehicle (`position_batch`): per vehicle one read of its newest time and
/// one write of its row, per order one read of its last trail point.
pub(crate) fn record_positions(
    c: &Connection,
    batch: &[(TenantId, VehicleFix)],
) -> Result<Vec<PositionOutcome>> {
    let runs = position_batch::by_vehicle(batch);
    let mut folded = Vec::with_capacity(runs.len());
    let mut orders = Vec::with_capacity(runs.len());
    let mut privacy = HashMap::new();
    let mut pending = HashMap::new();
    for run in &runs {
        let stored = rows::newest_fix_at(c, run.tenant.as_str(), &run.vehicle_id)?;
        let fold = position_batch::fold(stored.as_deref(), batch, run);
        write_vehicle_row(c, batch, run, &fold)?;
        let live = if fold.applied.is_empty() {
            Vec::new()
        } else {
            live_orders(c, &run.tenant, &run.vehicle_id)?
        };
        for order in &live {
            extend_trail(c, order, fold.applied.iter().map(|&i| &batch[i].1))?;
        }
        if !live.is_empty() && !privacy.contains_key(&run.tenant) {
            // Read here, in the write, so that publishing the position needs
            // no second trip to the store.
            privacy.insert(
                run.tenant.clone(),
                super::settings::privacy(c, &run.tenant)?,
            );
        }
        // Only tenants with privacy on pay for stops.
        if privacy.get(&run.tenant).is_some_and(|p| p.enabled) {
            for order in &live {
                if !pending.contains_key(order) {
                    pending.insert(order.clone(), pending_stops(c, order)?);
                }
            }
        }
        folded.push(fold);
        orders.push(live);
    }
    Ok(position_batch::outcomes(
        batch.len(),
        &runs,
        &folded,
        &orders,
        &privacy,
        &pending,
    ))
}

/// A vehicle's row after its fixes of a batch: the newest one, with the
/// applied and replayed counts added.
fn write_vehicle_row(
    c: &Connection,
    batch: &[(TenantId, VehicleFix)],
    run: &position_batch::VehicleRun,
    fold: &position_batch::Folded,
) -> Result<()> {
    match fold.newest() {
        Some(i) => {
            let fix = &batch[i].1;
            // Made once: this runs for every vehicle of every batch.
            static SQL: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "INSERT INTO vehicle_positions (tenant_id, vehicle_id, at, lat, lon, \
                     speed_mps, heading_deg, received_at, applied, replayed) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) {}",
                    position_batch::NEWEST_ROW_ON_CONFLICT
                )
            });
            c.prepare_cached(&SQL)?.execute(params![
                run.tenant.as_str(),
                run.vehicle_id,
                ts(fix.at),
                fix.lat,
                fix.lon,
                fix.speed_mps,
                fix.heading_deg,
                ts(now()),
                fold.applied.len() as i64,
                fold.replayed,
            ])?;
        }
        None if fold.replayed > 0 => {
            // Only re-deliveries of the newest fix: counted, nothing moves.
            c.prepare_cached(
                "UPDATE vehicle_positions SET replayed = replayed + ?3 \
                 WHERE tenant_id = ?1 AND vehicle_id = ?2",
            )?
            .execute(params![run.tenant.as_str(), run.vehicle_id, fold.replayed])?;
        }
        None => {}
    }
    Ok(())
}

/// The tenant's orders a vehicle carries now, oldest first.
fn live_orders(c: &Connection, tenant: &TenantId, vehicle_id: &str) -> Result<Vec<OrderId>> {
    let sql = format!(
        "SELECT id FROM orders WHERE tenant_id = ?2 AND vehicle_id = ?1 \
         AND status IN {LIVE_STATUSES} ORDER BY created_at"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let orders = stmt
        .query_map(params![vehicle_id, tenant.as_str()], |r| {
            r.get::<_, String>(0)
        })?
        .map(|r| r.map(OrderId))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(orders)
}

/// The (lat, lon) of an order's stops not yet reached or skipped.
pub(crate) fn pending_stops(c: &Connection, order: &OrderId) -> Result<Vec<(f64, f64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT lat, lon FROM stops WHERE order_id = ?1 \
         AND arrived_at IS NULL AND departed_at IS NULL AND skipped_at IS NULL",
    )?;
    let rows = stmt
        .query_map([order.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Adds to an order's trail those of the applied fixes (in time order) it
/// keeps (`position_batch::trail_points`).
fn extend_trail<'a>(
    c: &Connection,
    order: &OrderId,
    applied: impl IntoIterator<Item = &'a VehicleFix>,
) -> Result<()> {
    let last: Option<(String, f64, f64)> = c
        .prepare_cached(
            "SELECT at, lat, lon FROM position_trail WHERE order_id = ?1 ORDER BY at DESC LIMIT 1",
        )?
        .query_row([order.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO position_trail (order_id, at, lat, lon, speed_mps) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for fix in position_batch::trail_points(last, applied) {
        insert.execute(params![
            order.as_str(),
            ts(fix.at),
            fix.lat,
            fix.lon,
            fix.speed_mps
        ])?;
    }
    Ok(())
}

/// A batch of ETAs in one writer job, in order (`Store::record_etas`); the
/// privacy of each shown one is read after it, on the same connection.
pub(crate) fn record_etas(
    c: &Connection,
    updates: &[EtaUpdate],
    policy: &crate::alerts::AlertPolicy,
) -> Result<Vec<RecordedEta>> {
    updates
        .iter()
        .map(|update| {
            let recorded = record_eta(c, update, policy)?;
            if recorded != EtaRecorded::Shown {
                return Ok(RecordedEta::unshown(recorded));
            }
            let (privacy, pending_stops) = crate::settings::order_privacy(c, &update.order_id)?;
            Ok(RecordedEta {
                recorded,
                privacy,
                pending_stops,
            })
        })
        .collect()
}

fn record_eta(
    c: &Connection,
    update: &EtaUpdate,
    policy: &crate::alerts::AlertPolicy,
) -> Result<EtaRecorded> {
    let live: Option<(String, String)> = c
        .prepare_cached("SELECT status, tenant_id FROM orders WHERE id = ?1")?
        .query_row([update.order_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((status, tenant_id)) = live else {
        return Ok(EtaRecorded::Ignored);
    };
    if OrderStatus::parse(&status).is_none_or(|s| s.is_final()) {
        return Ok(EtaRecorded::Ignored);
    }
    let record = crate::model::EtaRecord::from(update);
    let json = serde_json::to_string(&record)
        .map_err(|e| Error::store_permanent(format!("serializing an ETA: {e}")))?;
    let updated = exec(
        c,
        "UPDATE stops SET eta_json = ?1 WHERE order_id = ?2 AND idx = ?3",
        params![json, update.order_id.as_str(), update.stop_index],
    )?;
    if updated == 0 {
        return Ok(EtaRecorded::Ignored);
    }
    let reasons: Vec<&str> = update.reasons.iter().map(|r| r.as_str()).collect();
    c.prepare_cached(
        "INSERT INTO eta_predictions (order_id, stop_idx, predicted_at, eta, p10, p90, horizon_s, \
         remaining_distance_m, remaining_drive_s, reasons, tenant_id, free_flow_eta) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        update.order_id.as_str(),
        update.stop_index,
        ts(update.computed_at),
        ts(update.eta),
        ts(update.p10),
        ts(update.p90),
        (update.eta - update.computed_at).num_milliseconds() as f64 / 1000.0,
        update.remaining_distance_m,
        update.remaining_drive_s,
        reasons.join(","),
        tenant_id.clone(),
        update
            .free_flow_drive_s
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| ts(update.computed_at + chrono::Duration::milliseconds((s * 1000.0) as i64))),
    ])?;
    super::daily::prediction_logged(c, &tenant_id, update.computed_at)?;
    crate::alert_store::assess_recorded_eta(c, &TenantId(tenant_id), update, policy)?;
    // The page's next stop: the first pending one after every stop reached,
    // left or skipped (as `Order::next_stop`).
    let next_stop: Option<u32> = c
        .prepare_cached(
            "SELECT MIN(idx) FROM stops WHERE order_id = ?1 AND idx > COALESCE((\
             SELECT MAX(idx) FROM stops WHERE order_id = ?1 AND (arrived_at IS NOT NULL \
             OR departed_at IS NOT NULL OR skipped_at IS NOT NULL)), -1)",
        )?
        .query_row([update.order_id.as_str()], |r| r.get(0))?;
    Ok(if next_stop == Some(update.stop_index) {
        EtaRecorded::Shown
    } else {
        EtaRecorded::Logged
    })
}

/// The upsert of a tracker's memory; `applied_through` is fixed-width text,
/// so comparing it as text compares the times.
pub(crate) fn save_tracker_memories(
    c: &Connection,
    memories: &[TrackerMemoryRecord],
) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO tracker_memories \
             (tenant_id, order_id, vehicle_id, state, applied_through, saved_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (tenant_id, order_id) DO UPDATE SET \
             vehicle_id = excluded.vehicle_id, state = excluded.state, \
             applied_through = excluded.applied_through, saved_at = excluded.saved_at \
         WHERE excluded.applied_through >= tracker_memories.applied_through",
    )?;
    for m in memories {
        stmt.execute(params![
            m.tenant_id.as_str(),
            m.order_id.as_str(),
            m.vehicle_id.as_str(),
            m.state,
            ts(m.applied_through),
            ts(m.saved_at)
        ])?;
    }
    Ok(())
}

/// Holds trucks for a node (`Store::hold_vehicles`): each truck's holder
/// and that holder's last beat read, the rule applied, the hold written
/// where it says so; all in the writer's one transaction.
pub(crate) fn hold_vehicles(c: &Connection, request: &HoldRequest) -> Result<Vec<VehicleHold>> {
    let mut current = c.prepare_cached(
        "SELECT h.holder, b.seen_at FROM vehicle_holds h \
         LEFT JOIN node_beats b ON b.holder = h.holder \
         WHERE h.tenant_id = ?1 AND h.vehicle_id = ?2",
    )?;
    let mut hold = c.prepare_cached(
        "INSERT INTO vehicle_holds (tenant_id, vehicle_id, holder, held_since) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET \
             holder = excluded.holder, held_since = excluded.held_since",
    )?;
    let now = ts(request.now);
    let mut out = Vec::with_capacity(request.vehicles.len());
    for v in &request.vehicles {
        let key = [v.tenant_id.as_str(), v.vehicle_id.as_str()];
        let row: Option<(String, Option<String>)> = current
            .query_row(key, |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let heard = match &row {
            Some((_, seen)) => crate::records::parse_opt_ts(seen.clone())?,
            None => None,
        };
        let (outcome, write) = rules::hold_outcome(
            request,
            row.as_ref().map(|(holder, _)| (holder.as_str(), heard)),
        );
        if write {
            hold.execute(params![key[0], key[1], request.holder, now])?;
        }
        out.push(outcome);
    }
    Ok(out)
}

/// Lets go of the trucks `holder` holds among `vehicles`.
pub(crate) fn let_go_vehicles(c: &Connection, holder: &str, vehicles: &[VehicleKey]) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "DELETE FROM vehicle_holds WHERE tenant_id = ?1 AND vehicle_id = ?2 AND holder = ?3",
    )?;
    for v in vehicles {
        stmt.execute(params![v.tenant_id.as_str(), v.vehicle_id.as_str(), holder])?;
    }
    Ok(())
}

/// A node's beat (`Store::node_beat`): noted, or forgotten when it is gone.
pub(crate) fn node_beat(
    c: &Connection,
    holder: &str,
    name: &str,
    now: DateTime<Utc>,
    gone: bool,
) -> Result<()> {
    if gone {
        c.prepare_cached("DELETE FROM node_beats WHERE holder = ?1")?
            .execute([holder])?;
    } else {
        c.prepare_cached(
            "INSERT INTO node_beats (holder, node_name, seen_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (holder) DO UPDATE SET \
                 node_name = excluded.node_name, seen_at = excluded.seen_at",
        )?
        .execute(params![holder, name, ts(now)])?;
    }
    Ok(())
}

pub(crate) fn save_learned(
    c: &Connection,
    name: &str,
    state: &str,
    saved_at: DateTime<Utc>,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO learned_state (name, state, saved_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
    )?
    .execute(params![name, state, ts(saved_at)])?;
    Ok(())
}
