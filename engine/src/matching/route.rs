//! Route distances from one candidate to the candidates of the next fix: a bounded,
//! goal-directed (A*) one-to-many search over directed edges.
//!
//! Why not the routing core: the matcher asks tens of thousands of tiny questions
//! per second, each bounded to a few hundred metres around two fixes. A search that
//! settles a dozen edges and stops is cheaper than any preprocessing lookup, needs
//! no metric, and works on maps without speeds. Labels live in arrays indexed by
//! edge and stamped with a generation, so no search ever clears memory.
//!
//! The search is edge-based, so turn restrictions and U-turns are exact: a U-turn
//! costs a penalty except at a dead end, where it is the only way on.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use road_graph::{EdgeId, LatLon, LocalPlane, NodeId, RoadGraph, bearing_deg};
use serde::{Deserialize, Serialize};

/// Parent of an edge entered straight from the source edge's head.
const FROM_SOURCE: u32 = u32::MAX;
/// Parent of an edge entered after a U-turn in the middle of the source edge.
const FROM_U_TURN: u32 = u32::MAX - 1;

/// How a candidate was reached from the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StepKind {
    /// First candidate of a chain.
    Start,
    /// Further along the same edge.
    Forward,
    /// A little back along the same edge: GPS noise, the vehicle has not moved.
    Backtrack,
    /// Turned around in the middle of the edge onto its reverse.
    UTurn,
    /// Along a route of other edges (`Cand::path`).
    Route,
}

/// A place to reach: an edge and an offset from its tail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub(crate) edge: EdgeId,
    pub(crate) offset_m: f64,
}

/// The distance found to one target (`f64::INFINITY` when not reached).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach {
    pub(crate) distance_m: f64,
    pub(crate) kind: StepKind,
}

/// The limits of one search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchLimits {
    /// Never look further than this along the road, metres.
    pub(crate) bound_m: f64,
    /// Great-circle distance between the two fixes, metres.
    pub(crate) great_circle_m: f64,
    /// Once a target is found at `d`, stop at `max(d, great_circle_m) + margin_m`.
    pub(crate) margin_m: f64,
    pub(crate) u_turn_penalty_m: f64,
    /// Route metres added for a turn, scaled by `(1 - cos angle) / 2`: drivers,
    /// and trucks most, keep straight when they can.
    pub(crate) turn_penalty_m: f64,
    pub(crate) backtrack_m: f64,
}

/// Reusable search memory, sized to the graph on first use.
#[derive(Debug, Default)]
pub(crate) struct RouteSearch {
    /// Per edge, the search's label (one record, so a relaxation touches one
    /// cache line rather than four).
    labels: Vec<Label>,
    is_target: Vec<u32>,
    generation: u32,
    heap: BinaryHeap<Reverse<u64>>,
    /// Per edge, what every search reads of it (built once per graph).
    facts: Vec<EdgeFacts>,
    /// Turn cost by angle (index: 1/256 turns, 0..=128), for `turn_cost_for`.
    turn_cost_m: Vec<f32>,
    turn_cost_for: f64,
    /// Edges settled over all searches (a work counter for benches).
    pub(crate) settled_total: u64,
}

/// A search's label of one edge. The stamps say which search wrote the label
/// and which settled the edge, so no search ever clears the array.
#[derive(Debug, Clone, Copy, Default)]
struct Label {
    /// Distance from the source position to the edge's tail.
    dist_m: f32,
    parent: u32,
    labelled: u32,
    settled: u32,
}

/// A bearing in 1/256 turns.
fn bearing_u8(a: LatLon, b: LatLon) -> u8 {
    ((bearing_deg(a, b) / 360.0 * 256.0).round() as i64).rem_euclid(256) as u8
}

/// What a search needs of one edge, side by side in one small record: the
/// graph keeps lengths per geometry (one more lookup) and turn restrictions in a
/// sorted list (a binary search per turn, which was a fifth of the matcher's
/// time on porto), while a search asks for both at every edge it settles.
#[derive(Debug, Clone, Copy)]
struct EdgeFacts {
    /// The graph's length, as stored (`f32`), so sums are unchanged.
    length_m: f32,
    /// Heading where the edge starts and where it ends, in 1/256 turns.
    bearings: [u8; 2],
    /// Whether some turn restriction starts on this edge (only then is
    /// `RoadGraph::turn_allowed` asked).
    restricted: bool,
}

/// Each edge's facts: lengths, headings from the first and last segments, and
/// whether a turn restriction starts on it.
fn edge_facts(graph: &RoadGraph) -> Vec<EdgeFacts> {
    let mut facts: Vec<EdgeFacts> = (0..graph.n_edges())
        .map(|e| {
            let edge = EdgeId(e as u32);
            let points = graph.edge_points(edge);
            let bearings = match points.len() {
                0 | 1 => [0, 0],
                n => [
                    bearing_u8(points[0], points[1]),
                    bearing_u8(points[n - 2], points[n - 1]),
                ],
            };
            EdgeFacts {
                length_m: graph.edge_length_m(edge) as f32,
                bearings,
                restricted: false,
            }
        })
        .collect();
    for r in graph.turn_restrictions() {
        if let Some(f) = facts.get_mut(r.from.idx()) {
            f.restricted = true;
        }
    }
    facts
}

impl RouteSearch {
    fn begin(&mut self, graph: &RoadGraph, turn_penalty_m: f64) {
        let n_edges = graph.n_edges();
        if self.facts.len() != n_edges {
            self.facts = edge_facts(graph);
        }
        if self.turn_cost_m.is_empty() || self.turn_cost_for != turn_penalty_m {
            self.turn_cost_m = (0..=128)
                .map(|i| {
                    let angle = f64::from(i) / 256.0 * std::f64::consts::TAU;
                    (turn_penalty_m * (1.0 - angle.cos()) / 2.0) as f32
                })
                .collect();
            self.turn_cost_for = turn_penalty_m;
        }
        if self.labels.len() != n_edges {
            self.labels = vec![Label::default(); n_edges];
            self.is_target = vec![0; n_edges];
            self.generation = 0;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: old stamps could collide with new ones.
            self.labels.fill(Label::default());
            self.is_target.fill(0);
            self.generation = 1;
        }
        self.heap.clear();
    }

    /// Distances from `(source, source_offset_m)` to every target, in `out`
    /// (one per target). `goal` is the local plane around the fix the targets
    /// were found around (made once per step, not per search: it costs a
    /// cosine) and `goal_radius_m` the farthest target from that fix, for the
    /// A* heuristic.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &mut self,
        graph: &RoadGraph,
        source: EdgeId,
        source_offset_m: f64,
        targets: &[Target],
        goal: &LocalPlane,
        goal_radius_m: f64,
        limits: SearchLimits,
        out: &mut Vec<Reach>,
    ) {
        self.begin(graph, limits.turn_penalty_m);
        let generation = self.generation;
        out.clear();
        out.resize(
            targets.len(),
            Reach {
                distance_m: f64::INFINITY,
                kind: StepKind::Route,
            },
        );
        let source_len_m = graph.edge_length_m(source);
        let source_offset_m = source_offset_m.clamp(0.0, source_len_m);
        let reverse = graph.reverse_edge(source);

        // Targets on the source edge or its reverse are reached without searching.
        for (target, reach) in targets.iter().zip(out.iter_mut()) {
            if target.edge == source {
                if target.offset_m >= source_offset_m {
                    *reach = Reach {
                        distance_m: target.offset_m - source_offset_m,
                        kind: StepKind::Forward,
                    };
                } else if source_offset_m - target.offset_m <= limits.backtrack_m {
                    // Negative: going back costs more than standing still, so a
                    // real U-turn soon beats riding backwards on noise.
                    *reach = Reach {
                        distance_m: target.offset_m - source_offset_m,
                        kind: StepKind::Backtrack,
                    };
                }
            } else if Some(target.edge) == reverse {
                let turn_at_m = source_len_m - source_offset_m;
                if target.offset_m >= turn_at_m {
                    *reach = Reach {
                        distance_m: target.offset_m - turn_at_m + limits.u_turn_penalty_m,
                        kind: StepKind::UTurn,
                    };
                }
            }
            self.is_target[target.edge.idx()] = generation;
        }
        let mut missing = out.iter().filter(|r| r.distance_m.is_infinite()).count();
        if missing == 0 {
            return;
        }

        let heuristic = |node: NodeId| -> f32 {
            let (x, y) = goal.to_xy(graph.node_pos(node));
            // Shrunk a little so plane-versus-sphere error never overestimates.
            (((x * x + y * y).sqrt() - goal_radius_m).max(0.0) * 0.99) as f32
        };
        let mut cutoff_m = limits.bound_m as f32;

        // Seeds: everything out of the source edge's head, and (after a U-turn in
        // the middle of the source edge) everything out of its tail.
        let head = graph.edge_head(source);
        let h_head = heuristic(head);
        self.relax_out_of(
            graph,
            source,
            (source_len_m - source_offset_m) as f32,
            h_head,
            FROM_SOURCE,
            limits.u_turn_penalty_m as f32,
        );
        if let Some(reverse) = reverse {
            let h_tail = heuristic(graph.edge_tail(source));
            self.relax_out_of(
                graph,
                reverse,
                (source_offset_m + limits.u_turn_penalty_m) as f32,
                h_tail,
                FROM_U_TURN,
                limits.u_turn_penalty_m as f32,
            );
        }

        while let Some(Reverse(key)) = self.heap.pop() {
            let edge = (key & 0xffff_ffff) as usize;
            let f_m = f32::from_bits((key >> 32) as u32);
            if self.labels[edge].settled == generation {
                continue;
            }
            if f_m > cutoff_m {
                break;
            }
            self.labels[edge].settled = generation;
            self.settled_total += 1;
            let d_m = self.labels[edge].dist_m;
            if self.is_target[edge] == generation {
                for (target, reach) in targets.iter().zip(out.iter_mut()) {
                    if target.edge.idx() != edge {
                        continue;
                    }
                    let d = f64::from(d_m) + target.offset_m;
                    if d < reach.distance_m {
                        if reach.distance_m.is_infinite() {
                            missing -= 1;
                        }
                        *reach = Reach {
                            distance_m: d,
                            kind: StepKind::Route,
                        };
                        let stop_m = d.max(limits.great_circle_m) + limits.margin_m;
                        cutoff_m = cutoff_m.min(stop_m as f32);
                    }
                }
                if missing == 0 {
                    break;
                }
            }
            let edge_id = EdgeId(edge as u32);
            let at_head_m = d_m + self.facts[edge].length_m;
            let h = heuristic(graph.edge_head(edge_id));
            self.relax_out_of(
                graph,
                edge_id,
                at_head_m,
                h,
                edge as u32,
                limits.u_turn_penalty_m as f32,
            );
        }
    }

    /// Labels the edges out of `from`'s head at `at_head_m` (plus a penalty for a
    /// U-turn that is not at a dead end).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn relax_out_of(
        &mut self,
        graph: &RoadGraph,
        from: EdgeId,
        at_head_m: f32,
        h_m: f32,
        parent: u32,
        u_turn_penalty_m: f32,
    ) {
        let generation = self.generation;
        let head = graph.edge_head(from);
        let out = graph.out_edges(head);
        let dead_end = out.len() <= 1;
        let from_tail = graph.edge_tail(from);
        let from_facts = self.facts[from.idx()];
        let reverse = graph.reverse_edge(from);
        for next in out {
            if from_facts.restricted && !graph.turn_allowed(from, next) {
                continue;
            }
            let mut d_m = at_head_m;
            if graph.edge_head(next) == from_tail && reverse == Some(next) {
                if parent == FROM_U_TURN {
                    // Turning around twice in a row is never the likely story.
                    continue;
                }
                if !dead_end {
                    d_m += u_turn_penalty_m;
                }
            } else {
                let exit = from_facts.bearings[1];
                let entry = self.facts[next.idx()].bearings[0];
                let turn = entry.wrapping_sub(exit) as i8;
                d_m += self.turn_cost_m[usize::from(turn.unsigned_abs().min(128))];
            }
            let i = next.idx();
            let label = &mut self.labels[i];
            if label.labelled != generation || d_m < label.dist_m {
                if label.settled == generation {
                    continue;
                }
                label.labelled = generation;
                label.dist_m = d_m;
                label.parent = parent;
                let f_m = d_m + h_m;
                self.heap
                    .push(Reverse((u64::from(f_m.to_bits()) << 32) | i as u64));
            }
        }
    }

    /// The edges of the route found to `target` in the last search, in driving
    /// order, into `path`; returns whether the route starts with a U-turn in the
    /// middle of the source edge (then `path[0]` is the source's reverse).
    pub(crate) fn path_to(
        &self,
        graph: &RoadGraph,
        source: EdgeId,
        target: EdgeId,
        path: &mut Vec<EdgeId>,
    ) -> bool {
        path.clear();
        let mut edge = target.0;
        let mut u_turn = false;
        // Bounded by the number of edges, so a corrupted label can never loop.
        for _ in 0..graph.n_edges() {
            path.push(EdgeId(edge));
            match self.labels[edge as usize].parent {
                FROM_SOURCE => break,
                FROM_U_TURN => {
                    if let Some(reverse) = graph.reverse_edge(source) {
                        path.push(reverse);
                        u_turn = true;
                    }
                    break;
                }
                parent => edge = parent,
            }
        }
        path.reverse();
        u_turn
    }
}
