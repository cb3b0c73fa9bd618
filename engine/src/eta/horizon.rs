//! The horizon buckets every accuracy report shares: `tracker eta-eval`, the
//! analytics API and the daily accuracy rollup all cut the time to go at the
//! same bounds, so their numbers line up bucket for bucket.

/// Horizon buckets (actual time to arrival), upper bounds in seconds; a last,
/// open bucket holds everything longer.
pub const HORIZONS_S: [f64; 9] = [
    300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0, 604_800.0,
];

/// The number of horizon buckets, the open last one included.
pub const N_HORIZON_BUCKETS: usize = HORIZONS_S.len() + 1;

/// The horizon bucket of a time to arrival (seconds): the first whose upper
/// bound is at least `to_go_s`, or the open last one.
pub fn horizon_bucket(to_go_s: f64) -> usize {
    HORIZONS_S.partition_point(|&max| max < to_go_s)
}

/// A bucket's lower and upper bounds in seconds (`None`: open above).
pub fn horizon_bounds(bucket: usize) -> (f64, Option<f64>) {
    let lower = if bucket == 0 {
        0.0
    } else {
        HORIZONS_S.get(bucket - 1).copied().unwrap_or(f64::INFINITY)
    };
    (lower, HORIZONS_S.get(bucket).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_belongs_to_the_bucket_it_closes() {
        assert_eq!(horizon_bucket(0.0), 0);
        assert_eq!(horizon_bucket(300.0), 0);
        assert_eq!(horizon_bucket(300.5), 1);
        assert_eq!(horizon_bucket(1e9), HORIZONS_S.len());
        assert_eq!(horizon_bounds(1), (300.0, Some(900.0)));
        assert_eq!(horizon_bounds(HORIZONS_S.len()), (604_800.0, None));
    }
}
