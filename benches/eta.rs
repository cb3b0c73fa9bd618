//! ETA hot path on `porto.osm.pbf`: how many ETA recomputations (one matched fix
//! of one truck through its tracker: locate on the route, pace, hours of service,
//! checkpoints, the timeline with its p10/p90, the publish decision) run per
//! second, in one run so the ratios compare like with like:
//!
//! - `eta/recompute/tracker`: 400 trucks, one fix each per round, on a fixed
//!   metric;
//! - `eta/recompute/tracker_while_customizing`: the same while another thread
//!   re-customizes the router from the traffic model in a loop (the periodic
//!   re-customization, run back to back: the worst case for the fix path);
//! - `eta/recompute/route_every_fix`: the naive baseline, a fresh route query
//!   and timeline on every fix.
//!
//! The setup prints the live traffic model's memory per directed edge and how
//! long one whole metric takes to make.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, Throughput};
use engine::{
    CalibrationConfig, Calibrator, EtaConfig, EtaInput, HosClocks, HosReport, Leg, MatchedPoint,
    Metric, MetricVersion, OrderId, Router, Snap, SpeedObservation, SpeedProfile, StopPlan,
    TrackedStop, TrackerConfig, TrackingContext, TrafficConfig, TrafficModel, TurnCosts, Tz,
    VehicleFix, VehicleTracker, estimate_stops,
};
use road_graph::{EdgeId, NodeId, ProfileConfig, RoadGraph, import_pbf};

const TRUCKS: usize = 400;
/// Seconds between a truck's fixes.
const EVERY_S: f64 = 10.0;

/// SplitMix64, so that every run times the same trucks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Truck {
    tracker: VehicleTracker,
    stop: Snap,
    fixes: Vec<VehicleFix>,
}

struct Setup {
    graph: Arc<RoadGraph>,
    router: Router,
    traffic: TrafficModel,
    version: MetricVersion,
    calibrator: Calibrator,
    trucks: Vec<Truck>,
}

fn at(s: f64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).expect("valid")
        + chrono::Duration::milliseconds((s * 1000.0) as i64)
}

/// Fixes every `EVERY_S` along a route at free-flow speed.
fn drive(graph: &RoadGraph, edges: &[EdgeId], from_m: f64) -> Vec<VehicleFix> {
    let mut fixes = Vec::new();
    let mut t = 0.0;
    let mut next_t = 0.0;
    for (i, &edge) in edges.iter().enumerate() {
        let length = graph.edge_length_m(edge);
        let start = if i == 0 { from_m } else { 0.0 };
        let edge_s = (length - start).max(0.0) / (graph.edge_speed_kph(edge) / 3.6);
        while next_t < t + edge_s {
            let offset_m = start + (next_t - t) / edge_s * (length - start);
            let point = graph.point_along_edge(edge, offset_m);
            fixes.push(VehicleFix {
                time: at(next_t),
                position: point,
                matched: Some(MatchedPoint {
                    edge,
                    offset_m,
                    point,
                    distance_m: 0.0,
                    confidence: 1.0,
                }),
                hos: HosReport::default(),
            });
            next_t += EVERY_S;
        }
        t += edge_s;
    }
    fixes
}

fn shared() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let pbf = crate::graph::porto_pbf();
        let (graph, _) = import_pbf(&pbf, &ProfileConfig::TRUCK, &mut |_| {}).expect("porto imports");
        let graph = Arc::new(graph);
        let router = Router::new(Arc::clone(&graph), &TurnCosts::TRUCK, Metric::free_flow(&graph)).expect("router");
        let mut traffic =
            TrafficModel::new(Arc::clone(&graph), TrafficConfig::fleet(Tz::UTC), SpeedProfile::free_flow(Tz::UTC))
                .expect("model");
        let calibrator = Calibrator::new(CalibrationConfig::standard()).expect("valid");
        let mut rng = Rng(7);
        // Recent fleet passages on 20,000 edges, as a busy fleet would leave.
        for k in 0..20_000 {
            let edge = EdgeId(rng.below(graph.n_edges()) as u32);
            let length = graph.edge_length_m(edge);
            let speed_mps = graph.edge_speed_kph(edge) / 3.6 * 0.7;
            for i in 0..3 {
                let exit = at(-((k % 600) as f64) - f64::from(i));
                let _ = traffic.observe(&SpeedObservation {
                    edge,
                    entered_at: exit - chrono::Duration::milliseconds((length / speed_mps * 1000.0) as i64),
                    exited_at: exit,
                    distance_m: length,
                });
            }
        }
        let started = Instant::now();
        let metric = traffic.metric(at(0.0)).expect("metric");
        eprintln!(
            "eta: live traffic on {} edges, {:.1} bytes per directed edge; one whole metric in {:?}",
            traffic.live_edges(),
            traffic.heap_bytes() as f64 / graph.n_edges() as f64,
            started.elapsed()
        );
        router.customize(metric.clone()).expect("fits");
        let version = MetricVersion {
            generation: 1,
            metric: Arc::new(metric),
        };
        let ctx = TrackingContext {
            router: &router,
            metric: &version,
            calibrator: &calibrator,
        };
        let mut trucks = Vec::new();
        while trucks.len() < TRUCKS {
            let pick = |rng: &mut Rng| graph.node_pos(NodeId(rng.below(graph.n_nodes()) as u32));
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            let (Some(from), Some(to)) = (Snap::nearest(&graph, a, 50.0), Snap::nearest(&graph, b, 50.0)) else {
                continue;
            };
            let Some(route) = router.route(&from, &to).filter(|r| r.distance_m > 5000.0) else {
                continue;
            };
            let fixes = drive(&graph, &route.edges, route.from.offset_m);
            if fixes.len() < 40 {
                continue;
            }
            let stops = [TrackedStop {
                position: graph.point_along_edge(route.to.edge, route.to.offset_m),
                plan: StopPlan {
                    window: None,
                    early_allowed: true,
                    dwell_s: None,
                },
            }];
            let mut tracker = VehicleTracker::new(&router, OrderId(format!("o{}", trucks.len())), 0, &stops, TrackerConfig::TRUCK)
                .expect("tracker");
            // Routed and under way before the clock starts.
            tracker.on_fix(&ctx, &fixes[0]);
            trucks.push(Truck {
                tracker,
                stop: to,
                fixes,
            });
        }
        Setup {
            graph,
            router,
            traffic,
            version,
            calibrator,
            trucks,
        }
    })
}

/// One round: the next fix of every truck, `round` fixes into its drive.
fn round(setup: &Setup, trackers: &mut [VehicleTracker], round: usize) -> usize {
    let ctx = TrackingContext {
        router: &setup.router,
        metric: &setup.version,
        calibrator: &setup.calibrator,
    };
    let mut etas = 0;
    for (truck, tracker) in setup.trucks.iter().zip(trackers) {
        let fix = &truck.fixes[1 + round % (truck.fixes.len() - 1)];
        etas += tracker.on_fix(&ctx, fix).etas.len();
    }
    etas
}

fn recompute(c: &mut Criterion) {
    let setup = shared();
    let fresh = || {
        setup
            .trucks
            .iter()
            .map(|t| t.tracker.clone())
            .collect::<Vec<_>>()
    };
    let mut group = c.benchmark_group("eta/recompute");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(TRUCKS as u64));
    // Successive rounds walk forward along the routes; the trackers restart
    // from their first fix every batch.
    let mut r = 0;
    group.bench_function("tracker", |b| {
        b.iter_batched_ref(
            fresh,
            |trackers| {
                r = (r + 1) % 30;
                black_box(round(setup, trackers, r))
            },
            BatchSize::LargeInput,
        )
    });

    // The traffic loop on the other core: a new metric, a full customization,
    // back to back, for as long as the measurement runs.
    let stop = Arc::new(AtomicBool::new(false));
    let customizations = Arc::new(AtomicU64::new(0));
    let loop_started = Instant::now();
    std::thread::scope(|scope| {
        let (stop_flag, count) = (Arc::clone(&stop), Arc::clone(&customizations));
        scope.spawn(move || {
            let mut t = 0.0;
            while !stop_flag.load(Ordering::Relaxed) {
                t += 30.0;
                let metric = setup.traffic.metric(at(t)).expect("metric");
                setup.router.customize(metric).expect("fits");
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        group.bench_function("tracker_while_customizing", |b| {
            b.iter_batched_ref(
                fresh,
                |trackers| {
                    r = (r + 1) % 30;
                    black_box(round(setup, trackers, r))
                },
                BatchSize::LargeInput,
            )
        });
        stop.store(true, Ordering::Relaxed);
    });
    let n = customizations.load(Ordering::Relaxed).max(1);
    eprintln!(
        "eta: {} re-customizations ran alongside, {:?} each",
        n,
        loop_started.elapsed() / u32::try_from(n).unwrap_or(u32::MAX)
    );
    setup
        .router
        .customize((*setup.version.metric).clone())
        .expect("fits");

    // The naive way: route from the truck to its stop on every fix.
    let config = EtaConfig::TRUCK;
    let plans = [StopPlan {
        window: None,
        early_allowed: true,
        dwell_s: None,
    }];
    group.bench_function("route_every_fix", |b| {
        b.iter(|| {
            r = (r + 1) % 30;
            let mut etas = 0;
            for truck in &setup.trucks {
                let fix = &truck.fixes[1 + r % (truck.fixes.len() - 1)];
                let Some(m) = fix.matched else { continue };
                let Some(route) = setup
                    .router
                    .route(&Snap::on_edge(m.edge, m.offset_m), &truck.stop)
                else {
                    continue;
                };
                let legs = [Leg {
                    drive_s: route.duration_s(),
                    free_flow_s: route.duration_s(),
                    distance_m: route.distance_m,
                }];
                let input = EtaInput {
                    now: fix.time,
                    legs: &legs,
                    stops: &plans,
                    hos: HosClocks::fresh(&config.hos),
                    pace_factor: 1.0,
                    departs_at: None,
                    own: None,
                };
                etas += estimate_stops(&input, &config, &setup.calibrator).len();
            }
            black_box(etas)
        })
    });
    group.finish();
    black_box(&setup.graph);
}

criterion::criterion_group!(benches, recompute);
