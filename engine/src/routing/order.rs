//! The contraction order: nested dissection by inertial flow (Schild and Sommer),
//! cutting the road graph and ordering the turn graph.
//!
//! The turn graph's nodes are the road's directed edges. A cell is a set of road
//! intersections; the turn-graph nodes it owns are the directed edges with both
//! ends inside. A minimum *edge* cut of the cell's road graph (capacity: the number
//! of directed edges between two intersections) splits it into two halves whose
//! edges are joined, in the turn graph, only through the cut edges: those become the
//! separator. The halves are ordered first (recursively, in parallel), the
//! separator last. Cutting the road graph (58 k nodes on porto) rather than the
//! turn graph (136 k) makes every flow several times smaller for separators of the
//! same size, since a turn-graph separator of a road network is in practice the
//! set of directed edges across a small road cut.
//!
//! The cut of a cell is the best of four inertial flows: project the intersections
//! on a direction (west–east, south–north and the two diagonals), take the first
//! and the last quarter as sources and sinks, and find the minimum cut between them
//! by maximum flow. Cells of at most 64 turn-graph nodes are ordered by minimum
//! degree on bitsets.
//!
//! The order comes with its [`CellTree`]: each cell occupies a contiguous range of
//! ranks, its children first and its own separator last, so the customization can
//! process sibling cells in parallel without sharing any arc.

use std::f32::consts::FRAC_1_SQRT_2;

use rayon::prelude::*;

use super::flow::min_cut;

/// Cells with at most this many turn-graph nodes are ordered by minimum degree
/// (they fit a `u64` bitset).
const LEAF_MAX: usize = 64;
/// Share of the cell's intersections taken as sources, and as sinks, of a flow.
const TERMINAL_SHARE: f64 = 0.25;
/// Cells with fewer edges than this are dissected on the calling thread.
const PARALLEL_MIN: usize = 4096;

/// A cell of the dissection: `len` ranks, of which the last `own` are its separator
/// (or, for a leaf, all of its nodes); the ranks before belong to `children` in
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CellTree {
    pub(crate) len: u32,
    pub(crate) own: u32,
    pub(crate) children: Vec<CellTree>,
}

/// The undirected turn graph (symmetric CSR over edge ids), for ordering leaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TurnAdjacency<'a> {
    pub(crate) first: &'a [u32],
    pub(crate) adj: &'a [u32],
}

impl TurnAdjacency<'_> {
    fn neighbours(&self, e: u32) -> &[u32] {
        &self.adj[self.first[e as usize] as usize..self.first[e as usize + 1] as usize]
    }
}

/// A set of intersections (with positions) and the directed edges between them:
/// `[local tail, local head, edge id]`.
struct Cell {
    xy: Vec<[f32; 2]>,
    edges: Vec<[u32; 3]>,
}

impl Cell {
    /// The sub-cells of intersections with the same label (`0..n_labels`; other
    /// values drop the intersection), each with the edges inside it.
    fn split(&self, label: &[u32], n_labels: usize) -> Vec<Cell> {
        let mut local = vec![u32::MAX; self.xy.len()];
        let mut cells: Vec<Cell> = (0..n_labels)
            .map(|_| Cell {
                xy: Vec::new(),
                edges: Vec::new(),
            })
            .collect();
        for (v, &l) in label.iter().enumerate() {
            if let Some(cell) = cells.get_mut(l as usize) {
                local[v] = cell.xy.len() as u32;
                cell.xy.push(self.xy[v]);
            }
        }
        for &[u, v, e] in &self.edges {
            let l = label[u as usize];
            if l == label[v as usize]
                && let Some(cell) = cells.get_mut(l as usize)
            {
                cell.edges.push([local[u as usize], local[v as usize], e]);
            }
        }
        cells
    }

    /// Connected components of the intersections that have edges: a label per
    /// intersection (`u32::MAX` for those without edges) and the count.
    fn components(&self) -> (Vec<u32>, usize) {
        let n = self.xy.len();
        let mut first = vec![0u32; n + 1];
        for &[u, v, _] in &self.edges {
            first[u as usize + 1] += 1;
            first[v as usize + 1] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let mut next = first.clone();
        let mut adj = vec![0u32; 2 * self.edges.len()];
        for &[u, v, _] in &self.edges {
            adj[next[u as usize] as usize] = v;
            next[u as usize] += 1;
            adj[next[v as usize] as usize] = u;
            next[v as usize] += 1;
        }
        let mut label = vec![u32::MAX; n];
        let mut count = 0;
        let mut stack = Vec::new();
        for start in 0..n {
            if label[start] != u32::MAX || first[start] == first[start + 1] {
                continue;
            }
            label[start] = count;
            stack.push(start as u32);
            while let Some(v) = stack.pop() {
                for &w in &adj[first[v as usize] as usize..first[v as usize + 1] as usize] {
                    if label[w as usize] == u32::MAX {
                        label[w as usize] = count;
                        stack.push(w);
                    }
                }
            }
            count += 1;
        }
        (label, count as usize)
    }
}

/// Orders the turn graph's nodes (the road's directed edges `0..edge_ends.len()`,
/// each given as `[tail, head]` intersections with positions `node_xy`) for
/// contraction. Returns the edge ids from lowest to highest rank, and the cell tree
/// over ranks.
pub(crate) fn nested_dissection(
    node_xy: Vec<[f32; 2]>,
    edge_ends: &[[u32; 2]],
    turns: TurnAdjacency<'_>,
) -> (Vec<u32>, CellTree) {
    let cell = Cell {
        xy: node_xy,
        edges: edge_ends
            .iter()
            .enumerate()
            .map(|(e, &[u, v])| [u, v, e as u32])
            .collect(),
    };
    dissect(cell, turns)
}

fn leaf(cell: &Cell, turns: TurnAdjacency<'_>) -> (Vec<u32>, CellTree) {
    let order = if cell.edges.len() <= LEAF_MAX {
        min_degree_order(
            &cell.edges.iter().map(|e| e[2]).collect::<Vec<u32>>(),
            turns,
        )
    } else {
        // Only a cell that cannot be cut (a single intersection with many loops)
        // gets here; its order hardly matters.
        cell.edges.iter().map(|e| e[2]).collect()
    };
    let len = order.len() as u32;
    (
        order,
        CellTree {
            len,
            own: len,
            children: Vec::new(),
        },
    )
}

fn dissect(cell: Cell, turns: TurnAdjacency<'_>) -> (Vec<u32>, CellTree) {
    let m = cell.edges.len();
    if m <= LEAF_MAX {
        return leaf(&cell, turns);
    }
    let (component, n_components) = cell.components();
    if n_components > 1 {
        let parts = cell.split(&component, n_components);
        drop(cell);
        let results: Vec<(Vec<u32>, CellTree)> = if m >= PARALLEL_MIN {
            parts.into_par_iter().map(|c| dissect(c, turns)).collect()
        } else {
            parts.into_iter().map(|c| dissect(c, turns)).collect()
        };
        let mut order = Vec::with_capacity(m);
        let mut children = Vec::with_capacity(results.len());
        for (o, t) in results {
            order.extend(o);
            children.push(t);
        }
        return (
            order,
            CellTree {
                len: m as u32,
                own: 0,
                children,
            },
        );
    }
    let with_edges = component.iter().filter(|&&c| c != u32::MAX).count();
    if with_edges < 2 {
        return leaf(&cell, turns);
    }
    let source_side = best_bisection(&cell, &component);
    let label: Vec<u32> = (0..cell.xy.len())
        .map(|v| match (component[v] != u32::MAX, source_side[v]) {
            (false, _) => u32::MAX,
            (true, true) => 0,
            (true, false) => 1,
        })
        .collect();
    let separator: Vec<u32> = cell
        .edges
        .iter()
        .filter(|&&[u, v, _]| source_side[u as usize] != source_side[v as usize])
        .map(|e| e[2])
        .collect();
    let mut halves = cell.split(&label, 2);
    drop(cell);
    let b = halves.pop().expect("two halves were asked for");
    let a = halves.pop().expect("two halves were asked for");
    let ((order_a, tree_a), (order_b, tree_b)) = if m >= PARALLEL_MIN {
        rayon::join(|| dissect(a, turns), || dissect(b, turns))
    } else {
        (dissect(a, turns), dissect(b, turns))
    };
    let mut order = order_a;
    order.extend(order_b);
    order.extend(&separator);
    let children = [tree_a, tree_b].into_iter().filter(|t| t.len > 0).collect();
    (
        order,
        CellTree {
            len: m as u32,
            own: separator.len() as u32,
            children,
        },
    )
}

/// The best of the inertial flows along four directions: the smallest cut, then
/// the most even split of edges. Returns `true` for intersections on the source
/// side. Only intersections with a component label take part.
fn best_bisection(cell: &Cell, component: &[u32]) -> Vec<bool> {
    const DIRECTIONS: [[f32; 2]; 4] = [
        [1.0, 0.0],
        [0.0, 1.0],
        [FRAC_1_SQRT_2, FRAC_1_SQRT_2],
        [FRAC_1_SQRT_2, -FRAC_1_SQRT_2],
    ];
    // One capacity per pair of adjacent intersections: the directed edges between.
    let mut ends: Vec<(u32, u32)> = cell
        .edges
        .iter()
        .filter(|[u, v, _]| u != v)
        .map(|&[u, v, _]| (u.min(v), u.max(v)))
        .collect();
    ends.sort_unstable();
    let mut pairs: Vec<(u32, u32, i32)> = Vec::with_capacity(ends.len());
    for (u, v) in ends {
        match pairs.last_mut() {
            Some(last) if (last.0, last.1) == (u, v) => last.2 += 1,
            _ => pairs.push((u, v, 1)),
        }
    }
    let nodes: Vec<u32> = (0..cell.xy.len() as u32)
        .filter(|&v| component[v as usize] != u32::MAX)
        .collect();
    let cut = |dir: &[f32; 2]| -> (usize, usize, Vec<bool>) {
        let key = |v: u32| {
            let [x, y] = cell.xy[v as usize];
            x * dir[0] + y * dir[1]
        };
        let mut by_projection = nodes.clone();
        by_projection.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
        let n = by_projection.len();
        let k = ((n as f64 * TERMINAL_SHARE) as usize).clamp(1, n / 2);
        let side = min_cut(
            cell.xy.len(),
            &pairs,
            &by_projection[..k],
            &by_projection[n - k..],
        );
        let (mut crossing, mut source_edges) = (0usize, 0usize);
        for &[u, v, _] in &cell.edges {
            match (side[u as usize], side[v as usize]) {
                (true, true) => source_edges += 1,
                (false, false) => {}
                _ => crossing += 1,
            }
        }
        let imbalance = source_edges.abs_diff(cell.edges.len() - crossing - source_edges);
        (crossing, imbalance, side)
    };
    let candidates: Vec<(usize, usize, Vec<bool>)> = if cell.edges.len() >= PARALLEL_MIN {
        DIRECTIONS.par_iter().map(cut).collect()
    } else {
        DIRECTIONS.iter().map(cut).collect()
    };
    candidates
        .into_iter()
        .min_by_key(|(crossing, imbalance, _)| (*crossing, *imbalance))
        .map(|(_, _, side)| side)
        .expect("four directions were tried")
}

/// Minimum-degree elimination of at most 64 turn-graph nodes (`ids`), on the turn
/// graph among them: repeatedly take the node with the fewest remaining neighbours
/// and join those into a clique.
fn min_degree_order(ids: &[u32], turns: TurnAdjacency<'_>) -> Vec<u32> {
    let n = ids.len();
    debug_assert!(n <= 64);
    let mut sorted: Vec<(u32, usize)> = ids.iter().enumerate().map(|(i, &e)| (e, i)).collect();
    sorted.sort_unstable();
    let mut adj = [0u64; 64];
    for (v, mask) in adj.iter_mut().enumerate().take(n) {
        for &f in turns.neighbours(ids[v]) {
            if let Ok(k) = sorted.binary_search_by_key(&f, |&(e, _)| e) {
                *mask |= 1 << sorted[k].1;
            }
        }
    }
    let mut alive: u64 = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mut order = Vec::with_capacity(n);
    while alive != 0 {
        let mut best = (u32::MAX, 0usize);
        let mut rest = alive;
        while rest != 0 {
            let v = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let degree = (adj[v] & alive).count_ones();
            if degree < best.0 {
                best = (degree, v);
            }
        }
        let v = best.1;
        alive &= !(1 << v);
        let mut clique = adj[v] & alive;
        let members = clique;
        while clique != 0 {
            let w = clique.trailing_zeros() as usize;
            clique &= clique - 1;
            adj[w] |= members & !(1 << w);
        }
        order.push(ids[v]);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A square grid of two-way streets: intersections, directed edges, and the
    /// undirected turn graph (every edge into a node turns into every edge out).
    /// Positions, edge ends, and the turn graph's CSR offsets and neighbours.
    type Grid = (Vec<[f32; 2]>, Vec<[u32; 2]>, Vec<u32>, Vec<u32>);

    fn grid(side: u32) -> Grid {
        let id = |r: u32, c: u32| r * side + c;
        let mut xy = Vec::new();
        let mut edges = Vec::new();
        for r in 0..side {
            for c in 0..side {
                xy.push([c as f32, r as f32]);
                if c + 1 < side {
                    edges.push([id(r, c), id(r, c + 1)]);
                    edges.push([id(r, c + 1), id(r, c)]);
                }
                if r + 1 < side {
                    edges.push([id(r, c), id(r + 1, c)]);
                    edges.push([id(r + 1, c), id(r, c)]);
                }
            }
        }
        let mut lists = vec![Vec::new(); edges.len()];
        for (e, [_, head]) in edges.iter().enumerate() {
            for (f, [tail, _]) in edges.iter().enumerate() {
                if tail == head && e != f {
                    lists[e].push(f as u32);
                    lists[f].push(e as u32);
                }
            }
        }
        let mut first = vec![0];
        let mut adj = Vec::new();
        for mut l in lists {
            l.sort_unstable();
            l.dedup();
            adj.extend(l);
            first.push(adj.len() as u32);
        }
        (xy, edges, first, adj)
    }

    fn check_tree(tree: &CellTree) -> u32 {
        let children: u32 = tree.children.iter().map(check_tree).sum();
        assert_eq!(children + tree.own, tree.len);
        tree.len
    }

    #[test]
    fn a_grid_is_ordered_as_a_permutation_with_one_street_line_last() {
        let (xy, edges, first, adj) = grid(20);
        let m = edges.len() as u32;
        let (order, tree) = nested_dissection(
            xy,
            &edges,
            TurnAdjacency {
                first: &first,
                adj: &adj,
            },
        );
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..m).collect::<Vec<u32>>());
        assert_eq!(check_tree(&tree), m);
        // The top cut of a 20 x 20 grid crosses 20 two-way streets.
        assert_eq!(tree.own, 40, "{:?}", (tree.own, tree.children.len()));
        assert_eq!(tree.children.len(), 2);
    }

    #[test]
    fn disconnected_parts_become_separate_cells_without_a_separator() {
        let (xy, edges, first, adj) = grid(8);
        let n = xy.len() as u32;
        let m = edges.len() as u32;
        let mut xy2 = xy.clone();
        xy2.extend(xy.iter().map(|[x, y]| [x + 100.0, *y]));
        let mut edges2 = edges.clone();
        edges2.extend(edges.iter().map(|[u, v]| [u + n, v + n]));
        let mut first2 = first.clone();
        let offset = *first.last().expect("non-empty");
        first2.extend(first[1..].iter().map(|f| f + offset));
        let mut adj2 = adj.clone();
        adj2.extend(adj.iter().map(|f| f + m));
        let (order, tree) = nested_dissection(
            xy2,
            &edges2,
            TurnAdjacency {
                first: &first2,
                adj: &adj2,
            },
        );
        assert_eq!(order.len(), 2 * m as usize);
        assert_eq!(tree.own, 0);
        assert_eq!(tree.children.len(), 2);
    }
}
