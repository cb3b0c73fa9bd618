//! Encoders, the inverse of the decoders: a canonical position written in a
//! vendor's shape and units. The simulator uses them to publish realistic vendor
//! feeds, and the tests to check that decode ∘ encode is the identity (up to the
//! vendor's units and missing fields).

use crate::position::Position;
use serde_json::json;

use super::Format;
use super::wire::{KPH_TO_MPS, MILE_M, MPH_TO_MPS};

/// The position as one message of `format`.
pub fn encode(format: Format, p: &Position) -> Vec<u8> {
    let time = p.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let value = match format {
        // Serializing a struct of strings and finite numbers cannot fail; the
        // fallback keeps this total without a panic path.
        Format::Canonical => return serde_json::to_vec(p).unwrap_or_default(),
        Format::Samsara => json!({
            "id": p.vehicle_id.as_str(),
            "gps": {
                "time": time,
                "latitude": p.lat,
                "longitude": p.lon,
                "headingDegrees": p.heading_deg,
                "speedMilesPerHour": p.speed_mps.map(|v| v / MPH_TO_MPS),
            }
        }),
        Format::Motive => json!({
            "action": "vehicle_location_updated",
            "vehicle_id": p.vehicle_id.as_str(),
            "located_at": time,
            "lat": p.lat,
            "lon": p.lon,
            "bearing": p.heading_deg,
            "speed": p.speed_mps.map(|v| v / MPH_TO_MPS),
            "odometer": p.odometer_m.map(|m| m / MILE_M),
        }),
        Format::Geotab => json!({
            "dateTime": time,
            "latitude": p.lat,
            "longitude": p.lon,
            "speed": p.speed_mps.map(|v| v / KPH_TO_MPS),
            "device": {"id": p.vehicle_id.as_str()},
        }),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}
