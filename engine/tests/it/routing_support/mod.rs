//! What the routing tests share: the oracle (a plain Dijkstra over the road graph's
//! directed edges that applies the turn rules itself, independent of the router's
//! turn graph and hierarchy), a small deterministic random generator, and helpers.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use engine::{EdgePosition, INFINITY_MS, Metric, TurnCosts};
use road_graph::{EdgeId, RoadGraph};

/// SplitMix64: deterministic and good enough to pick test pairs and weights.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The part of an edge's time up to an offset, as the router defines it.
fn partial(graph: &RoadGraph, metric: &Metric, p: &EdgePosition) -> u32 {
    let ms = metric.edge_ms(p.edge);
    if ms == INFINITY_MS {
        return INFINITY_MS;
    }
    let length_m = graph.edge_length_m(p.edge);
    let fraction = if length_m > 0.0 {
        (p.offset_m / length_m).clamp(0.0, 1.0)
    } else {
        1.0
    };
    (f64::from(ms) * fraction).floor() as u32
}

/// The fastest time from any of `from` to any of `to`, by Dijkstra over directed
/// edges with the turn rules applied on the fly. Offsets must lie on their edges.
pub fn oracle_ms(
    graph: &RoadGraph,
    costs: &TurnCosts,
    metric: &Metric,
    from: &[EdgePosition],
    to: &[EdgePosition],
) -> Option<u32> {
    let n = graph.n_edges();
    let mut best = INFINITY_MS;
    // Staying on the edge, ahead.
    for s in from {
        for t in to {
            if s.edge == t.edge && t.offset_m >= s.offset_m && metric.edge_ms(s.edge) != INFINITY_MS
            {
                best = best.min(partial(graph, metric, t) - partial(graph, metric, s));
            }
        }
    }
    // Label of an edge: time to its tail, having turned into it.
    let mut dist = vec![INFINITY_MS; n];
    let mut heap = BinaryHeap::new();
    for s in from {
        let ms = metric.edge_ms(s.edge);
        if ms == INFINITY_MS {
            continue;
        }
        let rest = ms - partial(graph, metric, s);
        for next in graph.out_edges(graph.edge_head(s.edge)) {
            if let Some(turn) = costs.turn_ms(graph, s.edge, next) {
                let d = rest.saturating_add(turn);
                if d < dist[next.idx()] {
                    dist[next.idx()] = d;
                    heap.push(Reverse((d, next.0)));
                }
            }
        }
    }
    let mut end = vec![INFINITY_MS; n];
    for t in to {
        end[t.edge.idx()] = end[t.edge.idx()].min(partial(graph, metric, t));
    }
    while let Some(Reverse((d, e))) = heap.pop() {
        if d >= best {
            break;
        }
        if d > dist[e as usize] {
            continue;
        }
        best = best.min(d.saturating_add(end[e as usize]));
        let edge = EdgeId(e);
        let through = d.saturating_add(metric.edge_ms(edge));
        for next in graph.out_edges(graph.edge_head(edge)) {
            if let Some(turn) = costs.turn_ms(graph, edge, next) {
                let nd = through.saturating_add(turn);
                if nd < dist[next.idx()] {
                    dist[next.idx()] = nd;
                    heap.push(Reverse((nd, next.0)));
                }
            }
        }
    }
    (best != INFINITY_MS).then_some(best)
}

/// The time of a route's edge list recomputed from scratch: proves that the edges
/// are a real, allowed path whose time is the reported one.
pub fn path_ms(
    graph: &RoadGraph,
    costs: &TurnCosts,
    metric: &Metric,
    route: &engine::Route,
) -> Option<u32> {
    let edges = &route.edges;
    if edges.len() == 1
        && route.to.offset_m >= route.from.offset_m
        && route.from.edge == route.to.edge
    {
        return Some(partial(graph, metric, &route.to) - partial(graph, metric, &route.from));
    }
    let mut total = metric.edge_ms(edges[0]) - partial(graph, metric, &route.from);
    let n_turns = edges.len() - 1;
    for (i, pair) in edges.windows(2).enumerate() {
        if graph.edge_head(pair[0]) != graph.edge_tail(pair[1]) {
            return None;
        }
        total = total.saturating_add(costs.turn_ms(graph, pair[0], pair[1])?);
        // Every edge after a turn is driven whole, except the last.
        if i + 1 < n_turns {
            total = total.saturating_add(metric.edge_ms(pair[1]));
        }
    }
    Some(total.saturating_add(partial(graph, metric, &route.to)))
}

/// A random position on a random edge.
pub fn random_position(graph: &RoadGraph, rng: &mut Rng) -> EdgePosition {
    let edge = EdgeId(rng.below(graph.n_edges()) as u32);
    EdgePosition {
        edge,
        offset_m: graph.edge_length_m(edge) * rng.unit(),
    }
}

/// A metric with every edge's time scaled by a random factor in [0.2, 5] (and
/// about one edge in fifty closed, when `closures`).
pub fn random_metric(graph: &RoadGraph, base: &Metric, rng: &mut Rng, closures: bool) -> Metric {
    let ms = (0..graph.n_edges())
        .map(|e| {
            if closures && rng.below(50) == 0 {
                return INFINITY_MS;
            }
            let factor = 0.2 + 4.8 * rng.unit();
            ((f64::from(base.edge_ms(EdgeId(e as u32))) * factor) as u32).max(1)
        })
        .collect();
    Metric::from_edge_ms(graph, ms).expect("one time per edge")
}
