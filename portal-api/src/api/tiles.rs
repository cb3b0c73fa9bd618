//! `GET /api/v1/map/tiles/{z}/{x}/{y}`: the basemap as Mapbox Vector Tiles, cut
//! on demand from the map's basemap (road-graph's [`cut_tile`]) and kept in a
//! small least-recently-used cache, so a page's pans and its neighbours' views
//! cost one cut per tile. Each tile carries an `ETag` (a hash of its bytes) and
//! answers `If-None-Match` with 304; the compression layer gzips or brotlis it
//! when the client accepts that. A tile outside the map is empty, not an error.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use road_graph::{Basemap, RoadGraph, TileId, cut_tile};

use super::PathParams;
use super::responses::Invalid;
use crate::error::AppError;
use crate::state::AppState;

/// The media type of a vector tile.
const TILE_CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";
/// Tiles change only when the map does (a restart on a new map): a day, then
/// revalidated by `ETag`.
const TILE_CACHE_CONTROL: &str = "public, max-age=86400";
/// Bytes of cut tiles kept in memory: a city's worth of street-level tiles.
const CACHE_BUDGET_BYTES: usize = 32 * 1024 * 1024;

/// A cut tile with its `ETag`.
#[derive(Debug)]
pub(crate) struct CutTile {
    bytes: Vec<u8>,
    etag: String,
}

/// The cut tiles, least recently used dropped first when over budget.
#[derive(Debug, Default)]
pub(crate) struct TileCache {
    tiles: HashMap<TileId, (Arc<CutTile>, u64)>,
    bytes: usize,
    clock: u64,
}

impl TileCache {
    fn get(&mut self, id: TileId) -> Option<Arc<CutTile>> {
        self.clock += 1;
        let clock = self.clock;
        self.tiles.get_mut(&id).map(|(tile, used)| {
            *used = clock;
            Arc::clone(tile)
        })
    }

    fn put(&mut self, id: TileId, tile: Arc<CutTile>) {
        self.clock += 1;
        self.bytes += tile.bytes.len();
        if let Some((old, _)) = self.tiles.insert(id, (tile, self.clock)) {
            self.bytes -= old.bytes.len();
        }
        // Eviction scans the map: a few thousand entries at most, far cheaper
        // than the cut that brought the new tile in.
        while self.bytes > CACHE_BUDGET_BYTES && self.tiles.len() > 1 {
            let Some(oldest) = self
                .tiles
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some((old, _)) = self.tiles.remove(&oldest) {
                self.bytes -= old.bytes.len();
            }
        }
    }
}

/// A path segment as a tile coordinate, or a 400 naming it.
fn coordinate(field: &str, text: &str) -> Result<u32, AppError> {
    let digits = if field == "y" {
        // `7.mvt` / `7.pbf` as map libraries often ask.
        text.trim_end_matches(".mvt").trim_end_matches(".pbf")
    } else {
        text
    };
    digits
        .parse::<u32>()
        .map_err(|_| AppError::invalid(field, format!("`{text}` is not a whole number")))
}

fn tile_id(z: &str, x: &str, y: &str) -> Result<TileId, AppError> {
    let (z, x, y) = (
        coordinate("z", z)?,
        coordinate("x", x)?,
        coordinate("y", y)?,
    );
    TileId::new(z, x, y).map_err(|e| match e {
        road_graph::Error::TileOutOfRange { field, value, max } => {
            AppError::invalid(field, format!("{value} is out of range (0..={max})"))
        }
        other => AppError::invalid("z", other),
    })
}

fn cut(basemap: &Basemap, graph: &RoadGraph, id: TileId) -> CutTile {
    let bytes = cut_tile(basemap, graph, id);
    let digest = fnv1a(&bytes);
    CutTile {
        etag: format!("\"{digest:016x}-{}\"", bytes.len()),
        bytes,
    }
}

/// A 64-bit FNV-1a hash of the tile's bytes: an `ETag` needs to change with
/// the bytes, not to resist forgery.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/map/tiles/{z}/{x}/{y}",
    tag = "public",
    summary = "A basemap vector tile (Mapbox Vector Tile v2, extent 4096)",
    description = "Layers `water`, `builtup`, `park` (polygons), `waterway` (lines: `kind`, `name`), `roads` (lines: `class`, `name` from zoom 13) and `places` (points: `kind`, `name`). Minor roads, small areas and minor places are left out at low zooms; a tile outside the map is empty. Data © OpenStreetMap contributors.",
    params(
        ("z" = u32, Path, description = "zoom, 0..=20"),
        ("x" = u32, Path, description = "column, below 2^z"),
        ("y" = String, Path, description = "row, below 2^z (a `.mvt` or `.pbf` suffix is accepted)")
    ),
    responses(
        (status = 200, description = "the tile, with an `ETag` (gzip or brotli when accepted)", content_type = "application/vnd.mapbox-vector-tile", body = Vec<u8>),
        (status = 304, description = "the `If-None-Match` ETag is current"),
        Invalid
    ),
)]
pub(crate) async fn tile(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParams((z, x, y)): PathParams<(String, String, String)>,
) -> Result<Response, AppError> {
    let id = tile_id(&z, &x, &y)?;
    let tile = match (state.graph(), state.basemap()) {
        (Some(graph), Some(basemap)) => {
            let cached = state.inner.tiles.lock().get(id);
            match cached {
                Some(tile) => tile,
                None => {
                    let (graph, basemap) = (Arc::clone(graph), Arc::clone(&basemap));
                    let tile = tokio::task::spawn_blocking(move || cut(&basemap, &graph, id))
                        .await
                        .map_err(|e| {
                            AppError::from(crate::Error::store_retryable(format!("tile task: {e}")))
                        })?;
                    let tile = Arc::new(tile);
                    state.inner.tiles.lock().put(id, Arc::clone(&tile));
                    tile
                }
            }
        }
        // No map yet: an empty tile, not cached.
        _ => Arc::new(CutTile {
            bytes: Vec::new(),
            etag: "\"empty\"".to_owned(),
        }),
    };
    let etag = HeaderValue::from_str(&tile.etag)
        .map_err(|_| AppError::from(crate::Error::store_retryable("tile etag".to_owned())))?;
    let mut response = if super::assets::if_none_match(&headers, &tile.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Body::from(tile.bytes.clone()).into_response()
    };
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TILE_CONTENT_TYPE),
    );
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(TILE_CACHE_CONTROL),
    );
    out.insert(header::ETAG, etag);
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile_of(n: usize) -> Arc<CutTile> {
        Arc::new(CutTile {
            bytes: vec![0; n],
            etag: String::new(),
        })
    }

    #[test]
    fn the_least_recently_used_tile_goes_first_when_over_budget() {
        let id = |x| TileId::new(10, x, 0).expect("a valid tile");
        let mut cache = TileCache::default();
        let third = CACHE_BUDGET_BYTES / 3;
        cache.put(id(1), tile_of(third));
        cache.put(id(2), tile_of(third));
        cache.put(id(3), tile_of(third));
        assert!(cache.get(id(1)).is_some(), "touch 1: 2 is now the oldest");
        cache.put(id(4), tile_of(third));
        assert!(cache.get(id(2)).is_none());
        for kept in [1, 3, 4] {
            assert!(cache.get(id(kept)).is_some(), "tile {kept}");
        }
        assert!(cache.bytes <= CACHE_BUDGET_BYTES);
    }

    #[test]
    fn coordinates_name_the_bad_field() {
        for (z, x, y, field) in [
            ("a", "0", "0", "`z`"),
            ("3", "-1", "0", "`x`"),
            ("3", "0", "8", "`y`"),
            ("21", "0", "0", "`z`"),
        ] {
            let err = tile_id(z, x, y).expect_err("refused");
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(
                err.message.starts_with(field),
                "{z}/{x}/{y}: {}",
                err.message
            );
        }
        assert_eq!(
            tile_id("3", "2", "5.mvt").expect("a suffix is fine"),
            TileId::new(3, 2, 5).expect("valid")
        );
    }
}
