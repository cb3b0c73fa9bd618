//! Geotab `LogRecord` (from `GetFeed`/`Get<LogRecord>`): `{"id", "dateTime",
//! "latitude", "longitude", "speed", "device": {"id"}}`. Speed is km/h. The
//! vehicle is the Geotab device id (what Geotab calls the GO unit in the truck).

use serde::Deserialize;

use super::malformed;
use super::wire::{IdRef, KPH_TO_MPS, WireTime};
use crate::contract::validate::{RawFix, Rejection};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogRecord<'a> {
    date_time: WireTime,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    speed: Option<f64>,
    #[serde(borrow, default)]
    device: Option<IdRef<'a>>,
}

pub(super) fn decode(bytes: &[u8]) -> Result<RawFix, Rejection> {
    let record: LogRecord<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
    Ok(RawFix {
        tenant_id: None,
        vehicle_id: record.device.and_then(|d| d.id).map(|id| id.into_string()),
        time: record.date_time.into_time("dateTime")?,
        lat: record.latitude,
        lon: record.longitude,
        speed_mps: record.speed.map(|kph| kph * KPH_TO_MPS),
        heading_deg: None,
        odometer_m: None,
        hos_drive_remaining_s: None,
        accuracy_m: None,
        source: None,
    })
}
