//! ETA scenarios on a drawn road: a slowdown ahead raises the ETA (and says
//! `traffic`), hours of service add their breaks with the right length
//! (`hos_break`), an early truck waits for the window (`window_wait`), dwell at
//! an intermediate stop delays the next (`dwell`), a slow truck's own pace is
//! carried forward, a truck that stands or drives away from its stop gets a
//! window that grows with the stall (but not in a rest the hours of service
//! call for), the tracker routes and publishes only when it must, and a
//! tracker resumed after a restart goes on with its truck's pace and stand.

use crate::eta_support;

use std::sync::Arc;

use chrono::Duration;
use chrono_tz::Tz;
use engine::{
    AppointmentWindow, Calibrator, ClosedBy, EtaConfig, EtaInput, EtaReason, HosClocks, Leg,
    MetricVersion, OrderId, RerouteReason, Resumed, Router, SpeedObservation, SpeedProfile,
    StopPlan, TrackedStop, TrackerConfig, TrackingContext, TrafficConfig, TrafficModel,
    VehicleTracker, estimate_stops,
};
use eta_support::{
    at, calibrator, drive, edge, fix_on, route_between, router, straight_road, version,
};
use road_graph::{DrawnMap, EdgeId, RoadGraph};

const NO_WINDOW: StopPlan = StopPlan {
    window: None,
    early_allowed: true,
    dwell_s: None,
};

/// The drawn straight road with its router, a fresh fleet calibrator and the
/// free-flow metric: what the tracker scenarios drive on.
struct Road {
    map: DrawnMap,
    graph: Arc<RoadGraph>,
    router: Router,
    calibrator: Calibrator,
    metric: MetricVersion,
}

impl Road {
    fn new() -> Road {
        let (map, graph) = straight_road();
        let router = router(&graph);
        let metric = version(0, router.metric());
        Road {
            map,
            graph,
            router,
            calibrator: calibrator(),
            metric,
        }
    }

    fn ctx(&self) -> TrackingContext<'_> {
        TrackingContext {
            router: &self.router,
            metric: &self.metric,
            calibrator: &self.calibrator,
        }
    }

    /// A tracker for `order`, whose stops are numbered from `first_index`.
    fn tracker(&self, order: &str, first_index: u32, stops: &[TrackedStop]) -> VehicleTracker {
        VehicleTracker::new(
            &self.router,
            OrderId(order.into()),
            first_index,
            stops,
            TrackerConfig::TRUCK,
        )
        .expect("tracker")
    }

    /// A tracker for `order`, whose one stop is d (no window).
    fn tracker_to_d(&self, order: &str) -> VehicleTracker {
        let stops = [TrackedStop {
            position: self.map.pos('d'),
            plan: NO_WINDOW,
        }];
        self.tracker(order, 0, &stops)
    }

    fn edge(&self, from: char, to: char) -> EdgeId {
        edge(&self.map, &self.graph, from, to)
    }
}

/// Forty kilometres in half an hour, free-flow and live alike.
const HALF_HOUR_DRIVE: [Leg; 1] = [Leg {
    drive_s: 1800.0,
    free_flow_s: 1800.0,
    distance_m: 40_000.0,
}];

/// The ETA input of a truck at `at(0)` driving `legs` to one stop with no
/// window, on the hours of service `hos`, at the metric's pace, moving.
fn drive_input(legs: &[Leg], hos: HosClocks) -> EtaInput<'_> {
    EtaInput {
        now: at(0.0),
        legs,
        stops: &[NO_WINDOW],
        hos,
        pace_factor: 1.0,
        departs_at: None,
        own: None,
        stalled_s: 0.0,
        stall_share: 0.0,
    }
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

#[test]
fn a_slowdown_ahead_raises_the_eta_and_names_traffic() {
    let road = Road::new();
    let mut traffic = TrafficModel::new(
        Arc::clone(&road.graph),
        TrafficConfig::fleet(Tz::UTC),
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect("model");
    let free = version(0, traffic.metric(at(0.0)).expect("metric"));
    let mut tracker = road.tracker_to_d("o1");
    let ab = road.edge('a', 'b');
    let ctx = TrackingContext {
        metric: &free,
        ..road.ctx()
    };
    let first = tracker.on_fix(&ctx, &fix_on(&road.graph, ab, 0.0, at(0.0)));
    assert_eq!(first.rerouted, Some(RerouteReason::Start));
    let (_, before) = first.etas[0].clone();
    assert!(
        (seconds(before.eta - at(0.0)) - 360.0).abs() < 2.0,
        "6 km at 60 km/h: {:?}",
        before.eta
    );
    assert!(!before.reasons.contains(&EtaReason::Traffic));

    // Two trucks crawl through c–d at 15 km/h: 8 minutes instead of 2.
    let cd = road.edge('c', 'd');
    for start in [0.0, 5.0] {
        let obs = SpeedObservation {
            edge: cd,
            entered_at: at(start - 480.0),
            exited_at: at(start),
            distance_m: road.graph.edge_length_m(cd),
        };
        traffic.observe(&obs).expect("plausible passage");
    }
    let slow_metric = traffic.metric(at(10.0)).expect("metric");
    road.router
        .customize(slow_metric.clone())
        .expect("customizes");
    let slow = version(1, slow_metric);
    let ctx = TrackingContext {
        metric: &slow,
        ..road.ctx()
    };
    let second = tracker.on_fix(&ctx, &fix_on(&road.graph, ab, 10.0 * 60.0 / 3.6, at(10.0)));
    let (_, after) = second.etas[0].clone();
    let raised_s = seconds(after.eta - before.eta);
    // Fresh evidence of weight 2 against a prior of 1: two thirds of the way to
    // the crawl in pace, i.e. +240 s on the c–d stretch.
    assert!(
        (raised_s - 240.0).abs() < 10.0,
        "ETA raised by {raised_s} s"
    );
    assert!(
        after.reasons.contains(&EtaReason::Traffic),
        "{:?}",
        after.reasons
    );
    assert!(after.traffic_s > 200.0);
    assert_eq!(second.updates.len(), 1, "a 4-minute move is published");

    // Half an hour later the evidence has left the window: back to free flow.
    let later = traffic.metric(at(1900.0)).expect("metric");
    assert_eq!(later, free.metric.as_ref().clone());
}

#[test]
fn hours_of_service_add_a_thirty_minute_break_after_eight_hours_of_driving() {
    // Seven hours and fifty minutes driven: the break comes ten minutes into
    // the last hour of the drive.
    let clocks = HosClocks {
        drive_left_s: 3.0 * 3600.0,
        window_left_s: 5.0 * 3600.0,
        until_break_s: 600.0,
        resting_s: 0.0,
    };
    let legs = [Leg {
        drive_s: 3600.0,
        free_flow_s: 3600.0,
        distance_m: 80_000.0,
    }];
    let input = drive_input(&legs, clocks);
    let etas = estimate_stops(&input, &EtaConfig::TRUCK, &calibrator());
    assert_eq!(etas[0].hos_break_s, 1800.0);
    assert_eq!(etas[0].eta, at(3600.0 + 1800.0));
    assert_eq!(etas[0].reasons, [EtaReason::HosBreak]);
    assert!(etas[0].p10 <= etas[0].eta && etas[0].eta <= etas[0].p90);
}

#[test]
fn a_driver_out_of_hours_takes_ten_hours_off_before_the_stop() {
    let road = Road::new();
    let mut tracker = road.tracker_to_d("o2");
    let ctx = road.ctx();
    // The ELD says two minutes of driving are left; the stop is six minutes away.
    let mut fix = fix_on(&road.graph, road.edge('a', 'b'), 0.0, at(0.0));
    fix.hos.drive_left_s = Some(120);
    let out = tracker.on_fix(&ctx, &fix);
    let (_, eta) = &out.etas[0];
    assert_eq!(eta.hos_break_s, 36_000.0, "a 10-hour reset");
    assert!((seconds(eta.eta - at(0.0)) - (360.0 + 36_000.0)).abs() < 2.0);
    assert!(eta.reasons.contains(&EtaReason::HosBreak));
    assert_eq!(
        out.updates[0].reasons, eta.reasons,
        "the reason reaches the published update"
    );
}

#[test]
fn an_early_truck_waits_for_the_window_and_the_next_stop_waits_with_it() {
    let road = Road::new();
    let window = AppointmentWindow::new(at(3600.0), at(7200.0)).expect("window");
    let stops = [
        TrackedStop {
            position: road.map.pos('c'),
            plan: StopPlan {
                window: Some(window),
                early_allowed: false,
                dwell_s: Some(600.0),
            },
        },
        TrackedStop {
            position: road.map.pos('d'),
            plan: NO_WINDOW,
        },
    ];
    let mut tracker = road.tracker("o3", 1, &stops);
    let ctx = road.ctx();
    let out = tracker.on_fix(
        &ctx,
        &fix_on(&road.graph, road.edge('a', 'b'), 0.0, at(0.0)),
    );
    let (index, first) = &out.etas[0];
    assert_eq!(*index, 1, "stop indices follow the order's numbering");
    assert!(
        (seconds(first.arrival - at(0.0)) - 240.0).abs() < 2.0,
        "there in 4 minutes"
    );
    assert_eq!(first.eta, window.from, "served when the window opens");
    assert!(
        first.p10 >= window.from,
        "no arrival shown before the window"
    );
    assert!((first.wait_s - 3360.0).abs() < 2.0);
    assert_eq!(first.reasons, [EtaReason::WindowWait]);

    let (_, second) = &out.etas[1];
    assert!(
        (seconds(second.eta - window.from) - (600.0 + 120.0)).abs() < 2.0,
        "dwell, then 2 km"
    );
    assert_eq!(second.reasons, [EtaReason::Dwell, EtaReason::WindowWait]);

    // With early deliveries allowed the same truck is served on arrival.
    let mut early_ok = stops;
    early_ok[0].plan.early_allowed = true;
    let mut tracker = road.tracker("o4", 0, &early_ok);
    let out = tracker.on_fix(
        &ctx,
        &fix_on(&road.graph, road.edge('a', 'b'), 0.0, at(0.0)),
    );
    assert_eq!(out.etas[0].1.eta, out.etas[0].1.arrival);
    assert!(out.etas[0].1.reasons.is_empty());
}

#[test]
fn a_truck_on_schedule_routes_once_and_publishes_only_on_the_interval() {
    let road = Road::new();
    let mut tracker = road.tracker_to_d("o5");
    let ctx = road.ctx();
    let route = route_between(&road.router, &road.map, 'a', 'd');
    let fixes = drive(&road.graph, &route.edges, 60.0 / 3.6, 5.0, 0.0);
    let mut published = Vec::new();
    let mut arrivals = Vec::new();
    let mut closed = Vec::new();
    for fix in &fixes {
        let out = tracker.on_fix(&ctx, fix);
        published.extend(out.predictions);
        arrivals.extend(out.arrivals);
        closed.extend(out.closed);
    }
    let counters = tracker.counters();
    assert_eq!(
        counters.routes, 1,
        "on route and on the same metric: one query"
    );
    let times: Vec<f64> = published
        .iter()
        .map(|p| seconds(p.predicted_at - at(0.0)))
        .collect();
    assert_eq!(
        times,
        [0.0, 300.0],
        "nothing moved by 30 s: only the 5-minute refresh"
    );
    assert_eq!(arrivals.len(), 1);
    assert!(tracker.done());
    let at_arrival: Vec<_> = closed
        .iter()
        .filter(|c| c.source == ClosedBy::Arrival)
        .collect();
    assert_eq!(
        at_arrival.len(),
        6,
        "the ETA sampled every minute is closed by the arrival"
    );
    for c in at_arrival {
        assert!(
            (c.actual_to_go_s - c.predicted.to_go_s).abs() < 60.0,
            "{c:?}"
        );
        assert!(c.covered);
    }
    assert!(
        closed.iter().any(|c| c.source == ClosedBy::Checkpoint),
        "5-minute checkpoints were passed"
    );
}

#[test]
fn a_slow_truck_is_expected_to_stay_slow_and_a_truck_off_route_is_rerouted() {
    let road = Road::new();
    let mut tracker = road.tracker_to_d("o6");
    let ctx = road.ctx();
    // Half the posted speed along a–b–c.
    let ab = road.edge('a', 'b');
    let bc = road.edge('b', 'c');
    let mut last = None;
    for fix in drive(&road.graph, &[ab, bc], 30.0 / 3.6, 10.0, 0.0) {
        if seconds(fix.time - at(0.0)) > 420.0 {
            break;
        }
        last = tracker.on_fix(&ctx, &fix).etas.first().cloned().or(last);
    }
    let (_, eta) = last.expect("an ETA");
    let ratio = tracker.pace().ratio().expect("driven");
    assert!(
        (ratio - 2.0).abs() < 0.05,
        "observed twice the metric time: {ratio}"
    );
    let metric_s = eta.distance_m / (60.0 / 3.6);
    assert!(
        eta.drive_s > 1.2 * metric_s && eta.drive_s < 2.0 * metric_s,
        "in part: {} s for {metric_s} s",
        eta.drive_s
    );

    // Turning into the side road is leaving the route.
    let be = road.edge('b', 'e');
    let out = tracker.on_fix(&ctx, &fix_on(&road.graph, be, 50.0, at(600.0)));
    assert_eq!(out.rerouted, Some(RerouteReason::OffRoute));
}

#[test]
fn a_long_stop_with_noisy_fixes_is_a_stop_not_slow_driving() {
    let road = Road::new();
    let mut tracker = road.tracker_to_d("o7");
    let ctx = road.ctx();
    let ab = road.edge('a', 'b');
    let bc = road.edge('b', 'c');
    // a → b at the posted speed, a fix every 10 s.
    let mut fixes = drive(&road.graph, &[ab], 60.0 / 3.6, 10.0, 0.0);
    let stopped_s = seconds(fixes.last().expect("fixes").time - at(0.0));
    // Forty minutes parked at b. Every tenth fix the GPS throws the position
    // 35 m aside: beyond the standing radius (25 m), not a departure.
    let parked = fix_on(&road.graph, bc, 1.0, at(stopped_s));
    for k in 1..=240 {
        let mut fix = parked;
        fix.time = at(stopped_s + 10.0 * f64::from(k));
        if k % 10 == 0 {
            fix.position = road_graph::LocalPlane::new(parked.position).to_latlon(0.0, 35.0);
        }
        fixes.push(fix);
    }
    // Then on along b → c at the posted speed.
    fixes.extend(drive(
        &road.graph,
        &[bc],
        60.0 / 3.6,
        10.0,
        stopped_s + 2410.0,
    ));
    for fix in &fixes {
        tracker.on_fix(&ctx, fix);
    }
    let ratio = tracker.pace().ratio().expect("driven");
    assert!(
        ratio < 1.2,
        "forty minutes parked are not driving at a crawl: pace {ratio:.2}"
    );
}

#[test]
fn a_truck_that_stands_on_its_way_gets_a_window_that_grows_with_the_stand() {
    // a=====T·······b········c········d : T drives 1 km, then stands for half
    // an hour, then moves on.
    let road = Road::new();
    let mut tracker = road.tracker_to_d("stand");
    let ctx = road.ctx();
    let ab = road.edge('a', 'b');
    let bc = road.edge('b', 'c');
    let stall = EtaConfig::TRUCK.stall;
    tracker.on_fix(&ctx, &fix_on(&road.graph, ab, 0.0, at(0.0)));
    let mut widths = Vec::new();
    for k in 1..=31 {
        let t = 60.0 * f64::from(k);
        let out = tracker.on_fix(&ctx, &fix_on(&road.graph, ab, 1000.0, at(t)));
        let (_, eta) = out.etas[0].clone();
        // The ETA itself does not move: the truck may leave at any moment.
        let to_go_s = seconds(eta.eta - at(t));
        assert!((to_go_s - 300.0).abs() < 30.0, "{to_go_s} s to go at {t}");
        assert!(eta.p10 <= eta.eta);
        widths.push((t, seconds(eta.p90 - eta.eta)));
    }
    let width_at = |t: f64| widths.iter().find(|w| w.0 == t).map(|w| w.1).expect("fix");
    // Two minutes of standing are a light; ten minutes are a stall, held at
    // its Pareto 90th percentile: nine times as long again.
    assert!(width_at(120.0) < 600.0, "{widths:?}");
    let stalled_s = 660.0 - 60.0;
    assert!(
        width_at(660.0) >= stall.p90_share * stalled_s,
        "{} s after ten minutes",
        width_at(660.0)
    );
    assert!(width_at(1860.0) > width_at(660.0) * 2.5, "{widths:?}");
    assert_eq!(tracker.stalled_s(at(1860.0)), 1800.0);

    // It moves on: the stall is over and the window is the fleet's again.
    tracker.on_fix(&ctx, &fix_on(&road.graph, ab, 1500.0, at(1890.0)));
    let out = tracker.on_fix(&ctx, &fix_on(&road.graph, bc, 0.0, at(1920.0)));
    let (_, eta) = out.etas[0].clone();
    assert_eq!(tracker.stalled_s(at(1920.0)), 0.0);
    assert!(seconds(eta.p90 - eta.eta) < 600.0, "{eta:?}");
}

#[test]
fn a_truck_that_drives_away_from_its_stop_is_stalled_until_it_comes_back() {
    // T starts on b–c heading for d, turns back towards a (away from d), then
    // comes back: no progress towards d until it is nearer than it was.
    let road = Road::new();
    let mut tracker = road.tracker_to_d("away");
    let ctx = road.ctx();
    let bc = road.edge('b', 'c');
    let ba = road.edge('b', 'a');
    let ab = road.edge('a', 'b');
    tracker.on_fix(&ctx, &fix_on(&road.graph, bc, 1000.0, at(0.0)));
    tracker.on_fix(&ctx, &fix_on(&road.graph, bc, 1500.0, at(30.0)));
    // Away: back over b towards a for five minutes.
    let mut t = 30.0;
    for (e, off) in [
        (ba, 0.0),
        (ba, 1000.0),
        (ba, 1800.0),
        (ab, 500.0),
        (ab, 1500.0),
    ] {
        t += 60.0;
        tracker.on_fix(&ctx, &fix_on(&road.graph, e, off, at(t)));
    }
    assert_eq!(tracker.stalled_s(at(t)), t - 30.0, "away since 30 s");
    // Past where it turned, it is making progress again.
    tracker.on_fix(&ctx, &fix_on(&road.graph, bc, 1000.0, at(t + 60.0)));
    tracker.on_fix(&ctx, &fix_on(&road.graph, bc, 1600.0, at(t + 90.0)));
    assert_eq!(tracker.stalled_s(at(t + 90.0)), 0.0);
}

#[test]
fn a_rest_the_hours_of_service_call_for_is_planned_not_held_as_a_stall() {
    let legs = HALF_HOUR_DRIVE;
    let config = EtaConfig::TRUCK;
    let rules = config.hos;
    let input = |hos: HosClocks| EtaInput {
        stalled_s: 3.0 * 3600.0,
        ..drive_input(&legs, hos)
    };
    // Standing three hours with hours to spare: a stall, held at p90.
    let stalled = estimate_stops(&input(HosClocks::fresh(&rules)), &config, &calibrator());
    assert_eq!(stalled[0].eta, at(1800.0), "the ETA has it leave now");
    assert!(seconds(stalled[0].p90 - stalled[0].eta) >= config.stall.p90_share * 3.0 * 3600.0);
    // Three hours into the 10-hour reset of a driver out of hours: the reset's
    // end is known, and the window stays near it.
    let resetting = HosClocks {
        drive_left_s: 0.0,
        window_left_s: 0.0,
        until_break_s: 0.0,
        resting_s: 3.0 * 3600.0,
    };
    let rest = estimate_stops(&input(resetting), &config, &calibrator());
    assert_eq!(rest[0].eta, at(7.0 * 3600.0 + 1800.0));
    assert!(rest[0].reasons.contains(&EtaReason::HosBreak));
    assert!(seconds(rest[0].p90 - rest[0].eta) < 3600.0, "{:?}", rest[0]);
}

#[test]
fn a_truck_that_has_stood_half_its_trip_keeps_its_eta_but_widens_its_upper_end() {
    let legs = HALF_HOUR_DRIVE;
    let config = EtaConfig::TRUCK;
    let input = |stall_share: f64| EtaInput {
        stall_share,
        ..drive_input(&legs, HosClocks::fresh(&config.hos))
    };
    let steady = estimate_stops(&input(0.0), &config, &calibrator());
    let stopper = estimate_stops(&input(0.5), &config, &calibrator());
    assert_eq!(stopper[0].eta, steady[0].eta, "the ETA plans no stand");
    assert_eq!(stopper[0].p10, steady[0].p10);
    // The upper end drives at the door-to-door pace: half the time standing
    // is twice the time.
    let steady_p90_s = seconds(steady[0].p90 - at(0.0));
    let stopper_p90_s = seconds(stopper[0].p90 - at(0.0));
    assert!(
        (stopper_p90_s - 2.0 * steady_p90_s).abs() < 1.0,
        "{stopper_p90_s} s against {steady_p90_s} s"
    );
}

#[test]
fn after_a_long_stand_the_window_widens_by_the_stand_rate_not_by_the_stand() {
    // a==T (stands 30 min)··b········c········d, then drives on at the posted
    // speed. Its checkpoints came due during the stand; the stand is the
    // stall's, not a pace, so the window after it grows by the share of time
    // the truck has stood, not thirtyfold.
    let road = Road::new();
    let ctx = road.ctx();
    let ab = road.edge('a', 'b');
    let bc = road.edge('b', 'c');
    let mut stopper = road.tracker_to_d("stopper");
    stopper.on_fix(&ctx, &fix_on(&road.graph, ab, 0.0, at(0.0)));
    stopper.on_fix(&ctx, &fix_on(&road.graph, ab, 1000.0, at(60.0)));
    let mut ended = Vec::new();
    for k in 1..=30 {
        let t = 60.0 + 60.0 * f64::from(k);
        ended.extend(
            stopper
                .on_fix(&ctx, &fix_on(&road.graph, ab, 1000.0, at(t)))
                .stalls_s,
        );
    }
    assert!(ended.is_empty(), "still standing: {ended:?}");
    let out = stopper.on_fix(&ctx, &fix_on(&road.graph, ab, 1500.0, at(1890.0)));
    assert_eq!(
        out.stalls_s,
        [1830.0],
        "the stand ends when the truck moves on"
    );
    let driven: Vec<_> = drive(&road.graph, &[bc], 60.0 / 3.6, 10.0, 1920.0)
        .into_iter()
        .take(13)
        .map(|fix| stopper.on_fix(&ctx, &fix))
        .collect();
    let (_, after) = driven.last().expect("fixes").etas[0].clone();

    // The same place and time for a truck that never stood.
    let mut steady = road.tracker_to_d("steady");
    let mut last = None;
    for fix in drive(&road.graph, &[ab, bc], 60.0 / 3.6, 10.0, 2040.0 - 240.0) {
        if fix.time > at(2040.0) {
            break;
        }
        last = steady.on_fix(&ctx, &fix).etas.first().cloned();
    }
    let (_, through) = last.expect("an ETA");
    let width = |eta: &engine::StopEta| seconds(eta.p90 - eta.eta);
    assert!((seconds(after.eta - through.eta)).abs() < 30.0);
    assert!(
        width(&after) > width(&through),
        "{} s against {} s",
        width(&after),
        width(&through)
    );
    let to_go_s = seconds(after.eta - at(2040.0));
    assert!(
        width(&after) < 2.0 * to_go_s,
        "{} s for {to_go_s} s to go",
        width(&after)
    );
}

#[test]
fn a_tracker_resumed_after_a_restart_keeps_the_trucks_pace_and_its_stand() {
    // a==T····b········c········d : T drives at half the posted speed for seven
    // minutes, then stands for ten. The engine restarts; the new tracker of
    // the same order takes up the old one's memory (through JSON, as the
    // store keeps it).
    let road = Road::new();
    let ctx = road.ctx();
    let ab = road.edge('a', 'b');
    let mut before = road.tracker_to_d("resume");
    let mut t = 0.0;
    for fix in drive(&road.graph, &[ab], 30.0 / 3.6, 10.0, 0.0) {
        t = seconds(fix.time - at(0.0));
        before.on_fix(&ctx, &fix);
        if t >= 420.0 {
            break;
        }
    }
    let stand_m = 30.0 / 3.6 * t;
    for k in 1..=60 {
        t += 10.0;
        before.on_fix(&ctx, &fix_on(&road.graph, ab, stand_m, at(t)));
        assert!(k < 60 || before.stalled_s(at(t)) >= 590.0);
    }
    let saved = serde_json::to_string(&before.memory()).expect("saves");
    let memory = || serde_json::from_str(&saved).expect("parses");

    let mut resumed = road.tracker_to_d("resume");
    assert_eq!(resumed.resume(memory()), Resumed::Whole);
    let mut afresh = road.tracker_to_d("resume");
    // A fix from before the restart that arrives late is old news.
    let late = fix_on(&road.graph, ab, stand_m, at(t - 5.0));
    assert!(resumed.on_fix(&ctx, &late).etas.is_empty());

    let next = fix_on(&road.graph, ab, stand_m, at(t + 10.0));
    let (_, old) = before.on_fix(&ctx, &next).etas[0].clone();
    let (_, new) = resumed.on_fix(&ctx, &next).etas[0].clone();
    let (_, blank) = afresh.on_fix(&ctx, &next).etas[0].clone();
    assert_eq!(resumed.pace().ratio(), before.pace().ratio());
    assert_eq!(
        resumed.stalled_s(at(t + 10.0)),
        before.stalled_s(at(t + 10.0))
    );
    assert!(
        (seconds(new.eta - old.eta)).abs() < 1.0,
        "{new:?} vs {old:?}"
    );
    assert!(
        (seconds(new.p90 - old.p90)).abs() < 1.0,
        "{new:?} vs {old:?}"
    );
    // Without the memory: a truck at the metric's pace that just appeared,
    // not one that has crawled and then stood for ten minutes.
    assert_eq!(afresh.stalled_s(at(t + 10.0)), 0.0);
    assert!(
        seconds(blank.eta - at(t)) < 0.9 * seconds(old.eta - at(t)),
        "{blank:?} vs {old:?}"
    );
    assert!(seconds(blank.p90 - blank.eta) < 0.5 * seconds(old.p90 - old.eta));

    // Another order's memory is refused; a tracker whose next stop is now
    // another takes the truck's pace but not the stand at the old stop.
    let mut other = road.tracker_to_d("another");
    assert_eq!(other.resume(memory()), Resumed::Refused);
    let to_c = [TrackedStop {
        position: road.map.pos('c'),
        plan: NO_WINDOW,
    }];
    let mut replanned = road.tracker("resume", 0, &to_c);
    assert_eq!(replanned.resume(memory()), Resumed::TruckOnly);
    replanned.on_fix(&ctx, &next);
    assert_eq!(replanned.pace().ratio(), before.pace().ratio());
    assert_eq!(replanned.stalled_s(at(t + 10.0)), 0.0);
}

#[test]
fn loading_at_a_pickup_is_dwell_not_slow_driving() {
    // a=====b(P)========c========d(D): the truck drives to its pickup at b at
    // the road's speed, loads for fifteen minutes, and drives on.
    let road = Road::new();
    let ctx = road.ctx();
    let stops = [
        TrackedStop {
            position: road.map.pos('b'),
            plan: NO_WINDOW,
        },
        TrackedStop {
            position: road.map.pos('d'),
            plan: NO_WINDOW,
        },
    ];
    let mut tracker = road.tracker("load", 0, &stops);
    let (ab, bc) = (road.edge('a', 'b'), road.edge('b', 'c'));
    let mut t = 0.0;
    for fix in drive(&road.graph, &[ab], 60.0 / 3.6, 10.0, 0.0) {
        t = seconds(fix.time - at(0.0));
        tracker.on_fix(&ctx, &fix);
    }
    assert_eq!(tracker.next_stop_index(), Some(1), "at the pickup");
    for _ in 0..90 {
        t += 10.0;
        tracker.on_fix(&ctx, &fix_on(&road.graph, bc, 5.0, at(t)));
    }
    let mut last = None;
    for fix in drive(&road.graph, &[bc], 60.0 / 3.6, 10.0, t + 10.0)
        .into_iter()
        .take(12)
    {
        last = tracker.on_fix(&ctx, &fix).etas.first().cloned().or(last);
    }
    let ratio = tracker.pace().ratio().expect("driven");
    assert!(ratio < 1.15, "the truck drove at the road's speed: {ratio}");
    let (_, eta) = last.expect("an ETA");
    let metric_s = eta.distance_m / (60.0 / 3.6);
    assert!(
        eta.drive_s < 1.1 * metric_s,
        "{} s for {metric_s} s",
        eta.drive_s
    );
}

#[test]
fn the_fleets_own_dwell_replaces_the_default_once_it_has_shown_it() {
    // Half an hour to the pickup, half an hour on to the delivery.
    let config = EtaConfig::TRUCK;
    let legs = [HALF_HOUR_DRIVE[0]; 2];
    let stops = [NO_WINDOW; 2];
    let input = EtaInput {
        stops: &stops,
        ..drive_input(&legs, HosClocks::fresh(&config.hos))
    };
    let mut fleet = calibrator();
    let before = estimate_stops(&input, &config, &fleet);
    assert_eq!(before[1].dwell_s, config.dwell.default_s);
    assert!(before[1].reasons.contains(&EtaReason::Dwell));

    // The fleet loads in five minutes, a hundred times over.
    for _ in 0..100 {
        fleet.record_dwell(&config.dwell, 300.0);
    }
    let after = estimate_stops(&input, &config, &fleet);
    assert!(
        after[1].dwell_s > 300.0 && after[1].dwell_s < 400.0,
        "{}",
        after[1].dwell_s
    );
    assert!(seconds(before[1].eta - after[1].eta) > 2000.0);
    assert_eq!(
        after[0].eta, before[0].eta,
        "the pickup itself is not moved"
    );

    // A stop that says how long it takes keeps its own.
    let slow_dock = [
        StopPlan {
            dwell_s: Some(5400.0),
            ..NO_WINDOW
        },
        NO_WINDOW,
    ];
    let own = estimate_stops(
        &EtaInput {
            stops: &slow_dock,
            ..input
        },
        &config,
        &fleet,
    );
    assert_eq!(own[1].dwell_s, 5400.0);
}
