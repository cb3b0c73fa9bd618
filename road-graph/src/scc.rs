//! The largest strongly connected component of the graph's own arrays, found by
//! an iterative Tarjan search straight over the CSR adjacency: routing snaps its
//! query points there ([`RoadGraph::in_main_component`](crate::RoadGraph::in_main_component)),
//! and every process that routes asks for it once at start.
//!
//! Why not petgraph's Kosaraju, as the import uses: it first copies the graph
//! into a petgraph graph (an allocation per node and edge list) and walks it
//! twice, once reversed; on porto that was ~20 ms of a ~220 ms start. Tarjan on
//! the arrays the graph already has is one walk of four flat arrays, about a
//! millisecond. The component is the same set whoever finds it, as long as one
//! component is strictly the largest; when two tie, the choice is left to
//! [`largest_scc`](crate::build::largest_scc), so that it stays the one every
//! earlier build made.

/// "Not visited" and "no component yet".
const NONE: u32 = u32::MAX;

/// Per node, whether it lies in the largest strongly connected component of the
/// graph whose out-arcs of node `v` go to `head[first_out[v]..first_out[v + 1]]`;
/// `None` when two or more components share the largest size (or there are no
/// nodes), which the caller settles. The arrays must be a valid CSR (offsets
/// monotone and ending at `head.len()`, heads below the node count), as every
/// graph built or loaded is.
pub(crate) fn unique_largest_component(first_out: &[u32], head: &[u32]) -> Option<Vec<bool>> {
    let n = first_out.len().checked_sub(1)?;
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut component = vec![NONE; n];
    let mut stack: Vec<u32> = Vec::new();
    // The depth-first path: a node and the position of its next arc to follow.
    let mut path: Vec<(u32, u32)> = Vec::new();
    let mut next_index = 0u32;
    let mut sizes: Vec<u32> = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != NONE {
            continue;
        }
        index[root as usize] = next_index;
        low[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        path.push((root, first_out[root as usize]));
        while let Some(&mut (v, ref mut arc)) = path.last_mut() {
            if *arc < first_out[v as usize + 1] {
                let w = head[*arc as usize];
                *arc += 1;
                if index[w as usize] == NONE {
                    index[w as usize] = next_index;
                    low[w as usize] = next_index;
                    next_index += 1;
                    stack.push(w);
                    path.push((w, first_out[w as usize]));
                } else if component[w as usize] == NONE {
                    // Visited and not in a finished component: on the stack.
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
                continue;
            }
            path.pop();
            if let Some(&(parent, _)) = path.last() {
                low[parent as usize] = low[parent as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let id = sizes.len() as u32;
                let mut size = 0;
                while let Some(w) = stack.pop() {
                    component[w as usize] = id;
                    size += 1;
                    if w == v {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
    }
    let largest = *sizes.iter().max()?;
    let mut with_largest = sizes.iter().enumerate().filter(|(_, s)| **s == largest);
    let (id, _) = with_largest.next()?;
    if with_largest.next().is_some() {
        return None;
    }
    let id = id as u32;
    Some(component.iter().map(|&c| c == id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CSR arrays from arcs of `n` nodes.
    fn csr(n: usize, arcs: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
        let mut sorted = arcs.to_vec();
        sorted.sort_unstable();
        let mut first_out = vec![0u32; n + 1];
        for &(a, _) in &sorted {
            first_out[a as usize + 1] += 1;
        }
        for v in 0..n {
            first_out[v + 1] += first_out[v];
        }
        (first_out, sorted.iter().map(|&(_, b)| b).collect())
    }

    #[test]
    fn the_largest_cycle_wins_and_a_one_way_spur_is_left_out() {
        // 0 -> 1 -> 2 -> 0 (three), 3 <-> 4 (two), 2 -> 5 (a spur), 5 -> 3.
        let (first, head) = csr(6, &[(0, 1), (1, 2), (2, 0), (3, 4), (4, 3), (2, 5), (5, 3)]);
        let main = unique_largest_component(&first, &head).expect("one largest");
        assert_eq!(main, [true, true, true, false, false, false]);
    }

    #[test]
    fn a_tie_is_left_to_the_caller() {
        let (first, head) = csr(4, &[(0, 1), (1, 0), (2, 3), (3, 2)]);
        assert_eq!(unique_largest_component(&first, &head), None);
        assert_eq!(unique_largest_component(&[0], &[]), None);
    }

    /// The same set as petgraph's Kosaraju (the import's) on random graphs,
    /// whenever one component is strictly the largest.
    #[test]
    fn agrees_with_kosaraju_on_random_graphs() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(m)) as u32
        };
        let mut compared = 0;
        for round in 0..300 {
            let n = 1 + next(60) as usize;
            let n_arcs = next(3 * n as u32 + 1) as usize + round % 5;
            let arcs: Vec<(u32, u32)> = (0..n_arcs)
                .map(|_| (next(n as u32), next(n as u32)))
                .collect();
            let (first, head) = csr(n, &arcs);
            let (kosaraju, _) = crate::build::largest_scc(n, arcs.iter().copied()).expect("nodes");
            if let Some(tarjan) = unique_largest_component(&first, &head) {
                assert_eq!(tarjan, kosaraju, "{n} nodes, arcs {arcs:?}");
                compared += 1;
            }
        }
        assert!(compared > 100, "only {compared} graphs had one largest");
    }
}
