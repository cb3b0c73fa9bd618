//! The router against the oracle on every extract in `../shared/data/osm`: random
//! pairs of positions (and of snapped points), on the free-flow metric, after a full
//! customization with random weights and closures, and after a partial update of a
//! few hundred edges. Durations must agree to the millisecond, and every returned
//! edge list must be an allowed path of exactly that duration.

use crate::routing_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use engine::{INFINITY_MS, Metric, Router, Snap, TurnCosts};
use road_graph::{EdgeId, NodeId, ProfileConfig, RoadGraph, import_pbf};
use routing_support::{Rng, oracle_ms, path_ms, random_metric, random_position};

const EXTRACTS: [&str; 6] = [
    "baltimore.osm.pbf",
    "columbus.osm.pbf",
    "harrisburg.osm.pbf",
    "monaco.osm.pbf",
    "portland-central.osm.pbf",
    "porto.osm.pbf",
];

fn import(name: &str) -> RoadGraph {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/osm")
        .join(name);
    import_pbf(&path, &ProfileConfig::TRUCK, &mut |_| {})
        .unwrap_or_else(|e| panic!("importing {name}: {e}"))
        .0
}

/// Random endpoints: single positions, and points snapped near random nodes (both
/// directions of the road, several roads at intersections).
fn random_snap(graph: &RoadGraph, rng: &mut Rng) -> Snap {
    if rng.below(3) == 0 {
        let node = graph.node_pos(NodeId(rng.below(graph.n_nodes()) as u32));
        let p = road_graph::LatLon::new(
            node.lat + (rng.unit() - 0.5) * 4e-4,
            node.lon + (rng.unit() - 0.5) * 4e-4,
        );
        if let Some(snap) = Snap::nearest(graph, p, 200.0) {
            return snap;
        }
    }
    let p = random_position(graph, rng);
    Snap::on_edge(p.edge, p.offset_m)
}

/// Checks `n` random pairs; returns how many had a route.
fn check_pairs(name: &str, router: &Router, costs: &TurnCosts, rng: &mut Rng, n: usize) -> usize {
    let graph = router.graph().clone();
    let metric = router.metric();
    let mut found = 0;
    for i in 0..n {
        let from = random_snap(&graph, rng);
        let to = random_snap(&graph, rng);
        let expected = oracle_ms(&graph, costs, &metric, from.candidates(), to.candidates());
        let route = router.route(&from, &to);
        assert_eq!(
            route.as_ref().map(|r| r.duration_ms),
            expected,
            "{name}, pair {i}: {from:?} -> {to:?}"
        );
        // The time-only query (no paths recorded) agrees too.
        assert_eq!(
            router.duration_ms(&from, &to),
            expected,
            "{name}, pair {i}: time only"
        );
        if let Some(route) = route {
            found += 1;
            assert_eq!(
                path_ms(&graph, costs, &metric, &route),
                Some(route.duration_ms),
                "{name}, pair {i}: the edge list"
            );
            assert!(from.candidates().iter().any(|c| c.edge == route.from.edge));
            assert!(to.candidates().iter().any(|c| c.edge == route.to.edge));
            assert!(route.distance_m >= 0.0 && route.distance_m.is_finite());
            let baseline = router.dijkstra_route(&from, &to).map(|r| r.duration_ms);
            assert_eq!(
                baseline,
                Some(route.duration_ms),
                "{name}, pair {i}: the baseline Dijkstra"
            );
        }
    }
    found
}

fn check_extract(name: &str, seed: u64) {
    let graph = Arc::new(import(name));
    let costs = TurnCosts::TRUCK;
    let started = Instant::now();
    let router =
        Router::new(graph.clone(), &costs, Metric::free_flow(&graph)).expect("metric fits");
    let stats = router.stats();
    eprintln!(
        "{name}: hierarchy in {:.2} s: {stats:?}",
        started.elapsed().as_secs_f64()
    );
    let mut rng = Rng::new(seed);

    let found = check_pairs(name, &router, &costs, &mut rng, 40);
    assert!(
        found >= 30,
        "{name}: only {found} of 40 free-flow pairs had a route"
    );

    let base = Metric::free_flow(&graph);
    let random = random_metric(&graph, &base, &mut rng, true);
    let started = Instant::now();
    router.customize(random).expect("metric fits");
    eprintln!(
        "{name}: full customization in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    check_pairs(name, &router, &costs, &mut rng, 30);

    // A partial update: 300 edges slower, faster or closed.
    let mut changes = Vec::new();
    for _ in 0..300 {
        let edge = EdgeId(rng.below(graph.n_edges()) as u32);
        let ms = match rng.below(4) {
            0 => INFINITY_MS,
            _ => ((f64::from(base.edge_ms(edge)) * (0.2 + 4.8 * rng.unit())) as u32).max(1),
        };
        changes.push((edge, ms));
    }
    let recomputed = router.update_edges(&changes).expect("edges exist");
    eprintln!("{name}: partial update of 300 edges looked at {recomputed} arcs");
    for &(edge, ms) in &changes {
        let last = changes.iter().rev().find(|(e, _)| *e == edge).map(|c| c.1);
        if last == Some(ms) {
            assert_eq!(router.metric().edge_ms(edge), ms.max(1));
        }
    }
    check_pairs(name, &router, &costs, &mut rng, 30);
}

#[test]
fn baltimore_agrees_with_the_oracle() {
    check_extract(EXTRACTS[0], 1);
}

#[test]
fn columbus_agrees_with_the_oracle() {
    check_extract(EXTRACTS[1], 2);
}

#[test]
fn harrisburg_agrees_with_the_oracle() {
    check_extract(EXTRACTS[2], 3);
}

#[test]
fn monaco_agrees_with_the_oracle() {
    check_extract(EXTRACTS[3], 4);
}

#[test]
fn portland_with_its_turn_restrictions_agrees_with_the_oracle() {
    check_extract(EXTRACTS[4], 5);
}

#[test]
fn porto_agrees_with_the_oracle() {
    check_extract(EXTRACTS[5], 6);
}
