//! The analytics side of the store: the [`AnalyticsStore`] trait, and its
//! SQLite queries finding the evaluated predictions and reached stops of a
//! tenant's range (the grouping is `crate::analytics`, pure), counting
//! tracking-page views, and the ETA history of one stop. What both backends
//! decide alike (lane ends, export columns, view figures, which days are
//! read summed) is `analytics_rules`; PostgreSQL's queries are
//! `postgres/analytics.rs`.
//!
//! **Cost.** A tenant's predictions are one range of the index
//! `eta_predictions_tenant_time (tenant_id, predicted_at)`; the query then
//! reads each evaluated row of the range once (joined to its order and stop
//! by primary key) and the aggregation sorts each group's errors for the
//! median and p90: O(r log r) in the rows r of the range, independent of the
//! rest of the table. The prediction table is the query's outer loop on
//! purpose (`CROSS JOIN` fixes the order in SQLite), so a filter on customer
//! or vehicle never makes the planner walk orders first. Reached stops are
//! found by `stops_arrived (arrived_at)`.
//!
//! **Daily aggregates and retention** are `daily.rs`: whole days are
//! summed as soon as they are over, so long ranges read aggregates, and
//! past `serve --prediction-retention-days` only the aggregates stay.

use chrono::{DateTime, Utc};
use engine::OrderId;
use road_graph::LatLon;
use rusqlite::{Connection, OptionalExtension, params};

use super::analytics_rules::{
    self, DayWork, LaneCache, ViewCounts, export_columns, export_select, view_split,
};
use super::daily::{self, AccuracyInputs, SummaryPass, read_accuracy_inputs};
use super::rows::{parse_ts, ts};
use super::{SqliteStore, StoreFuture};
use crate::analytics::{
    AnalyticsFilter, Cell, ColumnType, EtaPoint, EvaluatedPrediction, ExportKind, ExportTable,
    OrderViews, PageView, StopVisit, ViewsSummary,
};
use crate::error::{Error, Result};
use crate::model::TenantId;

/// How a range of predictions is read: through the tenant-and-time index (what
/// the API does), or by a scan of the whole log (the baseline the bench
/// measures the index against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionScan {
    Indexed,
    FullScan,
}

/// The analytics queries and view counts, when the backend keeps them.
pub trait AnalyticsStore: Send + Sync {
    /// What the tenant's accuracy query over the filter reads: raw
    /// predictions (stop reached) and daily aggregates, no prediction in
    /// both (`daily.rs`). `aggregates` false reads raw rows for every
    /// day that still has them ([`super::daily::aggregates_serve`]).
    fn accuracy_inputs(
        &self,
        tenant: TenantId,
        filter: AnalyticsFilter,
        aggregates: bool,
    ) -> StoreFuture<'_, AccuracyInputs>;
    /// The tenant's stops reached in the range that had a window.
    fn stop_visits(
        &self,
        tenant: TenantId,
        filter: AnalyticsFilter,
    ) -> StoreFuture<'_, Vec<StopVisit>>;
    /// One summary pass over every tenant's days before the day of `now`:
    /// sums each day not summed yet or stale into the daily aggregates and,
    /// with a retention, deletes the raw rows of summed days older than
    /// `retention_days` (those never evaluated too). A tenant-day per write.
    fn summarize_days(
        &self,
        now: DateTime<Utc>,
        retention_days: Option<u32>,
    ) -> StoreFuture<'_, SummaryPass>;
    /// A table for `tracker export`, every tenant's rows in the range
    /// (`tenant_id` is a column), oldest first.
    fn export_table(
        &self,
        kind: ExportKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreFuture<'_, ExportTable>;
    /// Keeps a staff session (by its token's hash) for an API key.
    fn create_staff_session(
        &self,
        token_hash: String,
        api_key_id: String,
        expires_at: DateTime<Utc>,
    ) -> StoreFuture<'_, ()>;
    /// The tenant and key of a live staff session (not expired, key not
    /// revoked).
    fn staff_session(
        &self,
        token_hash: String,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, Option<(crate::model::Tenant, crate::model::ApiKey)>>;
    /// Ends a staff session (and drops every expired one).
    fn end_staff_session(&self, token_hash: String, now: DateTime<Utc>) -> StoreFuture<'_, ()>;
    /// Counts one tracking-page load.
    fn record_view(&self, view: PageView) -> StoreFuture<'_, ()>;
    /// The views of one of the tenant's orders ([`Error::NotFound`] for
    /// another tenant's).
    fn order_views(&self, tenant: TenantId, order: OrderId) -> StoreFuture<'_, OrderViews>;
    /// Viewed shipments among the tenant's orders created in the range.
    fn views_summary(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreFuture<'_, ViewsSummary>;
}

/// The evaluated predictions of `tenant` in `filter`, read as `scan` says.
pub fn read_evaluated_predictions(
    c: &Connection,
    tenant: &TenantId,
    filter: &AnalyticsFilter,
    scan: PredictionScan,
) -> Result<Vec<EvaluatedPrediction>> {
    let source = match scan {
        PredictionScan::Indexed => "eta_predictions p INDEXED BY eta_predictions_tenant_time",
        PredictionScan::FullScan => "eta_predictions p NOT INDEXED",
    };
    let sql = format!(
        "SELECT p.order_id, p.stop_idx, p.predicted_at, p.eta, p.p10, p.p90, p.free_flow_eta, \
                p.actual_arrival, s.kind, o.customer_name, o.vehicle_id \
         FROM {source} \
         CROSS JOIN orders o ON o.id = p.order_id \
         CROSS JOIN stops s ON s.order_id = p.order_id AND s.idx = p.stop_idx \
         WHERE p.tenant_id = ?1 AND p.predicted_at >= ?2 AND p.predicted_at < ?3 \
           AND p.actual_arrival IS NOT NULL \
           AND (?4 IS NULL OR o.customer_name = ?4) \
           AND (?5 IS NULL OR o.vehicle_id = ?5) \
           AND (?6 IS NULL OR s.kind = ?6)"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        tenant.as_str(),
        ts(filter.from),
        ts(filter.to),
        filter.customer,
        filter.vehicle_id,
        filter.stop_kind,
    ])?;
    let mut lanes = LaneCache::default();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let order_id: String = r.get(0)?;
        let free_flow: Option<String> = r.get(6)?;
        let lane_ends = read_lane_ends(&mut lanes, c, &order_id)?;
        out.push(EvaluatedPrediction {
            stop_index: r.get(1)?,
            predicted_at: parse_ts(&r.get::<_, String>(2)?)?,
            eta: parse_ts(&r.get::<_, String>(3)?)?,
            p10: parse_ts(&r.get::<_, String>(4)?)?,
            p90: parse_ts(&r.get::<_, String>(5)?)?,
            free_flow_eta: free_flow.as_deref().map(parse_ts).transpose()?,
            actual_arrival: parse_ts(&r.get::<_, String>(7)?)?,
            stop_kind: r.get(8)?,
            customer: r.get(9)?,
            vehicle_id: r.get(10)?,
            lane_ends,
            order_id,
        });
    }
    Ok(out)
}

/// What follows an export's `SELECT` list on SQLite: its tables and range.
fn export_from(kind: ExportKind) -> &'static str {
    match kind {
        ExportKind::Predictions => {
            "FROM eta_predictions p \
             CROSS JOIN orders o ON o.id = p.order_id \
             CROSS JOIN stops s ON s.order_id = p.order_id AND s.idx = p.stop_idx \
             WHERE p.predicted_at >= ?1 AND p.predicted_at < ?2 ORDER BY p.predicted_at, p.id"
        }
        ExportKind::Arrivals => {
            "FROM stops s INDEXED BY stops_arrived CROSS JOIN orders o ON o.id = s.order_id \
             WHERE s.arrived_at >= ?1 AND s.arrived_at < ?2 ORDER BY s.arrived_at"
        }
        ExportKind::Orders => {
            "FROM orders o WHERE o.created_at >= ?1 AND o.created_at < ?2 ORDER BY o.created_at"
        }
    }
}

fn export_table(
    c: &Connection,
    kind: ExportKind,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ExportTable> {
    let columns = export_columns(kind);
    let sql = format!("SELECT {} {}", export_select(columns), export_from(kind));
    let mut stmt = c.prepare(&sql)?;
    let mut rows = stmt.query(params![ts(from), ts(to)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(columns.len());
        for (i, (_, ty, _)) in columns.iter().enumerate() {
            row.push(match ty {
                ColumnType::Text => Cell::Text(r.get(i)?),
                ColumnType::Int => Cell::Int(r.get(i)?),
                ColumnType::Float => Cell::Float(r.get(i)?),
                ColumnType::Time => Cell::Time(
                    r.get::<_, Option<String>>(i)?
                        .as_deref()
                        .map(parse_ts)
                        .transpose()?,
                ),
            });
        }
        out.push(row);
    }
    Ok(ExportTable {
        columns: columns.iter().map(|(n, t, _)| (*n, *t)).collect(),
        rows: out,
    })
}

/// An order's lane ends, read once per order.
fn read_lane_ends(
    lanes: &mut LaneCache,
    c: &Connection,
    order_id: &str,
) -> Result<Option<(LatLon, LatLon)>> {
    if let Some(ends) = lanes.get(order_id) {
        return Ok(ends);
    }
    let mut stmt =
        c.prepare_cached("SELECT kind, lat, lon FROM stops WHERE order_id = ?1 ORDER BY idx")?;
    let stops = stmt
        .query_map([order_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(lanes.learn(order_id, &stops))
}

fn stop_visits(c: &Connection, tenant: &TenantId, f: &AnalyticsFilter) -> Result<Vec<StopVisit>> {
    let mut stmt = c.prepare_cached(
        "SELECT s.order_id, s.idx, s.kind, o.customer_name, o.vehicle_id, s.arrived_at, \
                s.window_from, s.window_to \
         FROM stops s INDEXED BY stops_arrived \
         CROSS JOIN orders o ON o.id = s.order_id \
         WHERE s.arrived_at >= ?2 AND s.arrived_at < ?3 AND o.tenant_id = ?1 \
           AND s.window_from IS NOT NULL AND s.window_to IS NOT NULL \
           AND (?4 IS NULL OR o.customer_name = ?4) \
           AND (?5 IS NULL OR o.vehicle_id = ?5) \
           AND (?6 IS NULL OR s.kind = ?6)",
    )?;
    let mut rows = stmt.query(params![
        tenant.as_str(),
        ts(f.from),
        ts(f.to),
        f.customer,
        f.vehicle_id,
        f.stop_kind,
    ])?;
    let mut lanes = LaneCache::default();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let order_id: String = r.get(0)?;
        out.push(StopVisit {
            stop_index: r.get(1)?,
            stop_kind: r.get(2)?,
            customer: r.get(3)?,
            vehicle_id: r.get(4)?,
            arrived_at: parse_ts(&r.get::<_, String>(5)?)?,
            window_from: parse_ts(&r.get::<_, String>(6)?)?,
            window_to: parse_ts(&r.get::<_, String>(7)?)?,
            lane_ends: read_lane_ends(&mut lanes, c, &order_id)?,
            order_id,
        });
    }
    Ok(out)
}

fn record_view(c: &Connection, view: &PageView) -> Result<()> {
    let (before, after) = view_split(view.delivered);
    c.prepare_cached(
        "INSERT INTO link_views (order_id, day, viewer_hash, views, before_delivery, \
                                 after_delivery, first_at, last_at) \
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?6) \
         ON CONFLICT (order_id, day, viewer_hash) DO UPDATE SET \
             views = views + 1, \
             before_delivery = before_delivery + excluded.before_delivery, \
             after_delivery = after_delivery + excluded.after_delivery, \
             last_at = excluded.last_at",
    )?
    .execute(params![
        view.order_id,
        view.at.format("%Y-%m-%d").to_string(),
        view.viewer_hash,
        before,
        after,
        ts(view.at),
    ])?;
    Ok(())
}

fn order_views(c: &Connection, tenant: &TenantId, order: &OrderId) -> Result<OrderViews> {
    let owned: Option<i64> = c
        .prepare_cached("SELECT 1 FROM orders WHERE id = ?1 AND tenant_id = ?2")?
        .query_row([order.as_str(), tenant.as_str()], |r| r.get(0))
        .optional()?;
    if owned.is_none() {
        return Err(Error::NotFound("order"));
    }
    let counts = c
        .prepare_cached(
            "SELECT COALESCE(SUM(views), 0), COUNT(*), MIN(first_at), MAX(last_at), \
                    COALESCE(SUM(before_delivery), 0), COALESCE(SUM(after_delivery), 0) \
             FROM link_views WHERE order_id = ?1",
        )?
        .query_row([order.as_str()], |r| {
            Ok(ViewCounts {
                views: r.get(0)?,
                viewers: r.get(1)?,
                first_at: r.get(2)?,
                last_at: r.get(3)?,
                before_delivery: r.get(4)?,
                after_delivery: r.get(5)?,
            })
        })?;
    analytics_rules::order_views(order.as_str(), counts)
}

fn views_summary(
    c: &Connection,
    tenant: &TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ViewsSummary> {
    let (shipments, viewed, views) = c
        .prepare_cached(
            "SELECT COUNT(*), COUNT(v.order_id), COALESCE(SUM(v.views), 0) \
             FROM orders o \
             LEFT JOIN (SELECT order_id, SUM(views) AS views FROM link_views GROUP BY order_id) v \
               ON v.order_id = o.id \
             WHERE o.tenant_id = ?1 AND o.created_at >= ?2 AND o.created_at < ?3",
        )?
        .query_row(params![tenant.as_str(), ts(from), ts(to)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
    Ok(analytics_rules::views_summary(
        from, to, shipments, viewed, views,
    ))
}

/// Every ETA logged for one stop, oldest first, and its actual arrival.
pub(crate) fn eta_history(
    c: &Connection,
    order: &OrderId,
    stop: u32,
) -> Result<(Vec<EtaPoint>, Option<DateTime<Utc>>)> {
    let mut stmt = c.prepare_cached(
        "SELECT predicted_at, eta, p10, p90, actual_arrival FROM eta_predictions \
         WHERE order_id = ?1 AND stop_idx = ?2 ORDER BY predicted_at",
    )?;
    let mut rows = stmt.query(params![order.as_str(), stop])?;
    let mut points = Vec::new();
    let mut actual = None;
    while let Some(r) = rows.next()? {
        points.push(EtaPoint {
            at: parse_ts(&r.get::<_, String>(0)?)?,
            eta: parse_ts(&r.get::<_, String>(1)?)?,
            p10: parse_ts(&r.get::<_, String>(2)?)?,
            p90: parse_ts(&r.get::<_, String>(3)?)?,
        });
        if let Some(t) = r.get::<_, Option<String>>(4)? {
            actual = Some(parse_ts(&t)?);
        }
    }
    Ok((points, actual))
}

impl AnalyticsStore for SqliteStore {
    fn accuracy_inputs(
        &self,
        tenant: TenantId,
        filter: AnalyticsFilter,
        aggregates: bool,
    ) -> StoreFuture<'_, AccuracyInputs> {
        Box::pin(self.read(move |c| read_accuracy_inputs(c, &tenant, &filter, aggregates)))
    }

    fn stop_visits(
        &self,
        tenant: TenantId,
        filter: AnalyticsFilter,
    ) -> StoreFuture<'_, Vec<StopVisit>> {
        Box::pin(self.read(move |c| stop_visits(c, &tenant, &filter)))
    }

    fn summarize_days(
        &self,
        now: DateTime<Utc>,
        retention_days: Option<u32>,
    ) -> StoreFuture<'_, SummaryPass> {
        Box::pin(async move {
            let today = analytics_rules::day_start(now);
            let keep_raw_from = analytics_rules::keep_raw_from(today, retention_days);
            let mut pass = SummaryPass::default();
            for tenant in self.read(daily::tenants).await? {
                let mut from = DateTime::<Utc>::MIN_UTC;
                loop {
                    let t = tenant.clone();
                    let next = self
                        .read(move |c| daily::next_work(c, &t, from, today, keep_raw_from))
                        .await?;
                    let Some((day, work)) = next else { break };
                    let t = tenant.clone();
                    pass.raw_deleted += self
                        .write(move |c| daily::do_work(c, &t, day, work, keep_raw_from))
                        .await?;
                    if work != DayWork::Prune {
                        pass.days_summed += 1;
                    }
                    from = day + chrono::Duration::days(1);
                }
            }
            Ok(pass)
        })
    }

    fn export_table(
        &self,
        kind: ExportKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreFuture<'_, ExportTable> {
        Box::pin(self.read(move |c| export_table(c, kind, from, to)))
    }

    fn create_staff_session(
        &self,
        token_hash: String,
        api_key_id: String,
        expires_at: DateTime<Utc>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO staff_sessions (token_hash, api_key_id, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                token_hash,
                api_key_id,
                ts(Utc::now()),
                ts(expires_at)
            ])?;
            Ok(())
        }))
    }

    fn staff_session(
        &self,
        token_hash: String,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, Option<(crate::model::Tenant, crate::model::ApiKey)>> {
        Box::pin(self.read(move |c| {
            let key_hash: Option<String> = c
                .prepare_cached(
                    "SELECT k.key_hash FROM staff_sessions s JOIN api_keys k ON k.id = s.api_key_id \
                     WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                )?
                .query_row(params![token_hash, ts(now)], |r| r.get(0))
                .optional()?;
            match key_hash {
                // The key's own lookup, which refuses a revoked key.
                Some(hash) => super::rows::api_key_by_hash(c, &hash),
                None => Ok(None),
            }
        }))
    }

    fn end_staff_session(&self, token_hash: String, now: DateTime<Utc>) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| {
            c.prepare_cached(
                "DELETE FROM staff_sessions WHERE token_hash = ?1 OR expires_at <= ?2",
            )?
            .execute(params![token_hash, ts(now)])?;
            Ok(())
        }))
    }

    fn record_view(&self, view: PageView) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| record_view(c, &view)))
    }

    fn order_views(&self, tenant: TenantId, order: OrderId) -> StoreFuture<'_, OrderViews> {
        Box::pin(self.read(move |c| order_views(c, &tenant, &order)))
    }

    fn views_summary(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreFuture<'_, ViewsSummary> {
        Box::pin(self.read(move |c| views_summary(c, &tenant, from, to)))
    }
}
