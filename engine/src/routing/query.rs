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
        self.walk[side].sort_unstable();
    }

    fn relax(&mut self, topo: &Topology, custom: &Customized, side: usize, v: u32) {
        let dv = self.dist[side][v as usize];
        for a in topo.up_arcs(v) {
            let x = topo.up_head[a as usize] as usize;
            let d = dv.saturating_add(custom.weight[a as usize][side]);
            if d < self.dist[side][x] {
                self.dist[side][x] = d;
                self.pred[side][x] = a;
            }
        }
    }

    /// Runs both seeded sides up together with pruning; the best meeting, if any.
    pub(crate) fn meet(&mut self, topo: &Topology, custom: &Customized) -> Option<Meeting> {
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
                self.relax(topo, custom, FORWARD, v);
            }
            if vb == v && db < best.total_ms {
                self.relax(topo, custom, BACKWARD, v);
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
                self.relax(topo, custom, side, v);
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
                self.relax(topo, custom, side, v);
            }
        }
        (best.node != NONE).then_some(best)
    }

    /// The path through `meeting`, as ranks from a start node of the forward side
    /// to a start node of the backward side, every hierarchy arc unpacked into turns.
    pub(crate) fn path(&self, topo: &Topology, custom: &Customized, meeting: u32) -> Vec<u32> {
        // Forward: hierarchy arcs from the meeting back down to the start.
        let mut up_chain = Vec::new();
        let mut x = meeting;
        while self.pred[FORWARD][x as usize] != NONE {
            let a = self.pred[FORWARD][x as usize];
            up_chain.push(a);
            x = topo.arc_tail[a as usize];
        }
        let mut path = vec![x];
        for &a in up_chain.iter().rev() {
            unpack(topo, custom, a, FORWARD, &mut path);
        }
        // Backward: from the meeting down to the target, along downward arcs.
        let mut y = meeting;
        while self.pred[BACKWARD][y as usize] != NONE {
            let a = self.pred[BACKWARD][y as usize];
            unpack(topo, custom, a, BACKWARD, &mut path);
            y = topo.arc_tail[a as usize];
        }
        path
    }
}

/// Appends the nodes of arc `a` in direction `dir` after its first node (the
/// upward direction runs tail → head, the downward head → tail).
fn unpack(topo: &Topology, custom: &Customized, a: u32, dir: usize, path: &mut Vec<u32>) {
    // An explicit stack of (arc, direction) still to emit, last on top.
    let mut stack = vec![(a, dir)];
    while let Some((arc, dir)) = stack.pop() {
        let (v, x) = (topo.arc_tail[arc as usize], topo.up_head[arc as usize]);
        let u = custom.middle[arc as usize][dir];
        if u == NONE {
            path.push(if dir == FORWARD { x } else { v });
            continue;
        }
        let a_uv = topo
            .arc(u, v)
            .expect("a middle node is a lower neighbour of both ends");
        let a_ux = topo
            .arc(u, x)
            .expect("a middle node is a lower neighbour of both ends");
        if dir == FORWARD {
            // v → u → x: v → u is the downward side of {u, v}.
            stack.push((a_ux, FORWARD));
            stack.push((a_uv, BACKWARD));
        } else {
            // x → u → v.
            stack.push((a_uv, FORWARD));
            stack.push((a_ux, BACKWARD));
        }
    }
}
