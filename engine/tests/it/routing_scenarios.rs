//! Routing scenarios on tiny drawn maps: one-way streets, positions on the same
//! edge, U-turns (only at dead ends, or anywhere with a penalty), turn
//! restrictions, closures, the time-of-day profile, one-to-many and many-to-one,
//! partial updates, and queries running while the metric is swapped.

use crate::routing_support;

use std::sync::Arc;

use engine::{
    EdgePosition, HourOfWeek, INFINITY_MS, Metric, Route, Router, Snap, TurnCosts, WeeklyProfile,
};
use road_graph::{DrawnMap, EdgeId, RoadGraph};
use routing_support::{oracle_ms, path_ms};

const GRID_M: f64 = 25.0;

/// The directed edge between two drawn intersections.
fn edge(graph: &RoadGraph, map: &DrawnMap, from: char, to: char) -> EdgeId {
    let a = graph.node_at(map.pos(from)).expect("drawn intersection");
    let b = graph.node_at(map.pos(to)).expect("drawn intersection");
    graph
        .out_edges(a)
        .find(|&e| graph.edge_head(e) == b)
        .unwrap_or_else(|| panic!("no edge {from}{to}"))
}

fn edges(graph: &RoadGraph, map: &DrawnMap, path: &str) -> Vec<EdgeId> {
    let chars: Vec<char> = path.chars().collect();
    chars
        .windows(2)
        .map(|w| edge(graph, map, w[0], w[1]))
        .collect()
}

fn router(map: &DrawnMap, costs: &TurnCosts) -> Router {
    let (graph, _) = map.build().expect("the drawing builds");
    let graph = Arc::new(graph);
    Router::new(graph.clone(), costs, Metric::free_flow(&graph)).expect("metric fits")
}

fn at(edge: EdgeId, offset_m: f64) -> Snap {
    Snap::on_edge(edge, offset_m)
}

/// Checks a route against the oracle and its own edge list.
fn checked(router: &Router, costs: &TurnCosts, from: &Snap, to: &Snap) -> Option<Route> {
    let graph = router.graph();
    let metric = router.metric();
    let route = router.route(from, to);
    let expected = oracle_ms(graph, costs, &metric, from.candidates(), to.candidates());
    assert_eq!(
        route.as_ref().map(|r| r.duration_ms),
        expected,
        "router vs oracle"
    );
    if let Some(r) = &route {
        assert_eq!(
            path_ms(graph, costs, &metric, r),
            Some(r.duration_ms),
            "edge list"
        );
    }
    route
}

/// A block of two-way streets with a one-way street `a → c` along the top.
///
/// ```text
/// a---b---c
/// |       |
/// d---e---f
/// ```
fn block_with_a_one_way_street() -> DrawnMap {
    let mut map = DrawnMap::new("a---b---c\n|       |\nd---e---f", GRID_M);
    map.way("abc", &[("oneway", "yes")]);
    map.way("cf", &[]);
    map.way("fed", &[]);
    map.way("da", &[]);
    map
}

#[test]
fn a_target_ahead_on_the_same_edge_is_reached_along_it() {
    let map = block_with_a_one_way_street();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let ac = edge(&graph, &map, 'a', 'c');
    let route = checked(&router, &costs, &at(ac, 30.0), &at(ac, 150.0)).expect("a route");
    assert_eq!(route.edges, vec![ac]);
    assert!(
        (route.distance_m - 120.0).abs() < 1.0,
        "{}",
        route.distance_m
    );
    let line = route.geometry(&graph);
    let start = graph.point_along_edge(ac, 30.0);
    assert!(road_graph::haversine_m(line[0], start) < 0.5);
    assert!(
        road_graph::haversine_m(
            *line.last().expect("points"),
            graph.point_along_edge(ac, 150.0)
        ) < 0.5
    );
}

#[test]
fn a_target_behind_on_a_one_way_street_means_driving_round_the_block() {
    let map = block_with_a_one_way_street();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let ac = edge(&graph, &map, 'a', 'c');
    let route = checked(&router, &costs, &at(ac, 150.0), &at(ac, 30.0)).expect("a route");
    assert_eq!(route.edges, edges(&graph, &map, "acfdac"));
    // 50 m to c, 50 + 200 + 50 m round the block, 30 m to the target.
    assert!(
        (route.distance_m - 380.0).abs() < 2.0,
        "{}",
        route.distance_m
    );
}

#[test]
fn a_one_way_street_is_never_driven_backwards() {
    let map = block_with_a_one_way_street();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    // From c to a: not along the one-way street but round by f, e and d.
    let cf = edge(&graph, &map, 'c', 'f');
    let da = edge(&graph, &map, 'd', 'a');
    let route = checked(&router, &costs, &at(cf, 0.0), &at(da, 50.0)).expect("a route");
    assert_eq!(route.edges, edges(&graph, &map, "cfda"));
}

/// A street with a dead end at `c` and a side street at `b`.
///
/// ```text
/// a---b---c
///     |
///     d
/// ```
fn dead_end() -> DrawnMap {
    let mut map = DrawnMap::new("a---b---c\n    |\n    d", GRID_M);
    map.way("abc", &[]);
    map.way("bd", &[]);
    map
}

#[test]
fn a_truck_turns_round_at_a_dead_end_and_pays_for_it() {
    let map = dead_end();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let metric = router.metric();
    let (bc, cb, bd) = (
        edge(&graph, &map, 'b', 'c'),
        edge(&graph, &map, 'c', 'b'),
        edge(&graph, &map, 'b', 'd'),
    );
    // b–c is 100 m long, b–d 50 m (two rows of the drawing).
    let route = checked(&router, &costs, &at(bc, 50.0), &at(bd, 25.0)).expect("a route");
    assert_eq!(route.edges, vec![bc, cb, bd]);
    let driving_ms = metric.edge_ms(bc) / 2 + metric.edge_ms(cb) + metric.edge_ms(bd) / 2;
    let u_turn_ms = costs.dead_end_u_turn_s * 1000;
    assert!(
        route.duration_ms.abs_diff(driving_ms + u_turn_ms) <= 2,
        "{} vs {}",
        route.duration_ms,
        driving_ms + u_turn_ms
    );
}

#[test]
fn no_u_turn_where_the_road_goes_on_unless_the_policy_allows_one() {
    let map = dead_end();
    let trucks = TurnCosts::TRUCK;
    let router_trucks = router(&map, &trucks);
    let graph = router_trucks.graph().clone();
    let (ab, ba) = (edge(&graph, &map, 'a', 'b'), edge(&graph, &map, 'b', 'a'));
    // From a → b to a point behind on b → a: b has other exits, so no U-turn
    // there; the truck turns round at the nearer dead end, d (50 m away; c is
    // 100 m).
    let route = checked(&router_trucks, &trucks, &at(ab, 50.0), &at(ba, 50.0)).expect("a route");
    assert_eq!(route.edges, edges(&graph, &map, "abdba"));

    let anywhere = TurnCosts {
        dead_end_u_turn_s: 60,
        u_turn_s: Some(20),
    };
    let router_anywhere = router(&map, &anywhere);
    let route =
        checked(&router_anywhere, &anywhere, &at(ab, 50.0), &at(ba, 50.0)).expect("a route");
    assert_eq!(
        route.edges,
        vec![ab, ba],
        "a 20 s U-turn at b beats the dead end"
    );
}

/// A street grid where the right turn from `ab` into `bd` may be forbidden.
///
/// ```text
/// a---b---c
///     |   |
///     d---e
///     |
///     f
/// ```
fn junction() -> (DrawnMap, i64, i64, i64) {
    let mut map = DrawnMap::new("a---b---c\n    |   |\n    d---e\n    |\n    f", GRID_M);
    let ab = map.way("ab", &[]);
    let bc = map.way("bc", &[]);
    let bdf = map.way("bdf", &[]);
    map.way("ce", &[]);
    map.way("de", &[]);
    (map, ab, bc, bdf)
}

#[test]
fn without_restrictions_the_truck_turns_right_at_b() {
    let (map, ..) = junction();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let route = checked(
        &router,
        &costs,
        &at(edge(&graph, &map, 'a', 'b'), 0.0),
        &at(edge(&graph, &map, 'd', 'f'), 12.0),
    );
    assert_eq!(route.expect("a route").edges, edges(&graph, &map, "abdf"));
}

#[test]
fn a_no_right_turn_restriction_sends_the_truck_round_the_block() {
    let (mut map, ab, _, bdf) = junction();
    map.restriction(ab, 'b', bdf, "no_right_turn");
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let route = checked(
        &router,
        &costs,
        &at(edge(&graph, &map, 'a', 'b'), 0.0),
        &at(edge(&graph, &map, 'd', 'f'), 12.0),
    );
    assert_eq!(route.expect("a route").edges, edges(&graph, &map, "abcedf"));
}

#[test]
fn an_only_straight_on_restriction_forbids_every_other_turn() {
    let (mut map, ab, bc, _) = junction();
    map.restriction(ab, 'b', bc, "only_straight_on");
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let route = checked(
        &router,
        &costs,
        &at(edge(&graph, &map, 'a', 'b'), 0.0),
        &at(edge(&graph, &map, 'd', 'f'), 12.0),
    );
    assert_eq!(route.expect("a route").edges, edges(&graph, &map, "abcedf"));
}

#[test]
fn a_closed_street_is_avoided_and_a_closed_bridge_leaves_no_route() {
    let (map, ..) = junction();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let (ab, bd, df) = (
        edge(&graph, &map, 'a', 'b'),
        edge(&graph, &map, 'b', 'd'),
        edge(&graph, &map, 'd', 'f'),
    );
    router
        .update_edges(&[(bd, INFINITY_MS)])
        .expect("edges exist");
    let route = checked(&router, &costs, &at(ab, 0.0), &at(df, 12.0)).expect("a route");
    assert_eq!(route.edges, edges(&graph, &map, "abcedf"));
    // f hangs on d alone: with d → f closed, nothing reaches it.
    router
        .update_edges(&[(df, INFINITY_MS)])
        .expect("edges exist");
    assert_eq!(checked(&router, &costs, &at(ab, 0.0), &at(df, 12.0)), None);
    // Reopening restores the first route.
    let free = Metric::free_flow(&graph);
    router
        .update_edges(&[(bd, free.edge_ms(bd)), (df, free.edge_ms(df))])
        .expect("edges exist");
    let route = checked(&router, &costs, &at(ab, 0.0), &at(df, 12.0)).expect("a route");
    assert_eq!(route.edges, edges(&graph, &map, "abdf"));
}

#[test]
fn rush_hour_on_one_street_changes_the_route_only_at_rush_hour() {
    let (map, ..) = junction();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let free = Metric::free_flow(&graph);
    let mut profile = WeeklyProfile::flat(&graph);
    let mut shape = [100u8; HourOfWeek::HOURS];
    shape[8] = 10; // Monday 08:00–09:00 at a tenth of the speed.
    let rush = profile.add_shape(shape).expect("valid shape");
    let bd = edge(&graph, &map, 'b', 'd');
    profile.set_edge_shape(bd, rush).expect("edge exists");
    let (from, to) = (
        at(edge(&graph, &map, 'a', 'b'), 0.0),
        at(edge(&graph, &map, 'd', 'f'), 12.0),
    );

    let monday_8 = HourOfWeek::new(8).expect("an hour");
    router
        .customize(profile.metric_at(&free, monday_8))
        .expect("fits");
    let at_rush_hour = checked(&router, &costs, &from, &to).expect("a route");
    assert_eq!(at_rush_hour.edges, edges(&graph, &map, "abcedf"));
    router
        .customize(profile.metric_at(&free, monday_8.next()))
        .expect("fits");
    let after = checked(&router, &costs, &from, &to).expect("a route");
    assert_eq!(after.edges, edges(&graph, &map, "abdf"));

    // Timing a path hour by hour: entered at 08:59:59 the slow street costs ten
    // times its free-flow time; entered in the next hour, its free-flow time.
    let path = [bd];
    assert_eq!(
        profile.path_duration_ms(&free, &path, monday_8, 3599),
        free.edge_ms(bd) * 10
    );
    assert_eq!(
        profile.path_duration_ms(&free, &path, monday_8.next(), 0),
        free.edge_ms(bd)
    );
}

#[test]
fn one_to_many_and_many_to_one_equal_single_routes() {
    let (map, ..) = junction();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    let positions: Vec<Snap> = (0..graph.n_edges() as u32)
        .map(|e| at(EdgeId(e), graph.edge_length_m(EdgeId(e)) * 0.4))
        .collect();
    for from in &positions {
        let many = router.one_to_many(from, &positions);
        for (to, route) in positions.iter().zip(&many) {
            assert_eq!(
                route,
                &router.route(from, to),
                "one to many, {from:?} -> {to:?}"
            );
        }
    }
    for to in &positions {
        let many = router.many_to_one(&positions, to);
        for (from, route) in positions.iter().zip(&many) {
            assert_eq!(
                route,
                &router.route(from, to),
                "many to one, {from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn a_snapped_point_on_a_two_way_street_may_start_in_either_direction() {
    let (map, ..) = junction();
    let costs = TurnCosts::TRUCK;
    let router = router(&map, &costs);
    let graph = router.graph().clone();
    // Just beside the middle of b–c, to the middle of a–b: driving west along
    // c → b is the way, not east to c and back.
    let mid_bc = graph.point_along_edge(edge(&graph, &map, 'b', 'c'), 50.0);
    let from = Snap::nearest(
        &graph,
        road_graph::LatLon::new(mid_bc.lat + 5e-5, mid_bc.lon),
        50.0,
    )
    .expect("near a road");
    assert_eq!(from.candidates().len(), 2, "both directions of b–c");
    let mid_ab = graph.point_along_edge(edge(&graph, &map, 'a', 'b'), 50.0);
    let to = Snap::nearest(&graph, mid_ab, 50.0).expect("on a road");
    let route = checked(&router, &costs, &from, &to).expect("a route");
    assert_eq!(route.edges, edges(&graph, &map, "cba"));
    assert!(
        (route.distance_m - 100.0).abs() < 2.0,
        "{}",
        route.distance_m
    );
}

#[test]
fn queries_during_metric_swaps_see_one_metric_or_the_other() {
    let (map, ..) = junction();
    let costs = TurnCosts::TRUCK;
    let router = Arc::new(router(&map, &costs));
    let graph = router.graph().clone();
    let free = Metric::free_flow(&graph);
    let slow = Metric::from_edge_ms(&graph, free.as_slice().iter().map(|ms| ms * 3).collect())
        .expect("fits");
    let (from, to) = (
        at(edge(&graph, &map, 'a', 'b'), 0.0),
        at(edge(&graph, &map, 'd', 'f'), 12.0),
    );
    let fast_ms = router.route(&from, &to).expect("a route").duration_ms;
    router.customize(slow.clone()).expect("fits");
    let slow_ms = router.route(&from, &to).expect("a route").duration_ms;
    assert!(slow_ms > fast_ms);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..2000 {
                        let ms = router.route(&from, &to).expect("a route").duration_ms;
                        assert!(
                            ms == fast_ms || ms == slow_ms,
                            "{ms} is neither metric's time"
                        );
                    }
                })
            })
            .collect();
        for i in 0..200 {
            router
                .customize(if i % 2 == 0 {
                    free.clone()
                } else {
                    slow.clone()
                })
                .expect("fits");
        }
        for reader in readers {
            reader.join().expect("reader finished");
        }
    });
}

#[test]
fn a_metric_of_the_wrong_size_and_unknown_edges_are_refused() {
    let (map, ..) = junction();
    let router = router(&map, &TurnCosts::TRUCK);
    let other = DrawnMap::new("a---b", GRID_M);
    let mut other = other;
    other.way("ab", &[]);
    let (small, _) = other.build().expect("builds");
    assert!(router.customize(Metric::free_flow(&small)).is_err());
    assert!(
        router
            .update_edges(&[(EdgeId(u32::MAX - 1), 1000)])
            .is_err()
    );
    // A position on an edge that does not exist is no candidate at all.
    let nowhere = Snap::from_positions(vec![EdgePosition {
        edge: EdgeId(9999),
        offset_m: 0.0,
    }]);
    assert_eq!(router.route(&nowhere, &at(EdgeId(0), 0.0)), None);
}

/// Issue 24: the graph keeps every strongly connected component (map matching
/// must see a one-way road cut off at a clipped map's edge), so a query point
/// next to such a trap must not snap onto it: from there nothing is reachable.
///
/// ```text
/// a---b---c---g     c → g one-way, g a dead end (the map's edge)
/// |       |
/// d---e---f
/// ```
#[test]
fn a_query_point_by_a_cut_off_one_way_snaps_to_the_connected_roads() {
    let mut map = DrawnMap::new("a---b---c---g\n|       |\nd---e---f", GRID_M);
    map.way("abc", &[]);
    map.way("cf", &[]);
    map.way("fed", &[]);
    map.way("da", &[]);
    map.way("cg", &[("oneway", "yes")]);
    let (graph, _) = road_graph::build_graph_keeping(map.osm(), road_graph::Components::All)
        .expect("the drawing builds");
    let cg = edge(&graph, &map, 'c', 'g');
    assert!(!graph.in_main_component(cg), "c → g leads nowhere");
    assert!(graph.in_main_component(edge(&graph, &map, 'd', 'a')));
    let graph = Arc::new(graph);
    let costs = TurnCosts::TRUCK;
    let router = Router::new(graph.clone(), &costs, Metric::free_flow(&graph)).expect("fits");
    let to = Snap::nearest(&graph, map.pos('d'), 50.0).expect("d is on a road");
    // The spur is kept and routable into, but a route out of it does not exist.
    assert!(checked(&router, &costs, &at(cg, 10.0), &to).is_none());
    // At g the spur is the nearest road; the snap passes it over for c's roads.
    let from = Snap::nearest(&graph, map.pos('g'), 200.0).expect("roads near g");
    assert!(
        from.candidates()
            .iter()
            .all(|c| graph.in_main_component(c.edge)),
        "{from:?}"
    );
    assert!(checked(&router, &costs, &from, &to).is_some());
    assert!(checked(&router, &costs, &to, &at(cg, 10.0)).is_some());
}
