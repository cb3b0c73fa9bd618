//! The canonical position (DESIGN.md): the HTTP body item and the Kafka value,
//! keyed by vehicle id. Unknown fields are ignored so producers can add fields
//! before consumers know them.

use std::borrow::Cow;

use crate::position::{Position, PositionSource};
use serde::Deserialize;

use super::malformed;
use super::wire::{WireId, WireTime};
use crate::contract::validate::{RawFix, Rejection};

#[derive(Debug, Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default)]
    tenant_id: Option<WireId<'a>>,
    #[serde(borrow, default)]
    vehicle_id: Option<WireId<'a>>,
    time: WireTime,
    lat: f64,
    lon: f64,
    #[serde(default)]
    speed_mps: Option<f64>,
    #[serde(default)]
    heading_deg: Option<f64>,
    #[serde(default)]
    odometer_m: Option<f64>,
    #[serde(default)]
    hos_drive_remaining_s: Option<u32>,
    #[serde(default)]
    accuracy_m: Option<f64>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
}

pub(super) fn decode(bytes: &[u8]) -> Result<RawFix, Rejection> {
    let wire: Wire<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
    Ok(RawFix {
        tenant_id: wire.tenant_id.map(WireId::into_string),
        vehicle_id: wire.vehicle_id.map(WireId::into_string),
        time: wire.time.into_time("time")?,
        lat: wire.lat,
        lon: wire.lon,
        speed_mps: wire.speed_mps,
        heading_deg: wire.heading_deg,
        odometer_m: wire.odometer_m,
        hos_drive_remaining_s: wire.hos_drive_remaining_s,
        accuracy_m: wire.accuracy_m,
        source: wire.source.as_deref().and_then(source_named),
    })
}

/// An unknown source name is not worth rejecting a good fix for.
fn source_named(name: &str) -> Option<PositionSource> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Encodes a position as canonical JSON (the Kafka value and the HTTP item).
pub fn encode_canonical(position: &Position) -> Vec<u8> {
    // Serializing a struct of strings and finite numbers cannot fail; the fallback
    // keeps this total without a panic path.
    serde_json::to_vec(position).unwrap_or_default()
}
