//! Minimum cuts by maximum flow, for the inertial-flow bisection of
//! [`super::order`].
//!
//! The network is the road graph's cell with one undirected capacity per pair of
//! adjacent intersections: the number of directed road edges between them (one for
//! a one-way street, two for a two-way one). A minimum cut is then the smallest set
//! of directed edges that separates the sources from the sinks, which is exactly a
//! vertex separator of the turn graph (whose nodes are those edges). Dinic's
//! algorithm (level graph, blocking flows with current-arc pointers) keeps the cost
//! near-linear per phase; cuts on road networks are small, so there are few phases.

const UNBOUNDED: i32 = i32::MAX / 4;
const UNSEEN: u32 = u32::MAX;

/// A flow network in CSR form; the reverse of arc `a` is `rev[a]`.
struct Network {
    first: Vec<u32>,
    to: Vec<u32>,
    rev: Vec<u32>,
    cap: Vec<i32>,
}

impl Network {
    /// Builds the network of `n` nodes with undirected capacities `pairs`, plus a
    /// super source `n` and a super sink `n + 1` joined to the terminals.
    fn new(n: usize, pairs: &[(u32, u32, i32)], sources: &[u32], sinks: &[u32]) -> Network {
        let n_flow = n + 2;
        let (source, sink) = (n as u32, n as u32 + 1);
        // (tail, head, capacity, capacity of the reverse): an undirected pair is two
        // arcs that are each other's reverse, both with the pair's capacity.
        let mut arcs: Vec<(u32, u32, i32, i32)> =
            Vec::with_capacity(pairs.len() + sources.len() + sinks.len());
        arcs.extend(pairs.iter().map(|&(u, v, c)| (u, v, c, c)));
        arcs.extend(sources.iter().map(|&s| (source, s, UNBOUNDED, 0)));
        arcs.extend(sinks.iter().map(|&t| (t, sink, UNBOUNDED, 0)));
        let mut degree = vec![0u32; n_flow + 1];
        for &(u, v, _, _) in &arcs {
            degree[u as usize + 1] += 1;
            degree[v as usize + 1] += 1;
        }
        for i in 0..n_flow {
            degree[i + 1] += degree[i];
        }
        let first = degree.clone();
        let mut next = degree;
        let m = 2 * arcs.len();
        let (mut to, mut rev, mut cap) = (vec![0u32; m], vec![0u32; m], vec![0i32; m]);
        for &(u, v, c, c_rev) in &arcs {
            let a = next[u as usize];
            next[u as usize] += 1;
            let b = next[v as usize];
            next[v as usize] += 1;
            (to[a as usize], rev[a as usize], cap[a as usize]) = (v, b, c);
            (to[b as usize], rev[b as usize], cap[b as usize]) = (u, a, c_rev);
        }
        Network {
            first,
            to,
            rev,
            cap,
        }
    }

    fn n(&self) -> usize {
        self.first.len() - 1
    }

    /// Levels from `source` over arcs with residual capacity; `false` when `sink`
    /// is no longer reachable.
    fn levels(&self, source: u32, sink: u32, level: &mut [u32], queue: &mut Vec<u32>) -> bool {
        level.fill(UNSEEN);
        queue.clear();
        level[source as usize] = 0;
        queue.push(source);
        let mut head = 0;
        while head < queue.len() {
            let v = queue[head];
            head += 1;
            for a in self.first[v as usize]..self.first[v as usize + 1] {
                let w = self.to[a as usize];
                if self.cap[a as usize] > 0 && level[w as usize] == UNSEEN {
                    level[w as usize] = level[v as usize] + 1;
                    if w == sink {
                        return true;
                    }
                    queue.push(w);
                }
            }
        }
        level[sink as usize] != UNSEEN
    }

    /// One augmenting path in the level graph, from `source` to `sink`, pushed;
    /// returns the amount pushed (0 when the level graph is blocked).
    fn augment(
        &mut self,
        source: u32,
        sink: u32,
        level: &mut [u32],
        current: &mut [u32],
        path: &mut Vec<u32>,
    ) -> i32 {
        path.clear();
        let mut v = source;
        loop {
            if v == sink {
                let amount = path
                    .iter()
                    .map(|&a| self.cap[a as usize])
                    .min()
                    .unwrap_or(0);
                for &a in path.iter() {
                    self.cap[a as usize] -= amount;
                    let r = self.rev[a as usize] as usize;
                    self.cap[r] += amount;
                }
                return amount;
            }
            let mut advanced = false;
            while current[v as usize] < self.first[v as usize + 1] {
                let a = current[v as usize];
                let w = self.to[a as usize];
                if self.cap[a as usize] > 0
                    && level[w as usize] == level[v as usize].wrapping_add(1)
                {
                    path.push(a);
                    v = w;
                    advanced = true;
                    break;
                }
                current[v as usize] += 1;
            }
            if !advanced {
                // A dead end: no path through it in this phase.
                level[v as usize] = UNSEEN;
                match path.pop() {
                    None => return 0,
                    Some(a) => {
                        v = self.to[self.rev[a as usize] as usize];
                        current[v as usize] += 1;
                    }
                }
            }
        }
    }
}

/// A minimum cut between `sources` and `sinks` in an undirected graph of `n`
/// nodes with capacities `pairs`: `true` for the nodes on the source side (those
/// the source still reaches in the residual network), `false` for the others.
pub(crate) fn min_cut(
    n: usize,
    pairs: &[(u32, u32, i32)],
    sources: &[u32],
    sinks: &[u32],
) -> Vec<bool> {
    let mut net = Network::new(n, pairs, sources, sinks);
    let (source, sink) = (n as u32, n as u32 + 1);
    let mut level = vec![UNSEEN; net.n()];
    let mut queue = Vec::new();
    let mut path = Vec::new();
    while net.levels(source, sink, &mut level, &mut queue) {
        let mut current = net.first[..net.n()].to_vec();
        while net.augment(source, sink, &mut level, &mut current, &mut path) > 0 {}
    }
    let mut reached = vec![false; net.n()];
    reached[source as usize] = true;
    queue.clear();
    queue.push(source);
    let mut head = 0;
    while head < queue.len() {
        let v = queue[head];
        head += 1;
        for a in net.first[v as usize]..net.first[v as usize + 1] {
            let w = net.to[a as usize];
            if net.cap[a as usize] > 0 && !reached[w as usize] {
                reached[w as usize] = true;
                queue.push(w);
            }
        }
    }
    reached.truncate(n);
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_capacity(pairs: &[(u32, u32, i32)], side: &[bool]) -> i32 {
        pairs
            .iter()
            .filter(|(u, v, _)| side[*u as usize] != side[*v as usize])
            .map(|p| p.2)
            .sum()
    }

    #[test]
    fn two_triangles_joined_by_a_one_way_street_are_cut_there() {
        // Triangles 0-1-2 and 3-4-5 of two-way streets, joined by a one-way 2-3.
        let pairs = [
            (0, 1, 2),
            (1, 2, 2),
            (0, 2, 2),
            (2, 3, 1),
            (3, 4, 2),
            (4, 5, 2),
            (3, 5, 2),
        ];
        let side = min_cut(6, &pairs, &[0], &[5]);
        assert_eq!(side, [true, true, true, false, false, false]);
        assert_eq!(cut_capacity(&pairs, &side), 1);
    }

    #[test]
    fn a_grid_is_cut_between_two_columns() {
        // 4 x 4 grid of two-way streets, sources on the left column, sinks on the right.
        let id = |r: u32, c: u32| r * 4 + c;
        let mut pairs = Vec::new();
        for r in 0..4 {
            for c in 0..4 {
                if c + 1 < 4 {
                    pairs.push((id(r, c), id(r, c + 1), 2));
                }
                if r + 1 < 4 {
                    pairs.push((id(r, c), id(r + 1, c), 2));
                }
            }
        }
        let side = min_cut(16, &pairs, &[0, 4, 8, 12], &[3, 7, 11, 15]);
        assert_eq!(cut_capacity(&pairs, &side), 8, "four streets, both ways");
        assert!(side[0] && !side[15]);
    }
}
