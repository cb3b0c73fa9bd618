//! Samsara vehicle GPS stats (`/fleet/vehicles/stats?types=gps` and its feed):
//! `{"id": "112", "name": "Truck 7", "gps": {"time", "latitude", "longitude",
//! "headingDegrees", "speedMilesPerHour", "reverseGeo", "isEcuSpeed"}}`. The feed
//! sends `gps` as a list; a message must carry one point. A bare `gps` object is
//! accepted too, with the vehicle taken from `vehicleId` or the message key.

use serde::Deserialize;

use super::malformed;
use super::wire::{IdRef, MPH_TO_MPS, WireId, WireTime};
use crate::contract::validate::{RawFix, RejectReason, Rejection};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Gps {
    time: WireTime,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    heading_degrees: Option<f64>,
    #[serde(default)]
    speed_miles_per_hour: Option<f64>,
}

/// An object or a list of objects. Hand-written: `#[serde(untagged)]` would
/// buffer the value and try each variant, which made this decoder slower than
/// parsing into a `serde_json::Value`.
#[derive(Debug)]
enum GpsField {
    One(Gps),
    Many(Vec<Gps>),
}

impl<'de> Deserialize<'de> for GpsField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<GpsField, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = GpsField;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a gps object or a list of them")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<GpsField, A::Error> {
                Gps::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(GpsField::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<GpsField, A::Error> {
                Vec::<Gps>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(GpsField::Many)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<WireId<'a>>,
    #[serde(borrow, default)]
    vehicle_id: Option<WireId<'a>>,
    #[serde(borrow, default)]
    vehicle: Option<IdRef<'a>>,
    #[serde(default)]
    gps: Option<GpsField>,
    // The bare form: the gps fields at the top level.
    #[serde(default)]
    time: Option<WireTime>,
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    heading_degrees: Option<f64>,
    #[serde(default)]
    speed_miles_per_hour: Option<f64>,
    #[serde(default)]
    obd_odometer_meters: Option<f64>,
    #[serde(default)]
    gps_odometer_meters: Option<f64>,
}

pub(super) fn decode(bytes: &[u8]) -> Result<RawFix, Rejection> {
    let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
    let gps = match env.gps {
        Some(GpsField::One(gps)) => gps,
        Some(GpsField::Many(mut list)) => {
            if list.len() != 1 {
                return Err(Rejection::new(
                    RejectReason::Malformed,
                    format!(
                        "gps list with {} points; send one point per message",
                        list.len()
                    ),
                ));
            }
            list.remove(0)
        }
        None => match (env.time, env.latitude, env.longitude) {
            (Some(time), Some(latitude), Some(longitude)) => Gps {
                time,
                latitude,
                longitude,
                heading_degrees: env.heading_degrees,
                speed_miles_per_hour: env.speed_miles_per_hour,
            },
            _ => {
                return Err(Rejection::new(
                    RejectReason::Malformed,
                    "no `gps` object and no top-level time, latitude, longitude",
                ));
            }
        },
    };
    let vehicle_id = env
        .vehicle_id
        .or(env.vehicle.and_then(|v| v.id))
        .or(env.id)
        .map(WireId::into_string);
    Ok(RawFix {
        tenant_id: None,
        vehicle_id,
        time: gps.time.into_time("gps.time")?,
        lat: gps.latitude,
        lon: gps.longitude,
        speed_mps: gps.speed_miles_per_hour.map(|mph| mph * MPH_TO_MPS),
        heading_deg: gps.heading_degrees,
        odometer_m: env.obd_odometer_meters.or(env.gps_odometer_meters),
        hos_drive_remaining_s: None,
        accuracy_m: None,
        source: None,
    })
}
