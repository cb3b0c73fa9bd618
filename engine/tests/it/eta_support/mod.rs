//! What the ETA and traffic tests share: a drawn straight road, a router on it, a
//! truck driving along a route producing matched fixes, and times.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use engine::{
    CalibrationConfig, Calibrator, HosReport, MatchedPoint, Metric, MetricVersion, Route, Router,
    Snap, TurnCosts, VehicleFix,
};
use road_graph::{DrawnMap, EdgeId, RoadGraph};

pub fn at(seconds: f64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).expect("valid time")
        + Duration::milliseconds((seconds * 1000.0) as i64)
}

/// `a`–`b`–`c`–`d`, three 2 km stretches of a 60 km/h two-way primary road (two
/// minutes each at free flow), with a side road `b`–`e` going south.
pub fn straight_road() -> (DrawnMap, Arc<RoadGraph>) {
    let mut map = DrawnMap::new(
        "a---------b---------c---------d\n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         ..........e",
        200.0,
    );
    for way in ["ab", "bc", "cd"] {
        map.way(way, &[("highway", "primary"), ("maxspeed", "60")]);
    }
    map.way("be", &[("highway", "primary"), ("maxspeed", "60")]);
    let (graph, _) = map.build().expect("builds");
    (map, Arc::new(graph))
}

pub fn router(graph: &Arc<RoadGraph>) -> Router {
    Router::new(
        Arc::clone(graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(graph),
    )
    .expect("router")
}

pub fn version(generation: u64, metric: Metric) -> MetricVersion {
    MetricVersion {
        generation,
        metric: Arc::new(metric),
    }
}

pub fn calibrator() -> Calibrator {
    Calibrator::new(CalibrationConfig::standard()).expect("valid")
}

/// The directed edge from one drawn node to another.
pub fn edge(map: &DrawnMap, graph: &RoadGraph, from: char, to: char) -> EdgeId {
    let (a, b) = (
        graph.node_at(map.pos(from)).expect("node"),
        graph.node_at(map.pos(to)).expect("node"),
    );
    graph
        .out_edges(a)
        .find(|&e| graph.edge_head(e) == b)
        .expect("edge between the nodes")
}

pub fn route_between(router: &Router, map: &DrawnMap, from: char, to: char) -> Route {
    let graph = router.graph();
    let a = Snap::nearest(graph, map.pos(from), 10.0).expect("snap");
    let b = Snap::nearest(graph, map.pos(to), 10.0).expect("snap");
    router.route(&a, &b).expect("route")
}

/// A matched fix on `edge` at `offset_m`.
pub fn fix_on(graph: &RoadGraph, edge: EdgeId, offset_m: f64, time: DateTime<Utc>) -> VehicleFix {
    let point = graph.point_along_edge(edge, offset_m);
    VehicleFix {
        time,
        position: point,
        matched: Some(MatchedPoint {
            edge,
            offset_m,
            point,
            distance_m: 0.0,
            confidence: 1.0,
        }),
        hos: HosReport::default(),
    }
}

/// Fixes every `dt_s` of a truck driving `edges` (from the start of the first)
/// at `speed_mps`, starting at `t0_s`; the last fix is at the end.
pub fn drive(
    graph: &RoadGraph,
    edges: &[EdgeId],
    speed_mps: f64,
    dt_s: f64,
    t0_s: f64,
) -> Vec<VehicleFix> {
    let total_m: f64 = edges.iter().map(|&e| graph.edge_length_m(e)).sum();
    let mut fixes = Vec::new();
    let mut s = 0.0;
    loop {
        let along_m = (s * speed_mps).min(total_m);
        let mut left = along_m;
        let mut placed = None;
        for &e in edges {
            let len = graph.edge_length_m(e);
            if left <= len {
                placed = Some((e, left));
                break;
            }
            left -= len;
        }
        let (e, off) = placed.unwrap_or_else(|| {
            let last = *edges.last().expect("edges");
            (last, graph.edge_length_m(last))
        });
        fixes.push(fix_on(graph, e, off, at(t0_s + s)));
        if along_m >= total_m {
            break;
        }
        s += dt_s;
    }
    fixes
}
