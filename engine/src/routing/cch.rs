//! The metric-independent half of the Customizable Contraction Hierarchy (Dibbelt,
//! Strasser and Wagner): the turn graph's nodes ranked by nested dissection, and the
//! chordal supergraph that contracting them in that order produces.
//!
//! Nodes are renamed to their ranks. Each undirected hierarchy arc `{v, x}` with
//! `v < x` is stored once, in the upward CSR of `v`; it carries two weights (the
//! upward `v → x` and the downward `x → v`, see [`super::customize`]). The
//! elimination tree (parent = lowest upward neighbour) drives the queries. Nothing
//! here depends on travel times: a new metric reuses all of it.

use std::sync::OnceLock;

use rayon::prelude::*;
use road_graph::{Array, LocalPlane, NodeId, RoadGraph};

use super::customize::basic;
use super::metric::INFINITY_MS;
use super::order::{CellTree, TurnAdjacency, nested_dissection};
use super::turns::{TurnCosts, TurnGraph};

/// "No node" / "no arc" / "no input turn".
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Topology {
    pub(crate) turns: TurnGraph,
    /// For every turn, the edge it leaves (the CSR row of the turn graph); only
    /// customization reads it, so it is derived on its first use (a router
    /// loaded with its stored metric may never customize).
    turn_from: OnceLock<Vec<u32>>,
    /// For every turn, the hierarchy arc it is an input of: `arc << 1 | downward`
    /// (`NONE` for a turn from an edge into itself, which no shortest path uses).
    pub(crate) turn_arc: Array<u32>,
    /// Rank of every road edge, and the road edge at every rank.
    pub(crate) rank_of: Vec<u32>,
    pub(crate) edge_at: Array<u32>,
    /// The road edge at every rank with its length: what assembling a route reads
    /// for every edge, in one place.
    pub(crate) rank_edge: Vec<(u32, f32)>,
    /// Upward CSR over ranks: the arcs of `v` are `first_up[v]..first_up[v + 1]`,
    /// sorted by head rank.
    pub(crate) first_up: Array<u32>,
    pub(crate) up_head: Array<u32>,
    /// The lower node of every arc. Customization reads it for every arc, a
    /// query only for the arcs of its path ([`Topology::tail`]): derived on the
    /// first customization, like `turn_from`.
    arc_tail: OnceLock<Vec<u32>>,
    /// Downward CSR: the arcs `(u, v)` with `u < v`, for each `v`, sorted by `u`.
    /// Only customization reads it: derived on its first use, like `turn_from`.
    down: OnceLock<DownArcs>,
    /// Elimination tree parent of every rank (`NONE` for roots).
    pub(crate) parent: Vec<u32>,
    pub(crate) cells: CellTree,
    /// Whether customization may run: built here, or read from a file and
    /// checked ([`super::prepared::check_customizable`]) on first asking.
    customizable: OnceLock<Result<(), String>>,
    /// The arcs a query relaxes, upward (`[0]`) and downward (`[1]`).
    pub(crate) search: [SearchArcs; 2],
}

/// The downward CSR: for each node, its arcs from lower nodes, sorted by lower
/// node.
#[derive(Debug)]
struct DownArcs {
    first: Vec<u32>,
    arc: Vec<u32>,
}

/// The arcs that can carry a finite weight in one direction, by lower node. In
/// the turn graph about half of all arc directions never can (no path through
/// lower nodes runs that way), whatever the metric: leaving them out halves the
/// work of a query.
#[derive(Debug, Default)]
pub(crate) struct SearchArcs {
    pub(crate) first: Array<u32>,
    pub(crate) head: Array<u32>,
    pub(crate) arc: Array<u32>,
}

impl SearchArcs {
    /// The arc directions that are finite under `weight` (a customization where
    /// every open edge has a finite time, so finite means possible).
    fn build(topo: &Topology, weight: &[[u32; 2]], dir: usize) -> SearchArcs {
        let n = topo.n_nodes();
        let mut first = Vec::with_capacity(n + 1);
        let mut head = Vec::new();
        let mut arc = Vec::new();
        first.push(0);
        for v in 0..n as u32 {
            for a in topo.up_arcs(v) {
                if weight[a as usize][dir] != INFINITY_MS {
                    head.push(topo.up_head[a as usize]);
                    arc.push(a);
                }
            }
            first.push(arc.len() as u32);
        }
        head.shrink_to_fit();
        arc.shrink_to_fit();
        SearchArcs {
            first: first.into(),
            head: head.into(),
            arc: arc.into(),
        }
    }

    pub(crate) fn range(&self, v: u32) -> std::ops::Range<usize> {
        self.first[v as usize] as usize..self.first[v as usize + 1] as usize
    }

    /// Where arc `a` (of lower node `v`) is in this list, if it is.
    pub(crate) fn position(&self, v: u32, a: u32) -> Option<usize> {
        let range = self.range(v);
        let start = range.start;
        self.arc[range].binary_search(&a).ok().map(|i| start + i)
    }

    fn heap_bytes(&self) -> usize {
        self.first.heap_bytes() + self.head.heap_bytes() + self.arc.heap_bytes()
    }
}

impl Topology {
    pub(crate) fn build(graph: &RoadGraph, costs: &TurnCosts) -> Topology {
        let turns = TurnGraph::build(graph, costs);
        let n = graph.n_edges();
        let turn_from = rows_of(&turns.first, turns.n_turns());

        // The turn graph without direction, for the dissection.
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (t, &f) in turns.to.iter().enumerate() {
            let e = turn_from[t];
            if e != f {
                lists[e as usize].push(f);
                lists[f as usize].push(e);
            }
        }
        let mut first = Vec::with_capacity(n + 1);
        let mut adj = Vec::new();
        first.push(0u32);
        for list in &mut lists {
            list.sort_unstable();
            list.dedup();
            adj.extend_from_slice(list);
            first.push(adj.len() as u32);
        }
        drop(lists);

        // Intersections in metres, for the inertial flows.
        let bbox = graph.bbox();
        let plane = LocalPlane::new(road_graph::LatLon::new(
            (bbox.min_lat + bbox.max_lat) / 2.0,
            (bbox.min_lon + bbox.max_lon) / 2.0,
        ));
        let node_xy: Vec<[f32; 2]> = (0..graph.n_nodes() as u32)
            .map(|v| {
                let (x, y) = plane.to_xy(graph.node_pos(NodeId(v)));
                [x as f32, y as f32]
            })
            .collect();
        let edge_ends: Vec<[u32; 2]> = (0..n)
            .map(|e| [graph.tails()[e], graph.heads()[e]])
            .collect();
        let (edge_at, cells) = nested_dissection(
            node_xy,
            &edge_ends,
            TurnAdjacency {
                first: &first,
                adj: &adj,
            },
        );
        let mut rank_of = vec![0u32; n];
        for (rank, &e) in edge_at.iter().enumerate() {
            rank_of[e as usize] = rank as u32;
        }

        let (first_up, up_head) = contract(n, &first, &adj, &rank_of);
        let mut turn_arc = vec![NONE; turns.n_turns()];
        for (t, &f) in turns.to.iter().enumerate() {
            let e = turn_from[t];
            if e == f {
                continue;
            }
            let (re, rf) = (rank_of[e as usize], rank_of[f as usize]);
            let (low, high, downward) = if re < rf { (re, rf, 0) } else { (rf, re, 1) };
            let arc =
                find_arc(&first_up, &up_head, low, high).expect("every turn is a hierarchy arc");
            turn_arc[t] = arc << 1 | downward as u32;
        }

        let mut topo = derive(
            graph,
            turns,
            turn_arc.into(),
            rank_of,
            edge_at.into(),
            first_up.into(),
            up_head.into(),
            cells,
        );
        // Made here: customization may run on it.
        let _ = topo.customizable.set(Ok(()));
        // Which arc directions can ever be finite: customize with every edge at 1 ms.
        let (probe, _) = basic(&topo, &vec![1; n]);
        topo.search = [
            SearchArcs::build(&topo, &probe, 0),
            SearchArcs::build(&topo, &probe, 1),
        ];
        topo
    }

    pub(crate) fn n_nodes(&self) -> usize {
        self.rank_of.len()
    }

    pub(crate) fn n_arcs(&self) -> usize {
        self.up_head.len()
    }

    pub(crate) fn up_arcs(&self, v: u32) -> std::ops::Range<u32> {
        self.first_up[v as usize]..self.first_up[v as usize + 1]
    }

    /// The arcs `(u, v)` with `u < v`.
    pub(crate) fn down_arcs(&self, v: u32) -> &[u32] {
        let down = self
            .down
            .get_or_init(|| downward(self.n_nodes(), &self.first_up, &self.up_head));
        &down.arc[down.first[v as usize] as usize..down.first[v as usize + 1] as usize]
    }

    /// `Err` (a reason) when the hierarchy was read from a file and fails what
    /// customization relies on; checked once.
    pub(crate) fn customizable(&self) -> Result<(), String> {
        self.customizable
            .get_or_init(|| {
                super::prepared::check_customizable(&self.first_up, &self.up_head, &self.cells)
            })
            .clone()
    }

    /// The lower node of every arc.
    pub(crate) fn arc_tails(&self) -> &[u32] {
        self.arc_tail
            .get_or_init(|| rows_of(&self.first_up, self.up_head.len()))
    }

    /// The lower node of arc `a`: read from [`Topology::arc_tails`] once they
    /// are derived, else found in the rows' offsets (a query reads a few
    /// hundred, which is not worth deriving all of them on a start).
    pub(crate) fn tail(&self, a: u32) -> u32 {
        match self.arc_tail.get() {
            Some(tails) => tails[a as usize],
            // The last row that starts at or before `a` (empty rows start
            // where the next does, so it is the one holding `a`).
            None => (self.first_up.partition_point(|&f| f <= a) - 1) as u32,
        }
    }

    /// For every turn, the edge it leaves.
    pub(crate) fn turn_from(&self) -> &[u32] {
        self.turn_from
            .get_or_init(|| rows_of(&self.turns.first, self.turns.n_turns()))
    }

    /// The turn that is the input of arc `a` in direction `dir` (upward: from the
    /// lower node's edge into the higher's), if there is one.
    pub(crate) fn input(&self, a: u32, dir: usize) -> u32 {
        let (v, x) = (self.tail(a), self.up_head[a as usize]);
        let (from, to) = if dir == 0 { (v, x) } else { (x, v) };
        let (from, to) = (self.edge_at[from as usize], self.edge_at[to as usize]);
        self.turns
            .turns_from(from)
            .find(|&t| self.turns.to[t] == to)
            .map_or(NONE, |t| t as u32)
    }

    /// The arc `{low, high}` (`low < high`), if the hierarchy has it.
    pub(crate) fn arc(&self, low: u32, high: u32) -> Option<u32> {
        find_arc(&self.first_up, &self.up_head, low, high)
    }

    /// Depth of the elimination tree: the most nodes a query walks up from one end.
    pub(crate) fn etree_depth(&self) -> usize {
        let n = self.n_nodes();
        // Parents have higher ranks, so a top-down pass sees a parent before its
        // children.
        let mut depth = vec![0u32; n];
        let mut max = 0;
        for v in (0..n).rev() {
            let p = self.parent[v];
            depth[v] = if p == NONE { 1 } else { depth[p as usize] + 1 };
            max = max.max(depth[v]);
        }
        max as usize
    }

    /// Lower triangles over all arcs: the work of one full customization.
    pub(crate) fn n_triangles(&self) -> u64 {
        let arc_tail = self.arc_tails();
        (0..self.n_nodes() as u32)
            .map(|v| {
                self.down_arcs(v)
                    .iter()
                    .map(|&a| u64::from(self.first_up[arc_tail[a as usize] as usize + 1] - a - 1))
                    .sum::<u64>()
            })
            .sum()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        fn bytes<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        // The parts derived on first use count once they are.
        self.turns.heap_bytes()
            + self.turn_from.get().map_or(0, bytes)
            + self
                .down
                .get()
                .map_or(0, |down| bytes(&down.first) + bytes(&down.arc))
            + self.turn_arc.heap_bytes()
            + bytes(&self.rank_of)
            + self.edge_at.heap_bytes()
            + bytes(&self.rank_edge)
            + self.first_up.heap_bytes()
            + self.up_head.heap_bytes()
            + self.arc_tail.get().map_or(0, bytes)
            + bytes(&self.parent)
            + self.search[0].heap_bytes()
            + self.search[1].heap_bytes()
    }
}

/// The hierarchy from what takes time to compute (the turn graph, the order, the
/// upward arcs and the cells), with what one pass over them gives: the ranks'
/// edges and lengths and the elimination tree (what queries read), side by
/// side; the turns' rows, the arcs' tails and the downward lists, which only
/// customization reads in full, follow on first use. The search arcs are left empty for
/// the caller. The inputs must be consistent (as built, or as
/// [`super::prepared`] checks them).
#[allow(clippy::too_many_arguments)]
pub(crate) fn derive(
    graph: &RoadGraph,
    turns: TurnGraph,
    turn_arc: Array<u32>,
    rank_of: Vec<u32>,
    edge_at: Array<u32>,
    first_up: Array<u32>,
    up_head: Array<u32>,
    cells: CellTree,
) -> Topology {
    let n = edge_at.len();
    let (parent, rank_edge) = rayon::join(
        // The parent is the lowest upward neighbour (the rows are sorted).
        || {
            (0..n)
                .into_par_iter()
                .with_min_len(1 << 14)
                .map(|v| {
                    let start = first_up[v];
                    if start < first_up[v + 1] {
                        up_head[start as usize]
                    } else {
                        NONE
                    }
                })
                .collect::<Vec<u32>>()
        },
        || {
            edge_at
                .par_iter()
                .with_min_len(1 << 14)
                .map(|&e| (e, graph.edge_length_m(road_graph::EdgeId(e)) as f32))
                .collect::<Vec<_>>()
        },
    );
    Topology {
        turns,
        turn_from: OnceLock::new(),
        turn_arc,
        rank_of,
        rank_edge,
        edge_at,
        first_up,
        up_head,
        arc_tail: OnceLock::new(),
        down: OnceLock::new(),
        parent,
        cells,
        customizable: OnceLock::new(),
        search: Default::default(),
    }
}

/// For every item of a CSR of `len` items, its row: `first` lists where each
/// row starts.
fn rows_of(first: &[u32], len: usize) -> Vec<u32> {
    let mut row_of = vec![0u32; len];
    for (row, bounds) in first.windows(2).enumerate() {
        row_of[bounds[0] as usize..bounds[1] as usize].fill(row as u32);
    }
    row_of
}

fn find_arc(first_up: &[u32], up_head: &[u32], low: u32, high: u32) -> Option<u32> {
    let start = first_up[low as usize] as usize;
    let end = first_up[low as usize + 1] as usize;
    up_head[start..end]
        .binary_search(&high)
        .ok()
        .map(|i| (start + i) as u32)
}

/// Contracts the nodes in rank order without looking at any weight: the upward
/// neighbours of a contracted node become a clique, which it suffices to pass on
/// to the lowest of them (its elimination-tree parent). Returns the upward CSR over
/// ranks.
fn contract(n: usize, first: &[u32], adj: &[u32], rank_of: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut up: Vec<Vec<u32>> = vec![Vec::new(); n];
    for v in 0..n {
        let rv = rank_of[v];
        for &w in &adj[first[v] as usize..first[v + 1] as usize] {
            let rw = rank_of[w as usize];
            if rv < rw {
                up[rv as usize].push(rw);
            }
        }
    }
    for list in &mut up {
        list.sort_unstable();
        list.dedup();
    }
    let mut merged = Vec::new();
    for r in 0..n {
        let list = std::mem::take(&mut up[r]);
        if let Some((&p, rest)) = list.split_first() {
            let target = &up[p as usize];
            merged.clear();
            merged.reserve(target.len() + rest.len());
            let (mut i, mut j) = (0, 0);
            while i < target.len() || j < rest.len() {
                let next = match (target.get(i), rest.get(j)) {
                    (Some(&a), Some(&b)) if a == b => {
                        i += 1;
                        j += 1;
                        a
                    }
                    (Some(&a), Some(&b)) if a < b => {
                        i += 1;
                        a
                    }
                    (Some(_), Some(&b)) | (None, Some(&b)) => {
                        j += 1;
                        b
                    }
                    (Some(&a), None) => {
                        i += 1;
                        a
                    }
                    (None, None) => unreachable!("the loop condition"),
                };
                merged.push(next);
            }
            up[p as usize] = std::mem::take(&mut merged);
        }
        up[r] = list;
    }
    let mut first_up = Vec::with_capacity(n + 1);
    let mut up_head = Vec::with_capacity(up.iter().map(Vec::len).sum());
    first_up.push(0u32);
    for list in &up {
        up_head.extend_from_slice(list);
        first_up.push(up_head.len() as u32);
    }
    (first_up, up_head)
}

/// The downward CSR: for each node, its arcs from lower nodes, sorted by lower node.
fn downward(n: usize, first_up: &[u32], up_head: &[u32]) -> DownArcs {
    let mut count = vec![0u32; n + 1];
    for &x in up_head {
        count[x as usize + 1] += 1;
    }
    for i in 0..n {
        count[i + 1] += count[i];
    }
    let first_down = count.clone();
    let mut next = count;
    let mut down_arc = vec![0u32; up_head.len()];
    // Tails in increasing order, so each list comes out sorted by lower node.
    for u in 0..n {
        for a in first_up[u]..first_up[u + 1] {
            let x = up_head[a as usize] as usize;
            down_arc[next[x] as usize] = a;
            next[x] += 1;
        }
    }
    DownArcs {
        first: first_down,
        arc: down_arc,
    }
}
