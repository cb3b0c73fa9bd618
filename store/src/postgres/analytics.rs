//! The analytics side of the store on PostgreSQL: the [`AnalyticsStore`]
//! half of the backend (evaluated predictions, reached stops, exports,
//! staff sessions, tracking-page views); the daily aggregates and the
//! summary pass are `daily.rs`. Only SQL and binding are here: which days
//! are read how, lane ends, export columns and view figures are
//! `store::analytics_rules`, the same functions SQLite calls, and the math
//! is `crate::analytics`.
//!
//! **Cost.** As on SQLite, a tenant's predictions are one range of
//! `eta_predictions_tenant_time (tenant_id, predicted_at)`, joined to their
//! order and stop by primary key; reached stops come through
//! `stops_arrived (arrived_at)`. The lane ends of the orders met are read
//! in one query per scan (`order_id = ANY($1)`), not one per order. An
//! export streams its rows from the server (`query_raw`) into the table
//! instead of holding the driver's rows and the table at once.

use chrono::{DateTime, Utc};
use engine::OrderId;
use futures::{TryStreamExt, pin_mut};
use road_graph::LatLon;
use tokio_postgres::{GenericClient, IsolationLevel, Row};

use super::reads::{self, index_of};
use super::{PostgresStore, daily};
use crate::analytics::{
    AnalyticsFilter, Cell, ColumnType, EvaluatedPrediction, ExportKind, ExportTable, OrderViews,
    PageView, StopVisit, ViewsSummary,
};
use crate::analytics_rules::{
    self, LaneCache, ViewCounts, export_columns, export_select, view_split,
};
use crate::error::{Error, Result};
use crate::model::{ApiKey, Tenant, TenantId};
use crate::records::{parse_opt_ts, parse_ts, ts};
use crate::{AccuracyInputs, AnalyticsStore, StoreFuture, SummaryPass};

/// The filter's optional conditions, over the aliases `o` and `s`, on the
/// parameters `$4` to `$6` (typed, as a null says nothing of its type).
const FILTERS: &str = "AND ($4::TEXT IS NULL OR o.customer_name = $4) \
                       AND ($5::TEXT IS NULL OR o.vehicle_id = $5) \
                       AND ($6::TEXT IS NULL OR s.kind = $6)";

/// Learns the lane ends of every order of `orders` not seen yet, in one
/// query.
async fn learn_lanes<C: GenericClient + Sync>(
    c: &C,
    lanes: &mut LaneCache,
    orders: &[&str],
) -> Result<()> {
    let mut unseen: Vec<&str> = orders
        .iter()
        .copied()
        .filter(|o| lanes.get(o).is_none())
        .collect();
    unseen.sort_unstable();
    unseen.dedup();
    if unseen.is_empty() {
        return Ok(());
    }
    let rows = c
        .query(
            "SELECT order_id, kind, lat, lon FROM stops WHERE order_id = ANY($1) \
             ORDER BY order_id, idx",
            &[&unseen],
        )
        .await?;
    let mut stops: Vec<(String, f64, f64)> = Vec::new();
    let mut current: Option<String> = None;
    for r in &rows {
        let order: String = r.try_get(0)?;
        if current.as_deref() != Some(order.as_str()) {
            if let Some(done) = current.take() {
                lanes.learn(&done, &stops);
            }
            stops.clear();
            current = Some(order);
        }
        stops.push((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
    }
    if let Some(done) = current {
        lanes.learn(&done, &stops);
    }
    // An order without stops has no lane (and is not asked again).
    for order in unseen {
        if lanes.get(order).is_none() {
            lanes.learn(order, &[]);
        }
    }
    Ok(())
}

/// The lane ends of an order [`learn_lanes`] has seen.
fn lane_of(lanes: &LaneCache, order_id: &str) -> Option<(LatLon, LatLon)> {
    lanes.get(order_id).flatten()
}

/// Runs an analytics query of `tenant` in `f` (its `$1`…`$6` are the tenant,
/// the range and the [`FILTERS`]; its first column the order id) and learns
/// the lanes of the orders it returns.
async fn filtered_with_lanes<C: GenericClient + Sync>(
    c: &C,
    sql: &str,
    tenant: &TenantId,
    f: &AnalyticsFilter,
) -> Result<(Vec<tokio_postgres::Row>, LaneCache)> {
    let rows = c
        .query(
            sql,
            &[
                &tenant.as_str(),
                &ts(f.from),
                &ts(f.to),
                &f.customer,
                &f.vehicle_id,
                &f.stop_kind,
            ],
        )
        .await?;
    let mut lanes = LaneCache::default();
    let orders: Vec<&str> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    learn_lanes(c, &mut lanes, &orders).await?;
    Ok((rows, lanes))
}

/// The evaluated predictions of `tenant` in `f` (stop reached), oldest
/// first, through the tenant-and-time index.
pub(super) async fn evaluated_predictions<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    f: &AnalyticsFilter,
) -> Result<Vec<EvaluatedPrediction>> {
    let sql = format!(
        "SELECT p.order_id, p.stop_idx, p.predicted_at, p.eta, p.p10, p.p90, p.free_flow_eta, \
                p.actual_arrival, s.kind, o.customer_name, o.vehicle_id \
         FROM eta_predictions p \
         JOIN orders o ON o.id = p.order_id \
         JOIN stops s ON s.order_id = p.order_id AND s.idx = p.stop_idx \
         WHERE p.tenant_id = $1 AND p.predicted_at >= $2 AND p.predicted_at < $3 \
           AND p.actual_arrival IS NOT NULL {FILTERS} \
         ORDER BY p.predicted_at, p.id"
    );
    let (rows, lanes) = filtered_with_lanes(c, &sql, tenant, f).await?;
    rows.iter()
        .map(|r| {
            let order_id: String = r.try_get(0)?;
            Ok(EvaluatedPrediction {
                stop_index: index_of(r.try_get(1)?)?,
                predicted_at: parse_ts(r.try_get(2)?)?,
                eta: parse_ts(r.try_get(3)?)?,
                p10: parse_ts(r.try_get(4)?)?,
                p90: parse_ts(r.try_get(5)?)?,
                free_flow_eta: parse_opt_ts(r.try_get(6)?)?,
                actual_arrival: parse_ts(r.try_get(7)?)?,
                stop_kind: r.try_get(8)?,
                customer: r.try_get(9)?,
                vehicle_id: r.try_get(10)?,
                lane_ends: lane_of(&lanes, &order_id),
                order_id,
            })
        })
        .collect()
}

async fn stop_visits<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    f: &AnalyticsFilter,
) -> Result<Vec<StopVisit>> {
    let sql = format!(
        "SELECT s.order_id, s.idx, s.kind, o.customer_name, o.vehicle_id, s.arrived_at, \
                s.window_from, s.window_to \
         FROM stops s JOIN orders o ON o.id = s.order_id \
         WHERE s.arrived_at >= $2 AND s.arrived_at < $3 AND o.tenant_id = $1 \
           AND s.window_from IS NOT NULL AND s.window_to IS NOT NULL {FILTERS} \
         ORDER BY s.arrived_at, s.order_id, s.idx"
    );
    let (rows, lanes) = filtered_with_lanes(c, &sql, tenant, f).await?;
    rows.iter()
        .map(|r| {
            let order_id: String = r.try_get(0)?;
            Ok(StopVisit {
                stop_index: index_of(r.try_get(1)?)?,
                stop_kind: r.try_get(2)?,
                customer: r.try_get(3)?,
                vehicle_id: r.try_get(4)?,
                arrived_at: parse_ts(r.try_get(5)?)?,
                window_from: parse_ts(r.try_get(6)?)?,
                window_to: parse_ts(r.try_get(7)?)?,
                lane_ends: lane_of(&lanes, &order_id),
                order_id,
            })
        })
        .collect()
}

/// What follows an export's `SELECT` list on PostgreSQL: its tables and
/// range, oldest first.
fn export_from(kind: ExportKind) -> &'static str {
    match kind {
        ExportKind::Predictions => {
            "FROM eta_predictions p \
             JOIN orders o ON o.id = p.order_id \
             JOIN stops s ON s.order_id = p.order_id AND s.idx = p.stop_idx \
             WHERE p.predicted_at >= $1 AND p.predicted_at < $2 ORDER BY p.predicted_at, p.id"
        }
        ExportKind::Arrivals => {
            "FROM stops s JOIN orders o ON o.id = s.order_id \
             WHERE s.arrived_at >= $1 AND s.arrived_at < $2 \
             ORDER BY s.arrived_at, s.order_id, s.idx"
        }
        ExportKind::Orders => {
            "FROM orders o WHERE o.created_at >= $1 AND o.created_at < $2 \
             ORDER BY o.created_at, o.seq"
        }
    }
}

/// One exported row, cell by cell as the columns say.
fn export_row(r: &Row, types: &[ColumnType]) -> Result<Vec<Cell>> {
    types
        .iter()
        .enumerate()
        .map(|(i, ty)| {
            Ok(match ty {
                ColumnType::Text => Cell::Text(r.try_get(i)?),
                ColumnType::Int => Cell::Int(r.try_get(i)?),
                ColumnType::Float => Cell::Float(r.try_get(i)?),
                ColumnType::Time => Cell::Time(parse_opt_ts(r.try_get(i)?)?),
            })
        })
        .collect()
}

async fn export_table<C: GenericClient + Sync>(
    c: &C,
    kind: ExportKind,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ExportTable> {
    let columns = export_columns(kind);
    let types: Vec<ColumnType> = columns.iter().map(|c| c.1).collect();
    let sql = format!("SELECT {} {}", export_select(columns), export_from(kind));
    let stream = c.query_raw(&sql, [ts(from), ts(to)]).await?;
    pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(r) = stream.try_next().await? {
        rows.push(export_row(&r, &types)?);
    }
    Ok(ExportTable {
        columns: columns.iter().map(|(n, t, _)| (*n, *t)).collect(),
        rows,
    })
}

async fn record_view<C: GenericClient + Sync>(c: &C, view: &PageView) -> Result<()> {
    let (before, after) = view_split(view.delivered);
    c.execute(
        "INSERT INTO link_views (order_id, day, viewer_hash, views, before_delivery, \
                                 after_delivery, first_at, last_at) \
         VALUES ($1, $2, $3, 1, $4, $5, $6, $6) \
         ON CONFLICT (order_id, day, viewer_hash) DO UPDATE SET \
             views = link_views.views + 1, \
             before_delivery = link_views.before_delivery + excluded.before_delivery, \
             after_delivery = link_views.after_delivery + excluded.after_delivery, \
             last_at = excluded.last_at",
        &[
            &view.order_id,
            &analytics_rules::day_text(view.at),
            &view.viewer_hash,
            &before,
            &after,
            &ts(view.at),
        ],
    )
    .await?;
    Ok(())
}

async fn order_views<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    order: &OrderId,
) -> Result<OrderViews> {
    let owned = c
        .query_opt(
            "SELECT 1 FROM orders WHERE id = $1 AND tenant_id = $2",
            &[&order.as_str(), &tenant.as_str()],
        )
        .await?;
    if owned.is_none() {
        return Err(Error::NotFound("order"));
    }
    let r = c
        .query_one(
            "SELECT COALESCE(SUM(views), 0)::BIGINT, COUNT(*), MIN(first_at), MAX(last_at), \
                    COALESCE(SUM(before_delivery), 0)::BIGINT, \
                    COALESCE(SUM(after_delivery), 0)::BIGINT \
             FROM link_views WHERE order_id = $1",
            &[&order.as_str()],
        )
        .await?;
    let counts = ViewCounts {
        views: r.try_get(0)?,
        viewers: r.try_get(1)?,
        first_at: r.try_get(2)?,
        last_at: r.try_get(3)?,
        before_delivery: r.try_get(4)?,
        after_delivery: r.try_get(5)?,
    };
    analytics_rules::order_views(order.as_str(), counts)
}

async fn views_summary<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ViewsSummary> {
    let r = c
        .query_one(
            "SELECT COUNT(*), COUNT(v.order_id), COALESCE(SUM(v.views), 0)::BIGINT \
             FROM orders o \
             LEFT JOIN (SELECT order_id, SUM(views) AS views FROM link_views GROUP BY order_id) v \
               ON v.order_id = o.id \
             WHERE o.tenant_id = $1 AND o.created_at >= $2 AND o.created_at < $3",
            &[&tenant.as_str(), &ts(from), &ts(to)],
        )
        .await?;
    Ok(analytics_rules::views_summary(
        from,
        to,
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
    ))
}

async fn staff_session<C: GenericClient + Sync>(
    c: &C,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Tenant, ApiKey)>> {
    let key = c
        .query_opt(
            "SELECT k.key_hash FROM staff_sessions s JOIN api_keys k ON k.id = s.api_key_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
            &[&token_hash, &ts(now)],
        )
        .await?;
    match key {
        // The key's own lookup, which refuses a revoked key.
        Some(r) => reads::api_key_by_hash(c, r.try_get(0)?).await,
        None => Ok(None),
    }
}

impl AnalyticsStore for PostgresStore {
    fn accuracy_inputs(
        &self,
        tenant: TenantId,
        filter: AnalyticsFilter,
        aggregates: bool,
    ) -> StoreFuture<'_, AccuracyInputs> {
        Box::pin(async move {
            let mut client = self.client().await?;
            // One snapshot: a summary pass committing meanwhile cannot make a
            // day count twice (raw and summed) or not at all.
            let tx = tokio_postgres::Client::build_transaction(&mut client)
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let inputs = daily::accuracy_inputs(&tx, &tenant, &filter, aggregates).await?;
            tx.commit().await?;
            Ok(inputs)
        })
    }

    fn stop_visits(
        &self,
        tenant: TenantId,
        filter: AnalyticsFilter,
    ) -> StoreFuture<'_, Vec<StopVisit>> {
        on_client!(self, |c| stop_visits(c, &tenant, &filter).await?)
    }

    fn summarize_days(
        &self,
        now: DateTime<Utc>,
        retention_days: Option<u32>,
    ) -> StoreFuture<'_, SummaryPass> {
        Box::pin(async move {
            let mut client = self.client().await?;
            daily::summarize(&mut client, now, retention_days).await
        })
    }

    fn export_table(
        &self,
        kind: ExportKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreFuture<'_, ExportTable> {
        on_client!(self, |c| export_table(c, kind, from, to).await?)
    }

    fn create_staff_session(
        &self,
        token_hash: String,
        api_key_id: String,
        expires_at: DateTime<Utc>,
    ) -> StoreFuture<'_, ()> {
        on_client!(self, |c| {
            c.execute(
                "INSERT INTO staff_sessions (token_hash, api_key_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
                &[&token_hash, &api_key_id, &ts(Utc::now()), &ts(expires_at)],
            )
            .await?;
        })
    }

    fn staff_session(
        &self,
        token_hash: String,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, Option<(Tenant, ApiKey)>> {
        on_client!(self, |c| staff_session(c, &token_hash, now).await?)
    }

    fn end_staff_session(&self, token_hash: String, now: DateTime<Utc>) -> StoreFuture<'_, ()> {
        on_client!(self, |c| {
            c.execute(
                "DELETE FROM staff_sessions WHERE token_hash = $1 OR expires_at <= $2",
                &[&token_hash, &ts(now)],
            )
            .await?;
        })
    }

    fn record_view(&self, view: PageView) -> StoreFuture<'_, ()> {
        on_client!(self, |c| record_view(c, &view).await?)
    }

    fn order_views(&self, tenant: TenantId, order: OrderId) -> StoreFuture<'_, OrderViews> {
        // One snapshot for the ownership check and the counts.
        in_tx!(self, |tx| order_views(&tx, &tenant, &order).await?)
    }

    fn views_summary(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreFuture<'_, ViewsSummary> {
        on_client!(self, |c| views_summary(c, &tenant, from, to).await?)
    }
}
