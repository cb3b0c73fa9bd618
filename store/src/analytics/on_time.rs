//! On-time performance with no I/O: stops reached (with an appointment
//! window) in, per group the share reached inside the window. Early counts as
//! not on time: a truck at the dock before it opens waits, and the customer's
//! schedule was still missed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use road_graph::{LatLon, Resolution};
use serde::Serialize;

use super::accuracy::lane_key;

/// A stop reached that had an appointment window.
#[derive(Debug, Clone, PartialEq)]
pub struct StopVisit {
    pub order_id: String,
    pub stop_index: u32,
    pub stop_kind: String,
    pub customer: String,
    pub vehicle_id: Option<String>,
    pub lane_ends: Option<(LatLon, LatLon)>,
    pub arrived_at: DateTime<Utc>,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
}

/// What on-time rates are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeBy {
    Customer,
    Lane(Resolution),
    /// The UTC day of the arrival.
    Day,
}

/// One group's on-time performance.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OnTimeGroup {
    pub key: String,
    /// Stops reached with a window.
    pub n: u64,
    pub on_time: u64,
    pub early: u64,
    pub late: u64,
    /// `on_time / n`.
    pub on_time_rate: f64,
}

/// On-time performance per group, keys in order.
pub fn on_time_groups<'a>(
    visits: impl IntoIterator<Item = &'a StopVisit>,
    by: OnTimeBy,
) -> Vec<OnTimeGroup> {
    let mut groups: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for v in visits {
        let key = match by {
            OnTimeBy::Customer => Some(v.customer.clone()),
            OnTimeBy::Lane(res) => v.lane_ends.and_then(|(a, b)| lane_key(a, b, res)),
            OnTimeBy::Day => Some(v.arrived_at.format("%Y-%m-%d").to_string()),
        };
        let Some(key) = key else { continue };
        let entry = groups.entry(key).or_default();
        if v.arrived_at < v.window_from {
            entry.1 += 1;
        } else if v.arrived_at > v.window_to {
            entry.2 += 1;
        } else {
            entry.0 += 1;
        }
    }
    groups
        .into_iter()
        .map(|(key, (on_time, early, late))| {
            let n = on_time + early + late;
            OnTimeGroup {
                key,
                n,
                on_time,
                early,
                late,
                on_time_rate: (on_time as f64 / n as f64 * 1000.0).round() / 1000.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn visit(customer: &str, arrived_min: i64) -> StopVisit {
        let t0 = Utc
            .with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .expect("time");
        let min = |m| t0 + chrono::Duration::minutes(m);
        StopVisit {
            order_id: format!("o-{customer}-{arrived_min}"),
            stop_index: 1,
            stop_kind: "delivery".into(),
            customer: customer.into(),
            vehicle_id: None,
            lane_ends: None,
            arrived_at: min(arrived_min),
            window_from: min(0),
            window_to: min(60),
        }
    }

    #[test]
    fn early_and_late_both_miss_the_window_and_its_ends_are_inside() {
        let visits = [
            visit("Acme", -5),
            visit("Acme", 0),
            visit("Acme", 60),
            visit("Acme", 61),
            visit("Beta", 30),
        ];
        let groups = on_time_groups(&visits, OnTimeBy::Customer);
        assert_eq!(groups.len(), 2);
        let acme = &groups[0];
        assert_eq!((acme.n, acme.on_time, acme.early, acme.late), (4, 2, 1, 1));
        assert_eq!(acme.on_time_rate, 0.5);
        assert_eq!(groups[1].on_time_rate, 1.0);
        // Lanes need both ends: stops without them are left out, not guessed.
        let res = road_graph::h3_resolution(5).expect("resolution");
        assert!(on_time_groups(&visits, OnTimeBy::Lane(res)).is_empty());
    }
}
