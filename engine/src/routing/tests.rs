//! Tests of the hierarchy's internals: a partial update leaves exactly the arrays a
//! full customization of the same metric would, and customization in parallel
//! equals customization on one thread.

use road_graph::{EdgeId, LatLon, OsmData, ProfileConfig, RoadGraph, build_graph};

use super::cch::Topology;
use super::customize::{Customized, customize, update};
use super::metric::{INFINITY_MS, Metric};
use super::turns::TurnCosts;

/// A square grid of streets 50 m apart, every other row one-way.
fn grid(side: usize) -> RoadGraph {
    let mut osm = OsmData::default();
    let id = |r: usize, c: usize| (r * side + c) as i64 + 1;
    for r in 0..side {
        for c in 0..side {
            osm.add_node(
                id(r, c),
                LatLon::new(41.15 - r as f64 * 0.00045, -8.61 + c as f64 * 0.0006),
            );
        }
    }
    for i in 0..side {
        let row = (0..side).map(|c| id(i, c)).collect();
        let col = (0..side).map(|r| id(r, i)).collect();
        let oneway: &[(&str, &str)] = &[("highway", "residential"), ("oneway", "yes")];
        let twoway: &[(&str, &str)] = &[("highway", "residential")];
        osm.add_way(
            1000 + i as i64,
            row,
            if i % 2 == 1 { oneway } else { twoway },
            &ProfileConfig::TRUCK,
        );
        osm.add_way(5000 + i as i64, col, twoway, &ProfileConfig::TRUCK);
    }
    build_graph(&osm).expect("the grid builds").0
}

fn same(a: &Customized, b: &Customized) {
    assert_eq!(a.metric, b.metric);
    assert_eq!(a.weight, b.weight);
    assert_eq!(a.middle, b.middle);
    assert_eq!(a.search_weight, b.search_weight);
}

#[test]
fn a_partial_update_equals_a_full_customization() {
    let graph = grid(12);
    let topo = Topology::build(&graph, &TurnCosts::TRUCK);
    let free = Metric::free_flow(&graph);
    let mut custom = customize(&topo, free.clone());
    let mut metric = free.clone();
    let mut state = 12345u64;
    for round in 0..20 {
        let mut changes = Vec::new();
        for _ in 0..1 + round % 5 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let e = EdgeId(((state >> 33) % graph.n_edges() as u64) as u32);
            let ms = match (state >> 20) % 5 {
                0 => INFINITY_MS,
                1 => free.edge_ms(e),
                _ => 1 + ((state >> 40) % 40_000) as u32,
            };
            changes.push((e, ms));
            metric.set_edge_ms(e, ms);
        }
        update(&topo, &mut custom, &changes);
        same(&custom, &customize(&topo, metric.clone()));
    }
}

#[test]
fn parallel_customization_equals_sequential() {
    let graph = grid(40);
    let topo = Topology::build(&graph, &TurnCosts::TRUCK);
    // Big enough for the cell tree to fork.
    assert!(
        topo.n_arcs() > 2 * super::customize::PARALLEL_MIN_ARCS as usize,
        "{}",
        topo.n_arcs()
    );
    let metric = Metric::free_flow(&graph);
    let parallel = customize(&topo, metric.clone());
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool");
    let sequential = one_thread.install(|| customize(&topo, metric));
    same(&parallel, &sequential);
}
