//! A GPS position as it enters the engine, in canonical units (UTC, degrees, m/s),
//! and the identities it carries. Every vendor format is decoded into this type
//! by the one position contract (`crate::contract`).
//!
//! A truck is known by its tenant *and* the id that tenant gives it
//! ([`VehicleKey`]): two carriers may both run a `truck-7`, and nothing in the
//! engine, the store or the fan-out may confuse them or tell one about the other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A tenant (a broker or carrier account): the scope of every other identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub String);

impl TenantId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ELD unit (truck) a position belongs to, as the vendor names it. Unique
/// only within its tenant: see [`VehicleKey`].
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

/// A truck's full identity: its tenant and the tenant's id for it. Every map,
/// table and bus key that holds per-truck state is keyed by this, never by the
/// bare [`VehicleId`]. On the wire (Kafka keys) it is `TENANT/VEHICLE`: tenant ids
/// never contain `/`, so the first `/` splits it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VehicleKey {
    pub tenant_id: TenantId,
    pub vehicle_id: VehicleId,
}

impl VehicleKey {
    pub fn new(tenant_id: TenantId, vehicle_id: VehicleId) -> VehicleKey {
        VehicleKey {
            tenant_id,
            vehicle_id,
        }
    }

    /// `TENANT/VEHICLE`, the Kafka record key.
    pub fn wire_key(&self) -> String {
        format!("{}/{}", self.tenant_id, self.vehicle_id)
    }
}

impl std::fmt::Display for VehicleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant_id, self.vehicle_id)
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
}

/// One GPS fix of one vehicle, validated and in canonical units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// The tenant whose truck this is: from the API key over HTTP, from the
    /// message, its key or the topic's binding on Kafka.
    pub tenant_id: TenantId,
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

impl Position {
    /// The truck's full identity.
    pub fn key(&self) -> VehicleKey {
        VehicleKey::new(self.tenant_id.clone(), self.vehicle_id.clone())
    }
}
