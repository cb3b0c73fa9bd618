//! Accuracy of a matched path against a true route: the route mismatch fraction of
//! Newson & Krumm (2009), independent of the road network:
//! `(true length farther than tol from the match + matched length farther than tol
//! from the truth) / true length`.
//!
//! Both paths are cut into pieces of at most half a metre and each piece is judged
//! by its midpoint, which agrees with an exact buffer computation to well under a
//! metre per crossing. Overlapping stretches (a road driven twice) count once, as
//! a geometric union would.

use std::collections::HashMap;

use road_graph::LatLon;
use serde::Serialize;

/// The score of one matched path.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RouteMismatch {
    /// `(missed_m + extra_m) / truth_m`; 1 when nothing was matched.
    pub fraction: f64,
    pub truth_m: f64,
    pub match_m: f64,
    /// True route not covered by the match.
    pub missed_m: f64,
    /// Matched path not on the true route.
    pub extra_m: f64,
}

const PIECE_M: f64 = 0.5;
/// Stretches closer than this are the same road driven again.
const SAME_M: f64 = 0.05;

type Xy = (f64, f64);

/// Segments in a uniform grid, for "is anything within r of this point".
struct SegmentGrid {
    cell_m: f64,
    cells: HashMap<(i64, i64), Vec<(Xy, Xy)>>,
}

impl SegmentGrid {
    fn new(cell_m: f64) -> SegmentGrid {
        SegmentGrid {
            cell_m,
            cells: HashMap::new(),
        }
    }

    fn cell(&self, p: Xy) -> (i64, i64) {
        (
            (p.0 / self.cell_m).floor() as i64,
            (p.1 / self.cell_m).floor() as i64,
        )
    }

    fn insert(&mut self, a: Xy, b: Xy) {
        // Cut long segments so each part touches few cells.
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let parts = (len / self.cell_m).ceil().max(1.0) as usize;
        for k in 0..parts {
            let t0 = k as f64 / parts as f64;
            let t1 = (k + 1) as f64 / parts as f64;
            let p = (a.0 + t0 * (b.0 - a.0), a.1 + t0 * (b.1 - a.1));
            let q = (a.0 + t1 * (b.0 - a.0), a.1 + t1 * (b.1 - a.1));
            let (c0, c1) = (self.cell(p), self.cell(q));
            for x in c0.0.min(c1.0)..=c0.0.max(c1.0) {
                for y in c0.1.min(c1.1)..=c0.1.max(c1.1) {
                    self.cells.entry((x, y)).or_default().push((p, q));
                }
            }
        }
    }

    /// Whether a stored segment passes within `r` (at most the cell size) of `p`.
    fn near(&self, p: Xy, r: f64) -> bool {
        let c = self.cell(p);
        for x in c.0 - 1..=c.0 + 1 {
            for y in c.1 - 1..=c.1 + 1 {
                if let Some(segs) = self.cells.get(&(x, y))
                    && segs.iter().any(|&(a, b)| segment_distance(p, a, b) <= r)
                {
                    return true;
                }
            }
        }
        false
    }
}

fn segment_distance(p: Xy, a: Xy, b: Xy) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((a.0 + t * dx - p.0).powi(2) + (a.1 + t * dy - p.1).powi(2)).sqrt()
}

/// The pieces of a set of polylines, each counted once: `(midpoint, length)`.
fn union_pieces(lines: &[Vec<Xy>]) -> Vec<(Xy, f64)> {
    let mut seen = SegmentGrid::new(PIECE_M * 4.0);
    let mut pieces = Vec::new();
    for line in lines {
        for pair in line.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
            let n = (len / PIECE_M).ceil().max(1.0) as usize;
            for k in 0..n {
                let t = (k as f64 + 0.5) / n as f64;
                let mid = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
                if !seen.near(mid, SAME_M) {
                    pieces.push((mid, len / n as f64));
                }
            }
            seen.insert(a, b);
        }
    }
    pieces
}

/// Scores `matched` against `truth` with tolerance `tolerance_m` (metres).
pub fn route_mismatch(
    truth: &[Vec<LatLon>],
    matched: &[Vec<LatLon>],
    tolerance_m: f64,
) -> RouteMismatch {
    // The same local projection as the reference script (shared/tools/score_match.py),
    // centred on the truth's length-weighted centroid.
    let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
    for line in truth {
        for pair in line.windows(2) {
            let w =
                ((pair[1].lat - pair[0].lat).powi(2) + (pair[1].lon - pair[0].lon).powi(2)).sqrt();
            sx += w * (pair[0].lon + pair[1].lon) / 2.0;
            sy += w * (pair[0].lat + pair[1].lat) / 2.0;
            sw += w;
        }
    }
    let (lon0, lat0) = if sw > 0.0 {
        (sx / sw, sy / sw)
    } else {
        (0.0, 0.0)
    };
    let kx = 111_320.0 * lat0.to_radians().cos();
    let ky = 110_540.0;
    let project = |lines: &[Vec<LatLon>]| -> Vec<Vec<Xy>> {
        lines
            .iter()
            .filter(|l| l.len() >= 2)
            .map(|l| {
                l.iter()
                    .map(|p| ((p.lon - lon0) * kx, (p.lat - lat0) * ky))
                    .collect()
            })
            .collect()
    };
    let truth_xy = project(truth);
    let match_xy = project(matched);
    let truth_pieces = union_pieces(&truth_xy);
    let truth_m: f64 = truth_pieces.iter().map(|p| p.1).sum();
    if match_xy.is_empty() {
        return RouteMismatch {
            fraction: 1.0,
            truth_m,
            match_m: 0.0,
            missed_m: truth_m,
            extra_m: 0.0,
        };
    }
    let match_pieces = union_pieces(&match_xy);
    let match_m: f64 = match_pieces.iter().map(|p| p.1).sum();
    let cell_m = tolerance_m.max(1.0) * 2.0;
    let grid_of = |lines: &[Vec<Xy>]| {
        let mut grid = SegmentGrid::new(cell_m);
        for line in lines {
            for pair in line.windows(2) {
                grid.insert(pair[0], pair[1]);
            }
        }
        grid
    };
    let (truth_grid, match_grid) = (grid_of(&truth_xy), grid_of(&match_xy));
    let missed_m: f64 = truth_pieces
        .iter()
        .filter(|(mid, _)| !match_grid.near(*mid, tolerance_m))
        .map(|p| p.1)
        .sum();
    let extra_m: f64 = match_pieces
        .iter()
        .filter(|(mid, _)| !truth_grid.near(*mid, tolerance_m))
        .map(|p| p.1)
        .sum();
    RouteMismatch {
        fraction: if truth_m > 0.0 {
            (missed_m + extra_m) / truth_m
        } else {
            1.0
        },
        truth_m,
        match_m,
        missed_m,
        extra_m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: &[(f64, f64)]) -> Vec<LatLon> {
        points
            .iter()
            .map(|&(lat, lon)| LatLon::new(lat, lon))
            .collect()
    }

    #[test]
    fn a_path_scores_zero_against_itself() {
        let truth = vec![line(&[(41.0, -8.60), (41.0, -8.59), (41.01, -8.59)])];
        let m = route_mismatch(&truth, &truth, 5.0);
        assert!(m.fraction < 1e-9, "{m:?}");
    }

    #[test]
    fn a_missing_half_counts_half() {
        let truth = vec![line(&[(41.0, -8.60), (41.0, -8.58)])];
        let half = vec![line(&[(41.0, -8.60), (41.0, -8.59)])];
        let m = route_mismatch(&truth, &half, 5.0);
        assert!((m.fraction - 0.5).abs() < 0.01, "{m:?}");
        assert!(m.extra_m < 1.0);
    }

    #[test]
    fn a_detour_counts_its_length_and_driving_it_twice_counts_once() {
        let truth = vec![line(&[(41.0, -8.60), (41.0, -8.59)])];
        // The truth, plus a 111 m spur out and back.
        let spur = vec![line(&[
            (41.0, -8.60),
            (41.0, -8.595),
            (41.001, -8.595),
            (41.0, -8.595),
            (41.0, -8.59),
        ])];
        let m = route_mismatch(&truth, &spur, 5.0);
        let spur_m = 110.54 - 5.0;
        assert!((m.extra_m - spur_m).abs() < 1.5, "{m:?}");
        assert!(m.missed_m < 0.5, "{m:?}");
    }

    #[test]
    fn nothing_matched_scores_one() {
        let truth = vec![line(&[(41.0, -8.60), (41.0, -8.59)])];
        assert_eq!(route_mismatch(&truth, &[], 5.0).fraction, 1.0);
    }
}
