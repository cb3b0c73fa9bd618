//! Location privacy, set per tenant: far from every stop still ahead, the
//! public sees the truck's area (the centre of its H3 cell at the tenant's
//! resolution) instead of its exact position; within `exact_within_m` of a
//! pending stop it sees the exact position again (the customer wants to know
//! the truck is at the gate, and the gate is no secret). Off by default.
//!
//! [`public_position`] is the one rule; every public path (the page, the
//! public JSON, the WebSocket snapshot and position deltas, the trail) goes
//! through it, so no path can show more than another. Staff and API views,
//! behind a tenant's key, never call it and stay exact.

use h3o::{LatLng, Resolution};
use road_graph::{LatLon, haversine_m};

use crate::error::{Error, Result};

/// Default distance from a pending stop within which the exact position shows.
pub const DEFAULT_EXACT_WITHIN_M: f64 = 5_000.0;
/// Default H3 resolution of the area shown (7: cells of about 5 km²,
/// edges about 1.2 km).
pub const DEFAULT_CELL_RESOLUTION: u8 = 7;
/// Largest `exact_within_m` accepted (a distance beyond any city).
const MAX_EXACT_WITHIN_M: f64 = 500_000.0;
/// Coarsest and finest resolutions accepted: coarser than 4 the area is a
/// region, finer than 9 it is a street block and hides nothing.
const RESOLUTIONS: std::ops::RangeInclusive<u8> = 4..=9;

/// A tenant's location privacy. `enabled: false` (the default) shows the
/// exact position everywhere.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct LocationPrivacy {
    pub enabled: bool,
    pub exact_within_m: f64,
    pub cell_resolution: u8,
}

impl Default for LocationPrivacy {
    fn default() -> LocationPrivacy {
        LocationPrivacy {
            enabled: false,
            exact_within_m: DEFAULT_EXACT_WITHIN_M,
            cell_resolution: DEFAULT_CELL_RESOLUTION,
        }
    }
}

impl LocationPrivacy {
    /// Checks a setting: the distance finite and within 0–500 km, the
    /// resolution 4–9. Errors name the field.
    pub fn validated(self) -> Result<LocationPrivacy> {
        if !self.exact_within_m.is_finite()
            || !(0.0..=MAX_EXACT_WITHIN_M).contains(&self.exact_within_m)
        {
            return Err(Error::invalid(
                "exact_within_m",
                format!("must be a distance in metres from 0 to {MAX_EXACT_WITHIN_M}"),
            ));
        }
        if !RESOLUTIONS.contains(&self.cell_resolution) {
            return Err(Error::invalid(
                "cell_resolution",
                format!(
                    "must be an H3 resolution from {} to {}",
                    RESOLUTIONS.start(),
                    RESOLUTIONS.end()
                ),
            ));
        }
        Ok(self)
    }
}

/// A position as the public may see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublicPosition {
    pub lat: f64,
    pub lon: f64,
    /// True when this is the centre of the truck's area, not where it is.
    pub approximate: bool,
}

/// Where the public may see a truck at (`lat`, `lon`) under `privacy`, with
/// `pending_stops` (lat, lon) still ahead: the exact position when privacy is
/// off or the truck is within `exact_within_m` of one of them, else the
/// centre of its H3 cell. A coordinate H3 cannot place (not finite, out of
/// range) is never shown exactly: it comes back as (0, 0), approximate.
pub fn public_position(
    lat: f64,
    lon: f64,
    privacy: &LocationPrivacy,
    pending_stops: &[(f64, f64)],
) -> PublicPosition {
    if !privacy.enabled {
        return PublicPosition {
            lat,
            lon,
            approximate: false,
        };
    }
    let here = LatLon::new(lat, lon);
    let near_stop = pending_stops.iter().any(|&(s_lat, s_lon)| {
        haversine_m(here, LatLon::new(s_lat, s_lon)) <= privacy.exact_within_m
    });
    if near_stop {
        return PublicPosition {
            lat,
            lon,
            approximate: false,
        };
    }
    let centre = Resolution::try_from(privacy.cell_resolution)
        .ok()
        .zip(LatLng::new(lat, lon).ok())
        .map(|(res, ll)| LatLng::from(ll.to_cell(res)));
    match centre {
        Some(c) => PublicPosition {
            lat: c.lat(),
            lon: c.lng(),
            approximate: true,
        },
        None => PublicPosition {
            lat: 0.0,
            lon: 0.0,
            approximate: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> LocationPrivacy {
        LocationPrivacy {
            enabled: true,
            ..LocationPrivacy::default()
        }
    }

    /// The truck on the A1 near Coimbra, the delivery in Porto (~100 km away).
    const TRUCK: (f64, f64) = (40.2033, -8.4103);
    const PORTO: (f64, f64) = (41.1579, -8.6291);

    #[test]
    fn privacy_off_shows_the_exact_position() {
        let p = public_position(TRUCK.0, TRUCK.1, &LocationPrivacy::default(), &[PORTO]);
        assert_eq!((p.lat, p.lon, p.approximate), (TRUCK.0, TRUCK.1, false));
    }

    #[test]
    fn far_from_every_stop_the_area_centre_is_shown() {
        let p = public_position(TRUCK.0, TRUCK.1, &on(), &[PORTO]);
        assert!(p.approximate);
        let moved_m = haversine_m(LatLon::new(TRUCK.0, TRUCK.1), LatLon::new(p.lat, p.lon));
        // Not the truck's position, but inside its resolution-7 cell
        // (edge ~1.2 km, so the centre is at most ~1.4 km away).
        assert!(moved_m > 1.0 && moved_m < 1_500.0, "moved {moved_m} m");
        // Every position in the cell shows the same centre: nothing moves
        // on the map while the truck stays in its area.
        let nudged = public_position(TRUCK.0 + 0.0005, TRUCK.1, &on(), &[PORTO]);
        let same_cell = LatLng::new(TRUCK.0 + 0.0005, TRUCK.1)
            .expect("valid")
            .to_cell(Resolution::Seven)
            == LatLng::new(TRUCK.0, TRUCK.1)
                .expect("valid")
                .to_cell(Resolution::Seven);
        assert_eq!(same_cell, (nudged.lat, nudged.lon) == (p.lat, p.lon));
    }

    #[test]
    fn near_a_pending_stop_the_exact_position_is_back() {
        let at_gate = (PORTO.0 + 0.01, PORTO.1); // ~1.1 km from the stop
        let p = public_position(at_gate.0, at_gate.1, &on(), &[PORTO]);
        assert_eq!((p.lat, p.lon, p.approximate), (at_gate.0, at_gate.1, false));
        // With no stop ahead (all reached) the area is shown again.
        assert!(public_position(at_gate.0, at_gate.1, &on(), &[]).approximate);
    }

    #[test]
    fn a_coarser_resolution_moves_the_shown_point_further() {
        let coarse = LocationPrivacy {
            cell_resolution: 5,
            ..on()
        };
        let p = public_position(TRUCK.0, TRUCK.1, &coarse, &[PORTO]);
        let cell = LatLng::new(TRUCK.0, TRUCK.1)
            .expect("valid")
            .to_cell(Resolution::Five);
        let centre = LatLng::from(cell);
        assert_eq!((p.lat, p.lon), (centre.lat(), centre.lng()));
    }

    #[test]
    fn an_unplaceable_coordinate_is_never_shown_exactly() {
        let p = public_position(f64::NAN, 500.0, &on(), &[]);
        assert!(p.approximate);
        assert_eq!((p.lat, p.lon), (0.0, 0.0));
    }

    #[test]
    fn settings_are_checked_naming_the_field() {
        let bad = LocationPrivacy {
            exact_within_m: -1.0,
            ..on()
        };
        let err = bad.validated().expect_err("negative distance");
        assert!(err.to_string().contains("exact_within_m"), "{err}");
        let bad = LocationPrivacy {
            cell_resolution: 15,
            ..on()
        };
        let err = bad.validated().expect_err("too fine");
        assert!(err.to_string().contains("cell_resolution"), "{err}");
        assert!(on().validated().is_ok());
    }
}
