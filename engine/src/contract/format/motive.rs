//! Motive (KeepTruckin) vehicle locations, in the three shapes their API and
//! webhooks use: the flat `vehicle_location_updated` webhook (`vehicle_id`,
//! `located_at`, `lat`, `lon`, `bearing`, `speed`, `odometer`), the
//! `{"vehicle_location": {…, "vehicle": {"id"}}}` item of `/v3/vehicle_locations`,
//! and the `{"vehicle": {"id", "current_location": {…}}}` item of
//! `/v1/vehicle_locations`. Motive reports imperial units unless asked otherwise:
//! speed in mph, odometer in miles.

use serde::Deserialize;

use super::malformed;
use super::wire::{IdRef, MILE_M, MPH_TO_MPS, WireId, WireTime};
use crate::contract::validate::{RawFix, RejectReason, Rejection};

#[derive(Debug, Deserialize)]
struct Location<'a> {
    #[serde(borrow, default)]
    vehicle_id: Option<WireId<'a>>,
    #[serde(borrow, default)]
    vehicle: Option<IdRef<'a>>,
    located_at: Option<WireTime>,
    lat: Option<f64>,
    lon: Option<f64>,
    #[serde(default)]
    bearing: Option<f64>,
    #[serde(default)]
    speed: Option<f64>,
    #[serde(default)]
    odometer: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Vehicle<'a> {
    #[serde(borrow, default)]
    id: Option<WireId<'a>>,
    #[serde(borrow)]
    current_location: Option<Location<'a>>,
}

/// All three shapes in one struct (no `flatten`: it buffers the whole message).
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    vehicle_location: Option<Location<'a>>,
    #[serde(borrow, default)]
    vehicle: Option<Vehicle<'a>>,
    #[serde(borrow, default)]
    vehicle_id: Option<WireId<'a>>,
    located_at: Option<WireTime>,
    lat: Option<f64>,
    lon: Option<f64>,
    #[serde(default)]
    bearing: Option<f64>,
    #[serde(default)]
    speed: Option<f64>,
    #[serde(default)]
    odometer: Option<f64>,
}

pub(super) fn decode(bytes: &[u8]) -> Result<RawFix, Rejection> {
    let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
    let (location, outer_id) = match (env.vehicle_location, env.vehicle) {
        (Some(location), _) => (location, None),
        (
            None,
            Some(Vehicle {
                id,
                current_location: Some(location),
            }),
        ) => (location, id),
        (None, vehicle) => {
            let flat = Location {
                vehicle_id: env.vehicle_id,
                vehicle: None,
                located_at: env.located_at,
                lat: env.lat,
                lon: env.lon,
                bearing: env.bearing,
                speed: env.speed,
                odometer: env.odometer,
            };
            (flat, vehicle.and_then(|v| v.id))
        }
    };
    let (Some(time), Some(lat), Some(lon)) = (location.located_at, location.lat, location.lon)
    else {
        return Err(Rejection::new(
            RejectReason::Malformed,
            "a Motive location needs located_at, lat and lon",
        ));
    };
    let vehicle_id = location
        .vehicle_id
        .or(location.vehicle.and_then(|v| v.id))
        .or(outer_id)
        .map(WireId::into_string);
    Ok(RawFix {
        tenant_id: None,
        vehicle_id,
        time: time.into_time("located_at")?,
        lat,
        lon,
        speed_mps: location.speed.map(|mph| mph * MPH_TO_MPS),
        heading_deg: location.bearing,
        odometer_m: location.odometer.map(|mi| mi * MILE_M),
        hos_drive_remaining_s: None,
        accuracy_m: None,
        source: None,
    })
}
