//! The router's stored preparation (`Router::prepared`, `Router::from_prepared`):
//! a router loaded from it answers exactly as the one that was built, on a drawn
//! town and on real extracts; a new metric after loading customizes as on a fresh
//! router; a preparation for another graph, for other turn costs, cut short or
//! damaged anywhere is refused with the reason, and never makes anything panic.

use crate::routing_support;

use std::path::PathBuf;
use std::sync::Arc;

use engine::{Error, Metric, Router, Snap, TurnCosts};
use road_graph::{DrawnMap, EdgeId, ProfileConfig, RoadGraph, import_pbf};
use routing_support::{Rng, random_metric, random_position};

/// ```text
///   a---b---c---d
///   |   |   |   |
///   e---f---g---h
///   |       |
///   i-------j
/// ```
/// `bc` is one-way east, and at `f` no truck may turn left from `ef` into `fb`.
fn town() -> Arc<RoadGraph> {
    let mut map = DrawnMap::new(
        "a---b---c---d\n|   |   |   |\ne---f---g---h\n|       |\ni-------j",
        60.0,
    );
    map.way("ab", &[]);
    map.way("bc", &[("oneway", "yes")]);
    map.way("cd", &[]);
    let ef = map.way("ef", &[]);
    map.way("fgh", &[]);
    map.way("aei", &[]);
    let bf = map.way("bf", &[]);
    map.way("cgj", &[]);
    map.way("dh", &[]);
    map.way("ij", &[]);
    map.restriction(ef, 'f', bf, "no_left_turn");
    Arc::new(map.build().expect("the town builds").0)
}

/// Every edge at a third and two thirds of its length: every pair of them.
fn every_pair(graph: &RoadGraph) -> Vec<(Snap, Snap)> {
    let points: Vec<Snap> = (0..graph.n_edges() as u32)
        .flat_map(|e| {
            let length_m = graph.edge_length_m(EdgeId(e));
            [1.0, 2.0].map(|k| Snap::on_edge(EdgeId(e), length_m * k / 3.0))
        })
        .collect();
    points
        .iter()
        .flat_map(|a| points.iter().map(move |b| (a.clone(), b.clone())))
        .collect()
}

fn random_pairs(graph: &RoadGraph, rng: &mut Rng, n: usize) -> Vec<(Snap, Snap)> {
    (0..n)
        .map(|_| {
            let (a, b) = (random_position(graph, rng), random_position(graph, rng));
            (
                Snap::on_edge(a.edge, a.offset_m),
                Snap::on_edge(b.edge, b.offset_m),
            )
        })
        .collect()
}

/// Both routers give the same routes (edges, time, length) and times.
fn same_answers(built: &Router, loaded: &Router, pairs: &[(Snap, Snap)]) -> usize {
    let mut found = 0;
    for (from, to) in pairs {
        let route = built.route(from, to);
        assert_eq!(loaded.route(from, to), route, "{from:?} -> {to:?}");
        assert_eq!(loaded.duration_ms(from, to), built.duration_ms(from, to));
        found += usize::from(route.is_some());
    }
    found
}

/// The hierarchy's sizes (memory aside: loaded arrays have no spare capacity).
fn shape(router: &Router) -> (usize, usize, usize, u64, usize) {
    let s = router.stats();
    (s.nodes, s.turns, s.arcs, s.triangles, s.etree_depth)
}

fn free_flow_router(graph: &Arc<RoadGraph>, costs: &TurnCosts) -> Router {
    Router::new(Arc::clone(graph), costs, Metric::free_flow(graph)).expect("metric fits")
}

#[test]
fn a_loaded_router_answers_as_the_built_one_and_stores_the_same_bytes() {
    let graph = town();
    let built = free_flow_router(&graph, &TurnCosts::TRUCK);
    let prepared = built.prepared();
    let loaded = Router::from_prepared(
        Arc::clone(&graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(&graph),
        &prepared,
    )
    .expect("its own preparation loads");
    assert_eq!(shape(&loaded), shape(&built));
    assert_eq!(
        loaded.prepared(),
        prepared,
        "nothing lost or changed on the way"
    );
    let pairs = every_pair(&graph);
    let found = same_answers(&built, &loaded, &pairs);
    assert!(
        found > pairs.len() / 2,
        "only {found} of {} had a route",
        pairs.len()
    );
    let targets: Vec<Snap> = pairs.iter().take(20).map(|(_, to)| to.clone()).collect();
    assert_eq!(
        loaded.one_to_many(&pairs[0].0, &targets),
        built.one_to_many(&pairs[0].0, &targets)
    );
}

/// Through a snapshot on disk, as `route` and `serve` load it: the preparation's
/// arrays are borrowed from the mapped file, and a router over them answers,
/// re-weights in part (copying the weights on their first change) and stores
/// the same bytes as the router that was built.
#[test]
fn a_router_over_a_mapped_snapshot_answers_and_updates_as_the_built_one() {
    let graph = town();
    let built = free_flow_router(&graph, &TurnCosts::TRUCK);
    let section = road_graph::Section {
        tag: engine::ROUTER_SECTION,
        bytes: built.prepared(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("town.graph");
    road_graph::save_snapshot(&graph, &[section], &path).expect("saves");
    let (snapshot, prepared) = road_graph::load_snapshot_claiming(
        &path,
        engine::ROUTER_SECTION,
        engine::Preparation::read,
    )
    .expect("loads");
    let prepared = prepared.expect("stored").expect("reads");
    let loaded_graph = Arc::new(snapshot.graph);
    let loaded = Router::from_preparation(
        Arc::clone(&loaded_graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(&loaded_graph),
        prepared,
    )
    .expect("its own preparation loads");
    assert!(
        loaded.stats().topology_bytes + loaded.stats().metric_bytes
            < (built.stats().topology_bytes + built.stats().metric_bytes) / 2,
        "the large arrays are borrowed, not copied: {:?} against {:?}",
        loaded.stats(),
        built.stats()
    );
    let pairs = every_pair(&graph);
    same_answers(&built, &loaded, &pairs);
    let closed = [(EdgeId(0), engine::INFINITY_MS), (EdgeId(3), 90_000)];
    assert_eq!(
        loaded.update_edges(&closed).expect("known edges"),
        built.update_edges(&closed).expect("known edges")
    );
    same_answers(&built, &loaded, &pairs);
    assert_eq!(loaded.prepared(), built.prepared());
    // The file itself is as written: a second load answers as before the update.
    let (again, prepared) = road_graph::load_snapshot_claiming(
        &path,
        engine::ROUTER_SECTION,
        engine::Preparation::read,
    )
    .expect("loads");
    let again_graph = Arc::new(again.graph);
    let fresh = Router::from_preparation(
        Arc::clone(&again_graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(&again_graph),
        prepared.expect("stored").expect("reads"),
    )
    .expect("loads");
    same_answers(&free_flow_router(&graph, &TurnCosts::TRUCK), &fresh, &pairs);
}

#[test]
fn another_metric_at_load_and_after_it_gives_what_a_fresh_router_gives() {
    let graph = town();
    let prepared = free_flow_router(&graph, &TurnCosts::TRUCK).prepared();
    let mut rng = Rng::new(7);
    let base = Metric::free_flow(&graph);
    let rush = random_metric(&graph, &base, &mut rng, true);
    let built = Router::new(Arc::clone(&graph), &TurnCosts::TRUCK, rush.clone()).expect("fits");
    let loaded = Router::from_prepared(
        Arc::clone(&graph),
        &TurnCosts::TRUCK,
        rush.clone(),
        &prepared,
    )
    .expect("loads with another metric");
    assert_eq!(loaded.metric(), rush);
    let pairs = every_pair(&graph);
    same_answers(&built, &loaded, &pairs);

    // Later metrics, whole and in part, land the same on both.
    let night = random_metric(&graph, &base, &mut rng, false);
    built.customize(night.clone()).expect("fits");
    loaded.customize(night).expect("fits");
    same_answers(&built, &loaded, &pairs);
    let closed = [(EdgeId(0), engine::INFINITY_MS), (EdgeId(3), 90_000)];
    assert_eq!(
        loaded.update_edges(&closed).expect("known edges"),
        built.update_edges(&closed).expect("known edges")
    );
    same_answers(&built, &loaded, &pairs);
    assert_eq!(loaded.prepared(), built.prepared());
}

#[test]
fn a_preparation_for_another_graph_is_refused() {
    let prepared = free_flow_router(&town(), &TurnCosts::TRUCK).prepared();
    let mut map = DrawnMap::new("a---b---c\n    |\n    d", 60.0);
    map.way("abc", &[]);
    map.way("bd", &[]);
    let other = Arc::new(map.build().expect("builds").0);
    let err = Router::from_prepared(
        Arc::clone(&other),
        &TurnCosts::TRUCK,
        Metric::free_flow(&other),
        &prepared,
    )
    .expect_err("another graph");
    assert!(
        matches!(err, Error::PreparationForOtherGraph { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("made for another graph"), "{err}");
}

#[test]
fn other_turn_costs_or_another_format_make_it_stale_not_corrupt() {
    let graph = town();
    let prepared = free_flow_router(&graph, &TurnCosts::TRUCK).prepared();
    let u_turns = TurnCosts {
        dead_end_u_turn_s: 60,
        u_turn_s: Some(30),
    };
    let err = Router::from_prepared(
        Arc::clone(&graph),
        &u_turns,
        Metric::free_flow(&graph),
        &prepared,
    )
    .expect_err("other turn costs");
    assert!(matches!(err, Error::StalePreparation { .. }), "{err:?}");
    assert!(err.to_string().contains("other turn costs"), "{err}");

    // The format version is the first word after the header array's count.
    let mut newer = prepared.clone();
    newer[8..12].copy_from_slice(&99u32.to_le_bytes());
    let err = Router::from_prepared(
        Arc::clone(&graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(&graph),
        &newer,
    )
    .expect_err("another format");
    assert!(matches!(err, Error::StalePreparation { .. }), "{err:?}");
    assert!(err.to_string().contains("format 99"), "{err}");
}

#[test]
fn a_preparation_cut_short_or_with_bytes_after_it_is_corrupt() {
    let graph = town();
    let prepared = free_flow_router(&graph, &TurnCosts::TRUCK).prepared();
    let load = |bytes: &[u8]| {
        Router::from_prepared(
            Arc::clone(&graph),
            &TurnCosts::TRUCK,
            Metric::free_flow(&graph),
            bytes,
        )
    };
    for cut in [0, 7, 40, prepared.len() / 2, prepared.len() - 1] {
        let err = load(&prepared[..cut]).expect_err("cut short");
        assert!(
            matches!(err, Error::CorruptPreparation { .. }),
            "{cut}: {err:?}"
        );
    }
    let mut longer = prepared.clone();
    longer.push(0);
    let err = load(&longer).expect_err("a byte after the end");
    assert!(
        err.to_string().contains("bytes after the last array"),
        "{err}"
    );
}

/// Whatever one word of the preparation is changed to, loading either refuses
/// it or gives a router whose queries run to the end, and whose customization
/// is either refused (what only it relies on is checked before the first) or
/// runs to the end: the checks stand between the bytes and every index the
/// router follows.
#[test]
fn no_damaged_word_makes_loading_or_routing_panic() {
    let graph = town();
    let prepared = free_flow_router(&graph, &TurnCosts::TRUCK).prepared();
    let pairs: Vec<(Snap, Snap)> = every_pair(&graph).into_iter().step_by(37).collect();
    let mut rng = Rng::new(11);
    let another = random_metric(&graph, &Metric::free_flow(&graph), &mut rng, true);
    let (mut refused, mut accepted, mut refused_late) = (0, 0, 0);
    for word in 0..prepared.len() / 4 {
        let original = u32::from_le_bytes(
            prepared[word * 4..word * 4 + 4]
                .try_into()
                .expect("four bytes"),
        );
        for value in [
            0,
            1,
            original ^ 1,
            original.wrapping_add(3),
            u32::MAX,
            1 << 31,
        ] {
            if value == original {
                continue;
            }
            let mut bytes = prepared.clone();
            bytes[word * 4..word * 4 + 4].copy_from_slice(&value.to_le_bytes());
            match Router::from_prepared(
                Arc::clone(&graph),
                &TurnCosts::TRUCK,
                Metric::free_flow(&graph),
                &bytes,
            ) {
                Err(_) => refused += 1,
                Ok(router) => {
                    for (from, to) in &pairs {
                        let _ = router.route(from, to);
                    }
                    // What only customization relies on is checked before it.
                    match router.customize(another.clone()) {
                        Err(err) => {
                            assert!(matches!(err, Error::CorruptPreparation { .. }), "{err:?}");
                            assert!(router.check_customizable().is_err());
                            assert!(router.update_edges(&[(EdgeId(2), 1_000)]).is_err());
                            refused += 1;
                            refused_late += 1;
                        }
                        Ok(()) => {
                            accepted += 1;
                            let _ = router.update_edges(&[(EdgeId(2), 1_000)]);
                        }
                    }
                    for (from, to) in &pairs {
                        let _ = router.route(from, to);
                    }
                }
            }
        }
    }
    // Times and weights are not checkable without recomputing them; everything
    // that indexes is.
    assert!(
        refused > accepted / 4,
        "{refused} refused, {accepted} accepted"
    );
    assert!(
        refused_late > 0,
        "some damage (the elimination property, the cells) is found only before customizing"
    );
}

fn import(name: &str) -> Arc<RoadGraph> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/osm")
        .join(name);
    let graph = import_pbf(&path, &ProfileConfig::TRUCK, &mut |_| {})
        .unwrap_or_else(|e| panic!("importing {name}: {e}"))
        .0;
    Arc::new(graph)
}

#[test]
fn on_real_extracts_a_loaded_router_answers_as_the_built_one() {
    for (name, seed) in [("monaco.osm.pbf", 1), ("harrisburg.osm.pbf", 2)] {
        let graph = import(name);
        let built = free_flow_router(&graph, &TurnCosts::TRUCK);
        let prepared = built.prepared();
        let loaded = Router::from_prepared(
            Arc::clone(&graph),
            &TurnCosts::TRUCK,
            Metric::free_flow(&graph),
            &prepared,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(shape(&loaded), shape(&built), "{name}");
        let pairs = random_pairs(&graph, &mut Rng::new(seed), 300);
        let found = same_answers(&built, &loaded, &pairs);
        assert!(
            found >= 200,
            "{name}: only {found} of 300 pairs had a route"
        );
        assert!(loaded.prepared() == prepared, "{name}: stored bytes differ");
    }
}
