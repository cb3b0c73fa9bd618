//! Property tests: on random road graphs (random streets, one-way streets and turn
//! restrictions, both U-turn policies) with random metrics, the router's durations
//! equal the oracle's for random positions, before and after a full
//! re-customization with random weights and closures, and after partial updates.

use crate::routing_support;

use std::sync::Arc;

use engine::{INFINITY_MS, Metric, Router, Snap, TurnCosts};
use proptest::prelude::*;
use road_graph::{
    EdgeId, LatLon, Member, MemberKind, OsmData, ProfileConfig, RoadGraph, build_graph,
};
use routing_support::{Rng, oracle_ms, path_ms, random_metric, random_position};

/// A street between two of the nodes, maybe one-way.
#[derive(Debug, Clone)]
struct Street {
    a: usize,
    b: usize,
    oneway: bool,
}

#[derive(Debug, Clone)]
struct Town {
    n_nodes: usize,
    streets: Vec<Street>,
    /// `(from street, to street, only_)`: applied where the two streets meet.
    restrictions: Vec<(usize, usize, bool)>,
    u_turns_anywhere: bool,
    seed: u64,
}

fn town() -> impl Strategy<Value = Town> {
    (4usize..30).prop_flat_map(|n_nodes| {
        (
            Just(n_nodes),
            prop::collection::vec(
                (0..n_nodes, 0..n_nodes, prop::bool::weighted(0.3)),
                n_nodes..4 * n_nodes,
            ),
            prop::collection::vec((0usize..200, 0usize..200, prop::bool::ANY), 0..12),
            prop::bool::ANY,
            any::<u64>(),
        )
            .prop_map(
                |(n_nodes, streets, restrictions, u_turns_anywhere, seed)| Town {
                    n_nodes,
                    streets: streets
                        .into_iter()
                        .filter(|(a, b, _)| a != b)
                        .map(|(a, b, oneway)| Street { a, b, oneway })
                        .collect(),
                    restrictions,
                    u_turns_anywhere,
                    seed,
                },
            )
    })
}

/// Nodes on a jittered grid near Porto; every street a way of its own.
fn build(town: &Town) -> Option<RoadGraph> {
    let mut rng = Rng::new(town.seed);
    let mut osm = OsmData::default();
    for i in 0..town.n_nodes {
        let (row, col) = ((i / 6) as f64, (i % 6) as f64);
        let p = LatLon::new(
            41.15 + row * 0.001 + rng.unit() * 3e-4,
            -8.61 + col * 0.0013 + rng.unit() * 3e-4,
        );
        osm.add_node(i as i64 + 1, p);
    }
    for (k, s) in town.streets.iter().enumerate() {
        let tags: &[(&str, &str)] = if s.oneway {
            &[("highway", "residential"), ("oneway", "yes")]
        } else {
            &[("highway", "residential")]
        };
        osm.add_way(
            1000 + k as i64,
            vec![s.a as i64 + 1, s.b as i64 + 1],
            tags,
            &ProfileConfig::TRUCK,
        );
    }
    let n_streets = town.streets.len();
    for (r, &(from, to, only)) in town.restrictions.iter().enumerate() {
        if n_streets == 0 {
            break;
        }
        let (from, to) = (from % n_streets, to % n_streets);
        let (f, t) = (&town.streets[from], &town.streets[to]);
        let via = [f.a, f.b].into_iter().find(|v| *v == t.a || *v == t.b);
        let Some(via) = via else { continue };
        let value = if only {
            "only_straight_on"
        } else {
            "no_left_turn"
        };
        let members = [
            Member {
                kind: MemberKind::Way,
                id: 1000 + from as i64,
                role: "from",
            },
            Member {
                kind: MemberKind::Node,
                id: via as i64 + 1,
                role: "via",
            },
            Member {
                kind: MemberKind::Way,
                id: 1000 + to as i64,
                role: "to",
            },
        ];
        osm.add_restriction(
            r as i64 + 1,
            &[("type", "restriction"), ("restriction", value)],
            &members,
        );
    }
    let (graph, _) = build_graph(&osm).ok()?;
    (graph.n_edges() >= 2).then_some(graph)
}

fn check(
    router: &Router,
    costs: &TurnCosts,
    rng: &mut Rng,
    pairs: usize,
) -> Result<(), TestCaseError> {
    let graph = router.graph();
    let metric = router.metric();
    for _ in 0..pairs {
        let (a, b) = (random_position(graph, rng), random_position(graph, rng));
        let (from, to) = (
            Snap::on_edge(a.edge, a.offset_m),
            Snap::on_edge(b.edge, b.offset_m),
        );
        let route = router.route(&from, &to);
        let expected = oracle_ms(graph, costs, &metric, from.candidates(), to.candidates());
        prop_assert_eq!(
            route.as_ref().map(|r| r.duration_ms),
            expected,
            "{:?} -> {:?}",
            a,
            b
        );
        prop_assert_eq!(router.duration_ms(&from, &to), expected);
        if let Some(route) = &route {
            prop_assert_eq!(
                path_ms(graph, costs, &metric, route),
                Some(route.duration_ms)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_router_agrees_with_the_oracle_on_random_towns(town in town()) {
        let Some(graph) = build(&town) else { return Ok(()) };
        let graph = Arc::new(graph);
        let costs = if town.u_turns_anywhere {
            TurnCosts { dead_end_u_turn_s: 45, u_turn_s: Some(25) }
        } else {
            TurnCosts::TRUCK
        };
        let mut rng = Rng::new(town.seed ^ 0x5EED);
        let base = Metric::free_flow(&graph);
        let router = Router::new(graph.clone(), &costs, random_metric(&graph, &base, &mut rng, false))
            .expect("metric fits");
        check(&router, &costs, &mut rng, 20)?;

        router.customize(random_metric(&graph, &base, &mut rng, true)).expect("metric fits");
        check(&router, &costs, &mut rng, 20)?;

        for _ in 0..3 {
            let changes: Vec<(EdgeId, u32)> = (0..1 + rng.below(6))
                .map(|_| {
                    let e = EdgeId(rng.below(graph.n_edges()) as u32);
                    let ms = if rng.below(4) == 0 { INFINITY_MS } else { 1 + rng.below(60_000) as u32 };
                    (e, ms)
                })
                .collect();
            router.update_edges(&changes).expect("edges exist");
            check(&router, &costs, &mut rng, 10)?;
        }
    }
}
