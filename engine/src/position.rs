//! A GPS position as it enters the engine, in canonical units (UTC, degrees, m/s).
//! Every vendor format is decoded into this type at the edge (`ingest`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The ELD unit (truck) a position belongs to, as the vendor names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VehicleId(pub String);

impl VehicleId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VehicleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a position came from, kept for diagnostics and per-source metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PositionSource {
    /// The canonical JSON format (DESIGN.md), from Kafka or HTTP.
    #[default]
    Canonical,
    Samsara,
    Motive,
    Geotab,
    /// `tracker simulate` and the demo fleet.
    Simulator,
    /// A trace file replayed from disk.
    Replay,
}

/// One GPS fix of one vehicle, validated and in canonical units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub vehicle_id: VehicleId,
    /// Device time, UTC.
    pub time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub odometer_m: Option<f64>,
    /// Hours-of-service drive time the driver has left, when the ELD reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hos_drive_remaining_s: Option<u32>,
    /// Horizontal accuracy (1 sigma) in metres, when the device reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
    #[serde(default)]
    pub source: PositionSource,
}
