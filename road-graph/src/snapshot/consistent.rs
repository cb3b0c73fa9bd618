//! The graph a snapshot gives back, checked index by index before anyone uses
//! it: a checksum that holds by chance must never turn into a panic later.

use crate::graph::RoadGraph;

/// Checks every index in the arrays, so that a corrupt file that passed the
/// checksum by chance can never make a later lookup panic.
pub(super) fn check_consistent(g: &RoadGraph) -> Result<(), String> {
    let n_nodes = g.node_coord.len();
    let n_edges = g.edge_head.len();
    let n_geoms = g.geom_length_m.len();
    let same = [
        g.edge_tail.len(),
        g.edge_geom.len(),
        g.edge_speed_kph.len(),
        g.edge_class.len(),
        g.edge_flags.len(),
    ];
    if same.iter().any(|&l| l != n_edges)
        || g.first_out.len() != n_nodes + 1
        || g.geom_first.len() != n_geoms + 1
        || g.geom_way.len() != n_geoms
        || g.geom_edges.len() != n_geoms
    {
        return Err("array lengths disagree".into());
    }
    if g.first_out.windows(2).any(|w| w[0] > w[1]) || g.first_out.last() != Some(&(n_edges as u32))
    {
        return Err("edge offsets are not monotone".into());
    }
    if g.geom_first.windows(2).any(|w| w[1] < w[0])
        || g.geom_first.last() != Some(&(g.geom_points.len() as u32))
    {
        return Err("geometry offsets are not monotone".into());
    }
    let node_ok = |n: u32| (n as usize) < n_nodes;
    let edge_ok = |e: u32| (e as usize) < n_edges;
    if !g.edge_head.iter().chain(&g.edge_tail).all(|&n| node_ok(n))
        || !g.edge_geom.iter().all(|&x| ((x >> 1) as usize) < n_geoms)
        || !g
            .geom_edges
            .iter()
            .flatten()
            .all(|&e| e == u32::MAX || edge_ok(e))
        || !g.geom_limits.iter().all(|(x, _)| (*x as usize) < n_geoms)
        || !g.geom_way.iter().all(|&w| (w as usize) < g.way_ids.len())
        || !g
            .geom_edges
            .iter()
            .all(|&[f, b]| f != u32::MAX || b != u32::MAX)
        || !g
            .restrictions
            .iter()
            .all(|r| edge_ok(r.from.0) && edge_ok(r.to.0) && node_ok(r.via.0))
    {
        return Err("an index points outside its array".into());
    }
    if g.edge_class
        .iter()
        .any(|&c| crate::profile::RoadClass::from_u8(c).is_none())
    {
        return Err("unknown road class".into());
    }
    Ok(())
}
