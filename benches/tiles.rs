//! Vector-tile cutting on `porto.osm.pbf` (`tiles/cut_porto`): one tile cut
//! from the basemap and the graph, as the tile route does on a cache miss, at
//! city (12), street (14) and building (16) zoom, over a handful of tiles in
//! the city centre. Throughput is in tiles; the bytes of each set are printed
//! once, for BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use road_graph::{LatLon, ProfileConfig, TileId, cut_tile, import_pbf, read_basemap};

/// The tiles of zoom `z` in a 3×2 block around the Ribeira.
fn centre_tiles(z: u8) -> Vec<TileId> {
    let centre = TileId::containing(LatLon::new(41.1456, -8.6110), z);
    let mut tiles = Vec::new();
    for dx in 0..3u32 {
        for dy in 0..2u32 {
            if let Ok(t) = TileId::new(
                u32::from(z),
                (centre.x + dx).saturating_sub(1),
                centre.y + dy,
            ) {
                tiles.push(t);
            }
        }
    }
    tiles
}

fn cut_porto(c: &mut Criterion) {
    let pbf = super::graph::porto_pbf();
    let (graph, _) = import_pbf(&pbf, &ProfileConfig::TRUCK, &mut |_| {}).expect("porto imports");
    let basemap = read_basemap(&pbf, &graph).expect("porto's basemap reads");
    let mut group = c.benchmark_group("tiles/cut_porto");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    for z in [12u8, 14, 16] {
        let tiles = centre_tiles(z);
        let sizes: Vec<usize> = tiles
            .iter()
            .map(|&t| cut_tile(&basemap, &graph, t).len())
            .collect();
        eprintln!(
            "tiles/cut_porto z{z}: {} tiles, bytes {sizes:?}",
            tiles.len()
        );
        group.throughput(Throughput::Elements(tiles.len() as u64));
        group.bench_function(format!("z{z}"), |b| {
            b.iter(|| {
                for &t in &tiles {
                    black_box(cut_tile(&basemap, &graph, t));
                }
            })
        });
    }
    group.finish();
}

criterion::criterion_group!(benches, cut_porto);
