//! Query endpoints and results: points on directed edges, and the routes between
//! them.
//!
//! A position on the road is a directed edge and an offset from its tail, so a
//! point on a one-way street can only be left forwards, and a point on a two-way
//! street is two candidates (one per direction), of which the router takes the
//! better. Times of partial edges are proportional to the part driven.

use road_graph::{EdgeId, LatLon, RoadGraph};

/// A position on a directed edge: `offset_m` metres from its tail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgePosition {
    pub edge: EdgeId,
    pub offset_m: f64,
}

/// A route endpoint: one or more candidate positions (the router starts from, or
/// ends at, whichever gives the fastest route).
#[derive(Debug, Clone, PartialEq)]
pub struct Snap {
    candidates: Vec<EdgePosition>,
}

/// Candidates farther than this beyond the nearest road are not used: they cover a
/// point at an intersection (several roads at the same distance) without jumping to
/// a parallel street.
const SNAP_TIE_M: f64 = 5.0;
/// At most this many road pieces per snapped point.
const SNAP_MAX_ROADS: usize = 4;
/// Road pieces looked at per snapped point: more than are kept, since those
/// outside the largest component are passed over.
const SNAP_SEARCH_ROADS: usize = 16;

impl Snap {
    /// A known position, e.g. a matched truck heading along its edge.
    pub fn on_edge(edge: EdgeId, offset_m: f64) -> Snap {
        Snap {
            candidates: vec![EdgePosition { edge, offset_m }],
        }
    }

    /// Several known positions.
    pub fn from_positions(candidates: Vec<EdgePosition>) -> Snap {
        Snap { candidates }
    }

    /// The nearest road to `p` within `radius_m`, in both directions where it is
    /// two-way (plus other roads equally near, as at an intersection). Only roads
    /// of the largest strongly connected component count
    /// ([`RoadGraph::in_main_component`]): a query point snapped to a one-way road
    /// cut off at the map's edge could reach nothing, or be reached from nothing.
    /// `None` when no such road is that close.
    pub fn nearest(graph: &RoadGraph, p: LatLon, radius_m: f64) -> Option<Snap> {
        let main_roads = |max_roads| -> Vec<_> {
            graph
                .nearest_edges(p, radius_m, max_roads)
                .into_iter()
                .filter(|c| graph.in_main_component(c.edge))
                .collect()
        };
        let mut found = main_roads(SNAP_SEARCH_ROADS);
        if found.is_empty() {
            // Dense roads cut off from the rest (a yard's aisles) may fill the
            // first look: look at every road piece in the radius.
            found = main_roads(usize::MAX);
        }
        let nearest_m = found.first()?.distance_m;
        let mut roads = Vec::with_capacity(SNAP_MAX_ROADS);
        let candidates = found
            .iter()
            .filter(|c| c.distance_m <= nearest_m + SNAP_TIE_M)
            .filter(|c| {
                let (geom, _) = graph.edge_geom(c.edge);
                if !roads.contains(&geom) {
                    if roads.len() == SNAP_MAX_ROADS {
                        return false;
                    }
                    roads.push(geom);
                }
                true
            })
            .map(|c| EdgePosition {
                edge: c.edge,
                offset_m: c.offset_m,
            })
            .collect();
        Some(Snap { candidates })
    }

    pub fn candidates(&self) -> &[EdgePosition] {
        &self.candidates
    }
}

/// A route between two positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Travel time on the metric, turn penalties included, milliseconds.
    pub duration_ms: u32,
    pub distance_m: f64,
    /// The directed edges driven, in order: the first is `from.edge`, the last is
    /// `to.edge` (the same edge once when the route stays on it).
    pub edges: Vec<EdgeId>,
    pub from: EdgePosition,
    pub to: EdgePosition,
}

impl Route {
    pub fn duration_s(&self) -> f64 {
        f64::from(self.duration_ms) / 1000.0
    }

    /// The driven line from the start position to the end position.
    pub fn geometry(&self, graph: &RoadGraph) -> Vec<LatLon> {
        let mut points: Vec<LatLon> = Vec::new();
        let push = |p: LatLon, points: &mut Vec<LatLon>| {
            if points.last() != Some(&p) {
                points.push(p);
            }
        };
        let last = self.edges.len().saturating_sub(1);
        for (i, &edge) in self.edges.iter().enumerate() {
            let from_m = if i == 0 { self.from.offset_m } else { 0.0 };
            let to_m = if i == last {
                self.to.offset_m
            } else {
                graph.edge_length_m(edge)
            };
            let piece = if i == 0 || i == last {
                graph.edge_points_between(edge, from_m, to_m)
            } else {
                graph.edge_points(edge)
            };
            for p in piece {
                push(p, &mut points);
            }
        }
        points
    }

    /// The OSM ways along the route, in order, each once per stretch.
    pub fn way_ids(&self, graph: &RoadGraph) -> Vec<i64> {
        let mut ways: Vec<i64> = self.edges.iter().map(|&e| graph.edge_way_id(e)).collect();
        ways.dedup();
        ways
    }
}
