//! The analytics decisions both backends share, so SQLite (`analytics.rs`,
//! `daily.rs`) and PostgreSQL (`postgres/analytics.rs`, `postgres/daily.rs`)
//! differ only in SQL and binding: what a summary pass does to a tenant-day,
//! which days a query reads from aggregates and which from raw rows, how
//! late rows merge into a day's aggregates, a lane's ends, the export
//! columns, and the page-view figures. The grouping and the math themselves
//! are `crate::analytics` (`roll_up`, sketches, export encoding).

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use road_graph::LatLon;

use crate::analytics::{
    AnalyticsFilter, ColumnType, DailyAccuracy, OrderViews, Sketch, ViewsSummary,
};
use crate::error::{Error, Result};

/// A tenant-day's entry in `eta_accuracy_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DayState {
    /// Its raw predictions are still in the log.
    pub(super) raw_kept: bool,
    /// A prediction or an arrival touched it since it was summed.
    pub(super) stale: bool,
}

/// What a pass does to one tenant-day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DayWork {
    /// Sum the day's raw rows, replacing its aggregates.
    Sum,
    /// Add the raw rows (late ones, of a day whose raw rows were deleted)
    /// to its aggregates, then delete them.
    AddAndDelete,
    /// Delete the raw rows of a summed day past the retention.
    Prune,
}

/// The text key of the UTC day of `t` (`YYYY-MM-DD`, as both schemas keep it).
pub(crate) fn day_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The start of the UTC day of `t`.
pub(crate) fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(NaiveTime::MIN).and_utc()
}

/// The start of a day kept as [`day_text`].
pub(super) fn parse_day(text: &str) -> Result<DateTime<Utc>> {
    Ok(chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| Error::store_permanent(format!("eta_accuracy_days day {text}: {e}")))?
        .and_time(NaiveTime::MIN)
        .and_utc())
}

/// Where the raw rows of a pass begin to be deleted: `retention_days`
/// before `today`.
pub(super) fn keep_raw_from(
    today: DateTime<Utc>,
    retention_days: Option<u32>,
) -> Option<DateTime<Utc>> {
    retention_days.map(|d| today - Duration::days(i64::from(d)))
}

/// What a pass does to a day holding raw predictions, given its entry
/// (`None`: never summed); `None` when the day needs nothing.
pub(super) fn work_for(
    state: Option<DayState>,
    day: DateTime<Utc>,
    keep_raw_from: Option<DateTime<Utc>>,
) -> Option<DayWork> {
    match state {
        None => Some(DayWork::Sum),
        Some(s) if !s.raw_kept => Some(DayWork::AddAndDelete),
        Some(s) if s.stale => Some(DayWork::Sum),
        Some(_) if keep_raw_from.is_some_and(|keep| day < keep) => Some(DayWork::Prune),
        Some(_) => None,
    }
}

/// Whether doing `work` on `day` deletes its raw rows.
pub(super) fn deletes_raw(
    work: DayWork,
    day: DateTime<Utc>,
    keep_raw_from: Option<DateTime<Utc>>,
) -> bool {
    work != DayWork::Sum || keep_raw_from.is_some_and(|keep| day < keep)
}

/// The whole UTC day starting at `day`, unfiltered.
pub(super) fn whole_day(day: DateTime<Utc>) -> AnalyticsFilter {
    AnalyticsFilter {
        from: day,
        to: day + Duration::days(1),
        customer: None,
        vehicle_id: None,
        stop_kind: None,
    }
}

/// Adds `new` aggregates into `old`, cell by cell; a cell that had no
/// sketch keeps none (its distribution is unknown).
pub(super) fn merge_daily(old: &mut Vec<DailyAccuracy>, new: Vec<DailyAccuracy>) {
    for n in new {
        let same = old.iter_mut().find(|o| {
            (
                &o.day,
                o.horizon_bucket,
                &o.stop_kind,
                &o.customer,
                &o.vehicle_id,
                &o.lane,
            ) == (
                &n.day,
                n.horizon_bucket,
                &n.stop_kind,
                &n.customer,
                &n.vehicle_id,
                &n.lane,
            )
        });
        let Some(o) = same else {
            old.push(n);
            continue;
        };
        o.n += n.n;
        o.traces += n.traces;
        o.sum_abs_error_s += n.sum_abs_error_s;
        o.sum_error_s += n.sum_error_s;
        o.sum_sq_error_s += n.sum_sq_error_s;
        o.covered += n.covered;
        o.baseline_n += n.baseline_n;
        o.baseline_sum_abs_error_s += n.baseline_sum_abs_error_s;
        if let (Some((oa, ow)), Some((na, nw))) = (&mut o.sketches, &n.sketches) {
            oa.merge(na);
            ow.merge(nw);
        }
    }
}

/// A stored aggregate's sketch columns, as stored (`None`: no sketch).
pub(super) fn sketch_bytes(d: &DailyAccuracy) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    match &d.sketches {
        Some((a, w)) => (Some(a.to_bytes()), Some(w.to_bytes())),
        None => (None, None),
    }
}

/// The sketches of a stored aggregate of `day`: both or none.
pub(super) fn sketches(
    abs_errors: Option<Vec<u8>>,
    widths: Option<Vec<u8>>,
    day: &str,
) -> Result<Option<(Sketch, Sketch)>> {
    let decode = |bytes: &[u8]| {
        Sketch::from_bytes(bytes).map_err(|reason| {
            Error::store_permanent(format!("eta_accuracy_daily of {day}: {reason}"))
        })
    };
    match (abs_errors, widths) {
        (Some(a), Some(w)) => Ok(Some((decode(&a)?, decode(&w)?))),
        _ => Ok(None),
    }
}

/// An aggregate key column as stored (`''` for none: keys cannot be null)
/// back into the model.
pub(super) fn key_of(stored: String) -> Option<String> {
    (!stored.is_empty()).then_some(stored)
}

/// A stored count back into the model (a negative one cannot be; read as 0).
pub(super) fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// How one accuracy query splits its range: days read from aggregates,
/// and the pieces read from raw rows. No prediction is in both.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ReadPlan {
    pub(super) daily_days: Vec<DateTime<Utc>>,
    pub(super) raw_pieces: Vec<AnalyticsFilter>,
}

/// Plans the reads of the query `f` from the entries of the days it
/// touches (in day order): a day wholly inside the range whose sum is
/// fresh is read from aggregates (when `aggregates`), a day whose raw rows
/// are gone from aggregates whenever its start is in the range; the rest of
/// the range from raw rows.
pub(super) fn plan_reads(
    f: &AnalyticsFilter,
    aggregates: bool,
    days: &[(DateTime<Utc>, DayState)],
) -> ReadPlan {
    let mut plan = ReadPlan::default();
    // The raw range is cut around each day read from aggregates alone.
    let mut raw_from = f.from;
    let piece = |from, to| AnalyticsFilter {
        from,
        to,
        ..f.clone()
    };
    for &(start, state) in days {
        let end = start + Duration::days(1);
        let (use_daily, skip_raw) = if !state.raw_kept {
            // Its raw rows are gone (but for late ones, when stale).
            (f.from <= start && start < f.to, false)
        } else {
            let whole = aggregates && !state.stale && f.from <= start && end <= f.to;
            (whole, whole)
        };
        if use_daily {
            plan.daily_days.push(start);
        }
        if skip_raw {
            if raw_from < start {
                plan.raw_pieces.push(piece(raw_from, start));
            }
            raw_from = end;
        }
    }
    if raw_from < f.to {
        plan.raw_pieces.push(piece(raw_from, f.to));
    }
    plan
}

/// Each order's lane ends (first pickup, last delivery), worked out once
/// per order from its stops.
#[derive(Debug, Default)]
pub(super) struct LaneCache(HashMap<String, Option<(LatLon, LatLon)>>);

impl LaneCache {
    /// The ends of an order already seen.
    pub(super) fn get(&self, order_id: &str) -> Option<Option<(LatLon, LatLon)>> {
        self.0.get(order_id).copied()
    }

    /// Remembers an order's ends from its stops `(kind, lat, lon)` in
    /// index order, and returns them.
    pub(super) fn learn(
        &mut self,
        order_id: &str,
        stops: &[(String, f64, f64)],
    ) -> Option<(LatLon, LatLon)> {
        let first_pickup = stops.iter().find(|s| s.0 == "pickup");
        let last_delivery = stops.iter().rev().find(|s| s.0 == "delivery");
        let ends = first_pickup
            .zip(last_delivery)
            .map(|(a, b)| (LatLon::new(a.1, a.2), LatLon::new(b.1, b.2)));
        self.0.insert(order_id.to_owned(), ends);
        ends
    }
}

/// An export column: its name, its type, and the expression that reads it
/// (the same in both dialects, over the aliases `p`, `o` and `s`).
pub(super) type ExportColumn = (&'static str, ColumnType, &'static str);

/// The columns of each export.
pub(super) fn export_columns(kind: crate::analytics::ExportKind) -> &'static [ExportColumn] {
    use crate::analytics::ExportKind;
    use ColumnType::{Float, Int, Text, Time};
    match kind {
        ExportKind::Predictions => &[
            ("tenant_id", Text, "p.tenant_id"),
            ("order_id", Text, "p.order_id"),
            ("reference", Text, "o.reference"),
            ("customer", Text, "o.customer_name"),
            ("vehicle_id", Text, "o.vehicle_id"),
            ("stop_index", Int, "p.stop_idx"),
            ("stop_kind", Text, "s.kind"),
            ("predicted_at", Time, "p.predicted_at"),
            ("eta", Time, "p.eta"),
            ("p10", Time, "p.p10"),
            ("p90", Time, "p.p90"),
            ("free_flow_eta", Time, "p.free_flow_eta"),
            ("actual_arrival", Time, "p.actual_arrival"),
            ("horizon_s", Float, "p.horizon_s"),
            ("remaining_distance_m", Float, "p.remaining_distance_m"),
            ("remaining_drive_s", Float, "p.remaining_drive_s"),
            ("reasons", Text, "p.reasons"),
        ],
        ExportKind::Arrivals => &[
            ("tenant_id", Text, "o.tenant_id"),
            ("order_id", Text, "s.order_id"),
            ("reference", Text, "o.reference"),
            ("customer", Text, "o.customer_name"),
            ("vehicle_id", Text, "o.vehicle_id"),
            ("stop_index", Int, "s.idx"),
            ("stop_kind", Text, "s.kind"),
            ("stop_name", Text, "s.name"),
            ("lat", Float, "s.lat"),
            ("lon", Float, "s.lon"),
            ("window_from", Time, "s.window_from"),
            ("window_to", Time, "s.window_to"),
            ("arrived_at", Time, "s.arrived_at"),
            ("departed_at", Time, "s.departed_at"),
        ],
        ExportKind::Orders => &[
            ("tenant_id", Text, "o.tenant_id"),
            ("order_id", Text, "o.id"),
            ("reference", Text, "o.reference"),
            ("customer", Text, "o.customer_name"),
            ("vehicle_id", Text, "o.vehicle_id"),
            ("status", Text, "o.status"),
            ("created_at", Time, "o.created_at"),
            ("updated_at", Time, "o.updated_at"),
            (
                "n_stops",
                Int,
                "(SELECT COUNT(*) FROM stops s WHERE s.order_id = o.id)",
            ),
        ],
    }
}

/// The `SELECT` list of an export's columns.
pub(super) fn export_select(columns: &[ExportColumn]) -> String {
    let exprs: Vec<&str> = columns.iter().map(|c| c.2).collect();
    exprs.join(", ")
}

/// The `before_delivery` and `after_delivery` increments of one page load.
pub(super) fn view_split(delivered: bool) -> (i64, i64) {
    if delivered { (0, 1) } else { (1, 0) }
}

/// An order's view counts as read from `link_views`.
#[derive(Debug, Clone, Default)]
pub(super) struct ViewCounts {
    pub(super) views: i64,
    pub(super) viewers: i64,
    pub(super) first_at: Option<String>,
    pub(super) last_at: Option<String>,
    pub(super) before_delivery: i64,
    pub(super) after_delivery: i64,
}

/// The answer of `GET /orders/{id}/views` from the order's counts.
pub(super) fn order_views(order_id: &str, c: ViewCounts) -> Result<OrderViews> {
    let rfc = |t: Option<String>| -> Result<Option<String>> {
        Ok(super::records::parse_opt_ts(t)?.map(crate::model::rfc3339))
    };
    Ok(OrderViews {
        order_id: order_id.to_owned(),
        views: count(c.views),
        unique_viewers: count(c.viewers),
        first_view_at: rfc(c.first_at)?,
        last_view_at: rfc(c.last_at)?,
        views_before_delivery: count(c.before_delivery),
        views_after_delivery: count(c.after_delivery),
    })
}

/// The views summary of a range from its counts: orders created in it,
/// those viewed, and their views.
pub(super) fn views_summary(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    shipments: i64,
    viewed: i64,
    views: i64,
) -> ViewsSummary {
    let shipments = count(shipments);
    let viewed = count(viewed);
    ViewsSummary {
        from: crate::model::rfc3339(from),
        to: crate::model::rfc3339(to),
        shipments,
        viewed,
        viewed_share: if shipments == 0 {
            0.0
        } else {
            (viewed as f64 / shipments as f64 * 1000.0).round() / 1000.0
        },
        views: count(views),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0)
            .single()
            .expect("a valid day")
    }

    fn fresh() -> DayState {
        DayState {
            raw_kept: true,
            stale: false,
        }
    }

    #[test]
    fn a_pass_sums_new_and_stale_days_and_prunes_past_the_retention() {
        let keep = Some(day(5));
        assert_eq!(work_for(None, day(2), keep), Some(DayWork::Sum));
        let stale = DayState {
            stale: true,
            ..fresh()
        };
        assert_eq!(work_for(Some(stale), day(6), keep), Some(DayWork::Sum));
        assert_eq!(work_for(Some(fresh()), day(6), keep), None);
        assert_eq!(work_for(Some(fresh()), day(2), keep), Some(DayWork::Prune));
        let pruned = DayState {
            raw_kept: false,
            stale: false,
        };
        assert_eq!(
            work_for(Some(pruned), day(2), keep),
            Some(DayWork::AddAndDelete)
        );
        assert!(deletes_raw(DayWork::Sum, day(2), keep));
        assert!(!deletes_raw(DayWork::Sum, day(6), keep));
    }

    #[test]
    fn a_query_reads_whole_fresh_days_from_aggregates_and_the_ends_raw() {
        let f = AnalyticsFilter {
            from: day(2) + Duration::hours(12),
            to: day(5) + Duration::hours(6),
            customer: Some("Ribeira Foods".into()),
            vehicle_id: None,
            stop_kind: None,
        };
        let stale = DayState {
            stale: true,
            ..fresh()
        };
        let days = [(day(2), fresh()), (day(3), fresh()), (day(4), stale)];
        let plan = plan_reads(&f, true, &days);
        assert_eq!(plan.daily_days, vec![day(3)]);
        let pieces: Vec<_> = plan.raw_pieces.iter().map(|p| (p.from, p.to)).collect();
        assert_eq!(pieces, vec![(f.from, day(3)), (day(4), f.to)]);
        assert!(plan.raw_pieces.iter().all(|p| p.customer == f.customer));

        let raw_only = plan_reads(&f, false, &days);
        assert!(raw_only.daily_days.is_empty());
        assert_eq!(raw_only.raw_pieces.len(), 1);
    }

    #[test]
    fn a_lane_runs_from_the_first_pickup_to_the_last_delivery() {
        let mut lanes = LaneCache::default();
        let stops = [
            ("pickup".to_owned(), 41.18, -8.6),
            ("delivery".to_owned(), 41.15, -8.6),
            ("delivery".to_owned(), 41.13, -8.6),
        ];
        let ends = lanes.learn("o1", &stops).expect("a lane");
        assert_eq!(ends.0.lat, 41.18);
        assert_eq!(ends.1.lat, 41.13);
        assert_eq!(lanes.get("o1"), Some(Some(ends)));
        assert_eq!(lanes.learn("o2", &stops[1..]), None);
    }
}
