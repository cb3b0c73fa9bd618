//! Routing hot paths on `porto.osm.pbf`, all in one run so that the ratios compare
//! like with like on a noisy machine:
//!
//! - `routing/query`: the hierarchy between snapped points (the time only, and the
//!   full route with its edge list) vs a plain Dijkstra on the same turn graph and
//!   metric (goal: ≥ 200× faster), and `fast_paths` (a classic contraction
//!   hierarchy) on the same turn graph with the same start and end values, as the
//!   peer.
//! - `routing/new_metric`: customizing a whole new metric (goal: ≤ 250 ms on two
//!   cores), a partial update of 300 edges, and `fast_paths` taking the same new
//!   weights (`prepare_with_order`, its fastest way, reusing its node order). Its
//!   preparation from scratch is timed once in the setup and printed: at about ten
//!   seconds it is too slow to repeat.
//!
//! Setup prints the hierarchy's size, and checks that the three planners agree on
//! the durations they are timed on.

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::Criterion;
use engine::{EdgePosition, INFINITY_MS, Metric, Router, Snap, TurnCosts};
use fast_paths::{FastGraph, InputGraph, PathCalculator};
use road_graph::{EdgeId, LatLon, NodeId, ProfileConfig, RoadGraph, import_pbf};

/// SplitMix64, so that every run times the same pairs.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Setup {
    graph: Arc<RoadGraph>,
    router: Router,
    pairs: Vec<(Snap, Snap)>,
    /// `fast_paths` prepared on the free-flow turn graph, and its node order;
    /// only for a measuring run (`--bench`): its preparation takes 10–14 s, which
    /// the suite's run of every bench in test mode should not pay.
    peer: Option<Peer>,
}

struct Peer {
    fast: FastGraph,
    fast_order: Vec<usize>,
}

/// Whether criterion measures (`cargo bench`) rather than checks that each bench
/// runs once (`cargo test --all-targets`, which passes no `--bench`).
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Built once for both groups: importing porto, the hierarchy and the first
/// `fast_paths` preparation take seconds.
fn shared() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(setup)
}

fn setup() -> Setup {
    let (graph, _) = import_pbf(
        &super::graph::porto_pbf(),
        &ProfileConfig::TRUCK,
        &mut |_| {},
    )
    .expect("porto imports");
    let graph = Arc::new(graph);
    let started = Instant::now();
    let router = Router::new(graph.clone(), &TurnCosts::TRUCK, Metric::free_flow(&graph))
        .expect("the metric fits the graph");
    let stats = router.stats();
    eprintln!(
        "routing: porto hierarchy built in {:.2} s: {} turn-graph nodes, {} turns, {} arcs, {} triangles, \
         elimination tree depth {}, topology {:.1} MiB, one customized metric {:.1} MiB",
        started.elapsed().as_secs_f64(),
        stats.nodes,
        stats.turns,
        stats.arcs,
        stats.triangles,
        stats.etree_depth,
        stats.topology_bytes as f64 / (1 << 20) as f64,
        stats.metric_bytes as f64 / (1 << 20) as f64,
    );
    // Points near random intersections, snapped as the CLI and the ETA do (both
    // directions of the nearest road).
    let mut rng = Rng(42);
    let snap = |rng: &mut Rng| loop {
        let node = graph.node_pos(NodeId(rng.below(graph.n_nodes()) as u32));
        let p = LatLon::new(
            node.lat + (rng.unit() - 0.5) * 4e-4,
            node.lon + (rng.unit() - 0.5) * 4e-4,
        );
        if let Some(s) = Snap::nearest(&graph, p, 200.0) {
            return s;
        }
    };
    let pairs = (0..200).map(|_| (snap(&mut rng), snap(&mut rng))).collect();
    let peer = measuring().then(|| {
        let started = Instant::now();
        let fast = fast_paths::prepare(&fast_paths_input(&router));
        eprintln!(
            "routing: fast_paths prepared the porto turn graph from scratch in {:.2} s \
             (measured once here: too slow to repeat in the bench)",
            started.elapsed().as_secs_f64()
        );
        let fast_order = fast_paths::get_node_ordering(&fast);
        Peer { fast, fast_order }
    });
    if peer.is_none() {
        eprintln!(
            "routing: test mode, the fast_paths peer is left out (run `cargo bench` to compare)"
        );
    }
    Setup {
        graph,
        router,
        pairs,
        peer,
    }
}

/// A start or end of a `fast_paths` query: a turn-graph node and its start value.
type Seed = (usize, usize);

/// Start and end values of a query in the turn graph, as the router computes them
/// (the rest of the start edge plus the turn; the part of the end edge).
fn seeds(graph: &RoadGraph, metric: &Metric, from: &Snap, to: &Snap) -> (Vec<Seed>, Vec<Seed>) {
    let partial = |p: &EdgePosition| {
        let ms = metric.edge_ms(p.edge);
        let fraction = (p.offset_m / graph.edge_length_m(p.edge)).clamp(0.0, 1.0);
        (f64::from(ms) * fraction).floor() as u32
    };
    let mut sources = Vec::new();
    for s in from.candidates() {
        let rest = metric.edge_ms(s.edge) - partial(s);
        for next in graph.out_edges(graph.edge_head(s.edge)) {
            if let Some(turn_ms) = TurnCosts::TRUCK.turn_ms(graph, s.edge, next) {
                sources.push((next.idx(), (rest + turn_ms) as usize));
            }
        }
    }
    let targets = to
        .candidates()
        .iter()
        .map(|t| (t.edge.idx(), partial(t) as usize))
        .collect();
    (sources, targets)
}

fn fast_paths_input(router: &Router) -> InputGraph {
    let mut input = InputGraph::new();
    for (from, to, ms) in router.turn_graph() {
        if from != to && ms != INFINITY_MS {
            input.add_edge(from.idx(), to.idx(), ms as usize);
        }
    }
    input.freeze();
    input
}

fn query(c: &mut Criterion) {
    let Setup {
        graph,
        router,
        pairs,
        peer,
    } = shared();
    router.customize(Metric::free_flow(graph)).expect("fits");
    let metric = router.metric();
    let mut calc = peer
        .as_ref()
        .map(|p| fast_paths::create_calculator(&p.fast));
    let seeded: Vec<_> = pairs
        .iter()
        .map(|(f, t)| seeds(graph, &metric, f, t))
        .collect();

    // The planners agree on what they are timed on.
    let mut agree = 0;
    for ((from, to), (sources, targets)) in pairs.iter().zip(&seeded).take(50) {
        let cch = router.route(from, to).map(|r| r.duration_ms);
        let dijkstra = router.dijkstra_route(from, to).map(|r| r.duration_ms);
        assert_eq!(
            cch, dijkstra,
            "hierarchy and Dijkstra disagree on {from:?} -> {to:?}"
        );
        let (Some(peer), Some(calc)) = (peer, calc.as_mut()) else {
            continue;
        };
        let peer_ms = fast_path_ms(&peer.fast, calc, sources, targets);
        if let (Some(cch), Some(peer)) = (cch, peer_ms) {
            // fast_paths does not know routes that stay on one edge.
            if router.route(from, to).is_some_and(|r| r.edges.len() > 1) {
                assert_eq!(
                    u64::from(cch),
                    peer as u64,
                    "fast_paths disagrees on {from:?} -> {to:?}"
                );
                agree += 1;
            }
        }
    }
    if peer.is_some() {
        eprintln!(
            "routing: hierarchy, Dijkstra and fast_paths agree on {agree} of 50 checked pairs"
        );
    } else {
        eprintln!("routing: hierarchy and Dijkstra agree on 50 checked pairs");
    }

    let mut group = c.benchmark_group("routing/query");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let mut i = 0;
    group.bench_function("cch_duration_snapped", |b| {
        b.iter(|| {
            i = (i + 1) % pairs.len();
            black_box(router.duration_ms(&pairs[i].0, &pairs[i].1))
        })
    });
    group.bench_function("cch_route_snapped", |b| {
        b.iter(|| {
            i = (i + 1) % pairs.len();
            black_box(router.route(&pairs[i].0, &pairs[i].1))
        })
    });
    if let (Some(peer), Some(calc)) = (peer, calc.as_mut()) {
        group.bench_function("fast_paths_snapped", |b| {
            b.iter(|| {
                i = (i + 1) % pairs.len();
                black_box(fast_path_ms(&peer.fast, calc, &seeded[i].0, &seeded[i].1))
            })
        });
    }
    group.bench_function("cch_one_to_ten_stops", |b| {
        b.iter(|| {
            i = (i + 1) % (pairs.len() - 10);
            let stops: Vec<Snap> = pairs[i..i + 10].iter().map(|p| p.1.clone()).collect();
            black_box(router.one_to_many(&pairs[i].0, &stops))
        })
    });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    group.bench_function("dijkstra_route_snapped", |b| {
        b.iter(|| {
            i = (i + 1) % pairs.len();
            black_box(router.dijkstra_route(&pairs[i].0, &pairs[i].1))
        })
    });
    group.finish();
}

fn fast_path_ms(
    fast: &FastGraph,
    calc: &mut PathCalculator,
    sources: &[(usize, usize)],
    targets: &[(usize, usize)],
) -> Option<usize> {
    if sources.is_empty() || targets.is_empty() {
        return None;
    }
    calc.calc_path_multiple_sources_and_targets(fast, sources.to_vec(), targets.to_vec())
        .map(|p| p.get_weight())
}

/// A traffic-like metric: every edge between 40 % and 110 % of free-flow speed.
fn traffic_metric(graph: &RoadGraph, free_flow: &Metric, seed: u64) -> Metric {
    let mut rng = Rng(seed);
    let ms = (0..graph.n_edges() as u32)
        .map(|e| {
            let factor = 1.0 / (0.4 + 0.7 * rng.unit());
            (f64::from(free_flow.edge_ms(EdgeId(e))) * factor) as u32
        })
        .collect();
    Metric::from_edge_ms(graph, ms).expect("one time per edge")
}

fn new_metric(c: &mut Criterion) {
    let Setup {
        graph,
        router,
        peer,
        ..
    } = shared();
    let free_flow = Metric::free_flow(graph);
    let metrics = [
        traffic_metric(graph, &free_flow, 1),
        traffic_metric(graph, &free_flow, 2),
    ];
    let mut rng = Rng(7);
    let updates: Vec<Vec<(EdgeId, u32)>> = (0..16)
        .map(|_| {
            (0..300)
                .map(|_| {
                    let e = EdgeId(rng.below(graph.n_edges()) as u32);
                    (
                        e,
                        (f64::from(free_flow.edge_ms(e)) * (1.0 + 3.0 * rng.unit())) as u32,
                    )
                })
                .collect()
        })
        .collect();

    // fast_paths on the same turn graph with the new weights, reusing the node
    // order of its first preparation (its fastest way to take new weights).
    router.customize(metrics[0].clone()).expect("fits");
    let input_traffic = fast_paths_input(router);

    let mut group = c.benchmark_group("routing/new_metric");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let mut k = 0;
    group.bench_function("cch_customize_full", |b| {
        b.iter(|| {
            k += 1;
            router.customize(metrics[k % 2].clone()).expect("fits")
        })
    });
    group.bench_function("cch_update_300_edges", |b| {
        b.iter(|| {
            k += 1;
            router
                .update_edges(&updates[k % updates.len()])
                .expect("edges exist")
        })
    });
    if let Some(peer) = peer {
        group.bench_function("fast_paths_prepare_with_order", |b| {
            b.iter(|| {
                fast_paths::prepare_with_order(&input_traffic, &peer.fast_order)
                    .expect("a permutation")
            })
        });
    }
    group.finish();
}

/// Customization time and hierarchy size on extracts of growing size, for the
/// scaling estimate in ARCHITECTURE.md (porto is in `routing/new_metric`).
fn customize_by_extract(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing/customize_by_extract");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for name in ["monaco", "baltimore", "portland-central", "columbus"] {
        let path = super::graph::porto_pbf().with_file_name(format!("{name}.osm.pbf"));
        let (graph, _) = import_pbf(&path, &ProfileConfig::TRUCK, &mut |_| {}).expect("imports");
        let graph = Arc::new(graph);
        let started = Instant::now();
        let router =
            Router::new(graph.clone(), &TurnCosts::TRUCK, Metric::free_flow(&graph)).expect("fits");
        let stats = router.stats();
        eprintln!(
            "routing: {name}: hierarchy in {:.2} s, {} turn-graph nodes, {} arcs ({:.1} per node), \
             {} triangles ({:.0} per node), etree depth {}, {:.0} + {:.0} bytes per node",
            started.elapsed().as_secs_f64(),
            stats.nodes,
            stats.arcs,
            stats.arcs as f64 / stats.nodes as f64,
            stats.triangles,
            stats.triangles as f64 / stats.nodes as f64,
            stats.etree_depth,
            stats.topology_bytes as f64 / stats.nodes as f64,
            stats.metric_bytes as f64 / stats.nodes as f64,
        );
        let free_flow = Metric::free_flow(&graph);
        let metrics = [
            traffic_metric(&graph, &free_flow, 1),
            traffic_metric(&graph, &free_flow, 2),
        ];
        let mut k = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                k += 1;
                router.customize(metrics[k % 2].clone()).expect("fits")
            })
        });
    }
    group.finish();
}

criterion::criterion_group!(benches, query, new_metric, customize_by_extract);
