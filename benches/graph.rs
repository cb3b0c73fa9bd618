//! Road-graph hot paths on `porto.osm.pbf`: PBF import vs snapshot load (the
//! snapshot must load at least 10× faster), k-nearest-edge queries, and how
//! soon a process can route (`graph/ready_porto`): a snapshot loaded with and
//! without the router's preparation (section `ROUTER`), then the router from
//! that preparation vs built from scratch.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use engine::{Metric, Preparation, ROUTER_SECTION, Router, TurnCosts};
use road_graph::{
    LatLon, ProfileConfig, Section, import_pbf, load_snapshot, load_snapshot_claiming,
    save_snapshot,
};

pub(crate) fn porto_pbf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/osm/porto.osm.pbf")
}

fn import_vs_snapshot(c: &mut Criterion) {
    let pbf = porto_pbf();
    let (graph, _) = import_pbf(&pbf, &ProfileConfig::TRUCK, &mut |_| {}).expect("porto imports");
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot = dir.path().join("porto.graph");
    save_snapshot(&graph, &[], &snapshot).expect("snapshot saves");

    let mut group = c.benchmark_group("graph/open_porto");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("import_pbf", |b| {
        b.iter(|| import_pbf(&pbf, &ProfileConfig::TRUCK, &mut |_| {}).expect("imports"))
    });
    group.bench_function("load_snapshot", |b| {
        b.iter(|| load_snapshot(&snapshot).expect("loads"))
    });
    group.finish();
}

/// From a file to a router that answers: the snapshot without and with the
/// router's preparation, and the router from it or built.
fn ready_to_route(c: &mut Criterion) {
    let (graph, _) =
        import_pbf(&porto_pbf(), &ProfileConfig::TRUCK, &mut |_| {}).expect("porto imports");
    let graph = Arc::new(graph);
    let router = Router::new(
        Arc::clone(&graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(&graph),
    )
    .expect("the metric fits");
    let prepared = Section {
        tag: ROUTER_SECTION,
        bytes: router.prepared(),
    };
    drop(router);
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = dir.path().join("porto-bare.graph");
    let full = dir.path().join("porto.graph");
    save_snapshot(&graph, &[], &bare).expect("snapshot saves");
    save_snapshot(&graph, &[prepared], &full).expect("snapshot saves");
    eprintln!(
        "graph/ready_porto: snapshot {:.1} MiB without the router's preparation, {:.1} MiB with it",
        std::fs::metadata(&bare).expect("written").len() as f64 / (1 << 20) as f64,
        std::fs::metadata(&full).expect("written").len() as f64 / (1 << 20) as f64,
    );
    // As `route` and `serve` do: the file mapped, the preparation's arrays
    // borrowed from the map.
    let ready = |path: &PathBuf, from_section: bool| {
        let (snapshot, prepared) =
            load_snapshot_claiming(path, ROUTER_SECTION, Preparation::read).expect("loads");
        let graph = Arc::new(snapshot.graph);
        let metric = Metric::free_flow(&graph);
        if from_section {
            let prepared = prepared.expect("stored").expect("reads");
            Router::from_preparation(graph, &TurnCosts::TRUCK, metric, prepared).expect("loads")
        } else {
            Router::new(graph, &TurnCosts::TRUCK, metric).expect("fits")
        }
    };

    let mut group = c.benchmark_group("graph/ready_porto");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("load_without_router_section", |b| {
        b.iter(|| load_snapshot(&bare).expect("loads"))
    });
    group.bench_function("load_with_router_section", |b| {
        b.iter(|| load_snapshot(&full).expect("loads"))
    });
    // As `route` loads it (what a query relies on checked), then as `serve`
    // does (what customization relies on checked too, at start).
    group.bench_function("router_from_section", |b| b.iter(|| ready(&full, true)));
    group.bench_function("router_from_section_for_reweighting", |b| {
        b.iter(|| {
            let router = ready(&full, true);
            router.check_customizable().expect("sound");
            router
        })
    });
    group.bench_function("router_built", |b| b.iter(|| ready(&bare, false)));
    group.finish();
}

/// Bytes per directed edge of a loaded porto snapshot, counted by the allocator:
/// every array, the geometry and the spatial index (goal: at most 80).
fn memory(_c: &mut Criterion) {
    let (graph, _) =
        import_pbf(&porto_pbf(), &ProfileConfig::TRUCK, &mut |_| {}).expect("porto imports");
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot = dir.path().join("porto.graph");
    save_snapshot(&graph, &[], &snapshot).expect("snapshot saves");
    drop(graph);
    let before = crate::alloc_counter::live_bytes();
    let loaded = load_snapshot(&snapshot).expect("loads").graph;
    let bytes = crate::alloc_counter::live_bytes().saturating_sub(before);
    let arrays = loaded.heap_bytes();
    eprintln!(
        "graph/memory porto: {} directed edges, {} bytes in all = {:.1} bytes per directed edge \
         ({:.1} arrays and geometry, {:.1} spatial index of {} entries)",
        loaded.n_edges(),
        bytes,
        bytes as f64 / loaded.n_edges() as f64,
        arrays as f64 / loaded.n_edges() as f64,
        bytes.saturating_sub(arrays) as f64 / loaded.n_edges() as f64,
        loaded.index_len(),
    );
    black_box(loaded);
}

fn nearest_edges(c: &mut Criterion) {
    let (graph, _) =
        import_pbf(&porto_pbf(), &ProfileConfig::TRUCK, &mut |_| {}).expect("porto imports");
    // Query points: every 7th node, shifted by ~20 m, so they sit near roads as GPS
    // fixes do.
    let points: Vec<LatLon> = (0..graph.n_nodes())
        .step_by(7)
        .map(|n| {
            let p = graph.node_pos(road_graph::NodeId(n as u32));
            LatLon::new(p.lat + 0.00013, p.lon + 0.00011)
        })
        .collect();
    let mut group = c.benchmark_group("graph/nearest_edges");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(points.len() as u64));
    for radius_m in [30.0, 100.0] {
        group.bench_function(format!("k8_r{radius_m}"), |b| {
            let mut scratch = Vec::new();
            let mut out = Vec::new();
            b.iter(|| {
                for &p in &points {
                    graph.nearest_edges_into(p, radius_m, 8, &mut scratch, &mut out);
                    black_box(out.len());
                }
            })
        });
    }
    group.finish();
}

criterion::criterion_group!(
    benches,
    memory,
    import_vs_snapshot,
    nearest_edges,
    ready_to_route
);
