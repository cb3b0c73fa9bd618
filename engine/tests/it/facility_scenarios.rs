//! Stops as facilities on a drawn road: a stop's point lies in its yard, off
//! the road, and the truck is at it only when it stands inside its fence for
//! a while. Arrival and departure are debounced; a truck that drives through
//! a fence does not arrive; one that parks on the street 150 m away does; a
//! stop passed for a later one is skipped; a stop marked by hand moves the
//! tracker on without losing the ETA; and an order dispatched to a truck whose
//! position is known gets its ETA at once.
//!
//! The road is `a`–`b`–`c`–`d`, three 2 km stretches at 60 km/h (see
//! `eta_support::straight_road`); yards lie north of it.

use crate::eta_support;
use crate::facility_support;

use std::sync::Arc;

use chrono::Duration;
use chrono_tz::Tz;
use engine::{
    ActiveOrder, ActiveStop, EngineEvent, Geofence, LiveConfig, LiveEngine, OrderId, OrderStatus,
    Position, SpeedProfile, StatusSource, StopKind, TrackerConfig, VehicleId,
};
use eta_support::{router, straight_road};
use facility_support::{Trip, at, etas, moves, offset, seconds_since_t0, statuses};
use road_graph::{DrawnMap, LatLon, RoadGraph, haversine_m};

const TRUCK: &str = "T1";
const ORDER: &str = "ord_1";

fn engine(graph: &Arc<RoadGraph>) -> LiveEngine {
    LiveEngine::new(
        Arc::new(router(graph)),
        LiveConfig::truck(Tz::UTC),
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect("engine")
}

fn stop(kind: StopKind, position: LatLon) -> ActiveStop {
    ActiveStop {
        kind,
        position,
        window: None,
        geofence: None,
        arrived_at: None,
        departed_at: None,
        skipped_at: None,
    }
}

fn order(stops: Vec<ActiveStop>) -> ActiveOrder {
    ActiveOrder {
        order_id: OrderId(ORDER.into()),
        tenant_id: engine::TenantId(facility_support::TENANT.into()),
        vehicle_id: VehicleId(TRUCK.into()),
        status: OrderStatus::Dispatched,
        stops,
    }
}

/// Runs the fixes one by one (as a 1 Hz feed would hand them over) and
/// returns every event with the time of the fix that produced it.
fn run(engine: &mut LiveEngine, fixes: &[Position]) -> Vec<(f64, EngineEvent)> {
    let mut events = Vec::new();
    for fix in fixes {
        let out = engine.process(std::slice::from_ref(fix), fix.time);
        let t = seconds_since_t0(fix.time);
        events.extend(out.events.into_iter().map(|e| (t, e)));
    }
    events
}

fn only_events(events: &[(f64, EngineEvent)]) -> Vec<EngineEvent> {
    events.iter().map(|(_, e)| e.clone()).collect()
}

/// When (fix time, seconds) the engine said `status` about stop `k`, and the
/// time the event carries.
fn said(events: &[(f64, EngineEvent)], status: OrderStatus, k: u32) -> (f64, f64) {
    events
        .iter()
        .find_map(|(t, e)| match e {
            EngineEvent::StatusChanged(s) if s.status == status && s.stop_index == Some(k) => {
                Some((*t, seconds_since_t0(s.at)))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {status:?} at stop {k}"))
}

/// When the truck first went more than `radius_m` from `p` after `from_s`.
fn left_at(fixes: &[Position], p: LatLon, radius_m: f64, from_s: f64) -> f64 {
    fixes
        .iter()
        .map(|f| (seconds_since_t0(f.time), LatLon::new(f.lat, f.lon)))
        .find(|&(t, q)| t > from_s && haversine_m(p, q) > radius_m)
        .map(|(t, _)| t)
        .expect("the truck leaves")
}

fn pos(map: &DrawnMap, name: char) -> LatLon {
    map.pos(name)
}

#[test]
fn standing_in_a_yard_off_the_road_is_an_arrival_and_leaving_it_a_departure() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    // The pickup's point lies in a yard 200 m north of c; the delivery's 150 m
    // north of d.
    let yard_c = offset(pos(&map, 'c'), 0.0, 200.0);
    let yard_d = offset(pos(&map, 'd'), 0.0, 150.0);
    assert!(
        engine
            .set_orders(vec![order(vec![
                stop(StopKind::Pickup, yard_c),
                stop(StopKind::Delivery, yard_d),
            ])])
            .is_empty()
    );
    let mut trip = Trip::new(TRUCK, pos(&map, 'a'), 0.0, 5.0).noise(4.0, 7);
    trip.drive(&[pos(&map, 'c')], 15.0).drive(&[yard_c], 3.0);
    let standing_c_s = trip.now_s;
    trip.stand(600.0).drive(&[pos(&map, 'c')], 3.0);
    trip.drive(&[pos(&map, 'd')], 15.0).drive(&[yard_d], 3.0);
    let standing_d_s = trip.now_s;
    trip.stand(300.0)
        .drive(&[pos(&map, 'd')], 3.0)
        .drive(&[pos(&map, 'c')], 15.0);
    let events = run(&mut engine, &trip.fixes);

    assert_eq!(
        moves(&only_events(&events)),
        vec![
            (OrderStatus::AtPickup, Some(0)),
            (OrderStatus::PickedUp, Some(0)),
            (OrderStatus::AtDelivery, Some(1)),
            (OrderStatus::Delivered, Some(1)),
        ]
    );
    assert!(
        statuses(&only_events(&events))
            .iter()
            .all(|s| s.source == StatusSource::Geofence)
    );
    let radius_m = TrackerConfig::TRUCK.geofence_radius_m;
    for (k, yard, standing_s) in [(0, yard_c, standing_c_s), (1, yard_d, standing_d_s)] {
        let (arrive_status, leave_status) = if k == 0 {
            (OrderStatus::AtPickup, OrderStatus::PickedUp)
        } else {
            (OrderStatus::AtDelivery, OrderStatus::Delivered)
        };
        // Arrived when it began to stand (it crawled in at 3 m/s: not slow),
        // said within two minutes of it.
        let (said_s, arrived_s) = said(&events, arrive_status, k);
        assert!(
            (arrived_s - standing_s).abs() <= 10.0,
            "stop {k}: arrived at {arrived_s}, stood from {standing_s}"
        );
        assert!(said_s - standing_s <= 120.0, "stop {k}: said at {said_s}");
        // Left when it went out of the fence, said within two minutes.
        let out_s = left_at(&trip.fixes, yard, radius_m, standing_s);
        let (said_s, departed_s) = said(&events, leave_status, k);
        assert!(
            (departed_s - out_s).abs() <= 10.0,
            "stop {k}: departed at {departed_s}, out at {out_s}"
        );
        assert!(said_s - out_s <= 120.0, "stop {k}: said at {said_s}");
    }
    // Through the yard at 10 km/h is part of the ETA: at the access point c,
    // the pickup is still 200 m (72 s) away.
    let at_c_s = events
        .iter()
        .filter_map(|(t, e)| match e {
            EngineEvent::EtaUpdated(u) if u.stop_index == 0 => Some((*t, u.clone())),
            _ => None,
        })
        .rfind(|(t, _)| *t <= standing_c_s - 60.0)
        .expect("an ETA for the pickup on the way");
    let ahead_s = seconds_since_t0(at_c_s.1.eta) - at_c_s.0;
    let yard_s = 200.0 / TrackerConfig::TRUCK.yard_speed_mps;
    assert!(
        ahead_s >= yard_s,
        "{ahead_s} s ahead, the yard alone is {yard_s} s"
    );
    assert_eq!(
        engine.tracked_orders(),
        0,
        "delivered: nothing left to track"
    );
}

#[test]
fn a_truck_driving_through_a_fence_does_not_arrive() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    let yard_b = offset(pos(&map, 'b'), 0.0, 120.0);
    engine.set_orders(vec![order(vec![
        stop(StopKind::Pickup, yard_b),
        stop(StopKind::Delivery, pos(&map, 'd')),
    ])]);
    // Straight past b at 15 m/s, and again at 5 m/s (slow traffic, not slow
    // enough to be standing).
    let mut trip = Trip::new(TRUCK, pos(&map, 'a'), 0.0, 5.0).noise(4.0, 11);
    trip.drive(&[pos(&map, 'c')], 15.0)
        .drive(&[pos(&map, 'a')], 5.0);
    let events = only_events(&run(&mut engine, &trip.fixes));
    assert!(statuses(&events).is_empty(), "{:?}", moves(&events));
    // The pickup is still the next stop: its ETA goes on.
    assert!(etas(&events).last().is_some_and(|u| u.stop_index == 0));
}

#[test]
fn a_truck_parked_on_the_street_150_m_from_the_stop_arrives() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    let yard_c = offset(pos(&map, 'c'), 0.0, 150.0);
    engine.set_orders(vec![order(vec![
        stop(StopKind::Pickup, yard_c),
        stop(StopKind::Delivery, pos(&map, 'd')),
    ])]);
    // A device that reports no speed: standing is told from the fixes.
    let mut trip = Trip::new(TRUCK, pos(&map, 'a'), 0.0, 10.0)
        .noise(4.0, 3)
        .without_speed();
    trip.drive(&[pos(&map, 'c')], 15.0);
    let parked_s = trip.now_s;
    trip.stand(240.0);
    let events = run(&mut engine, &trip.fixes);
    let (said_s, arrived_s) = said(&events, OrderStatus::AtPickup, 0);
    assert!(
        arrived_s - parked_s <= 20.0,
        "arrived at {arrived_s}, parked at {parked_s}"
    );
    assert!(said_s - parked_s <= 120.0);
    assert_eq!(moves(&only_events(&events)).len(), 1, "still there");
}

#[test]
fn a_short_step_out_of_the_fence_is_no_departure() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    let yard_c = offset(pos(&map, 'c'), 0.0, 200.0);
    engine.set_orders(vec![order(vec![
        stop(StopKind::Pickup, yard_c),
        stop(StopKind::Delivery, pos(&map, 'd')),
    ])]);
    let mut trip = Trip::new(TRUCK, pos(&map, 'a'), 0.0, 5.0).noise(4.0, 5);
    trip.drive(&[pos(&map, 'c')], 15.0)
        .drive(&[yard_c], 3.0)
        .stand(180.0);
    // Out to the road and 300 m along it (out of the fence for about 40 s),
    // back in to another dock.
    let east = offset(pos(&map, 'c'), 300.0, 0.0);
    trip.drive(&[pos(&map, 'c'), east], 8.0)
        .drive(&[pos(&map, 'c'), yard_c], 8.0)
        .stand(180.0);
    let final_stand_end_s = trip.now_s;
    trip.drive(&[pos(&map, 'c'), pos(&map, 'd')], 15.0);
    let events = run(&mut engine, &trip.fixes);
    assert_eq!(
        moves(&only_events(&events)),
        vec![
            (OrderStatus::AtPickup, Some(0)),
            (OrderStatus::PickedUp, Some(0)),
        ]
    );
    let (_, departed_s) = said(&events, OrderStatus::PickedUp, 0);
    assert!(departed_s >= final_stand_end_s, "left at {departed_s}");
}

#[test]
fn a_stop_passed_for_a_later_one_is_skipped() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    let yard_b = offset(pos(&map, 'b'), 0.0, 200.0);
    let yard_c = offset(pos(&map, 'c'), 0.0, 200.0);
    let yard_d = offset(pos(&map, 'd'), 0.0, 200.0);
    engine.set_orders(vec![order(vec![
        stop(StopKind::Pickup, yard_b),
        stop(StopKind::Delivery, yard_c),
        stop(StopKind::Delivery, yard_d),
    ])]);
    let mut trip = Trip::new(TRUCK, pos(&map, 'a'), 0.0, 5.0).noise(4.0, 9);
    trip.drive(&[pos(&map, 'b'), yard_b], 12.0)
        .stand(300.0)
        .drive(&[pos(&map, 'b')], 5.0);
    // Past c without stopping, into d's yard for ten minutes.
    trip.drive(&[pos(&map, 'd'), yard_d], 15.0);
    let standing_d_s = trip.now_s;
    trip.stand(600.0)
        .drive(&[pos(&map, 'd'), pos(&map, 'c')], 15.0);
    let events = run(&mut engine, &trip.fixes);
    assert_eq!(
        moves(&only_events(&events)),
        vec![
            (OrderStatus::AtPickup, Some(0)),
            (OrderStatus::PickedUp, Some(0)),
            (OrderStatus::AtDelivery, Some(2)),
            (OrderStatus::Delivered, Some(2)),
        ]
    );
    // Standing at a stop that is not the next takes longer (a queue near it
    // must not skip the next one): five minutes.
    let (said_s, arrived_s) = said(&events, OrderStatus::AtDelivery, 2);
    assert!((arrived_s - standing_d_s).abs() <= 10.0);
    assert!(said_s - standing_d_s >= TrackerConfig::TRUCK.skip_after_s - 10.0);
    let o = engine
        .order(&OrderId(ORDER.into()))
        .expect("known until the next sync");
    assert!(o.stops[1].skipped_at.is_some() && o.stops[1].arrived_at.is_none());
}

#[test]
fn a_pickup_marked_by_hand_without_an_arrival_moves_the_tracker_on_with_its_eta() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    let yard_b = offset(pos(&map, 'b'), 0.0, 200.0);
    let mut o = order(vec![
        stop(StopKind::Pickup, yard_b),
        stop(StopKind::Delivery, pos(&map, 'd')),
    ]);
    engine.set_orders(vec![o.clone()]);
    let mut trip = Trip::new(TRUCK, pos(&map, 'a'), 0.0, 5.0);
    trip.drive(&[offset(pos(&map, 'a'), 1000.0, 0.0)], 15.0);
    let first = run(&mut engine, &trip.fixes);
    assert!(etas(&only_events(&first)).iter().any(|u| u.stop_index == 0));

    // The dispatcher records "picked up" (no "at pickup"): the store marks the
    // pickup left.
    let marked = at(trip.now_s);
    o.status = OrderStatus::PickedUp;
    o.stops[0].departed_at = Some(marked);
    engine.set_orders(vec![o]);
    let now = marked + Duration::seconds(1);
    let primed = engine.etas_from_last_fixes(now);
    let updates = etas(&primed.events);
    assert_eq!(updates.len(), 1, "the delivery's ETA at once: {updates:?}");
    assert_eq!(updates[0].stop_index, 1);
    assert_eq!(updates[0].computed_at, now);

    // Driving on past b's yard, slower than planned: no geofence move about
    // the pickup, new ETAs for the delivery only.
    let from = trip.fixes.len();
    trip.drive(&[pos(&map, 'c')], 8.0);
    let events = only_events(&run(&mut engine, &trip.fixes[from..]));
    assert!(statuses(&events).is_empty());
    let updates = etas(&events);
    assert!(!updates.is_empty() && updates.iter().all(|u| u.stop_index == 1));
}

#[test]
fn an_order_dispatched_to_a_truck_with_a_known_position_gets_its_eta_at_once() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    // The truck reported from a yard 200 m off the road near b, then went
    // quiet: trucks waiting in a yard may report once an hour.
    let yard = offset(pos(&map, 'b'), 0.0, 200.0);
    let mut trip = Trip::new(TRUCK, pos(&map, 'a'), 0.0, 5.0);
    trip.drive(&[pos(&map, 'b'), yard], 15.0).stand(30.0);
    run(&mut engine, &trip.fixes);
    let last_s = trip.now_s;

    let o = order(vec![
        stop(StopKind::Pickup, offset(pos(&map, 'd'), 0.0, 150.0)),
        stop(StopKind::Delivery, pos(&map, 'c')),
    ]);
    engine.set_orders(vec![o.clone()]);
    let now = at(last_s + 1800.0);
    let out = engine.etas_from_last_fixes(now);
    let updates = etas(&out.events);
    assert_eq!(
        updates.iter().map(|u| u.stop_index).collect::<Vec<_>>(),
        vec![0, 1],
        "every stop's ETA"
    );
    // From the road nearest the truck's yard (b, taken the way that leads
    // to d, not towards e): 4 km to d (4 min), into the pickup's yard (150 m
    // at 10 km/h, 54 s): about 5 min from now.
    let ahead_s = (updates[0].eta - now).num_seconds() as f64;
    assert!(
        (280.0..360.0).contains(&ahead_s),
        "{ahead_s} s: {:?}",
        updates[0]
    );
    assert!(
        engine.etas_from_last_fixes(now).events.is_empty(),
        "once, not at every sync"
    );

    // A truck last heard of seven hours ago is not where it was.
    let mut stale = engine_with_stale_fix(&map, &graph, &trip);
    stale.set_orders(vec![o]);
    assert!(
        stale
            .etas_from_last_fixes(at(last_s + 7.0 * 3600.0))
            .events
            .is_empty()
    );
}

fn engine_with_stale_fix(_map: &DrawnMap, graph: &Arc<RoadGraph>, trip: &Trip) -> LiveEngine {
    let mut engine = engine(graph);
    run(&mut engine, &trip.fixes);
    engine
}

#[test]
fn a_polygon_fence_is_the_yard_itself() {
    let (map, graph) = straight_road();
    let mut engine = engine(&graph);
    // A long yard north of c, 100–400 m from the road: its point (the office)
    // at the far end; the truck docks at the near end, 300 m from the point
    // (outside the default circle, inside the yard).
    let c = pos(&map, 'c');
    let corner = |e: f64, n: f64| {
        let p = offset(c, e, n);
        [p.lon, p.lat]
    };
    let office = offset(c, 0.0, 380.0);
    let mut pickup = stop(StopKind::Pickup, office);
    pickup.geofence = Some(Geofence::Polygon(vec![
        corner(-100.0, 60.0),
        corner(100.0, 60.0),
        corner(100.0, 400.0),
        corner(-100.0, 400.0),
    ]));
    engine.set_orders(vec![order(vec![
        pickup,
        stop(StopKind::Delivery, pos(&map, 'd')),
    ])]);
    let dock = offset(c, 0.0, 80.0);
    let mut trip = Trip::new(TRUCK, pos(&map, 'a'), 0.0, 5.0).noise(3.0, 21);
    trip.drive(&[c, dock], 10.0).stand(180.0);
    let events = only_events(&run(&mut engine, &trip.fixes));
    assert_eq!(moves(&events), vec![(OrderStatus::AtPickup, Some(0))]);
}
