//! What the engine tells the outside world: a vehicle's position was processed, an
//! ETA for an order stop was (re)computed, an order's status changed (for example by
//! a geofence). These are the only engine types that cross into `portal-api`'s
//! fan-out and store, so the engine's internals can change without touching the
//! tracking page. They are plain data with serde, in canonical units and UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::order::{OrderId, OrderStatus};
use crate::position::{TenantId, VehicleId};

/// One event out of the engine, in the order the engine produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    PositionUpdated(PositionUpdate),
    EtaUpdated(EtaUpdate),
    StatusChanged(StatusChange),
}

/// A vehicle's position after the engine processed it. `lat`/`lon` are the snapped
/// position when map matching placed the fix on a road (`matched`), otherwise the
/// raw fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionUpdate {
    /// The truck's tenant: the store and the fan-out show it only on this
    /// tenant's orders.
    pub tenant_id: TenantId,
    pub vehicle_id: VehicleId,
    /// Device time of the fix, UTC.
    pub time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading_deg: Option<f64>,
    /// Whether map matching placed the fix on a road.
    #[serde(default)]
    pub matched: bool,
}

/// Why an ETA is what it is; shown to the customer next to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtaReason {
    /// Live traffic slows (or speeds) the route compared with free flow.
    Traffic,
    /// A mandatory hours-of-service break is on the way.
    HosBreak,
    /// Dwell time at intermediate stops.
    Dwell,
    /// The truck arrives early and waits for the appointment window.
    WindowWait,
}

impl EtaReason {
    /// The wire name (`"hos_break"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EtaReason::Traffic => "traffic",
            EtaReason::HosBreak => "hos_break",
            EtaReason::Dwell => "dwell",
            EtaReason::WindowWait => "window_wait",
        }
    }
}

/// A predicted arrival at one stop of one order, with its uncertainty window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtaUpdate {
    pub order_id: OrderId,
    /// Index of the stop in the order's stop list (0-based).
    pub stop_index: u32,
    pub eta: DateTime<Utc>,
    /// 10th and 90th percentile of the arrival time.
    pub p10: DateTime<Utc>,
    pub p90: DateTime<Utc>,
    pub remaining_distance_m: f64,
    pub remaining_drive_s: f64,
    #[serde(default)]
    pub reasons: Vec<EtaReason>,
    /// When the engine computed this ETA (the `now` it was given).
    pub computed_at: DateTime<Utc>,
    /// The remaining drive to the stop at free flow, seconds: the baseline
    /// the accuracy log keeps beside the ETA (`None` for ETAs from outside
    /// the engine, such as a dispatcher's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_flow_drive_s: Option<f64>,
    /// The remaining route from the truck to the stop as `[lon, lat]` pairs (GeoJSON
    /// order), for drawing; empty when the engine has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<[f64; 2]>,
}

/// Who moved an order's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatusSource {
    /// A dispatcher, through the orders API.
    #[default]
    Dispatcher,
    /// The driver app, through the orders API.
    Driver,
    /// The engine, from a geofence (arrived at or departed from a stop).
    Geofence,
    /// Anything else automatic (imports, the demo).
    System,
}

impl StatusSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusSource::Dispatcher => "dispatcher",
            StatusSource::Driver => "driver",
            StatusSource::Geofence => "geofence",
            StatusSource::System => "system",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<StatusSource> {
        [
            StatusSource::Dispatcher,
            StatusSource::Driver,
            StatusSource::Geofence,
            StatusSource::System,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// An order's status moved (checked against [`OrderStatus::transition`] by whoever
/// records it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
    /// The stop this change is about (arrived at / departed from), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub source: StatusSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_type_on_the_wire() {
        let event = EngineEvent::StatusChanged(StatusChange {
            order_id: OrderId("ord_1".into()),
            status: OrderStatus::AtPickup,
            at: DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
            stop_index: Some(0),
            note: None,
            source: StatusSource::Geofence,
        });
        let json = serde_json::to_value(&event).expect("serializable");
        assert_eq!(json["type"], "status_changed");
        assert_eq!(json["status"], "at_pickup");
        assert_eq!(json["source"], "geofence");
        let back: EngineEvent = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, event);
    }
}
