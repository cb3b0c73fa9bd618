//! Daily accuracy aggregates on SQLite: summing each whole UTC day of a
//! tenant's predictions into `eta_accuracy_daily` (sums plus the sketches of
//! `analytics::Sketch`), pruning raw rows past the retention, and choosing,
//! for one accuracy query, which days are read from aggregates and which
//! from raw rows. The choices are `analytics_rules` (`work_for`,
//! `plan_reads`), which PostgreSQL's `postgres/daily.rs` makes too; here are
//! SQLite's queries, and its single writer keeps two passes apart.
//!
//! **Which days are summed.** A pass (`serve`, at start and hourly) walks
//! each tenant's days that still hold raw predictions, before today, through
//! the `(tenant_id, predicted_at)` index: a day not summed yet, or marked
//! `stale` (a prediction or an arrival touched it since), is summed again
//! from its raw rows; a summed day past the retention loses its raw rows.
//! One tenant-day per store write, so positions never wait long.
//!
//! **What a query reads.** A day wholly inside the range whose sum is fresh
//! is read from its aggregates; the rest of the range (the partial days at
//! its ends, today, stale days) from raw rows. So a query costs
//! O(aggregate rows of its whole days + raw rows of at most two partial days
//! and the stale ones), not O(predictions in range). Days whose raw rows are
//! gone are read from aggregates whenever their start lies in the range (as
//! before sketches existed). Grouping by lane at another resolution than
//! [`ROLLUP_LANE_RES`] reads raw rows for every day that still has them.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::analytics_rules::{
    DayState, DayWork, count, deletes_raw, key_of, merge_daily, parse_day, plan_reads,
    sketch_bytes, sketches, whole_day, work_for,
};
pub(super) use super::analytics_rules::{day_start, day_text};
use super::rows::{parse_ts, ts};
use crate::analytics::{
    AnalyticsFilter, DailyAccuracy, EvaluatedPrediction, ROLLUP_LANE_RES, roll_up,
};
use crate::analytics_store::{PredictionScan, read_evaluated_predictions};
use crate::error::Result;
use crate::model::TenantId;

/// What one accuracy query reads: raw predictions for the parts of its
/// range no fresh aggregate covers, and the aggregates of the rest. No
/// prediction is in both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccuracyInputs {
    pub raw: Vec<EvaluatedPrediction>,
    pub daily: Vec<DailyAccuracy>,
}

/// Whether a query may read aggregates for days whose raw rows it could
/// read instead: not when grouping by lanes at a resolution the aggregates
/// do not keep.
pub fn aggregates_serve(lane_res: Option<u8>) -> bool {
    lane_res.is_none_or(|r| r == ROLLUP_LANE_RES)
}

/// What one summary pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummaryPass {
    /// Tenant-days summed (first time or again).
    pub days_summed: u64,
    /// Raw predictions deleted past the retention.
    pub raw_deleted: u64,
}

fn day_state(c: &Connection, tenant: &TenantId, day: &str) -> Result<Option<DayState>> {
    Ok(c.prepare_cached(
        "SELECT raw_kept, stale FROM eta_accuracy_days WHERE tenant_id = ?1 AND day = ?2",
    )?
    .query_row(params![tenant.as_str(), day], |r| {
        Ok(DayState {
            raw_kept: r.get::<_, i64>(0)? != 0,
            stale: r.get::<_, i64>(1)? != 0,
        })
    })
    .optional()?)
}

/// The tenant's first day at or after `from` that holds raw predictions.
fn next_raw_day(
    c: &Connection,
    tenant: &TenantId,
    from: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let first: Option<String> = c
        .prepare_cached(
            "SELECT MIN(predicted_at) FROM eta_predictions \
             WHERE tenant_id = ?1 AND predicted_at >= ?2",
        )?
        .query_row(params![tenant.as_str(), ts(from)], |r| r.get(0))?;
    first.map(|t| parse_ts(&t).map(day_start)).transpose()
}

/// The next tenant-day a pass must work on, from `(tenant, from)` on, days
/// before `today`: what to do and where.
pub(super) fn next_work(
    c: &Connection,
    tenant: &TenantId,
    mut from: DateTime<Utc>,
    today: DateTime<Utc>,
    keep_raw_from: Option<DateTime<Utc>>,
) -> Result<Option<(DateTime<Utc>, DayWork)>> {
    while let Some(day) = next_raw_day(c, tenant, from)? {
        if day >= today {
            return Ok(None);
        }
        let state = day_state(c, tenant, &day_text(day))?;
        if let Some(work) = work_for(state, day, keep_raw_from) {
            return Ok(Some((day, work)));
        }
        from = day + Duration::days(1);
    }
    Ok(None)
}

/// Every tenant, in id order.
pub(super) fn tenants(c: &Connection) -> Result<Vec<TenantId>> {
    Ok(c.prepare_cached("SELECT id FROM tenants ORDER BY id")?
        .query_map([], |r| r.get(0).map(TenantId))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Does `work` on one tenant-day (one write job); returns the raw rows
/// deleted.
pub(super) fn do_work(
    c: &Connection,
    tenant: &TenantId,
    day: DateTime<Utc>,
    work: DayWork,
    keep_raw_from: Option<DateTime<Utc>>,
) -> Result<u64> {
    let text = day_text(day);
    let filter = whole_day(day);
    let mut summed = match work {
        DayWork::Prune => None,
        DayWork::Sum => Some(roll_up(&read_evaluated_predictions(
            c,
            tenant,
            &filter,
            PredictionScan::Indexed,
        )?)),
        DayWork::AddAndDelete => {
            let mut old = read_daily(c, tenant, &text, &filter)?;
            let new = roll_up(&read_evaluated_predictions(
                c,
                tenant,
                &filter,
                PredictionScan::Indexed,
            )?);
            merge_daily(&mut old, new);
            Some(old)
        }
    };
    if let Some(rows) = summed.take() {
        c.prepare_cached("DELETE FROM eta_accuracy_daily WHERE tenant_id = ?1 AND day = ?2")?
            .execute(params![tenant.as_str(), text])?;
        let mut insert = c.prepare_cached(
            "INSERT INTO eta_accuracy_daily (tenant_id, day, horizon_bucket, stop_kind, customer, \
             vehicle_id, lane, n, traces, sum_abs_error_s, sum_error_s, sum_sq_error_s, covered, \
             baseline_n, baseline_sum_abs_error_s, abs_error_sketch, width_sketch) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        for d in rows {
            let (abs_errors, widths) = sketch_bytes(&d);
            insert.execute(params![
                tenant.as_str(),
                d.day,
                d.horizon_bucket as i64,
                d.stop_kind,
                d.customer,
                d.vehicle_id.unwrap_or_default(),
                d.lane.unwrap_or_default(),
                d.n as i64,
                d.traces as i64,
                d.sum_abs_error_s,
                d.sum_error_s,
                d.sum_sq_error_s,
                d.covered as i64,
                d.baseline_n as i64,
                d.baseline_sum_abs_error_s,
                abs_errors,
                widths,
            ])?;
        }
    }
    let delete_raw = deletes_raw(work, day, keep_raw_from);
    let deleted = if delete_raw {
        c.prepare_cached(
            "DELETE FROM eta_predictions WHERE tenant_id = ?1 AND predicted_at >= ?2 \
             AND predicted_at < ?3",
        )?
        .execute(params![tenant.as_str(), ts(filter.from), ts(filter.to)])? as u64
    } else {
        0
    };
    c.prepare_cached(
        "INSERT INTO eta_accuracy_days (tenant_id, day, raw_kept, stale) VALUES (?1, ?2, ?3, 0) \
         ON CONFLICT (tenant_id, day) DO UPDATE SET raw_kept = excluded.raw_kept, stale = 0",
    )?
    .execute(params![tenant.as_str(), text, i64::from(!delete_raw)])?;
    Ok(deleted)
}

/// One tenant-day's aggregates, filtered as the query asks.
fn read_daily(
    c: &Connection,
    tenant: &TenantId,
    day: &str,
    f: &AnalyticsFilter,
) -> Result<Vec<DailyAccuracy>> {
    let mut stmt = c.prepare_cached(
        "SELECT day, horizon_bucket, stop_kind, customer, vehicle_id, lane, n, traces, \
                sum_abs_error_s, sum_error_s, sum_sq_error_s, covered, baseline_n, \
                baseline_sum_abs_error_s, abs_error_sketch, width_sketch \
         FROM eta_accuracy_daily \
         WHERE tenant_id = ?1 AND day = ?2 \
           AND (?3 IS NULL OR customer = ?3) \
           AND (?4 IS NULL OR vehicle_id = ?4) \
           AND (?5 IS NULL OR stop_kind = ?5)",
    )?;
    let mut rows = stmt.query(params![
        tenant.as_str(),
        day,
        f.customer,
        f.vehicle_id,
        f.stop_kind
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(DailyAccuracy {
            day: r.get(0)?,
            horizon_bucket: r.get::<_, i64>(1)?.max(0) as usize,
            stop_kind: r.get(2)?,
            customer: r.get(3)?,
            vehicle_id: key_of(r.get(4)?),
            lane: key_of(r.get(5)?),
            n: count(r.get(6)?),
            traces: count(r.get(7)?),
            sum_abs_error_s: r.get(8)?,
            sum_error_s: r.get(9)?,
            sum_sq_error_s: r.get(10)?,
            covered: count(r.get(11)?),
            baseline_n: count(r.get(12)?),
            baseline_sum_abs_error_s: r.get(13)?,
            sketches: sketches(r.get(14)?, r.get(15)?, day)?,
        });
    }
    Ok(out)
}

/// The rows one accuracy query reads (see the module's paragraph), in one
/// read transaction so a pass running beside it cannot make a day count
/// twice or not at all.
pub fn read_accuracy_inputs(
    c: &Connection,
    tenant: &TenantId,
    f: &AnalyticsFilter,
    aggregates: bool,
) -> Result<AccuracyInputs> {
    let tx = c.unchecked_transaction()?;
    let mut days: Vec<(DateTime<Utc>, DayState)> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT day, raw_kept, stale FROM eta_accuracy_days \
             WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day",
        )?;
        let mut rows = stmt.query(params![tenant.as_str(), day_text(f.from), day_text(f.to)])?;
        while let Some(r) = rows.next()? {
            let start = parse_day(&r.get::<_, String>(0)?)?;
            let state = DayState {
                raw_kept: r.get::<_, i64>(1)? != 0,
                stale: r.get::<_, i64>(2)? != 0,
            };
            days.push((start, state));
        }
    }
    let plan = plan_reads(f, aggregates, &days);
    let mut inputs = AccuracyInputs::default();
    for start in plan.daily_days {
        inputs
            .daily
            .extend(read_daily(&tx, tenant, &day_text(start), f)?);
    }
    for piece in plan.raw_pieces {
        inputs.raw.extend(read_evaluated_predictions(
            &tx,
            tenant,
            &piece,
            PredictionScan::Indexed,
        )?);
    }
    Ok(inputs)
}

/// Marks the tenant's summed day of `at` stale: a prediction was logged in
/// it after it was summed (replays, simulated clocks in the past).
pub(super) fn prediction_logged(c: &Connection, tenant: &str, at: DateTime<Utc>) -> Result<()> {
    c.prepare_cached(
        "UPDATE eta_accuracy_days SET stale = 1 WHERE tenant_id = ?1 AND day = ?2 AND stale = 0",
    )?
    .execute(params![tenant, day_text(at)])?;
    Ok(())
}

/// Marks stale every summed day holding a prediction of this stop: they
/// have just learned the stop's actual arrival.
pub(super) fn arrival_logged(c: &Connection, order_id: &str, stop_idx: u32) -> Result<()> {
    c.prepare_cached(
        "UPDATE eta_accuracy_days SET stale = 1 WHERE stale = 0 AND (tenant_id, day) IN \
         (SELECT tenant_id, substr(predicted_at, 1, 10) FROM eta_predictions \
          WHERE order_id = ?1 AND stop_idx = ?2)",
    )?
    .execute(params![order_id, stop_idx])?;
    Ok(())
}
