//! A stop's facility: the area in which a truck is "at" the stop. A geocoded
//! warehouse lies in its yard, 100–300 m from the street, so a stop is a fence
//! (a circle round its point, or the yard's polygon), not a point; and a truck
//! is at it only when it stands or manoeuvres inside for a while, not when it
//! drives through. This module holds the fence and the debounce clocks; the
//! order's stop and status machine is in [`super::orders`].

use chrono::{DateTime, Utc};
use road_graph::{LatLon, haversine_m};
use serde::{Deserialize, Serialize};

/// Below this movement between two fixes, a truck whose device reports no
/// speed is taken as standing (GPS noise moves a parked truck's fixes), metres.
const GPS_JITTER_M: f64 = 10.0;

/// A stop's own fence, when its order gives one (else a circle of
/// `TrackerConfig::geofence_radius_m`). On the wire `{"radius_m": 300}` or
/// `{"polygon": [[lon, lat], …]}` (GeoJSON order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Geofence {
    /// A circle round the stop's point, metres.
    #[serde(rename = "radius_m")]
    RadiusM(f64),
    /// The yard's outline as `[lon, lat]` corners (closed or not).
    #[serde(rename = "polygon")]
    Polygon(Vec<[f64; 2]>),
}

/// The largest circle a stop may have, metres: beyond it a fence covers a
/// neighbourhood, not a facility.
const MAX_GEOFENCE_RADIUS_M: f64 = 5000.0;

impl Geofence {
    /// Why the fence cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match self {
            Geofence::RadiusM(r) => (!(r.is_finite() && *r > 0.0 && *r <= MAX_GEOFENCE_RADIUS_M))
                .then(|| {
                    format!("radius_m must be above 0 and at most {MAX_GEOFENCE_RADIUS_M}, got {r}")
                }),
            Geofence::Polygon(corners) => {
                if corners.len() < 3 {
                    return Some(format!(
                        "a polygon needs at least 3 corners, got {}",
                        corners.len()
                    ));
                }
                corners.iter().find_map(|&[lon, lat]| {
                    (!LatLon::new(lat, lon).is_valid())
                        .then(|| format!("corner [{lon}, {lat}] is not a [lon, lat] position"))
                })
            }
        }
    }

    /// Whether `p` lies inside the fence of a stop at `centre`.
    pub fn contains(&self, centre: LatLon, p: LatLon) -> bool {
        match self {
            Geofence::RadiusM(r) => haversine_m(centre, p) <= *r,
            Geofence::Polygon(corners) => in_polygon(corners, p),
        }
    }
}

/// Even-odd ray casting on longitude and latitude: exact enough for a yard
/// (a few hundred metres, far from the poles and the antimeridian).
fn in_polygon(corners: &[[f64; 2]], p: LatLon) -> bool {
    let mut inside = false;
    let n = corners.len();
    for i in 0..n {
        let [x1, y1] = corners[i];
        let [x2, y2] = corners[(i + 1) % n];
        if (y1 > p.lat) != (y2 > p.lat) {
            let x = x1 + (p.lat - y1) / (y2 - y1) * (x2 - x1);
            if p.lon < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Whether a stop's fence (its own, or a circle of `default_radius_m`)
/// holds `p`.
pub(crate) fn inside(
    fence: Option<&Geofence>,
    centre: LatLon,
    p: LatLon,
    default_radius_m: f64,
) -> bool {
    match fence {
        Some(fence) => fence.contains(centre, p),
        None => haversine_m(centre, p) <= default_radius_m,
    }
}

/// The debounce clocks of one order's fences.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FenceClocks {
    /// The last raw fix, for a speed when the device reports none.
    last: Option<(DateTime<Utc>, LatLon)>,
    /// Per stop: since when the truck has been inside its fence and slow.
    pub(crate) slow_inside_since: Vec<Option<DateTime<Utc>>>,
    /// Since when the truck has been outside the fence of the stop it stood at.
    pub(crate) outside_since: Option<DateTime<Utc>>,
}

impl FenceClocks {
    pub(crate) fn new(n_stops: usize) -> FenceClocks {
        FenceClocks {
            last: None,
            slow_inside_since: vec![None; n_stops],
            outside_since: None,
        }
    }

    /// The truck's speed at a fix: the device's when it reports one, else the
    /// straight movement since the last fix (less GPS jitter) over the time.
    pub(crate) fn speed_mps(
        &mut self,
        at: DateTime<Utc>,
        p: LatLon,
        reported_mps: Option<f64>,
    ) -> Option<f64> {
        let derived = self.last.and_then(|(t, q)| {
            let dt_s = (at - t).num_milliseconds() as f64 / 1000.0;
            (dt_s > 0.0).then(|| (haversine_m(q, p) - GPS_JITTER_M).max(0.0) / dt_s)
        });
        if self.last.is_none_or(|(t, _)| at > t) {
            self.last = Some((at, p));
        }
        reported_mps
            .filter(|v| v.is_finite() && *v >= 0.0)
            .or(derived)
    }
}

pub(crate) fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polygon_holds_its_inside_and_not_its_outside() {
        let yard = Geofence::Polygon(vec![[0.0, 0.0], [0.01, 0.0], [0.01, 0.01], [0.0, 0.01]]);
        let centre = LatLon::new(0.005, 0.005);
        assert!(yard.contains(centre, LatLon::new(0.002, 0.008)));
        assert!(!yard.contains(centre, LatLon::new(0.012, 0.005)));
        assert!(yard.problem().is_none());
    }

    #[test]
    fn bad_fences_say_why() {
        assert!(Geofence::RadiusM(0.0).problem().is_some());
        assert!(Geofence::RadiusM(f64::NAN).problem().is_some());
        assert!(
            Geofence::Polygon(vec![[0.0, 0.0], [1.0, 1.0]])
                .problem()
                .is_some()
        );
        assert!(
            Geofence::Polygon(vec![[0.0, 0.0], [1.0, 1.0], [200.0, 0.0]])
                .problem()
                .is_some()
        );
    }

    #[test]
    fn the_wire_form_is_radius_or_polygon() {
        let r: Geofence = serde_json::from_str(r#"{"radius_m": 300}"#).expect("radius");
        assert_eq!(r, Geofence::RadiusM(300.0));
        let p: Geofence =
            serde_json::from_str(r#"{"polygon": [[0,0],[1,0],[1,1]]}"#).expect("polygon");
        assert!(matches!(p, Geofence::Polygon(c) if c.len() == 3));
    }
}
