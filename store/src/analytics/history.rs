//! The ETA history a customer sees: every ETA logged for one stop, thinned to
//! at most one point per [`HISTORY_STEP_S`] (the last of each step, so the
//! newest ETA is always the last point).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// At most one point per this many seconds.
pub const HISTORY_STEP_S: i64 = 300;

/// One ETA as it stood at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtaPoint {
    pub at: DateTime<Utc>,
    pub eta: DateTime<Utc>,
    pub p10: DateTime<Utc>,
    pub p90: DateTime<Utc>,
}

/// `points` in time order, keeping the last point of each `step_s` slot
/// (slots counted from the first point).
pub fn thin_history(points: &[EtaPoint], step_s: i64) -> Vec<EtaPoint> {
    let Some(first) = points.first() else {
        return Vec::new();
    };
    let slot = |p: &EtaPoint| (p.at - first.at).num_seconds().div_euclid(step_s.max(1));
    let mut out: Vec<EtaPoint> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let last_of_slot = points.get(i + 1).is_none_or(|next| slot(next) != slot(p));
        if last_of_slot {
            out.push(p.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_eta_every_ten_seconds_for_an_hour_thins_to_one_per_five_minutes() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .expect("t");
        let points: Vec<EtaPoint> = (0..360)
            .map(|i| {
                let at = t0 + chrono::Duration::seconds(10 * i);
                let eta = t0 + chrono::Duration::hours(2) + chrono::Duration::seconds(i);
                EtaPoint {
                    at,
                    eta,
                    p10: eta,
                    p90: eta,
                }
            })
            .collect();
        let thinned = thin_history(&points, HISTORY_STEP_S);
        assert_eq!(thinned.len(), 12);
        assert_eq!(thinned.last(), points.last(), "the newest ETA is kept");
        for pair in thinned.windows(2) {
            assert!((pair[1].at - pair[0].at).num_seconds() >= HISTORY_STEP_S - 10);
        }
    }
}
