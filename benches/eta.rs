//! ETA hot path on `porto.osm.pbf`: how many ETA recomputations (one matched fix
//! of one truck through its tracker: locate on the route, pace, hours of service,
//! checkpoints, the timeline with its p10/p90, the publish decision) run per
//! second, in one run so the ratios compare like with like:
//!
//! - `eta/recompute/tracker`: 400 trucks driving their routes, one fix each per
//!   round (10 s apart in trip time), on a fixed metric;
//! - `eta/recompute/route_every_fix`: the naive baseline, a fresh route query
//!   and timeline on every fix;
//! - `eta/recompute/tracker_while_customizing` and
//!   `route_every_fix_while_customizing`: the same while another thread
//!   re-customizes the router from the traffic model and hands the trackers a
//!   new metric generation, back to back (the periodic re-customization at its
//!   worst: the trackers re-time their routes, and re-route where the change is
//!   material).
//!
//! The setup prints the live traffic model's memory per directed edge and how
//! long one whole metric takes to make; the customizing pair prints how many
//! customizations ran and how often a fix re-timed or re-routed.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput};
use engine::{
    CalibrationConfig, Calibrator, EtaConfig, EtaInput, HosClocks, HosReport, Leg, MatchedPoint,
    Metric, MetricVersion, OrderId, Router, Snap, SpeedObservation, SpeedProfile, StopPlan,
    TrackedStop, TrackerConfig, TrackerCounters, TrackingContext, TrafficConfig, TrafficModel,
    TurnCosts, Tz, VehicleFix, VehicleTracker, estimate_stops,
};
use road_graph::{EdgeId, NodeId, ProfileConfig, RoadGraph, import_pbf};

use crate::routing::Rng;

const TRUCKS: usize = 400;
/// Seconds between a truck's fixes.
const EVERY_S: f64 = 10.0;

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
        // A calibrator with a full history, as a fleet's after a while: the
        // learned parts are read on every recomputation.
        let mut calibrator = Calibrator::new(CalibrationConfig::standard()).expect("valid");
        let eta = EtaConfig::TRUCK;
        for k in 0..1000u32 {
            calibrator.record_stall(&eta.stall, 120.0 + f64::from(k % 97) * 60.0);
            calibrator.record_dwell(&eta.dwell, 300.0 + f64::from(k % 89) * 60.0);
        }
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

/// The trucks' trackers as they run: each advances one fix per round and, at
/// the end of its drive, starts over as a fresh truck on the same route.
struct Fleet {
    trackers: Vec<(VehicleTracker, usize)>,
}

impl Fleet {
    fn new(setup: &Setup) -> Fleet {
        Fleet {
            trackers: setup
                .trucks
                .iter()
                .map(|t| (t.tracker.clone(), 0))
                .collect(),
        }
    }

    /// One round: the next fix of every truck, on the metric version given.
    fn round(&mut self, setup: &Setup, version: &MetricVersion) -> usize {
        let ctx = TrackingContext {
            router: &setup.router,
            metric: version,
            calibrator: &setup.calibrator,
        };
        let mut etas = 0;
        for (truck, (tracker, i)) in setup.trucks.iter().zip(&mut self.trackers) {
            *i += 1;
            if *i >= truck.fixes.len() {
                *tracker = truck.tracker.clone();
                *i = 1;
            }
            etas += tracker.on_fix(&ctx, &truck.fixes[*i]).etas.len();
        }
        etas
    }

    fn counters(&self) -> TrackerCounters {
        let mut total = TrackerCounters::default();
        for (tracker, _) in &self.trackers {
            let c = tracker.counters();
            total.fixes += c.fixes;
            total.routes += c.routes;
            total.retimed += c.retimed;
            total.reroutes_metric += c.reroutes_metric;
        }
        total
    }
}

/// The naive way: a route query from the truck to its stop and the timeline on
/// every fix (no pace, no hours-of-service estimate, no publish decision).
fn route_every_fix(setup: &Setup, r: usize) -> usize {
    let config = EtaConfig::TRUCK;
    let plans = [StopPlan {
        window: None,
        early_allowed: true,
        dwell_s: None,
    }];
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
            stalled_s: 0.0,
            stall_share: 0.0,
        };
        etas += estimate_stops(&input, &config, &setup.calibrator).len();
    }
    etas
}

fn recompute(c: &mut Criterion) {
    let setup = shared();
    let mut group = c.benchmark_group("eta/recompute");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(TRUCKS as u64));

    let mut fleet = Fleet::new(setup);
    group.bench_function("tracker", |b| {
        b.iter(|| black_box(fleet.round(setup, &setup.version)))
    });
    let mut r = 0;
    group.bench_function("route_every_fix", |b| {
        b.iter(|| {
            r += 1;
            black_box(route_every_fix(setup, r))
        })
    });

    // The traffic loop on the other core: a new metric from the traffic model
    // (its live evidence ageing), a full customization and a new metric
    // generation for the trackers, back to back, for as long as the two
    // measurements run: far more often than the 15-30 s of service, the worst
    // case for the fix path.
    let current = RwLock::new(setup.version.clone());
    let stop = AtomicBool::new(false);
    let customizations = AtomicU64::new(0);
    let loop_started = Instant::now();
    let mut fleet = Fleet::new(setup);
    let before = fleet.counters();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut k: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                // Cycles through 20 minutes of decay, so the metric keeps changing.
                let t = 30.0 * (k % 40) as f64;
                let metric = setup.traffic.metric(at(t)).expect("metric");
                setup.router.customize(metric.clone()).expect("fits");
                let next = MetricVersion {
                    generation: 1 + k,
                    metric: Arc::new(metric),
                };
                *current.write().unwrap_or_else(|e| e.into_inner()) = next;
                customizations.fetch_add(1, Ordering::Relaxed);
            }
        });
        group.bench_function("tracker_while_customizing", |b| {
            b.iter(|| {
                let version = current.read().unwrap_or_else(|e| e.into_inner()).clone();
                black_box(fleet.round(setup, &version))
            })
        });
        group.bench_function("route_every_fix_while_customizing", |b| {
            b.iter(|| {
                r += 1;
                black_box(route_every_fix(setup, r))
            })
        });
        stop.store(true, Ordering::Relaxed);
    });
    let n = customizations.load(Ordering::Relaxed).max(1);
    let after = fleet.counters();
    let fixes = (after.fixes - before.fixes).max(1) as f64;
    eprintln!(
        "eta: {} re-customizations ran alongside, {:?} each; of the tracker's fixes \
         {:.2} % re-timed the route on a new metric, {:.2} % re-routed on it, \
         {:.2} % queried a route in all",
        n,
        loop_started.elapsed() / u32::try_from(n).unwrap_or(u32::MAX),
        100.0 * (after.retimed - before.retimed) as f64 / fixes,
        100.0 * (after.reroutes_metric - before.reroutes_metric) as f64 / fixes,
        100.0 * (after.routes - before.routes) as f64 / fixes,
    );
    setup
        .router
        .customize((*setup.version.metric).clone())
        .expect("fits");
    group.finish();
    black_box(&setup.graph);
}

criterion::criterion_group!(benches, recompute);
