//! The truck profile on tiny drawn maps: each rule seen through the graph it
//! produces, not only through the tag parser.

use road_graph::{DrawnMap, EdgeFlags, EdgeId, RoadClass, RoadGraph};

fn edge_between(g: &RoadGraph, map: &DrawnMap, from: char, to: char) -> Option<EdgeId> {
    (0..g.n_edges() as u32).map(EdgeId).find(|&e| {
        g.node_pos(g.edge_tail(e)) == map.pos(from) && g.node_pos(g.edge_head(e)) == map.pos(to)
    })
}

#[test]
fn a_private_shortcut_is_not_in_the_graph_but_a_delivery_road_is() {
    //   a-------b
    //   |       |
    //   c---d---e
    let mut map = DrawnMap::new("a-------b\n\nc---d---e", 50.0);
    map.way("ab", &[("access", "private")]);
    map.way("acde", &[]);
    map.way("eb", &[("hgv", "delivery")]);
    map.way("ba", &[("access", "private"), ("hgv", "yes")]);
    let (g, _) = map.build().expect("builds");
    // The private way without an hgv exception is gone; the one that allows hgv
    // stays, as does the delivery road, flagged.
    assert!(
        edge_between(&g, &map, 'a', 'b').is_some(),
        "ba allows hgv (two-way)"
    );
    let eb = edge_between(&g, &map, 'e', 'b').expect("delivery road");
    assert!(g.edge_flags(eb).contains(EdgeFlags::DESTINATION_ONLY));
    let ab_ways: Vec<i64> = (0..g.n_edges() as u32)
        .map(EdgeId)
        .filter(|&e| g.node_pos(g.edge_tail(e)) == map.pos('a'))
        .map(|e| g.edge_way_id(e))
        .collect();
    assert!(
        !ab_ways.contains(&100),
        "the plain private way must not be routable"
    );
}

#[test]
fn a_reverse_oneway_runs_against_its_drawing() {
    //   a---b---c, with b-c tagged oneway=-1, reached through a one-way a-d-c
    let mut map = DrawnMap::new("a---b---c\n\n    d", 50.0);
    map.way("ab", &[]);
    map.way("bc", &[("oneway", "-1")]);
    map.way("adc", &[("oneway", "yes")]);
    map.way("db", &[]);
    let (g, _) = map.build().expect("builds");
    assert!(edge_between(&g, &map, 'c', 'b').is_some());
    assert!(edge_between(&g, &map, 'b', 'c').is_none());
}

#[test]
fn speeds_follow_hgv_maxspeed_then_maxspeed_then_the_class_default() {
    //   a---b---c---d
    let mut map = DrawnMap::new("a---b---c---d", 100.0);
    map.way(
        "ab",
        &[
            ("highway", "primary"),
            ("maxspeed", "90"),
            ("maxspeed:hgv", "60"),
        ],
    );
    map.way("bc", &[("highway", "primary"), ("maxspeed", "30 mph")]);
    map.way("cd", &[("highway", "primary")]);
    let (g, _) = map.build().expect("builds");
    let speed = |a, b| g.edge_speed_kph(edge_between(&g, &map, a, b).expect("edge"));
    assert_eq!(speed('a', 'b'), 60.0);
    assert_eq!(speed('b', 'c'), 48.0);
    assert_eq!(speed('c', 'd'), RoadClass::Primary.default_speed_kph());
    // Free-flow time follows: 400 m at 60 km/h is 24 s.
    let ab = edge_between(&g, &map, 'a', 'b').expect("edge");
    assert!(
        (g.edge_free_flow_s(ab) - 24.0).abs() < 0.2,
        "{}",
        g.edge_free_flow_s(ab)
    );
}

#[test]
fn posted_limits_stay_on_their_edges_only() {
    //   a---b---c
    let mut map = DrawnMap::new("a---b---c", 100.0);
    map.way("ab", &[("maxheight", "3.8"), ("maxweight", "7.5")]);
    map.way("bc", &[]);
    let (g, _) = map.build().expect("builds");
    let ab = edge_between(&g, &map, 'a', 'b').expect("edge");
    let ba = edge_between(&g, &map, 'b', 'a').expect("edge");
    let bc = edge_between(&g, &map, 'b', 'c').expect("edge");
    assert_eq!(g.edge_limits(ab).max_height_cm, 380);
    assert_eq!(g.edge_limits(ba).max_weight_kg, 7500);
    assert!(g.edge_limits(bc).is_none());
}

#[test]
fn nearest_edges_give_both_directions_with_their_own_offsets() {
    //   a---------b   (one two-way road, 500 m)
    let mut map = DrawnMap::new("a---------b", 50.0);
    map.way("ab", &[]);
    map.way("ba", &[("highway", "service")]);
    let (g, _) = map.build().expect("builds");
    let a = map.pos('a');
    let b = map.pos('b');
    // 100 m from a, 10 m to the side.
    let p = road_graph::LatLon::new(a.lat + 10.0 / 111_195.0, a.lon + (b.lon - a.lon) * 0.2);
    let found = g.nearest_edges(p, 50.0, 1);
    assert_eq!(found.len(), 2, "{found:?}");
    for c in &found {
        let from_a = g.node_pos(g.edge_tail(c.edge)) == a;
        let expected = if from_a { 100.0 } else { 400.0 };
        assert!((c.offset_m - expected).abs() < 1.0, "{c:?}");
        assert!((c.distance_m - 10.0).abs() < 0.2, "{c:?}");
    }
}
