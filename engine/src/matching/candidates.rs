//! Candidates for one fix: the directed edges near it, with the emission
//! log-likelihood of each (how well the fix fits a vehicle on that road).

use road_graph::{EdgeCandidate, EdgeId, LatLon, RoadGraph};

use super::config::MatcherConfig;

/// A place on the road graph where the vehicle may be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) edge: EdgeId,
    pub(crate) offset_m: f64,
    pub(crate) point: LatLon,
    pub(crate) distance_m: f64,
    pub(crate) emission: f64,
}

/// Emission log-likelihood of a fix `distance_m` from the road: Gaussian near the
/// road, linear (Huber) in the tail so that outliers cost less than the square.
pub(crate) fn emission_logp(distance_m: f64, sigma_m: f64, robust_from_sigmas: f64) -> f64 {
    let z = distance_m / sigma_m;
    let k = robust_from_sigmas;
    if z <= k {
        -0.5 * z * z
    } else {
        -0.5 * k * k - k * (z - k)
    }
}

/// Reusable buffers for candidate lookups.
#[derive(Debug, Default)]
pub(crate) struct CandidateBuffers {
    scratch: Vec<u32>,
    raw: Vec<EdgeCandidate>,
}

/// Finds the candidates of a fix into `out`, best first. Empty when no road is
/// within the search radius.
pub(crate) fn find_candidates(
    graph: &RoadGraph,
    config: &MatcherConfig,
    pos: LatLon,
    sigma_m: f64,
    buffers: &mut CandidateBuffers,
    out: &mut Vec<Candidate>,
) {
    out.clear();
    let radius_m = config.search_radius_m.max(4.0 * sigma_m);
    graph.nearest_edges_into(
        pos,
        radius_m,
        config.max_roads,
        &mut buffers.scratch,
        &mut buffers.raw,
    );
    let raw = &buffers.raw;
    for (i, c) in raw.iter().enumerate() {
        if dominated_at_endpoint(graph, raw, i) {
            continue;
        }
        out.push(Candidate {
            edge: c.edge,
            offset_m: c.offset_m,
            point: c.point,
            distance_m: c.distance_m,
            emission: emission_logp(c.distance_m, sigma_m, config.robust_from_sigmas),
        });
    }
    // Already nearest first; keep the stable order for determinism.
    if let Some(best) = out.first().map(|c| c.emission) {
        out.retain(|c| c.emission >= best - config.emission_beam);
    }
    out.truncate(config.max_candidates);
}

/// Whether candidate `i` projects onto an end node of its edge while another
/// two-way road touching that node passes strictly closer through its interior.
/// Such a candidate adds little (the node can be reached and left through the
/// other road) and, on maps cut into many short pieces, would crowd out genuinely
/// different roads. A one-way road does not dominate: from it the node may be
/// unreachable.
fn dominated_at_endpoint(graph: &RoadGraph, raw: &[EdgeCandidate], i: usize) -> bool {
    let c = &raw[i];
    let length_m = graph.edge_length_m(c.edge);
    let node = if c.offset_m <= 0.01 {
        graph.edge_tail(c.edge)
    } else if c.offset_m >= length_m - 0.01 {
        graph.edge_head(c.edge)
    } else {
        return false;
    };
    let geom = graph.edge_geom(c.edge).0;
    raw.iter().any(|other| {
        if graph.edge_geom(other.edge).0 == geom || other.distance_m > c.distance_m - 0.01 {
            return false;
        }
        let touches = graph.edge_tail(other.edge) == node || graph.edge_head(other.edge) == node;
        let other_len_m = graph.edge_length_m(other.edge);
        touches
            && graph.reverse_edge(other.edge).is_some()
            && other.offset_m > 0.01
            && other.offset_m < other_len_m - 0.01
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emission_is_gaussian_near_the_road_and_linear_far_away() {
        assert_eq!(emission_logp(0.0, 5.0, 3.0), 0.0);
        assert!((emission_logp(5.0, 5.0, 3.0) + 0.5).abs() < 1e-12);
        // At 10 sigma the Gaussian would give -50; the linear tail gives less.
        let far = emission_logp(50.0, 5.0, 3.0);
        assert!(far > -50.0 && far < -20.0, "{far}");
        // Continuous at the joint.
        let a = emission_logp(15.0 - 1e-9, 5.0, 3.0);
        let b = emission_logp(15.0 + 1e-9, 5.0, 3.0);
        assert!((a - b).abs() < 1e-6);
    }
}
