//! Whether an order's stops can be reached: each must be near a truck road
//! of the server's map (the road the engine's router snaps it to). A stop
//! farther off could never get an ETA, so the order is refused with a 422
//! that gives the distance.

use crate::error::AppError;
use crate::model::NewStop;

/// The farthest the road index is searched around a stop, metres; beyond it
/// the message gives a lower bound.
const ROAD_SEARCH_CAP_M: f64 = 50_000.0;

/// Every stop within `max_m` of a truck road of the map (the road the
/// engine's router snaps the stop to, [`road_distance_m`]): a stop farther off
/// can never get an ETA. The message gives the distance; for a stop beyond the
/// search radius, a lower bound (the distance to the map's box, or the
/// radius).
pub(crate) fn on_the_map(
    stops: &[NewStop],
    graph: &road_graph::RoadGraph,
    max_m: f64,
    path: &str,
) -> Result<(), AppError> {
    let search_m = (max_m * 10.0).min(ROAD_SEARCH_CAP_M).max(max_m);
    let mut map_box = None;
    for (i, stop) in stops.iter().enumerate() {
        let p = road_graph::LatLon::new(stop.lat, stop.lon);
        let distance = road_distance_m(graph, p, search_m);
        if distance.is_some_and(|d| d <= max_m) {
            continue;
        }
        let how_far = match distance {
            Some(d) => format!("is {} from the nearest truck road of the map", metres(d)),
            None => {
                let bbox = *map_box.get_or_insert_with(|| graph.bbox());
                let outside_m = distance_to_box_m(p, &bbox);
                format!(
                    "is more than {} from any truck road of the map",
                    metres(outside_m.max(search_m))
                )
            }
        };
        return Err(AppError::unprocessable(
            "stop_off_map",
            format!("{path}[{i}].lat"),
            format!(
                "({}, {}) {how_far}; at most {} is accepted (a wrong geocode, or a place \
                 this server's map does not cover)",
                stop.lat,
                stop.lon,
                metres(max_m)
            ),
        ));
    }
    Ok(())
}

/// How far `p` is from where the engine's router would snap it
/// ([`engine::Snap::nearest`], the road a route to the stop ends on), when a
/// road is within `radius_m`.
fn road_distance_m(
    graph: &road_graph::RoadGraph,
    p: road_graph::LatLon,
    radius_m: f64,
) -> Option<f64> {
    let snap = engine::Snap::nearest(graph, p, radius_m)?;
    snap.candidates()
        .iter()
        .map(|c| road_graph::haversine_m(p, graph.point_along_edge(c.edge, c.offset_m)))
        .reduce(f64::min)
}

/// A distance for people: metres below 10 km, kilometres above.
fn metres(m: f64) -> String {
    if m < 10_000.0 {
        format!("{} m", m.round())
    } else {
        format!("{} km", (m / 1000.0).round())
    }
}

/// How far a point is from a box (0 inside it).
fn distance_to_box_m(p: road_graph::LatLon, bbox: &road_graph::BBox) -> f64 {
    // An empty map has no box to measure from (and `clamp` needs min ≤ max).
    let ordered = |min: f64, max: f64| {
        matches!(
            min.partial_cmp(&max),
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        )
    };
    if !ordered(bbox.min_lat, bbox.max_lat) || !ordered(bbox.min_lon, bbox.max_lon) {
        return 0.0;
    }
    let nearest = road_graph::LatLon::new(
        p.lat.clamp(bbox.min_lat, bbox.max_lat),
        p.lon.clamp(bbox.min_lon, bbox.max_lon),
    );
    road_graph::haversine_m(p, nearest)
}
