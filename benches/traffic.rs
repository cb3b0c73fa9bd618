//! Traffic update hot path on `porto.osm.pbf`: what the live model costs per
//! fleet passage, and what re-learning the hour-of-week profile costs, each
//! against a baseline in the same run:
//!
//! - `traffic/observe/live_only`: 20,000 passages into a model that keeps live
//!   samples only (`profile_relearn_every_s = 0`), the baseline;
//! - `traffic/observe/learning_profile`: the same into a model that also adds
//!   each passage to the profile's running sums (hour of week on the map's
//!   clock, the class cell, the edge's residual);
//! - `traffic/profile/relearn`: the profile from a week of history on those
//!   edges, against `traffic/profile/metric`: one whole metric from the model
//!   (what every re-customization already pays).

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, Throughput};
use engine::{SpeedObservation, SpeedProfile, TrafficConfig, TrafficModel, Tz};
use road_graph::{EdgeId, ProfileConfig, RoadGraph, import_pbf};

use crate::routing::Rng;

const PASSAGES: usize = 20_000;

struct Setup {
    graph: Arc<RoadGraph>,
    /// A week of passages on random edges at 70–100 % of free flow, in time
    /// order.
    passages: Vec<SpeedObservation>,
}

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).expect("valid time")
}

fn shared() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let pbf = crate::graph::porto_pbf();
        let (graph, _) =
            import_pbf(&pbf, &ProfileConfig::TRUCK, &mut |_| {}).expect("porto imports");
        let graph = Arc::new(graph);
        let mut rng = Rng(11);
        let week_s = 7.0 * 86_400.0;
        let passages = (0..PASSAGES)
            .map(|k| {
                let edge = EdgeId(rng.below(graph.n_edges()) as u32);
                let length = graph.edge_length_m(edge);
                let speed_mps = graph.edge_speed_kph(edge) / 3.6 * (0.7 + 0.3 * rng.unit());
                let exit = start()
                    + chrono::Duration::milliseconds(
                        (week_s * k as f64 / PASSAGES as f64 * 1000.0) as i64,
                    );
                SpeedObservation {
                    edge,
                    entered_at: exit
                        - chrono::Duration::milliseconds((length / speed_mps * 1000.0) as i64),
                    exited_at: exit,
                    distance_m: length,
                }
            })
            .collect();
        Setup { graph, passages }
    })
}

fn model(setup: &Setup, relearn_every_s: f64) -> TrafficModel {
    let time_zone: Tz = "Europe/Lisbon".parse().expect("zone");
    let mut config = TrafficConfig::fleet(time_zone);
    config.profile_relearn_every_s = relearn_every_s;
    TrafficModel::new(
        Arc::clone(&setup.graph),
        config,
        SpeedProfile::free_flow(time_zone),
    )
    .expect("model")
}

fn observe(c: &mut Criterion) {
    let setup = shared();
    let mut group = c.benchmark_group("traffic/observe");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(PASSAGES as u64));
    for (name, relearn_every_s) in [("live_only", 0.0), ("learning_profile", 3600.0)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || model(setup, relearn_every_s),
                |mut traffic| {
                    for obs in &setup.passages {
                        let _ = black_box(traffic.observe(obs));
                    }
                    traffic
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn relearn(c: &mut Criterion) {
    let setup = shared();
    let mut traffic = model(setup, 3600.0);
    for obs in &setup.passages {
        let _ = traffic.observe(obs);
    }
    let history = traffic.history().expect("learning").clone();
    let now = setup.passages.last().expect("passages").exited_at;
    eprintln!(
        "traffic: profile history of {} passages on {} edges",
        history.samples(),
        history.edges()
    );
    let mut group = c.benchmark_group("traffic/profile");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("relearn", |b| b.iter(|| black_box(history.profile(5.0))));
    group.bench_function("metric", |b| {
        b.iter(|| black_box(traffic.metric(now).expect("metric")))
    });
    group.finish();
}

criterion::criterion_group!(benches, observe, relearn);
