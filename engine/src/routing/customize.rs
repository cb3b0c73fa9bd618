//! The metric-dependent half of the hierarchy: customization.
//!
//! Every hierarchy arc `{v, x}` (`v < x`) gets an upward weight (`v → x`) and a
//! downward one (`x → v`). They start as the input turn's weight (the time of the
//! edge it leaves plus the turn penalty) or infinity, and are then lowered through
//! every *lower triangle* `{u, v, x}` with `u < v`: `v → u → x` and `x → u → v`.
//! Processing nodes bottom-up makes every arc final before it is used (basic
//! customization). The two arcs of the best triangle are kept per arc and
//! direction, which unpacks a path in time linear in its length with about two
//! memory accesses per step (keeping only the middle node would halve that memory
//! but cost two searches per step, which made unpacking as slow as the search).
//!
//! Parallelism follows the dissection: the cells of one separator never share an
//! arc (all arcs join a node to one of its ancestors in the cell tree), so the cell
//! tree's children are customized in parallel (rayon), then the separator.
//!
//! A partial update (a few hundred edges changed) recomputes only the arcs that
//! depend on them, lowest first, each from its input and all its lower triangles.

use std::cell::RefCell;
use std::collections::BTreeMap;

use rayon::prelude::*;
use road_graph::{Array, EdgeId};

use super::cch::{NONE, Topology};
use super::metric::{INFINITY_MS, Metric, clamp_ms};
use super::order::CellTree;

/// How an arc unpacks, see [`Customized::middle`].
pub(crate) type Halves = [u32; 4];

/// Cells with fewer arcs than this are customized on the calling thread.
pub(crate) const PARALLEL_MIN_ARCS: u32 = 20_000;

/// A customized metric: the hierarchy's weights and the metric they came from.
#[derive(Debug, Clone)]
pub(crate) struct Customized {
    /// `[upward, downward]` weight of every arc, milliseconds.
    pub(crate) weight: Array<[u32; 2]>,
    /// How every arc unpacks, `[upward first, upward second, downward first,
    /// downward second]`: the two arcs of its best lower triangle in driving order
    /// (the first taken downwards, the second upwards); `NONE` where the weight is
    /// the input turn's (or infinite).
    pub(crate) middle: Array<Halves>,
    /// The weights of the search arcs ([`Topology::search`]), upward and
    /// downward, in the order of those lists: what queries read.
    pub(crate) search_weight: [Array<u32>; 2],
    pub(crate) metric: Metric,
}

impl Customized {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.weight.heap_bytes()
            + self.middle.heap_bytes()
            + self.search_weight[0].heap_bytes()
            + self.search_weight[1].heap_bytes()
            + self.metric.n_edges() * 4
    }
}

/// Weight of a turn under a metric: its edge's time plus its penalty.
fn turn_weight(topo: &Topology, metric: &[u32], turn: u32) -> u32 {
    if turn == NONE {
        return INFINITY_MS;
    }
    let t = turn as usize;
    metric[topo.turn_from()[t] as usize].saturating_add(topo.turns.penalty_ms[t])
}

/// Full customization of a new metric (its length is checked by the caller).
pub(crate) fn customize(topo: &Topology, metric: Metric) -> Customized {
    let (weight, middle) = basic(topo, metric.as_slice());
    let search_weight = [
        gather(topo, &weight, 0).into(),
        gather(topo, &weight, 1).into(),
    ];
    Customized {
        weight: weight.into(),
        middle: middle.into(),
        search_weight,
        metric,
    }
}

/// Basic customization: every arc's weights and unpacking from edge times `ms`.
pub(crate) fn basic(topo: &Topology, ms: &[u32]) -> (Vec<[u32; 2]>, Vec<Halves>) {
    let m = topo.n_arcs();
    let mut weight = vec![[INFINITY_MS; 2]; m];
    // Every turn is the input of one arc direction (a few hundred thousand
    // scattered writes: about a millisecond on porto).
    for (t, &code) in topo.turn_arc.iter().enumerate() {
        if code != NONE {
            weight[(code >> 1) as usize][(code & 1) as usize] = turn_weight(topo, ms, t as u32);
        }
    }
    let mut middle = vec![[NONE; 4]; m];
    customize_cell(topo, &topo.cells, 0, &mut weight, &mut middle);
    (weight, middle)
}

/// The weights of the search arcs of one direction, in their order.
pub(crate) fn gather(topo: &Topology, weight: &[[u32; 2]], dir: usize) -> Vec<u32> {
    topo.search[dir]
        .arc
        .par_iter()
        .map(|&a| weight[a as usize][dir])
        .collect()
}

thread_local! {
    /// Per thread: the arc from the current node to each of its upward neighbours,
    /// indexed by neighbour rank. Only the current node's neighbours are read, and
    /// they are all written first, so it is never cleared.
    static SLOT: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Customizes the ranks `lo..lo + cell.len`, whose arcs are `weight` and `middle`
/// (the slices start at the cell's first arc).
fn customize_cell(
    topo: &Topology,
    cell: &CellTree,
    lo: u32,
    weight: &mut [[u32; 2]],
    middle: &mut [Halves],
) {
    let base = topo.first_up[lo as usize];
    let arcs_total = topo.first_up[(lo + cell.len) as usize] - base;
    let own_lo = lo + cell.len - cell.own;
    if cell.children.is_empty() {
        customize_nodes(topo, lo..own_lo + cell.own, base, weight, middle);
        return;
    }
    if arcs_total < PARALLEL_MIN_ARCS {
        // Sequential: the ranks in order are already bottom-up.
        customize_nodes(topo, lo..lo + cell.len, base, weight, middle);
        return;
    }
    {
        // Split the arc slices at the children's boundaries; the children's
        // arcs only ever meet nodes of the same child.
        let mut jobs = Vec::with_capacity(cell.children.len());
        let (mut w_rest, mut m_rest) = (&mut *weight, &mut *middle);
        let mut child_lo = lo;
        for child in &cell.children {
            let take = (topo.first_up[(child_lo + child.len) as usize]
                - topo.first_up[child_lo as usize]) as usize;
            let (w, w_tail) = std::mem::take(&mut w_rest).split_at_mut(take);
            let (m, m_tail) = std::mem::take(&mut m_rest).split_at_mut(take);
            jobs.push((child, child_lo, w, m));
            (w_rest, m_rest) = (w_tail, m_tail);
            child_lo += child.len;
        }
        jobs.into_par_iter()
            .for_each(|(child, child_lo, w, m)| customize_cell(topo, child, child_lo, w, m));
    }
    // The separator last: it reads the children's arcs, now final.
    customize_nodes(topo, own_lo..lo + cell.len, base, weight, middle);
}

/// Basic customization of the nodes `ranks` (in order), whose arcs and all of
/// whose lower neighbours' arcs lie in `weight`/`middle`, which start at arc
/// `base`.
fn customize_nodes(
    topo: &Topology,
    ranks: std::ops::Range<u32>,
    base: u32,
    weight: &mut [[u32; 2]],
    middle: &mut [Halves],
) {
    let arc_tail = topo.arc_tails();
    SLOT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.len() < topo.n_nodes() {
            slot.resize(topo.n_nodes(), NONE);
        }
        for v in ranks {
            for a in topo.up_arcs(v) {
                slot[topo.up_head[a as usize] as usize] = a - base;
            }
            for &a_uv in topo.down_arcs(v) {
                let u = arc_tail[a_uv as usize];
                let [up_uv, down_uv] = weight[(a_uv - base) as usize];
                if up_uv == INFINITY_MS && down_uv == INFINITY_MS {
                    continue;
                }
                for a_ux in a_uv + 1..topo.first_up[u as usize + 1] {
                    let x = topo.up_head[a_ux as usize];
                    let a_vx = slot[x as usize] as usize;
                    let [up_ux, down_ux] = weight[(a_ux - base) as usize];
                    // v → u → x and x → u → v.
                    let via_up = down_uv.saturating_add(up_ux);
                    let via_down = down_ux.saturating_add(up_uv);
                    let current = &mut weight[a_vx];
                    if via_up < current[0] {
                        current[0] = via_up;
                        middle[a_vx][0] = a_uv;
                        middle[a_vx][1] = a_ux;
                    }
                    if via_down < current[1] {
                        current[1] = via_down;
                        middle[a_vx][2] = a_ux;
                        middle[a_vx][3] = a_uv;
                    }
                }
            }
        }
    });
}

/// What a partial update must do for one arc.
#[derive(Debug, Default)]
struct Pending {
    /// Recompute from the input and all lower triangles: its input changed, or
    /// its best triangle got slower.
    full: bool,
    /// Otherwise: the lower nodes of the triangles that changed, which can only
    /// make the arc faster.
    via: Vec<u32>,
}

/// Applies new times for a few edges to a customized metric, touching only the
/// arcs that depend on them. Returns the number of arcs looked at.
///
/// Arcs are taken in id order, which is the order of their lower nodes, and an
/// arc depends only on arcs of lower nodes: each is final when read. An arc whose
/// input changed, or whose best triangle got slower, is recomputed from scratch;
/// one whose triangles only got faster, or got slower without being its best,
/// just compares the changed triangles with its current weight. Ties resolve as
/// in a full customization (the input first, then the lowest middle node), so the
/// result equals a full customization exactly.
pub(crate) fn update(topo: &Topology, custom: &mut Customized, changes: &[(EdgeId, u32)]) -> usize {
    let mut queue: BTreeMap<u32, Pending> = BTreeMap::new();
    for &(edge, ms) in changes {
        let ms = clamp_ms(ms);
        if edge.idx() >= topo.n_nodes() || custom.metric.edge_ms(edge) == ms {
            continue;
        }
        custom.metric.set_edge_ms(edge, ms);
        for t in topo.turns.turns_from(edge.0) {
            let arc = topo.turn_arc[t];
            if arc != NONE {
                queue.entry(arc >> 1).or_default().full = true;
            }
        }
    }
    let mut looked_at = 0;
    // A metric borrowed from a mapped snapshot is copied on its first change.
    if !queue.is_empty() {
        custom.weight.to_mut();
        custom.middle.to_mut();
    }
    while let Some((a, pending)) = queue.pop_first() {
        looked_at += 1;
        let old = custom.weight[a as usize];
        let (weight, middle) = if pending.full {
            recompute(topo, custom, a)
        } else {
            relax_via(topo, custom, a, &pending.via)
        };
        // Equal weights through another triangle change only how the arc unpacks.
        custom.middle.to_mut()[a as usize] = middle;
        if weight == old {
            continue;
        }
        custom.weight.to_mut()[a as usize] = weight;
        let v = topo.arc_tails()[a as usize];
        for (dir, &w) in weight.iter().enumerate() {
            if let Some(k) = topo.search[dir].position(v, a) {
                custom.search_weight[dir].to_mut()[k] = w;
            }
        }
        let slower = weight[0] > old[0] || weight[1] > old[1];
        // The arc {v, x} is a lower side of the triangles {v, x, y} for every
        // other upward neighbour y of v.
        let x = topo.up_head[a as usize];
        for b in topo.up_arcs(v) {
            let y = topo.up_head[b as usize];
            if y == x {
                continue;
            }
            let (low, high) = if x < y { (x, y) } else { (y, x) };
            let Some(dependent) = topo.arc(low, high) else {
                continue;
            };
            let entry = queue.entry(dependent).or_default();
            if slower && custom.middle[dependent as usize].contains(&a) {
                entry.full = true;
            } else if !entry.full {
                entry.via.push(v);
            }
        }
    }
    looked_at
}

/// An arc's weights and middles after some of its lower triangles (through the
/// nodes `via`) got faster, or slower without being its best.
fn relax_via(topo: &Topology, custom: &Customized, a: u32, via: &[u32]) -> ([u32; 2], Halves) {
    let (v, x) = (topo.arc_tails()[a as usize], topo.up_head[a as usize]);
    let mut weight = custom.weight[a as usize];
    let mut middle = custom.middle[a as usize];
    // The lower node of the triangle an arc's direction takes now (`NONE` for its
    // input, which wins ties).
    let lower = |m: u32| {
        if m == NONE {
            0
        } else {
            topo.arc_tails()[m as usize]
        }
    };
    for &u in via {
        let (Some(a_uv), Some(a_ux)) = (topo.arc(u, v), topo.arc(u, x)) else {
            continue;
        };
        let [up_uv, down_uv] = custom.weight[a_uv as usize];
        let [up_ux, down_ux] = custom.weight[a_ux as usize];
        let via_up = down_uv.saturating_add(up_ux);
        let via_down = down_ux.saturating_add(up_uv);
        if via_up < weight[0]
            || (via_up == weight[0]
                && via_up != INFINITY_MS
                && middle[0] != NONE
                && u < lower(middle[0]))
        {
            weight[0] = via_up;
            middle[0] = a_uv;
            middle[1] = a_ux;
        }
        if via_down < weight[1]
            || (via_down == weight[1]
                && via_down != INFINITY_MS
                && middle[2] != NONE
                && u < lower(middle[2]))
        {
            weight[1] = via_down;
            middle[2] = a_ux;
            middle[3] = a_uv;
        }
    }
    (weight, middle)
}

/// An arc's weights and middles from scratch: its inputs and all lower triangles.
fn recompute(topo: &Topology, custom: &Customized, a: u32) -> ([u32; 2], Halves) {
    let ms = custom.metric.as_slice();
    let mut weight = [
        turn_weight(topo, ms, topo.input(a, 0)),
        turn_weight(topo, ms, topo.input(a, 1)),
    ];
    let mut middle = [NONE; 4];
    let (v, x) = (topo.arc_tails()[a as usize], topo.up_head[a as usize]);
    for &a_uv in topo.down_arcs(v) {
        let u = topo.arc_tails()[a_uv as usize];
        let Some(a_ux) = topo.arc(u, x) else {
            continue;
        };
        let [up_uv, down_uv] = custom.weight[a_uv as usize];
        let [up_ux, down_ux] = custom.weight[a_ux as usize];
        let via_up = down_uv.saturating_add(up_ux);
        let via_down = down_ux.saturating_add(up_uv);
        if via_up < weight[0] {
            weight[0] = via_up;
            middle[0] = a_uv;
            middle[1] = a_ux;
        }
        if via_down < weight[1] {
            weight[1] = via_down;
            middle[2] = a_ux;
            middle[3] = a_uv;
        }
    }
    (weight, middle)
}
