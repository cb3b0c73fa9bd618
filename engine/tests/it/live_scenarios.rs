//! The live engine on a drawn road, as the tracking page would see it: a truck
//! on its order is matched, gets ETAs with their window, and its arrivals and
//! departures move the order (`at_pickup` → `picked_up` → `at_delivery` →
//! `delivered`); a truck without an order only moves; orders assigned, changed
//! or moved by hand reach the trackers; traffic seen by the fleet reaches the
//! routing metric in the three steps that keep it off the positions' path.

use crate::eta_support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use engine::{
    ActiveOrder, ActiveStop, EngineEvent, EtaConfig, EtaUpdate, LiveConfig, LiveEngine, OrderId,
    OrderStatus, Position, PositionSource, SpeedProfile, StatusChange, StatusSource, StopKind,
    VehicleFix, VehicleId,
};
use eta_support::{at, drive, edge, router, straight_road};
use road_graph::{DrawnMap, EdgeId, RoadGraph};

const TRUCK: &str = "T1";

fn engine(graph: &Arc<RoadGraph>) -> LiveEngine {
    LiveEngine::new(
        Arc::new(router(graph)),
        LiveConfig::truck(Tz::UTC),
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect("engine")
}

fn position(vehicle: &str, fix: &VehicleFix) -> Position {
    Position {
        tenant_id: engine::TenantId("ten_test".into()),
        vehicle_id: VehicleId(vehicle.into()),
        time: fix.time,
        lat: fix.position.lat,
        lon: fix.position.lon,
        speed_mps: None,
        heading_deg: None,
        odometer_m: None,
        hos_drive_remaining_s: None,
        accuracy_m: None,
        source: PositionSource::Simulator,
    }
}

/// A truck driving `edges` at `speed_mps` from `t0_s`, a fix every 5 s.
fn driving(
    graph: &RoadGraph,
    vehicle: &str,
    edges: &[EdgeId],
    speed_mps: f64,
    t0_s: f64,
) -> Vec<Position> {
    drive(graph, edges, speed_mps, 5.0, t0_s)
        .iter()
        .map(|f| position(vehicle, f))
        .collect()
}

/// A truck standing where `last` is, a fix every 10 s for `for_s` seconds.
fn standing(last: &Position, for_s: f64) -> Vec<Position> {
    let t0 = last.time;
    (1..=(for_s / 10.0) as i64)
        .map(|k| Position {
            time: t0 + chrono::Duration::seconds(10 * k),
            ..last.clone()
        })
        .collect()
}

fn seconds_since(t: DateTime<Utc>) -> f64 {
    (t - at(0.0)).num_milliseconds() as f64 / 1000.0
}

/// Pickup at `b`, delivery at `d`, dispatched to `T1`.
fn order_b_to_d(map: &DrawnMap) -> ActiveOrder {
    let stop = |kind, name| ActiveStop {
        kind,
        position: map.pos(name),
        window: None,
        geofence: None,
        arrived_at: None,
        departed_at: None,
        skipped_at: None,
    };
    ActiveOrder {
        tenant_id: engine::TenantId("ten_test".into()),
        order_id: OrderId("ord_1".into()),
        vehicle_id: VehicleId(TRUCK.into()),
        status: OrderStatus::Dispatched,
        stops: vec![stop(StopKind::Pickup, 'b'), stop(StopKind::Delivery, 'd')],
    }
}

fn etas(events: &[EngineEvent]) -> Vec<&EtaUpdate> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::EtaUpdated(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn statuses(events: &[EngineEvent]) -> Vec<&StatusChange> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::StatusChanged(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[test]
fn a_truck_on_its_order_is_matched_gets_etas_and_moves_the_order_by_geofence() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    assert!(engine.set_orders(vec![order_b_to_d(&map)]).is_empty());
    let (ab, bc, cd, dc) = (
        edge(&map, &graph, 'a', 'b'),
        edge(&map, &graph, 'b', 'c'),
        edge(&map, &graph, 'c', 'd'),
        edge(&map, &graph, 'd', 'c'),
    );
    // a → b, three minutes loading at b, b → d, two minutes at d, back towards c.
    let mut trip = driving(&graph, TRUCK, &[ab], 15.0, 0.0);
    trip.extend(standing(trip.last().expect("fixes"), 180.0));
    let left_b_s = seconds_since(trip.last().expect("fixes").time) + 5.0;
    trip.extend(driving(&graph, TRUCK, &[bc, cd], 15.0, left_b_s));
    let reached_d_s = seconds_since(trip.last().expect("fixes").time);
    trip.extend(standing(trip.last().expect("fixes"), 120.0));
    let t_back = seconds_since(trip.last().expect("fixes").time) + 5.0;
    trip.extend(driving(&graph, TRUCK, &[dc], 15.0, t_back));

    // In batches, as the bus hands them over.
    let mut events = Vec::new();
    let mut arrivals = Vec::new();
    for batch in trip.chunks(17) {
        let out = engine.process(batch, batch[0].time);
        events.extend(out.events);
        arrivals.extend(out.arrivals);
    }

    let positions: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::PositionUpdated(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(positions.len(), trip.len(), "one position event per fix");
    assert!(
        positions.iter().filter(|p| p.matched).count() * 10 >= trip.len() * 9,
        "the fixes lie on the road"
    );

    let moves: Vec<(OrderStatus, Option<u32>)> = statuses(&events)
        .iter()
        .map(|s| {
            assert_eq!(s.source, StatusSource::Geofence);
            (s.status, s.stop_index)
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            (OrderStatus::AtPickup, Some(0)),
            (OrderStatus::PickedUp, Some(0)),
            (OrderStatus::AtDelivery, Some(1)),
            (OrderStatus::Delivered, Some(1)),
        ]
    );
    assert_eq!(arrivals.len(), 2);
    assert!((seconds_since(arrivals[1].arrived_at) - reached_d_s).abs() <= 10.0);
    // The three minutes at b taught the fleet how long it loads (the stay at
    // d, the last stop, is no dwell before anything).
    let dwells: Vec<f64> = engine.calibrator().dwells().lengths_s().collect();
    assert_eq!(dwells.len(), 1);
    assert!((180.0..240.0).contains(&dwells[0]), "{dwells:?}");
    let learned_s = engine.calibrator().dwell_s(&EtaConfig::TRUCK.dwell);
    assert!(
        learned_s < EtaConfig::TRUCK.dwell.default_s,
        "one quick load moves the default a little: {learned_s}"
    );

    let updates = etas(&events);
    assert!(updates.iter().any(|u| u.stop_index == 0));
    let left_b = at(left_b_s);
    for u in &updates {
        assert!(
            u.p10 <= u.eta && u.eta <= u.p90,
            "window around the ETA: {u:?}"
        );
        // The route to the next stop comes along, for the map.
        let next_stop = if u.computed_at < left_b { 0 } else { 1 };
        if u.stop_index == next_stop {
            assert!(!u.route.is_empty(), "the remaining route: {u:?}");
        }
    }
    // Once the truck is away from b (the departure radius: until then the ETA
    // still holds the planned dwell), the ETA at d is the 4 km drive: about
    // 4.4 min at the road's 60 km/h, 4.5 min at the truck's 54 km/h. The three
    // minutes of loading are dwell, not slow driving: the first ETA under way
    // is already right, and it stays so (no update needed until d).
    let under_way = at(left_b_s);
    let first_to_d = updates
        .iter()
        .find(|u| u.stop_index == 1 && u.computed_at >= under_way)
        .expect("an ETA for the delivery once under way");
    let predicted_s = seconds_since(first_to_d.eta);
    assert!(
        (predicted_s - reached_d_s).abs() <= 0.15 * (reached_d_s - left_b_s),
        "predicted {predicted_s:.0} s, arrived {reached_d_s:.0} s"
    );
    assert!(first_to_d.p10 <= at(reached_d_s) && at(reached_d_s) <= first_to_d.p90);
    // Once delivered, nothing more for the order.
    let delivered_at = statuses(&events)[3].at;
    assert!(updates.iter().all(|u| u.computed_at <= delivered_at));
    assert_eq!(engine.tracked_orders(), 0);
    let counters = engine.counters();
    assert_eq!(counters.positions, trip.len() as u64);
    assert_eq!(counters.status_changes, 4);
}

#[test]
fn a_truck_without_an_order_only_moves() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    engine.set_orders(vec![order_b_to_d(&map)]);
    let ab = edge(&map, &graph, 'a', 'b');
    let other = driving(&graph, "T2", &[ab], 15.0, 0.0);
    let out = engine.process(&other, at(0.0));
    assert_eq!(out.events.len(), other.len());
    assert!(
        out.events
            .iter()
            .all(|e| matches!(e, EngineEvent::PositionUpdated(p) if p.vehicle_id.as_str() == "T2"))
    );
    assert!(out.predictions.is_empty() && out.arrivals.is_empty());
}

#[test]
fn an_order_assigned_on_the_way_gets_etas_and_a_removed_one_stops() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    let (bc, cd) = (edge(&map, &graph, 'b', 'c'), edge(&map, &graph, 'c', 'd'));
    let trip = driving(&graph, TRUCK, &[bc, cd], 15.0, 0.0);
    let (before, after) = trip.split_at(20);
    let out = engine.process(before, at(0.0));
    assert!(etas(&out.events).is_empty(), "no order yet");

    // Assigned on the way, the pickup already done by hand.
    let mut order = order_b_to_d(&map);
    order.status = OrderStatus::PickedUp;
    order.stops[0].arrived_at = Some(at(-600.0));
    order.stops[0].departed_at = Some(at(-300.0));
    engine.set_orders(vec![order]);
    let (during, rest) = after.split_at(10);
    let out = engine.process(during, during[0].time);
    let updates = etas(&out.events);
    assert!(!updates.is_empty(), "an ETA at the first fix");
    assert!(updates.iter().all(|u| u.stop_index == 1));
    assert!(
        statuses(&out.events).is_empty(),
        "the pickup was not the engine's to report"
    );

    // Cancelled: it leaves the active orders.
    engine.set_orders(Vec::new());
    let out = engine.process(rest, rest[0].time);
    assert!(etas(&out.events).is_empty() && statuses(&out.events).is_empty());
}

#[test]
fn an_arrival_recorded_by_hand_moves_the_tracker_to_the_next_stop() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    let mut order = order_b_to_d(&map);
    engine.set_orders(vec![order.clone()]);
    let ab = edge(&map, &graph, 'a', 'b');
    let trip = driving(&graph, TRUCK, &[ab], 15.0, 0.0);
    let out = engine.process(&trip[..5], at(0.0));
    assert!(etas(&out.events).iter().any(|u| u.stop_index == 0));

    // The driver checked in at the pickup through the app (GPS lagging).
    order.status = OrderStatus::AtPickup;
    order.stops[0].arrived_at = Some(trip[5].time);
    engine.set_orders(vec![order]);
    assert_eq!(
        engine.order(&OrderId("ord_1".into())).map(|o| o.status),
        Some(OrderStatus::AtPickup)
    );
    let out = engine.process(&trip[5..], trip[5].time);
    let updates = etas(&out.events);
    assert!(!updates.is_empty());
    assert!(
        updates.iter().all(|u| u.stop_index == 1),
        "on to the delivery"
    );
    assert!(
        !statuses(&out.events)
            .iter()
            .any(|s| s.status == OrderStatus::AtPickup),
        "the arrival is not reported twice"
    );
}

#[test]
fn slow_traffic_seen_by_the_fleet_reaches_the_metric_off_the_positions_path() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    let (ab, bc, cd) = (
        edge(&map, &graph, 'a', 'b'),
        edge(&map, &graph, 'b', 'c'),
        edge(&map, &graph, 'c', 'd'),
    );
    let free_bc_ms = engine.router().metric().edge_ms(bc);
    assert!(engine.metric_due(at(0.0)));
    assert!(
        engine.prepare_metric(at(0.0)).expect("metric").is_none(),
        "nothing seen, nothing changes"
    );
    assert!(!engine.metric_due(at(5.0)));

    // Three trucks crawl through b–c at 5 m/s (18 km/h on a 60 km/h road).
    let mut last_s: f64 = 0.0;
    for (k, truck) in ["S1", "S2", "S3"].iter().enumerate() {
        let mut fixes = driving(&graph, truck, &[ab], 16.0, k as f64 * 30.0);
        let t = seconds_since(fixes.last().expect("fixes").time) + 5.0;
        fixes.extend(driving(&graph, truck, &[bc], 5.0, t));
        let t = seconds_since(fixes.last().expect("fixes").time) + 5.0;
        fixes.extend(driving(&graph, truck, &[cd], 16.0, t));
        last_s = last_s.max(seconds_since(fixes.last().expect("fixes").time));
        engine.process(&fixes, fixes[0].time);
    }
    let now = at(last_s + 10.0);
    assert!(engine.metric_due(now));
    let update = engine
        .prepare_metric(now)
        .expect("metric")
        .expect("c–d changed");
    assert!(update.n_changes() >= 1);
    // Until installed, the trackers keep timing on generation 0 ...
    assert_eq!(engine.metric_generation(), 0);
    // ... while the customization runs elsewhere (here: this thread).
    let router = Arc::clone(engine.router());
    let version = update.apply(&router).expect("customized");
    assert!(
        router.metric().edge_ms(bc) > 2 * free_bc_ms,
        "queries see the jam: {} ms against {free_bc_ms} ms",
        router.metric().edge_ms(bc)
    );
    engine.install_metric(version.clone());
    assert_eq!(engine.metric_generation(), 1);
    // An old version installed late changes nothing.
    engine.install_metric(version);
    assert_eq!(engine.counters().metrics_installed, 1);
    assert!(engine.counters().edges_updated >= 1);

    // An hour of device time on, with no truck on the road, the live samples
    // have aged out and the model has re-learned its hour-of-week profile
    // from the passages: b–c is now expected slower than free flow, and
    // slower than a–b, which the trucks drove fast.
    assert_eq!(engine.counters().profiles_learned, 0, "not an hour yet");
    let later = now + chrono::Duration::hours(1);
    engine.prepare_metric(later).expect("metric");
    assert_eq!(engine.counters().profiles_learned, 1);
    let profile = engine.speed_profile();
    assert!(profile.samples() >= 6, "{} passages", profile.samples());
    let (bc_kph, ab_kph) = (
        profile.speed_kph(&graph, bc, later),
        profile.speed_kph(&graph, ab, later),
    );
    assert!(
        bc_kph < 0.8 * graph.edge_speed_kph(bc) && bc_kph < 0.8 * ab_kph,
        "b–c {bc_kph} km/h, a–b {ab_kph} km/h"
    );
}

#[test]
fn a_jam_seen_by_one_nodes_trucks_reaches_the_other_nodes_metric() {
    // Two nodes, each with half the fleet: node A's trucks crawl through b–c,
    // node B has no truck there. B learns the jam from A's shared batch, as
    // bytes on the fleet topic, and its metric slows b–c as A's does.
    let (map, graph) = straight_road();
    let (mut node_a, mut node_b) = (engine(&graph), engine(&graph));
    node_a.share_learning(true);
    node_b.share_learning(true);
    let (ab, bc, cd) = (
        edge(&map, &graph, 'a', 'b'),
        edge(&map, &graph, 'b', 'c'),
        edge(&map, &graph, 'c', 'd'),
    );
    let free_bc_ms = node_b.router().metric().edge_ms(bc);
    let mut last_s: f64 = 0.0;
    for (k, truck) in ["S1", "S2", "S3"].iter().enumerate() {
        let mut fixes = driving(&graph, truck, &[ab], 16.0, k as f64 * 30.0);
        let t = seconds_since(fixes.last().expect("fixes").time) + 5.0;
        fixes.extend(driving(&graph, truck, &[bc], 5.0, t));
        let t = seconds_since(fixes.last().expect("fixes").time) + 5.0;
        fixes.extend(driving(&graph, truck, &[cd], 16.0, t));
        last_s = last_s.max(seconds_since(fixes.last().expect("fixes").time));
        node_a.process(&fixes, fixes[0].time);
    }
    let map_id = engine::MapIdentity::of(&graph);
    let learned = node_a.take_fleet_learning();
    assert!(
        learned.passages.iter().filter(|p| p.edge == bc).count() >= 3,
        "{learned:?}"
    );
    assert!(
        node_a.take_fleet_learning().is_empty(),
        "taken once, not twice"
    );
    let bytes = learned.encode(map_id);
    let batch = engine::FleetLearning::decode(&bytes, map_id).expect("a batch of our map");
    let accepted = node_b.learn_from_fleet(&batch);
    assert!(accepted >= 3, "{accepted} passages taken");
    assert_eq!(
        node_b.counters().fleet_learned,
        batch.len() as u64,
        "counted"
    );
    assert!(
        node_b.take_fleet_learning().is_empty(),
        "what B learned from A is not shared again (no echo between nodes)"
    );

    let now = at(last_s + 10.0);
    for node in [&mut node_a, &mut node_b] {
        let update = node
            .prepare_metric(now)
            .expect("metric")
            .expect("b–c changed");
        let router = Arc::clone(node.router());
        update.apply(&router).expect("customized");
    }
    let (a_ms, b_ms) = (
        node_a.router().metric().edge_ms(bc),
        node_b.router().metric().edge_ms(bc),
    );
    assert!(
        b_ms > 2 * free_bc_ms,
        "B sees the jam: {b_ms} ms against {free_bc_ms} ms"
    );
    // Alike up to the wire's rounding (milliseconds, f32 metres).
    assert!(
        a_ms.abs_diff(b_ms) * 100 <= a_ms,
        "both nodes time b–c alike: A {a_ms} ms, B {b_ms} ms"
    );

    // A node on another map refuses the batch instead of learning nonsense.
    let other = engine::MapIdentity {
        routing_fingerprint: map_id.routing_fingerprint ^ 1,
        ..map_id
    };
    assert!(engine::FleetLearning::decode(&bytes, other).is_err());
}

/// Each vehicle's and each order's events, in their order (what a page of one
/// order or one truck sees; the interleaving across trucks is not promised).
fn per_subject(events: &[EngineEvent]) -> std::collections::BTreeMap<String, Vec<EngineEvent>> {
    let mut by = std::collections::BTreeMap::<String, Vec<EngineEvent>>::new();
    for e in events {
        let key = match e {
            EngineEvent::PositionUpdated(p) => format!("vehicle {}", p.vehicle_id),
            EngineEvent::EtaUpdated(u) => format!("order {}", u.order_id),
            EngineEvent::StatusChanged(s) => format!("order {}", s.order_id),
        };
        by.entry(key).or_default().push(e.clone());
    }
    by
}

#[test]
fn a_fleet_split_over_shards_sees_exactly_what_one_shard_sees_even_when_an_order_changes_truck() {
    let (map, graph) = straight_road();
    let router = Arc::new(router(&graph));
    let (ab, bc, cd) = (
        edge(&map, &graph, 'a', 'b'),
        edge(&map, &graph, 'b', 'c'),
        edge(&map, &graph, 'c', 'd'),
    );
    // Twelve trucks a few seconds apart on a → d, each on its own order.
    let trucks: Vec<String> = (0..12).map(|i| format!("T{i}")).collect();
    let mut fleet: Vec<Position> = trucks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| driving(&graph, t, &[ab, bc, cd], 15.0, 3.0 * i as f64))
        .collect();
    fleet.sort_by_key(|p| p.time);
    let orders = |reassigned: bool| -> Vec<ActiveOrder> {
        trucks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut order = order_b_to_d(&map);
                order.order_id = OrderId(format!("ord_{i}"));
                // Half way, ord_0 moves from T0 to T7 (a dispatcher's swap).
                order.vehicle_id = VehicleId(if reassigned && i == 0 {
                    "T7".into()
                } else {
                    t.clone()
                });
                order
            })
            .collect()
    };
    let run = |shards: usize| {
        let mut config = LiveConfig::truck(Tz::UTC);
        config.shards = shards;
        let mut engine = LiveEngine::new(
            Arc::clone(&router),
            config,
            SpeedProfile::free_flow(Tz::UTC),
        )
        .expect("engine");
        engine.set_orders(orders(false));
        let mut events = Vec::new();
        let (first, second) = fleet.split_at(fleet.len() / 2);
        for batch in first.chunks(23) {
            events.extend(engine.process(batch, batch[0].time).events);
        }
        engine.set_orders(orders(true));
        for batch in second.chunks(23) {
            events.extend(engine.process(batch, batch[0].time).events);
        }
        (events, engine.counters(), engine.vehicles())
    };

    let (one, one_counters, one_vehicles) = run(1);
    let (four, four_counters, four_vehicles) = run(4);
    assert_eq!(per_subject(&one), per_subject(&four));
    assert_eq!(one_counters, four_counters);
    assert_eq!((one_vehicles, four_vehicles), (12, 12));
    assert_eq!(one_counters.positions, fleet.len() as u64);
    // The swapped order is tracked from T7 after the swap: its ETAs go on.
    let swapped = &per_subject(&four)["order ord_0"];
    let swap_at = fleet[fleet.len() / 2].time;
    assert!(
        etas(swapped).iter().any(|u| u.computed_at >= swap_at),
        "ord_0 gets ETAs from its new truck"
    );
}

#[test]
fn zero_shards_is_refused_by_name() {
    let (_, graph) = straight_road();
    let mut config = LiveConfig::truck(Tz::UTC);
    config.shards = 0;
    let err = LiveEngine::new(
        Arc::new(router(&graph)),
        config,
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("shards"), "{err}");
}

/// Another tenant's `T1` is another truck: it has its own matcher state and
/// never moves an order of ours, though it drives the same road at the same
/// time.
#[test]
fn another_tenants_truck_of_the_same_id_never_moves_our_order() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    assert!(engine.set_orders(vec![order_b_to_d(&map)]).is_empty());
    let (ab, bc, cd) = (
        edge(&map, &graph, 'a', 'b'),
        edge(&map, &graph, 'b', 'c'),
        edge(&map, &graph, 'c', 'd'),
    );
    // Theirs drives the whole trip and stands at both stops…
    let mut theirs = driving(&graph, TRUCK, &[ab], 15.0, 0.0);
    theirs.extend(standing(theirs.last().expect("fixes"), 180.0));
    let t = seconds_since(theirs.last().expect("fixes").time) + 5.0;
    theirs.extend(driving(&graph, TRUCK, &[bc, cd], 15.0, t));
    theirs.extend(standing(theirs.last().expect("fixes"), 180.0));
    for p in &mut theirs {
        p.tenant_id = engine::TenantId("ten_other".into());
    }
    let out = engine.process(&theirs, at(0.0));
    assert!(
        statuses(&out.events).is_empty(),
        "{:?}",
        statuses(&out.events)
    );
    assert!(etas(&out.events).is_empty());
    assert!(out.events.iter().all(|e| match e {
        EngineEvent::PositionUpdated(p) => p.tenant_id.as_str() == "ten_other",
        _ => false,
    }));
    assert_eq!(
        engine
            .order(&OrderId("ord_1".into()))
            .expect("order")
            .status,
        OrderStatus::Dispatched
    );
    // …while ours, a minute behind on the same road, gets its ETAs.
    let ours = driving(&graph, TRUCK, &[ab], 15.0, 60.0);
    let out = engine.process(&ours, at(0.0));
    assert!(!etas(&out.events).is_empty());
    assert_eq!(engine.vehicles(), 2);
}

/// A single fix 300 km away is a GPS glitch: not shown, not matched, not used
/// by the ETA, handed back as an outlier; the ETAs go on from the real road.
#[test]
fn a_fix_300_km_away_is_an_outlier_and_the_truck_stays_on_its_road() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    assert!(engine.set_orders(vec![order_b_to_d(&map)]).is_empty());
    let ab = edge(&map, &graph, 'a', 'b');
    let trip = driving(&graph, TRUCK, &[ab], 15.0, 0.0);
    let (first, rest) = trip.split_at(trip.len() / 2);
    engine.process(first, at(0.0));
    let last = first.last().expect("fixes");
    let glitch = Position {
        time: last.time + chrono::Duration::seconds(2),
        lat: last.lat + 2.7,
        ..last.clone()
    };
    let out = engine.process(std::slice::from_ref(&glitch), at(0.0));
    assert_eq!(out.outliers.len(), 1);
    assert_eq!(out.outliers[0].position, glitch);
    assert!(
        out.outliers[0].detail.contains("km/h"),
        "{}",
        out.outliers[0].detail
    );
    assert!(out.events.is_empty(), "nothing shown: {:?}", out.events);
    assert_eq!(engine.counters().outliers, 1);

    // On to b, where it stands at the pickup (arrived: the delivery's ETA).
    let mut rest = rest.to_vec();
    rest.extend(standing(rest.last().expect("fixes"), 120.0));
    let out = engine.process(&rest, at(0.0));
    assert!(out.outliers.is_empty());
    let shown: Vec<f64> = out
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::PositionUpdated(p) => Some(p.lat),
            _ => None,
        })
        .collect();
    assert!(!shown.is_empty());
    assert!(
        shown.iter().all(|lat| (lat - last.lat).abs() < 0.1),
        "{shown:?}"
    );
    assert!(!etas(&out.events).is_empty(), "the ETA goes on");
}

#[test]
fn a_truck_handed_to_another_engine_goes_on_from_where_the_first_left_it() {
    let (map, graph) = straight_road();
    let (bc, cd) = (edge(&map, &graph, 'b', 'c'), edge(&map, &graph, 'c', 'd'));
    let trip = driving(&graph, TRUCK, &[bc, cd], 15.0, 0.0);
    let (first_half, second_half) = trip.split_at(trip.len() / 2);
    let mut order = order_b_to_d(&map);
    order.status = OrderStatus::PickedUp;
    order.stops[0].arrived_at = Some(at(-600.0));
    order.stops[0].departed_at = Some(at(-300.0));

    // Node A tracks the truck for half the trip, then its partition moves.
    let mut a = engine(&graph);
    a.set_orders(vec![order.clone()]);
    a.process(first_half, at(0.0));
    let released = a.release_vehicles(&[order.vehicle_key()]);
    assert_eq!(released.len(), 1, "one order, one memory");
    assert_eq!(released[0].vehicle, order.vehicle_key());
    assert_eq!(
        released[0].memory.applied_through(),
        first_half.last().map(|p| p.time),
        "the memory goes as far as the last fix A took"
    );
    assert_eq!((a.tracked_orders(), a.vehicles()), (0, 0));
    // A late position reaching A moves nothing of the order any more.
    let late = a.process(&second_half[..3], second_half[0].time);
    assert!(etas(&late.events).is_empty() && statuses(&late.events).is_empty());

    // Node B takes the truck up with A's memory; C never lost it.
    let mut b = engine(&graph);
    b.set_orders(vec![order.clone()]);
    let memories = released.into_iter().map(|m| m.memory).collect();
    assert_eq!(b.resume_trackers(memories), (1, 0), "taken up whole");
    let on_b = b.process(second_half, second_half[0].time);
    assert!(
        !etas(&on_b.events).is_empty(),
        "B publishes the truck's ETA from its first fix"
    );
    let mut c = engine(&graph);
    c.set_orders(vec![order]);
    c.process(first_half, at(0.0));
    c.process(second_half, second_half[0].time);
    // What the truck taught its tracker (clocks, since when it is tracked,
    // its stands and stall) is the same on B as on C, which never lost it. The pace
    // compares the truck with its routes, which B made afresh from the
    // handover point: it agrees to within a tenth. The tracker's own
    // prediction errors differ (those in flight at the handover are lost).
    let truck = |e: &LiveEngine| {
        let memory = e.tracker_memories().pop().expect("a tracker").memory;
        let mut json = serde_json::to_value(&memory).expect("serializes");
        let pace = json["pace"]["observed_s"].as_f64().unwrap_or(f64::NAN)
            / json["pace"]["predicted_s"].as_f64().unwrap_or(f64::NAN);
        if let Some(fields) = json.as_object_mut() {
            fields.remove("own");
            fields.remove("pace");
        }
        // The distance left at the stall's start is measured along the route.
        let left_m = json["stall"][1].take().as_f64().unwrap_or(f64::NAN);
        (json, pace, left_m)
    };
    let ((on_b, pace_b, left_b), (on_c, pace_c, left_c)) = (truck(&b), truck(&c));
    assert_eq!(on_b, on_c);
    assert!(
        (left_b - left_c).abs() < 0.01,
        "{left_b} m against {left_c} m"
    );
    assert!(
        (pace_b / pace_c - 1.0).abs() < 0.1,
        "pace {pace_b:.3} on B, {pace_c:.3} on C"
    );
}
