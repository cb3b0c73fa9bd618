//! Map-matching throughput: fixes per second per core through the online matcher,
//! on porto with simulated truck traces at 1 s and 60 s sampling and on real
//! Kubicka tracks, each next to a baseline measured in the same run (the
//! candidate lookup alone for the same fixes, which every matcher must do), so the
//! ratio survives a noisy machine. Also prints p50/p99 latency per fix.
//!
//! Simulated trucks drive random routes that prefer going straight, at the edges'
//! free-flow speeds (capped at 25 m/s), with 5 m Gaussian GPS noise and a parked
//! minute now and then; everything is seeded, so runs compare.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::DateTime;
use criterion::{Criterion, Throughput};
use engine::{Fix, MatchEvents, MatchState, Matcher, MatcherConfig, parse_trace};
use road_graph::{EdgeId, LocalPlane, NodeId, ProfileConfig, RoadGraph, import_pbf};

fn porto() -> &'static RoadGraph {
    static PORTO: OnceLock<RoadGraph> = OnceLock::new();
    PORTO.get_or_init(|| {
        import_pbf(
            &super::graph::porto_pbf(),
            &ProfileConfig::TRUCK,
            &mut |_| {},
        )
        .expect("porto imports")
        .0
    })
}

/// Porto as every command imported it before issue 24: the largest strongly
/// connected component alone (the same fixes matched on both, in one run, say
/// what keeping every component costs).
fn porto_largest() -> &'static RoadGraph {
    static PORTO: OnceLock<RoadGraph> = OnceLock::new();
    PORTO.get_or_init(|| {
        let profile = ProfileConfig {
            components: road_graph::Components::Largest,
            ..ProfileConfig::TRUCK
        };
        import_pbf(&super::graph::porto_pbf(), &profile, &mut |_| {})
            .expect("porto imports")
            .0
    })
}

/// xorshift: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn gauss(&mut self, sigma: f64) -> f64 {
        let u1 = self.unit().max(1e-12);
        sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

/// The direction an edge leaves its tail, degrees.
fn heading(graph: &RoadGraph, edge: EdgeId, at_end: bool) -> f64 {
    let p = graph.edge_points(edge);
    let (a, b) = if at_end {
        (p[p.len() - 2], p[p.len() - 1])
    } else {
        (p[0], p[1])
    };
    road_graph::bearing_deg(a, b)
}

/// One simulated truck: `duration_s` of driving sampled every `every_s` seconds.
fn simulate(graph: &RoadGraph, seed: u64, duration_s: f64, every_s: f64) -> Vec<Fix> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let start = NodeId((rng.next() % graph.n_nodes() as u64) as u32);
    let mut edge = match graph.out_edges(start).next() {
        Some(e) => e,
        None => return Vec::new(),
    };
    let mut offset_m = 0.0;
    let mut fixes = Vec::new();
    let mut t = 0.0;
    let mut parked_until = 0.0;
    while t < duration_s {
        if t >= parked_until && rng.unit() < 0.002 * every_s {
            parked_until = t + 60.0;
        }
        if t >= parked_until {
            let speed_mps = (graph.edge_speed_kph(edge) / 3.6).min(25.0);
            offset_m += speed_mps * every_s;
        }
        while offset_m > graph.edge_length_m(edge) {
            offset_m -= graph.edge_length_m(edge);
            let out_dir = heading(graph, edge, true);
            let reverse = graph.reverse_edge(edge);
            let mut next: Vec<(f64, EdgeId)> = graph
                .out_edges(graph.edge_head(edge))
                .filter(|&e| Some(e) != reverse)
                .map(|e| {
                    let turn = (heading(graph, e, false) - out_dir + 540.0) % 360.0 - 180.0;
                    (turn.abs(), e)
                })
                .collect();
            next.sort_by(|a, b| a.0.total_cmp(&b.0));
            edge = if next.is_empty() {
                reverse.unwrap_or(edge)
            } else if rng.unit() < 0.6 {
                next[0].1
            } else {
                next[(rng.next() % next.len() as u64) as usize].1
            };
        }
        let p = graph.point_along_edge(edge, offset_m);
        let noisy = LocalPlane::new(p).to_latlon(rng.gauss(5.0), rng.gauss(5.0));
        let time = DateTime::from_timestamp_millis(1_700_000_000_000 + (t * 1000.0) as i64)
            .expect("time in range");
        fixes.push(Fix {
            time,
            pos: noisy,
            accuracy_m: None,
        });
        t += every_s;
    }
    fixes
}

/// A fleet: `vehicles` trucks for `duration_s` each.
fn fleet(graph: &RoadGraph, vehicles: u64, duration_s: f64, every_s: f64) -> Vec<Vec<Fix>> {
    (0..vehicles)
        .map(|v| simulate(graph, v + 1, duration_s, every_s))
        .collect()
}

fn match_fleet(matcher: &mut Matcher<'_>, fleet: &[Vec<Fix>]) -> usize {
    let mut events = MatchEvents::default();
    let mut finals = 0;
    for fixes in fleet {
        let mut state = MatchState::new();
        for f in fixes {
            matcher.push(&mut state, f, &mut events);
            finals += events.finalized.len();
            events.clear();
        }
        matcher.finish(&mut state, &mut events);
        finals += events.finalized.len();
        events.clear();
    }
    finals
}

/// The baseline: the candidate lookup alone for every fix.
fn lookup_fleet(graph: &RoadGraph, fleet: &[Vec<Fix>]) -> usize {
    let config = MatcherConfig::TRUCK;
    let (mut scratch, mut out) = (Vec::new(), Vec::new());
    let mut found = 0;
    for fixes in fleet {
        for f in fixes {
            graph.nearest_edges_into(
                f.pos,
                config.search_radius_m,
                config.max_roads,
                &mut scratch,
                &mut out,
            );
            found += out.len();
        }
    }
    found
}

/// p50 and p99 of the time one `push` takes, microseconds, and the share of
/// fixes that did not move (matched without an HMM step).
fn latency_us(graph: &RoadGraph, fleet: &[Vec<Fix>]) -> (f64, f64, f64) {
    let mut matcher = Matcher::new(graph, MatcherConfig::TRUCK).expect("valid config");
    let mut events = MatchEvents::default();
    let mut times = Vec::new();
    let (mut stationary, mut total) = (0, 0);
    for fixes in fleet {
        let mut state = MatchState::new();
        for f in fixes {
            let started = Instant::now();
            matcher.push(&mut state, f, &mut events);
            times.push(started.elapsed().as_secs_f64() * 1e6);
            events.clear();
        }
        stationary += state.counters().stationary;
        total += state.counters().fixes;
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    (at(0.5), at(0.99), stationary as f64 / total.max(1) as f64)
}

/// The matcher's settings before issue 24's cross-validated choice (sigma
/// 5 m, beta 8 m, every fix independent), for benches that show what the
/// choice costs.
pub(crate) fn matcher_before_cv() -> MatcherConfig {
    MatcherConfig {
        sigma_m: 5.0,
        beta_m: 8.0,
        noise_correlation_s: 0.0,
        ..MatcherConfig::TRUCK
    }
}

/// The matcher's variants on one fleet, beside the candidate lookup; with
/// `largest`, also the same fixes on the largest component alone.
fn bench_fleet(
    c: &mut Criterion,
    name: &str,
    graph: &RoadGraph,
    largest: Option<&RoadGraph>,
    fleet: &[Vec<Fix>],
) {
    let n_fixes: usize = fleet.iter().map(Vec::len).sum();
    let (p50, p99, still) = latency_us(graph, fleet);
    eprintln!(
        "matching/{name}: {n_fixes} fixes ({:.0} % not moved); latency per fix p50 {p50:.1} µs, p99 {p99:.1} µs",
        still * 100.0
    );
    let mut group = c.benchmark_group(format!("matching/{name}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(n_fixes as u64));
    group.bench_function("candidates_only", |b| {
        b.iter(|| black_box(lookup_fleet(graph, fleet)))
    });
    let mut matcher = Matcher::new(graph, MatcherConfig::TRUCK).expect("valid config");
    group.bench_function("online_matcher", |b| {
        b.iter(|| black_box(match_fleet(&mut matcher, fleet)))
    });
    // Every fix a full HMM step (no "not moved" shortcut): the worst case.
    let every_step = MatcherConfig {
        stationary_m: 0.0,
        ..MatcherConfig::TRUCK
    };
    let mut matcher = Matcher::new(graph, every_step).expect("valid config");
    group.bench_function("online_matcher_every_fix_a_step", |b| {
        b.iter(|| black_box(match_fleet(&mut matcher, fleet)))
    });
    // The settings before the cross-validated choice: what the choice costs.
    let mut matcher = Matcher::new(graph, matcher_before_cv()).expect("valid config");
    group.bench_function("online_matcher_before_cv", |b| {
        b.iter(|| black_box(match_fleet(&mut matcher, fleet)))
    });
    // The GPS noise and the transition scale learned per vehicle (both off by
    // default): what learning costs.
    let learning = MatcherConfig {
        learn_sigma: true,
        learn_beta: true,
        ..MatcherConfig::TRUCK
    };
    let mut matcher = Matcher::new(graph, learning).expect("valid config");
    group.bench_function("online_matcher_learning", |b| {
        b.iter(|| black_box(match_fleet(&mut matcher, fleet)))
    });
    if let Some(largest) = largest {
        let mut matcher = Matcher::new(largest, MatcherConfig::TRUCK).expect("valid config");
        group.bench_function("online_matcher_largest_component", |b| {
            b.iter(|| black_box(match_fleet(&mut matcher, fleet)))
        });
    }
    group.finish();
}

fn porto_1s(c: &mut Criterion) {
    let graph = porto();
    // 20 trucks, 20 minutes each at 1 Hz: 24 000 fixes.
    let fleet = fleet(graph, 20, 1200.0, 1.0);
    bench_fleet(c, "porto_1s", graph, Some(porto_largest()), &fleet);
}

fn porto_60s(c: &mut Criterion) {
    let graph = porto();
    // 200 trucks, 6 hours each, one fix a minute: 72 000 fixes.
    let fleet = fleet(graph, 200, 6.0 * 3600.0, 60.0);
    bench_fleet(c, "porto_60s", graph, Some(porto_largest()), &fleet);
}

fn kubicka_1s(c: &mut Criterion) {
    // Two long real tracks (51 km and 75 km at 1 Hz) on their own networks.
    for id in ["00000000", "00000066"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/traces/kubicka")
            .join(id);
        let (graph, _) = import_pbf(
            &dir.join(format!("{id}.osm.pbf")),
            &ProfileConfig::TRUCK,
            &mut |_| {},
        )
        .expect("track network imports");
        let text = std::fs::read_to_string(dir.join(format!("{id}.track.csv")))
            .expect("track is readable");
        let fixes = parse_trace(&text).expect("track parses").fixes;
        bench_fleet(c, &format!("kubicka_{id}_1s"), &graph, None, &[fixes]);
    }
}

/// Trace parsing (issue 24: the old GPX reader was quadratic, 90 s for 80 k
/// points): an 80,000-point GPX with times, against the same points as CSV in
/// the same run. Goal: the GPX well under a second.
fn parse_80k(c: &mut Criterion) {
    const N: usize = 80_000;
    let mut gpx = String::from("<?xml version=\"1.0\"?>\n<gpx version=\"1.1\"><trk><trkseg>\n");
    let mut csv = String::from("lat,lon,time\n");
    let start = DateTime::from_timestamp(1_700_000_000, 0).expect("valid time");
    for i in 0..N {
        let lat = 41.1 + i as f64 * 1e-5;
        let lon = -8.6 + (i % 100) as f64 * 1e-5;
        let t = start + chrono::TimeDelta::seconds(i as i64);
        let time = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        gpx.push_str(&format!(
            "<trkpt lat=\"{lat:.6}\" lon=\"{lon:.6}\"><ele>12.5</ele><time>{time}</time></trkpt>\n"
        ));
        csv.push_str(&format!("{lat:.6},{lon:.6},{time}\n"));
    }
    gpx.push_str("</trkseg></trk></gpx>\n");
    let mut group = c.benchmark_group("matching/parse_80k");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(N as u64));
    group.bench_function("gpx", |b| {
        b.iter(|| {
            let trace = parse_trace(black_box(&gpx)).expect("parses");
            assert_eq!(trace.fixes.len(), N);
        })
    });
    group.bench_function("csv_baseline", |b| {
        b.iter(|| {
            let trace = parse_trace(black_box(&csv)).expect("parses");
            assert_eq!(trace.fixes.len(), N);
        })
    });
    group.finish();
}

criterion::criterion_group!(benches, porto_1s, porto_60s, kubicka_1s, parse_80k);
