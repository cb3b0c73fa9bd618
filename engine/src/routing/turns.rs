//! Turns: which moves from one directed edge to the next a truck may make, and what
//! they cost beyond the edges themselves.
//!
//! The road graph is node-based, and a node-based search cannot see turn
//! restrictions or tell a U-turn from going straight on. The router therefore works
//! on the *turn graph* (the line graph): its nodes are the road graph's directed
//! edges and its arcs are the allowed turns. An arc `e → f` costs the time of `e`
//! plus the turn's own penalty, so the distance label of an edge is the time to
//! reach its tail having already turned into it.
//!
//! U-turns (onto the reverse of the edge just driven) are allowed only where a truck
//! cannot go on any other way: at a dead end, or where restrictions and one-way
//! streets leave no other exit. They cost [`TurnCosts::dead_end_u_turn_s`].
//! [`TurnCosts::u_turn_s`] allows them everywhere with a penalty instead.

use road_graph::{Array, EdgeId, RoadGraph};

/// Turn penalties and the U-turn policy. No `Default`: the caller chooses; trucks
/// use [`TurnCosts::TRUCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnCosts {
    /// Seconds to turn a truck around where there is no other way on.
    pub dead_end_u_turn_s: u32,
    /// `None`: no U-turn except where there is no other way on. `Some(s)`: a U-turn
    /// anywhere, at this penalty.
    pub u_turn_s: Option<u32>,
}

impl TurnCosts {
    /// A truck turns around only at dead ends, and that takes a minute (a
    /// three-point turn or a loop through a yard).
    pub const TRUCK: TurnCosts = TurnCosts {
        dead_end_u_turn_s: 60,
        u_turn_s: None,
    };

    /// The penalty of turning from `from` into `to` at `from`'s head, milliseconds,
    /// or `None` when the turn is not allowed. `to` must leave that node.
    pub fn turn_ms(&self, graph: &RoadGraph, from: EdgeId, to: EdgeId) -> Option<u32> {
        if !graph.turn_allowed(from, to) {
            return None;
        }
        if graph.reverse_edge(from) != Some(to) {
            return Some(0);
        }
        let via = graph.edge_head(from);
        let other_way_on = graph
            .out_edges(via)
            .any(|f| f != to && graph.turn_allowed(from, f));
        if !other_way_on {
            Some(self.dead_end_u_turn_s.saturating_mul(1000))
        } else {
            self.u_turn_s.map(|s| s.saturating_mul(1000))
        }
    }
}

/// The turn graph in compressed sparse row form: the turns out of edge `e` are
/// `first[e]..first[e + 1]`, each with the edge it enters and its penalty.
#[derive(Debug, Clone)]
pub(crate) struct TurnGraph {
    pub(crate) first: Array<u32>,
    pub(crate) to: Array<u32>,
    pub(crate) penalty_ms: Array<u32>,
}

impl TurnGraph {
    pub(crate) fn build(graph: &RoadGraph, costs: &TurnCosts) -> TurnGraph {
        let mut first = Vec::with_capacity(graph.n_edges() + 1);
        let mut to = Vec::new();
        let mut penalty_ms = Vec::new();
        first.push(0);
        for e in 0..graph.n_edges() as u32 {
            let from = EdgeId(e);
            for next in graph.out_edges(graph.edge_head(from)) {
                if let Some(ms) = costs.turn_ms(graph, from, next) {
                    to.push(next.0);
                    penalty_ms.push(ms);
                }
            }
            first.push(to.len() as u32);
        }
        TurnGraph {
            first: first.into(),
            to: to.into(),
            penalty_ms: penalty_ms.into(),
        }
    }

    pub(crate) fn n_turns(&self) -> usize {
        self.to.len()
    }

    /// The turns out of an edge, as a range of turn indices.
    pub(crate) fn turns_from(&self, edge: u32) -> std::ops::Range<usize> {
        self.first[edge as usize] as usize..self.first[edge as usize + 1] as usize
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.first.heap_bytes() + self.to.heap_bytes() + self.penalty_ms.heap_bytes()
    }
}
