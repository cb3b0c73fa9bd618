//! `GET /api/v1/map/roads?bbox=min_lon,min_lat,max_lon,max_lat[&detail=major]`:
//! the roads of our own graph inside a bounding box, as GeoJSON, so the tracking
//! page needs no third-party tile server. `detail=major` keeps only motorways down
//! to tertiary roads, for zoomed-out views. The data is OpenStreetMap's, hence the
//! attribution in every response.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use road_graph::{LatLon, RoadClass, RoadGraph};

use super::Params;
use super::responses::Invalid;
use crate::contract::{
    FeatureCollectionType, FeatureType, LineStringGeometry, LineStringType, RoadFeature,
    RoadProperties, RoadsView,
};
use crate::error::AppError;
use crate::state::AppState;

/// Largest box side, degrees (about 50 km): bigger views get no basemap detail.
const MAX_SPAN_DEG: f64 = 0.5;
/// Most road pieces per response.
const MAX_FEATURES: usize = 20_000;
pub(crate) const ATTRIBUTION: &str = "© OpenStreetMap contributors";

fn parse_bbox(text: &str) -> Result<(LatLon, LatLon), AppError> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            AppError::invalid(
                "bbox",
                "expected four numbers: min_lon,min_lat,max_lon,max_lat",
            )
        })?;
    let [min_lon, min_lat, max_lon, max_lat] = parts[..] else {
        return Err(AppError::invalid(
            "bbox",
            "expected four numbers: min_lon,min_lat,max_lon,max_lat",
        ));
    };
    let min = LatLon::new(min_lat, min_lon);
    let max = LatLon::new(max_lat, max_lon);
    if !min.is_valid() || !max.is_valid() || min_lat > max_lat || min_lon > max_lon {
        return Err(AppError::invalid(
            "bbox",
            "not a valid box (min before max, in range)",
        ));
    }
    if max_lat - min_lat > MAX_SPAN_DEG || max_lon - min_lon > MAX_SPAN_DEG {
        return Err(AppError::invalid(
            "bbox",
            format!("spans more than {MAX_SPAN_DEG} degrees"),
        ));
    }
    Ok((min, max))
}

fn is_major(class: RoadClass) -> bool {
    (class as u8) <= RoadClass::TertiaryLink as u8
}

/// Rounds to 1e-6 degrees (about 10 cm): plenty for drawing, half the bytes.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

pub(crate) fn roads_geojson(
    graph: &RoadGraph,
    min: LatLon,
    max: LatLon,
    major_only: bool,
) -> RoadsView {
    let mut features = Vec::new();
    let mut truncated = false;
    for geom in graph.geoms_in_bbox(min, max) {
        let Some(edge) = graph.geom_edges(geom).into_iter().flatten().next() else {
            continue;
        };
        let class = graph.edge_class(edge);
        if major_only && !is_major(class) {
            continue;
        }
        if features.len() == MAX_FEATURES {
            truncated = true;
            break;
        }
        let coordinates: Vec<[f64; 2]> = graph
            .geom_points(geom)
            .map(|p| [round6(p.lon), round6(p.lat)])
            .collect();
        features.push(RoadFeature {
            kind: FeatureType::Feature,
            properties: RoadProperties {
                class: class.as_str().to_owned(),
            },
            geometry: LineStringGeometry {
                kind: LineStringType::LineString,
                coordinates,
            },
        });
    }
    roads_view(features, truncated)
}

fn roads_view(features: Vec<RoadFeature>, truncated: bool) -> RoadsView {
    RoadsView {
        kind: FeatureCollectionType::FeatureCollection,
        features,
        truncated,
        attribution: ATTRIBUTION.to_owned(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/map/roads",
    tag = "public",
    summary = "Roads in a box, as GeoJSON (the page's basemap)",
    params(("bbox" = String, Query, description = "min_lon,min_lat,max_lon,max_lat"), ("detail" = Option<String>, Query, description = "all (default) or major")),
    responses(
        (status = 200, description = "a GeoJSON FeatureCollection", body = RoadsView),
        Invalid
    ),
)]
pub(crate) async fn roads(
    State(state): State<AppState>,
    Params(params): Params,
) -> Result<Response, AppError> {
    let bbox = params
        .get("bbox")
        .ok_or_else(|| AppError::invalid("bbox", "is required"))?;
    let (min, max) = parse_bbox(bbox)?;
    let major_only = match params.get("detail").map(String::as_str) {
        None | Some("all") => false,
        Some("major") => true,
        Some(other) => {
            return Err(AppError::invalid(
                "detail",
                format!("`{other}`: expected all or major"),
            ));
        }
    };
    let body = match state.graph() {
        Some(graph) => {
            let graph = graph.clone();
            tokio::task::spawn_blocking(move || roads_geojson(&graph, min, max, major_only))
                .await
                .map_err(|e| {
                    AppError::from(crate::Error::store_retryable(format!("basemap task: {e}")))
                })?
        }
        None => roads_view(Vec::new(), false),
    };
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(body),
    )
        .into_response())
}
