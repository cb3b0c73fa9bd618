//! The project's one criterion bench binary: a module per hot path. Run all with
//! `cargo bench --bench hot_paths`, or one group with a filter
//! (`cargo bench --bench hot_paths -- graph/`). Figures are reported as ratios to a
//! baseline measured in the same run, since the machines are small and noisy.

mod alloc_counter;
mod analytics;
mod eta;
mod graph;
mod ingest;
mod matching;
mod notify;
mod pipeline;
mod portal;
mod routing;
mod store;
mod tiles;
mod traffic;

#[global_allocator]
static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;

criterion::criterion_main!(
    graph::benches,
    tiles::benches,
    ingest::benches,
    matching::benches,
    routing::benches,
    traffic::benches,
    eta::benches,
    portal::benches,
    notify::benches,
    pipeline::benches,
    store::benches,
    analytics::benches
);
