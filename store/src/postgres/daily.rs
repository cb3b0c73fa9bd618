//! Daily accuracy aggregates on PostgreSQL: the summary pass that sums each
//! whole UTC day of a tenant's predictions into `eta_accuracy_daily` and
//! prunes raw rows past the retention, and the reads of one accuracy query.
//! Which days a pass works on, what it does to each, and which days a query
//! reads from aggregates are `crate::analytics_rules`, the decisions SQLite's
//! `daily.rs` makes too; the sums are `crate::analytics::roll_up`.
//!
//! **Two nodes summing at once.** Every node runs a pass (at start and
//! hourly), so two may run together. Each tenant-day is one transaction
//! that first takes `LOCK TABLE eta_predictions IN SHARE ROW EXCLUSIVE
//! MODE`, and only then decides what the day needs and does it. That lock
//! conflicts with itself, so a second pass waits for the first's day to
//! commit and then, deciding afresh (READ COMMITTED: each statement sees
//! what committed before it), finds the day summed and moves on: a day is
//! never summed twice over, nor its late rows added twice. The lock also
//! conflicts with the writers' `ROW EXCLUSIVE` on `eta_predictions`, which
//! they take before they mark a summed day stale (`record_etas`, arrivals):
//! a writer either commits before the day is read, or waits until its
//! summary is committed and then marks it stale. So no prediction or arrival
//! slips between a day's sum and its `stale = FALSE`. Readers are not
//! blocked, and writers wait one tenant-day at most (as behind SQLite's
//! single writer).
//!
//! **Reads.** An accuracy query runs in one REPEATABLE READ snapshot
//! (`analytics.rs`), so a pass committing beside it cannot make a day count
//! twice or not at all.

use chrono::{DateTime, Duration, Utc};
use tokio_postgres::{GenericClient, Transaction};

use super::analytics::evaluated_predictions;
use crate::analytics::{AnalyticsFilter, DailyAccuracy, roll_up};
use crate::analytics_rules::{
    DayState, DayWork, count, day_start, day_text, deletes_raw, keep_raw_from, key_of, merge_daily,
    parse_day, plan_reads, sketch_bytes, sketches, whole_day, work_for,
};
use crate::error::Result;
use crate::model::TenantId;
use crate::records::{parse_opt_ts, ts};
use crate::{AccuracyInputs, SummaryPass};

async fn day_state<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    day: &str,
) -> Result<Option<DayState>> {
    let row = c
        .query_opt(
            "SELECT raw_kept, stale FROM eta_accuracy_days WHERE tenant_id = $1 AND day = $2",
            &[&tenant.as_str(), &day],
        )
        .await?;
    row.map(|r| {
        Ok(DayState {
            raw_kept: r.try_get(0)?,
            stale: r.try_get(1)?,
        })
    })
    .transpose()
}

/// The tenant's first day at or after `from` (from its first prediction
/// with none) that holds raw predictions.
async fn next_raw_day<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    from: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>> {
    let row = match from {
        Some(from) => {
            c.query_one(
                "SELECT MIN(predicted_at) FROM eta_predictions \
                 WHERE tenant_id = $1 AND predicted_at >= $2",
                &[&tenant.as_str(), &ts(from)],
            )
            .await?
        }
        None => {
            c.query_one(
                "SELECT MIN(predicted_at) FROM eta_predictions WHERE tenant_id = $1",
                &[&tenant.as_str()],
            )
            .await?
        }
    };
    Ok(parse_opt_ts(row.try_get(0)?)?.map(day_start))
}

/// The next tenant-day a pass must work on, from `from` on, days before
/// `today`: where and what to do.
async fn next_work<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    mut from: Option<DateTime<Utc>>,
    today: DateTime<Utc>,
    keep_raw_from: Option<DateTime<Utc>>,
) -> Result<Option<(DateTime<Utc>, DayWork)>> {
    while let Some(day) = next_raw_day(c, tenant, from).await? {
        if day >= today {
            return Ok(None);
        }
        let state = day_state(c, tenant, &day_text(day)).await?;
        if let Some(work) = work_for(state, day, keep_raw_from) {
            return Ok(Some((day, work)));
        }
        from = Some(day + Duration::days(1));
    }
    Ok(None)
}

/// Does `work` on one tenant-day inside the pass's transaction; returns
/// the raw rows deleted.
async fn do_work(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    day: DateTime<Utc>,
    work: DayWork,
    keep_raw_from: Option<DateTime<Utc>>,
) -> Result<u64> {
    let text = day_text(day);
    let filter = whole_day(day);
    let summed = match work {
        DayWork::Prune => None,
        DayWork::Sum => Some(roll_up(&evaluated_predictions(tx, tenant, &filter).await?)),
        DayWork::AddAndDelete => {
            let mut old = read_daily(tx, tenant, &text, &filter).await?;
            let new = roll_up(&evaluated_predictions(tx, tenant, &filter).await?);
            merge_daily(&mut old, new);
            Some(old)
        }
    };
    if let Some(rows) = summed {
        tx.execute(
            "DELETE FROM eta_accuracy_daily WHERE tenant_id = $1 AND day = $2",
            &[&tenant.as_str(), &text],
        )
        .await?;
        let insert = tx
            .prepare(
                "INSERT INTO eta_accuracy_daily (tenant_id, day, horizon_bucket, stop_kind, \
                 customer, vehicle_id, lane, n, traces, sum_abs_error_s, sum_error_s, \
                 sum_sq_error_s, covered, baseline_n, baseline_sum_abs_error_s, \
                 abs_error_sketch, width_sketch) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17)",
            )
            .await?;
        for d in rows {
            let (abs_errors, widths) = sketch_bytes(&d);
            tx.execute(
                &insert,
                &[
                    &tenant.as_str(),
                    &d.day,
                    &(d.horizon_bucket as i64),
                    &d.stop_kind,
                    &d.customer,
                    &d.vehicle_id.unwrap_or_default(),
                    &d.lane.unwrap_or_default(),
                    &(d.n as i64),
                    &(d.traces as i64),
                    &d.sum_abs_error_s,
                    &d.sum_error_s,
                    &d.sum_sq_error_s,
                    &(d.covered as i64),
                    &(d.baseline_n as i64),
                    &d.baseline_sum_abs_error_s,
                    &abs_errors,
                    &widths,
                ],
            )
            .await?;
        }
    }
    let delete_raw = deletes_raw(work, day, keep_raw_from);
    let deleted = if delete_raw {
        tx.execute(
            "DELETE FROM eta_predictions WHERE tenant_id = $1 AND predicted_at >= $2 \
             AND predicted_at < $3",
            &[&tenant.as_str(), &ts(filter.from), &ts(filter.to)],
        )
        .await?
    } else {
        0
    };
    tx.execute(
        "INSERT INTO eta_accuracy_days (tenant_id, day, raw_kept, stale) \
         VALUES ($1, $2, $3, FALSE) \
         ON CONFLICT (tenant_id, day) DO UPDATE SET raw_kept = excluded.raw_kept, stale = FALSE",
        &[&tenant.as_str(), &text, &!delete_raw],
    )
    .await?;
    Ok(deleted)
}

/// One summary pass (see the module's paragraphs): a transaction per
/// tenant-day, each deciding and working under the summary lock.
pub(super) async fn summarize(
    client: &mut tokio_postgres::Client,
    now: DateTime<Utc>,
    retention_days: Option<u32>,
) -> Result<SummaryPass> {
    let today = day_start(now);
    let keep = keep_raw_from(today, retention_days);
    let tenants: Vec<TenantId> = client
        .query("SELECT id FROM tenants ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.try_get(0).map(TenantId))
        .collect::<std::result::Result<_, _>>()?;
    let mut pass = SummaryPass::default();
    for tenant in tenants {
        let mut from = None;
        loop {
            let tx = client.transaction().await?;
            tx.batch_execute("LOCK TABLE eta_predictions IN SHARE ROW EXCLUSIVE MODE")
                .await?;
            let Some((day, work)) = next_work(&tx, &tenant, from, today, keep).await? else {
                tx.commit().await?;
                break;
            };
            pass.raw_deleted += do_work(&tx, &tenant, day, work, keep).await?;
            tx.commit().await?;
            if work != DayWork::Prune {
                pass.days_summed += 1;
            }
            from = Some(day + Duration::days(1));
        }
    }
    Ok(pass)
}

/// One tenant-day's aggregates, filtered as the query asks.
async fn read_daily<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    day: &str,
    f: &AnalyticsFilter,
) -> Result<Vec<DailyAccuracy>> {
    let rows = c
        .query(
            "SELECT day, horizon_bucket, stop_kind, customer, vehicle_id, lane, n, traces, \
                    sum_abs_error_s, sum_error_s, sum_sq_error_s, covered, baseline_n, \
                    baseline_sum_abs_error_s, abs_error_sketch, width_sketch \
             FROM eta_accuracy_daily \
             WHERE tenant_id = $1 AND day = $2 \
               AND ($3::TEXT IS NULL OR customer = $3) \
               AND ($4::TEXT IS NULL OR vehicle_id = $4) \
               AND ($5::TEXT IS NULL OR stop_kind = $5) \
             ORDER BY horizon_bucket, stop_kind, customer, vehicle_id, lane",
            &[
                &tenant.as_str(),
                &day,
                &f.customer,
                &f.vehicle_id,
                &f.stop_kind,
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DailyAccuracy {
                day: r.try_get(0)?,
                horizon_bucket: r.try_get::<_, i64>(1)?.max(0) as usize,
                stop_kind: r.try_get(2)?,
                customer: r.try_get(3)?,
                vehicle_id: key_of(r.try_get(4)?),
                lane: key_of(r.try_get(5)?),
                n: count(r.try_get(6)?),
                traces: count(r.try_get(7)?),
                sum_abs_error_s: r.try_get(8)?,
                sum_error_s: r.try_get(9)?,
                sum_sq_error_s: r.try_get(10)?,
                covered: count(r.try_get(11)?),
                baseline_n: count(r.try_get(12)?),
                baseline_sum_abs_error_s: r.try_get(13)?,
                sketches: sketches(r.try_get(14)?, r.try_get(15)?, day)?,
            })
        })
        .collect()
}

/// The rows one accuracy query reads, planned by
/// `analytics_rules::plan_reads`; `c` is one snapshot.
pub(super) async fn accuracy_inputs<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    f: &AnalyticsFilter,
    aggregates: bool,
) -> Result<AccuracyInputs> {
    let rows = c
        .query(
            "SELECT day, raw_kept, stale FROM eta_accuracy_days \
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
            &[&tenant.as_str(), &day_text(f.from), &day_text(f.to)],
        )
        .await?;
    let days = rows
        .iter()
        .map(|r| {
            let state = DayState {
                raw_kept: r.try_get(1)?,
                stale: r.try_get(2)?,
            };
            Ok((parse_day(r.try_get(0)?)?, state))
        })
        .collect::<Result<Vec<_>>>()?;
    let plan = plan_reads(f, aggregates, &days);
    let mut inputs = AccuracyInputs::default();
    for start in plan.daily_days {
        inputs
            .daily
            .extend(read_daily(c, tenant, &day_text(start), f).await?);
    }
    for piece in plan.raw_pieces {
        inputs
            .raw
            .extend(evaluated_predictions(c, tenant, &piece).await?);
    }
    Ok(inputs)
}
