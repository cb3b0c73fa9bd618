//! Writing records into PostgreSQL. Every function runs inside the caller's
//! transaction (see `postgres/mod.rs`), so each is atomic as on SQLite: the
//! order, its stops, its first tracking code, its first timeline entry and
//! its outbox message commit together or not at all. Where SQLite's single
//! writer serializes writes for free, these take row locks (`FOR UPDATE` on
//! the order) or transaction-scoped advisory locks (an idempotency key, a
//! reference), so concurrent nodes see the same outcomes one writer gives.
//! The decisions themselves are `store::rules`, shared with SQLite.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::{OrderId, OrderStatus, StatusSource, VehicleKey};
use serde_json::json;
use tokio_postgres::{GenericClient, Transaction};

use super::reads;
use crate::error::{Error, Result};
use crate::model::{
    ApiKey, Created, EventKind, HoldRequest, IdempotencyClaim, NewApiKey, NewDeadLetter, NewEvent,
    NewOrder, NewPod, NewStop, Order, OrderEvent, OrderPatch, PodMeta, PositionOutcome, Tenant,
    TenantId, TrackerMemoryRecord, VehicleFix, VehicleHold, Visibility,
};
use crate::position_batch;
use crate::records::{parse_opt_ts, ts};
use crate::rules::{self, LIVE_STATUSES, StopMove};
use crate::secrets::{bytes_sha256, new_id, secret_hash};

fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(super) async fn outbox(
    c: &Transaction<'_>,
    tenant: &TenantId,
    topic: &str,
    payload: serde_json::Value,
) -> Result<()> {
    c.execute(
        "INSERT INTO outbox (tenant_id, topic, payload, created_at) VALUES ($1, $2, $3, $4)",
        &[&tenant.as_str(), &topic, &payload.to_string(), &ts(now())],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_tenant(
    c: &Transaction<'_>,
    name: &str,
    first_key: &NewApiKey,
) -> Result<Tenant> {
    let tenant = Tenant {
        id: TenantId(new_id("ten_")),
        name: name.to_owned(),
        created_at: now(),
    };
    c.execute(
        "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)",
        &[&tenant.id.as_str(), &name, &ts(tenant.created_at)],
    )
    .await?;
    insert_api_key(c, &tenant.id, first_key).await?;
    Ok(tenant)
}

pub(super) async fn insert_api_key(
    c: &Transaction<'_>,
    tenant: &TenantId,
    key: &NewApiKey,
) -> Result<ApiKey> {
    let known = c
        .query_opt("SELECT 1 FROM tenants WHERE id = $1", &[&tenant.as_str()])
        .await?;
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
    c.execute(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &stored.id,
            &tenant.as_str(),
            &stored.name,
            &stored.prefix,
            &key.key_hash,
            &scopes.join(","),
            &ts(stored.created_at),
        ],
    )
    .await?;
    Ok(stored)
}

/// Revokes one of the tenant's keys (revoking twice keeps the first time).
pub(super) async fn revoke_api_key(
    c: &Transaction<'_>,
    tenant: &TenantId,
    id: &str,
) -> Result<ApiKey> {
    c.execute(
        "UPDATE api_keys SET revoked_at = $1 \
         WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        &[&ts(now()), &id, &tenant.as_str()],
    )
    .await?;
    reads::api_key_of_tenant(c, tenant, id)
        .await?
        .ok_or(Error::NotFound("API key"))
}

async fn insert_stops(c: &Transaction<'_>, order: &OrderId, stops: &[NewStop]) -> Result<()> {
    let insert = c
        .prepare(
            "INSERT INTO stops (order_id, idx, kind, name, address, lat, lon, time_zone, \
             window_from, window_to, geofence_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .await?;
    for (idx, stop) in (0_i64..).zip(stops) {
        let geofence = stop
            .geofence
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::store_permanent(format!("geofence: {e}")))?;
        c.execute(
            &insert,
            &[
                &order.as_str(),
                &idx,
                &stop.kind.as_str(),
                &stop.name,
                &stop.address,
                &stop.lat,
                &stop.lon,
                &stop.time_zone.name(),
                &stop.window.map(|w| ts(w.from)),
                &stop.window.map(|w| ts(w.to)),
                &geofence,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn insert_code(c: &Transaction<'_>, order: &OrderId, code: &str) -> Result<()> {
    c.execute(
        "INSERT INTO tracking_codes (code_hash, order_id, created_at) VALUES ($1, $2, $3)",
        &[&secret_hash(code), &order.as_str(), &ts(now())],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_event(
    c: &Transaction<'_>,
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
    c.execute(
        "INSERT INTO order_events (id, order_id, at, kind, status, note, source, stop_idx, \
         recorded_at, visibility) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &stored.id,
            &order.as_str(),
            &ts(stored.at),
            &stored.kind.as_str(),
            &stored.status.map(|s| s.as_str()),
            &stored.note,
            &stored.source.as_str(),
            &stored.stop_index.map(i64::from),
            &ts(stored.recorded_at),
            &stored.visibility.as_str(),
        ],
    )
    .await?;
    Ok(stored)
}

async fn reload(c: &Transaction<'_>, id: &OrderId) -> Result<Order> {
    reads::order_any(c, id)
        .await?
        .ok_or(Error::NotFound("order"))
}

/// Locks the order's row until the transaction ends, so two nodes moving
/// one order take turns (as SQLite's one writer makes them), and returns
/// it if it is the tenant's (any tenant's with `None`).
async fn lock_order(c: &Transaction<'_>, tenant: Option<&TenantId>, id: &OrderId) -> Result<Order> {
    let row = c
        .query_opt(
            "SELECT tenant_id FROM orders WHERE id = $1 FOR UPDATE",
            &[&id.as_str()],
        )
        .await?;
    let owner: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
    match (owner, tenant) {
        (Some(owner), Some(tenant)) if owner != tenant.as_str() => Err(Error::NotFound("order")),
        (Some(_), _) => reload(c, id).await,
        (None, _) => Err(Error::NotFound("order")),
    }
}

/// Serializes the transactions that share `key` until they end: the check
/// then create of an idempotency key or a reference, which no row can lock
/// before the row exists.
async fn advisory_xact_lock(c: &Transaction<'_>, key: &str) -> Result<()> {
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_order(
    c: &Transaction<'_>,
    tenant: &TenantId,
    order: &NewOrder,
    tracking_code: &str,
) -> Result<Order> {
    let id = OrderId(new_id("ord_"));
    let created_at = now();
    c.execute(
        "INSERT INTO orders (id, tenant_id, reference, customer_name, customer_email, \
         vehicle_id, driver_name, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        &[
            &id.as_str(),
            &tenant.as_str(),
            &order.reference,
            &order.customer.name,
            &order.customer.email,
            &order.vehicle_id.as_ref().map(|v| v.as_str()),
            &order.driver_name,
            &OrderStatus::Created.as_str(),
            &ts(created_at),
        ],
    )
    .await?;
    insert_stops(c, &id, &order.stops).await?;
    insert_code(c, &id, tracking_code).await?;
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
    )
    .await?;
    outbox(c, tenant, "order.created", json!({"order_id": id.as_str()})).await?;
    reload(c, &id).await
}

/// [`insert_order`] behind the idempotency and unique-reference checks. The
/// key's and the reference's advisory locks make two racing retries of one
/// key (or two creates of one reference) take turns: the second sees the
/// first's order.
pub(super) async fn insert_order_once(
    c: &Transaction<'_>,
    tenant: &TenantId,
    order: &NewOrder,
    tracking_code: &str,
    claim: Option<&IdempotencyClaim>,
    unique_reference: bool,
) -> Result<Created> {
    if let Some(claim) = claim {
        advisory_xact_lock(c, &format!("idem:{}:{}", tenant.as_str(), claim.key_hash)).await?;
        c.execute(
            "DELETE FROM idempotency_keys WHERE created_at < $1",
            &[&ts(claim.not_before)],
        )
        .await?;
        let before = c
            .query_opt(
                "SELECT body_hash, order_id, sealed_code FROM idempotency_keys \
                 WHERE tenant_id = $1 AND key_hash = $2",
                &[&tenant.as_str(), &claim.key_hash],
            )
            .await?;
        if let Some(r) = before {
            let body_hash: String = r.try_get(0)?;
            if body_hash != claim.body_hash {
                return Ok(Created::KeyReused);
            }
            let order = reads::order_of_tenant(c, tenant, &OrderId(r.try_get(1)?))
                .await?
                .ok_or(Error::NotFound("order"))?;
            return Ok(Created::Replayed {
                order,
                sealed_code: r.try_get(2)?,
            });
        }
    }
    if unique_reference {
        advisory_xact_lock(c, &format!("ref:{}:{}", tenant.as_str(), order.reference)).await?;
        let taken = c
            .query_opt(
                "SELECT id FROM orders WHERE tenant_id = $1 AND reference = $2 \
                 AND status <> 'cancelled' ORDER BY created_at, seq LIMIT 1",
                &[&tenant.as_str(), &order.reference],
            )
            .await?;
        if let Some(r) = taken {
            return Ok(Created::ReferenceTaken(OrderId(r.try_get(0)?)));
        }
    }
    let created = insert_order(c, tenant, order, tracking_code).await?;
    if let Some(claim) = claim {
        c.execute(
            "INSERT INTO idempotency_keys (tenant_id, key_hash, body_hash, order_id, \
             sealed_code, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &tenant.as_str(),
                &claim.key_hash,
                &claim.body_hash,
                &created.id.as_str(),
                &claim.sealed_code,
                &ts(created.created_at),
            ],
        )
        .await?;
    }
    Ok(Created::New(created))
}

pub(super) async fn update_order(
    c: &Transaction<'_>,
    tenant: &TenantId,
    id: &OrderId,
    patch: &OrderPatch,
) -> Result<Order> {
    let current = lock_order(c, Some(tenant), id).await?;
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
    let id_text = id.as_str();
    if let Some(reference) = &patch.reference {
        c.execute(
            "UPDATE orders SET reference = $1 WHERE id = $2",
            &[reference, &id_text],
        )
        .await?;
    }
    if let Some(customer) = &patch.customer {
        c.execute(
            "UPDATE orders SET customer_name = $1, customer_email = $2 WHERE id = $3",
            &[&customer.name, &customer.email, &id_text],
        )
        .await?;
    }
    if let Some(vehicle) = &patch.vehicle_id {
        c.execute(
            "UPDATE orders SET vehicle_id = $1 WHERE id = $2",
            &[&vehicle.as_ref().map(|v| v.as_str()), &id_text],
        )
        .await?;
    }
    if let Some(driver) = &patch.driver_name {
        c.execute(
            "UPDATE orders SET driver_name = $1 WHERE id = $2",
            &[driver, &id_text],
        )
        .await?;
    }
    if let Some(stops) = &patch.stops {
        c.execute("DELETE FROM stops WHERE order_id = $1", &[&id_text])
            .await?;
        insert_stops(c, id, stops).await?;
        // Arrivals already recorded stay with the stop at the same position
        // when it is still the same kind of stop.
        for old in &current.stops {
            c.execute(
                "UPDATE stops SET arrived_at = $1, departed_at = $2, skipped_at = $6 \
                 WHERE order_id = $3 AND idx = $4 AND kind = $5",
                &[
                    &old.arrived_at.map(ts),
                    &old.departed_at.map(ts),
                    &id_text,
                    &i64::from(old.index),
                    &old.kind.as_str(),
                    &old.skipped_at.map(ts),
                ],
            )
            .await?;
        }
    }
    c.execute(
        "UPDATE orders SET updated_at = $1 WHERE id = $2",
        &[&ts(now()), &id_text],
    )
    .await?;
    outbox(c, tenant, "order.updated", json!({"order_id": id_text})).await?;
    reload(c, id).await
}

async fn record_arrival(
    c: &Transaction<'_>,
    order: &OrderId,
    stop: u32,
    at: DateTime<Utc>,
) -> Result<()> {
    let stop = i64::from(stop);
    let updated = c
        .execute(
            "UPDATE stops SET arrived_at = $1 \
             WHERE order_id = $2 AND idx = $3 AND arrived_at IS NULL",
            &[&ts(at), &order.as_str(), &stop],
        )
        .await?;
    if updated > 0 {
        // Every prediction for this stop learns the real arrival, and the
        // summed days holding them are stale (as `daily::arrival_logged`).
        c.execute(
            "UPDATE eta_predictions SET actual_arrival = $1 WHERE order_id = $2 AND stop_idx = $3",
            &[&ts(at), &order.as_str(), &stop],
        )
        .await?;
        c.execute(
            "UPDATE eta_accuracy_days SET stale = TRUE WHERE NOT stale AND (tenant_id, day) IN \
             (SELECT tenant_id, substr(predicted_at, 1, 10) FROM eta_predictions \
              WHERE order_id = $1 AND stop_idx = $2)",
            &[&order.as_str(), &stop],
        )
        .await?;
    }
    Ok(())
}

async fn record_departure(
    c: &Transaction<'_>,
    order: &OrderId,
    stop: u32,
    at: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "UPDATE stops SET departed_at = $1 \
         WHERE order_id = $2 AND idx = $3 AND departed_at IS NULL",
        &[&ts(at), &order.as_str(), &i64::from(stop)],
    )
    .await?;
    Ok(())
}

pub(super) async fn add_event(
    c: &Transaction<'_>,
    tenant: Option<&TenantId>,
    id: &OrderId,
    event: &NewEvent,
) -> Result<(Order, OrderEvent)> {
    let order = lock_order(c, tenant, id).await?;
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
            for step in rules::stop_moves(&order, to, stop) {
                match step {
                    StopMove::Skip(idx) => {
                        c.execute(
                            "UPDATE stops SET skipped_at = $1 WHERE order_id = $2 AND idx = $3",
                            &[&ts(event.at), &id.as_str(), &i64::from(idx)],
                        )
                        .await?;
                    }
                    StopMove::Arrive(idx) => record_arrival(c, id, idx, event.at).await?,
                    StopMove::Depart(idx) => record_departure(c, id, idx, event.at).await?,
                }
            }
        }
        c.execute(
            "UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3",
            &[&to.as_str(), &ts(now()), &id.as_str()],
        )
        .await?;
    }
    let stored = insert_event(c, id, &stored_event).await?;
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
    )
    .await?;
    Ok((reload(c, id).await?, stored))
}

pub(super) async fn add_pod(
    c: &Transaction<'_>,
    tenant: &TenantId,
    id: &OrderId,
    pod: &NewPod,
) -> Result<PodMeta> {
    reads::order_of_tenant(c, tenant, id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    let pod_id = new_id("pod_");
    c.execute(
        "INSERT INTO pod_files (id, order_id, content_type, file_name, size_bytes, sha256, \
         signed_by, note, taken_at, uploaded_at, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &pod_id,
            &id.as_str(),
            &pod.content_type,
            &pod.file_name,
            &i64::try_from(pod.data.len()).unwrap_or(i64::MAX),
            &bytes_sha256(&pod.data),
            &pod.signed_by,
            &pod.note,
            &pod.taken_at.map(ts),
            &ts(now()),
            &pod.data,
        ],
    )
    .await?;
    outbox(
        c,
        tenant,
        "order.pod",
        json!({"order_id": id.as_str(), "pod_id": pod_id}),
    )
    .await?;
    reads::pod_by_id(c, id, &pod_id)
        .await?
        .ok_or(Error::NotFound("pod"))
}

/// Revokes the active code and, with `new_code`, issues a new one.
pub(super) async fn replace_code(
    c: &Transaction<'_>,
    tenant: &TenantId,
    id: &OrderId,
    new_code: Option<&str>,
) -> Result<Order> {
    lock_order(c, Some(tenant), id).await?;
    c.execute(
        "UPDATE tracking_codes SET revoked_at = $1 WHERE order_id = $2 AND revoked_at IS NULL",
        &[&ts(now()), &id.as_str()],
    )
    .await?;
    if let Some(code) = new_code {
        insert_code(c, id, code).await?;
    }
    reload(c, id).await
}

/// Records a batch of positions (`Store::record_positions`), folded per
/// vehicle (`position_batch`) and written set-wise: one locking read of the
/// vehicles' newest times, one multi-row upsert of their rows, one read of
/// their live orders, one of those orders' last trail points and one
/// multi-row insert of the trail points kept, whatever the batch's size.
pub(super) async fn record_positions(
    c: &Transaction<'_>,
    batch: &[(TenantId, VehicleFix)],
) -> Result<Vec<PositionOutcome>> {
    let runs = position_batch::by_vehicle(batch);
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<&str> = runs.iter().map(|r| r.tenant.as_str()).collect();
    let vehicles: Vec<&str> = runs.iter().map(|r| r.vehicle_id.as_str()).collect();
    // Locked in key order, so two nodes writing overlapping batches queue
    // instead of deadlocking; a vehicle first seen here is guarded by the
    // upsert's own condition.
    let mut stored: HashMap<(String, String), String> = HashMap::new();
    for row in c
        .query(
            "SELECT p.tenant_id, p.vehicle_id, p.at FROM vehicle_positions p \
             JOIN unnest($1::text[], $2::text[]) AS b(tenant_id, vehicle_id) \
             USING (tenant_id, vehicle_id) \
             ORDER BY p.tenant_id, p.vehicle_id FOR UPDATE OF p",
            &[&tenants, &vehicles],
        )
        .await?
    {
        stored.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
    }
    let folded: Vec<position_batch::Folded> = runs
        .iter()
        .map(|run| {
            let key = (run.tenant.as_str().to_owned(), run.vehicle_id.clone());
            position_batch::fold(stored.get(&key).map(String::as_str), batch, run)
        })
        .collect();
    write_vehicle_rows(c, batch, &runs, &folded).await?;
    let orders = live_orders(c, &runs, &folded).await?;
    extend_trails(c, batch, &folded, &orders).await?;
    // Read here, in the write, so that publishing the positions needs no
    // second trip to the store.
    let published: Vec<(&TenantId, &OrderId)> = runs
        .iter()
        .zip(&orders)
        .flat_map(|(run, live)| live.iter().map(move |order| (&run.tenant, order)))
        .collect();
    let (privacy, pending) = reads::privacy_and_pending(c, &published).await?;
    Ok(position_batch::outcomes(
        batch.len(),
        &runs,
        &folded,
        &orders,
        &privacy,
        &pending,
    ))
}

/// The vehicles' rows after their fixes of a batch: each one's newest fix
/// with the applied and replayed counts added (one upsert), and the replays
/// of vehicles that got nothing newer (one update).
async fn write_vehicle_rows(
    c: &Transaction<'_>,
    batch: &[(TenantId, VehicleFix)],
    runs: &[position_batch::VehicleRun],
    folded: &[position_batch::Folded],
) -> Result<()> {
    let received_at = ts(now());
    let mut rows = NewestRows::default();
    let (mut replay_tenants, mut replay_vehicles, mut replays) = (vec![], vec![], vec![]);
    for (run, fold) in runs.iter().zip(folded) {
        match fold.newest() {
            Some(i) => rows.push(run, &batch[i].1, fold),
            None if fold.replayed > 0 => {
                replay_tenants.push(run.tenant.as_str());
                replay_vehicles.push(run.vehicle_id.as_str());
                replays.push(fold.replayed);
            }
            None => {}
        }
    }
    if !rows.tenants.is_empty() {
        let sql = format!(
            "INSERT INTO vehicle_positions (tenant_id, vehicle_id, at, lat, lon, speed_mps, \
             heading_deg, received_at, applied, replayed) \
             SELECT t, v, a, la, lo, s, h, $10::text, n, r FROM unnest($1::text[], $2::text[], \
             $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], \
             $8::int8[], $9::int8[]) AS b(t, v, a, la, lo, s, h, n, r) {}",
            position_batch::NEWEST_ROW_ON_CONFLICT
        );
        c.execute(
            &sql,
            &[
                &rows.tenants,
                &rows.vehicles,
                &rows.at,
                &rows.lat,
                &rows.lon,
                &rows.speed,
                &rows.heading,
                &rows.applied,
                &rows.replayed,
                &received_at,
            ],
        )
        .await?;
    }
    if !replays.is_empty() {
        // Only re-deliveries of the newest fix: counted, nothing moves.
        c.execute(
            "UPDATE vehicle_positions p SET replayed = p.replayed + b.n \
             FROM unnest($1::text[], $2::text[], $3::int8[]) AS b(t, v, n) \
             WHERE p.tenant_id = b.t AND p.vehicle_id = b.v",
            &[&replay_tenants, &replay_vehicles, &replays],
        )
        .await?;
    }
    Ok(())
}

/// The columns of a multi-row upsert of vehicles' newest fixes.
#[derive(Debug, Default)]
struct NewestRows<'a> {
    tenants: Vec<&'a str>,
    vehicles: Vec<&'a str>,
    at: Vec<String>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    speed: Vec<Option<f64>>,
    heading: Vec<Option<f64>>,
    applied: Vec<i64>,
    replayed: Vec<i64>,
}

impl<'a> NewestRows<'a> {
    fn push(
        &mut self,
        run: &'a position_batch::VehicleRun,
        fix: &VehicleFix,
        fold: &position_batch::Folded,
    ) {
        self.tenants.push(run.tenant.as_str());
        self.vehicles.push(run.vehicle_id.as_str());
        self.at.push(ts(fix.at));
        self.lat.push(fix.lat);
        self.lon.push(fix.lon);
        self.speed.push(fix.speed_mps);
        self.heading.push(fix.heading_deg);
        self.applied.push(fold.applied.len() as i64);
        self.replayed.push(fold.replayed);
    }
}

/// Each run's vehicle's live orders (oldest first), for the runs that
/// applied a fix; one query for the batch.
async fn live_orders(
    c: &Transaction<'_>,
    runs: &[position_batch::VehicleRun],
    folded: &[position_batch::Folded],
) -> Result<Vec<Vec<OrderId>>> {
    let mut orders = vec![Vec::new(); runs.len()];
    let moved: Vec<usize> = (0..runs.len())
        .filter(|&r| !folded[r].applied.is_empty())
        .collect();
    if moved.is_empty() {
        return Ok(orders);
    }
    let tenants: Vec<&str> = moved.iter().map(|&r| runs[r].tenant.as_str()).collect();
    let vehicles: Vec<&str> = moved.iter().map(|&r| runs[r].vehicle_id.as_str()).collect();
    let positions: Vec<i64> = moved.iter().map(|&r| r as i64).collect();
    let sql = format!(
        "SELECT b.r, o.id FROM orders o \
         JOIN unnest($1::text[], $2::text[], $3::int8[]) AS b(t, v, r) \
         ON o.tenant_id = b.t AND o.vehicle_id = b.v \
         WHERE o.status IN {LIVE_STATUSES} ORDER BY b.r, o.created_at, o.seq"
    );
    for row in c.query(&sql, &[&tenants, &vehicles, &positions]).await? {
        let r: i64 = row.try_get(0)?;
        let slot = usize::try_from(r)
            .ok()
            .and_then(|r| orders.get_mut(r))
            .ok_or_else(|| Error::store_permanent("a batch row out of range"))?;
        slot.push(OrderId(row.try_get(1)?));
    }
    Ok(orders)
}

/// Adds to each live order's trail those of its vehicle's applied fixes it
/// keeps (`position_batch::trail_points`): one read of the orders' last
/// points, one multi-row insert.
async fn extend_trails(
    c: &Transaction<'_>,
    batch: &[(TenantId, VehicleFix)],
    folded: &[position_batch::Folded],
    orders: &[Vec<OrderId>],
) -> Result<()> {
    let ids: Vec<&str> = orders.iter().flatten().map(OrderId::as_str).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut last: HashMap<String, (String, f64, f64)> = HashMap::new();
    for row in c
        .query(
            "SELECT DISTINCT ON (order_id) order_id, at, lat, lon FROM position_trail \
             WHERE order_id = ANY($1::text[]) ORDER BY order_id, at DESC",
            &[&ids],
        )
        .await?
    {
        last.insert(
            row.try_get(0)?,
            (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?),
        );
    }
    let (mut order_ids, mut at, mut lat, mut lon, mut speed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (fold, live) in folded.iter().zip(orders) {
        for order in live {
            let applied = fold.applied.iter().map(|&i| &batch[i].1);
            for fix in position_batch::trail_points(last.remove(order.as_str()), applied) {
                order_ids.push(order.as_str());
                at.push(ts(fix.at));
                lat.push(fix.lat);
                lon.push(fix.lon);
                speed.push(fix.speed_mps);
            }
        }
    }
    if order_ids.is_empty() {
        return Ok(());
    }
    c.execute(
        "INSERT INTO position_trail (order_id, at, lat, lon, speed_mps) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], \
         $5::float8[]) ON CONFLICT DO NOTHING",
        &[&order_ids, &at, &lat, &lon, &speed],
    )
    .await?;
    Ok(())
}

/// The (lat, lon) of an order's stops not yet reached or skipped.
pub(super) async fn pending_stops<C: GenericClient + Sync>(
    c: &C,
    order: &OrderId,
) -> Result<Vec<(f64, f64)>> {
    c.query(
        "SELECT lat, lon FROM stops WHERE order_id = $1 \
         AND arrived_at IS NULL AND departed_at IS NULL AND skipped_at IS NULL ORDER BY idx",
        &[&order.as_str()],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect()
}

/// One multi-row upsert for the whole set (see SQLite's for the rule).
pub(super) async fn save_tracker_memories(
    c: &Transaction<'_>,
    memories: &[TrackerMemoryRecord],
) -> Result<()> {
    if memories.is_empty() {
        return Ok(());
    }
    let column =
        |f: fn(&TrackerMemoryRecord) -> String| -> Vec<String> { memories.iter().map(f).collect() };
    let tenants = column(|m| m.tenant_id.as_str().to_owned());
    let orders = column(|m| m.order_id.as_str().to_owned());
    let vehicles = column(|m| m.vehicle_id.as_str().to_owned());
    let states = column(|m| m.state.clone());
    let through = column(|m| ts(m.applied_through));
    let saved = column(|m| ts(m.saved_at));
    c.execute(
        "INSERT INTO tracker_memories \
             (tenant_id, order_id, vehicle_id, state, applied_through, saved_at) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                              $6::text[]) \
         ON CONFLICT (tenant_id, order_id) DO UPDATE SET \
             vehicle_id = excluded.vehicle_id, state = excluded.state, \
             applied_through = excluded.applied_through, saved_at = excluded.saved_at \
         WHERE excluded.applied_through >= tracker_memories.applied_through",
        &[&tenants, &orders, &vehicles, &states, &through, &saved],
    )
    .await?;
    Ok(())
}

/// A truck's holder and when it was last heard from.
type Holder = (String, Option<DateTime<Utc>>);

/// Holds trucks for a node (see SQLite's): a hold row made for each truck
/// nobody holds, every asked row locked and read with its holder's beat, the
/// rule applied, the take-overs written. Two nodes asking for one free truck
/// at once: the first insert wins, the second waits on the row lock and
/// finds it held.
pub(super) async fn hold_vehicles(
    c: &Transaction<'_>,
    request: &HoldRequest,
) -> Result<Vec<VehicleHold>> {
    if request.vehicles.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<&str> = request
        .vehicles
        .iter()
        .map(|v| v.tenant_id.as_str())
        .collect();
    let ids: Vec<&str> = request
        .vehicles
        .iter()
        .map(|v| v.vehicle_id.as_str())
        .collect();
    let now = ts(request.now);
    // Made ours where there was no row; RETURNING names the rows made.
    let made: std::collections::HashSet<(String, String)> = c
        .query(
            "INSERT INTO vehicle_holds (tenant_id, vehicle_id, holder, held_since) \
             SELECT k.tenant_id, k.vehicle_id, $3, $4 \
             FROM unnest($1::text[], $2::text[]) AS k(tenant_id, vehicle_id) \
             ON CONFLICT (tenant_id, vehicle_id) DO NOTHING \
             RETURNING tenant_id, vehicle_id",
            &[&tenants, &ids, &request.holder, &now],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
    let rows = c
        .query(
            "SELECT h.tenant_id, h.vehicle_id, h.holder, b.seen_at \
             FROM vehicle_holds h \
             JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, vehicle_id) \
               ON h.tenant_id = k.tenant_id AND h.vehicle_id = k.vehicle_id \
             LEFT JOIN node_beats b ON b.holder = h.holder \
             FOR UPDATE OF h",
            &[&tenants, &ids],
        )
        .await?;
    // (tenant, vehicle) → (holder, its last beat)
    let mut current: HashMap<(String, String), Holder> = HashMap::new();
    for r in &rows {
        let key = (r.try_get(0)?, r.try_get(1)?);
        let heard = parse_opt_ts(r.try_get(3)?)?;
        current.insert(key, (r.try_get(2)?, heard));
    }
    let mut out = Vec::with_capacity(request.vehicles.len());
    let (mut over_tenants, mut over_ids) = (Vec::new(), Vec::new());
    for v in &request.vehicles {
        let key = (
            v.tenant_id.as_str().to_owned(),
            v.vehicle_id.as_str().to_owned(),
        );
        let (outcome, write) = if made.contains(&key) {
            (VehicleHold::Taken, false)
        } else {
            let now_held = current
                .get(&key)
                .map(|(holder, heard)| (holder.as_str(), *heard));
            rules::hold_outcome(request, now_held)
        };
        if write {
            over_tenants.push(key.0);
            over_ids.push(key.1);
        }
        out.push(outcome);
    }
    if !over_tenants.is_empty() {
        c.execute(
            "INSERT INTO vehicle_holds (tenant_id, vehicle_id, holder, held_since) \
             SELECT k.tenant_id, k.vehicle_id, $3, $4 \
             FROM unnest($1::text[], $2::text[]) AS k(tenant_id, vehicle_id) \
             ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET \
                 holder = excluded.holder, held_since = excluded.held_since",
            &[&over_tenants, &over_ids, &request.holder, &now],
        )
        .await?;
    }
    Ok(out)
}

/// Lets go of the trucks `holder` holds among `vehicles`.
pub(super) async fn let_go_vehicles<C: GenericClient + Sync>(
    c: &C,
    holder: &str,
    vehicles: &[VehicleKey],
) -> Result<()> {
    let tenants: Vec<&str> = vehicles.iter().map(|v| v.tenant_id.as_str()).collect();
    let ids: Vec<&str> = vehicles.iter().map(|v| v.vehicle_id.as_str()).collect();
    c.execute(
        "DELETE FROM vehicle_holds h \
         USING unnest($1::text[], $2::text[]) AS k(tenant_id, vehicle_id) \
         WHERE h.tenant_id = k.tenant_id AND h.vehicle_id = k.vehicle_id AND h.holder = $3",
        &[&tenants, &ids, &holder],
    )
    .await?;
    Ok(())
}

/// A node's beat: noted, or forgotten when it is gone.
pub(super) async fn node_beat<C: GenericClient + Sync>(
    c: &C,
    holder: &str,
    name: &str,
    now: DateTime<Utc>,
    gone: bool,
) -> Result<()> {
    if gone {
        c.execute("DELETE FROM node_beats WHERE holder = $1", &[&holder])
            .await?;
    } else {
        c.execute(
            "INSERT INTO node_beats (holder, node_name, seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (holder) DO UPDATE SET \
                 node_name = excluded.node_name, seen_at = excluded.seen_at",
            &[&holder, &name, &ts(now)],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn save_learned(
    c: &Transaction<'_>,
    name: &str,
    state: &str,
    saved_at: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "INSERT INTO learned_state (name, state, saved_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
        &[&name, &state, &ts(saved_at)],
    )
    .await?;
    Ok(())
}

/// Inserts every letter (the caller's transaction makes the batch atomic).
pub(super) async fn add_dead_letters(c: &Transaction<'_>, letters: &[NewDeadLetter]) -> Result<()> {
    let insert = c
        .prepare(
            r#"INSERT INTO dead_letters (tenant_id, origin, topic, partition, "offset",
                   size_bytes, reason, detail, payload, key, received_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
        )
        .await?;
    for l in letters {
        c.execute(
            &insert,
            &[
                &l.tenant_id.as_ref().map(TenantId::as_str),
                &l.origin,
                &l.topic,
                &l.partition,
                &l.offset,
                &i64::try_from(l.size_bytes).unwrap_or(i64::MAX),
                &l.reason,
                &l.detail,
                &l.payload,
                &l.key,
                &ts(l.received_at),
            ],
        )
        .await?;
    }
    Ok(())
}
