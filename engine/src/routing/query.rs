//! Elimination-tree queries on a customized hierarchy (Bauer, Columbus, Rutter and
//! Wagner).
//!
//! Every upward path of the hierarchy from a node runs through its ancestors in the
//! elimination tree, so a query needs no priority queue: it walks the ancestors of
//! the source in rank order relaxing upward arcs, does the same from the target
//! with downward arcs, and meets at the common ancestor with the least sum. Both
//! walks go up together, lowest rank first, and stop relaxing from a node whose
//! label is already no better than the best meeting found (pruning).
//!
//! Sources and targets are sets with start values (a snapped point has up to a few
//! candidate edges, each with its own partial time), which the walk handles as
//! naturally as a single node. One-to-many keeps the forward labels and walks up
//! once per target.

use super::cch::{NONE, Topology};
use super::customize::Customized;
use super::metric::INFINITY_MS;

/// Per-query memory, reused across queries: labels for every rank, reset after use
/// through the lists of touched nodes, so a query costs only what it walks.
#[derive(Debug)]
pub(crate) struct Scratch {
    dist: [Vec<u32>; 2],
    /// The arc by which a node got its label (`NONE` for a start node).
    pred: [Vec<u32>; 2],
    /// The ancestors walked from each side, in rank order.
    walk: [Vec<u32>; 2],
    on_walk: [Vec<bool>; 2],
}

/// Forward (from the sources, upward arcs) and backward (to the targets, downward
/// arcs).
pub(crate) const FORWARD: usize = 0;
pub(crate) const BACKWARD: usize = 1;

/// Where two searches met: the rank, and the total time through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meeting {
    pub(crate) node: u32,
    pub(crate) total_ms: u32,
}

impl Scratch {
    pub(crate) fn new(n: usize) -> Scratch {
        Scratch {
            dist: [vec![INFINITY_MS; n], vec![INFINITY_MS; n]],
            pred: [vec![NONE; n], vec![NONE; n]],
            walk: [Vec::new(), Vec::new()],
            on_walk: [vec![false; n], vec![false; n]],
        }
    }

    pub(crate) fn n(&self) -> usize {
        self.dist[0].len()
    }

    /// Clears one side's labels.
    pub(crate) fn reset(&mut self, side: usize) {
        for &v in &self.walk[side] {
            self.dist[side][v as usize] = INFINITY_MS;
            self.pred[side][v as usize] = NONE;
            self.on_walk[side][v as usize] = false;
        }
        self.walk[side].clear();
    }

    /// Seeds one side with start nodes (ranks) and values, and lists their
    /// ancestors in rank order. The side must be reset.
    pub(crate) fn seed(&mut self, topo: &Topology, side: usize, starts: &[(u32, u32)]) {
        for &(v, ms) in starts {
            let slot = &mut self.dist[side][v as usize];
            if ms < *slot {
                *slot = ms;
            }
            let mut x = v;
            while x != NONE && !self.on_walk[side][x as usize] {
                self.on_walk[side][x as usize] = true;
                self.walk[side].push(x);
                x = topo.parent[x as usize];
            }
        }
        // Each start's chain of ancestors is already in order: a few sorted runs,
        // which the unstable sort handles without allocating.
        self.walk[side].sort_unstable();
    }

    /// Relaxes the search arcs of `v` on one side; with `PATHS`, records by which
    /// arc each label was improved (the time-only queries skip those writes).
    ///
    /// This is the hot loop of every query: the heads and weights are walked as
    /// two slices of one length, so only the label array is bounds-checked.
    #[inline]
    fn relax<const PATHS: bool>(
        &mut self,
        topo: &Topology,
        custom: &Customized,
        side: usize,
        v: u32,
    ) {
        let search = &topo.search[side];
        let range = search.range(v);
        let heads = &search.head[range.clone()];
        let weights = &custom.search_weight[side][range.clone()];
        let arcs = &search.arc[range];
        let dist = &mut self.dist[side];
        let pred = &mut self.pred[side];
        let dv = dist[v as usize];
        for (k, (&x, &w)) in heads.iter().zip(weights).enumerate() {
            let d = dv.saturating_add(w);
            let slot = &mut dist[x as usize];
            if d < *slot {
                *slot = d;
                if PATHS {
                    pred[x as usize] = arcs[k];
                }
            }
        }
    }

    /// Runs both seeded sides up together with pruning; the best meeting, if any.
    /// With `PATHS`, the labels keep their arcs for [`Scratch::path`].
    pub(crate) fn meet<const PATHS: bool>(
        &mut self,
        topo: &Topology,
        custom: &Customized,
    ) -> Option<Meeting> {
        let mut best = Meeting {
            node: NONE,
            total_ms: INFINITY_MS,
        };
        let (mut i, mut j) = (0, 0);
        let (nf, nb) = (self.walk[FORWARD].len(), self.walk[BACKWARD].len());
        while i < nf || j < nb {
            let vf = self.walk[FORWARD].get(i).copied().unwrap_or(NONE);
            let vb = self.walk[BACKWARD].get(j).copied().unwrap_or(NONE);
            let v = vf.min(vb);
            if vf == v {
                i += 1;
            }
            if vb == v {
                j += 1;
            }
            // Both labels of `v` are final here: all its descendants came first.
            let (df, db) = (
                self.dist[FORWARD][v as usize],
                self.dist[BACKWARD][v as usize],
            );
            let through = df.saturating_add(db);
            if through < best.total_ms {
                best = Meeting {
                    node: v,
                    total_ms: through,
                };
            }
            if vf == v && df < best.total_ms {
                self.relax::<PATHS>(topo, custom, FORWARD, v);
            }
            if vb == v && db < best.total_ms {
                self.relax::<PATHS>(topo, custom, BACKWARD, v);
            }
        }
        (best.node != NONE).then_some(best)
    }

    /// Runs one seeded side all the way up without pruning (the shared side of a
    /// one-to-many or many-to-one query).
    pub(crate) fn sweep(&mut self, topo: &Topology, custom: &Customized, side: usize) {
        for k in 0..self.walk[side].len() {
            let v = self.walk[side][k];
            if self.dist[side][v as usize] != INFINITY_MS {
                self.relax::<true>(topo, custom, side, v);
            }
        }
    }

    /// The other side of a one-to-many query, after [`Scratch::sweep`] of `swept`:
    /// walks `side` up with pruning and meets the swept labels.
    pub(crate) fn meet_swept(
        &mut self,
        topo: &Topology,
        custom: &Customized,
        side: usize,
    ) -> Option<Meeting> {
        let swept = 1 - side;
        let mut best = Meeting {
            node: NONE,
            total_ms: INFINITY_MS,
        };
        for k in 0..self.walk[side].len() {
            let v = self.walk[side][k];
            let d = self.dist[side][v as usize];
            let through = d.saturating_add(self.dist[swept][v as usize]);
            if through < best.total_ms {
                best = Meeting {
                    node: v,
                    total_ms: through,
                };
            }
            if d < best.total_ms {
                self.relax::<true>(topo, custom, side, v);
            }
        }
        (best.node != NONE).then_some(best)
    }

    /// The path through `meeting`, as ranks from a start node of the forward side
    /// to a start node of the backward side, every hierarchy arc unpacked into turns.
    pub(crate) fn path(&self, topo: &Topology, custom: &Customized, meeting: u32) -> Vec<u32> {
        // The hierarchy arcs of the path in driving order, with their direction:
        // up from the start to the meeting, then down to the end.
        let mut arcs = Vec::new();
        let mut x = meeting;
        while self.pred[FORWARD][x as usize] != NONE {
            let a = self.pred[FORWARD][x as usize];
            arcs.push((a, FORWARD));
            x = topo.tail(a);
        }
        let start = x;
        arcs.reverse();
        let mut y = meeting;
        while self.pred[BACKWARD][y as usize] != NONE {
            let a = self.pred[BACKWARD][y as usize];
            arcs.push((a, BACKWARD));
            y = topo.tail(a);
        }
        let mut path = Vec::with_capacity(4 * arcs.len() + 1);
        path.push(start);
        unpack(topo, custom, arcs, &mut path);
        path
    }
}

/// An unpacked arc in [`unpack`]'s lists.
const DONE: usize = 2;

/// Appends the turn-graph nodes of a chain of hierarchy arcs (each `(arc,
/// direction)`; the upward direction runs tail → head, the downward head → tail)
/// after its first node.
///
/// Unpacking is bound by memory latency: every step reads an arc's halves from
/// an array far larger than the cache. It therefore goes level by level, splitting
/// every shortcut of the chain in one pass, so that the reads of one pass are
/// independent of each other and the processor overlaps their misses; depth-first
/// unpacking would wait for each miss in turn.
fn unpack(topo: &Topology, custom: &Customized, mut chain: Vec<(u32, usize)>, path: &mut Vec<u32>) {
    let mut next = Vec::with_capacity(2 * chain.len());
    loop {
        let mut split_any = false;
        next.clear();
        for &(arc, dir) in &chain {
            if dir & DONE != 0 {
                next.push((arc, dir));
                continue;
            }
            let halves = &custom.middle[arc as usize];
            let (first, second) = (halves[2 * dir], halves[2 * dir + 1]);
            if first == NONE {
                next.push((arc, dir | DONE));
            } else {
                // Down the first half to the middle node, up the second.
                next.push((first, BACKWARD));
                next.push((second, FORWARD));
                split_any = true;
            }
        }
        std::mem::swap(&mut chain, &mut next);
        if !split_any {
            break;
        }
    }
    path.extend(chain.iter().map(|&(arc, dir)| {
        if dir & !DONE == FORWARD {
            topo.up_head[arc as usize]
        } else {
            topo.tail(arc)
        }
    }));
}
