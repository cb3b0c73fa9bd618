//! The checks of a stored preparation, each a pass or two over its arrays,
//! run in parallel where they are long: what a query relies on (run on load by
//! [`super::check`]) and what only customization relies on
//! ([`check_customizable`], run before the first customization). Each reports
//! the lowest rank or arc at fault.

use rayon::prelude::*;

use super::super::cch::{NONE, SearchArcs};
use super::super::customize::Halves;
use super::super::order::CellTree;
use super::super::turns::TurnGraph;

/// Deeper cell trees than this are refused: nested dissection halves the graph at
/// every level, and customization recurses along the tree.
const MAX_CELL_DEPTH: usize = 256;

/// What customization relies on beyond what a query does: the elimination
/// property and arcs inside their cells. The rows must have passed
/// [`check_upward`] and the cells [`unflatten`] (as [`check`] does).
pub(crate) fn check_customizable(
    first_up: &[u32],
    up_head: &[u32],
    cells: &CellTree,
) -> Result<(), String> {
    let (elimination, inside) = rayon::join(
        || check_elimination(first_up, up_head),
        || check_cells(cells, first_up, up_head),
    );
    elimination.and(inside)
}

/// Ranks per parallel task: small enough to share the work evenly, large enough
/// that handing it out costs nothing beside it.
const RANKS_PER_TASK: usize = 4096;

/// The lowest rank in `0..n` that `fault` finds wrong, looked for in parallel.
fn first_fault(
    n: usize,
    fault: impl Fn(usize) -> Option<String> + Sync + Send,
) -> Result<(), String> {
    match (0..n)
        .into_par_iter()
        .with_min_len(RANKS_PER_TASK)
        .find_map_first(fault)
    {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// The turn graph indexes edges of the graph, and every turn's hierarchy arc
/// (if any) is an arc.
pub(super) fn check_turns(
    turns: &TurnGraph,
    turn_arc: &[u32],
    n: usize,
    n_arcs: usize,
) -> Result<(), String> {
    let n_turns = turns.to.len();
    check_csr("turn graph", &turns.first, n, n_turns)?;
    if turns.to.iter().any(|&e| e as usize >= n) || turns.penalty_ms.len() != n_turns {
        return Err("a turn leads outside the graph".into());
    }
    if turn_arc.len() != n_turns
        || turn_arc
            .iter()
            .any(|&c| c != NONE && (c >> 1) as usize >= n_arcs)
    {
        return Err("a turn's hierarchy arc is out of range".into());
    }
    Ok(())
}

/// The rank of every edge, from the order: a permutation of the edges.
pub(super) fn ranks(edge_at: &[u32], n: usize) -> Result<Vec<u32>, String> {
    if edge_at.len() != n {
        return Err(format!(
            "an order of {} edges for a graph of {n}",
            edge_at.len()
        ));
    }
    let mut rank_of = vec![NONE; n];
    for (rank, &e) in edge_at.iter().enumerate() {
        match rank_of.get_mut(e as usize) {
            Some(slot) if *slot == NONE => *slot = rank as u32,
            _ => return Err("the order is not a permutation of the edges".into()),
        }
    }
    Ok(rank_of)
}

/// Every rank's arcs go upward (above it), stay inside the graph and are
/// strictly increasing.
pub(super) fn check_upward(first_up: &[u32], up_head: &[u32]) -> Result<(), String> {
    let n = first_up.len() - 1;
    first_fault(n, |v| {
        let row = &up_head[first_up[v] as usize..first_up[v + 1] as usize];
        let mut floor = v as u32;
        for &x in row {
            if x <= floor || x as usize >= n {
                return Some(format!("the arcs of rank {v} are not sorted upward arcs"));
            }
            floor = x;
        }
        None
    })
}

/// A direction's search arcs: for every rank, some of its own arcs, in order,
/// each with its arc's head and weight in this direction (`weight` must have
/// one entry per arc).
pub(super) fn check_search(
    dir: usize,
    search: &SearchArcs,
    search_weight: &[u32],
    first_up: &[u32],
    up_head: &[u32],
    weight: &[[u32; 2]],
) -> Result<(), String> {
    let n = first_up.len() - 1;
    let direction = ["upward", "downward"][dir];
    check_csr("search arcs", &search.first, n, search.arc.len())?;
    if search.head.len() != search.arc.len() || search_weight.len() != search.arc.len() {
        return Err(format!(
            "search arcs ({direction}) with heads or weights of another number"
        ));
    }
    first_fault(n, |v| {
        let (lo, hi) = (first_up[v], first_up[v + 1]);
        let mut floor = None;
        let range = search.first[v] as usize..search.first[v + 1] as usize;
        for ((&a, &head), &w) in search.arc[range.clone()]
            .iter()
            .zip(&search.head[range.clone()])
            .zip(&search_weight[range])
        {
            if a < lo || a >= hi || floor.is_some_and(|f| a <= f) {
                return Some(format!(
                    "search arcs ({direction}) of rank {v} are not its arcs in order"
                ));
            }
            if head != up_head[a as usize] || w != weight[a as usize][dir] {
                return Some(format!(
                    "search arc {a} ({direction}) has another head or weight than its arc"
                ));
            }
            floor = Some(a);
        }
        None
    })
}

/// A CSR offset array over `n` rows into `len` items: starts at 0, never goes
/// down, ends at `len`.
pub(super) fn check_csr(what: &str, first: &[u32], n: usize, len: usize) -> Result<(), String> {
    if first.len() != n + 1
        || first[0] != 0
        || first.windows(2).any(|w| w[0] > w[1])
        || first[n] as usize != len
    {
        return Err(format!("the {what}'s offsets are not a valid index"));
    }
    Ok(())
}

/// The elimination property: every node's upward neighbours but the lowest (its
/// parent) are upward neighbours of the parent. It makes the hierarchy chordal
/// (two upward neighbours of a node are joined by an arc), which customization
/// relies on to find every triangle's third arc. The rows must have passed
/// [`check_upward`].
///
/// Checked parent by parent, as in Tarjan and Yannakakis' test of an elimination
/// ordering: a parent's row is marked once, then each of its children's rows is
/// looked up in the marks. That reads every row at most twice, where merging each
/// child's row with its parent's read a long parent row once per child (the top
/// separators have hundreds of children and rows of hundreds of arcs).
fn check_elimination(first_up: &[u32], up_head: &[u32]) -> Result<(), String> {
    let n = first_up.len() - 1;
    let row = |v: usize| &up_head[first_up[v] as usize..first_up[v + 1] as usize];
    // The elimination tree's children of every node, grouped by parent (a
    // counting sort); only children with upward neighbours besides their parent
    // have anything to check.
    let parent_to_check = |v: usize| match row(v) {
        [parent, _, ..] => Some(*parent as usize),
        _ => None,
    };
    let mut first_child = vec![0u32; n + 1];
    for v in 0..n {
        if let Some(p) = parent_to_check(v) {
            first_child[p + 1] += 1;
        }
    }
    for p in 0..n {
        first_child[p + 1] += first_child[p];
    }
    let mut next = first_child.clone();
    let mut children = vec![0u32; first_child[n] as usize];
    for v in 0..n {
        if let Some(p) = parent_to_check(v) {
            children[next[p] as usize] = v as u32;
            next[p] += 1;
        }
    }
    drop(next);
    // Each task marks in an array of its own (one per node, filled once): a
    // few large tasks rather than many small ones.
    let per_task = n
        .div_ceil(2 * rayon::current_num_threads())
        .max(RANKS_PER_TASK);
    let lowest_fault = (0..n)
        .into_par_iter()
        .with_min_len(per_task)
        .map_init(
            || vec![NONE; n],
            |mark, p| {
                let kids = &children[first_child[p] as usize..first_child[p + 1] as usize];
                if kids.is_empty() {
                    return None;
                }
                for &x in row(p) {
                    mark[x as usize] = p as u32;
                }
                // Children are listed in rank order: the first that fails is
                // this parent's lowest.
                kids.iter().copied().find(|&v| {
                    row(v as usize)[1..]
                        .iter()
                        .any(|&x| mark[x as usize] != p as u32)
                })
            },
        )
        .flatten()
        .min();
    match lowest_fault {
        None => Ok(()),
        Some(v) => Err(format!(
            "rank {v} has an upward neighbour that its parent {} lacks",
            row(v as usize)[0]
        )),
    }
}

/// The cell tree from preorder, checking that the sizes add up and that it is not
/// deeper than [`MAX_CELL_DEPTH`].
pub(super) fn unflatten(flat: &[[u32; 3]], n: usize) -> Result<CellTree, String> {
    fn read(flat: &[[u32; 3]], at: &mut usize, depth: usize) -> Result<CellTree, String> {
        if depth > MAX_CELL_DEPTH {
            return Err("the cell tree is too deep".into());
        }
        let [len, own, n_children] = *flat.get(*at).ok_or("the cell tree ends early")?;
        *at += 1;
        if own > len || n_children as usize > flat.len() - *at {
            return Err("a cell is smaller than its parts".into());
        }
        let mut children = Vec::with_capacity(n_children as usize);
        let mut inside = u64::from(own);
        for _ in 0..n_children {
            let child = read(flat, at, depth + 1)?;
            inside += u64::from(child.len);
            children.push(child);
        }
        if !children.is_empty() && inside != u64::from(len) {
            return Err("a cell's children and separator do not add up to it".into());
        }
        Ok(CellTree { len, own, children })
    }
    let mut at = 0;
    let root = read(flat, &mut at, 0)?;
    if root.len as usize != n || at != flat.len() {
        return Err("the cell tree does not cover the order".into());
    }
    Ok(root)
}

/// Customization splits the arcs at the cells' boundaries and works on each
/// child apart: every arc into a node must come from inside the smallest cell
/// that holds that node (or from that cell's separator).
fn check_cells(root: &CellTree, first_up: &[u32], up_head: &[u32]) -> Result<(), String> {
    let n = first_up.len() - 1;
    // The lowest rank of the smallest cell holding each rank.
    let mut floor = vec![0u32; n];
    let mut stack = vec![(root, 0u32)];
    while let Some((cell, lo)) = stack.pop() {
        let hi = lo + cell.len;
        let own_lo = if cell.children.is_empty() {
            lo
        } else {
            hi - cell.own
        };
        floor[own_lo as usize..hi as usize].fill(lo);
        let mut child_lo = lo;
        for child in &cell.children {
            stack.push((child, child_lo));
            child_lo += child.len;
        }
    }
    first_fault(n, |u| {
        let row = &up_head[first_up[u] as usize..first_up[u + 1] as usize];
        let x = *row.iter().find(|&&x| (u as u32) < floor[x as usize])?;
        Some(format!(
            "the arc from rank {u} to {x} crosses the cell boundaries"
        ))
    })
}

/// Every arc unpacks into two arcs of a lower triangle (both or neither), whose
/// lower node is below the arc's own: unpacking always ends. Arcs are numbered
/// by lower node, so "an arc whose lower node is below `v`" is "an arc below
/// `first_up[v]`": one pass over the unpacking data in order, no lookup of any
/// other arc's tail. The offsets must have passed [`check_csr`].
pub(super) fn check_middle(first_up: &[u32], middle: &[Halves]) -> Result<(), String> {
    // Both halves `NONE` (all ones, so their `&` is too), or both below `lo`
    // (`NONE` never is): without branches, so that a row is checked in a
    // stroke and searched only when it fails.
    let sound = |&[a, b, c, d]: &Halves, lo: u32| {
        ((a & b) == NONE || a.max(b) < lo) & ((c & d) == NONE || c.max(d) < lo)
    };
    first_fault(first_up.len() - 1, |v| {
        let (lo, hi) = (first_up[v], first_up[v + 1]);
        let row = &middle[lo as usize..hi as usize];
        if row.iter().fold(true, |ok, halves| ok & sound(halves, lo)) {
            return None;
        }
        let a = lo as usize + row.iter().position(|halves| !sound(halves, lo))?;
        Some(format!("arc {a} unpacks into arcs that are not below it"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows over ranks from lists of upward neighbours.
    fn rows(lists: &[&[u32]]) -> (Vec<u32>, Vec<u32>) {
        let mut first = vec![0];
        let mut heads = Vec::new();
        for list in lists {
            heads.extend_from_slice(list);
            first.push(heads.len() as u32);
        }
        (first, heads)
    }

    /// Rank 0's neighbours are 1 and 2; its parent 1 must have 2 too.
    #[test]
    fn a_parent_lacking_a_childs_neighbour_breaks_the_elimination_property() {
        let (first, heads) = rows(&[&[1, 2], &[2, 3], &[3], &[]]);
        assert_eq!(check_elimination(&first, &heads), Ok(()));
        let (first, heads) = rows(&[&[1, 3], &[2, 3], &[3], &[]]);
        assert_eq!(check_elimination(&first, &heads), Ok(()));
        let (first, heads) = rows(&[&[1, 2], &[3], &[3], &[]]);
        let err = check_elimination(&first, &heads).expect_err("1 lacks 2");
        assert_eq!(
            err,
            "rank 0 has an upward neighbour that its parent 1 lacks"
        );
        // The lowest rank at fault is named, whichever parent it hangs under.
        let (first, heads) = rows(&[&[2, 3], &[2, 4], &[4], &[4], &[]]);
        let err = check_elimination(&first, &heads).expect_err("2 lacks 3");
        assert!(err.starts_with("rank 0 "), "{err}");
    }

    /// Arcs 0, 1 and 2 go up from ranks 0, 1 and 2: arc 2 may unpack into
    /// arcs 0 and 1, arc 1 only into arc 0, and a half is both or neither.
    #[test]
    fn unpacking_must_go_to_arcs_below_both_halves_or_neither() {
        let first = [0, 1, 2, 3];
        let fine: [Halves; 3] = [[NONE; 4], [0, 0, NONE, NONE], [0, 1, 1, 0]];
        assert_eq!(check_middle(&first, &fine), Ok(()));
        for (arc, halves) in [
            (1, [1, 0, NONE, NONE]),
            (1, [NONE, NONE, 0, 2]),
            (2, [0, NONE, NONE, NONE]),
            (0, [NONE, 0, NONE, NONE]),
        ] {
            let mut middle = fine;
            middle[arc] = halves;
            let err = check_middle(&first, &middle).expect_err("not below");
            assert_eq!(
                err,
                format!("arc {arc} unpacks into arcs that are not below it")
            );
        }
    }
}
