//! Plain Dijkstra on the turn graph: the baseline the hierarchy is measured against
//! in the benches, with the same start and end values as the hierarchy's queries.
//! (The oracle of the tests is a separate, even plainer Dijkstra that reads the
//! road graph directly, so that it also checks how the turn graph is built.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::metric::INFINITY_MS;
use super::turns::TurnGraph;

const NO_PRED: u32 = u32::MAX;

/// The fastest path from any start `(edge, value)` to any end `(edge, value)`,
/// labels being the time to an edge's tail having turned into it. Returns the total
/// and the edges from a start to an end.
pub(crate) fn dijkstra(
    turns: &TurnGraph,
    metric: &[u32],
    starts: &[(u32, u32)],
    ends: &[(u32, u32)],
) -> Option<(u32, Vec<u32>)> {
    let n = metric.len();
    let mut dist = vec![INFINITY_MS; n];
    let mut pred = vec![NO_PRED; n];
    let mut end_ms = vec![INFINITY_MS; n];
    for &(e, ms) in ends {
        end_ms[e as usize] = end_ms[e as usize].min(ms);
    }
    let mut heap = BinaryHeap::new();
    for &(e, ms) in starts {
        if ms < dist[e as usize] {
            dist[e as usize] = ms;
            heap.push(Reverse((ms, e)));
        }
    }
    let mut best: Option<(u32, u32)> = None;
    while let Some(Reverse((d, e))) = heap.pop() {
        if best.is_some_and(|(b, _)| d >= b) {
            break;
        }
        if d > dist[e as usize] {
            continue;
        }
        let end = end_ms[e as usize];
        if end != INFINITY_MS {
            let total = d.saturating_add(end);
            if best.is_none_or(|(b, _)| total < b) {
                best = Some((total, e));
            }
        }
        let through = d.saturating_add(metric[e as usize]);
        for t in turns.turns_from(e) {
            let f = turns.to[t];
            let nd = through.saturating_add(turns.penalty_ms[t]);
            if nd < dist[f as usize] {
                dist[f as usize] = nd;
                pred[f as usize] = e;
                heap.push(Reverse((nd, f)));
            }
        }
    }
    let (total, last) = best.filter(|(b, _)| *b != INFINITY_MS)?;
    let mut path = vec![last];
    let mut e = last;
    while pred[e as usize] != NO_PRED {
        e = pred[e as usize];
        path.push(e);
    }
    path.reverse();
    Some((total, path))
}
