//! The traffic model on drawn maps and on porto: fleet samples move an edge's
//! speed and then fade back to its profile, outliers and too few samples do not,
//! the hour-of-week profile is learned from history (in one batch, and online
//! as the fleet drives, kept over a restart), the external feed is merged
//! per OSM way, the metric matches the routing core's own construction, and the
//! memory stays small on a real map.

use crate::eta_support;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use engine::{
    ExternalSpeed, HourOfWeek, Metric, Router, SampleRejection, SpeedObservation, SpeedProfile,
    SpeedSource, TrafficConfig, TrafficModel, TurnCosts, Tz,
};
use eta_support::{at, edge, straight_road};
use road_graph::{DrawnMap, EdgeId, ProfileConfig, RoadGraph, import_pbf};

fn model(graph: &Arc<RoadGraph>) -> TrafficModel {
    TrafficModel::new(
        graph.clone(),
        TrafficConfig::fleet(Tz::UTC),
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect("model")
}

/// A passage of the whole edge at `kph`, leaving it at `exit`.
fn passage(graph: &RoadGraph, edge: EdgeId, kph: f64, exit: DateTime<Utc>) -> SpeedObservation {
    let length_m = graph.edge_length_m(edge);
    SpeedObservation {
        edge,
        entered_at: exit - Duration::milliseconds((length_m / (kph / 3.6) * 1000.0) as i64),
        exited_at: exit,
        distance_m: length_m,
    }
}

#[test]
fn fleet_samples_slow_an_edge_and_fade_back_to_free_flow() {
    let (map, graph) = straight_road();
    let mut traffic = model(&graph);
    let bc = edge(&map, &graph, 'b', 'c');
    let free_kph = graph.edge_speed_kph(bc);
    assert_eq!(traffic.estimate(bc, at(0.0)).source, SpeedSource::FreeFlow);

    traffic
        .observe(&passage(&graph, bc, 20.0, at(0.0)))
        .expect("plausible");
    let one = traffic.estimate(bc, at(0.0));
    assert_eq!(one.speed_kph, free_kph, "one truck is not yet traffic");

    traffic
        .observe(&passage(&graph, bc, 20.0, at(10.0)))
        .expect("plausible");
    traffic
        .observe(&passage(&graph, bc, 20.0, at(20.0)))
        .expect("plausible");
    let jam = traffic.estimate(bc, at(20.0));
    assert_eq!(jam.source, SpeedSource::Live);
    assert_eq!(jam.samples, 3);
    assert!(jam.speed_kph < 25.0 && jam.speed_kph > 20.0, "{jam:?}");

    // Ten minutes later the evidence has half its weight; the speed rises.
    let later = traffic.estimate(bc, at(620.0));
    assert!(
        later.speed_kph > jam.speed_kph && later.speed_kph < free_kph,
        "{later:?}"
    );
    // After the window, back to free flow; pruning frees the memory.
    assert_eq!(traffic.estimate(bc, at(1900.0)).speed_kph, free_kph);
    assert_eq!(traffic.live_edges(), 1);
    traffic.prune(at(1900.0));
    assert_eq!(traffic.live_edges(), 0);
}

#[test]
fn implausible_passages_are_counted_not_used() {
    let (map, graph) = straight_road();
    let mut traffic = model(&graph);
    let ab = edge(&map, &graph, 'a', 'b');
    let mut standing = passage(&graph, ab, 1.0, at(0.0));
    assert_eq!(traffic.observe(&standing), Err(SampleRejection::Standing));
    standing.distance_m = 100.0;
    assert_eq!(traffic.observe(&standing), Err(SampleRejection::TooPartial));
    assert_eq!(
        traffic.observe(&passage(&graph, ab, 400.0, at(0.0))),
        Err(SampleRejection::TooFast)
    );
    let instant = SpeedObservation {
        edge: ab,
        entered_at: at(0.0),
        exited_at: at(0.0),
        distance_m: 2000.0,
    };
    assert_eq!(traffic.observe(&instant), Err(SampleRejection::TooShort));
    let nowhere = SpeedObservation {
        edge: EdgeId(1_000_000),
        ..instant
    };
    assert_eq!(traffic.observe(&nowhere), Err(SampleRejection::UnknownEdge));
    let counters = traffic.counters();
    assert_eq!(
        (
            counters.accepted,
            counters.standing,
            counters.too_partial,
            counters.too_fast,
            counters.too_short
        ),
        (0, 1, 1, 1, 1)
    );
    assert_eq!(traffic.live_edges(), 0);
}

#[test]
fn one_stopped_truck_does_not_make_a_jam() {
    let (map, graph) = straight_road();
    let mut traffic = model(&graph);
    let cd = edge(&map, &graph, 'c', 'd');
    for (i, kph) in [55.0, 58.0, 56.0, 6.0].into_iter().enumerate() {
        traffic
            .observe(&passage(&graph, cd, kph, at(i as f64 * 30.0)))
            .expect("plausible");
    }
    let estimate = traffic.estimate(cd, at(100.0));
    assert_eq!(estimate.samples, 3, "the 6 km/h passage is an outlier");
    assert!(estimate.speed_kph > 55.0, "{estimate:?}");
}

/// Four Mondays of history on `edge`: 30 km/h between 08:00 and 09:00 Berlin
/// time (07:00 UTC in winter), 60 km/h (free flow) at 14:00, in time order.
fn rush_hour_mondays(graph: &RoadGraph, edge: EdgeId) -> Vec<SpeedObservation> {
    let mut history = Vec::new();
    for week in 0..4 {
        let monday = Utc
            .with_ymd_and_hms(2025, 1, 6, 0, 0, 0)
            .single()
            .expect("date")
            + Duration::weeks(week);
        for (hour, kph) in [(7, 30.0), (13, 60.0)] {
            for k in 0..5 {
                history.push(passage(
                    graph,
                    edge,
                    kph,
                    monday + Duration::hours(hour) + Duration::minutes(10 * k + 5),
                ));
            }
        }
    }
    history
}

#[test]
fn the_hour_of_week_profile_is_learned_from_history() {
    let (map, graph) = straight_road();
    let berlin: Tz = "Europe/Berlin".parse().expect("zone");
    let bc = edge(&map, &graph, 'b', 'c');
    let cd = edge(&map, &graph, 'c', 'd');
    let history = rush_hour_mondays(&graph, bc);
    let profile = SpeedProfile::learn(&graph, &history, 5.0, berlin);
    let monday_8 = Utc
        .with_ymd_and_hms(2025, 3, 3, 8, 30, 0)
        .single()
        .expect("date");
    let rush = profile.speed_kph(&graph, bc, monday_8 - Duration::hours(1));
    let noon = profile.speed_kph(&graph, bc, monday_8 + Duration::hours(5));
    assert!(rush < 40.0, "learned rush hour: {rush}");
    assert!(noon > 50.0, "free at noon: {noon}");
    // c–d has no history of its own but shares the class's rush-hour shape.
    assert!(profile.speed_kph(&graph, cd, monday_8 - Duration::hours(1)) < 50.0);

    // The same shape reaches the routing core's time-dependent form.
    let (base, weekly) = profile.weekly_profile(&graph).expect("profile");
    let hour = HourOfWeek::from_local(
        (monday_8 - Duration::hours(1))
            .with_timezone(&berlin)
            .naive_local(),
    );
    assert_eq!(hour.idx(), 8, "Monday 08:00 in Berlin");
    let timed_ms = weekly.path_duration_ms(&base, &[bc], hour, 0);
    let expected_ms = graph.edge_length_m(bc) / (rush / 3.6) * 1000.0;
    assert!(
        (f64::from(timed_ms) - expected_ms).abs() < 0.02 * expected_ms,
        "{timed_ms} vs {expected_ms}"
    );

    // A model on that profile says "profile" where it has no live evidence.
    let traffic =
        TrafficModel::new(graph.clone(), TrafficConfig::fleet(berlin), profile).expect("model");
    assert_eq!(traffic.estimate(bc, monday_8).source, SpeedSource::Profile);
}

#[test]
fn a_live_model_learns_its_profile_as_the_fleet_drives_and_keeps_it_over_a_restart() {
    let (map, graph) = straight_road();
    let berlin: Tz = "Europe/Berlin".parse().expect("zone");
    let bc = edge(&map, &graph, 'b', 'c');
    let config = TrafficConfig::fleet(berlin);
    assert_eq!(config.profile_relearn_every_s, 3600.0, "hourly by default");
    let mut traffic = TrafficModel::new(
        graph.clone(),
        config.clone(),
        SpeedProfile::free_flow(berlin),
    )
    .expect("model");
    // The engine asks for a metric every 30 s or so; the model re-learns its
    // profile at most hourly.
    let history = rush_hour_mondays(&graph, bc);
    let mut learned = 0;
    for obs in &history {
        traffic.observe(obs).expect("plausible");
        learned += usize::from(traffic.relearn_profile(obs.exited_at));
    }
    let last = history.last().expect("history").exited_at;
    learned += usize::from(traffic.relearn_profile(last + Duration::hours(2)));
    assert!(learned >= 4, "re-learned every week at least: {learned}");
    assert_eq!(traffic.history().expect("learning").samples(), 40);

    // A Monday a month later, no truck on b–c for weeks: the profile speaks.
    let monday_8 = Utc
        .with_ymd_and_hms(2025, 3, 3, 7, 30, 0)
        .single()
        .expect("date");
    let rush = traffic.estimate(bc, monday_8);
    let noon = traffic.estimate(bc, monday_8 + Duration::hours(6));
    assert_eq!(rush.source, SpeedSource::Profile);
    assert!(rush.speed_kph < 40.0, "learned rush hour: {rush:?}");
    assert!(noon.speed_kph > 50.0, "free at noon: {noon:?}");
    // Online learning lands near the batch fit of the same passages.
    let batch = SpeedProfile::learn(&graph, &history, config.profile_prior_samples, berlin);
    let batch_rush = batch.speed_kph(&graph, bc, monday_8);
    assert!(
        (rush.speed_kph - batch_rush).abs() < 0.1 * batch_rush,
        "online {} vs batch {batch_rush}",
        rush.speed_kph
    );

    // Saved and taken up by a fresh model: the rush hour is there at once.
    let saved = serde_json::to_string(traffic.history().expect("learning")).expect("saves");
    let mut restarted = TrafficModel::new(
        graph.clone(),
        config.clone(),
        SpeedProfile::free_flow(berlin),
    )
    .expect("model");
    assert!(
        restarted.estimate(bc, monday_8).speed_kph > 50.0,
        "free flow before"
    );
    restarted
        .restore_history(serde_json::from_str(&saved).expect("parses"))
        .expect("fits");
    let again = restarted.estimate(bc, monday_8);
    assert!(
        (again.speed_kph - rush.speed_kph).abs() < 1e-3,
        "{again:?} vs {rush:?}"
    );

    // Not on another clock, and not on another map.
    let mut utc = TrafficModel::new(
        graph.clone(),
        TrafficConfig::fleet(Tz::UTC),
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect("model");
    let refused = utc.restore_history(serde_json::from_str(&saved).expect("parses"));
    assert!(refused.is_err(), "another time zone");
    let mut other = DrawnMap::new("a---b", 200.0);
    other.way("ab", &[("highway", "primary"), ("maxspeed", "60")]);
    let (other, _) = other.build().expect("builds");
    let mut elsewhere = TrafficModel::new(
        Arc::new(other),
        config.clone(),
        SpeedProfile::free_flow(berlin),
    )
    .expect("model");
    let refused = elsewhere.restore_history(serde_json::from_str(&saved).expect("parses"));
    assert!(refused.is_err(), "another map");
    assert!(elsewhere.history().expect("learning").samples() == 0);

    // A model told not to learn keeps the profile it was given.
    let fixed = TrafficConfig {
        profile_relearn_every_s: 0.0,
        ..config
    };
    let mut fixed =
        TrafficModel::new(graph.clone(), fixed, SpeedProfile::free_flow(berlin)).expect("model");
    for obs in &history {
        fixed.observe(obs).expect("plausible");
        assert!(!fixed.relearn_profile(obs.exited_at));
    }
    assert!(fixed.history().is_none());
    assert_eq!(fixed.estimate(bc, monday_8).source, SpeedSource::FreeFlow);
}

#[test]
fn an_external_feed_is_merged_per_way_and_direction_and_ages_out() {
    let (map, graph) = straight_road();
    let mut traffic = model(&graph);
    let bc = edge(&map, &graph, 'b', 'c');
    let cb = edge(&map, &graph, 'c', 'b');
    let way = graph.edge_way_id(bc);
    let forward = !graph.edge_geom(bc).1;
    let set = traffic.merge_feed(&[
        ExternalSpeed {
            way_id: way,
            speed_kph: 15.0,
            observed_at: at(0.0),
            forward: Some(forward),
        },
        ExternalSpeed {
            way_id: 999_999,
            speed_kph: 15.0,
            observed_at: at(0.0),
            forward: None,
        },
    ]);
    assert_eq!(set, 1, "one direction of one way");
    assert_eq!(traffic.counters().feed_unknown_way, 1);
    let slowed = traffic.estimate(bc, at(0.0));
    assert_eq!(slowed.source, SpeedSource::Feed);
    assert!(slowed.speed_kph < 25.0, "{slowed:?}");
    assert_eq!(
        traffic.estimate(cb, at(0.0)).speed_kph,
        graph.edge_speed_kph(cb),
        "the other direction is free"
    );
    assert_eq!(
        traffic.estimate(bc, at(1000.0)).speed_kph,
        graph.edge_speed_kph(bc),
        "older than 15 minutes"
    );
}

#[test]
fn the_metric_is_the_routing_cores_own_from_the_current_speeds() {
    let (map, graph) = straight_road();
    let mut traffic = model(&graph);
    let bc = edge(&map, &graph, 'b', 'c');
    for i in 0..3 {
        traffic
            .observe(&passage(&graph, bc, 30.0, at(f64::from(i))))
            .expect("plausible");
    }
    let speeds = traffic.current_speeds_kph(at(5.0));
    let metric = traffic.metric(at(5.0)).expect("metric");
    assert_eq!(
        metric,
        Metric::from_speeds_kph(&graph, &speeds).expect("metric")
    );
    let free = Metric::free_flow(&graph);
    let changes = traffic
        .changes_since(&free, at(5.0), 0.02)
        .expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].0, bc);
    assert_eq!(changes[0].1, metric.edge_ms(bc));
}

/// Porto, with a fleet's worth of passages: the live state stays a few bytes per
/// directed edge, a whole metric is made in tens of milliseconds, and a partial
/// update reaches the router's queries.
#[test]
fn porto_memory_and_metric_time_stay_small() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/osm/porto.osm.pbf"
    );
    let (graph, _) = import_pbf(
        std::path::Path::new(path),
        &ProfileConfig::TRUCK,
        &mut |_| {},
    )
    .expect("porto");
    let graph = Arc::new(graph);
    let n_edges = graph.n_edges();
    assert!(n_edges > 100_000);
    let mut traffic = model(&graph);
    // 20,000 edges driven recently, three passages each at 70 % of free flow.
    for k in 0..20_000usize {
        let edge = EdgeId(((k * 7919) % n_edges) as u32);
        let kph = graph.edge_speed_kph(edge) * 0.7;
        for i in 0..3 {
            let _ = traffic.observe(&passage(
                &graph,
                edge,
                kph,
                at((k % 600) as f64 + f64::from(i)),
            ));
        }
    }
    assert!(traffic.counters().accepted > 50_000);
    let per_edge = traffic.heap_bytes() as f64 / n_edges as f64;
    assert!(
        per_edge < 32.0,
        "{per_edge:.1} bytes of live state per directed edge"
    );

    let started = Instant::now();
    let metric = traffic.metric(at(700.0)).expect("metric");
    let took = started.elapsed();
    assert!(took.as_millis() < 500, "a whole metric took {took:?}");

    let router =
        Router::new(graph.clone(), &TurnCosts::TRUCK, Metric::free_flow(&graph)).expect("router");
    let changes = traffic
        .changes_since(&router.metric(), at(700.0), 0.02)
        .expect("changes");
    assert!(changes.len() > 15_000, "{} edges changed", changes.len());
    router.update_edges(&changes).expect("update");
    assert_eq!(
        router.metric(),
        metric,
        "queries now run on the traffic metric"
    );
}
