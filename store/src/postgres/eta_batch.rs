//! A batch of ETAs on PostgreSQL (`Store::record_etas`), set-wise: a fixed
//! number of statements per batch, whatever its size, instead of a few per
//! ETA (the PostgreSQL server's work per statement, not the round trips, was
//! what bounded a flush; BENCHMARKS.md, "Store").
//!
//! In one transaction, in this order:
//! 1. the batch's orders locked in one statement, in id order (the order a
//!    second node's batch and a dispatcher's status change take them in too,
//!    so they wait for each other instead of deadlocking); a finished or
//!    unknown order's ETAs are ignored;
//! 2. each (order, stop) takes the batch's last ETA for it, in one `UPDATE …
//!    FROM unnest(…)` that also answers which stops exist and their late-risk
//!    state (an ETA for a stop the order does not have is ignored);
//! 3. every recorded ETA's row of the prediction log, in one insert;
//! 4. each order's next stop (what the page shows), in one read: an ETA does
//!    not move the stops, so one answer serves all of an order's ETAs;
//! 5. the alerts, judged in memory in the batch's order (`alerts.rs`);
//! 6. the days whose accuracy sums the new predictions make stale, one by one
//!    in (tenant, day) order (rows two batches share, taken in one order);
//! 7. for the shown ETAs, the tenants' privacy and, where it is on, the
//!    orders' pending stops.
//!
//! The store is left as recording the ETAs one by one, in order, would leave
//! it (the conformance test `a_batch_of_etas_leaves_what_one_by_one_writes_leave`).

use std::collections::HashMap;

use engine::{EtaUpdate, OrderId, OrderStatus};
use tokio_postgres::Transaction;

use super::alerts::{Judged, StopAlertState, eta_subscribers, judge_recorded_etas};
use super::reads;
use crate::alerts::AlertPolicy;
use crate::daily::day_text;
use crate::error::{Error, Result};
use crate::model::{EtaRecord, EtaRecorded, RecordedEta, TenantId};
use crate::records::ts;

pub(super) async fn record_etas(
    tx: &Transaction<'_>,
    updates: &[EtaUpdate],
    policy: &AlertPolicy,
) -> Result<Vec<RecordedEta>> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let live = lock_live_orders(tx, updates).await?;
    let stops = record_stop_etas(tx, updates, &live).await?;
    // The ETAs that are recorded: a live order's, on a stop it has.
    let recorded: Vec<usize> = (0..updates.len())
        .filter(|&i| {
            let u = &updates[i];
            stops.contains_key(&(u.order_id.0.clone(), u.stop_index))
        })
        .collect();
    log_predictions(tx, updates, &recorded, &live).await?;
    let next_stops = next_stops(tx, updates, &recorded).await?;

    let mut tenants: Vec<&str> = recorded
        .iter()
        .filter_map(|&i| live.get(updates[i].order_id.as_str()))
        .map(TenantId::as_str)
        .collect();
    tenants.sort_unstable();
    tenants.dedup();
    let subscribers = eta_subscribers(tx, &tenants).await?;
    let judged: Vec<Judged<'_>> = recorded
        .iter()
        .filter_map(|&i| {
            let update = &updates[i];
            let tenant = live.get(update.order_id.as_str())?;
            Some(Judged { update, tenant })
        })
        .collect();
    judge_recorded_etas(tx, &judged, stops, &subscribers, policy).await?;
    mark_days_stale(tx, &judged).await?;

    let mut answers: Vec<EtaRecorded> = vec![EtaRecorded::Ignored; updates.len()];
    for &i in &recorded {
        let u = &updates[i];
        let next = next_stops.get(u.order_id.as_str()).copied().flatten();
        answers[i] = if next == Some(i64::from(u.stop_index)) {
            EtaRecorded::Shown
        } else {
            EtaRecorded::Logged
        };
    }
    with_privacy(tx, updates, answers, &live).await
}

/// Locks the batch's orders (in id order) and answers the tenant of each one
/// that is not finished.
async fn lock_live_orders(
    tx: &Transaction<'_>,
    updates: &[EtaUpdate],
) -> Result<HashMap<String, TenantId>> {
    let mut ids: Vec<&str> = updates.iter().map(|u| u.order_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut live = HashMap::new();
    for row in tx
        .query(
            "SELECT id, status, tenant_id FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&ids],
        )
        .await?
    {
        let status: String = row.try_get(1)?;
        if OrderStatus::parse(&status).is_some_and(|s| !s.is_final()) {
            live.insert(row.try_get(0)?, TenantId(row.try_get(2)?));
        }
    }
    Ok(live)
}

/// Makes each (live order, stop) of the batch take its last ETA, and answers
/// the late-risk state of every stop that exists.
async fn record_stop_etas(
    tx: &Transaction<'_>,
    updates: &[EtaUpdate],
    live: &HashMap<String, TenantId>,
) -> Result<HashMap<(String, u32), StopAlertState>> {
    let mut last_of: HashMap<(&str, u32), usize> = HashMap::new();
    for (i, u) in updates.iter().enumerate() {
        if live.contains_key(u.order_id.as_str()) {
            last_of.insert((u.order_id.as_str(), u.stop_index), i);
        }
    }
    if last_of.is_empty() {
        return Ok(HashMap::new());
    }
    let mut last: Vec<((&str, u32), usize)> = last_of.into_iter().collect();
    last.sort_unstable();
    let orders: Vec<&str> = last.iter().map(|((o, _), _)| *o).collect();
    let idx: Vec<i64> = last.iter().map(|((_, s), _)| i64::from(*s)).collect();
    let json = last
        .iter()
        .map(|(_, i)| {
            serde_json::to_string(&EtaRecord::from(&updates[*i]))
                .map_err(|e| Error::store_permanent(format!("serializing an ETA: {e}")))
        })
        .collect::<Result<Vec<String>>>()?;
    let mut stops = HashMap::new();
    for row in tx
        .query(
            "UPDATE stops SET eta_json = u.json \
             FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(order_id, idx, json) \
             WHERE stops.order_id = u.order_id AND stops.idx = u.idx \
             RETURNING stops.order_id, stops.idx, stops.window_to, stops.late_risk_since, \
                 stops.late_risk_by_min, stops.late_turning_since, \
                 (stops.arrived_at IS NULL AND stops.departed_at IS NULL \
                  AND stops.skipped_at IS NULL)",
            &[&orders, &idx, &json],
        )
        .await?
    {
        let stop: i64 = row.try_get(1)?;
        let stop = u32::try_from(stop)
            .map_err(|_| Error::store_permanent(format!("stop index {stop} out of range")))?;
        stops.insert((row.try_get(0)?, stop), StopAlertState::of_row(&row, 2)?);
    }
    Ok(stops)
}

/// One row of the prediction log per recorded ETA, in the batch's order.
async fn log_predictions(
    tx: &Transaction<'_>,
    updates: &[EtaUpdate],
    recorded: &[usize],
    live: &HashMap<String, TenantId>,
) -> Result<()> {
    if recorded.is_empty() {
        return Ok(());
    }
    let rows: Vec<&EtaUpdate> = recorded.iter().map(|&i| &updates[i]).collect();
    let text =
        |f: &dyn Fn(&EtaUpdate) -> String| -> Vec<String> { rows.iter().map(|u| f(u)).collect() };
    let number =
        |f: &dyn Fn(&EtaUpdate) -> f64| -> Vec<f64> { rows.iter().map(|u| f(u)).collect() };
    let orders = text(&|u| u.order_id.0.clone());
    let tenants = text(&|u| {
        live.get(u.order_id.as_str())
            .map(|t| t.0.clone())
            .unwrap_or_default()
    });
    let idx: Vec<i64> = rows.iter().map(|u| i64::from(u.stop_index)).collect();
    let predicted_at = text(&|u| ts(u.computed_at));
    let eta = text(&|u| ts(u.eta));
    let p10 = text(&|u| ts(u.p10));
    let p90 = text(&|u| ts(u.p90));
    let horizon_s = number(&|u| (u.eta - u.computed_at).num_milliseconds() as f64 / 1000.0);
    let distance_m = number(&|u| u.remaining_distance_m);
    let drive_s = number(&|u| u.remaining_drive_s);
    let reasons = text(&|u| {
        let reasons: Vec<&str> = u.reasons.iter().map(|r| r.as_str()).collect();
        reasons.join(",")
    });
    let free_flow_eta: Vec<Option<String>> = rows
        .iter()
        .map(|u| {
            u.free_flow_drive_s
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| ts(u.computed_at + chrono::Duration::milliseconds((s * 1000.0) as i64)))
        })
        .collect();
    tx.execute(
        "INSERT INTO eta_predictions (order_id, stop_idx, predicted_at, eta, p10, p90, \
             horizon_s, remaining_distance_m, remaining_drive_s, reasons, tenant_id, \
             free_flow_eta) \
         SELECT u.order_id, u.stop_idx, u.predicted_at, u.eta, u.p10, u.p90, u.horizon_s, \
             u.distance_m, u.drive_s, u.reasons, u.tenant_id, u.free_flow_eta \
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::float8[], $8::float8[], $9::float8[], $10::text[], $11::text[], $12::text[]) \
             WITH ORDINALITY AS u(order_id, stop_idx, predicted_at, eta, p10, p90, horizon_s, \
             distance_m, drive_s, reasons, tenant_id, free_flow_eta, n) \
         ORDER BY u.n",
        &[
            &orders,
            &idx,
            &predicted_at,
            &eta,
            &p10,
            &p90,
            &horizon_s,
            &distance_m,
            &drive_s,
            &reasons,
            &tenants,
            &free_flow_eta,
        ],
    )
    .await?;
    Ok(())
}

/// The page's next stop of each order with a recorded ETA: the first pending
/// one after every stop reached, left or skipped (as `Order::next_stop`).
async fn next_stops(
    tx: &Transaction<'_>,
    updates: &[EtaUpdate],
    recorded: &[usize],
) -> Result<HashMap<String, Option<i64>>> {
    let mut orders: Vec<&str> = recorded
        .iter()
        .map(|&i| updates[i].order_id.as_str())
        .collect();
    orders.sort_unstable();
    orders.dedup();
    let mut next = HashMap::new();
    if orders.is_empty() {
        return Ok(next);
    }
    for row in tx
        .query(
            "SELECT o.id, (SELECT MIN(idx) FROM stops WHERE order_id = o.id AND idx > COALESCE((\
                 SELECT MAX(idx) FROM stops WHERE order_id = o.id AND (arrived_at IS NOT NULL \
                 OR departed_at IS NOT NULL OR skipped_at IS NOT NULL)), -1)) \
             FROM unnest($1::text[]) AS o(id)",
            &[&orders],
        )
        .await?
    {
        next.insert(row.try_get(0)?, row.try_get(1)?);
    }
    Ok(next)
}

/// Marks stale the accuracy sums of the days the recorded ETAs were made on
/// (as `daily::prediction_logged`), one by one in (tenant, day) order.
async fn mark_days_stale(tx: &Transaction<'_>, judged: &[Judged<'_>]) -> Result<()> {
    let mut days: Vec<(&str, String)> = judged
        .iter()
        .map(|j| (j.tenant.as_str(), day_text(j.update.computed_at)))
        .collect();
    days.sort_unstable();
    days.dedup();
    for (tenant, day) in &days {
        tx.execute(
            "UPDATE eta_accuracy_days SET stale = TRUE \
             WHERE tenant_id = $1 AND day = $2 AND NOT stale",
            &[tenant, day],
        )
        .await?;
    }
    Ok(())
}

/// The answers, with each shown ETA's tenant privacy and, where it is on, its
/// order's pending stops.
async fn with_privacy(
    tx: &Transaction<'_>,
    updates: &[EtaUpdate],
    answers: Vec<EtaRecorded>,
    live: &HashMap<String, TenantId>,
) -> Result<Vec<RecordedEta>> {
    let shown: Vec<(&TenantId, &OrderId)> = updates
        .iter()
        .zip(&answers)
        .filter(|(_, a)| **a == EtaRecorded::Shown)
        .filter_map(|(u, _)| Some((live.get(u.order_id.as_str())?, &u.order_id)))
        .collect();
    let (privacy, pending) = reads::privacy_and_pending(tx, &shown).await?;
    Ok(updates
        .iter()
        .zip(answers)
        .map(|(u, recorded)| {
            if recorded != EtaRecorded::Shown {
                return RecordedEta::unshown(recorded);
            }
            let tenant = live.get(u.order_id.as_str());
            let privacy = tenant
                .and_then(|t| privacy.get(t))
                .copied()
                .unwrap_or_default();
            RecordedEta {
                recorded,
                privacy,
                pending_stops: if privacy.enabled {
                    pending.get(&u.order_id).cloned().unwrap_or_default()
                } else {
                    Vec::new()
                },
            }
        })
        .collect())
}
