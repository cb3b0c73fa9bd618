//! The window's coverage learned by horizon: a fleet whose short windows held
//! every arrival with room to spare gets narrower short windows, a horizon
//! whose windows missed gets wider ones (each horizon its own scale), the
//! window follows a fleet whose arrivals turn late, and a truck's arrival
//! scores every window it was given against the window before the scale.

use crate::eta_support;

use chrono::Duration;
use engine::{
    CalibrationConfig, Calibrator, EtaConfig, EtaInput, Horizon, HosClocks, Leg, OrderId, StopEta,
    StopPlan, TrackedStop, TrackerConfig, TrackingContext, VehicleTracker, WindowOutcome,
    estimate_stops,
};
use eta_support::{at, calibrator, drive, route_between, router, straight_road, version};

/// A fleet calibrator that scales its windows by what it learned of their
/// coverage (`learn_window`, off in the standard settings).
fn scaling_calibrator() -> Calibrator {
    Calibrator::new(CalibrationConfig {
        learn_window: true,
        ..CalibrationConfig::standard()
    })
    .expect("valid")
}

const NO_WINDOW: StopPlan = StopPlan {
    window: None,
    early_allowed: true,
    dwell_s: None,
};

/// A drive of `drive_s` seconds at the metric's pace (`distance_m` for
/// show), to one stop with no window.
fn leg(drive_s: f64) -> [Leg; 1] {
    [Leg {
        drive_s,
        free_flow_s: drive_s,
        distance_m: drive_s * 20.0,
    }]
}

/// The ETA of a fresh, moving truck at `at(0)` driving `legs`.
fn eta(legs: &[Leg], fleet: &Calibrator) -> StopEta {
    let config = EtaConfig::TRUCK;
    let input = EtaInput {
        now: at(0.0),
        legs,
        stops: &[NO_WINDOW],
        hos: HosClocks::fresh(&config.hos),
        pace_factor: 1.0,
        departs_at: None,
        own: None,
        stalled_s: 0.0,
        stall_share: 0.0,
    };
    estimate_stops(&input, &config, fleet)
        .into_iter()
        .next()
        .expect("one stop")
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// `(eta − p10, p90 − eta)`, seconds.
fn half_widths(e: &StopEta) -> (f64, f64) {
    (seconds(e.eta - e.p10), seconds(e.p90 - e.eta))
}

/// `trips` trips (numbered from `first_trip`) each closing 30 windows of a
/// prediction `uncertain_s` ahead, their scores spread evenly over `scores`.
fn arrivals(
    first_trip: u64,
    trips: u64,
    uncertain_s: f64,
    scores: (f64, f64),
) -> Vec<WindowOutcome> {
    let mut out = Vec::new();
    for trip in first_trip..first_trip + trips {
        for i in 0..30 {
            let share = f64::from(i) / 29.0;
            out.push(WindowOutcome {
                predicted: Horizon::drive(uncertain_s).on_trip(trip),
                score: scores.0 + (scores.1 - scores.0) * share,
            });
        }
    }
    out
}

#[test]
fn short_windows_that_held_every_arrival_narrow_and_long_ones_that_missed_widen() {
    let mut fleet = scaling_calibrator();
    let short = leg(1200.0);
    let long = leg(6000.0);
    let (short_lower, short_upper) = half_widths(&eta(&short, &fleet));
    let (_, long_upper) = half_widths(&eta(&long, &fleet));
    assert_eq!(
        eta(&short, &fleet).unscaled_s,
        (short_lower, short_upper),
        "before any arrival the window is the unscaled one"
    );

    // Twenty trips' arrivals at 20 minutes fell well inside their windows
    // (within 30 % of each half-width); twenty at 100 minutes fell up to twice
    // as far from the ETA as the window reached.
    fleet.record_windows(arrivals(0, 20, 1200.0, (-0.3, 0.3)));
    fleet.record_windows(arrivals(100, 20, 6000.0, (-2.0, 2.0)));

    let short_eta = eta(&short, &fleet);
    let (lower, upper) = half_widths(&short_eta);
    assert!(
        upper < 0.5 * short_upper && lower < 0.5 * short_lower,
        "narrower: {lower} {upper} against {short_lower} {short_upper}"
    );
    assert_eq!(
        short_eta.unscaled_s,
        (short_lower, short_upper),
        "the unscaled window is what it was"
    );
    let (_, upper) = half_widths(&eta(&long, &fleet));
    assert!(
        upper > 1.3 * long_upper,
        "wider at 100 minutes: {upper} against {long_upper}"
    );
    // The 90th percentile of uniform scores in -2..2 is 1.6; the shorter
    // bucket and the prior pull it towards 1 by a few trips' weight.
    let (lower_scale, upper_scale) = fleet.window_scales(6000.0);
    assert!(
        lower_scale > 1.2 && upper_scale > 1.2 && upper_scale < 1.6,
        "{lower_scale} {upper_scale}"
    );
}

#[test]
fn after_the_fleet_turns_late_the_window_covers_the_late_arrivals_again() {
    let mut fleet = scaling_calibrator();
    let short = leg(1200.0);
    // A steady fleet: every arrival within 30 % of the window's reach.
    fleet.record_windows(arrivals(0, 40, 1200.0, (-0.3, 0.3)));
    let (_, steady_scale) = fleet.window_scales(1200.0);
    assert!(steady_scale < 0.5, "{steady_scale}");

    // Then the trucks run late: arrivals one to three upper half-widths
    // after the ETA. Ten trips in, the window has already grown past the
    // unscaled one; forty in, the steady trips have left the bucket and nine
    // in ten late arrivals fall inside.
    fleet.record_windows(arrivals(1000, 10, 1200.0, (1.0, 3.0)));
    let (_, turning_scale) = fleet.window_scales(1200.0);
    assert!(turning_scale > 1.0, "{turning_scale}");
    fleet.record_windows(arrivals(1010, 30, 1200.0, (1.0, 3.0)));
    let (_, late_scale) = fleet.window_scales(1200.0);
    let late_scores: Vec<f64> = arrivals(2000, 1, 1200.0, (1.0, 3.0))
        .iter()
        .map(|o| o.score)
        .collect();
    let held = late_scores.iter().filter(|&&s| s <= late_scale).count();
    assert!(
        (24..=29).contains(&held),
        "{held} of 30 late arrivals inside (scale {late_scale})"
    );

    // In seconds: an arrival two unscaled half-widths late is inside.
    let e = eta(&short, &fleet);
    let late_arrival = e.eta + Duration::milliseconds((2000.0 * e.unscaled_s.1) as i64);
    assert!(late_arrival <= e.p90, "{e:?}");
}

#[test]
fn a_trucks_arrival_scores_every_window_it_was_given_and_teaches_the_fleet() {
    let (map, graph) = straight_road();
    let router = router(&graph);
    let metric = version(0, router.metric());
    let mut fleet = calibrator();
    let stops = [TrackedStop {
        position: map.pos('d'),
        plan: NO_WINDOW,
    }];
    let mut tracker = VehicleTracker::new(
        &router,
        OrderId("w1".into()),
        0,
        &stops,
        TrackerConfig::TRUCK,
    )
    .expect("tracker");
    let route = route_between(&router, &map, 'a', 'd');
    // On schedule, at the road's 60 km/h: six minutes.
    let fixes = drive(&graph, &route.edges, 60.0 / 3.6, 5.0, 0.0);
    let mut windows = Vec::new();
    for fix in &fixes {
        let ctx = TrackingContext {
            router: &router,
            metric: &metric,
            calibrator: &fleet,
        };
        let out = tracker.on_fix(&ctx, fix);
        windows.extend(out.windows.iter().copied());
        out.teach(&mut fleet, &EtaConfig::TRUCK);
    }
    assert!(tracker.done());
    assert_eq!(
        windows.len(),
        6,
        "the ETA sampled every minute, each window scored at the arrival"
    );
    for w in &windows {
        assert!(
            w.score.abs() <= 1.0,
            "a truck on schedule arrives inside every unscaled window: {w:?}"
        );
    }
    let taught: usize = fleet.summary().iter().map(|b| b.window_trips).sum();
    assert!(taught >= 1, "the fleet learned from the arrival");
    assert_eq!(
        fleet.window_scales(300.0),
        (1.0, 1.0),
        "the standard settings learn the scales but do not apply them"
    );
}
