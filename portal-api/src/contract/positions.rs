//! The canonical position as a client posts it to `POST /api/v1/positions`
//! (an array of them). The server does not read it with this type: every
//! path a fix takes (Kafka, HTTP, every vendor shape) goes through the one
//! decoder and rule set of `engine::decode_batch`, which also turns a bad item
//! into a `rejected` receipt instead of refusing the batch. This type is what
//! the document and the typed client say; a test below holds it to the
//! decoder.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One GPS fix in the canonical shape; the tenant is the API key's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PositionBody {
    /// The ELD unit (1-64 characters without spaces).
    #[schema(min_length = 1, max_length = 64)]
    pub vehicle_id: String,
    /// Device time, RFC 3339.
    pub time: DateTime<Utc>,
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0)]
    pub speed_mps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0, maximum = 360.0)]
    pub heading_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0)]
    pub odometer_m: Option<f64>,
    /// Hours-of-service drive time the driver has left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hos_drive_remaining_s: Option<u32>,
    /// Horizontal accuracy (1 sigma), metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0)]
    pub accuracy_m: Option<f64>,
}

impl PositionBody {
    /// A fix with no optional fields.
    pub fn new(vehicle_id: &str, time: DateTime<Utc>, lat: f64, lon: f64) -> PositionBody {
        PositionBody {
            vehicle_id: vehicle_id.to_owned(),
            time,
            lat,
            lon,
            speed_mps: None,
            heading_deg: None,
            odometer_m: None,
            hos_drive_remaining_s: None,
            accuracy_m: None,
        }
    }
}

impl From<&engine::Position> for PositionBody {
    /// The fix as a client posts it: without its tenant (the API key's) and
    /// its source (the server's to say).
    fn from(p: &engine::Position) -> PositionBody {
        PositionBody {
            vehicle_id: p.vehicle_id.as_str().to_owned(),
            time: p.time,
            lat: p.lat,
            lon: p.lon,
            speed_mps: p.speed_mps,
            heading_deg: p.heading_deg,
            odometer_m: p.odometer_m,
            hos_drive_remaining_s: p.hos_drive_remaining_s,
            accuracy_m: p.accuracy_m,
        }
    }
}

#[cfg(test)]
mod tests {
    use engine::{Format, TenantId, ValidationRules, decode_batch};

    use super::*;

    #[test]
    fn the_documented_position_is_what_the_decoder_accepts() {
        let now = Utc::now();
        let body = PositionBody {
            speed_mps: Some(12.5),
            heading_deg: Some(90.0),
            odometer_m: Some(1000.0),
            hos_drive_remaining_s: Some(3600),
            accuracy_m: Some(5.0),
            ..PositionBody::new("TRUCK-1", now, 39.28, -76.6)
        };
        let bytes = serde_json::to_vec(&[&body]).expect("JSON");
        let tenant = TenantId("ten_a".to_owned());
        let decoded = decode_batch(
            Format::Canonical,
            &bytes,
            10,
            &tenant,
            now,
            &ValidationRules::RECOMMENDED,
        )
        .expect("a batch");
        let position = match decoded.as_slice() {
            [Ok(position)] => position,
            other => panic!("expected one accepted position, got {other:?}"),
        };
        assert_eq!(position.vehicle_id.as_str(), "TRUCK-1");
        assert_eq!(position.tenant_id, tenant);
        assert_eq!(position.speed_mps, Some(12.5));
        assert_eq!(position.hos_drive_remaining_s, Some(3600));
    }
}
