//! The prediction log: every published ETA, the actual arrival when the stop is
//! reached, and the closed pairs (what was predicted to go, what it took) that
//! feed the calibrator. Progress checkpoints close the loop within a trip: "in 15
//! minutes the truck will be 40 minutes from its stop" is checked when it is, so
//! the calibrator learns from every truck on the road, not only from arrivals.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::eta::Horizon;
use crate::order::OrderId;

/// One published prediction, as analysts read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    pub order_id: OrderId,
    pub stop_index: u32,
    pub predicted_at: DateTime<Utc>,
    pub eta: DateTime<Utc>,
    pub p10: DateTime<Utc>,
    pub p90: DateTime<Utc>,
    /// `eta - predicted_at`, seconds.
    pub horizon_s: f64,
}

/// A stop reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrivalRecord {
    pub order_id: OrderId,
    pub stop_index: u32,
    pub arrived_at: DateTime<Utc>,
}

/// A prediction whose outcome is known: feed it to `Calibrator::record`
/// (`predicted`, `actual_to_go_s`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClosedPrediction {
    pub predicted: Horizon,
    pub actual_to_go_s: f64,
    /// Whether the actual fell inside the predicted p10–p90 window.
    pub covered: bool,
    pub source: ClosedBy,
}

/// What closed a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// The truck reached the stop.
    Arrival,
    /// The truck reached a point of its route that a prediction timed.
    Checkpoint,
}

/// A prediction of progress: `predicted.to_go_s` after `set_at`, the drive left
/// to the next stop will be `target_left_s` (route seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Checkpoint {
    pub(crate) set_at: DateTime<Utc>,
    pub(crate) target_left_s: f64,
    pub(crate) predicted: Horizon,
    pub(crate) lower_s: f64,
    pub(crate) upper_s: f64,
    /// The truck's stalls so far when it was set (see
    /// `VehicleTracker::stalled_through_s`), seconds.
    pub(crate) stalled_through_s: f64,
}
