//! ETA accuracy from the prediction log, with no I/O: evaluated predictions
//! (an ETA whose stop has been reached) in, one summary per group out. The
//! store finds the rows; this module only groups and counts, so the API, the
//! bench and the tests share one definition of every figure.
//!
//! Errors are `eta − actual arrival` in seconds (positive: we said later than
//! the truck came). Medians and 90th percentiles are nearest-rank (the
//! `⌈q·n⌉`-th smallest absolute error), as `tracker eta-eval` computes them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use road_graph::{LatLon, Resolution, cell_of};
use serde::Serialize;

use super::Sketch;

/// One logged ETA whose stop has been reached, with what it is grouped by.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedPrediction {
    pub order_id: String,
    pub stop_index: u32,
    pub predicted_at: DateTime<Utc>,
    pub eta: DateTime<Utc>,
    pub p10: DateTime<Utc>,
    pub p90: DateTime<Utc>,
    /// The free-flow ETA logged with it (the baseline); `None` for ETAs that
    /// did not come from the engine's own route.
    pub free_flow_eta: Option<DateTime<Utc>>,
    pub actual_arrival: DateTime<Utc>,
    /// `pickup` or `delivery`.
    pub stop_kind: String,
    pub customer: String,
    pub vehicle_id: Option<String>,
    /// The order's first pickup and last delivery (its lane's ends).
    pub lane_ends: Option<(LatLon, LatLon)>,
}

/// What accuracy figures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The real time to go (arrival − prediction), in the buckets of
    /// `tracker eta-eval` ([`engine::HORIZONS_S`]).
    Horizon,
    StopKind,
    Customer,
    Vehicle,
    /// The H3 cells (at the given resolution) of the order's first pickup
    /// and last delivery.
    Lane(Resolution),
    /// The UTC day of the prediction.
    Day,
}

/// The accuracy of one group of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccuracyGroup {
    /// The group: a horizon range (`"300-900"`, `"604800-"`), a stop kind, a
    /// customer, a vehicle, a lane (`"CELL>CELL"`) or a day (`2026-12-06`).
    pub key: String,
    /// Predictions evaluated.
    pub n: u64,
    /// Distinct (order, stop) pairs behind them. Daily aggregates count a
    /// trace once per aggregate cell (day, horizon bucket, …), so where they
    /// contribute this is an upper bound.
    pub traces: u64,
    pub mae_s: f64,
    /// How many predictions the median, p90 and width are over: all of
    /// them, but for daily aggregates rolled up before they kept sketches
    /// (`n` minus this).
    pub quantiles_n: u64,
    /// Whether the median, p90 and width are exact (nearest rank over raw
    /// rows) or read from daily sketches (within 1 %: `super::Sketch`).
    pub quantiles_exact: bool,
    /// `None` where the group has no prediction with a distribution.
    pub median_abs_error_s: Option<f64>,
    pub p90_abs_error_s: Option<f64>,
    /// Mean signed error (positive: predicted too late).
    pub bias_s: f64,
    /// Share of actual arrivals inside the p10–p90 window (ends included).
    pub coverage: f64,
    pub median_width_s: Option<f64>,
    /// Mean absolute error of the free-flow ETA, over the predictions that
    /// logged one (`None` when none did).
    pub baseline_mae_s: Option<f64>,
    /// How many predictions the baseline figure is over.
    pub baseline_n: u64,
}

/// Running sums of one group; what the daily rollup keeps as well.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccuracySums {
    pub n: u64,
    pub sum_abs_error_s: f64,
    pub sum_error_s: f64,
    pub covered: u64,
    pub baseline_n: u64,
    pub baseline_sum_abs_error_s: f64,
    /// Distinct traces (order id, stop index) behind the raw rows.
    pub traces: BTreeSet<(String, u32)>,
    /// Traces behind the daily aggregates (per day: see [`DailyAccuracy`]).
    pub aggregated_traces: u64,
    /// Raw absolute errors and widths; empty for aggregated days.
    pub abs_errors_s: Vec<f64>,
    pub widths_s: Vec<f64>,
    /// The distributions of the daily aggregates that kept one.
    pub daily_abs_errors: Sketch,
    pub daily_widths: Sketch,
}

impl AccuracySums {
    /// Adds one raw prediction.
    pub fn push(&mut self, p: &EvaluatedPrediction) {
        let error_s = seconds(p.eta - p.actual_arrival);
        self.n += 1;
        self.sum_abs_error_s += error_s.abs();
        self.sum_error_s += error_s;
        if p.p10 <= p.actual_arrival && p.actual_arrival <= p.p90 {
            self.covered += 1;
        }
        if let Some(free) = p.free_flow_eta {
            self.baseline_n += 1;
            self.baseline_sum_abs_error_s += seconds(free - p.actual_arrival).abs();
        }
        self.traces.insert((p.order_id.clone(), p.stop_index));
        self.abs_errors_s.push(error_s.abs());
        self.widths_s.push(seconds(p.p90 - p.p10));
    }

    /// Adds one day's aggregate.
    pub fn add_daily(&mut self, d: &DailyAccuracy) {
        self.n += d.n;
        self.sum_abs_error_s += d.sum_abs_error_s;
        self.sum_error_s += d.sum_error_s;
        self.covered += d.covered;
        self.baseline_n += d.baseline_n;
        self.baseline_sum_abs_error_s += d.baseline_sum_abs_error_s;
        self.aggregated_traces += d.traces;
        if let Some((abs_errors, widths)) = &d.sketches {
            self.daily_abs_errors.merge(abs_errors);
            self.daily_widths.merge(widths);
        }
    }

    /// Median and p90 of the absolute error, median width, how many
    /// predictions they are over, and whether they are exact.
    fn quantiles(&self) -> (Option<f64>, Option<f64>, Option<f64>, u64, bool) {
        if self.daily_abs_errors.is_empty() {
            let raw = !self.abs_errors_s.is_empty();
            return (
                raw.then(|| nearest_rank(&self.abs_errors_s, 0.5)),
                raw.then(|| nearest_rank(&self.abs_errors_s, 0.9)),
                raw.then(|| nearest_rank(&self.widths_s, 0.5)),
                self.abs_errors_s.len() as u64,
                true,
            );
        }
        let mut abs_errors = self.daily_abs_errors.clone();
        let mut widths = self.daily_widths.clone();
        self.abs_errors_s.iter().for_each(|&v| abs_errors.add(v));
        self.widths_s.iter().for_each(|&v| widths.add(v));
        (
            abs_errors.quantile(0.5),
            abs_errors.quantile(0.9),
            widths.quantile(0.5),
            abs_errors.len(),
            false,
        )
    }

    /// The group's figures; `None` for an empty group.
    pub fn summary(&self, key: String) -> Option<AccuracyGroup> {
        if self.n == 0 {
            return None;
        }
        let n = self.n as f64;
        let (median, p90, width, quantiles_n, quantiles_exact) = self.quantiles();
        Some(AccuracyGroup {
            key,
            n: self.n,
            traces: self.traces.len() as u64 + self.aggregated_traces,
            quantiles_n,
            quantiles_exact,
            mae_s: round1(self.sum_abs_error_s / n),
            median_abs_error_s: median.map(round1),
            p90_abs_error_s: p90.map(round1),
            bias_s: round1(self.sum_error_s / n),
            coverage: round3(self.covered as f64 / n),
            median_width_s: width.map(round1),
            baseline_mae_s: (self.baseline_n > 0)
                .then(|| round1(self.baseline_sum_abs_error_s / self.baseline_n as f64)),
            baseline_n: self.baseline_n,
        })
    }
}

/// The group key of a prediction; `None` when it has none (a lane without
/// both ends, a vehicle-less order grouped by vehicle).
pub fn group_key(p: &EvaluatedPrediction, by: GroupBy) -> Option<String> {
    match by {
        GroupBy::Horizon => Some(horizon_key(engine::horizon_bucket(seconds(
            p.actual_arrival - p.predicted_at,
        )))),
        GroupBy::StopKind => Some(p.stop_kind.clone()),
        GroupBy::Customer => Some(p.customer.clone()),
        GroupBy::Vehicle => p.vehicle_id.clone(),
        GroupBy::Lane(res) => p.lane_ends.and_then(|(from, to)| lane_key(from, to, res)),
        GroupBy::Day => Some(p.predicted_at.format("%Y-%m-%d").to_string()),
    }
}

/// The key of a horizon bucket: `"LOWER-UPPER"` in seconds, `"LOWER-"` for
/// the open last one.
pub fn horizon_key(bucket: usize) -> String {
    match engine::horizon_bounds(bucket) {
        (lower, Some(upper)) => format!("{lower}-{upper}"),
        (lower, None) => format!("{lower}-"),
    }
}

/// A lane's key: the H3 cells of its two ends, `"FROM>TO"`.
pub fn lane_key(from: LatLon, to: LatLon, res: Resolution) -> Option<String> {
    Some(format!("{}>{}", cell_of(from, res)?, cell_of(to, res)?))
}

/// One day's sums for one (horizon bucket, stop kind, customer, vehicle,
/// lane) of a tenant: what long ranges are read from, and all that is left
/// of raw predictions past the retention.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyAccuracy {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub horizon_bucket: usize,
    pub stop_kind: String,
    pub customer: String,
    pub vehicle_id: Option<String>,
    /// The lane at [`ROLLUP_LANE_RES`] (`None` when the order had no pickup
    /// and delivery).
    pub lane: Option<String>,
    pub n: u64,
    /// Distinct traces of that day.
    pub traces: u64,
    pub sum_abs_error_s: f64,
    pub sum_error_s: f64,
    pub sum_sq_error_s: f64,
    pub covered: u64,
    pub baseline_n: u64,
    pub baseline_sum_abs_error_s: f64,
    /// The distributions of absolute errors and of window widths; `None`
    /// for aggregates rolled up before the store kept them.
    pub sketches: Option<(Sketch, Sketch)>,
}

/// The H3 resolution daily aggregates keep lanes at (the API's default):
/// grouping aggregated days by lane at another resolution leaves them out.
pub const ROLLUP_LANE_RES: u8 = 5;

/// The group key of a daily aggregate; `None` when it cannot be grouped so.
pub fn daily_group_key(d: &DailyAccuracy, by: GroupBy) -> Option<String> {
    match by {
        GroupBy::Horizon => Some(horizon_key(d.horizon_bucket)),
        GroupBy::StopKind => Some(d.stop_kind.clone()),
        GroupBy::Customer => Some(d.customer.clone()),
        GroupBy::Vehicle => d.vehicle_id.clone(),
        GroupBy::Lane(res) if u8::from(res) == ROLLUP_LANE_RES => d.lane.clone(),
        GroupBy::Lane(_) => None,
        GroupBy::Day => Some(d.day.clone()),
    }
}

/// Raw predictions and daily aggregates together, grouped.
pub fn accuracy_groups_with_daily<'a>(
    rows: impl IntoIterator<Item = &'a EvaluatedPrediction>,
    daily: &[DailyAccuracy],
    by: GroupBy,
) -> Vec<AccuracyGroup> {
    let mut groups = accuracy_sums(rows, by);
    for d in daily {
        if let Some(key) = daily_group_key(d, by) {
            groups.entry(key).or_default().add_daily(d);
        }
    }
    finish_groups(groups, by)
}

/// Sums the evaluated predictions of one tenant's day into daily aggregates
/// (the retention rollup).
pub fn roll_up(rows: &[EvaluatedPrediction]) -> Vec<DailyAccuracy> {
    type Key = (
        String,
        usize,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let res = Resolution::try_from(ROLLUP_LANE_RES).unwrap_or(Resolution::Five);
    let mut out: BTreeMap<Key, (DailyAccuracy, BTreeSet<(String, u32)>)> = BTreeMap::new();
    for p in rows {
        let key: Key = (
            p.predicted_at.format("%Y-%m-%d").to_string(),
            engine::horizon_bucket(seconds(p.actual_arrival - p.predicted_at)),
            p.stop_kind.clone(),
            p.customer.clone(),
            p.vehicle_id.clone(),
            p.lane_ends.and_then(|(a, b)| lane_key(a, b, res)),
        );
        let (d, traces) = out.entry(key.clone()).or_insert_with(|| {
            (
                DailyAccuracy {
                    day: key.0,
                    horizon_bucket: key.1,
                    stop_kind: key.2,
                    customer: key.3,
                    vehicle_id: key.4,
                    lane: key.5,
                    sketches: Some((Sketch::default(), Sketch::default())),
                    ..DailyAccuracy::default()
                },
                BTreeSet::new(),
            )
        });
        let error_s = seconds(p.eta - p.actual_arrival);
        d.n += 1;
        d.sum_abs_error_s += error_s.abs();
        d.sum_error_s += error_s;
        d.sum_sq_error_s += error_s * error_s;
        if let Some((abs_errors, widths)) = &mut d.sketches {
            abs_errors.add(error_s);
            widths.add(seconds(p.p90 - p.p10));
        }
        if p.p10 <= p.actual_arrival && p.actual_arrival <= p.p90 {
            d.covered += 1;
        }
        if let Some(free) = p.free_flow_eta {
            d.baseline_n += 1;
            d.baseline_sum_abs_error_s += seconds(free - p.actual_arrival).abs();
        }
        traces.insert((p.order_id.clone(), p.stop_index));
    }
    out.into_values()
        .map(|(mut d, traces)| {
            d.traces = traces.len() as u64;
            d
        })
        .collect()
}

/// Sums per group key, keys in order.
pub fn accuracy_sums<'a>(
    rows: impl IntoIterator<Item = &'a EvaluatedPrediction>,
    by: GroupBy,
) -> BTreeMap<String, AccuracySums> {
    let mut groups: BTreeMap<String, AccuracySums> = BTreeMap::new();
    for p in rows {
        if let Some(key) = group_key(p, by) {
            groups.entry(key).or_default().push(p);
        }
    }
    groups
}

/// The accuracy of each group of `rows`. Horizon groups come in bucket
/// order, the others in key order.
pub fn accuracy_groups<'a>(
    rows: impl IntoIterator<Item = &'a EvaluatedPrediction>,
    by: GroupBy,
) -> Vec<AccuracyGroup> {
    finish_groups(accuracy_sums(rows, by), by)
}

/// Summaries of summed groups, in the order [`accuracy_groups`] promises.
pub fn finish_groups(groups: BTreeMap<String, AccuracySums>, by: GroupBy) -> Vec<AccuracyGroup> {
    let mut out: Vec<AccuracyGroup> = groups
        .into_iter()
        .filter_map(|(key, sums)| sums.summary(key))
        .collect();
    if by == GroupBy::Horizon {
        out.sort_by(|a, b| horizon_lower(&a.key).total_cmp(&horizon_lower(&b.key)));
    }
    out
}

fn horizon_lower(key: &str) -> f64 {
    key.split('-')
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(f64::INFINITY)
}

/// The `q`-quantile by nearest rank: the `⌈q·n⌉`-th smallest value.
pub fn nearest_rank(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).max(1);
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

fn seconds(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .expect("time")
            + chrono::Duration::minutes(min)
    }

    /// A truck that arrives at minute 60; an ETA made at `made` saying
    /// `eta`, with a ±`half` window and a free-flow ETA 10 minutes early.
    fn prediction(order: &str, made: i64, eta: i64, half: i64) -> EvaluatedPrediction {
        EvaluatedPrediction {
            order_id: order.into(),
            stop_index: 1,
            predicted_at: at(made),
            eta: at(eta),
            p10: at(eta - half),
            p90: at(eta + half),
            free_flow_eta: Some(at(50)),
            actual_arrival: at(60),
            stop_kind: "delivery".into(),
            customer: "Acme".into(),
            vehicle_id: Some("truck-7".into()),
            lane_ends: Some((LatLon::new(39.29, -76.61), LatLon::new(39.95, -75.16))),
        }
    }

    #[test]
    fn a_late_prediction_far_out_and_a_close_one_fall_in_their_own_horizons() {
        // Made 2 h before arrival, 20 min late, window ±10 min: missed.
        // Made 4 min before arrival, 1 min early, window ±2 min: covered.
        let rows = [prediction("o1", -60, 80, 10), prediction("o1", 56, 59, 2)];
        let groups = accuracy_groups(&rows, GroupBy::Horizon);
        let keys: Vec<&str> = groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["0-300", "3600-7200"]);
        assert_eq!(groups[0].bias_s, -60.0);
        assert_eq!(groups[0].coverage, 1.0);
        assert_eq!(groups[1].mae_s, 1200.0);
        assert_eq!(groups[1].coverage, 0.0);
        assert_eq!(groups[1].median_width_s, Some(1200.0));
        assert_eq!(groups[1].baseline_mae_s, Some(600.0));
    }

    #[test]
    fn traces_count_order_stops_and_quantiles_are_nearest_rank() {
        let rows = [
            prediction("o1", 0, 61, 5),
            prediction("o1", 10, 62, 5),
            prediction("o2", 20, 63, 5),
            prediction("o2", 30, 70, 5),
        ];
        let all = accuracy_groups(&rows, GroupBy::Customer);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].n, 4);
        assert_eq!(all[0].traces, 2);
        // |errors| 60, 120, 180, 600: the 2nd and the 4th smallest.
        assert_eq!(all[0].median_abs_error_s, Some(120.0));
        assert_eq!(all[0].p90_abs_error_s, Some(600.0));
        assert_eq!(all[0].mae_s, 240.0);
    }

    /// Retention: a day rolled into aggregates gives the same n, MAE, bias,
    /// coverage and baseline as its raw rows did; the quantiles go and the
    /// trace count becomes an upper bound.
    #[test]
    fn a_summed_day_keeps_every_figure_and_its_quantiles_within_one_percent() {
        let rows = [
            prediction("o1", 0, 61, 5),
            prediction("o1", 10, 62, 5),
            prediction("o2", 20, 63, 1),
            prediction("o2", 30, 70, 5),
        ];
        let raw = accuracy_groups(&rows, GroupBy::StopKind);
        let daily = roll_up(&rows);
        let rolled = accuracy_groups_with_daily(&[], &daily, GroupBy::StopKind);
        assert_eq!(rolled.len(), 1);
        let (r, a) = (&raw[0], &rolled[0]);
        assert_eq!((a.n, a.mae_s, a.bias_s), (r.n, r.mae_s, r.bias_s));
        // o2's predictions sit in two horizon buckets, so two cells: the
        // aggregated trace count is an upper bound.
        assert_eq!((r.traces, a.traces), (2, 3));
        assert_eq!(
            (a.coverage, a.baseline_mae_s),
            (r.coverage, r.baseline_mae_s)
        );
        // The quantiles come from the day's sketch, within 1 %.
        assert_eq!((a.quantiles_n, a.quantiles_exact), (4, false));
        let (exact, read) = (
            r.median_abs_error_s.expect("raw median"),
            a.median_abs_error_s.expect("sketched median"),
        );
        assert!(
            (read - exact).abs() <= exact * 0.01 + 0.1,
            "{read} vs {exact}"
        );
        // Mixed: raw rows join the sketch.
        let mixed = accuracy_groups_with_daily(&rows[..1], &daily, GroupBy::StopKind);
        assert_eq!((mixed[0].n, mixed[0].quantiles_n), (5, 5));
        // An aggregate from before sketches leaves its predictions out of
        // the quantiles.
        let old: Vec<DailyAccuracy> = daily
            .iter()
            .map(|d| DailyAccuracy {
                sketches: None,
                ..d.clone()
            })
            .collect();
        let mixed = accuracy_groups_with_daily(&rows[..1], &old, GroupBy::StopKind);
        assert_eq!((mixed[0].n, mixed[0].quantiles_n), (5, 1));
        assert!(mixed[0].quantiles_exact);
        assert_eq!(mixed[0].median_abs_error_s, Some(60.0));
    }

    #[test]
    fn a_lane_is_the_pair_of_cells_and_a_coarser_resolution_merges_lanes() {
        let mut near = prediction("o2", 0, 60, 5);
        near.lane_ends = Some((LatLon::new(39.2901, -76.6101), LatLon::new(39.95, -75.16)));
        let rows = [prediction("o1", 0, 60, 5), near];
        let res = |r| road_graph::h3_resolution(r).expect("resolution");
        assert_eq!(accuracy_groups(&rows, GroupBy::Lane(res(5))).len(), 1);
        let fine = accuracy_groups(&rows, GroupBy::Lane(res(15)));
        assert_eq!(fine.len(), 2);
        assert!(fine[0].key.contains('>'));
    }
}
