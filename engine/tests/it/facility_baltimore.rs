//! Facilities on the bundled Baltimore map (`../shared/data/osm`): stops whose
//! points lie 100–300 m off the nearest truck road, as warehouses in their
//! yards do, and a truck that drives the real roads to each stop's access
//! point, crawls into the yard, stands, and drives on — its fixes with seeded
//! GPS noise, fed one by one to the live engine. The event sequence is
//! asserted exactly, stop by stop; arrivals and departures must be said within
//! two minutes of standing in the yard and of leaving it.

use crate::facility_support;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono_tz::Tz;
use engine::{
    ActiveOrder, ActiveStop, EngineEvent, LiveConfig, LiveEngine, Metric, OrderId, OrderStatus,
    Position, Router, Snap, SpeedProfile, StatusSource, StopKind, TrackerConfig, TurnCosts,
    VehicleId,
};
use facility_support::{Trip, etas, moves, offset, seconds_since_t0, statuses};
use road_graph::{LatLon, ProfileConfig, RoadGraph, haversine_m, import_pbf};

const TRUCK: &str = "T1";

/// The map and its router, built once for the whole file.
fn baltimore() -> &'static Arc<Router> {
    static ROUTER: OnceLock<Arc<Router>> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/osm/baltimore.osm.pbf");
        let graph = Arc::new(
            import_pbf(&path, &ProfileConfig::TRUCK, &mut |_| {})
                .expect("the bundled Baltimore map")
                .0,
        );
        let metric = Metric::free_flow(&graph);
        Arc::new(Router::new(graph, &TurnCosts::TRUCK, metric).expect("router"))
    })
}

fn engine() -> LiveEngine {
    LiveEngine::new(
        Arc::clone(baltimore()),
        LiveConfig::truck(Tz::UTC),
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect("engine")
}

/// A facility: its point in the yard and its access point on the road.
#[derive(Debug, Clone, Copy)]
struct Facility {
    point: LatLon,
    access: LatLon,
    off_road_m: f64,
}

/// Facilities 120–280 m from the nearest routable road, at least `spacing_m` apart,
/// found deterministically from the map's nodes (every `stride`-th node, a
/// point 250 m off it in one of four directions).
fn facilities(graph: &RoadGraph, n: usize, spacing_m: f64, stride: usize) -> Vec<Facility> {
    let mut found: Vec<Facility> = Vec::new();
    let centre = LatLon::new(39.29, -76.61);
    for i in (0..graph.n_nodes()).step_by(stride) {
        let node = graph.node_pos(road_graph::NodeId(i as u32));
        if haversine_m(node, centre) > 6000.0 {
            continue;
        }
        for (e, north) in [(0.0, 250.0), (250.0, 0.0), (0.0, -250.0), (-250.0, 0.0)] {
            let point = offset(node, e, north);
            // The nearest road a route can reach (the largest component):
            // what the engine's access point is.
            let Some(nearest) = graph
                .nearest_edges(point, 400.0, 16)
                .into_iter()
                .find(|c| graph.in_main_component(c.edge))
            else {
                continue;
            };
            let far_enough = found
                .iter()
                .all(|f| haversine_m(f.point, point) >= spacing_m);
            if (120.0..=280.0).contains(&nearest.distance_m) && far_enough {
                found.push(Facility {
                    point,
                    access: nearest.point,
                    off_road_m: nearest.distance_m,
                });
                break;
            }
        }
        if found.len() == n {
            break;
        }
    }
    assert_eq!(found.len(), n, "facilities on the map");
    found
}

/// The road from one place to another as points (the router's route).
fn road(from: LatLon, to: LatLon) -> Vec<LatLon> {
    let router = baltimore();
    let graph = router.graph();
    let a = Snap::nearest(graph, from, 300.0).expect("from near a road");
    let b = Snap::nearest(graph, to, 300.0).expect("to near a road");
    let route = router.route(&a, &b).expect("a route");
    let n = route.edges.len();
    let mut points = Vec::new();
    for (i, &edge) in route.edges.iter().enumerate() {
        let begin = if i == 0 { route.from.offset_m } else { 0.0 };
        let end = if i + 1 == n {
            route.to.offset_m
        } else {
            graph.edge_length_m(edge)
        };
        points.extend(graph.edge_points_between(edge, begin, end.max(begin)));
    }
    points.push(to);
    points
}

fn stop(kind: StopKind, f: &Facility) -> ActiveStop {
    ActiveStop {
        kind,
        position: f.point,
        window: None,
        geofence: None,
        arrived_at: None,
        departed_at: None,
        skipped_at: None,
    }
}

fn order(stops: Vec<ActiveStop>) -> ActiveOrder {
    ActiveOrder {
        order_id: OrderId("ord_balt".into()),
        tenant_id: engine::TenantId(facility_support::TENANT.into()),
        vehicle_id: VehicleId(TRUCK.into()),
        status: OrderStatus::Dispatched,
        stops,
    }
}

/// Where the truck began standing in each yard and when it went out of
/// its fence again.
#[derive(Debug, Default)]
struct Visits {
    standing_s: Vec<f64>,
    out_s: Vec<f64>,
}

/// The truck drives from `start` to each facility's access point at 12 m/s,
/// crawls into the yard at 3 m/s, stands `stand_s`, crawls out, and drives on.
fn visit_all(start: LatLon, stops: &[Facility], stand_s: f64, seed: u64) -> (Trip, Visits) {
    let mut trip = Trip::new(TRUCK, start, 0.0, 5.0).noise(5.0, seed);
    let mut visits = Visits::default();
    let radius_m = TrackerConfig::TRUCK.geofence_radius_m;
    for (k, f) in stops.iter().enumerate() {
        trip.drive(&road(trip.here, f.access), 12.0);
        trip.drive(&[f.point], 3.0);
        visits.standing_s.push(trip.now_s);
        trip.stand(stand_s);
        trip.drive(&[f.access], 3.0);
        // On to the next place until out of the fence.
        let before = trip.fixes.len();
        let next = stops.get(k + 1).map_or(start, |n| n.access);
        let onward = road(f.access, next);
        trip.drive(&onward[..onward.len().min(40)], 12.0);
        let out = trip.fixes[before..]
            .iter()
            .find(|p| haversine_m(LatLon::new(p.lat, p.lon), f.point) > radius_m)
            .map(|p| seconds_since_t0(p.time))
            .expect("out of the fence");
        visits.out_s.push(out);
    }
    (trip, visits)
}

/// Runs the fixes one by one; every event with its fix's time.
fn run(engine: &mut LiveEngine, fixes: &[Position]) -> Vec<(f64, EngineEvent)> {
    let mut events = Vec::new();
    for fix in fixes {
        let out = engine.process(std::slice::from_ref(fix), fix.time);
        let t = seconds_since_t0(fix.time);
        events.extend(out.events.into_iter().map(|e| (t, e)));
    }
    events
}

fn check_timing(events: &[(f64, EngineEvent)], visits: &Visits) {
    for (t, e) in events {
        let EngineEvent::StatusChanged(s) = e else {
            continue;
        };
        let k = s.stop_index.expect("every geofence event names its stop") as usize;
        let at_s = seconds_since_t0(s.at);
        let arrival = matches!(s.status, OrderStatus::AtPickup | OrderStatus::AtDelivery);
        let reference_s = if arrival {
            visits.standing_s[k]
        } else {
            visits.out_s[k]
        };
        // A departure is recorded at the last time the truck went out of the
        // fence (the road out may wind back through it), and said within two
        // minutes of the first.
        let recorded_ok = if arrival {
            (at_s - reference_s).abs() <= 15.0
        } else {
            at_s >= reference_s - 15.0 && at_s <= *t
        };
        assert!(
            recorded_ok,
            "{:?} at stop {k}: recorded {at_s}, happened {reference_s}",
            s.status
        );
        assert!(
            *t - reference_s <= 120.0,
            "{:?} at stop {k}: said at {t}, happened {reference_s}",
            s.status
        );
    }
}

#[test]
fn a_two_stop_load_between_yards_off_the_road() {
    let graph = Arc::clone(baltimore().graph());
    let f = facilities(&graph, 2, 2500.0, 97);
    assert!(f.iter().all(|f| (100.0..=300.0).contains(&f.off_road_m)));
    let mut engine = engine();
    assert!(
        engine
            .set_orders(vec![order(vec![
                stop(StopKind::Pickup, &f[0]),
                stop(StopKind::Delivery, &f[1]),
            ])])
            .is_empty()
    );
    let start = offset(f[0].access, -1200.0, -900.0);
    let (trip, visits) = visit_all(start, &f, 600.0, 42);
    let events = run(&mut engine, &trip.fixes);
    let only: Vec<EngineEvent> = events.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        moves(&only),
        vec![
            (OrderStatus::AtPickup, Some(0)),
            (OrderStatus::PickedUp, Some(0)),
            (OrderStatus::AtDelivery, Some(1)),
            (OrderStatus::Delivered, Some(1)),
        ]
    );
    assert!(
        statuses(&only)
            .iter()
            .all(|s| s.source == StatusSource::Geofence)
    );
    check_timing(&events, &visits);
    // The delivery had an ETA once the truck was on its way from the pickup.
    assert!(etas(&only).iter().any(|u| u.stop_index == 1));
}

#[test]
fn a_four_stop_load_moves_stop_by_stop_exactly() {
    let graph = Arc::clone(baltimore().graph());
    let f = facilities(&graph, 4, 1500.0, 61);
    let mut engine = engine();
    assert!(
        engine
            .set_orders(vec![order(vec![
                stop(StopKind::Pickup, &f[0]),
                stop(StopKind::Pickup, &f[1]),
                stop(StopKind::Delivery, &f[2]),
                stop(StopKind::Delivery, &f[3]),
            ])])
            .is_empty()
    );
    let start = offset(f[0].access, 900.0, 900.0);
    let (trip, visits) = visit_all(start, &f, 420.0, 4);
    let events = run(&mut engine, &trip.fixes);
    let only: Vec<EngineEvent> = events.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        moves(&only),
        vec![
            (OrderStatus::AtPickup, Some(0)),
            (OrderStatus::PickedUp, Some(0)),
            (OrderStatus::AtPickup, Some(1)),
            (OrderStatus::PickedUp, Some(1)),
            (OrderStatus::AtDelivery, Some(2)),
            (OrderStatus::OutForDelivery, Some(2)),
            (OrderStatus::AtDelivery, Some(3)),
            (OrderStatus::Delivered, Some(3)),
        ]
    );
    check_timing(&events, &visits);
    // After a stop is reached, no ETA is published for it: only for the
    // stops still ahead.
    let mut reached = Vec::new();
    for e in &only {
        match e {
            EngineEvent::StatusChanged(s)
                if matches!(s.status, OrderStatus::AtPickup | OrderStatus::AtDelivery) =>
            {
                reached.extend(s.stop_index);
            }
            EngineEvent::EtaUpdated(u) => {
                assert!(
                    !reached.contains(&u.stop_index),
                    "ETA for a reached stop: {u:?}"
                );
            }
            _ => {}
        }
    }
    for k in 1..4 {
        assert!(
            etas(&only).iter().any(|u| u.stop_index == k),
            "an ETA for stop {k}"
        );
    }
}

#[test]
fn a_truck_that_drives_past_its_stops_without_stopping_arrives_nowhere() {
    let graph = Arc::clone(baltimore().graph());
    let f = facilities(&graph, 2, 2500.0, 97);
    let mut engine = engine();
    engine.set_orders(vec![order(vec![
        stop(StopKind::Pickup, &f[0]),
        stop(StopKind::Delivery, &f[1]),
    ])]);
    // Along the roads past both access points (within 300 m of both stops),
    // never standing.
    let start = offset(f[0].access, -1200.0, -900.0);
    let mut trip = Trip::new(TRUCK, start, 0.0, 5.0).noise(5.0, 8);
    trip.drive(&road(start, f[0].access), 12.0);
    trip.drive(&road(f[0].access, f[1].access), 12.0);
    trip.drive(&road(f[1].access, start), 12.0);
    let events: Vec<EngineEvent> = run(&mut engine, &trip.fixes)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert!(statuses(&events).is_empty(), "{:?}", moves(&events));
    // The pickup is still the next stop, with its ETA.
    assert!(etas(&events).iter().any(|u| u.stop_index == 0));
    assert_eq!(
        engine
            .order(&OrderId("ord_balt".into()))
            .map(|o| o.stops[0].is_pending()),
        Some(true)
    );
}
