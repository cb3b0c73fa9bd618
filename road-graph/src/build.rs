//! From OSM data to topology: split ways at intersections into geometries, make
//! directed edges per the profile, keep the largest strongly connected component
//! (or all of them), order nodes along a space-filling curve, and resolve turn
//! restrictions to edges.

use std::collections::HashMap;

use petgraph::graph::DiGraph;

use crate::error::{Error, Result};
use crate::geo::{E7, LatLon, polyline_length_m};
use crate::graph::{EdgeId, NO_EDGE, NodeId, RestrictionKind, RoadGraph, TurnRestriction};
use crate::osm::{OsmData, ReadCounts};
use crate::profile::{Components, WayProfile};
use crate::spatial::SpatialIndex;

/// The import summary: what was read, kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImportReport {
    #[serde(flatten)]
    pub read: ReadCounts,
    /// Ways with at least one node missing from the file (imported where contiguous).
    pub ways_with_missing_nodes: u64,
    /// The ids of those ways (at most 100 listed).
    pub ways_with_missing_nodes_sample: Vec<i64>,
    pub node_refs_missing: u64,
    pub nodes: u64,
    pub edges: u64,
    pub geoms: u64,
    /// Nodes and directed edges outside the largest strongly connected component.
    pub nodes_dropped_disconnected: u64,
    pub edges_dropped_disconnected: u64,
    /// Components other than the largest.
    pub components_dropped: u64,
    pub restrictions_applied: u64,
    /// Restrictions whose ways do not meet at the via node, or were dropped.
    pub restrictions_unresolved: u64,
    pub length_km: f64,
}

/// A piece of a way between two intersections, before edges are made.
struct Piece {
    way_idx: u32,
    points: Vec<u32>, // indices into the node table
}

/// Builds the graph from OSM data, keeping the largest strongly connected component.
pub fn build_graph(osm: &OsmData) -> Result<(RoadGraph, ImportReport)> {
    build_graph_keeping(osm, Components::Largest)
}

/// Builds the graph from OSM data, keeping the given components.
pub fn build_graph_keeping(
    osm: &OsmData,
    components: Components,
) -> Result<(RoadGraph, ImportReport)> {
    let mut report = ImportReport {
        read: osm.counts,
        ..ImportReport::default()
    };
    let node_idx = |id: i64| osm.nodes.binary_search_by_key(&id, |(i, _)| *i).ok();

    // Split every way into runs of nodes present in the file.
    let mut runs: Vec<(u32, Vec<u32>)> = Vec::new();
    for (way_idx, way) in osm.ways.iter().enumerate() {
        let mut run: Vec<u32> = Vec::new();
        let mut missing = 0u64;
        for &id in &way.nodes {
            match node_idx(id) {
                Some(i) => {
                    if run.last() != Some(&(i as u32)) {
                        run.push(i as u32);
                    }
                }
                None => {
                    missing += 1;
                    if run.len() >= 2 {
                        runs.push((way_idx as u32, std::mem::take(&mut run)));
                    }
                    run.clear();
                }
            }
        }
        if run.len() >= 2 {
            runs.push((way_idx as u32, run));
        }
        if missing > 0 {
            report.ways_with_missing_nodes += 1;
            report.node_refs_missing += missing;
            if report.ways_with_missing_nodes_sample.len() < 100 {
                report.ways_with_missing_nodes_sample.push(way.id);
            }
        }
    }

    // A node is a graph node where runs meet, at run ends, and at restriction vias.
    let mut uses = vec![0u8; osm.nodes.len()];
    for (_, run) in &runs {
        for &n in run {
            uses[n as usize] = uses[n as usize].saturating_add(1);
        }
        for end in [run[0], run[run.len() - 1]] {
            uses[end as usize] = uses[end as usize].saturating_add(2);
        }
    }
    for r in &osm.restrictions {
        if let Some(i) = node_idx(r.via_node) {
            uses[i] = uses[i].saturating_add(2);
        }
    }
    let is_junction = |n: u32| uses[n as usize] >= 2;

    let mut pieces: Vec<Piece> = Vec::new();
    for (way_idx, run) in &runs {
        let mut current = vec![run[0]];
        for &n in &run[1..] {
            current.push(n);
            if is_junction(n) {
                push_piece(
                    &mut pieces,
                    *way_idx,
                    std::mem::replace(&mut current, vec![n]),
                );
            }
        }
    }

    // Graph nodes: the ends of pieces.
    let mut graph_node_of = HashMap::<u32, u32>::new();
    let mut graph_nodes: Vec<u32> = Vec::new();
    for piece in &pieces {
        for end in [piece.points[0], piece.points[piece.points.len() - 1]] {
            graph_node_of.entry(end).or_insert_with(|| {
                graph_nodes.push(end);
                (graph_nodes.len() - 1) as u32
            });
        }
    }
    let pos = |n: u32| osm.nodes[n as usize].1;

    // Directed edges as (tail, head, piece, reversed).
    let mut edges: Vec<(u32, u32, u32, bool)> = Vec::new();
    for (p, piece) in pieces.iter().enumerate() {
        let profile = &osm.ways[piece.way_idx as usize].profile;
        let a = graph_node_of[&piece.points[0]];
        let b = graph_node_of[&piece.points[piece.points.len() - 1]];
        if profile.forward {
            edges.push((a, b, p as u32, false));
        }
        if profile.backward {
            edges.push((b, a, p as u32, true));
        }
    }

    // Keep the largest strongly connected component, or everything.
    let keep = match components {
        Components::Largest => largest_component(graph_nodes.len(), &edges, &mut report)?,
        Components::All => vec![true; graph_nodes.len()],
    };
    let before = edges.len();
    edges.retain(|&(a, b, _, _)| keep[a as usize] && keep[b as usize]);
    report.edges_dropped_disconnected = (before - edges.len()) as u64;
    if edges.is_empty() {
        return Err(Error::EmptyGraph);
    }
    // A node without any edge left (its component dropped) is not kept either.
    let mut used = vec![false; graph_nodes.len()];
    for &(a, b, _, _) in &edges {
        used[a as usize] = true;
        used[b as usize] = true;
    }
    let keep: Vec<bool> = keep.iter().zip(&used).map(|(&k, &u)| k && u).collect();

    // Order the kept nodes along a Hilbert curve, so that nearby nodes sit nearby in
    // memory: searches then touch fewer cache lines.
    let mut kept: Vec<u32> = (0..graph_nodes.len() as u32)
        .filter(|&n| keep[n as usize])
        .collect();
    kept.sort_by_cached_key(|&n| hilbert_key(pos(graph_nodes[n as usize])));
    let mut new_id = vec![u32::MAX; graph_nodes.len()];
    for (i, &n) in kept.iter().enumerate() {
        new_id[n as usize] = i as u32;
    }
    for e in &mut edges {
        e.0 = new_id[e.0 as usize];
        e.1 = new_id[e.1 as usize];
    }
    edges.sort_unstable_by_key(|&(a, b, p, r)| (a, b, p, r));

    // Geometries: the pieces still used, numbered in order of first use.
    let mut geom_of_piece = vec![u32::MAX; pieces.len()];
    let mut graph = RoadGraph {
        node_coord: kept
            .iter()
            .map(|&n| E7::from_latlon(pos(graph_nodes[n as usize])))
            .collect(),
        first_out: vec![0; kept.len() + 1],
        edge_head: Vec::with_capacity(edges.len()),
        edge_tail: Vec::with_capacity(edges.len()),
        edge_geom: Vec::with_capacity(edges.len()),
        edge_speed_kph: Vec::with_capacity(edges.len()),
        edge_class: Vec::with_capacity(edges.len()),
        edge_flags: Vec::with_capacity(edges.len()),
        geom_first: vec![0],
        geom_points: Vec::new(),
        geom_length_m: Vec::new(),
        geom_way: Vec::new(),
        way_ids: osm.ways.iter().map(|w| w.id).collect(),
        geom_edges: Vec::new(),
        geom_limits: Vec::new(),
        restrictions: Vec::new(),
        index: SpatialIndex::default(),
        main_nodes: std::sync::OnceLock::new(),
    };
    for (e, &(tail, head, p, reversed)) in edges.iter().enumerate() {
        let piece = &pieces[p as usize];
        let way = &osm.ways[piece.way_idx as usize];
        if geom_of_piece[p as usize] == u32::MAX {
            geom_of_piece[p as usize] = graph.geom_length_m.len() as u32;
            let points: Vec<LatLon> = piece.points.iter().map(|&n| pos(n)).collect();
            graph
                .geom_length_m
                .push(polyline_length_m(points.iter().copied()) as f32);
            let interior = &points[1..points.len() - 1];
            graph
                .geom_points
                .extend(interior.iter().map(|&p| E7::from_latlon(p)));
            graph.geom_first.push(graph.geom_points.len() as u32);
            graph.geom_way.push(piece.way_idx);
            graph.geom_edges.push([NO_EDGE, NO_EDGE]);
            if !way.profile.limits.is_none() {
                let g = graph.geom_length_m.len() as u32 - 1;
                graph.geom_limits.push((g, way.profile.limits));
            }
        }
        let geom = geom_of_piece[p as usize];
        graph.geom_edges[geom as usize][usize::from(reversed)] = e as u32;
        graph.first_out[tail as usize + 1] += 1;
        graph.edge_tail.push(tail);
        graph.edge_head.push(head);
        graph.edge_geom.push(geom << 1 | u32::from(reversed));
        push_profile(&mut graph, &way.profile);
    }
    for n in 0..kept.len() {
        graph.first_out[n + 1] += graph.first_out[n];
    }
    graph.geom_limits.sort_unstable_by_key(|(g, _)| *g);

    // Map the restrictions' via nodes (OSM ids) to their final graph nodes.
    let via_nodes: HashMap<i64, NodeId> = osm
        .restrictions
        .iter()
        .filter_map(|r| {
            let osm_idx = node_idx(r.via_node)? as u32;
            let n = new_id[*graph_node_of.get(&osm_idx)? as usize];
            (n != u32::MAX).then_some((r.via_node, NodeId(n)))
        })
        .collect();
    resolve_restrictions(osm, &via_nodes, &mut graph, &mut report);

    graph.index = SpatialIndex::build(&graph);
    report.nodes = graph.n_nodes() as u64;
    report.edges = graph.n_edges() as u64;
    report.geoms = graph.n_geoms() as u64;
    report.length_km = graph.length_km();
    Ok((graph, report))
}

/// Marks the nodes of the largest strongly connected component of `n` nodes and
/// `edges`, and counts the rest in the report.
fn largest_component(
    n: usize,
    edges: &[(u32, u32, u32, bool)],
    report: &mut ImportReport,
) -> Result<Vec<bool>> {
    let (keep, n_components) = largest_scc(n, edges.iter().map(|&(a, b, _, _)| (a, b)))?;
    report.components_dropped = n_components as u64 - 1;
    report.nodes_dropped_disconnected = keep.iter().filter(|k| !**k).count() as u64;
    Ok(keep)
}

/// The nodes of the largest strongly connected component of a directed graph of
/// `n` nodes (ties: the one petgraph finds first, deterministic for one graph),
/// and the number of components.
pub(crate) fn largest_scc(
    n: usize,
    edges: impl ExactSizeIterator<Item = (u32, u32)>,
) -> Result<(Vec<bool>, usize)> {
    let mut g = DiGraph::<(), (), u32>::with_capacity(n, edges.len());
    for _ in 0..n {
        g.add_node(());
    }
    for (a, b) in edges {
        g.add_edge(a.into(), b.into(), ());
    }
    let components = petgraph::algo::kosaraju_scc(&g);
    let largest = components
        .iter()
        .max_by_key(|c| c.len())
        .ok_or(Error::EmptyGraph)?;
    let mut keep = vec![false; n];
    for v in largest {
        keep[v.index()] = true;
    }
    Ok((keep, components.len()))
}

fn push_profile(graph: &mut RoadGraph, profile: &WayProfile) {
    graph
        .edge_speed_kph
        .push(profile.speed_kph.round().clamp(1.0, 255.0) as u8);
    graph.edge_class.push(profile.class as u8);
    graph.edge_flags.push(profile.flags.0);
}

/// Adds a piece, splitting a closed loop (both ends at one node) at its middle so
/// that the graph has no self-loops.
fn push_piece(pieces: &mut Vec<Piece>, way_idx: u32, points: Vec<u32>) {
    if points[0] == points[points.len() - 1] {
        if points.len() < 4 {
            // A loop of two segments is a node referenced twice in a row (A B A):
            // it is a U-turn spur, kept as one piece to B.
            if points.len() == 3 {
                pieces.push(Piece {
                    way_idx,
                    points: points[..2].to_vec(),
                });
            }
            return;
        }
        let mid = points.len() / 2;
        pieces.push(Piece {
            way_idx,
            points: points[..=mid].to_vec(),
        });
        pieces.push(Piece {
            way_idx,
            points: points[mid..].to_vec(),
        });
    } else {
        pieces.push(Piece { way_idx, points });
    }
}

fn resolve_restrictions(
    osm: &OsmData,
    via_nodes: &HashMap<i64, NodeId>,
    graph: &mut RoadGraph,
    report: &mut ImportReport,
) {
    let mut in_edges: HashMap<NodeId, Vec<EdgeId>> =
        via_nodes.values().map(|&n| (n, Vec::new())).collect();
    for e in 0..graph.n_edges() as u32 {
        if let Some(list) = in_edges.get_mut(&graph.edge_head(EdgeId(e))) {
            list.push(EdgeId(e));
        }
    }
    let mut out = Vec::new();
    for r in &osm.restrictions {
        let Some(&via) = via_nodes.get(&r.via_node) else {
            report.restrictions_unresolved += 1;
            continue;
        };
        let into: Vec<EdgeId> = in_edges[&via]
            .iter()
            .copied()
            .filter(|&e| graph.edge_way_id(e) == r.from_way)
            .collect();
        let from_via: Vec<EdgeId> = graph
            .out_edges(via)
            .filter(|&e| graph.edge_way_id(e) == r.to_way)
            .collect();
        if into.is_empty() || from_via.is_empty() {
            report.restrictions_unresolved += 1;
            continue;
        }
        report.restrictions_applied += 1;
        for &from in &into {
            for &to in &from_via {
                // A `no_*` restriction from a way onto itself (`no_u_turn`) forbids
                // only the edge going back, not driving on along the same way.
                if r.kind == RestrictionKind::No
                    && r.from_way == r.to_way
                    && graph.reverse_edge(from) != Some(to)
                {
                    continue;
                }
                out.push(TurnRestriction {
                    from,
                    via,
                    to,
                    kind: r.kind,
                });
            }
        }
    }
    out.sort_unstable_by_key(|r| (r.from, r.via, r.to));
    out.dedup();
    graph.restrictions = out;
}

/// Position of a point on a Hilbert curve of order 16 over the whole globe.
fn hilbert_key(p: LatLon) -> u64 {
    let scale = f64::from(u16::MAX);
    let mut x = ((((p.lon + 180.0) / 360.0) * scale) as u32).min(0xffff);
    let mut y = ((((p.lat + 90.0) / 180.0) * scale) as u32).min(0xffff);
    let mut d: u64 = 0;
    let mut s: u32 = 1 << 15;
    while s > 0 {
        let rx = u32::from(x & s > 0);
        let ry = u32::from(y & s > 0);
        d += u64::from(s) * u64::from(s) * u64::from((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = 0xffff - x;
                y = 0xffff - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s >>= 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use crate::drawn::DrawnMap;
    use crate::geo::LatLon;
    use crate::osm::OsmData;
    use crate::profile::ProfileConfig;
    use crate::{EdgeId, RestrictionKind};

    use super::{build_graph, build_graph_keeping};
    use crate::profile::Components;

    #[test]
    fn ways_split_at_shared_nodes_and_oneways_have_one_edge() {
        //   a---b---c
        //       |
        //       d
        let mut map = DrawnMap::new("a---b---c\n\n    d", 100.0);
        map.way("abc", &[]);
        map.way("bd", &[("oneway", "yes")]);
        map.way("db", &[]); // keeps d reachable both ways
        let (g, report) = map.build().expect("builds");
        assert_eq!(g.n_nodes(), 4);
        // a-b, b-c two-way (4), b->d one-way (1), d-b two-way (2)
        assert_eq!(g.n_edges(), 7);
        assert_eq!(report.nodes_dropped_disconnected, 0);
        let ab = (0..g.n_edges() as u32)
            .map(EdgeId)
            .find(|&e| g.node_pos(g.edge_tail(e)) == map.pos('a'))
            .expect("a has an out-edge");
        assert!(
            (g.edge_length_m(ab) - 400.0).abs() < 2.0,
            "{}",
            g.edge_length_m(ab)
        );
    }

    #[test]
    fn a_dead_end_oneway_is_dropped_with_its_component() {
        //   a---b---c
        let mut map = DrawnMap::new("a---b---c", 100.0);
        map.way("ab", &[]);
        map.way("bc", &[("oneway", "yes")]);
        let (g, report) = map.build().expect("builds");
        assert_eq!(g.n_nodes(), 2);
        assert_eq!(report.nodes_dropped_disconnected, 1);
        assert_eq!(report.edges_dropped_disconnected, 1);
    }

    #[test]
    fn keeping_all_components_keeps_a_oneway_cut_at_the_map_edge() {
        //   a-------c---d     c->d one-way off the edge of a clipped extract,
        //                     e-f a separate two-way stub
        //   e---f
        let mut map = DrawnMap::new("a-------c---d\n\ne---f", 100.0);
        map.way("ac", &[]);
        map.way("cd", &[("oneway", "yes")]);
        map.way("ef", &[]);
        let (largest, report) = map.build().expect("builds");
        assert_eq!(largest.n_nodes(), 2);
        assert_eq!(report.components_dropped, 2);
        let (all, report) = build_graph_keeping(map.osm(), Components::All).expect("builds");
        assert_eq!(all.n_nodes(), 5);
        // a-c two-way (2), c->d (1), e-f two-way (2)
        assert_eq!(all.n_edges(), 5);
        assert_eq!(report.nodes_dropped_disconnected, 0);
        assert_eq!(report.edges_dropped_disconnected, 0);
        let c = all.node_at(map.pos('c')).expect("c");
        let d = all.node_at(map.pos('d')).expect("d");
        assert!(all.out_edges(c).any(|e| all.edge_head(e) == d));
        assert_eq!(all.out_edges(d).count(), 0, "d is a dead end in the clip");
    }

    #[test]
    fn a_way_with_a_missing_node_keeps_its_contiguous_parts() {
        let mut osm = OsmData::default();
        for (id, lon) in [(1, 0.0), (2, 0.001), (4, 0.003), (5, 0.004), (6, 0.005)] {
            osm.add_node(id, LatLon::new(41.0, -8.6 + lon));
        }
        osm.add_node(7, LatLon::new(41.001, -8.595));
        // Node 3 is missing from the file: the way becomes 1-2 and 4-5-6; a second
        // way 6-7 makes the second part the larger component.
        osm.add_way(
            10,
            vec![1, 2, 3, 4, 5, 6],
            &[("highway", "primary")],
            &ProfileConfig::TRUCK,
        );
        osm.add_way(
            11,
            vec![6, 7],
            &[("highway", "primary")],
            &ProfileConfig::TRUCK,
        );
        let (g, report) = build_graph(&osm).expect("builds");
        assert_eq!(report.ways_with_missing_nodes, 1);
        assert_eq!(report.node_refs_missing, 1);
        assert_eq!(report.ways_with_missing_nodes_sample, vec![10]);
        // The two parts are disconnected; the larger (4-5-6-7) is kept.
        assert_eq!(g.n_nodes(), 3);
        assert!((g.length_km() - 0.279).abs() < 0.002, "{}", g.length_km());
    }

    #[test]
    fn a_closed_loop_is_split_so_there_are_no_self_loops() {
        //   a---b
        //   |   |
        //   d---c     (one closed way abcda, entered from e)
        //   |
        //   e
        let mut map = DrawnMap::new("a---b\n\nd---c\n\ne", 100.0);
        map.way("abcda", &[]);
        map.way("de", &[]);
        let (g, _) = map.build().expect("builds");
        for e in (0..g.n_edges() as u32).map(EdgeId) {
            assert_ne!(g.edge_tail(e), g.edge_head(e));
        }
    }

    #[test]
    fn turn_restrictions_resolve_to_edges_through_the_via_node() {
        //       n
        //       |
        //   w---x---e
        //       |
        //       s
        let mut map = DrawnMap::new("    n\n\nw---x---e\n\n    s", 100.0);
        let wx = map.way("wx", &[]);
        map.way("xe", &[]);
        let xn = map.way("xn", &[]);
        map.way("xs", &[]);
        map.restriction(wx, 'x', xn, "no_left_turn");
        let (g, report) = map.build().expect("builds");
        assert_eq!(report.restrictions_applied, 1);
        let r = g.turn_restrictions();
        assert_eq!(r.len(), 1);
        assert_eq!(g.node_pos(g.edge_head(r[0].to)), map.pos('n'));
        assert!(r.iter().all(|r| r.kind == RestrictionKind::No));
        let from = r[0].from;
        assert_eq!(g.node_pos(g.edge_tail(from)), map.pos('w'));
        assert!(!g.turn_allowed(from, r[0].to));
        let straight = g
            .out_edges(g.edge_head(from))
            .find(|&e| g.node_pos(g.edge_head(e)) == map.pos('e'))
            .expect("x→e");
        assert!(g.turn_allowed(from, straight));
    }

    #[test]
    fn an_only_restriction_forbids_every_other_turn() {
        let mut map = DrawnMap::new("    n\n\nw---x---e\n\n    s", 100.0);
        let wx = map.way("wx", &[]);
        let xe = map.way("xe", &[]);
        map.way("nxs", &[]);
        map.restriction(wx, 'x', xe, "only_straight_on");
        let (g, _) = map.build().expect("builds");
        let from = g.turn_restrictions()[0].from;
        let x = g.edge_head(from);
        let allowed: Vec<_> = g
            .out_edges(x)
            .filter(|&e| g.turn_allowed(from, e))
            .map(|e| g.node_pos(g.edge_head(e)))
            .collect();
        assert_eq!(allowed, vec![map.pos('e')]);
    }

    #[test]
    fn an_hgv_exempt_restriction_is_not_applied() {
        let mut osm = DrawnMap::new("a---b---c", 100.0).osm().clone();
        let members = [
            crate::Member {
                kind: crate::MemberKind::Way,
                id: 1,
                role: "from",
            },
            crate::Member {
                kind: crate::MemberKind::Node,
                id: 2,
                role: "via",
            },
            crate::Member {
                kind: crate::MemberKind::Way,
                id: 2,
                role: "to",
            },
        ];
        let tags = [
            ("type", "restriction"),
            ("restriction", "no_right_turn"),
            ("except", "hgv"),
        ];
        assert!(!osm.add_restriction(7, &tags, &members));
        assert_eq!(osm.counts.restrictions_not_for_trucks, 1);
    }
}
