//! The router's preparation as bytes, stored in the map snapshot (the section
//! [`ROUTER_SECTION`]) so that a process starts routing in milliseconds instead of
//! ordering and contracting the hierarchy again (and customizing its first metric).
//!
//! What is stored is what costs time to compute: the turn graph, the nested
//! dissection order and its cell tree, the upward arcs of the hierarchy, the
//! search arcs, and the last customized metric (its edge times, weights and
//! unpacking). What a pass over those gives back is derived instead, so it
//! cannot disagree with them: on load (ranks of edges, the elimination tree) or
//! on the first customization (arc tails, the downward lists). The search arcs'
//! heads and weights are stored too, and checked equal to their arcs' on load:
//! that reads what gathering them would, without filling fresh memory.
//!
//! Nothing is trusted: on load every length, every index and every property a
//! query relies on to stay in bounds is checked (a row sorted, an arc going up,
//! search arcs among their node's arcs, unpacking that always descends), and the
//! graph's routing fingerprint must be the one the preparation was made for. What
//! only customization relies on (the elimination property that makes the
//! hierarchy chordal, the cells it splits the arcs by) is checked before the
//! first customization instead ([`check_customizable`]): a process that only
//! answers queries on the stored metric (`tracker route`) never pays for it, and
//! one that re-weights (`serve`) asks for it at start. The checks are in
//! [`checks`]. A preparation from another format version or for other turn
//! costs is [`Error::StalePreparation`] (build the router instead); anything
//! else wrong is [`Error::CorruptPreparation`].

use road_graph::{Array, RoadGraph, SectionReader, put_array};

use super::cch::{SearchArcs, Topology, derive};
use super::customize::{Customized, Halves};
use super::metric::Metric;
use super::order::CellTree;
use super::turns::{TurnCosts, TurnGraph};
use crate::error::{Error, Result};
pub(crate) use checks::check_customizable;
use checks::{check_csr, check_middle, check_search, check_turns, check_upward, ranks, unflatten};

mod checks;

/// The snapshot section that holds the router's preparation.
pub const ROUTER_SECTION: [u8; 8] = *b"ROUTER\0\0";

/// Bump on any change of what the section holds or means. Version 2 stores the
/// search arcs' heads and weights (checked against the arcs' on load, so they
/// cannot disagree), instead of gathering them into fresh memory on every start.
const PREPARED_VERSION: u32 = 2;

/// The header: version, graph fingerprint, edge count, turn costs.
fn header(graph: &RoadGraph, costs: &TurnCosts) -> [u32; 6] {
    [
        PREPARED_VERSION,
        graph.routing_fingerprint(),
        graph.n_edges() as u32,
        costs.dead_end_u_turn_s,
        u32::from(costs.u_turn_s.is_some()),
        costs.u_turn_s.unwrap_or(0),
    ]
}

/// The preparation as the bytes of [`ROUTER_SECTION`].
pub(crate) fn encode(
    graph: &RoadGraph,
    costs: &TurnCosts,
    topo: &Topology,
    custom: &Customized,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(topo.heap_bytes() + custom.heap_bytes());
    put_array(&mut out, &header(graph, costs));
    put_array(&mut out, &topo.turns.first);
    put_array(&mut out, &topo.turns.to);
    put_array(&mut out, &topo.turns.penalty_ms);
    put_array(&mut out, &topo.turn_arc);
    put_array(&mut out, &topo.edge_at);
    put_array(&mut out, &topo.first_up);
    put_array(&mut out, &topo.up_head);
    let mut cells = Vec::new();
    flatten(&topo.cells, &mut cells);
    put_array(&mut out, &cells);
    for search in &topo.search {
        put_array(&mut out, &search.first);
        put_array(&mut out, &search.arc);
        put_array(&mut out, &search.head);
    }
    put_array(&mut out, &custom.weight);
    put_array(&mut out, &custom.middle);
    put_array(&mut out, custom.metric.as_slice());
    put_array(&mut out, &custom.search_weight[0]);
    put_array(&mut out, &custom.search_weight[1]);
    out
}

/// The cell tree in preorder, `[len, own, children]` per cell.
fn flatten(cell: &CellTree, out: &mut Vec<[u32; 3]>) {
    out.push([cell.len, cell.own, cell.children.len() as u32]);
    for child in &cell.children {
        flatten(child, out);
    }
}

/// The router's preparation as read from the snapshot, nothing checked yet:
/// [`Router::from_preparation`](super::Router::from_preparation) checks it and
/// builds the router from it. Reading it apart from checking it lets the snapshot
/// loader hand over the section's arrays borrowed from the mapped file (once
/// its checksum holds), so that they are never copied.
pub struct Preparation {
    head: Vec<u32>,
    /// `None` when the header names another format: the rest is not read.
    arrays: Option<Arrays>,
}

impl std::fmt::Debug for Preparation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparation")
            .field("head", &self.head)
            .field("n_arcs", &self.arrays.as_ref().map(|a| a.up_head.len()))
            .finish()
    }
}

/// The stored arrays, in the order [`encode`] writes them. The large ones are
/// borrowed from the mapped snapshot when it is one.
struct Arrays {
    turns: TurnGraph,
    turn_arc: Array<u32>,
    edge_at: Array<u32>,
    first_up: Array<u32>,
    up_head: Array<u32>,
    cells: Vec<[u32; 3]>,
    search: [SearchArcs; 2],
    weight: Array<[u32; 2]>,
    middle: Array<Halves>,
    edge_ms: Vec<u32>,
    search_weight: [Array<u32>; 2],
}

impl Preparation {
    /// Reads the arrays of [`ROUTER_SECTION`] (from its bytes, or from the
    /// snapshot as it is loaded: `road_graph::load_snapshot_claiming`). Only
    /// reads: `Err` says the arrays end early or run on past the last.
    pub fn read(r: &mut SectionReader<'_>) -> Result<Preparation, String> {
        let head: Vec<u32> = r.take()?;
        if head.first() != Some(&PREPARED_VERSION) {
            // Another format: what follows may be laid out otherwise.
            return Ok(Preparation { head, arrays: None });
        }
        let turns = TurnGraph {
            first: r.take_array()?,
            to: r.take_array()?,
            penalty_ms: r.take_array()?,
        };
        let turn_arc = r.take_array()?;
        let edge_at = r.take_array()?;
        let first_up = r.take_array()?;
        let up_head = r.take_array()?;
        let cells = r.take()?;
        let mut search: [SearchArcs; 2] = Default::default();
        for s in &mut search {
            s.first = r.take_array()?;
            s.arc = r.take_array()?;
            s.head = r.take_array()?;
        }
        let arrays = Arrays {
            turns,
            turn_arc,
            edge_at,
            first_up,
            up_head,
            cells,
            search,
            weight: r.take_array()?,
            middle: r.take_array()?,
            edge_ms: r.take()?,
            search_weight: [r.take_array()?, r.take_array()?],
        };
        if !r.is_empty() {
            return Err("bytes after the last array".into());
        }
        Ok(Preparation {
            head,
            arrays: Some(arrays),
        })
    }
}

/// Checks a preparation read by [`Preparation::read`] for `graph` and `costs`,
/// and derives what it does not store. The checks over every arc run in
/// parallel, each reporting the lowest rank that fails.
pub(crate) fn check(
    graph: &RoadGraph,
    costs: &TurnCosts,
    prepared: Preparation,
) -> Result<(Topology, Customized)> {
    let corrupt = |reason: String| Error::CorruptPreparation { reason };
    let Preparation { head, arrays } = prepared;
    let expected = header(graph, costs);
    match head.first() {
        Some(&PREPARED_VERSION) => {}
        Some(&found) => {
            return Err(Error::StalePreparation {
                reason: format!(
                    "made by preparation format {found}, this build reads {PREPARED_VERSION}"
                ),
            });
        }
        None => return Err(corrupt("no header".into())),
    }
    if head.len() != expected.len() {
        return Err(corrupt(format!("header of {} words", head.len())));
    }
    if head[1..3] != expected[1..3] {
        return Err(Error::PreparationForOtherGraph {
            found: head[1],
            expected: expected[1],
        });
    }
    if head[3..] != expected[3..] {
        return Err(Error::StalePreparation {
            reason: format!(
                "made for other turn costs (dead-end U-turn {} s, U-turns {}), asked for {costs:?}",
                head[3],
                if head[4] == 1 {
                    format!("{} s", head[5])
                } else {
                    "only at dead ends".into()
                },
            ),
        });
    }
    let Some(Arrays {
        turns,
        turn_arc,
        edge_at,
        first_up,
        up_head,
        cells,
        search,
        weight,
        middle,
        edge_ms,
        search_weight,
    }) = arrays
    else {
        return Err(corrupt("no arrays after the header".into()));
    };

    let n = graph.n_edges();
    let n_arcs = up_head.len();
    // The cheap checks of the turns and the order on one thread, the hierarchy's
    // (every arc, several times) on the others.
    let (cheap, hierarchy) = rayon::join(
        || -> Result<_, String> {
            check_turns(&turns, &turn_arc, n, n_arcs)?;
            let rank_of = ranks(&edge_at, n)?;
            let cells = unflatten(&cells, n)?;
            if weight.len() != n_arcs || middle.len() != n_arcs {
                return Err("weights for another number of arcs".into());
            }
            Ok((rank_of, cells))
        },
        || -> Result<(), String> {
            check_csr("hierarchy", &first_up, n, n_arcs)?;
            let (rows, unpacking) = rayon::join(
                || check_upward(&first_up, &up_head),
                || {
                    if middle.len() != n_arcs {
                        // Reported by the other side.
                        return Ok(());
                    }
                    check_middle(&first_up, &middle)
                },
            );
            rows.and(unpacking)?;
            if weight.len() != n_arcs {
                // Reported by the other side.
                return Ok(());
            }
            search
                .iter()
                .zip(&search_weight)
                .enumerate()
                .try_for_each(|(dir, (s, w))| check_search(dir, s, w, &first_up, &up_head, &weight))
        },
    );
    hierarchy.map_err(corrupt)?;
    let (rank_of, cells) = cheap.map_err(corrupt)?;
    let metric = Metric::from_edge_ms(graph, edge_ms).map_err(|e| corrupt(e.to_string()))?;

    let mut topo = derive(
        graph, turns, turn_arc, rank_of, edge_at, first_up, up_head, cells,
    );
    topo.search = search;
    let custom = Customized {
        weight,
        middle,
        search_weight,
        metric,
    };
    Ok((topo, custom))
}
