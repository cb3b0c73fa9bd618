//! The simulated fleet: deterministic for a seed, on the roads (within GPS noise),
//! reporting at ELD intervals, resting as hours of service require, and its
//! positions pass ingest validation.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use engine::{Metric, Router, TurnCosts, VehicleId};
use ingest::simulate::{Fleet, FleetConfig};
use ingest::{Envelope, Format, ValidationRules, decode, encode};
use road_graph::{DrawnMap, LatLon, RoadGraph, haversine_m};

/// A small grid town with a faster ring road.
fn town() -> Arc<RoadGraph> {
    town_map().1
}

/// The town and its drawing (for the places of its corners).
fn town_map() -> (DrawnMap, Arc<RoadGraph>) {
    let mut map = DrawnMap::new(
        "
        a---b---c---d
        |   |   |   |
        e---f---g---h
        |   |   |   |
        i---j---k---l
        ",
        400.0,
    );
    map.way("abcd", &[("highway", "primary")]);
    map.way("efgh", &[]);
    map.way("ijkl", &[("highway", "secondary")]);
    map.way("aei", &[("highway", "primary")]);
    map.way("bfj", &[]);
    map.way("cgk", &[]);
    map.way("dhl", &[("highway", "primary")]);
    let graph = Arc::new(map.build().expect("map builds").0);
    (map, graph)
}

fn router(graph: &Arc<RoadGraph>) -> Router {
    Router::new(graph.clone(), &TurnCosts::TRUCK, Metric::free_flow(graph)).expect("router")
}

fn small_trips(n: usize, seed: u64) -> FleetConfig {
    FleetConfig {
        min_trip_m: 500.0,
        max_trip_m: 2_000.0,
        ..FleetConfig::recommended(n, seed)
    }
}

#[test]
fn same_seed_same_fleet() {
    let graph = town();
    let planner = router(&graph);
    let start = Utc
        .with_ymd_and_hms(2024, 5, 14, 6, 0, 0)
        .single()
        .expect("time");
    let run = |seed| {
        let mut fleet = Fleet::new(graph.clone(), small_trips(5, seed), start).expect("fleet");
        let mut all = Vec::new();
        for minute in 1..=120 {
            all.extend(fleet.advance(&planner, start + TimeDelta::minutes(minute)));
        }
        all
    };
    let a = run(7);
    assert!(
        a.len() > 500,
        "five trucks for two hours report plenty ({})",
        a.len()
    );
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
}

#[test]
fn trucks_drive_on_the_roads_and_report_at_eld_intervals() {
    let graph = town();
    let planner = router(&graph);
    let start = Utc
        .with_ymd_and_hms(2024, 5, 14, 6, 0, 0)
        .single()
        .expect("time");
    let mut fleet = Fleet::new(graph.clone(), small_trips(20, 1), start).expect("fleet");
    let mut fixes = Vec::new();
    for minute in 1..=180 {
        fixes.extend(fleet.advance(&planner, start + TimeDelta::minutes(minute)));
    }
    let trips = fleet.take_trips();
    assert!(
        trips.len() >= 20,
        "every truck set off at least once ({} trips)",
        trips.len()
    );

    // Within GPS noise of a road: 5 m sigma, 1 % outliers at 40 m sigma.
    let off_road = fixes
        .iter()
        .filter(|p| {
            graph
                .nearest_edges(LatLon::new(p.lat, p.lon), 30.0, 1)
                .is_empty()
        })
        .count();
    assert!(
        off_road * 100 <= fixes.len() * 2,
        "{off_road} of {} fixes off the road",
        fixes.len()
    );

    // Intervals per truck are one of the ELD intervals (or the parked one).
    let allowed = [1, 5, 15, 30, 60, 300];
    for id in fleet.vehicle_ids() {
        let times: Vec<_> = fixes
            .iter()
            .filter(|p| &p.vehicle_id == id)
            .map(|p| p.time)
            .collect();
        for pair in times.windows(2) {
            let gap = (pair[1] - pair[0]).num_seconds();
            assert!(allowed.contains(&gap), "{id}: gap of {gap} s");
        }
    }
    // Moving and parked both happen.
    assert!(fixes.iter().any(|p| p.speed_mps.is_some_and(|s| s > 5.0)));
    assert!(fixes.iter().any(|p| p.speed_mps.is_some_and(|s| s < 0.5)));

    // Every fix passes validation in every wire format.
    let now = start + TimeDelta::minutes(181);
    for p in fixes.iter().step_by(17) {
        for format in Format::ALL {
            let key = p.key().wire_key();
            decode(
                format,
                &encode(format, p),
                Envelope {
                    key: Some(&key),
                    tenant: None,
                },
                now,
                &ValidationRules::RECOMMENDED,
            )
            .unwrap_or_else(|r| panic!("{format}: {r} for {p:?}"));
        }
    }
}

#[test]
fn a_day_on_the_road_includes_the_hours_of_service_rests() {
    let graph = town();
    let planner = router(&graph);
    let start = Utc
        .with_ymd_and_hms(2024, 5, 14, 0, 0, 0)
        .single()
        .expect("time");
    let mut config = small_trips(1, 3);
    config.intervals_s = vec![(60, 1)];
    config.dwell_s = (60, 120);
    let mut fleet = Fleet::new(graph.clone(), config, start).expect("fleet");
    let fixes = fleet.advance(&planner, start + TimeDelta::hours(30));
    let hos: Vec<u32> = fixes
        .iter()
        .filter_map(|p| p.hos_drive_remaining_s)
        .collect();
    assert!(hos.iter().all(|&s| s <= 11 * 3600));
    // The 11-hour clock ran down and was reset by the 10-hour rest.
    let min = hos.iter().copied().min().expect("fixes");
    assert!(
        min < 600,
        "the driver used up the shift ({min} s left at least)"
    );
    let reset = hos.windows(2).any(|w| w[1] > w[0] + 3600);
    assert!(reset, "the shift clock was reset after the rest");
    // The rest itself: ten hours without moving.
    let longest_parked = fixes
        .windows(2)
        .filter(|w| w[0].odometer_m == w[1].odometer_m)
        .count();
    assert!(
        longest_parked >= 10 * 60 / 5,
        "parked fixes: {longest_parked}"
    );
}

#[test]
fn a_scripted_truck_drives_only_where_it_is_sent_then_waits() {
    let (map, graph) = town_map();
    let planner = router(&graph);
    let start = Utc
        .with_ymd_and_hms(2024, 5, 14, 6, 0, 0)
        .single()
        .expect("time");
    let truck = VehicleId("demo-truck-1".into());
    let config = FleetConfig {
        intervals_s: vec![(5, 1)],
        dwell_s: (60, 61),
        ..FleetConfig::recommended(1, 3)
    };
    let mut fleet = Fleet::scripted(
        graph.clone(),
        config,
        start,
        &[(truck.clone(), map.pos('a'))],
    )
    .expect("fleet");
    // Nowhere to go: it waits at a, and says so.
    let parked = fleet.advance(&planner, start + TimeDelta::minutes(10));
    assert!(!parked.is_empty());
    assert!(parked.iter().all(|p| p.vehicle_id == truck));
    assert!(
        parked
            .iter()
            .all(|p| haversine_m(LatLon::new(p.lat, p.lon), map.pos('a')) < 60.0)
    );
    assert!(fleet.is_idle(&truck));

    assert!(!fleet.send(&VehicleId("someone-else".into()), map.pos('l')));
    assert!(fleet.send(&truck, map.pos('l')));
    assert!(!fleet.is_idle(&truck));
    let trip = fleet.advance(&planner, start + TimeDelta::minutes(40));
    let far_from_both = trip.iter().any(|p| {
        let here = LatLon::new(p.lat, p.lon);
        haversine_m(here, map.pos('a')) > 400.0 && haversine_m(here, map.pos('l')) > 400.0
    });
    assert!(far_from_both, "it drove across the town");
    let end = fleet.position_of(&truck).expect("a position");
    assert!(
        haversine_m(end, map.pos('l')) < 30.0,
        "it stopped at l: {end:?}"
    );
    assert!(
        fleet.is_idle(&truck),
        "reached, dwelt, waiting for the next place"
    );
}
